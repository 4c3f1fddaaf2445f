//! The media transfer queue (`docs/blobs.md`): uploads of this device's media files and
//! downloads of files that items in the store reference, in chunks that survive interruptions.
//!
//! - Order: thumbnails, then previews, then originals; uploads before downloads of the same
//!   rank. Text comes first because the app runs the queue after `SyncClient::sync_now`.
//! - Policy per link ([`TransferPolicy`]): on a metered link originals move only on demand
//!   ([`TransferQueue::fetch_now`], [`TransferQueue::upload_now`]), and a thumbnail or preview
//!   is fetched only if the server's real size (asked with `HEAD`, not taken from the item
//!   another member wrote) is within its variant's bound.
//! - Resume: an upload asks the server which chunks it holds and sends only the others; a
//!   download appends to a partial file in the media temp folder and continues from its length
//!   with an HTTP `Range`. Nothing is kept in the database: the state is the server's and the
//!   partial files', so a killed app resumes like a dropped link.
//!
//! Touches the store's media API (`crate::media`), the items projection (read-only, to find the
//! media items reference) and the network (reqwest).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use quartier_protocol::blobs::{
    chunk_range, is_blob_hash, missing_chunks, AnnounceBlob, BlobVariant, UploadState, BLOB_CHUNK_BYTES,
    BLOB_CONTENT_TYPE,
};
use quartier_protocol::{CONTENT_TYPE, MAX_DECODED_BYTES};
use reqwest::{Method, StatusCode};

use super::client::{blocking, SyncClient};
use super::http::{refusal, HttpResponse};
use crate::error::{Error, Result};
use crate::media::{LocalMedia, MediaVariant};
use crate::model::MediaRef;
use crate::store::Store;

/// What the app allows on the current link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferPolicy {
    /// The link costs per byte (mobile data): thumbnails and previews move, originals wait for
    /// an unmetered link or an explicit request.
    pub metered: bool,
}

impl TransferPolicy {
    /// Whether `media` may move on this link by what the device knows of it (the size an item
    /// declares). On a metered link a download is checked once more against the server's real
    /// size before it starts.
    fn allows(&self, media: &LocalMedia) -> bool {
        !self.metered
            || blob_variant(media.variant)
                .max_bytes()
                .is_some_and(|max| media.size <= max)
    }
}

/// The variant an upload is announced as.
fn blob_variant(variant: MediaVariant) -> BlobVariant {
    match variant {
        MediaVariant::Original => BlobVariant::Original,
        MediaVariant::Preview => BlobVariant::Preview,
        MediaVariant::Thumbnail => BlobVariant::Thumbnail,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferDirection {
    Upload,
    Download,
}

/// One file the queue will move, in queue order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub direction: TransferDirection,
    pub media: LocalMedia,
    /// The space an upload goes into (and is charged to): a file used in several spaces is
    /// one upload per space, of which only the first sends bytes.
    pub space: Option<String>,
}

/// Progress of one file, reported after every chunk (uploads) or piece (downloads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferEvent {
    pub hash: String,
    pub direction: TransferDirection,
    pub variant: MediaVariant,
    /// Bytes of the file the server (upload) or this device (download) holds now.
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub finished: bool,
}

/// What one run of the queue did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferReport {
    pub uploaded: Vec<String>,
    pub downloaded: Vec<String>,
    /// Files held back by the policy: originals on a metered link, and thumbnails or previews
    /// larger than their variant's bound (as the item declares them or as the server has them).
    pub deferred: usize,
    /// Files that failed for a reason retrying will not fix (refused, corrupt), with the
    /// reason; the queue went on with the others.
    pub failed: Vec<(String, String)>,
    /// Chunk requests sent (resent ones included) and body bytes on the wire.
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// Moves media between this device and its server.
#[derive(Debug)]
pub struct TransferQueue {
    http: reqwest::Client,
    base: String,
    policy: Mutex<TransferPolicy>,
    traffic: [AtomicU64; 3],
}

/// Everything a queue has moved since it was made, interrupted runs included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferTraffic {
    /// Chunk requests sent (resent ones included).
    pub chunks_sent: u64,
    /// Body bytes sent and received.
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

