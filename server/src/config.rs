//! Configuration: defaults, overridden by a TOML file, overridden by environment variables and
//! flags (clap reads both).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::ServerError;

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
}

impl FileConfig {
    pub fn read(path: &std::path::Path) -> Result<FileConfig, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Startup(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ServerError::Startup(format!("{}: {e}", path.display())))
    }

    /// Applies the file on top of `base`.
    pub fn apply(self, mut base: Config) -> Config {
        if let Some(v) = self.listen {
            base.listen = v;
        }
        if let Some(v) = self.data_dir {
            base.data_dir = v;
        }
        if let Some(v) = self.max_body_bytes {
            base.max_body_bytes = v;
        }
        if let Some(v) = self.doc_cache {
            base.doc_cache = v;
        }
        if let Some(v) = self.max_blob_bytes {
            base.max_blob_bytes = v;
        }
        if let Some(v) = self.space_quota_bytes {
            base.space_quota_bytes = v;
        }
        if let Some(v) = self.blob_gc_interval_secs {
            base.blob_gc_interval_secs = v;
        }
        if let Some(v) = self.blob_gc_grace_secs {
            base.blob_gc_grace_secs = v;
        }
        base
    }
}
