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
use crate::error::Result;
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
}

impl LiveQuery {
    /// Whether a commit that touched `t` can change this query's result.
    fn affected_by(&self, t: &Touched) -> bool {
        let space = match self {
            LiveQuery::Feed(q) => Some(q.space),
            LiveQuery::Search(q) => q.space,
            LiveQuery::Viewport(q) => Some(q.space),
            LiveQuery::Near(q) => Some(q.space),
            LiveQuery::OpenOffers(q) => Some(q.space),
            LiveQuery::Events(q) => Some(q.space),
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

    pub(crate) fn run(&self, conn: &Connection) -> Result<LiveResult> {
        Ok(match self {
            LiveQuery::Feed(q) => LiveResult::Feed(query::feed(conn, q)?),
            LiveQuery::Search(q) => LiveResult::Search(query::search(conn, q)?),
            LiveQuery::Viewport(q) => LiveResult::Viewport(query::viewport(conn, q)?),
            LiveQuery::Near(q) => LiveResult::Near(query::near(conn, q)?),
            LiveQuery::OpenOffers(q) => LiveResult::OpenOffers(query::open_offers(conn, q)?),
            LiveQuery::Events(q) => LiveResult::Events(query::events_between(conn, q)?),
            LiveQuery::Detail { item, viewer } => {
                LiveResult::Detail(Box::new(query::item_detail(conn, *item, viewer)?))
            }
        })
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
        if touched.spaces.is_empty() && touched.items.is_empty() {
            return;
        }
        let has_subscribers = !self
            .registry
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if has_subscribers {
            let _ = self
                .sender
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(Notice::Committed(touched));
        }
    }

    fn subscribe(&self, query: LiveQuery, listener: Listener) -> Subscription {
        let id = self.registry.next_id.fetch_add(1, Ordering::Relaxed);
        self.registry
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(Subscriber { query, listener }));
        let _ = self
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Notice::Subscribed(id));
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
        self.inner.live.subscribe(query, Box::new(listener))
    }
}

fn notifier(pool: Weak<ReaderPool>, registry: Weak<Registry>, receiver: mpsc::Receiver<Notice>) {
    // Its own reader, kept between notices; opened again after a rekey (see `ReaderPool`).
    let mut conn: Option<(u64, Connection)> = None;
    while let Ok(first) = receiver.recv() {
        let mut touched = Touched::default();
        let mut fresh = BTreeSet::new();
        let mut absorb = |notice: Notice| match notice {
            Notice::Committed(t) => {
                touched.spaces.extend(t.spaces);
                touched.items.extend(t.items);
            }
            Notice::Subscribed(id) => {
                fresh.insert(id);
            }
        };
        absorb(first);
        while let Ok(more) = receiver.try_recv() {
            absorb(more);
        }
        let Some(live) = registry.upgrade() else {
            return;
        };
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
            let result = subscriber.query.run(c);
            if catch_unwind(AssertUnwindSafe(|| (subscriber.listener)(result))).is_err() {
                tracing::error!("a live query listener panicked; it stays subscribed");
            }
        }
    }
}
