//! What every request handler shares.

use crate::blobs::Blobs;
use crate::config::Config;
use crate::documents::DocCache;
use crate::http::devices::Challenges;
use crate::http::guard::Limiters;
use crate::storage::Db;

pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub docs: DocCache,
    pub blobs: Blobs,
    pub limiters: Limiters,
    /// Registration challenges handed out and not yet used.
    pub challenges: Challenges,
}
