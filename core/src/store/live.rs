//! Live queries: an app subscribes a query with a listener and is called back with the fresh
//! result after every commit that can change it (local write or merge), and once right after
//! subscribing. Listeners run on one notifier thread per store, never on the writer's thread,
//! so a slow listener delays other listeners but never a write. Bursts of commits are
//! coalesced: a listener may see one result for several commits, always the latest state (and,
//! when a run already saw a commit whose notice comes after it, once more the same state).
//! A listener is called on every commit that touches its query's space even when its result
//! did not change: paged lists (`LivePages` in the bindings) watch their first page and learn
//! of changes further down that way.
//! Dropping (or cancelling) the [`Subscription`] unsubscribes.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};

use rusqlite::Connection;

use super::connection::ReaderPool;
use super::{Store, Touched};
use crate::counselling::{CounsellingChannel, CounsellingRecord};
use crate::error::{Error, Result};
use crate::model::{Item, ItemId, Viewer};
use crate::query::{
    self, EventOccurrence, EventsQuery, FeedPage, FeedQuery, ItemDetail, NearbyItem, OpenOffersQuery,
    RadiusQuery, SearchHit, SearchRequest, ViewportQuery,
};

/// A query that can be watched.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum LiveQuery {
    Feed(FeedQuery),
    Search(SearchRequest),
    Viewport(ViewportQuery),
    Near(RadiusQuery),
    OpenOffers(OpenOffersQuery),
    Events(EventsQuery),
    Detail {
        #[cfg_attr(feature = "uniffi", uniffi(name = "item_id"))]
        item: ItemId,
        viewer: Viewer,
    },
    /// A counselling conversation's (or a team notes channel's) records, as
    /// [`Store::counselling_records`] lists them; called after every send, every sync that
    /// brought, delivered, opened or refused one of its records, and its erasure. A channel this
    /// device does not hold (not yet received, or erased here or by the server) has no records:
    /// an empty list, not an error, so that a watched conversation that is erased empties.
    Counselling {
        channel: uuid::Uuid,
    },
    /// The counselling channels this device takes part in ([`Store::counselling_channels`]);
    /// called after every change to any of them (a conversation opened, received, closed,
    /// erased, its participants or its unsent records).
    CounsellingChannels,
    /// The coordinators' moderation queue of a space ([`Store::moderation_queue`]); called
    /// after every commit that touches the space (a report or decision arriving, one made here).
    ModerationQueue {
        space: crate::model::SpaceId,
    },
    /// The open requests and offers of help of a space ([`Store::help_board`]).
    HelpBoard {
        space: crate::model::SpaceId,
        viewer: Viewer,
    },
    /// The person's notifications, newest first (the last 200; [`Store::notifications`]);
    /// called after every one made or read.
    Notifications,
}

/// The result of a live query, in the shape of the query.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveResult {
    Feed(FeedPage),
    Search(Vec<SearchHit>),
    Viewport(Vec<Item>),
    Near(Vec<NearbyItem>),
    OpenOffers(Vec<Item>),
    Events(Vec<EventOccurrence>),
    Detail(Box<ItemDetail>),
    Counselling(Vec<CounsellingRecord>),
    CounsellingChannels(Vec<CounsellingChannel>),
    ModerationQueue(Vec<crate::moderation::ModerationQueueEntry>),
    HelpBoard(Vec<Item>),
    Notifications(Vec<crate::notifications::Notification>),
}

