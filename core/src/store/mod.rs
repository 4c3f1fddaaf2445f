//! The local store: one SQLite database holding every document (snapshot + changes), the
//! outbox, and the projections that queries read. All writes go through [`Store`], one SQLite
//! transaction each (document change + outbox + projection), and live-query listeners are told
//! after the commit. See `docs/store.md` for the concurrency model.

mod access;
pub(crate) mod bm25_one_phrase;
mod commands;
pub(crate) use commands::erase_in;
mod connection;
mod documents;
mod key;
mod live;
mod merge;
pub(crate) mod migrations;
mod outbox;
mod parallel;
mod projection;
mod purge;
mod reads;
mod refusal;
mod search_index;
mod sync_types;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use automerge::ActorId;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

pub use access::AllowedActions;
pub(crate) use documents::{creation_history, load as load_document, pending_edit_history};
pub use key::StoreKey;
pub use live::{LiveQuery, LiveResult, Subscription};
pub use merge::IncomingCreation;
pub use merge::MergeReport;
pub(crate) use merge::{decode_incoming, CreationsApplied};
pub use migrations::{APPLICATION_ID, SCHEMA_VERSION};
pub(crate) use outbox::{defer_entry, MAY_LEAVE_DEVICE};
pub(crate) use purge::{purge_space, purge_unreadable};
pub use refusal::UndeliveredChange;
pub(crate) use refusal::{Returned, SetAside};
pub use sync_types::{IncomingChange, OutgoingChange};

use crate::error::{Error, Result};
use connection::ReaderPool;

pub use crate::document::DEFAULT_DOCUMENT_BUDGET;

/// Settings of a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// A local write that would make its document larger than this is refused.
    pub document_budget: usize,
    /// The key of the store's encryption at rest (`docs/store.md`, "Encryption at rest"), from
    /// the platform's key store. `None`: a plain SQLite store, as before. A plain store opened
    /// with a key is encrypted with it during the open; an encrypted store opened with another
    /// key or without one is [`Error::WrongStoreKey`] and is not changed.
    pub store_key: Option<StoreKey>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            document_budget: DEFAULT_DOCUMENT_BUDGET,
            store_key: None,
        }
    }
}

/// What a committed write touched, for live queries.
#[derive(Clone, Debug, Default)]
pub(crate) struct Touched {
    pub spaces: BTreeSet<String>,
    pub items: BTreeSet<String>,
    /// Spaces whose cursor a write started over (`documents::distrust_creation`): the page being
    /// applied must not move it forward again.
    pub refetch: BTreeSet<String>,
    /// Counselling channels whose records or state changed (`LiveQuery::Counselling`).
    pub counselling: BTreeSet<uuid::Uuid>,
    /// A notification was made or read (`LiveQuery::Notifications`).
    pub notifications: bool,
    /// Items left the store for good (erasure, a space or role left): the write rewrites the
    /// search index once before it commits (`search_index::drop_removed_words`).
    pub words_removed: bool,
    /// Signers whose kept signatures an erasure removed, with the space of the erased document
    /// (`None`: it had none): the write forgets those left without one before it commits
    /// (`documents::forget_signers_without_signatures`).
    pub signers_unsure: BTreeSet<(Option<String>, String)>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Arc<ReaderPool>,
    actor: ActorId,
    signing_key: ed25519_dalek::SigningKey,
    options: StoreOptions,
    /// Opened with a store key (SQLCipher).
    encrypted: bool,
    /// The key media files are sealed with, in an encrypted store (`media/sealed.rs`).
    media_key: Option<crate::media::sealed::MediaKey>,
    live: live::LiveQueries,
    /// Held for a whole sync: a second sync of this store (the app's "sync now" during a
    /// background sync) waits and then finds nothing left to push, instead of pushing the same
    /// outbox and fetching the same pages a second time.
    sync_gate: tokio::sync::Mutex<()>,
    /// The local permission check (`access.rs`); on unless a tool or test turns it off.
    check_permissions: std::sync::atomic::AtomicBool,
    /// An erasure's checkpoint was held back by a reader: its old pages may still be in the
    /// WAL, and the next sync (or close) folds them in ([`Store::checkpoint_after_erasure`]).
    checkpoint_owed: std::sync::atomic::AtomicBool,
}

