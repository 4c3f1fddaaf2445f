//! Sans-IO: one run of the media transfer queue, as a state machine ([`TransferSession`]).
//!
//! It owns every decision of a run — the order (thumbnails, previews, originals; uploads before
//! downloads of a rank), the metered-link check of a download's real size, announce → missing
//! chunks → complete (and announcing again when the server lost chunks), resuming a download
//! at the byte where it stopped, which failures end the run and which only skip a file — and
//! does no network I/O: it hands out requests and is fed their answers, a download's body
//! piece by piece as it arrives (so a cut keeps every byte that arrived). Like the sync session
//! it reads the store and the media files itself, synchronously: drivers on an async runtime
//! call it on a blocking thread. The driver is `TransferQueue` (`transfer.rs`).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use quartier_protocol::blobs::{
    chunk_range, missing_chunks, AnnounceBlob, UploadState, BLOB_CHUNK_BYTES, BLOB_CONTENT_TYPE,
};

use super::http::{decode_answer, encode, refusal, HttpMethod, HttpRequest, HttpResponse, TransportError};
use super::session::RequestId;
use super::transfer::{
    blob_variant, Transfer, TransferDirection, TransferEvent, TransferReport, TransferTraffic,
};
use crate::error::{Error, Result};
use crate::media::sealed::{MediaKey, PartCipher};
use crate::media::{saturating_i64, LocalMedia};
use crate::store::Store;

/// What happened to the request in flight.
#[derive(Debug)]
pub enum TransferInput {
    /// A whole answer, to a request handed out with [`TransferEffect::Send`].
    Answered {
        request: RequestId,
        response: HttpResponse,
    },
    /// The status and headers of a streamed answer ([`TransferEffect::Fetch`]); its body follows
    /// as `Piece`s, then `Ended`.
    Started {
        request: RequestId,
        status: u16,
    },
    Piece {
        request: RequestId,
        bytes: Vec<u8>,
    },
    Ended {
        request: RequestId,
    },
    /// No (whole) answer: no link, a timeout, cut off.
    Failed {
        request: RequestId,
        error: TransportError,
    },
}

/// What the driver is to do, in order.
#[derive(Debug)]
pub enum TransferEffect {
    /// Send this request and feed back its whole answer.
    Send {
        id: RequestId,
        request: HttpRequest,
    },
    /// Send this request and feed back its answer as it streams in (a download). Stop reading
    /// it once the session no longer has it in flight.
    Fetch {
        id: RequestId,
        request: HttpRequest,
    },
    Progress(TransferEvent),
    /// The run is over.
    Done(Result<TransferOutcome>),
}

/// What a finished run did.
#[derive(Debug, Default)]
pub struct TransferOutcome {
    pub report: TransferReport,
    /// The file fetched, for a run started with [`TransferSession::one`].
    pub file: Option<PathBuf>,
}

/// One file to move, and whether its real size is checked first (a download on a metered link).
#[derive(Debug)]
struct Job {
    transfer: Transfer,
    check_size: bool,
}

/// Where the file being moved stands, and what the request in flight is.
#[derive(Debug)]
enum Stage {
    /// `HEAD /v1/blobs/{hash}`: the real size of a download on a metered link.
    Size { media: LocalMedia },
    /// `POST /v1/spaces/{space}/blobs`.
    Announce { up: Upload },
    /// `PUT /v1/blobs/{hash}/chunks/{index}`; `left` are the chunks still to send this round
    /// (last first).
    Chunk { up: Upload, left: Vec<u32> },
    /// `POST /v1/blobs/{hash}/complete`.
    Complete { up: Upload },
    /// `GET /v1/blobs/{hash}` (from `have`, if a part arrived before).
    Download { down: Download },
}

#[derive(Debug)]
struct Upload {
    media: LocalMedia,
    space: String,
    announce: AnnounceBlob,
    /// What the server holds, as it last said.
    state: UploadState,
    /// Rounds of chunks so far: a second only if the server lost chunks it had acknowledged.
    round: u32,
}