impl LiveQuery {
    /// Whether a commit that touched `t` can change this query's result.
    fn affected_by(&self, t: &Touched) -> bool {
        let space = match self {
            LiveQuery::Counselling { channel } => return t.counselling.contains(channel),
            LiveQuery::CounsellingChannels => return !t.counselling.is_empty(),
            LiveQuery::Notifications => return t.notifications,
            LiveQuery::Feed(q) => Some(q.space),
            LiveQuery::Search(q) => q.space,
            LiveQuery::Viewport(q) => Some(q.space),
            LiveQuery::Near(q) => Some(q.space),
            LiveQuery::OpenOffers(q) => Some(q.space),
            LiveQuery::Events(q) => Some(q.space),
            LiveQuery::ModerationQueue { space } => Some(*space),
            LiveQuery::HelpBoard { space, .. } => Some(*space),
            // Comments touch their own id; their parent's detail lists them.
            LiveQuery::Detail { .. } => None,
        };
        match (self, space) {
            (LiveQuery::Detail { .. }, _) | (LiveQuery::Search(_), None) => {
                !t.items.is_empty() || !t.spaces.is_empty()
            }
            (_, Some(space)) => t.spaces.contains(&space.to_string()),
            (_, None) => false,
        }
    }

    /// The query's current result, or `None` for a search while items wait for the search
    /// index: a result without them would be stale from the start (a pager takes a live
    /// search's first result as its first page). Whichever write indexes them marks their
    /// spaces touched, and the notifier runs the search again then.
    pub(crate) fn run(&self, conn: &Connection) -> Result<Option<LiveResult>> {
        Ok(Some(match self {
            LiveQuery::Search(q) => {
                return Ok(super::search_index::search_if_settled(conn, q)?.map(LiveResult::Search))
            }
            LiveQuery::Feed(q) => LiveResult::Feed(query::feed(conn, q)?),
            LiveQuery::Viewport(q) => LiveResult::Viewport(query::viewport(conn, q)?),
            LiveQuery::Near(q) => LiveResult::Near(query::near(conn, q)?),
            LiveQuery::OpenOffers(q) => LiveResult::OpenOffers(query::open_offers(conn, q)?),
            LiveQuery::Events(q) => LiveResult::Events(query::events_between(conn, q)?),
            LiveQuery::Detail { item, viewer } => {
                LiveResult::Detail(Box::new(query::item_detail(conn, *item, viewer)?))
            }
            LiveQuery::Counselling { channel } => match Store::records_on(conn, *channel) {
                Err(Error::NotFound { .. }) => LiveResult::Counselling(Vec::new()),
                records => LiveResult::Counselling(records?),
            },
            LiveQuery::CounsellingChannels => LiveResult::CounsellingChannels(Store::channels_on(conn)?),
            LiveQuery::ModerationQueue { space } => {
                LiveResult::ModerationQueue(crate::moderation::queue_of(conn, *space)?)
            }
            LiveQuery::HelpBoard { space, viewer } => {
                LiveResult::HelpBoard(crate::help::board_of(conn, *space, *viewer)?)
            }
            LiveQuery::Notifications => {
                LiveResult::Notifications(crate::notifications::list(conn, false, 200)?)
            }
        }))
    }
}

/// Called with each new result (or the error the query ran into).
pub type Listener = Box<dyn Fn(Result<LiveResult>) + Send + Sync>;

struct Subscriber {
    query: LiveQuery,
    listener: Listener,
}

#[derive(Default)]
struct Registry {
    subscribers: Mutex<HashMap<u64, Arc<Subscriber>>>,
    next_id: AtomicU64,
}

enum Notice {
    Committed(Touched),
    Subscribed(u64),
    /// Work a subscription needed before its first result failed: its listener hears why.
    Failed(u64, Error),
}

/// The live queries of one store and their notifier thread.
pub(crate) struct LiveQueries {
    registry: Arc<Registry>,
    sender: Mutex<mpsc::Sender<Notice>>,
}

impl LiveQueries {
    /// Starts the notifier thread. It holds the reader pool weakly: the pool's connections close
    /// with the store, not whenever the thread next wakes up (an open connection would keep a
    /// reopen from changing the journal mode, as encrypting a plain store does).
    pub fn start(pool: &Arc<ReaderPool>) -> Result<Self> {
        let pool = Arc::downgrade(pool);
        let registry = Arc::new(Registry::default());
        let (sender, receiver) = mpsc::channel();
        let weak = Arc::downgrade(&registry);
        std::thread::Builder::new()
            .name("quartier-live".into())
            .spawn(move || notifier(pool, weak, receiver))
            .map_err(|e| {
                crate::error::Error::invalid("live queries", format!("cannot start notifier thread: {e}"))
            })?;
        Ok(Self {
            registry,
            sender: Mutex::new(sender),
        })
    }

