// The `tcp` interface of every contract version since 1.1, included by each `since_v1_*`
// module from 1.1 on after its bindings.

impl tcp::Host for CallState {
    async fn converse(&mut self, c: tcp::Conversation) -> Result<Vec<Vec<u8>>, m::HostError> {
        let talk = hc::Conversation {
            address: c.address,
            exchanges: c
                .exchanges
                .into_iter()
                .map(|e| hc::Exchange {
                    send: e.send,
                    until: e.until,
                })
                .collect(),
            timeout_ms: c.timeout_ms,
        };
        CallState::converse(self, talk).await
    }
}
