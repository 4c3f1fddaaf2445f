//! Configuration: defaults, overridden by a TOML file, overridden by environment variables and
//! flags (clap reads both).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::ServerError;

/// Who may register a space (`POST /v1/spaces`) or create invites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Allowed {
    /// Every registered device (for invites: every coordinator).
    Anyone,
    /// Only persons an administrator approved (`quartier-server admin approve`).
    Approved,
}

/// Whether new devices may register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    Open,
    Closed,
}

/// Requests allowed before `429 Too Many Requests`; `0` switches a limit off. Each is a token
/// bucket (`governor`): the full amount may come at once, then it refills evenly over the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Every request, per client address, per minute.
    pub per_address_per_minute: u32,
    /// Every authenticated request, per device (bearer token), per minute.
    pub per_device_per_minute: u32,
    /// Registrations (`POST /v1/devices` and its challenge), per address, per hour.
    pub registrations_per_hour: u32,
    /// Invite redemptions, per address and per device, per hour.
    pub redemptions_per_hour: u32,
}

impl RateLimits {
    /// No limits at all (tests, benches).
    pub const OFF: RateLimits = RateLimits {
        per_address_per_minute: 0,
        per_device_per_minute: 0,
        registrations_per_hour: 0,
        redemptions_per_hour: 0,
    };
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_address_per_minute: 1_200,
            per_device_per_minute: 600,
            registrations_per_hour: 10,
            redemptions_per_hour: 20,
        }
    }
}

/// Settings of `quartier-server serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Largest request body accepted, compressed.
    pub max_body_bytes: usize,
    /// Documents kept in memory for permission checks (LRU).
    pub doc_cache: usize,
    /// Largest blob (media file) accepted, in bytes.
    pub max_blob_bytes: u64,
    /// Blob bytes one space may hold (uploads under way included).
    pub space_quota_bytes: u64,
    /// Seconds between garbage collections of blobs (0: never).
    pub blob_gc_interval_secs: u64,
    /// Seconds a blob stays unreferenced, or an upload untouched, before it is collected.
    pub blob_gc_grace_secs: u64,
    /// Milliseconds a client has to send a request's headers, counted from the connection (or
    /// the previous answer on a kept-alive connection): also how long an idle connection stays.
    pub header_timeout_ms: u64,
    /// Milliseconds a request body may go without a byte arriving.
    pub body_timeout_ms: u64,
    /// Milliseconds from a request's headers to its answer (body reading included).
    pub request_timeout_ms: u64,
    pub rate: RateLimits,
    /// Use the last address of `X-Forwarded-For` as the client's address (only behind a
    /// reverse proxy that sets it; otherwise anyone could pick their address).
    pub trust_forwarded_for: bool,
    pub registration: Registration,
    /// Who may register spaces.
    pub space_creation: Allowed,
    /// Which coordinators may create invites.
    pub invite_creation: Allowed,
    /// Serve HTTPS with this certificate chain and key (PEM files, reloaded on SIGHUP).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
            data_dir: PathBuf::from("quartier-data"),
            max_body_bytes: 8 * 1024 * 1024,
            doc_cache: 2_000,
            max_blob_bytes: 200 * 1024 * 1024,
            space_quota_bytes: 10 * 1024 * 1024 * 1024,
            blob_gc_interval_secs: 60 * 60,
            blob_gc_grace_secs: 7 * 24 * 60 * 60,
            header_timeout_ms: 15_000,
            body_timeout_ms: 30_000,
            request_timeout_ms: 300_000,
            rate: RateLimits::default(),
            trust_forwarded_for: false,
            registration: Registration::Open,
            space_creation: Allowed::Approved,
            invite_creation: Allowed::Anyone,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The optional configuration file (`--config quartier.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub max_body_bytes: Option<usize>,
    pub doc_cache: Option<usize>,
    pub max_blob_bytes: Option<u64>,
    pub space_quota_bytes: Option<u64>,
    pub blob_gc_interval_secs: Option<u64>,
    pub blob_gc_grace_secs: Option<u64>,
    pub header_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub rate_per_address_per_minute: Option<u32>,
    pub rate_per_device_per_minute: Option<u32>,
    pub registrations_per_hour: Option<u32>,
    pub redemptions_per_hour: Option<u32>,
    pub trust_forwarded_for: Option<bool>,
    pub registration: Option<Registration>,
    pub space_creation: Option<Allowed>,
    pub invite_creation: Option<Allowed>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl FileConfig {
    pub fn read(path: &std::path::Path) -> Result<FileConfig, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Startup(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ServerError::Startup(format!("{}: {e}", path.display())))
    }

    /// Applies the file (or flags gathered in the same shape) on top of `base`.
    pub fn apply(self, mut base: Config) -> Config {
        fn set<T>(target: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *target = v;
            }
        }
        set(&mut base.listen, self.listen);
        set(&mut base.data_dir, self.data_dir);
        set(&mut base.max_body_bytes, self.max_body_bytes);
        set(&mut base.doc_cache, self.doc_cache);
        set(&mut base.max_blob_bytes, self.max_blob_bytes);
        set(&mut base.space_quota_bytes, self.space_quota_bytes);
        set(&mut base.blob_gc_interval_secs, self.blob_gc_interval_secs);
        set(&mut base.blob_gc_grace_secs, self.blob_gc_grace_secs);
        set(&mut base.header_timeout_ms, self.header_timeout_ms);
        set(&mut base.body_timeout_ms, self.body_timeout_ms);
        set(&mut base.request_timeout_ms, self.request_timeout_ms);
        set(
            &mut base.rate.per_address_per_minute,
            self.rate_per_address_per_minute,
        );
        set(
            &mut base.rate.per_device_per_minute,
            self.rate_per_device_per_minute,
        );
        set(&mut base.rate.registrations_per_hour, self.registrations_per_hour);
        set(&mut base.rate.redemptions_per_hour, self.redemptions_per_hour);
        set(&mut base.trust_forwarded_for, self.trust_forwarded_for);
        set(&mut base.registration, self.registration);
        set(&mut base.space_creation, self.space_creation);
        set(&mut base.invite_creation, self.invite_creation);
        if self.tls_cert.is_some() {
            base.tls_cert = self.tls_cert;
        }
        if self.tls_key.is_some() {
            base.tls_key = self.tls_key;
        }
        base
    }
}
