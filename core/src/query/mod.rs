//! Queries, answered from the projection tables only (never by loading Automerge documents).
//! Each query is a plain struct with a function that runs it on a read connection; [`Store`](crate::Store)
//! exposes them, and live queries re-run them after commits.
//!
//! Every query is asked for a [`Viewer`]: others' items are shown only in the statuses and
//! audiences the viewer's role admits, drafts and author-only items only to their author,
//! deleted items never.

mod detail;
mod events;
mod feed;
mod item_row;
mod map;
mod open_now;
mod search;

pub use detail::{HistoryEntry, ItemDetail};
pub use events::{EventOccurrence, EventsQuery};
pub use feed::{FeedCursor, FeedPage, FeedQuery};
pub use map::{MapPin, NearbyItem, RadiusQuery, ViewportQuery};
pub use open_now::OpenOffersQuery;
pub use search::{SearchHit, SearchRequest, RANKED_MATCHES};

pub(crate) use detail::item_detail;
pub(crate) use events::events_between;
pub(crate) use feed::feed;
pub(crate) use map::{near, pins, viewport};
pub(crate) use open_now::open_offers;
pub(crate) use search::search;

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::model::{ItemKind, Space, SpaceId, Viewer};

/// A WHERE clause under construction, with its positional parameters.
#[derive(Default)]
pub(crate) struct Filter {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Filter {
    /// Adds `clause`, whose `?` placeholders take `params` in order.
    pub fn and(
        &mut self,
        clause: impl Into<String>,
        params: impl IntoIterator<Item = SqlValue>,
    ) -> &mut Self {
        self.clauses.push(clause.into());
        self.params.extend(params);
        self
    }

    /// `column IN (?, ?, …)`; an empty list matches nothing.
    pub fn and_in(&mut self, column: &str, values: impl IntoIterator<Item = String>) -> &mut Self {
        let values: Vec<SqlValue> = values.into_iter().map(SqlValue::Text).collect();
        if values.is_empty() {
            return self.and("0", []);
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.and(format!("{column} IN ({marks})"), values)
    }

    /// Items of `space` visible to `viewer` (alias `i` for the items table).
    pub fn visible_in(&mut self, space: SpaceId, viewer: &Viewer) -> &mut Self {
        self.and("i.space_id = ?", [SqlValue::Text(space.to_string())]);
        self.visible_to(viewer)
    }

    /// Items visible to `viewer`, in any space: never deleted ones; the viewer's own always;
    /// others' when published (or in the statuses the viewer may see), in an audience the
    /// viewer's role reads, and neither hidden by the coordinators nor by an author this person
    /// muted (`items.hidden`, `moderation`).
    pub fn visible_to(&mut self, viewer: &Viewer) -> &mut Self {
        let audiences: Vec<SqlValue> = viewer
            .audiences()
            .iter()
            .map(|a| SqlValue::Text(a.as_str().into()))
            .collect();
        let statuses: Vec<SqlValue> = viewer
            .statuses()
            .iter()
            .map(|s| SqlValue::Text(s.as_str().into()))
            .collect();
        let a_marks = vec!["?"; audiences.len().max(1)].join(", ");
        let s_marks = vec!["?"; statuses.len().max(1)].join(", ");
        let mut params = vec![SqlValue::Text(viewer.person.to_string())];
        params.extend(statuses);
        params.extend(audiences);
        self.and(
            format!(
                "i.status != 'deleted' AND (i.author = ? OR (i.hidden = 0 AND i.status IN ({s_marks}) AND i.audience IN ({a_marks})))"
            ),
            params,
        )
    }

    /// Kinds to include; with none given, everything but comments.
    pub fn kinds(&mut self, kinds: &[ItemKind]) -> &mut Self {
        if kinds.is_empty() {
            self.and("i.kind != 'comment'", [])
        } else {
            self.and_in("i.kind", kinds.iter().map(|k| k.as_str().to_owned()))
        }
    }

    /// Items whose status as seen at `at` (published but past validity = expired) is one of
    /// `statuses`.
    pub fn effective_status_in(&mut self, statuses: &[crate::model::Status], at: DateTime<Utc>) -> &mut Self {
        if statuses.is_empty() {
            return self.and("0", []);
        }
        let marks = vec!["?"; statuses.len()].join(", ");
        let mut params = vec![SqlValue::Integer(at.timestamp_millis())];
        params.extend(statuses.iter().map(|s| SqlValue::Text(s.as_str().into())));
        self.and(
            format!(
                "(CASE WHEN i.status = 'published' AND i.valid_until < ? THEN 'expired' ELSE i.status END) IN ({marks})"
            ),
            params,
        )
    }

    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }

    pub fn params(&self) -> rusqlite::ParamsFromIter<std::slice::Iter<'_, SqlValue>> {
        rusqlite::params_from_iter(self.params.iter())
    }

    pub fn push_param(&mut self, value: SqlValue) {
        self.params.push(value);
    }
}

pub(crate) use item_row::{encode_item_rest, item_by_id, item_from_row, ITEM_COLUMNS};

/// How many results a query returns at most; it runs with 1 to 1000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Limit(pub u32);

impl From<u32> for Limit {
    fn from(limit: u32) -> Self {
        Limit(limit)
    }
}

// Signed across the FFI (Java has no unsigned types); a negative limit from the app is refused
// while crossing, as `QuartierError::Invalid` naming the limit.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(Limit, i32, {
    lower: |limit| i32::try_from(limit.0).unwrap_or(i32::MAX),
    try_lift: |n| Ok(u32::try_from(n).map(Limit).map_err(|_| crate::QuartierError::Invalid {
        reason: format!("limit must be between 0 and its maximum, got {n}"),
    })?),
});

/// Limits every query to a sane page size.
pub(crate) fn clamp_limit(limit: Limit) -> i64 {
    i64::from(limit.0.clamp(1, 1000))
}

/// A space from the projection.
pub(crate) fn space(conn: &Connection, id: SpaceId) -> Result<Space> {
    let json: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT json FROM spaces WHERE space_id = ?1",
        [id.to_string()],
        |r| r.get(0),
    ))?;
    let json = json.ok_or_else(|| Error::NotFound {
        what: "space",
        id: id.to_string(),
    })?;
    serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("space projection: {e}")))
}

/// Every space in the store, by name.
pub(crate) fn spaces(conn: &Connection) -> Result<Vec<Space>> {
    let mut stmt = conn.prepare_cached("SELECT json FROM spaces ORDER BY space_id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for json in rows {
        out.push(serde_json::from_str(&json?).map_err(|e| Error::Corrupt(format!("space projection: {e}")))?);
    }
    Ok(out)
}
