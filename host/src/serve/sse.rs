//! `GET /api/events[?rollout=ID]`: server-sent events. The journal is read every
//! [`TICK`] and whatever changed is pushed: `rollouts` (the list) and, when a rollout is
//! named, `rollout` (its timeline, as `GET /api/rollouts/{id}` gives it).

use super::{api, State};
use axum::extract::{Query, State as Ax};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

/// How often the journal is checked for changes.
pub(super) const TICK: Duration = Duration::from_millis(500);

/// How often the timeline is read again even if the journal did not change: a process that
/// died leaves its rollout interrupted without writing anything.
const REREAD: Duration = Duration::from_secs(5);

#[derive(serde::Deserialize)]
pub(super) struct Params {
    rollout: Option<i64>,
}

/// What one client was last sent.
struct Feed {
    st: State,
    rollout: Option<i64>,
    list: String,
    one: String,
    queue: VecDeque<Event>,
    first: bool,
    /// The journal's data version at the last read, and when that was.
    version: Option<i64>,
    read_at: std::time::Instant,
}

impl Feed {
    /// Read the journal and queue what changed since the last read.
    async fn poll(&mut self) {
        let st = self.st.clone();
        let rollout = self.rollout;
        let (seen, stale) = (self.version, self.read_at.elapsed() >= REREAD);
        let read = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let version = api::data_version(&st)?;
            if seen == Some(version) && !stale {
                return Ok(None);
            }
            let list = api::rollouts(&st)?.to_string();
            let one = match rollout {
                Some(id) => api::timeline(&st, id)?
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                None => String::new(),
            };
            Ok(Some((version, list, one)))
        })
        .await;
        // Unchanged, or a journal busy with a big commit: read again at the next tick.
        let Ok(Ok(Some((version, list, one)))) = read else {
            return;
        };
        self.version = Some(version);
        self.read_at = std::time::Instant::now();
        if list != self.list {
            self.queue
                .push_back(Event::default().event("rollouts").data(&list));
            self.list = list;
        }
        if one != self.one {
            if !one.is_empty() {
                self.queue
                    .push_back(Event::default().event("rollout").data(&one));
            }
            self.one = one;
        }
    }
}

/// The event stream of one client.
pub(super) async fn events(
    Ax(st): Ax<State>,
    Query(p): Query<Params>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let feed = Feed {
        st,
        rollout: p.rollout,
        list: String::new(),
        one: String::new(),
        queue: VecDeque::new(),
        first: true,
        version: None,
        read_at: std::time::Instant::now(),
    };
    let s = stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(e) = feed.queue.pop_front() {
                return Some((Ok(e), feed));
            }
            if !feed.first {
                tokio::time::sleep(TICK).await;
            }
            feed.first = false;
            feed.poll().await;
        }
    });
    Sse::new(s).keep_alive(KeepAlive::default())
}