#[derive(Debug)]
struct Download {
    media: LocalMedia,
    partial: PathBuf,
    file: File,
    have: u64,
    /// The status of a refused download, whose body (an `ErrorBody`) is being collected.
    refused: Option<(u16, Vec<u8>)>,
    /// In an encrypted store: the media key and the cipher the pieces are written with
    /// (`media::sealed::PartCipher`), so that no downloaded byte is plain at rest.
    sealing: Option<(MediaKey, PartCipher)>,
}

/// Rounds of chunks an upload gets: a second only if the server lost chunks it had
/// acknowledged.
const UPLOAD_ROUNDS: u32 = 2;

/// How a run ends when a file fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The queue's run: a file the server refuses is reported and the run goes on.
    Run,
    /// Files the app asked for: any failure ends it.
    One,
}

/// Where a step left the run.
enum Flow {
    /// A request is in flight.
    Sent,
    /// The current file is done (moved, or held back); on to the next.
    FileDone,
}

/// One run of the transfer queue (see the module's documentation).
#[derive(Debug)]
pub struct TransferSession {
    mode: Mode,
    jobs: VecDeque<Job>,
    /// The hash of the file being moved.
    current: Option<String>,
    token: Option<String>,
    session: u64,
    next_seq: u64,
    in_flight: Option<(RequestId, Stage)>,
    report: TransferReport,
    /// Moved since the driver last took it.
    traffic: TransferTraffic,
    file: Option<PathBuf>,
    done: bool,
}

impl TransferSession {
    /// A run over `plan` (already in queue order, held-back files counted in `deferred`);
    /// downloads check their real size first when `metered`. `session` numbers the requests;
    /// the driver never reuses it.
    pub fn run(
        store: &Store,
        plan: Vec<Transfer>,
        deferred: usize,
        metered: bool,
        session: u64,
    ) -> (TransferSession, Vec<TransferEffect>) {
        let jobs = plan
            .into_iter()
            .map(|transfer| Job {
                check_size: metered && transfer.direction == TransferDirection::Download,
                transfer,
            })
            .collect();
        let mut run = TransferSession::new(Mode::Run, jobs, session);
        run.report.deferred = deferred;
        let mut effects = Vec::new();
        run.next(store, &mut effects);
        (run, effects)
    }

    /// Moves the given files whatever the policy (the app is showing one, the person asked to
    /// upload one); the first failure ends it.
    pub fn one(
        store: &Store,
        transfers: Vec<Transfer>,
        session: u64,
    ) -> (TransferSession, Vec<TransferEffect>) {
        let jobs = transfers
            .into_iter()
            .map(|transfer| Job {
                transfer,
                check_size: false,
            })
            .collect();
        let mut run = TransferSession::new(Mode::One, jobs, session);
        let mut effects = Vec::new();
        run.next(store, &mut effects);
        (run, effects)
    }

