//! Offers open at a given moment, from their RRULE-based opening rules read in the space's
//! time zone.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{item_from_row, space, Filter, ITEM_COLUMNS};
use crate::error::{Error, Result};
use crate::model::{Item, SpaceId, Status, Viewer};
use crate::schedule::{is_open_at, parse_time_zone, OpeningRule};

/// Offers of a space open at `at` ("open now").
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OpenOffersQuery {
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
    pub space: SpaceId,
    pub viewer: Viewer,
    /// `None` = now.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub at: Option<DateTime<Utc>>,
}

pub(crate) fn open_offers(conn: &Connection, q: &OpenOffersQuery) -> Result<Vec<Item>> {
    let at = q.at.unwrap_or_else(Utc::now);
    let tz = parse_time_zone(&space(conn, q.space)?.meta.time_zone)?;
    let mut f = Filter::default();
    f.visible_in(q.space, &q.viewer)
        .effective_status_in(&[Status::Published], at);
    let sql = format!(
        "SELECT o.rules, {ITEM_COLUMNS} FROM offer_hours o JOIN items i ON i.id = o.item
         CROSS JOIN item_json j ON j.id = i.id WHERE {} ORDER BY i.created_at DESC",
        f.sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(f.params())?;
    let mut open = Vec::new();
    while let Some(row) = rows.next()? {
        let rules: String = row.get(0)?;
        let rules: Vec<OpeningRule> = serde_json::from_str(&rules)
            .map_err(|e| Error::Corrupt(format!("opening hours projection: {e}")))?;
        // A rule that no longer evaluates (merged from a newer peer) counts as closed.
        if is_open_at(&rules, tz, at).unwrap_or(false) {
            open.push(item_from_row(row, 1)?);
        }
    }
    Ok(open)
}