    pub fn notify(&self, touched: Touched) {
        if touched.spaces.is_empty()
            && touched.items.is_empty()
            && touched.counselling.is_empty()
            && !touched.notifications
        {
            return;
        }
        let has_subscribers = !self
            .registry
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if has_subscribers {
            self.send(Notice::Committed(touched));
        }
    }

    /// Hands `notice` to the notifier thread (gone only when the store is closing).
    fn send(&self, notice: Notice) {
        let _ = self.sender.lock().unwrap_or_else(|p| p.into_inner()).send(notice);
    }

    /// Whether a live search is subscribed (writes then index what they project at once).
    pub fn searching(&self) -> bool {
        self.registry
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|s| matches!(s.query, LiveQuery::Search(_)))
    }

    /// Tells the listener of subscription `id`, on the notifier thread, that `error` kept its
    /// result from coming (it comes with the next commit that can change it).
    fn fail(&self, id: u64, error: Error) {
        self.send(Notice::Failed(id, error));
    }

    fn subscribe(&self, query: LiveQuery, listener: Listener) -> Subscription {
        let id = self.registry.next_id.fetch_add(1, Ordering::Relaxed);
        self.registry
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(Subscriber { query, listener }));
        self.send(Notice::Subscribed(id));
        Subscription {
            id,
            registry: Arc::downgrade(&self.registry),
        }
    }
}

/// Keeps a live query running; dropping it (or [`Subscription::cancel`]) stops it.
#[must_use = "dropping the subscription unsubscribes at once"]
pub struct Subscription {
    id: u64,
    registry: Weak<Registry>,
}

impl Subscription {
    /// Stops the live query; the listener is not called again once this returns (a call
    /// already under way finishes).
    pub fn cancel(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry
                .subscribers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.id);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish()
    }
}

impl Store {
    /// Subscribes `listener` to `query`: it is called soon with the current result and again
    /// after every commit that can change it, on the store's notifier thread.
    pub fn subscribe(
        &self,
        query: LiveQuery,
        listener: impl Fn(Result<LiveResult>) + Send + Sync + 'static,
    ) -> Subscription {
        let searching = matches!(query, LiveQuery::Search(_));
        let subscription = self.inner.live.subscribe(query, Box::new(listener));
        if searching {
            // From here on every write indexes what it projects at once. What earlier writes
            // left pending is indexed now, by this write or one that comes first: either marks
            // the spaces it indexed touched, and the search runs again (its first run may have
            // come before).
            // Until it is, the search gives no result (`LiveQuery::run`): if indexing fails (a
            // full disk, another process holding the write lock), the listener hears the error
            // instead of silence, and the result comes after the next write that succeeds.
            if let Err(e) = self.write(|tx, touched| super::search_index::index_pending(tx, 1, touched)) {
                tracing::warn!(error = %e, "indexing pending items for a live search failed; the next write does");
                self.inner.live.fail(subscription.id, e);
            }
        }
        subscription
    }
}

