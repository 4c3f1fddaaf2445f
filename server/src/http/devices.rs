//! Device registration (a signed server challenge proves possession of the key) and revocation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use ed25519_dalek::{Signature, VerifyingKey};
use quartier_protocol::signing::registration_signing_payload;
use quartier_protocol::{DeviceLink, DeviceRegistered, DisplayName, RegisterDevice, RegistrationChallenge};
use uuid::Uuid;

use super::auth::Device;
use super::{blocking, Ids, Wire};
use crate::config::Registration;
use crate::error::ServerError;
use crate::state::AppState;
use crate::storage::{accounts, now_ms, random_token};

/// How long a challenge stays good.
const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// Challenges held at most; the oldest is forgotten first (rate limits bound how fast they come).
const MAX_CHALLENGES: usize = 10_000;
/// Longest display name, in characters.
pub use quartier_protocol::names::MAX_DISPLAY_NAME_CHARS;

/// Challenges handed out and not yet used: each registers one device, once.
pub struct Challenges(Mutex<lru::LruCache<[u8; 32], Instant>>);

impl Default for Challenges {
    fn default() -> Self {
        Self(Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(MAX_CHALLENGES).unwrap_or(std::num::NonZeroUsize::MIN),
        )))
    }
}

impl Challenges {
    fn issue(&self) -> Result<[u8; 32], ServerError> {
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge).map_err(|e| ServerError::Internal(format!("no randomness: {e}")))?;
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.put(challenge, Instant::now() + CHALLENGE_TTL);
        Ok(challenge)
    }

    /// Uses up a challenge: true if it was handed out, unused and not expired.
    fn redeem(&self, challenge: &[u8]) -> bool {
        let Ok(key) = <[u8; 32]>::try_from(challenge) else {
            return false;
        };
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.pop(&key).is_some_and(|expiry| Instant::now() < expiry)
    }
}

/// `POST /v1/devices/challenge`.
pub(crate) async fn challenge(
    State(state): State<Arc<AppState>>,
) -> Result<Wire<RegistrationChallenge>, ServerError> {
    refuse_if_closed(&state)?;
    let challenge = state.challenges.issue()?;
    Ok(Wire(RegistrationChallenge {
        challenge: challenge.to_vec(),
        expires_at_ms: now_ms() + CHALLENGE_TTL.as_millis() as i64,
    }))
}

fn refuse_if_closed(state: &AppState) -> Result<(), ServerError> {
    if state.config.registration == Registration::Closed {
        return Err(ServerError::Forbidden(
            "this server does not register new devices (its operator closed registration)".into(),
        ));
    }
    Ok(())
}

/// The display name as stored (`quartier_protocol::names`): trimmed, bounded, without control
/// or bidi characters; an empty one is no name. A refused name is `400 bad_request`.
pub fn check_display_name(name: Option<&str>) -> Result<Option<String>, ServerError> {
    quartier_protocol::names::check_display_name(name).map_err(|e| ServerError::BadRequest(e.to_string()))
}

/// The device's key, if it is a usable Ed25519 key and the signature over the challenge is
/// strictly valid.
fn check_key(req: &RegisterDevice) -> Result<(), ServerError> {
    let bad_key = || ServerError::BadRequest("public_key must be a 32-byte Ed25519 public key".into());
    let bytes: [u8; 32] = req.public_key.as_slice().try_into().map_err(|_| bad_key())?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad_key())?;
    // Small-order keys verify signatures made without any private key.
    if key.is_weak() {
        return Err(ServerError::BadRequest(
            "public_key is a weak (small-order) Ed25519 key; make a key with a proper generator".into(),
        ));
    }
    let (Some(challenge), Some(signature)) = (&req.challenge, &req.signature) else {
        return Err(ServerError::UpgradeRequired(
            "registration now proves possession of the device key: fetch a challenge \
             (POST /v1/devices/challenge) and sign it; update the app"
                .into(),
        ));
    };
    let signature = Signature::from_slice(signature)
        .map_err(|_| ServerError::BadRequest("signature must be a 64-byte Ed25519 signature".into()))?;
    key.verify_strict(
        &registration_signing_payload(challenge, &req.public_key),
        &signature,
    )
    .map_err(|_| {
        ServerError::Forbidden("the signature over the challenge does not verify with public_key".into())
    })
}

