//! Media: the store's content-addressed files ([`QuartierStore`]: import, read, pin, budget,
//! eviction) and their transfers with the server ([`QuartierSync`]: the queue by priority, the
//! link policy, on-demand fetch and upload). Conversions only; the behaviour is the core's
//! (`docs/media.md`, `docs/blobs.md`).

use std::path::Path;
use std::sync::Arc;

use crate::error::FfiResult;
use crate::store::QuartierStore;
use crate::sync::{on_runtime, CancelToken, QuartierSync};
use crate::types::*;

/// Implemented by the app; called on a library thread after every chunk sent or piece received.
#[uniffi::export(with_foreign)]
pub trait TransferProgressListener: Send + Sync {
    fn on_transfer(&self, event: TransferEvent);
}

/// The progress callback the core takes, forwarding to the app's listener if there is one.
fn forward(
    listener: Option<Arc<dyn TransferProgressListener>>,
) -> impl Fn(&quartier_core::sync::TransferEvent) {
    move |event| {
        if let Some(listener) = &listener {
            listener.on_transfer(event.clone());
        }
    }
}

#[uniffi::export]
impl QuartierStore {
    /// Imports a photo, audio or video file. The type is sniffed from the content; images are
    /// stored upright without metadata (unless `keep_metadata`) with a preview and a thumbnail.
    /// Errors: `Media` (unsupported, malformed, too large), `StorageFull`.
    #[uniffi::method(default(options = None))]
    pub fn import_media_file(
        &self,
        path: String,
        options: Option<ImportOptions>,
    ) -> FfiResult<ImportedMedia> {
        self.with(|s| {
            let options = options.unwrap_or_default();
            s.import_media_file(Path::new(&path), &options)
                .map_err(Into::into)
        })
    }

    /// Imports media from bytes in memory (e.g. a camera buffer); as `import_media_file`.
    #[uniffi::method(default(options = None))]
    pub fn import_media_bytes(
        &self,
        bytes: Vec<u8>,
        options: Option<ImportOptions>,
    ) -> FfiResult<ImportedMedia> {
        self.with(|s| {
            let options = options.unwrap_or_default();
            s.import_media_bytes(&bytes, &options).map_err(Into::into)
        })
    }

    /// What this device knows of a file, or `None`.
    pub fn media_info(&self, hash: String) -> FfiResult<Option<LocalMedia>> {
        self.with(|s| s.media_info(&hash).map_err(Into::into))
    }

    /// The path of a file on this device, for the platform's image or audio views. `NotFound`
    /// if it is not here (then `QuartierSync.fetchMedia` brings it). In an encrypted store
    /// (`is_encrypted()`) the file holds sealed bytes: use `read_media` / `read_media_range`.
    pub fn media_file(&self, hash: String) -> FfiResult<String> {
        self.with(|s| Ok(s.media_file(&hash)?.display().to_string()))
    }

    /// The bytes of a file on this device (decrypted in an encrypted store).
    pub fn read_media(&self, hash: String) -> FfiResult<Vec<u8>> {
        self.with(|s| Ok(s.read_media(&hash)?))
    }

    /// The bytes `start..end` of a file on this device (`end` clamped to its length): for a
    /// player's seek in an encrypted store without decrypting the whole file. Offsets are
    /// signed in the API (Kotlin has no unsigned types in its public API); a negative one is
    /// refused.
    pub fn read_media_range(&self, hash: String, start: i64, end: i64) -> FfiResult<Vec<u8>> {
        let start: u64 = crate::error::non_negative("start", start)?;
        let end: u64 = crate::error::non_negative("end", end)?;
        self.with(|s| Ok(s.read_media_range(&hash, start, end)?))
    }

    /// Keeps a file on this device whatever the budget (`true`), or lets it be evicted again.
    pub fn set_media_pinned(&self, hash: String, pinned: bool) -> FfiResult<()> {
        self.with(|s| Ok(s.set_media_pinned(&hash, pinned)?))
    }

    /// Bounds the bytes of media kept on this device (persisted); evicts at once.
    pub fn set_media_budget(&self, bytes: i64) -> FfiResult<()> {
        self.with(|s| Ok(s.set_media_budget(bytes)?))
    }

    pub fn media_budget(&self) -> FfiResult<i64> {
        self.with(|s| Ok(s.media_budget()?))
    }

    /// Evicts least recently used media over the budget, never what no server has yet.
    pub fn evict_media(&self) -> FfiResult<EvictionReport> {
        self.with(|s| s.evict_media().map_err(Into::into))
    }
}

#[uniffi::export]
impl QuartierSync {
    /// Sets the policy for the link the device is on now; call it when the link changes.
    pub fn set_transfer_policy(&self, policy: TransferPolicy) {
        self.transfers.set_policy(policy);
    }

    pub fn transfer_policy(&self) -> TransferPolicy {
        self.transfers.policy()
    }

    /// Moves the media the policy allows: thumbnails, then previews, then originals, uploads
    /// before downloads. Call it after `sync_now` (text first). A dropped link ends it with
    /// `Offline`; the next call resumes at the last finished chunk.
    #[uniffi::method(default(progress = None, cancel = None))]
    pub async fn transfer_media(
        &self,
        progress: Option<Arc<dyn TransferProgressListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<TransferReport> {
        let (store, transfers) = (self.core()?, Arc::clone(&self.transfers));
        on_runtime(cancel, async move {
            let report = transfers.run(&store, forward(progress)).await?;
            Ok(TransferReport::from(&report))
        })
        .await
    }

    /// The path of a file referenced by an item in the store, downloading it first if it is not
    /// on this device, whatever the policy (the app is showing it).
    #[uniffi::method(default(progress = None, cancel = None))]
    pub async fn fetch_media(
        &self,
        hash: String,
        progress: Option<Arc<dyn TransferProgressListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<String> {
        let (store, transfers) = (self.core()?, Arc::clone(&self.transfers));
        on_runtime(cancel, async move {
            let path = transfers.fetch_now(&store, &hash, forward(progress)).await?;
            Ok(path.display().to_string())
        })
        .await
    }

    /// Uploads one of this device's files now, whatever the policy (the user asked).
    #[uniffi::method(default(progress = None, cancel = None))]
    pub async fn upload_media(
        &self,
        hash: String,
        progress: Option<Arc<dyn TransferProgressListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<()> {
        let (store, transfers) = (self.core()?, Arc::clone(&self.transfers));
        on_runtime(cancel, async move {
            transfers.upload_now(&store, &hash, forward(progress)).await
        })
        .await
    }
}
