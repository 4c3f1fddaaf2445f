//! Live-query subscriptions across the boundary: the foreign [`LiveQueryListener`] and the
//! [`LiveSubscription`] handle that stops the calls on `cancel()` or when it is dropped.

use std::sync::{Arc, Mutex};

use quartier_core::{Store, Subscription};

use crate::error::{FfiResult, QuartierError};
use crate::types::LiveResult;

/// Implemented by the app. Called on the store's notifier thread (one per store), never on the
/// thread that subscribed or writes: hop to your UI thread yourself. A slow listener delays
/// other listeners of the same store, never a write. An exception thrown here is caught and
/// logged; the listener stays subscribed.
#[uniffi::export(with_foreign)]
pub trait LiveQueryListener: Send + Sync {
    /// A fresh result (the first one soon after subscribing).
    fn on_result(&self, result: LiveResult);
    /// The query failed this time (e.g. the item was deleted); later commits retry it.
    fn on_error(&self, error: QuartierError);
}

/// A running live query. `cancel()` stops it (idempotent); dropping it does the same, so keep
/// a reference for as long as you want results. After `cancel()` returns, the listener is not
/// called again (a call already under way finishes).
#[derive(uniffi::Object)]
pub struct LiveSubscription {
    inner: Mutex<Option<Subscription>>,
}

#[uniffi::export]
impl LiveSubscription {
    pub fn cancel(&self) {
        let taken = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }
}

pub(crate) fn subscribe(
    store: &Store,
    query: quartier_core::LiveQuery,
    listener: Arc<dyn LiveQueryListener>,
) -> FfiResult<Arc<LiveSubscription>> {
    let subscription = store.subscribe(query, move |result| match result {
        Ok(result) => listener.on_result(result.into()),
        Err(error) => listener.on_error(error.into()),
    });
    Ok(Arc::new(LiveSubscription {
        inner: Mutex::new(Some(subscription)),
    }))
}