    fn new(mode: Mode, jobs: VecDeque<Job>, session: u64) -> Self {
        TransferSession {
            mode,
            jobs,
            current: None,
            token: None,
            session,
            next_seq: 0,
            in_flight: None,
            report: TransferReport::default(),
            traffic: TransferTraffic::default(),
            file: None,
            done: false,
        }
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<RequestId> {
        self.in_flight.as_ref().map(|(id, _)| *id)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// What moved since the last call (the queue's counters include interrupted runs).
    pub fn take_traffic(&mut self) -> TransferTraffic {
        std::mem::take(&mut self.traffic)
    }

    /// Feeds what happened to the request in flight; returns what to do next.
    pub fn handle(&mut self, store: &Store, input: TransferInput) -> Vec<TransferEffect> {
        let id = match &input {
            TransferInput::Answered { request, .. }
            | TransferInput::Started { request, .. }
            | TransferInput::Piece { request, .. }
            | TransferInput::Ended { request }
            | TransferInput::Failed { request, .. } => *request,
        };
        let mut effects = Vec::new();
        if self.done || self.in_flight() != Some(id) {
            return effects;
        }
        let Some((_, stage)) = self.in_flight.take() else {
            return effects;
        };
        match self.step(store, id, stage, input, &mut effects) {
            Ok(Flow::Sent) => {}
            Ok(Flow::FileDone) => self.next(store, &mut effects),
            Err(e) => {
                if !self.fail(e, &mut effects) {
                    self.next(store, &mut effects);
                }
            }
        }
        effects
    }

    /// Starts the next file that needs a request, or ends the run.
    fn next(&mut self, store: &Store, effects: &mut Vec<TransferEffect>) {
        loop {
            let Some(job) = self.jobs.pop_front() else {
                self.done = true;
                effects.push(TransferEffect::Done(Ok(TransferOutcome {
                    report: std::mem::take(&mut self.report),
                    file: self.file.take(),
                })));
                return;
            };
            self.current = Some(job.transfer.media.hash.clone());
            match self.start(store, job, effects) {
                Ok(Flow::Sent) => return,
                Ok(Flow::FileDone) => {}
                Err(e) => {
                    if self.fail(e, effects) {
                        return;
                    }
                }
            }
        }
    }

    /// Records a failed file; `true` when the failure ends the run (the link, the credentials,
    /// a full disk; or any failure of a file the app asked for).
    fn fail(&mut self, e: Error, effects: &mut Vec<TransferEffect>) -> bool {
        if self.mode == Mode::One || ends_run(&e) {
            self.done = true;
            effects.push(TransferEffect::Done(Err(e)));
            return true;
        }
        if let Some(hash) = self.current.take() {
            self.report.failed.push((hash, e.to_string()));
        }
        false
    }

    fn start(&mut self, store: &Store, job: Job, effects: &mut Vec<TransferEffect>) -> Result<Flow> {
        let media = job.transfer.media;
        match job.transfer.direction {
            TransferDirection::Download if job.check_size => {
                if blob_variant(media.variant).max_bytes().is_none() {
                    self.report.deferred += 1;
                    return Ok(Flow::FileDone);
                }
                let request = HttpRequest::bare(
                    HttpMethod::Head,
                    format!("/v1/blobs/{}", media.hash),
                    Some(&self.token(store)?),
                );
                self.send(request, Stage::Size { media }, false, effects);
                Ok(Flow::Sent)
            }
            TransferDirection::Download => self.start_download(store, media, effects),
            TransferDirection::Upload => {
                let space = job.transfer.space.ok_or_else(|| {
                    Error::invalid(
                        "media",
                        "the file is not on any item yet, so no space would take it",
                    )
                })?;
                let announce = AnnounceBlob {
                    hash: media.hash.clone(),
                    size: media.size_bytes(),
                    mime_type: media.mime_type.clone(),
                    chunk_size: BLOB_CHUNK_BYTES,
                    variant: Some(blob_variant(media.variant)),
                };
                self.announce(store, media, space, announce, 0, effects)
            }
        }
    }

    fn step(
        &mut self,
        store: &Store,
        id: RequestId,
        stage: Stage,
        input: TransferInput,
        effects: &mut Vec<TransferEffect>,
    ) -> Result<Flow> {
        if let Stage::Download { down } = stage {
            return self.downloading(store, id, down, input, effects);
        }
        let response = match input {
            TransferInput::Answered { response, .. } => response,
            TransferInput::Failed { error, .. } => return Err(error.into()),
            _ => return Err(Error::invalid("transfer", "a whole answer came as a stream")),
        };
        self.received(response.body.len() as u64);
        match stage {
            Stage::Size { media } => self.sized(store, media, &response, effects),
            Stage::Announce { mut up } => {
                up.state = checked(&up.announce, decode_answer(&response)?)?;
                self.chunk_round(store, up, effects)
            }
            Stage::Chunk { mut up, left } => {
                up.state = checked(&up.announce, decode_answer(&response)?)?;
                effects.push(TransferEffect::Progress(upload_event(&up, false)));
                self.next_chunk(store, up, left, effects)
            }
            Stage::Complete { mut up } => match decode_answer::<UploadState>(&response) {
                Ok(state) => {
                    up.state = checked(&up.announce, state)?;
                    up.round += 1;
                    self.chunk_round(store, up, effects)
                }
                // The server lost chunks it had acknowledged: ask again what it holds.
                Err(Error::Server { code, .. }) if code == "missing_chunks" => {
                    let Upload {
                        media,
                        space,
                        announce,
                        round,
                        ..
                    } = up;
                    self.announce(store, media, space, announce, round + 1, effects)
                }
                Err(e) => Err(e),
            },
            Stage::Download { .. } => Err(Error::invalid("transfer", "a download without its stage")),
        }
    }

    /// The answer to a metered download's `HEAD`: the server's real size, not the one the item
    /// (written by another member) declares, must be within the variant's bound. A real size
    /// other than the declared one is an error (the file would fail its hash check anyway).
    fn sized(
        &mut self,
        store: &Store,
        media: LocalMedia,
        response: &HttpResponse,
        effects: &mut Vec<TransferEffect>,
    ) -> Result<Flow> {
        if !response.is_success() {
            return Err(refusal(response));
        }
        let real = response
            .content_length
            .ok_or_else(|| Error::MalformedResponse("a blob's HEAD answer without Content-Length".into()))?;
        let max = blob_variant(media.variant).max_bytes().unwrap_or(0);
        if real > max {
            self.report.deferred += 1;
            return Ok(Flow::FileDone);
        }
        if real != media.size_bytes() {
            return Err(Error::MalformedResponse(format!(
                "the server's file has {real} bytes, the item says {}",
                media.size
            )));
        }
        self.start_download(store, media, effects)
    }

    fn announce(
        &mut self,
        store: &Store,
        media: LocalMedia,
        space: String,
        announce: AnnounceBlob,
        round: u32,
        effects: &mut Vec<TransferEffect>,
    ) -> Result<Flow> {
        let request = HttpRequest::wire(
            HttpMethod::Post,
            format!("/v1/spaces/{space}/blobs"),
            Some(&self.token(store)?),
            encode(&announce)?,
        );
        // Nothing known of the server's side until it answers.
        let state = UploadState {
            hash: announce.hash.clone(),
            size: announce.size,
            chunk_size: announce.chunk_size,
            received: Vec::new(),
            complete: false,
        };
        let up = Upload {
            media,
            space,
            announce,
            state,
            round,
        };
        self.send(request, Stage::Announce { up }, false, effects);
        Ok(Flow::Sent)
    }

    /// The top of a round: done if the server holds every chunk; else the chunks it misses, then
    /// `complete`; a third round means the server keeps losing chunks.
    fn chunk_round(&mut self, store: &Store, up: Upload, effects: &mut Vec<TransferEffect>) -> Result<Flow> {
        if up.state.complete {
            store.mark_media_in_space(&up.media.hash, &up.space)?;
            effects.push(TransferEffect::Progress(upload_event(&up, true)));
            self.report.uploaded.push(up.media.hash);
            return Ok(Flow::FileDone);
        }
        if up.round >= UPLOAD_ROUNDS {
            return Err(Error::Server {
                status: 409,
                code: "missing_chunks".into(),
                message: "the server keeps losing chunks of this upload".into(),
            });
        }
        let mut left = missing_chunks(&up.state);
        left.reverse();
        self.next_chunk(store, up, left, effects)
    }

    fn next_chunk(
        &mut self,
        store: &Store,
        up: Upload,
        mut left: Vec<u32>,
        effects: &mut Vec<TransferEffect>,
    ) -> Result<Flow> {
        let token = self.token(store)?;
        let Some(index) = left.pop() else {
            let request = HttpRequest::wire(
                HttpMethod::Post,
                format!("/v1/blobs/{}/complete", up.media.hash),
                Some(&token),
                encode(&())?,
            );
            self.send(request, Stage::Complete { up }, false, effects);
            return Ok(Flow::Sent);
        };
        let (start, end) = chunk_range(up.media.size_bytes(), BLOB_CHUNK_BYTES, index)
            .ok_or_else(|| Error::MalformedResponse(format!("chunk {index} is past the end")))?;
        // Only now are the bytes needed: a file this person uploaded before is claimed in a
        // further space without them (and may have been evicted here meanwhile).
        let bytes = read_range(store, &up.media.hash, start, end)?;
        let request = HttpRequest {
            content_type: Some(BLOB_CONTENT_TYPE),
            body: bytes,
            ..HttpRequest::bare(
                HttpMethod::Put,
                format!("/v1/blobs/{}/chunks/{index}", up.media.hash),
                Some(&token),
            )
        };
        self.report.chunks_sent += 1;
        self.traffic.chunks_sent += 1;
        self.send(request, Stage::Chunk { up, left }, false, effects);
        Ok(Flow::Sent)
    }

    /// Opens (creating) the partial file of a download and asks for the rest of it.
    fn start_download(
        &mut self,
        store: &Store,
        media: LocalMedia,
        effects: &mut Vec<TransferEffect>,
    ) -> Result<Flow> {
        let token = self.token(store)?;
        let partial = store.media_temp_dir().join(format!("{}.part", media.hash));
        let (file, have, sealing) = match store.media_key() {
            Some(key) => {
                let (file, cipher, have) = PartCipher::open(key, &partial)?;
                (file, have, Some((key.clone(), cipher)))
            }
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&partial)
                    .map_err(|e| media_io("opening a partial download", e))?;
                let have = file
                    .metadata()
                    .map_err(|e| media_io("reading a partial download", e))?
                    .len();
                (file, have, None)
            }
        };
        let mut down = Download {
            media,
            partial,
            file,
            have,
            refused: None,
            sealing,
        };
        if down.have > down.media.size_bytes() {
            down.reset()?;
        }
        if down.have == down.media.size_bytes() {
            return self.downloaded(store, down, effects);
        }
        let mut request = HttpRequest::bare(
            HttpMethod::Get,
            format!("/v1/blobs/{}", down.media.hash),
            Some(&token),
        );
        if down.have > 0 {
            request.range_from = Some(down.have);
        }
        self.send(request, Stage::Download { down }, true, effects);
        Ok(Flow::Sent)
    }