fn rank(variant: MediaVariant) -> u8 {
    match variant {
        MediaVariant::Thumbnail => 0,
        MediaVariant::Preview => 1,
        MediaVariant::Original => 2,
    }
}

/// The typed error of a refused answer (the one reading of refusals, `http::refusal`).
fn error_from(status: StatusCode, body: &[u8]) -> Error {
    refusal(&HttpResponse {
        status: status.as_u16(),
        body: body.to_vec(),
        ..Default::default()
    })
}

fn offline(e: reqwest::Error) -> Error {
    Error::Offline(e.to_string())
}

/// Whether an error ends the whole run (the link or the credentials), not just one file.
fn ends_run(e: &Error) -> bool {
    matches!(
        e,
        Error::Offline(_)
            | Error::Unauthorized
            | Error::DeviceRevoked
            | Error::NotRegistered
            | Error::StorageFull
    )
}

impl TransferQueue {
    /// A queue for the server `client` talks to.
    pub fn new(client: &SyncClient) -> Result<TransferQueue> {
        // No overall timeout: an original on a slow link takes long. A stalled link is noticed
        // by the read timeout and resumed later. The same trusted roots as the sync client.
        let http = client
            .http_builder()
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::invalid("server address", e.to_string()))?;
        Ok(TransferQueue {
            http,
            base: client.base_url().to_owned(),
            policy: Mutex::new(TransferPolicy::default()),
            traffic: Default::default(),
        })
    }

    /// What this queue has moved so far, interrupted runs included.
    pub fn traffic(&self) -> TransferTraffic {
        let [chunks, sent, received] = &self.traffic;
        TransferTraffic {
            chunks_sent: chunks.load(Ordering::Relaxed),
            bytes_sent: sent.load(Ordering::Relaxed),
            bytes_received: received.load(Ordering::Relaxed),
        }
    }

    fn count(&self, chunks: u64, sent: u64, received: u64) {
        let [c, s, r] = &self.traffic;
        c.fetch_add(chunks, Ordering::Relaxed);
        s.fetch_add(sent, Ordering::Relaxed);
        r.fetch_add(received, Ordering::Relaxed);
    }

    /// Sets the policy for the link the device is on now (the app calls this when it changes).
    pub fn set_policy(&self, policy: TransferPolicy) {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    pub fn policy(&self) -> TransferPolicy {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything waiting, in the order a run takes it, and how many files the policy holds back.
    pub fn plan(&self, store: &Store) -> Result<(Vec<Transfer>, usize)> {
        plan_for(store, self.policy())
    }

    /// Moves everything the policy allows, most important first. A dropped link or refused
    /// credentials end the run with that error (call again later: it resumes); a file the server
    /// refuses is reported in [`TransferReport::failed`] and the run goes on.
    pub async fn run(&self, store: &Store, progress: impl Fn(&TransferEvent)) -> Result<TransferReport> {
        let mut report = TransferReport::default();
        let policy = self.policy();
        let (plan, deferred) = blocking(store, move |s| plan_for(s, policy)).await?;
        report.deferred = deferred;
        for transfer in plan {
            let hash = transfer.media.hash.clone();
            if policy.metered && transfer.direction == TransferDirection::Download {
                match self.fits_metered(store, &transfer.media).await {
                    Ok(true) => {}
                    Ok(false) => {
                        report.deferred += 1;
                        continue;
                    }
                    Err(e) if ends_run(&e) => return Err(e),
                    Err(e) => {
                        report.failed.push((hash, e.to_string()));
                        continue;
                    }
                }
            }
            let result = match transfer.direction {
                TransferDirection::Upload => self
                    .upload(store, &transfer, &mut report, &progress)
                    .await
                    .map(|()| report.uploaded.push(hash.clone())),
                TransferDirection::Download => self
                    .download(store, &transfer.media, &mut report, &progress)
                    .await
                    .map(|_| report.downloaded.push(hash.clone())),
            };
            match result {
                Ok(()) => {}
                Err(e) if ends_run(&e) => return Err(e),
                Err(e) => report.failed.push((hash, e.to_string())),
            }
        }
        Ok(report)
    }

    /// The file of `hash` on this device, downloading it first if it is not here, whatever the
    /// policy: the app is showing it. `hash` must be referenced by an item in the store.
    pub async fn fetch_now(
        &self,
        store: &Store,
        hash: &str,
        progress: impl Fn(&TransferEvent),
    ) -> Result<PathBuf> {
        if !is_blob_hash(hash) {
            return Err(Error::invalid(
                "media hash",
                "expected 64 lowercase hex digits (BLAKE3)",
            ));
        }
        let wanted = hash.to_owned();
        let media = blocking(store, move |s| s.media_wanted(&wanted)).await?;
        if media.present {
            let wanted = hash.to_owned();
            return blocking(store, move |s| s.media_file(&wanted)).await;
        }
        let mut report = TransferReport::default();
        self.download(store, &media, &mut report, &progress).await
    }

    /// Uploads one of this device's files now, whatever the policy (the user asked).
    pub async fn upload_now(
        &self,
        store: &Store,
        hash: &str,
        progress: impl Fn(&TransferEvent),
    ) -> Result<()> {
        let wanted = hash.to_owned();
        let (media, due) = blocking(store, move |s| {
            let media = s.media_info(&wanted)?.ok_or_else(|| Error::NotFound {
                what: "media",
                id: wanted.clone(),
            })?;
            let references = s.media_references()?;
            let due: Vec<String> = s
                .media_uploads_due(media_uses(&references))?
                .into_iter()
                .filter(|(m, _)| m.hash == wanted)
                .map(|(_, space)| space)
                .collect();
            Ok((media, due))
        })
        .await?;
        if due.is_empty() && !media.on_server {
            return Err(Error::invalid(
                "media",
                "the file is not on any item yet, so no space would take it",
            ));
        }
        for space in due {
            let transfer = Transfer {
                direction: TransferDirection::Upload,
                media: media.clone(),
                space: Some(space),
            };
            self.upload(store, &transfer, &mut TransferReport::default(), &progress)
                .await?;
        }
        Ok(())
    }

    /// Asks the server how large the file of a thumbnail or preview really is (`HEAD`, no body)
    /// and whether that is within its variant's bound: items are written by other members, and
    /// their declared sizes prove nothing. A file whose real size is not the declared one is an
    /// error (it would fail its hash check anyway).
    async fn fits_metered(&self, store: &Store, media: &LocalMedia) -> Result<bool> {
        let Some(max) = blob_variant(media.variant).max_bytes() else {
            return Ok(false);
        };
        let token = Self::token(store).await?;
        let response = self
            .http
            .head(format!("{}/v1/blobs/{}", self.base, media.hash))
            .bearer_auth(&token)
            .send()
            .await
            .map_err(offline)?;
        let status = response.status();
        if !status.is_success() {
            // HEAD answers carry no body: the status says it.
            return Err(error_from(status, b""));
        }
        let real = response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| Error::MalformedResponse("a blob's HEAD answer without Content-Length".into()))?;
        if real > max {
            return Ok(false);
        }
        if real != media.size {
            return Err(Error::MalformedResponse(format!(
                "the server's file has {real} bytes, the item says {}",
                media.size
            )));
        }
        Ok(true)
    }

    async fn token(store: &Store) -> Result<String> {
        Ok(blocking(store, |s| s.account())
            .await?
            .ok_or(Error::NotRegistered)?
            .token()
            .to_owned())
    }

    async fn upload(
        &self,
        store: &Store,
        transfer: &Transfer,
        report: &mut TransferReport,
        progress: &impl Fn(&TransferEvent),
    ) -> Result<()> {
        let media = &transfer.media;
        let space = transfer.space.as_deref().ok_or_else(|| {
            Error::invalid(
                "media",
                "the file is not on any item yet, so no space would take it",
            )
        })?;
        let token = Self::token(store).await?;
        let announce = AnnounceBlob {
            hash: media.hash.clone(),
            size: media.size,
            mime_type: media.mime_type.clone(),
            chunk_size: BLOB_CHUNK_BYTES,
            variant: Some(blob_variant(media.variant)),
        };
        let answered = |state: UploadState| -> Result<UploadState> {
            state
                .check_answers(&announce)
                .map_err(|e| Error::MalformedResponse(format!("upload of {}: {e}", media.hash)))?;
            Ok(state)
        };
        let mut state: UploadState = answered(
            self.call(
                Method::POST,
                &format!("/v1/spaces/{space}/blobs"),
                &token,
                &announce,
                report,
            )
            .await?,
        )?;
        // Twice at most: a second round only if the server lost chunks it had acknowledged.
        for _ in 0..2 {
            let event = |state: &UploadState, finished| TransferEvent {
                hash: media.hash.clone(),
                direction: TransferDirection::Upload,
                variant: media.variant,
                done_bytes: done_bytes(state),
                total_bytes: media.size,
                finished,
            };
            if !state.complete {
                // Only now are the bytes needed: a file this person uploaded before is claimed
                // in a further space without them (and may have been evicted here meanwhile).
                let hash = media.hash.clone();
                let path = blocking(store, move |s| s.media_file(&hash)).await?;
                for index in missing_chunks(&state) {
                    let (start, end) = chunk_range(media.size, BLOB_CHUNK_BYTES, index)
                        .ok_or_else(|| Error::MalformedResponse(format!("chunk {index} is past the end")))?;
                    let from = path.clone();
                    let bytes = on_pool(move || read_range(&from, start, end)).await?;
                    report.chunks_sent += 1;
                    report.bytes_sent += bytes.len() as u64;
                    self.count(1, bytes.len() as u64, 0);
                    let response = self
                        .http
                        .put(format!("{}/v1/blobs/{}/chunks/{index}", self.base, media.hash))
                        .bearer_auth(&token)
                        .header("content-type", BLOB_CONTENT_TYPE)
                        .body(bytes)
                        .send()
                        .await
                        .map_err(offline)?;
                    state = answered(self.answer(response, report).await?)?;
                    progress(&event(&state, false));
                }
                match self
                    .call::<(), UploadState>(
                        Method::POST,
                        &format!("/v1/blobs/{}/complete", media.hash),
                        &token,
                        &(),
                        report,
                    )
                    .await
                {
                    Ok(done) => state = answered(done)?,
                    Err(Error::Server { code, .. }) if code == "missing_chunks" => {
                        state = answered(
                            self.call(
                                Method::POST,
                                &format!("/v1/spaces/{space}/blobs"),
                                &token,
                                &announce,
                                report,
                            )
                            .await?,
                        )?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if state.complete {
                let (hash, space) = (media.hash.clone(), space.to_owned());
                blocking(store, move |s| s.mark_media_in_space(&hash, &space)).await?;
                progress(&event(&state, true));
                return Ok(());
            }
        }
        Err(Error::Server {
            status: 409,
            code: "missing_chunks".into(),
            message: "the server keeps losing chunks of this upload".into(),
        })
    }

    async fn download(
        &self,
        store: &Store,
        media: &LocalMedia,
        report: &mut TransferReport,
        progress: &impl Fn(&TransferEvent),
    ) -> Result<PathBuf> {
        let token = Self::token(store).await?;
        let dir = blocking(store, |s| Ok(s.media_temp_dir())).await?;
        let partial = dir.join(format!("{}.part", media.hash));
        let (mut file, mut have) = PartialFile::open(partial.clone()).await?;
        if have > media.size {
            file.reset().await?;
            have = 0;
        }
        let event = |done_bytes, finished| TransferEvent {
            hash: media.hash.clone(),
            direction: TransferDirection::Download,
            variant: media.variant,
            done_bytes,
            total_bytes: media.size,
            finished,
        };
        if have < media.size {
            let mut request = self
                .http
                .get(format!("{}/v1/blobs/{}", self.base, media.hash))
                .bearer_auth(&token);
            if have > 0 {
                request = request.header("range", format!("bytes={have}-"));
            }
            let mut response = request.send().await.map_err(offline)?;
            let status = response.status();
            if status == StatusCode::OK && have > 0 {
                // The server sent the whole file: start over.
                file.reset().await?;
                have = 0;
            } else if status == StatusCode::RANGE_NOT_SATISFIABLE {
                file.reset().await?;
                return Err(Error::MalformedResponse(
                    "the server's file is shorter than the item says".into(),
                ));
            } else if !status.is_success() {
                let body = response.bytes().await.unwrap_or_default();
                report.bytes_received += body.len() as u64;
                self.count(0, 0, body.len() as u64);
                return Err(error_from(status, &body));
            }
            loop {
                let piece = response
                    .chunk()
                    .await
                    .map_err(|e| Error::Offline(format!("the download was cut off: {e}")))?;
                let Some(piece) = piece else { break };
                report.bytes_received += piece.len() as u64;
                self.count(0, 0, piece.len() as u64);
                if have + piece.len() as u64 > media.size {
                    file.reset().await?;
                    return Err(Error::MalformedResponse(
                        "the server sent more bytes than the item says the file has".into(),
                    ));
                }
                file.append(piece.to_vec()).await?;
                have += piece.len() as u64;
                progress(&event(have, false));
            }
            file.sync().await?;
            if have < media.size {
                return Err(Error::Offline("the download ended early".into()));
            }
        }
        drop(file);
        let expected = media.clone();
        let adopted = blocking(store, move |s| {
            s.adopt_downloaded_media(&partial, &expected)?;
            s.media_file(&expected.hash)
        })
        .await?;
        progress(&event(media.size, true));
        Ok(adopted)
    }

    async fn call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &Req,
        report: &mut TransferReport,
    ) -> Result<Resp> {
        let bytes = quartier_protocol::encode(body).map_err(|e| Error::MalformedResponse(e.to_string()))?;
        report.bytes_sent += bytes.len() as u64;
        self.count(0, bytes.len() as u64, 0);
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", CONTENT_TYPE)
            .body(bytes)
            .send()
            .await
            .map_err(offline)?;
        self.answer(response, report).await
    }

    async fn answer<Resp: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        report: &mut TransferReport,
    ) -> Result<Resp> {
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Offline(format!("the answer was cut off: {e}")))?;
        report.bytes_received += body.len() as u64;
        self.count(0, 0, body.len() as u64);
        if status.is_success() {
            return quartier_protocol::decode(&body, MAX_DECODED_BYTES)
                .map_err(|e| Error::MalformedResponse(e.to_string()));
        }
        Err(error_from(status, &body))
    }
}

