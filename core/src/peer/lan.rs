//! The local-network transport (I/O edge): phones on the same Wi-Fi find each other with
//! DNS-SD over mDNS (`mdns-sd`) and run a [`PeerSession`] over TCP, inside a Noise channel
//! (`snow`, `Noise_NN_25519_ChaChaPoly_BLAKE2s`) whose handshake hash both devices sign in their
//! proofs: the network is not trusted for anything, neither to read nor to vouch.
//!
//! After the session, each device asks the other for the thumbnails (and small files) of the
//! items it holds and lacks ([`super::media`]).
//!
//! Opt-in per space ([`Store::set_nearby`]): only spaces a device opted in are announced and
//! synced over the local network. An announcement names no person, device or space: its
//! instance name is random, and it carries for each opted-in space a tag that changes every day
//! and that only members of the space can compute ([`space_tag`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use quartier_protocol::peer::{PeerMedia, MAX_WANTS_PER_BATCH};

use rusqlite::params;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::media;
use super::session::{PeerOptions, PeerReport, PeerRole, PeerSession};
use crate::error::{Error, Result};
use crate::media::LocalMedia;
use crate::model::SpaceId;
use crate::store::Store;

/// The DNS-SD service type devices announce.
pub const SERVICE_TYPE: &str = "_quartier._tcp.local.";
/// Frame size over the local network: one frame fits one Noise message (65 535 bytes, less the
/// 16-byte tag).
pub const LAN_FRAME_BYTES: usize = 60_000;
const NOISE_PARAMS: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
const MAX_NOISE_MESSAGE: usize = 65_535;
/// How long discovery goes on listening once a first device answered.
pub const GATHER_AFTER_FIRST: Duration = Duration::from_millis(500);
/// How long a device waits for the other's next message before it gives up.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn offline(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Offline(format!("{what}: {e}"))
}

fn noise_error(e: snow::Error) -> Error {
    Error::Peer {
        code: "malformed",
        message: format!("the encrypted channel failed: {e}"),
    }
}

/// A Noise channel over a TCP stream: each message is a big-endian `u16` length and that many
/// bytes.
struct Channel {
    stream: TcpStream,
    noise: snow::TransportState,
}

async fn write_message(stream: &mut TcpStream, bytes: &[u8]) -> Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| offline("send", "message too large"))?;
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    tokio::time::timeout(IO_TIMEOUT, stream.write_all(&out))
        .await
        .map_err(|_| offline("send", "timed out"))?
        .map_err(|e| offline("send", e))
}

async fn read_message(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut bytes = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut bytes).await?;
        Ok::<_, std::io::Error>(bytes)
    };
    tokio::time::timeout(IO_TIMEOUT, read)
        .await
        .map_err(|_| offline("receive", "the other device stopped answering"))?
        .map_err(|e| offline("receive", e))
}

impl Channel {
    /// The NN handshake: `-> e`, `<- e, ee`. Returns the channel and its handshake hash.
    async fn open(mut stream: TcpStream, initiator: bool) -> Result<(Channel, [u8; 32])> {
        let params = NOISE_PARAMS.parse().map_err(noise_error)?;
        let builder = snow::Builder::new(params);
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        let handshake = if initiator {
            let mut hs = builder.build_initiator().map_err(noise_error)?;
            let len = hs.write_message(&[], &mut buf).map_err(noise_error)?;
            write_message(&mut stream, &buf[..len]).await?;
            let answer = read_message(&mut stream).await?;
            hs.read_message(&answer, &mut buf).map_err(noise_error)?;
            hs
        } else {
            let mut hs = builder.build_responder().map_err(noise_error)?;
            let first = read_message(&mut stream).await?;
            hs.read_message(&first, &mut buf).map_err(noise_error)?;
            let len = hs.write_message(&[], &mut buf).map_err(noise_error)?;
            write_message(&mut stream, &buf[..len]).await?;
            hs
        };
        let hash: [u8; 32] = handshake
            .get_handshake_hash()
            .try_into()
            .map_err(|_| offline("handshake", "unexpected hash length"))?;
        let noise = handshake.into_transport_mode().map_err(noise_error)?;
        Ok((Channel { stream, noise }, hash))
    }

    async fn send(&mut self, plain: &[u8]) -> Result<()> {
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        let len = self.noise.write_message(plain, &mut buf).map_err(noise_error)?;
        write_message(&mut self.stream, &buf[..len]).await
    }