/// A Quartier store. Cheap to clone; all clones share one writer connection and one reader
/// pool, and may be used from any thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`, upgrading its schema if it is older. A file
    /// that is not a Quartier store ([`Error::Corrupt`]), was written by a newer core
    /// ([`Error::SchemaTooNew`]) or is encrypted with another key than
    /// [`StoreOptions::store_key`] ([`Error::WrongStoreKey`]) is refused without being changed.
    /// A plain store opened with a key is encrypted first (crash-safe: see
    /// `key::encrypt_plain_store`).
    pub fn open(path: impl AsRef<Path>, mut options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        // The key lives in the reader pool only (which a rekey updates), not in the options the
        // store keeps.
        let store_key = options.store_key.take();
        let encrypted = store_key.is_some();
        let store_key = store_key.as_ref();
        // A read-only look first: opening the writer already switches the file to WAL.
        let found = migrations::inspect(&path, store_key)?;
        if let Some(store_key) = store_key {
            if found == migrations::Found::Plain {
                key::encrypt_plain_store(&path, store_key)?;
            }
            // Whatever an earlier encryption cut short left beside the store.
            key::remove_interrupted_encryption(&path)?;
        }
        let mut writer = connection::open_writer(&path, store_key)?;
        let outcome = migrations::migrate(&mut writer, SCHEMA_VERSION)?;
        let actor = documents::device_actor(&writer, now_ms())?;
        let signing_key = crate::sync::identity::load_or_create(&writer)?;
        let (media_key, plain_media_left) = match store_key {
            Some(_) => {
                let (key, plain_left) = crate::media::load_or_create_key(&writer)?;
                (Some(key), plain_left)
            }
            None => (None, false),
        };
        let readers = Arc::new(ReaderPool::new(path.clone(), store_key.cloned()));
        let live = live::LiveQueries::start(&readers)?;
        let store = Store {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers,
                actor,
                signing_key,
                options,
                encrypted,
                media_key,
                live,
                sync_gate: tokio::sync::Mutex::new(()),
                check_permissions: std::sync::atomic::AtomicBool::new(true),
                checkpoint_owed: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        if outcome.rebuild_projections {
            store.rebuild_projections()?;
        }
        if plain_media_left {
            store.seal_plain_media()?;
        }
        if store.is_encrypted() {
            store.sweep_plain_temporaries();
        }
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// This device's Automerge actor id, hex encoded.
    pub fn device_actor(&self) -> String {
        self.inner.actor.to_hex_string()
    }

    /// Runs `f` in one immediate SQLite transaction on the writer connection and, once it has
    /// committed, tells live queries what it touched. An error rolls everything back.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &mut Touched) -> Result<T>,
    ) -> Result<T> {
        let mut touched = Touched::default();
        let value = {
            let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx, &mut touched)?;
            search_index::before_commit(&tx, self.inner.live.searching(), &mut touched)?;
            documents::forget_signers_without_signatures(&tx, &touched.signers_unsure)?;
            tx.commit()?;
            value
        };
        self.inner.live.notify(touched);
        Ok(value)
    }

    /// Runs a read on a pooled read-only connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.inner.readers.with(f)
    }

    pub(crate) fn actor(&self) -> &ActorId {
        &self.inner.actor
    }

    pub(crate) fn signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.inner.signing_key
    }

    /// This device's Ed25519 public key, registered with the server.
    pub fn device_public_key(&self) -> [u8; 32] {
        self.inner.signing_key.verifying_key().to_bytes()
    }

    /// One sync of this store at a time (see `Inner::sync_gate`).
    pub(crate) fn sync_gate(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.sync_gate
    }

    pub(crate) fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Checks the database file with SQLite's `integrity_check`.
    pub fn integrity_check(&self) -> Result<()> {
        self.read(|conn| {
            let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            if result == "ok" {
                Ok(())
            } else {
                Err(Error::Corrupt(result))
            }
        })
    }

    /// Moves the WAL into the database file and truncates it (after erasure, and on close).
    /// A reader's snapshot can hold the checkpoint back: it is tried for about two seconds,
    /// then a retryable `Storage` error (busy) says that old pages are still in the WAL.
    pub fn checkpoint(&self) -> Result<()> {
        let conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        if key::try_fold_wal(&conn)? {
            Ok(())
        } else {
            Err(key::wal_busy(
                "a long read kept the write-ahead log from being folded into the store; try again",
            ))
        }
    }

    /// After an erasure: folds the WAL in so that the erased content's old pages leave it (the
    /// database's own pages were zeroed by `secure_delete`). A long read can hold that back;
    /// then the checkpoint is owed, and [`Store::settle_owed_checkpoint`] (run after every
    /// sync) tries again until it succeeds.
    pub(crate) fn checkpoint_after_erasure(&self) {
        if let Err(e) = self.checkpoint() {
            self.inner
                .checkpoint_owed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!(error = %e, "checkpoint after an erasure held back; tried again after the next sync");
        }
    }

    /// Folds the WAL in if an erasure's checkpoint is still owed. Returns whether none is owed
    /// any more.
    pub fn settle_owed_checkpoint(&self) -> bool {
        use std::sync::atomic::Ordering;
        if !self.inner.checkpoint_owed.load(Ordering::SeqCst) {
            return true;
        }
        match self.checkpoint() {
            Ok(()) => {
                self.inner.checkpoint_owed.store(false, Ordering::SeqCst);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "an owed checkpoint is still held back");
                false
            }
        }
    }

    /// Whether the store is encrypted at rest (opened with a [`StoreOptions::store_key`]).
    pub fn is_encrypted(&self) -> bool {
        self.inner.encrypted
    }

    pub(crate) fn media_key(&self) -> Option<&crate::media::sealed::MediaKey> {
        self.inner.media_key.as_ref()
    }

    /// Changes the store key to `new_key` (`PRAGMA rekey`: every page is written again under
    /// the new key, in one transaction, then the WAL is folded in and truncated). From then on
    /// the store opens with `new_key` only. The app keeps the new key in its key store before
    /// calling this, so that a kill during the call leaves it holding the right one of the two:
    /// the rekey is one transaction, so the store opens with exactly one of them afterwards.
    /// Only for an encrypted store (a plain one is encrypted by opening it with a key); reads
    /// running on other threads while the rekey commits may fail and can be retried.
    pub fn rekey(&self, new_key: &StoreKey) -> Result<()> {
        if !self.is_encrypted() {
            return Err(Error::invalid(
                "store key",
                "the store is not encrypted: open it with a store key to encrypt it",
            ));
        }
        let conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        key::rekey(&conn, new_key)?;
        self.inner.readers.set_key(new_key.clone());
        Ok(())
    }

    /// Checkpoints and closes the store; pending live queries are stopped.
    pub fn close(self) -> Result<()> {
        self.checkpoint()
    }
}

/// Milliseconds since the epoch, the resolution of every stored time.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Now, truncated to the stored resolution so that values read back compare equal.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now_ms()).unwrap_or_else(Utc::now)
}
