//! Full-text search over titles, bodies, tags and names, ranked (BM25, title first), with
//! snippets cut from the original text and the matched words marked.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::{clamp_limit, item_from_row, Filter, Limit, ITEM_COLUMNS};
use crate::error::Result;
use crate::model::{Item, ItemKind, SpaceId, Status, Viewer};
use crate::search::{snippet, SearchQuery, Snippet};

/// How many matches are ranked at most. A search whose words match more items than this (a
/// common word or a short prefix in a large space) ranks the newest this many that the viewer
/// may see — newest by when the item reached this store — and shows the best of those: in a
/// neighbourhood, recent items are the ones people look for, and the work of a search stays
/// bounded (`docs/queries.md`). More words narrow the matches and reach older items.
pub const RANKED_MATCHES: i64 = 500;

/// Characters of body text around the best match in a hit's snippet.
const SNIPPET_CHARS: usize = 160;

/// A search request (folds case and diacritics: `strasse` finds `Straße`).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SearchRequest {
    /// The space to search, or every space the store holds.
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id", default = None))]
    pub space: Option<SpaceId>,
    pub viewer: Viewer,
    /// What the person typed.
    pub text: String,
    /// Kinds to include; empty = every kind but comments.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub kinds: Vec<ItemKind>,
    #[cfg_attr(feature = "uniffi", uniffi(default = 20))]
    pub limit: Limit,
    /// The moment validity is judged at; `None` = now.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub at: Option<DateTime<Utc>>,
}

impl SearchRequest {
    pub fn new(space: SpaceId, viewer: Viewer, text: impl Into<String>) -> Self {
        Self {
            space: Some(space),
            viewer,
            text: text.into(),
            kinds: Vec::new(),
            limit: Limit(20),
            at: None,
        }
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    pub item: Item,
    /// BM25 score; lower is better (SQLite's convention). A search for one word or phrase
    /// leaves out that phrase's inverse document frequency, the same factor for every hit, so
    /// the order is BM25's.
    pub score: f64,
    pub title: Snippet,
    pub body: Snippet,
}

pub(crate) fn search(conn: &Connection, request: &SearchRequest) -> Result<Vec<SearchHit>> {
    let query = SearchQuery::parse(&request.text)?;
    let at = request.at.unwrap_or_else(Utc::now);
    let mut f = Filter::default();
    f.and("items_fts MATCH ?", [SqlValue::Text(query.fts5_match())]);
    match request.space {
        Some(space) => f.visible_in(space, &request.viewer),
        None => f.visible_to(&request.viewer),
    };
    f.kinds(&request.kinds)
        .effective_status_in(&[Status::Published], at);
    f.push_param(SqlValue::Integer(RANKED_MATCHES));
    f.push_param(SqlValue::Integer(clamp_limit(request.limit)));
    // FTS5 walks the matches newest first and stops after RANKED_MATCHES that pass the filters
    // (each joined with its light `items` row); only the hits returned read their JSON. One
    // word or phrase has one inverse document frequency for every row: its BM25 order needs
    // no count of the rows that hold it (`store::bm25_one_phrase`).
    let rank = if query.positive_parts().count() == 1 {
        crate::store::bm25_one_phrase::NAME
    } else {
        "bm25"
    };
    let sql = format!(
        "SELECT r.score, {ITEM_COLUMNS} FROM (
             SELECT i.id AS id, {rank}(items_fts, 8.0, 1.0, 3.0) AS score
             FROM items_fts CROSS JOIN items i ON i.id = items_fts.rowid
             WHERE {} ORDER BY items_fts.rowid DESC LIMIT ?
         ) r CROSS JOIN items i ON i.id = r.id CROSS JOIN item_json j ON j.id = r.id
         ORDER BY r.score, r.id DESC LIMIT ?",
        f.sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(f.params())?;
    let mut hits = Vec::new();
    while let Some(row) = rows.next()? {
        let item = item_from_row(row, 1)?;
        let title = best_snippet(item.content.title.iter().map(|(_, t)| t), &query, usize::MAX);
        let body = best_snippet(item.content.body.iter().map(|(_, t)| t), &query, SNIPPET_CHARS);
        hits.push(SearchHit {
            item,
            score: row.get(0)?,
            title,
            body,
        });
    }
    Ok(hits)
}

/// The snippet of the language variant with the most matches.
fn best_snippet<'a>(texts: impl Iterator<Item = &'a str>, query: &SearchQuery, max_chars: usize) -> Snippet {
    let mut best: Option<Snippet> = None;
    for text in texts {
        let s = snippet(text, query, max_chars.min(text.chars().count().max(1)));
        if best.as_ref().is_none_or(|b| s.matches.len() > b.matches.len()) {
            best = Some(s);
        }
    }
    best.unwrap_or(Snippet {
        text: String::new(),
        matches: Vec::new(),
    })
}
