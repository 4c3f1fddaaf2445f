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
//! This file holds the plan (what waits, in which order, under which policy) and the driver:
//! every decision of a run is `TransferSession`'s (`transfer_session.rs`, sans-IO); the queue
//! carries its requests through the client's [`HttpTransport`] and runs its store and file
//! work on blocking threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use quartier_protocol::blobs::{is_blob_hash, BlobVariant};

use super::client::{blocking, SyncClient};
use super::http::{BodyStream, HttpTransport};
use super::transfer_session::{TransferEffect, TransferInput, TransferOutcome, TransferSession};
use crate::error::{Error, Result};
use crate::media::{LocalMedia, MediaVariant};
use crate::model::MediaRef;
use crate::store::Store;

/// What the app allows on the current link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
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
                .is_some_and(|max| media.size_bytes() <= max)
    }
}

/// The variant an upload is announced as.
pub(super) fn blob_variant(variant: MediaVariant) -> BlobVariant {
    match variant {
        MediaVariant::Original => BlobVariant::Original,
        MediaVariant::Preview => BlobVariant::Preview,
        MediaVariant::Thumbnail => BlobVariant::Thumbnail,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
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
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct TransferEvent {
    pub hash: String,
    pub direction: TransferDirection,
    pub variant: MediaVariant,
    /// Bytes of the file the server (upload) or this device (download) holds now.
    /// Signed because it crosses the FFI; never negative.
    pub done_bytes: i64,
    pub total_bytes: i64,
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
pub struct TransferQueue {
    transport: Arc<dyn HttpTransport>,
    policy: Mutex<TransferPolicy>,
    traffic: [AtomicU64; 3],
}

impl std::fmt::Debug for TransferQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferQueue")
            .field("policy", &self.policy())
            .field("traffic", &self.traffic())
            .finish_non_exhaustive()
    }
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

impl TransferQueue {
    /// A queue for the server `client` talks to, over the same kind of carrier: reqwest
    /// trusting the same authorities (without the sync's overall timeout: an original on a slow
    /// link takes long), or the app's own transport.
    pub fn new(client: &SyncClient) -> Result<TransferQueue> {
        Ok(TransferQueue {
            transport: client.media_transport()?,
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

    fn count(&self, moved: TransferTraffic) {
        let [c, s, r] = &self.traffic;
        c.fetch_add(moved.chunks_sent, Ordering::Relaxed);
        s.fetch_add(moved.bytes_sent, Ordering::Relaxed);
        r.fetch_add(moved.bytes_received, Ordering::Relaxed);
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
        let policy = self.policy();
        let outcome = self
            .drive(store, &progress, move |s, number| {
                let (plan, deferred) = plan_for(s, policy)?;
                Ok(TransferSession::run(s, plan, deferred, policy.metered, number))
            })
            .await?;
        Ok(outcome.report)
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
        let transfer = Transfer {
            direction: TransferDirection::Download,
            media,
            space: None,
        };
        let outcome = self
            .drive(store, &progress, move |s, number| {
                Ok(TransferSession::one(s, vec![transfer], number))
            })
            .await?;
        outcome
            .file
            .ok_or_else(|| Error::invalid("transfer", "the download ended without its file"))
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
        let transfers = due
            .into_iter()
            .map(|space| Transfer {
                direction: TransferDirection::Upload,
                media: media.clone(),
                space: Some(space),
            })
            .collect();
        self.drive(store, &progress, move |s, number| {
            Ok(TransferSession::one(s, transfers, number))
        })
        .await?;
        Ok(())
    }

    /// Drives one transfer session: carries its requests (downloads streamed, each piece fed
    /// to the session as it arrives), reports its progress, counts its traffic. It decides
    /// nothing.
    async fn drive(
        &self,
        store: &Store,
        progress: &impl Fn(&TransferEvent),
        start: impl FnOnce(&Store, u64) -> Result<(TransferSession, Vec<TransferEffect>)> + Send + 'static,
    ) -> Result<TransferOutcome> {
        // Unique in the process, so an answer can never be taken for another run's.
        static SESSIONS: AtomicU64 = AtomicU64::new(0);
        let number = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let (mut session, mut effects) = blocking(store, move |s| start(s, number)).await?;
        // The body of the download in flight.
        let mut body: Option<(super::RequestId, Box<dyn BodyStream>)> = None;
        loop {
            self.count(session.take_traffic());
            let mut next = None;
            for effect in effects {
                match effect {
                    TransferEffect::Send { id, request } => next = Some((id, request, false)),
                    TransferEffect::Fetch { id, request } => next = Some((id, request, true)),
                    TransferEffect::Progress(event) => progress(&event),
                    TransferEffect::Done(result) => return result,
                }
            }
            let input = match next {
                Some((request, http, false)) => {
                    body = None;
                    match self.transport.send(http).await {
                        Ok(response) => TransferInput::Answered { request, response },
                        Err(error) => TransferInput::Failed { request, error },
                    }
                }
                Some((request, http, true)) => match self.transport.send_streaming(http).await {
                    Ok(streamed) => {
                        body = Some((request, streamed.body));
                        TransferInput::Started {
                            request,
                            status: streamed.status,
                        }
                    }
                    Err(error) => TransferInput::Failed { request, error },
                },
                None => match &mut body {
                    Some((request, stream)) if session.in_flight() == Some(*request) => {
                        let request = *request;
                        match stream.next_piece().await {
                            Ok(Some(bytes)) => TransferInput::Piece { request, bytes },
                            Ok(None) => TransferInput::Ended { request },
                            Err(error) => TransferInput::Failed { request, error },
                        }
                    }
                    _ => {
                        return Err(Error::invalid(
                            "transfer",
                            "the session neither sent nor finished",
                        ))
                    }
                },
            };
            (session, effects) = blocking(store, move |s| {
                let effects = session.handle(s, input);
                Ok((session, effects))
            })
            .await?;
        }
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
                "SELECT i.space_id, m.reference FROM item_media m JOIN items i ON i.id = m.item
                 WHERE i.status NOT IN ('deleted', 'draft') AND i.audience != 'author_only'
                 ORDER BY i.created_at, i.id, m.position",
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