pub(crate) async fn register(
    State(state): State<Arc<AppState>>,
    Wire(req): Wire<RegisterDevice>,
) -> Result<Wire<DeviceRegistered>, ServerError> {
    refuse_if_closed(&state)?;
    let display_name = check_display_name(req.display_name.as_deref())?;
    check_key(&req)?;
    // Checked after the signature, so a challenge is only used up by its holder.
    if !req
        .challenge
        .as_deref()
        .is_some_and(|c| state.challenges.redeem(c))
    {
        return Err(ServerError::Forbidden(
            "unknown, used or expired challenge; fetch a new one".into(),
        ));
    }
    let token = random_token(32)?;
    let registered = blocking(move || {
        let record = accounts::register_as(
            &state.db.lock(),
            &req.public_key,
            display_name.as_deref(),
            &token,
            req.link_code.as_deref(),
            req.person,
        )?;
        Ok(DeviceRegistered {
            device: record.device,
            person: record.person,
            token,
        })
    })
    .await?;
    tracing::info!(device = %registered.device, "device registered");
    Ok(Wire(registered))
}

/// `POST /v1/me/device-links`: a one-use code (10 minutes) with which another device registers
/// as the caller's person.
pub(crate) async fn create_link(
    State(state): State<Arc<AppState>>,
    device: Device,
) -> Result<Wire<DeviceLink>, ServerError> {
    let device = device.active()?;
    let code = random_token(16)?;
    let stored = code.clone();
    let expires_at_ms =
        blocking(move || accounts::create_device_link(&state.db.lock(), device.person, &stored)).await?;
    Ok(Wire(DeviceLink { code, expires_at_ms }))
}

/// `PUT /v1/me/display-name`: the caller's person changes (or removes) their display name.
/// Every member of every space they belong to sees it after their next sync.
pub(crate) async fn set_display_name(
    State(state): State<Arc<AppState>>,
    caller: Device,
    Wire(req): Wire<DisplayName>,
) -> Result<Wire<DisplayName>, ServerError> {
    let caller = caller.active()?;
    let display_name = check_display_name(req.display_name.as_deref())?;
    let stored = display_name.clone();
    blocking(move || accounts::set_display_name(&state.db.lock(), caller.person, stored.as_deref())).await?;
    Ok(Wire(DisplayName { display_name }))
}

/// Revokes a device of the caller's own person (a lost phone), effective at once. A device
/// that does not exist and one of another person get the same answer (no existence oracle).
pub(crate) async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Device,
    Ids(device): Ids<Uuid>,
) -> Result<StatusCode, ServerError> {
    let caller = caller.active()?;
    blocking(move || {
        let conn = state.db.lock();
        match accounts::device(&conn, device)? {
            Some(target) if target.person == caller.person => {
                accounts::revoke_device(&conn, device)?;
                Ok(())
            }
            _ => Err(ServerError::NotFound("you have no device with this id".into())),
        }
    })
    .await?;
    tracing::info!(%device, "device revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule itself is tested in `quartier_protocol::names`; here, that a refusal is a `400`.
    #[test]
    fn a_refused_display_name_is_a_bad_request() {
        assert!(matches!(
            check_display_name(Some("line\nbreak")),
            Err(ServerError::BadRequest(_))
        ));
        assert!(matches!(
            check_display_name(Some(&"é".repeat(MAX_DISPLAY_NAME_CHARS + 1))),
            Err(ServerError::BadRequest(_))
        ));
        assert_eq!(
            check_display_name(Some(" Ayşe ")).expect("fine"),
            Some("Ayşe".into())
        );
    }
}