    /// A download's answer as it streams in: each piece is appended to the partial file as it
    /// arrives, so a cut keeps every byte that came.
    fn downloading(
        &mut self,
        store: &Store,
        id: RequestId,
        mut down: Download,
        input: TransferInput,
        effects: &mut Vec<TransferEffect>,
    ) -> Result<Flow> {
        match input {
            TransferInput::Started { status, .. } => {
                if status == 200 && down.have > 0 {
                    // The server sent the whole file: start over.
                    down.reset()?;
                } else if status == 416 {
                    down.reset()?;
                    return Err(Error::MalformedResponse(
                        "the server's file is shorter than the item says".into(),
                    ));
                } else if !(200..300).contains(&status) {
                    down.refused = Some((status, Vec::new()));
                }
            }
            TransferInput::Piece { bytes, .. } => {
                self.received(bytes.len() as u64);
                if let Some((_, body)) = &mut down.refused {
                    body.extend_from_slice(&bytes);
                } else {
                    if down.have + bytes.len() as u64 > down.media.size_bytes() {
                        down.reset()?;
                        return Err(Error::MalformedResponse(
                            "the server sent more bytes than the item says the file has".into(),
                        ));
                    }
                    match &mut down.sealing {
                        Some((_, cipher)) => {
                            let mut sealed = bytes.to_vec();
                            cipher.apply_at(down.have, &mut sealed);
                            down.file.write_all(&sealed)
                        }
                        None => down.file.write_all(&bytes),
                    }
                    .map_err(|e| media_io("writing a partial download", e))?;
                    down.have += bytes.len() as u64;
                    effects.push(TransferEffect::Progress(download_event(
                        &down.media,
                        down.have,
                        false,
                    )));
                }
            }
            TransferInput::Ended { .. } => {
                if let Some((status, body)) = down.refused {
                    return Err(refusal(&HttpResponse {
                        status,
                        body,
                        ..Default::default()
                    }));
                }
                down.file
                    .sync_all()
                    .map_err(|e| media_io("syncing a download", e))?;
                if down.have < down.media.size_bytes() {
                    return Err(Error::Offline("the download ended early".into()));
                }
                return self.downloaded(store, down, effects);
            }
            TransferInput::Failed { error, .. } => {
                return Err(Error::Offline(format!("the download was cut off: {}", error.0)));
            }
            TransferInput::Answered { .. } => {
                return Err(Error::invalid(
                    "transfer",
                    "a download came whole, not as a stream",
                ));
            }
        }
        self.in_flight = Some((id, Stage::Download { down }));
        Ok(Flow::Sent)
    }