/// Everything waiting under `policy`, in queue order, and how many files it holds back.
fn plan_for(store: &Store, policy: TransferPolicy) -> Result<(Vec<Transfer>, usize)> {
    // The items are read once per plan, not once per pending file. A file on no item yet has
    // nothing to be charged to and nobody to be shown to: it is not planned.
    let references = store.media_references()?;
    let mut all = Vec::new();
    for (media, space) in store.media_uploads_due(media_uses(&references))? {
        all.push(Transfer {
            direction: TransferDirection::Upload,
            media,
            space: Some(space),
        });
    }
    for media in store.downloads_for(&references)? {
        all.push(Transfer {
            direction: TransferDirection::Download,
            media,
            space: None,
        });
    }
    all.sort_by_key(|t| (rank(t.media.variant), t.direction == TransferDirection::Download));
    let before = all.len();
    all.retain(|t| policy.allows(&t.media));
    let deferred = before - all.len();
    Ok((all, deferred))
}

/// (space, file hash) of every file the items use, originals and derived files.
fn media_uses(references: &[(String, MediaRef)]) -> impl Iterator<Item = (&str, &str)> {
    references.iter().flat_map(|(space, reference)| {
        reference
            .hashes()
            .into_iter()
            .map(move |hash| (space.as_str(), hash))
    })
}

