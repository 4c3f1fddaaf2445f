//! Purging a space from the device: what a revoked member or a lost device's next sync does.
//! Every document of the space, its changes, outbox entries, projections, history, cursor and
//! membership go, in the caller's transaction. And purging what a demoted member may no longer
//! read ([`purge_unreadable`]).
//!
//! The person's own edits that were still waiting to be sent are never dropped silently: each
//! document's pending changes become one record of the undelivered list first
//! ([`set_aside_pending`]), which the sync report also lists: without its content after a
//! removal (the space's content leaves the device), with the values of the fields the person set
//! after a demotion (what they wrote, to copy).

use rusqlite::{Connection, OptionalExtension};

use super::refusal::{set_aside_pending, SetAside};
use super::{documents, projection, Touched};
use crate::error::Result;
use crate::model::{permits, Action, Audience, ItemKind, Role};

/// Why pending edits of a space the person left are not delivered.
const NO_LONGER_A_MEMBER: &str =
    "you are no longer a member of this space: the edit was not delivered and has left this device";
/// Why pending edits of an item a new role may not read are not delivered.
const NO_LONGER_READABLE: &str =
    "your role in this space changed and you may no longer read this item: the edit was not delivered";

pub(crate) fn purge_space(tx: &Connection, space: &str, touched: &mut Touched) -> Result<Vec<SetAside>> {
    let mut docs = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT doc_id FROM documents WHERE space_id = ?1")?;
        for doc in stmt.query_map([space], |r| r.get::<_, String>(0))? {
            docs.push(doc?);
        }
        let mut stmt = tx.prepare("SELECT item_id FROM items WHERE space_id = ?1")?;
        for doc in stmt.query_map([space], |r| r.get::<_, String>(0))? {
            docs.push(doc?);
        }
    }
    docs.sort();
    docs.dedup();
    // Records of earlier refusals keep what they say, not the content the person saw.
    tx.execute(
        "UPDATE undelivered SET content = NULL WHERE space_id = ?1",
        [space],
    )?;
    let mut set_aside = Vec::new();
    for doc in &docs {
        set_aside.extend(set_aside_pending(
            tx,
            doc,
            "not_a_member",
            NO_LONGER_A_MEMBER,
            false,
        )?);
    }
    for doc in &docs {
        documents::erase(tx, doc, documents::Records::Keep, touched)?;
        projection::remove_item(tx, doc)?;
        touched.items.insert(doc.clone());
    }
    touched.words_removed |= !docs.is_empty();
    for sql in [
        // Set aside above; what is left has no document (the space's own, not yet registered).
        "DELETE FROM outbox WHERE space_id = ?1",
        "DELETE FROM spaces WHERE space_id = ?1",
        "DELETE FROM memberships WHERE space_id = ?1",
        "DELETE FROM space_members WHERE space_id = ?1",
        "DELETE FROM sync_spaces WHERE space_id = ?1",
        "DELETE FROM space_registrations WHERE space_id = ?1",
        "DELETE FROM certificates WHERE space_id = ?1",
        "DELETE FROM signers WHERE space_id = ?1",
        "DELETE FROM revocation_lists WHERE space_id = ?1",
        "DELETE FROM nearby_spaces WHERE space_id = ?1",
        // Moderation and the help board: what the server let this person see of the space.
        "DELETE FROM moderation_outbox WHERE space_id = ?1",
        "DELETE FROM moderation_log WHERE space_id = ?1",
        "DELETE FROM moderation_cursors WHERE space_id = ?1",
        "DELETE FROM blocked_spaces WHERE space_id = ?1",
        "DELETE FROM help_outbox WHERE space_id = ?1",
        "DELETE FROM help_log WHERE space_id = ?1",
        "DELETE FROM help_cursors WHERE space_id = ?1",
        "DELETE FROM imported_items WHERE space_id = ?1",
    ] {
        tx.execute(sql, [space])?;
    }
    touched.spaces.insert(space.to_owned());
    tracing::info!(
        space,
        documents = docs.len(),
        undelivered = set_aside.len(),
        "purged a space this device may no longer see"
    );
    Ok(set_aside)
}

/// After the server states `person`'s role in `space` as `role`: if the role recorded before may
/// read an audience the new one may not (a volunteer made resident, a caseworker made
/// coordinator), the items of the space the new role may not read go from the device, as from
/// a purged space (document, changes, outbox entries, projection). The server sends nothing of
/// them any more (its pull filters by the current role). Items the device cannot read (a newer
/// layout) are kept: nothing says who may read them. Returns the pending edits of those items
/// set aside as undelivered.
pub(crate) fn purge_unreadable(
    tx: &Connection,
    space: &str,
    person: &str,
    role: Role,
    touched: &mut Touched,
) -> Result<Vec<SetAside>> {
    let before: Option<String> = tx
        .query_row("SELECT role FROM memberships WHERE space_id = ?1", [space], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(before) = before.as_deref().and_then(Role::parse) else {
        return Ok(Vec::new());
    };
    if !Audience::ALL.iter().any(|a| a.admits(before) && !a.admits(role)) {
        return Ok(Vec::new());
    }
    let mut gone = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT item_id, kind, audience, author FROM items WHERE space_id = ?1")?;
        let rows = stmt.query_map([space], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (item, kind, audience, author) = row?;
            let (Ok(kind), Ok(audience)) = (ItemKind::parse(&kind), audience.parse::<Audience>()) else {
                continue;
            };
            if !permits(role, Action::Read, kind, audience, author == person) {
                gone.push(item);
            }
        }
    }
    let mut set_aside = Vec::new();
    for doc in &gone {
        set_aside.extend(set_aside_pending(tx, doc, "forbidden", NO_LONGER_READABLE, true)?);
        documents::erase(tx, doc, documents::Records::Keep, touched)?;
        projection::remove_item(tx, doc)?;
        touched.items.insert(doc.clone());
    }
    if !gone.is_empty() {
        touched.words_removed = true;
        touched.spaces.insert(space.to_owned());
        tracing::info!(
            space,
            items = gone.len(),
            "dropped the items a new role may not read"
        );
    }
    Ok(set_aside)
}