    /// Adopts a whole download into the media store (which checks its hash).
    fn downloaded(
        &mut self,
        store: &Store,
        down: Download,
        effects: &mut Vec<TransferEffect>,
    ) -> Result<Flow> {
        let Download {
            media, partial, file, ..
        } = down;
        drop(file);
        store.adopt_downloaded_media(&partial, &media)?;
        let path = store.media_file(&media.hash)?;
        effects.push(TransferEffect::Progress(download_event(
            &media,
            media.size_bytes(),
            true,
        )));
        self.report.downloaded.push(media.hash);
        self.file = Some(path);
        Ok(Flow::FileDone)
    }

    /// Hands out a request, counting its body.
    fn send(
        &mut self,
        request: HttpRequest,
        stage: Stage,
        streamed: bool,
        effects: &mut Vec<TransferEffect>,
    ) {
        let id = RequestId {
            session: self.session,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let sent = request.body.len() as u64;
        self.report.bytes_sent += sent;
        self.traffic.bytes_sent += sent;
        self.in_flight = Some((id, stage));
        effects.push(if streamed {
            TransferEffect::Fetch { id, request }
        } else {
            TransferEffect::Send { id, request }
        });
    }

    fn received(&mut self, bytes: u64) {
        self.report.bytes_received += bytes;
        self.traffic.bytes_received += bytes;
    }

    /// The device's bearer token, read once a request needs it (a run with nothing to move
    /// works unregistered).
    fn token(&mut self, store: &Store) -> Result<String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let token = store.account()?.ok_or(Error::NotRegistered)?.token().to_owned();
        self.token = Some(token.clone());
        Ok(token)
    }
}