fn done_bytes(state: &UploadState) -> u64 {
    state
        .received
        .iter()
        .filter_map(|i| chunk_range(state.size, state.chunk_size, *i))
        .map(|(s, e)| e - s)
        .sum()
}

/// Runs file work on tokio's blocking pool: reads, writes and `sync_all` never stall the
/// runtime's workers (the FFI runtime has two).
async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::invalid("transfer", format!("worker failed: {e}")))?
}

/// A partial download in the media temp folder; every operation runs on the blocking pool
/// (the file moves to the worker and back).
struct PartialFile {
    file: Option<File>,
}

impl PartialFile {
    /// Opens (creating) the file for appending; answers it and its length.
    async fn open(path: PathBuf) -> Result<(PartialFile, u64)> {
        on_pool(move || {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| media_io("opening a partial download", e))?;
            let len = file
                .metadata()
                .map_err(|e| media_io("reading a partial download", e))?
                .len();
            Ok((PartialFile { file: Some(file) }, len))
        })
        .await
    }

    async fn with<T: Send + 'static>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&mut File) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut file = self.file.take().ok_or_else(|| Error::MediaIo {
            op,
            reason: "an earlier operation on the file did not finish".into(),
        })?;
        let (file, result) = on_pool(move || {
            let result = f(&mut file);
            Ok((file, result))
        })
        .await?;
        self.file = Some(file);
        result.map_err(|e| media_io(op, e))
    }

    async fn reset(&mut self) -> Result<()> {
        self.with("resetting a partial download", |f| f.set_len(0)).await
    }

    async fn append(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.with("writing a partial download", move |f| f.write_all(&bytes))
            .await
    }

    async fn sync(&mut self) -> Result<()> {
        self.with("syncing a download", |f| f.sync_all()).await
    }
}