fn notifier(pool: Weak<ReaderPool>, registry: Weak<Registry>, receiver: mpsc::Receiver<Notice>) {
    // Its own reader, kept between notices; opened again after a rekey (see `ReaderPool`).
    let mut conn: Option<(u64, Connection)> = None;
    // Searches that found items waiting for the search index: they run at the next notice,
    // which the write that indexes those items sends (`LiveQuery::run`).
    let mut owed = BTreeSet::new();
    while let Ok(first) = receiver.recv() {
        let mut touched = Touched::default();
        let mut fresh = std::mem::take(&mut owed);
        let mut failed = Vec::new();
        let mut absorb = |notice: Notice| match notice {
            Notice::Committed(t) => {
                touched.spaces.extend(t.spaces);
                touched.items.extend(t.items);
                touched.counselling.extend(t.counselling);
                touched.notifications |= t.notifications;
            }
            Notice::Subscribed(id) => {
                fresh.insert(id);
            }
            Notice::Failed(id, error) => failed.push((id, error)),
        };
        absorb(first);
        while let Ok(more) = receiver.try_recv() {
            absorb(more);
        }
        let Some(live) = registry.upgrade() else {
            return;
        };
        for (id, error) in failed {
            let subscriber = live
                .subscribers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .cloned();
            if let Some(subscriber) = subscriber {
                if catch_unwind(AssertUnwindSafe(|| (subscriber.listener)(Err(error)))).is_err() {
                    tracing::error!("a live query listener panicked; it stays subscribed");
                }
            }
        }
        let due: Vec<(u64, Arc<Subscriber>)> = live
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(id, s)| fresh.contains(id) || s.query.affected_by(&touched))
            .map(|(id, s)| (*id, Arc::clone(s)))
            .collect();
        drop(live);
        if due.is_empty() {
            continue;
        }
        let Some(pool) = pool.upgrade() else {
            return;
        };
        if conn
            .as_ref()
            .is_none_or(|(generation, _)| *generation != pool.generation())
        {
            conn = None;
            match pool.open() {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "live queries cannot open a reader");
                    // They run at the next notice instead of waiting for their space to change.
                    owed.extend(due.iter().map(|(id, _)| *id));
                    continue;
                }
            }
        }
        let Some((_, c)) = conn.as_ref() else { continue };
        for (id, subscriber) in due {
            // A subscription cancelled while earlier listeners ran is not called any more.
            let subscribed = registry.upgrade().is_some_and(|live| {
                live.subscribers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains_key(&id)
            });
            if !subscribed {
                continue;
            }
            let result = match subscriber.query.run(c) {
                Ok(Some(result)) => Ok(result),
                Ok(None) => {
                    owed.insert(id);
                    continue;
                }
                Err(e) => Err(e),
            };
            if catch_unwind(AssertUnwindSafe(|| (subscriber.listener)(result))).is_err() {
                tracing::error!("a live query listener panicked; it stays subscribed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use quartier_protocol::counselling::{
        ChannelKind, ConversationPage, CounsellingResponse, GoneConversation, GoneReason,
    };
    use quartier_protocol::{Ack, AckOutcome, Record, SyncResponse, PROTOCOL_VERSION};
    use uuid::Uuid;

    use super::*;
    use crate::counselling::RecordState;
    use crate::model::{PersonId, SpaceId};
    use crate::sync::Account;

    /// Waits (at most five seconds) for a counselling result that `done` accepts.
    fn wait_for(
        rx: &mpsc::Receiver<Result<LiveResult>>,
        what: &str,
        done: impl Fn(&[CounsellingRecord]) -> bool,
    ) -> Vec<CounsellingRecord> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(LiveResult::Counselling(records))) if done(&records) => return records,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => panic!("the counselling query failed while waiting for {what}: {e}"),
                Err(_) => panic!("the listener was not called with {what}"),
            }
        }
    }

    fn response(counselling: CounsellingResponse, acks: Vec<Ack>) -> SyncResponse {
        SyncResponse {
            protocol: PROTOCOL_VERSION,
            acks,
            pages: Vec::new(),
            memberships: Vec::new(),
            revoked: Vec::new(),
            counselling: Some(counselling),
            credentials: None,
            moderation: None,
            help: None,
        }
    }

    #[test]
    fn a_send_a_received_record_and_erasures_call_the_counselling_listener() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("s.db"), crate::StoreOptions::default()).expect("store");
        store
            .save_account(&Account {
                server: "http://127.0.0.1:1".into(),
                device: Uuid::now_v7(),
                person: PersonId::new(),
                token: "token".into(),
            })
            .expect("account");
        let (space, team) = (SpaceId::new(), Uuid::now_v7());
        let channel = store.open_conversation(space, team).expect("open");
        let watch = |query: LiveQuery| {
            let (tx, rx) = mpsc::channel();
            let sub = store.subscribe(query, move |r| {
                let _ = tx.send(r);
            });
            (sub, rx)
        };
        let (_sub, rx) = watch(LiveQuery::Counselling { channel });
        wait_for(&rx, "the empty conversation", |r| r.is_empty());

        // A send.
        store.send_counselling_message(channel, "Hallo").expect("send");
        let records = wait_for(&rx, "the queued message", |r| r.len() == 1);
        assert_eq!(records[0].state, RecordState::Queued);
        // A send with a file, through its own write.
        let with_file = store
            .send_counselling_files(
                channel,
                "Der Brief",
                vec![crate::counselling::NewAttachment {
                    bytes: b"Bescheid".to_vec(),
                    mime: "image/jpeg".into(),
                }],
            )
            .expect("send a file");
        wait_for(&rx, "the message with its file", |r| {
            r.iter().any(|x| x.id == with_file)
        });

        // A sync's answer: the message acknowledged, and a record from the team received (its
        // key has not come yet).
        let (_, pushed) = store.build_sync_request(1 << 20, 100).expect("request");
        let part = pushed.counselling.clone().expect("a counselling part");
        assert_eq!(part.seqs.len(), 1, "the sealed message is pushed");
        let ack = Ack {
            index: part.first_index as u32,
            outcome: AckOutcome::Stored,
        };
        let page = ConversationPage {
            conversation: channel,
            space: space.as_uuid(),
            team,
            kind: ChannelKind::Conversation,
            participants: Vec::new(),
            records: vec![Record::Sealed {
                conversation: channel,
                id: Uuid::now_v7(),
                sender: "team-device-key".into(),
                session_id: "session".into(),
                ciphertext: vec![1, 2, 3],
                seq: Some(7),
            }],
            next: 7,
            more: false,
            closed_at_ms: None,
        };
        let answer = CounsellingResponse {
            conversations: vec![page],
            ..Default::default()
        };
        store
            .apply_sync_response(&pushed, response(answer, vec![ack]))
            .expect("apply");
        let records = wait_for(&rx, "the received record", |r| r.len() == 3);
        let mine = records
            .iter()
            .find(|r| r.mine && r.id != with_file)
            .expect("the message");
        assert_eq!(mine.state, RecordState::Delivered);
        let waiting = records
            .iter()
            .find(|r| r.id == with_file)
            .expect("the message with a file");
        assert_eq!(
            waiting.state,
            RecordState::Queued,
            "held until its file is uploaded"
        );
        assert!(records
            .iter()
            .any(|r| !r.mine && r.state == RecordState::WaitingForKey));

        // Erased here: the conversation empties.
        store.erase_conversation(channel).expect("erase");
        wait_for(&rx, "no records after the erasure", |r| r.is_empty());

        // Erased by the server (on the other side's request, or by retention).
        let other = store.open_conversation(space, team).expect("open");
        store.send_counselling_message(other, "Noch da?").expect("send");
        let (_other_sub, other_rx) = watch(LiveQuery::Counselling { channel: other });
        wait_for(&other_rx, "the second conversation", |r| r.len() == 1);
        let (_, pushed) = store.build_sync_request(1 << 20, 100).expect("request");
        let gone = CounsellingResponse {
            gone: vec![GoneConversation {
                conversation: other,
                reason: GoneReason::Erased,
            }],
            ..Default::default()
        };
        store
            .apply_sync_response(&pushed, response(gone, Vec::new()))
            .expect("apply");
        wait_for(&other_rx, "no records after the server's erasure", |r| {
            r.is_empty()
        });
        assert!(store.counselling_channels().expect("channels").is_empty());
    }
}
