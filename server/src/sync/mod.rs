//! The sync exchange: checking and storing pushed changes, and paging the log out to devices,
//! both under the permission table of `quartier_domain::model::permits`.

pub mod counselling;
pub mod creations;
mod exchange;
pub mod help;
pub mod moderation;
mod pull;
mod push;

pub use exchange::exchange;
pub use pull::{pull, CreationForms, SignatureForm};
pub use push::{push, PushLimits, PushReport, MAX_CHANGE_BYTES, MIN_WORK_PER_CHANGE};

use quartier_domain::model::{permits, Action, Audience, ItemKind, Role};

use crate::storage::DocMeta;

/// Whether a member may see a document, from its stored metadata.
pub(crate) fn may_read(meta: &DocMeta, person: &str, role: Role) -> bool {
    if meta.kind == "space" {
        return true;
    }
    let (Some(kind), Some(audience)) = (meta.item_kind.as_deref(), meta.audience.as_deref()) else {
        return false;
    };
    let (Ok(kind), Ok(audience)) = (ItemKind::parse(kind), audience.parse::<Audience>()) else {
        return false;
    };
    permits(
        role,
        Action::Read,
        kind,
        audience,
        meta.author.as_deref() == Some(person),
    )
}
