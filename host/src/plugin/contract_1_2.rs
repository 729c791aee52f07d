// The calls contract 1.2 added (`keeps-failed`, `estimate`, `tree`), shared by every
// version from 1.2: included in each version's module, like `contract_1x.rs`.

impl Strategy {
    /// `keeps-failed` (1.2).
    pub async fn keeps_failed(
        &self,
        store: &mut Store<CallState>,
        wave_index: u32,
        params: &[m::Pair],
    ) -> wasmtime::Result<bool> {
        let i = self.0.instantiate_async(&mut *store).await?;
        i.cutover_plugin_strategy()
            .call_keeps_failed(store, wave_index, &pairs(params))
            .await
    }
}

impl Adapter {
    /// `estimate` (1.2).
    pub async fn estimate(
        &self,
        store: &mut Store<CallState>,
        targets: &[m::Target],
        params: &[m::Pair],
        waves: u32,
    ) -> wasmtime::Result<Result<m::Estimate, m::PluginError>> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let targets: Vec<t::Target> = targets.iter().map(target).collect();
        let r = i
            .cutover_plugin_adapter()
            .call_estimate(store, &targets, &pairs(params), waves)
            .await?;
        Ok(r.map(|e| m::Estimate {
            steps: e
                .steps
                .into_iter()
                .map(|s| m::StepEstimate {
                    step: s.step,
                    expected_s: s.expected_s,
                    worst_s: s.worst_s,
                })
                .collect(),
            notes: e.notes,
        })
        .map_err(plugin_error))
    }
}

impl tree::Host for CallState {
    async fn copy_substituting(
        &mut self,
        from: String,
        to: String,
        subs: Vec<tree::Substitution>,
    ) -> Result<tree::SubstitutedCopy, m::HostError> {
        let subs = subs
            .into_iter()
            .map(|s| hc::Substitution {
                suffix: s.name_suffix.into_bytes(),
                from: s.from.into_bytes(),
                to: s.to.into_bytes(),
            })
            .collect();
        let s = CallState::copy_tree(self, from, to, subs).await?;
        Ok(tree::SubstitutedCopy {
            copied: files::CopyStats {
                files: s.files,
                dirs: s.dirs,
                bytes: s.bytes,
            },
            substituted: s.substituted,
        })
    }
}
