//! Events in a date range, recurring series expanded into their occurrences.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::{clamp_limit, item_from_row, Filter, Limit, ITEM_COLUMNS};
use crate::error::{Error, Result};
use crate::model::{Item, SpaceId, Status, Viewer};
use crate::schedule::EventTiming;

/// Events of a space overlapping `[from, to)`.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EventsQuery {
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
    pub space: SpaceId,
    pub viewer: Viewer,
    // `start`/`end` across the FFI: `from` is a keyword in Python.
    #[cfg_attr(feature = "uniffi", uniffi(name = "start"))]
    pub from: DateTime<Utc>,
    #[cfg_attr(feature = "uniffi", uniffi(name = "end"))]
    pub to: DateTime<Utc>,
    /// Most occurrences returned.
    #[cfg_attr(feature = "uniffi", uniffi(default = 200))]
    pub limit: Limit,
}

/// One occurrence of an event.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EventOccurrence {
    pub item: Item,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

pub(crate) fn events_between(conn: &Connection, q: &EventsQuery) -> Result<Vec<EventOccurrence>> {
    if q.to <= q.from {
        return Err(Error::invalid("date range", "the end must be after the start"));
    }
    let limit = clamp_limit(q.limit) as usize;
    let mut f = Filter::default();
    f.and(
        "e.first_start < ? AND (e.last_end IS NULL OR e.last_end > ?)",
        [
            SqlValue::Integer(q.to.timestamp_millis()),
            SqlValue::Integer(q.from.timestamp_millis()),
        ],
    );
    f.visible_in(q.space, &q.viewer)
        .effective_status_in(&[Status::Published, Status::Expired], q.from);
    let sql = format!(
        "SELECT e.timing, {ITEM_COLUMNS} FROM event_series e JOIN items i ON i.id = e.item
         CROSS JOIN item_json j ON j.id = i.id WHERE {} ORDER BY e.first_start",
        f.sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(f.params())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let timing: String = row.get(0)?;
        let timing: EventTiming =
            serde_json::from_str(&timing).map_err(|e| Error::Corrupt(format!("event projection: {e}")))?;
        let occurrences = match timing.occurrences_between(q.from, q.to, limit) {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(error = %e, "event timing no longer evaluates");
                continue;
            }
        };
        if occurrences.is_empty() {
            continue;
        }
        let item = item_from_row(row, 1)?;
        out.extend(occurrences.into_iter().map(|o| EventOccurrence {
            item: item.clone(),
            start: o.start,
            end: o.end,
        }));
    }
    out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.item.id.cmp(&b.item.id)));
    out.truncate(limit);
    Ok(out)
}
