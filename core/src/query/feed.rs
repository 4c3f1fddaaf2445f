//! The feed of a space: newest first, filtered, with keyset pagination.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::{clamp_limit, item_from_row, Filter, Limit, ITEM_COLUMNS};
use crate::error::{Error, Result};
use crate::model::{Audience, Item, ItemKind, PersonId, SpaceId, Status, Viewer};

/// Where the previous page ended; opaque to apps (`to_string` / `parse`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedCursor {
    created_at: i64,
    row: i64,
}

// An opaque string across the FFI; one that no feed page returned is refused while crossing,
// as `QuartierError::Invalid`.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(FeedCursor, String, {
    lower: |cursor| cursor.to_string(),
    try_lift: |text| Ok(text.parse::<FeedCursor>().map_err(crate::QuartierError::from)?),
});

impl std::fmt::Display for FeedCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.created_at, self.row)
    }
}

impl std::str::FromStr for FeedCursor {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::invalid("feed cursor", "not a cursor returned by a feed page");
        let (a, b) = text.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            created_at: a.parse().map_err(|_| bad())?,
            row: b.parse().map_err(|_| bad())?,
        })
    }
}

/// A feed request: a page of a space's feed, newest first.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct FeedQuery {
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
    pub space: SpaceId,
    pub viewer: Viewer,
    /// Kinds to show; empty = every kind but comments.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub kinds: Vec<ItemKind>,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub tag: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub author: Option<PersonId>,
    /// Statuses to show (as seen at `at`: a published item past its validity is expired);
    /// empty = published only.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub statuses: Vec<Status>,
    /// Audiences to show; empty = every audience the viewer may see.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub audiences: Vec<Audience>,
    #[cfg_attr(feature = "uniffi", uniffi(default = 50))]
    pub limit: Limit,
    /// `FeedPage::next` of the previous page.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub after: Option<FeedCursor>,
    /// The moment validity is judged at; `None` = now.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub at: Option<DateTime<Utc>>,
}

impl FeedQuery {
    /// The first page of everything published in `space` for `viewer`.
    pub fn new(space: SpaceId, viewer: Viewer) -> Self {
        Self {
            space,
            viewer,
            kinds: Vec::new(),
            tag: None,
            author: None,
            statuses: Vec::new(),
            audiences: Vec::new(),
            limit: Limit(50),
            after: None,
            at: None,
        }
    }
}

/// One page of a feed.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct FeedPage {
    pub items: Vec<Item>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next: Option<FeedCursor>,
}

pub(crate) fn feed(conn: &Connection, q: &FeedQuery) -> Result<FeedPage> {
    let at = q.at.unwrap_or_else(Utc::now);
    let mut f = Filter::default();
    f.visible_in(q.space, &q.viewer).kinds(&q.kinds);
    if let Some(tag) = &q.tag {
        f.and(
            "i.id IN (SELECT item FROM item_tags WHERE tag = ?)",
            [SqlValue::Text(tag.clone())],
        );
    }
    if let Some(author) = &q.author {
        f.and("i.author = ?", [SqlValue::Text(author.to_string())]);
    }
    if !q.audiences.is_empty() {
        f.and_in("i.audience", q.audiences.iter().map(|a| a.as_str().to_owned()));
    }
    let statuses = if q.statuses.is_empty() {
        vec![Status::Published]
    } else {
        q.statuses.clone()
    };
    f.effective_status_in(&statuses, at);
    if let Some(cursor) = q.after {
        f.and(
            "(i.created_at < ? OR (i.created_at = ? AND i.id < ?))",
            [
                SqlValue::Integer(cursor.created_at),
                SqlValue::Integer(cursor.created_at),
                SqlValue::Integer(cursor.row),
            ],
        );
    }
    let limit = clamp_limit(q.limit);
    f.push_param(SqlValue::Integer(limit + 1));
    let sql = format!(
        "SELECT i.id, i.created_at, {ITEM_COLUMNS} FROM items i CROSS JOIN item_json j ON j.id = i.id
         WHERE {} ORDER BY i.created_at DESC, i.id DESC LIMIT ?",
        f.sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(f.params())?;
    let mut items = Vec::new();
    let mut last_key = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if items.len() as i64 == limit {
            more = true;
            break;
        }
        let (id, created_at): (i64, i64) = (row.get(0)?, row.get(1)?);
        items.push(item_from_row(row, 2)?);
        last_key = Some(FeedCursor { created_at, row: id });
    }
    Ok(FeedPage {
        items,
        next: if more { last_key } else { None },
    })
}