fn media_io(op: &'static str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::StorageFull {
        Error::StorageFull
    } else {
        Error::MediaIo {
            op,
            reason: e.to_string(),
        }
    }
}

fn read_range(path: &std::path::Path, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut file = std::fs::File::open(path).map_err(|e| media_io("opening a file to upload", e))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| media_io("reading a file to upload", e))?;
    let mut bytes = Vec::with_capacity((end - start) as usize);
    file.take(end - start)
        .read_to_end(&mut bytes)
        .map_err(|e| media_io("reading a file to upload", e))?;
    if (bytes.len() as u64) < end - start {
        return Err(Error::MediaIo {
            op: "reading a file to upload",
            reason: "the file is shorter than its record says".into(),
        });
    }
    Ok(bytes)
}

impl Store {
    /// (space, reference) of every live item referencing `hash`, oldest item first.
    fn referencing(&self, hash: &str) -> Result<Vec<(String, MediaRef)>> {
        let wanted = hash.to_owned();
        Ok(self
            .media_references()?
            .into_iter()
            .filter(|(_, r)| r.hashes().contains(&wanted.as_str()))
            .collect())
    }

    /// (space, reference) of every media reference of every item that may leave the device
    /// (not deleted, not a draft, not author-only: their files stay here), oldest item first.
    fn media_references(&self) -> Result<Vec<(String, MediaRef)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT i.space_id, m.value FROM items i, json_each(i.json, '$.media') m
                 WHERE i.status NOT IN ('deleted', 'draft') AND i.audience != 'author_only'
                 ORDER BY i.created_at, i.id, m.key",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (space, json) = row?;
                // A reference this core cannot read is skipped, not fatal.
                if let Ok(reference) = serde_json::from_str::<MediaRef>(&json) {
                    out.push((space, reference));
                }
            }
            Ok(out)
        })
    }

    /// Files that items in the store reference and that are not on this device, each once.
    pub fn media_to_download(&self) -> Result<Vec<LocalMedia>> {
        self.downloads_for(&self.media_references()?)
    }

    fn downloads_for(&self, references: &[(String, MediaRef)]) -> Result<Vec<LocalMedia>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (_, reference) in references {
            for media in LocalMedia::for_reference(reference) {
                if !is_blob_hash(&media.hash) || !seen.insert(media.hash.clone()) {
                    continue;
                }
                let known = self.media_info(&media.hash)?;
                if !known.as_ref().is_some_and(|m| m.present) {
                    out.push(media);
                }
            }
        }
        Ok(out)
    }

    /// What the store knows or expects of `hash`: its own record, else the record an item's
    /// reference implies.
    fn media_wanted(&self, hash: &str) -> Result<LocalMedia> {
        if let Some(media) = self.media_info(hash)? {
            if media.present {
                return Ok(media);
            }
        }
        self.referencing(hash)?
            .into_iter()
            .flat_map(|(_, r)| LocalMedia::for_reference(&r))
            .find(|m| m.hash == hash)
            .ok_or_else(|| Error::NotFound {
                what: "media",
                id: hash.to_owned(),
            })
    }
}
