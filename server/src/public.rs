//! What the server shows outside the app, without an account: the items everyone in a space
//! may read (audience everyone, published and not past their validity, not hidden by the
//! coordinators), for the calendar feeds, the plain web page behind each printed QR code, and
//! the operator's exports. Reading only; the HTTP side is `http::public`, the exports are
//! `quartier-standards`' conversions.

use chrono::{DateTime, Utc};
use quartier_domain::document::{item_from_doc, space_from_doc};
use quartier_domain::model::{Audience, Item, ItemKind, Space, Status};
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

use crate::documents;
use crate::error::ServerError;
use crate::storage::{in_list, stored_uuid};

/// The most items one feed, page or export reads; more are left out (the newest documents by
/// id, which are UUIDv7 and so by creation time, are kept).
pub const MAX_PUBLIC_ITEMS: usize = 20_000;

/// Whether everyone in its space may read `item` at `now`.
pub fn is_public(item: &Item, now: DateTime<Utc>) -> bool {
    item.content.audience == Audience::Everyone && item.effective_status(now) == Status::Published
}

/// A space's document, read (`None`: the server has no such space, or its document does not
/// read).
pub fn space(conn: &Connection, space: Uuid) -> Result<Option<Space>, ServerError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc_id FROM docs WHERE space_id = ?1 AND kind = 'space' LIMIT 1")?
        .query_row([space.to_string()], |r| r.get(0))
        .optional()?;
    let Some(doc) = doc else { return Ok(None) };
    let state = documents::load(conn, stored_uuid(&doc)?)?;
    Ok(space_from_doc(&state.doc, &doc).ok())
}

/// The public items of `kinds` in `space` at `now`, newest first, at most
/// [`MAX_PUBLIC_ITEMS`]; whether there were more.
pub fn items(
    conn: &Connection,
    space: Uuid,
    kinds: &[ItemKind],
    now: DateTime<Utc>,
) -> Result<(Vec<Item>, bool), ServerError> {
    let mut args: Vec<rusqlite::types::Value> = vec![space.to_string().into()];
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let marks = in_list(&mut args, &kinds);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT d.doc_id FROM docs d
         WHERE d.space_id = ?1 AND d.kind = 'item' AND d.audience = 'everyone' AND d.item_kind IN ({marks})
           AND NOT EXISTS (SELECT 1 FROM hidden_items h WHERE h.item_id = d.doc_id)
         ORDER BY d.doc_id DESC"
    ))?;
    let ids: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for id in ids {
        if out.len() == MAX_PUBLIC_ITEMS {
            return Ok((out, true));
        }
        let state = documents::load(conn, stored_uuid(&id)?)?;
        // A document that does not read as an item (a newer layout) is not shown.
        if let Ok(item) = item_from_doc(&state.doc, &id) {
            if is_public(&item, now) {
                out.push(item);
            }
        }
    }
    Ok((out, false))
}

/// The kinds that have a page of their own outside the app: what the printed guide lists. Posts,
/// requests, observations and comments are "everyone" within a space, not on the web.
pub const KINDS_WITH_PAGES: [ItemKind; 2] = [ItemKind::Offer, ItemKind::Event];

/// One offer or event, if it is public at `now`.
pub fn item(conn: &Connection, id: Uuid, now: DateTime<Utc>) -> Result<Option<Item>, ServerError> {
    let known = conn
        .prepare_cached(
            "SELECT 1 FROM docs d WHERE d.doc_id = ?1 AND d.kind = 'item' AND d.audience = 'everyone'
               AND d.item_kind IN (?2, ?3)
               AND NOT EXISTS (SELECT 1 FROM hidden_items h WHERE h.item_id = d.doc_id)",
        )?
        .exists([
            id.to_string(),
            KINDS_WITH_PAGES[0].as_str().to_owned(),
            KINDS_WITH_PAGES[1].as_str().to_owned(),
        ])?;
    if !known {
        return Ok(None);
    }
    let state = documents::load(conn, id)?;
    Ok(item_from_doc(&state.doc, &id.to_string())
        .ok()
        .filter(|item| is_public(item, now)))
}