    async fn receive(&mut self) -> Result<Vec<u8>> {
        let cipher = read_message(&mut self.stream).await?;
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        let len = self.noise.read_message(&cipher, &mut buf).map_err(noise_error)?;
        buf.truncate(len);
        Ok(buf)
    }
}

/// Runs one session over a connected stream, inside a Noise channel, with the spaces this device
/// opted in for the local network; `progress` is told after every frame received.
pub async fn meet_over(
    store: &Store,
    stream: TcpStream,
    role: PeerRole,
    carry: bool,
    progress: &(dyn Fn(&PeerReport) + Send + Sync),
) -> Result<PeerReport> {
    let (mut channel, binding) = Channel::open(stream, role == PeerRole::Initiator).await?;
    let options = PeerOptions {
        frame_bytes: LAN_FRAME_BYTES,
        carry,
        channel_binding: Some(binding),
        only_spaces: Some(store.nearby_spaces()?.iter().map(|s| s.as_uuid()).collect()),
    };
    let (mut session, first) = PeerSession::start(store, role, options)?;
    if let Some(frame) = first {
        channel.send(&frame).await?;
    }
    loop {
        let frame = channel.receive().await?;
        let reply = session.receive(store, &frame)?;
        progress(session.report());
        match reply {
            Some(reply) => {
                channel.send(&reply).await?;
                if session.is_finished() {
                    break;
                }
            }
            None => break,
        }
    }
    // Then thumbnails: the initiator asks first, then answers.
    let (me, them) = session.readers().ok_or_else(|| Error::Peer {
        code: "protocol",
        message: "the session ended before the other device proved its key".into(),
    })?;
    let servable: HashSet<String> = media::shareable(store, &them)?
        .into_iter()
        .map(|f| f.hash)
        .collect();
    let (received, sent) = if role == PeerRole::Initiator {
        let received = ask_for_files(&mut channel, store, &me, carry).await?;
        (received, answer_for_files(&mut channel, store, &servable).await?)
    } else {
        let sent = answer_for_files(&mut channel, store, &servable).await?;
        (ask_for_files(&mut channel, store, &me, carry).await?, sent)
    };
    // Told once more when files moved (the report then counts them); otherwise the last
    // frame's report was the final one already.
    if received + sent > 0 {
        session.count_media(received, sent);
        progress(session.report());
    }
    Ok(session.report().clone())
}

fn media_stop(message: impl Into<String>) -> Error {
    Error::Peer {
        code: "malformed",
        message: message.into(),
    }
}

impl Channel {
    async fn send_media(&mut self, message: &PeerMedia) -> Result<()> {
        let bytes = quartier_protocol::encode(message).map_err(|e| media_stop(e.to_string()))?;
        self.send(&bytes).await
    }

    async fn receive_media(&mut self) -> Result<PeerMedia> {
        let bytes = self.receive().await?;
        quartier_protocol::decode(&bytes, MAX_NOISE_MESSAGE * 2).map_err(|e| media_stop(e.to_string()))
    }
}

/// Asks for the files this device lacks, batch by batch; keeps those whose content matches.
async fn ask_for_files(
    channel: &mut Channel,
    store: &Store,
    me: &media::Reader,
    carry: bool,
) -> Result<usize> {
    let wanted = media::wanted(store, me)?;
    let batches: Vec<&[LocalMedia]> = if wanted.is_empty() {
        vec![&[]]
    } else {
        wanted.chunks(MAX_WANTS_PER_BATCH).collect()
    };
    let mut received = 0;
    for (i, batch) in batches.iter().enumerate() {
        let hashes = batch.iter().map(|f| f.hash.clone()).collect();
        channel
            .send_media(&PeerMedia::Wants {
                hashes,
                last: i + 1 == batches.len(),
            })
            .await?;
        let mut open: HashMap<&str, &LocalMedia> = batch.iter().map(|f| (f.hash.as_str(), f)).collect();
        loop {
            match channel.receive_media().await? {
                PeerMedia::File { hash, bytes } => {
                    let expected = open
                        .remove(hash.as_str())
                        .ok_or_else(|| media_stop("a file that was not asked for"))?;
                    media::adopt(store, expected, &bytes, carry).map_err(|e| match e {
                        Error::MediaHashMismatch { .. } => Error::Peer {
                            code: "bad_signature",
                            message: "a file does not have the content its item names".into(),
                        },
                        other => other,
                    })?;
                    received += 1;
                }
                PeerMedia::Missing { hash } => {
                    open.remove(hash.as_str());
                }
                PeerMedia::End => break,
                _ => return Err(media_stop("an unexpected message among files")),
            }
        }
    }
    Ok(received)
}