impl Download {
    fn reset(&mut self) -> Result<()> {
        match &mut self.sealing {
            // A fresh nonce: the same offsets will hold other bytes now.
            Some((key, cipher)) => *cipher = PartCipher::start(key, &mut self.file)?,
            None => self
                .file
                .set_len(0)
                .map_err(|e| media_io("resetting a partial download", e))?,
        }
        self.have = 0;
        Ok(())
    }
}

/// The server's upload state, checked against what was announced.
fn checked(announce: &AnnounceBlob, state: UploadState) -> Result<UploadState> {
    state
        .check_answers(announce)
        .map_err(|e| Error::MalformedResponse(format!("upload of {}: {e}", announce.hash)))?;
    Ok(state)
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

fn upload_event(up: &Upload, finished: bool) -> TransferEvent {
    TransferEvent {
        hash: up.media.hash.clone(),
        direction: TransferDirection::Upload,
        variant: up.media.variant,
        done_bytes: saturating_i64(done_bytes(&up.state)),
        total_bytes: up.media.size,
        finished,
    }
}

fn download_event(media: &LocalMedia, done_bytes: u64, finished: bool) -> TransferEvent {
    TransferEvent {
        hash: media.hash.clone(),
        direction: TransferDirection::Download,
        variant: media.variant,
        done_bytes: saturating_i64(done_bytes),
        total_bytes: media.size,
        finished,
    }
}

fn done_bytes(state: &UploadState) -> u64 {
    state
        .received
        .iter()
        .filter_map(|i| chunk_range(state.size, state.chunk_size, *i))
        .map(|(s, e)| e - s)
        .sum()
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

/// The plaintext bytes `start..end` of a file to upload (decrypted in an encrypted store).
fn read_range(store: &Store, hash: &str, start: u64, end: u64) -> Result<Vec<u8>> {
    let bytes = store.read_media_range(hash, start, end)?;
    if (bytes.len() as u64) < end - start {
        return Err(Error::MediaIo {
            op: "reading a file to upload",
            reason: "the file is shorter than its record says".into(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MediaVariant;
    use crate::sync::account::registered_store as registered;

    fn fetched(effects: &[TransferEffect]) -> (RequestId, HttpRequest) {
        effects
            .iter()
            .find_map(|e| match e {
                TransferEffect::Fetch { id, request } => Some((*id, request.clone())),
                _ => None,
            })
            .expect("a download request")
    }

    /// A cut keeps every piece that arrived; the next run asks for the rest only and adopts
    /// the whole file.
    #[test]
    fn a_cut_download_keeps_what_arrived_and_resumes_at_that_byte() {
        let (_dir, store) = registered();
        cut_and_resume(&store);
    }

    /// The same in an encrypted store: the partial file holds the bytes that came, encrypted
    /// (none of them plain at rest), and the adopted file is sealed and reads back whole.
    #[test]
    fn a_cut_download_of_an_encrypted_store_leaves_no_plaintext_and_resumes_at_that_byte() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = crate::StoreOptions {
            store_key: Some(crate::StoreKey::new([7; 32])),
            ..crate::StoreOptions::default()
        };
        let store = Store::open(dir.path().join("phone.db"), options).expect("store");
        store
            .save_account(&crate::sync::Account {
                server: "sim://server".into(),
                device: uuid::Uuid::now_v7(),
                person: crate::model::PersonId::new(),
                token: "t".into(),
            })
            .expect("account");
        cut_and_resume(&store);
    }

    fn cut_and_resume(store: &Store) {
        let store = store.clone();
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let media = LocalMedia {
            hash: blake3::hash(&bytes).to_hex().to_string(),
            mime_type: "application/octet-stream".into(),
            size: saturating_i64(bytes.len() as u64),
            variant: MediaVariant::Original,
            of: None,
            on_server: true,
            pinned: false,
            present: false,
        };
        let download = || Transfer {
            direction: TransferDirection::Download,
            media: media.clone(),
            space: None,
        };

        let (mut run, effects) = TransferSession::one(&store, vec![download()], 1);
        let (request, http) = fetched(&effects);
        assert_eq!(http.range_from, None);
        assert!(run
            .handle(&store, TransferInput::Started { request, status: 200 })
            .is_empty());
        let effects = run.handle(
            &store,
            TransferInput::Piece {
                request,
                bytes: bytes[..4_000].to_vec(),
            },
        );
        assert!(matches!(
            effects.as_slice(),
            [TransferEffect::Progress(TransferEvent {
                done_bytes: 4_000,
                ..
            })]
        ));
        let effects = run.handle(
            &store,
            TransferInput::Failed {
                request,
                error: TransportError("cut".into()),
            },
        );
        assert!(matches!(
            effects.as_slice(),
            [TransferEffect::Done(Err(Error::Offline(_)))]
        ));
        assert_eq!(run.take_traffic().bytes_received, 4_000);
        let partial = store.media_temp_dir().join(format!("{}.part", media.hash));
        let at_rest = std::fs::read(&partial).expect("the partial download");
        let window = &bytes[1_000..1_064];
        assert_eq!(
            at_rest.windows(window.len()).any(|w| w == window),
            !store.is_encrypted(),
            "plain at rest only in a plain store"
        );

        let (mut run, effects) = TransferSession::one(&store, vec![download()], 2);
        let (request, http) = fetched(&effects);
        assert_eq!(http.range_from, Some(4_000), "resumes where the cut stopped it");
        run.handle(&store, TransferInput::Started { request, status: 206 });
        run.handle(
            &store,
            TransferInput::Piece {
                request,
                bytes: bytes[4_000..].to_vec(),
            },
        );
        let effects = run.handle(&store, TransferInput::Ended { request });
        let done = effects.iter().find_map(|e| match e {
            TransferEffect::Done(Ok(outcome)) => Some(outcome),
            _ => None,
        });
        let file = done.and_then(|o| o.file.clone()).expect("the adopted file");
        if store.is_encrypted() {
            assert!(std::fs::read(file).unwrap().starts_with(b"QRTRMED1"), "sealed");
            assert_eq!(store.read_media(&media.hash).unwrap(), bytes);
        } else {
            assert_eq!(std::fs::read(file).unwrap(), bytes);
        }
        assert!(!partial.exists(), "the partial download is gone");
    }
}
