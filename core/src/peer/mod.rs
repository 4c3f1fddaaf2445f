//! Device to device (`docs/protocol.md`, "Device to device"): two devices of the same server
//! sync with no infrastructure at all, and a device carries others' signed changes to the server.
//!
//! - `credentials`: the pinned server key, membership certificates, revocation lists and the
//!   signatures of others' changes, as the store keeps them (taken in with every sync);
//! - `session`: [`PeerSession`], the sans-IO session: frames in, frames out, turn by turn;
//! - `guest`: joining offline: invites a coordinator's phone makes without the server, kept by
//!   the new device until the server confirms them;
//! - `verify`: what a device checks of every change a peer hands it before storing it;
//! - `lan` (I/O): the local-network transport: discovery (mDNS/DNS-SD), a Noise channel over TCP;
//! - `media`: which thumbnails a device asks for and may send after a local-network session;
//! - `relay`: store-and-forward: carried changes in the outbox, within [`RelayLimits`].
//!
//! May touch: the store (through `Store::read`/`write` and the merge path sync uses). Only `lan`
//! does I/O; other transports (Bluetooth, Wi-Fi Direct, QR codes) are the app's, and carry the
//! session's frames as they are.

pub(crate) mod credentials;
pub(crate) mod guest;
mod lan;
mod media;
pub(crate) mod relay;
mod session;
mod verify;

pub use credentials::PeerCertificate;
pub use guest::{OfflineInviteInfo, MAX_OFFLINE_INVITE_MS, OFFLINE_INVITE_PREFIX};
pub use lan::{
    meet_at, meet_next, meet_over, space_tag, Nearby, NearbyDevice, PeerAddress, LAN_FRAME_BYTES,
    SERVICE_TYPE,
};
pub use media::MAX_PEER_FILE_BYTES;
pub use relay::{CarriedChanges, RelayLimits};
pub use session::{PeerOptions, PeerReport, PeerRole, PeerSession, DEFAULT_FRAME_BYTES, QR_FRAME_BYTES};
pub use verify::PeerRefusal;