/// Answers the other device's wants with the files it may read.
async fn answer_for_files(channel: &mut Channel, store: &Store, servable: &HashSet<String>) -> Result<usize> {
    let mut sent = 0;
    let mut asked = 0;
    loop {
        let PeerMedia::Wants { hashes, last } = channel.receive_media().await? else {
            return Err(media_stop("files asked for in another form"));
        };
        asked += hashes.len();
        if hashes.len() > MAX_WANTS_PER_BATCH || asked > media::MAX_WANTS {
            return Err(media_stop("asked for more files than a session sends"));
        }
        for hash in hashes {
            match media::serve(store, servable, &hash)? {
                Some(bytes) => {
                    channel.send_media(&PeerMedia::File { hash, bytes }).await?;
                    sent += 1;
                }
                None => channel.send_media(&PeerMedia::Missing { hash }).await?,
            }
        }
        channel.send_media(&PeerMedia::End).await?;
        if last {
            return Ok(sent);
        }
    }
}

/// Connects to a device found nearby and syncs with it.
pub async fn meet_at(
    store: &Store,
    address: SocketAddr,
    carry: bool,
    progress: &(dyn Fn(&PeerReport) + Send + Sync),
) -> Result<PeerReport> {
    let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| offline("connect", "timed out"))?
        .map_err(|e| offline("connect", e))?;
    stream.set_nodelay(true).map_err(|e| offline("connect", e))?;
    meet_over(store, stream, PeerRole::Initiator, carry, progress).await
}

/// Waits for one device to connect on `listener` and syncs with it.
pub async fn meet_next(
    store: &Store,
    listener: &TcpListener,
    carry: bool,
    progress: &(dyn Fn(&PeerReport) + Send + Sync),
) -> Result<PeerReport> {
    let (stream, _) = listener.accept().await.map_err(|e| offline("accept", e))?;
    stream.set_nodelay(true).map_err(|e| offline("accept", e))?;
    meet_over(store, stream, PeerRole::Responder, carry, progress).await
}

/// The tag of a space in announcements on `day` (days since the epoch): a keyed hash only
/// members can compute (the key derives from the space id, which strangers do not know), and
/// that changes every day, so a phone cannot be followed from one day to the next by it.
pub fn space_tag(space: SpaceId, day: i64) -> String {
    let key = blake3::derive_key("quartier nearby space tag v1", space.as_uuid().as_bytes());
    let hash = blake3::keyed_hash(&key, &day.to_be_bytes());
    hash.as_bytes()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn today() -> i64 {
    crate::store::now_ms().div_euclid(24 * 60 * 60 * 1000)
}

/// An address of a device on the local network (`ip:port`); across the FFI its text
/// (`192.168.1.20:45123`, `[fe80::1]:45123`), what `meet_at` takes.
pub type PeerAddress = SocketAddr;

// `SocketAddr` is std's, so this is a remote custom type (implemented for the core's tag only,
// as the domain's `Timestamp`); text that is not an address is refused while crossing.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(PeerAddress, String, {
    remote,
    lower: |address| address.to_string(),
    try_lift: |text| Ok(text.parse::<SocketAddr>().map_err(|e| {
        crate::QuartierError::invalid("address", format!("`{text}` is not an address with a port: {e}"))
    })?),
});

/// A device found on the local network that shares an opted-in space with this one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NearbyDevice {
    /// Its random instance name (changes with every announcement).
    pub instance: String,
    pub addresses: Vec<PeerAddress>,
}

/// This device's presence on the local network: announced while it lives.
pub struct Nearby {
    daemon: mdns_sd::ServiceDaemon,
    fullname: Option<String>,
}

fn mdns_error(e: mdns_sd::Error) -> Error {
    Error::Offline(format!("local network discovery: {e}"))
}

impl Nearby {
    /// Starts discovery (no announcement yet).
    pub fn new() -> Result<Nearby> {
        Ok(Nearby {
            daemon: mdns_sd::ServiceDaemon::new().map_err(mdns_error)?,
            fullname: None,
        })
    }

    /// Announces this device on `address` (the listener's address: the phone's Wi-Fi address
    /// and port) for its opted-in spaces. Nothing is announced when no space is opted in.
    pub fn announce(&mut self, store: &Store, address: SocketAddr) -> Result<bool> {
        self.withdraw();
        let spaces = store.nearby_spaces()?;
        if spaces.is_empty() {
            return Ok(false);
        }
        let day = today();
        let tags: Vec<String> = spaces.iter().map(|s| space_tag(*s, day)).collect();
        let mut random = [0u8; 12];
        getrandom::fill(&mut random)
            .map_err(|e| Error::invalid("announcement", format!("no randomness: {e}")))?;
        let instance: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let host = format!("{instance}.local.");
        let properties = [("v", "1".to_owned()), ("t", tags.join(","))];
        let info = mdns_sd::ServiceInfo::new(
            SERVICE_TYPE,
            &instance,
            &host,
            address.ip(),
            address.port(),
            &properties[..],
        )
        .map_err(mdns_error)?;
        self.fullname = Some(info.get_fullname().to_owned());
        self.daemon.register(info).map_err(mdns_error)?;
        Ok(true)
    }

    /// Stops announcing.
    pub fn withdraw(&mut self) {
        if let Some(name) = self.fullname.take() {
            let _ = self.daemon.unregister(&name);
        }
    }

    /// Devices announcing a tag of one of this device's opted-in spaces: waits up to `wait` for
    /// the first, then half a second (`GATHER_AFTER_FIRST`) for others answering at about the
    /// same time.
    pub fn browse(&self, store: &Store, wait: Duration) -> Result<Vec<NearbyDevice>> {
        let day = today();
        let mine: Vec<String> = store
            .nearby_spaces()?
            .iter()
            .flat_map(|s| [space_tag(*s, day), space_tag(*s, day - 1)])
            .collect();
        let events = self.daemon.browse(SERVICE_TYPE).map_err(mdns_error)?;
        let own = self.fullname.clone();
        let mut deadline = std::time::Instant::now() + wait;
        let mut found: Vec<NearbyDevice> = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Ok(event) = events.recv_timeout(left) else {
                break;
            };
            let mdns_sd::ServiceEvent::ServiceResolved(info) = event else {
                continue;
            };
            if own.as_deref() == Some(info.get_fullname()) {
                continue;
            }
            let shares = info
                .get_property_val_str("t")
                .is_some_and(|tags| tags.split(',').any(|t| mine.iter().any(|m| m == t)));
            if !shares {
                continue;
            }
            let instance = info.get_fullname().to_owned();
            let addresses: Vec<SocketAddr> = info
                .get_addresses_v4()
                .into_iter()
                .map(|ip| SocketAddr::new(ip.into(), info.get_port()))
                .collect();
            if addresses.is_empty() || found.iter().any(|d| d.instance == instance) {
                continue;
            }
            if found.is_empty() {
                deadline = deadline.min(std::time::Instant::now() + GATHER_AFTER_FIRST);
            }
            found.push(NearbyDevice { instance, addresses });
        }
        let _ = self.daemon.stop_browse(SERVICE_TYPE);
        Ok(found)
    }
}

impl Drop for Nearby {
    fn drop(&mut self) {
        self.withdraw();
        let _ = self.daemon.shutdown();
    }
}

impl Store {
    /// Opts a space in or out of meeting devices on the local network (announced and synced
    /// there); out by default.
    pub fn set_nearby(&self, space: SpaceId, enabled: bool) -> Result<()> {
        self.write(|tx, _| {
            if enabled {
                tx.execute(
                    "INSERT OR IGNORE INTO nearby_spaces (space_id) VALUES (?1)",
                    params![space.to_string()],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM nearby_spaces WHERE space_id = ?1",
                    params![space.to_string()],
                )?;
            }
            Ok(())
        })
    }

    /// The spaces opted in for the local network.
    pub fn nearby_spaces(&self) -> Result<Vec<SpaceId>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT space_id FROM nearby_spaces ORDER BY space_id")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row?.parse()?);
            }
            Ok(out)
        })
    }
}
