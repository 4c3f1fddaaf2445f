//! The outbox: changes made (or relayed) here that no server has acknowledged yet. Entries
//! leave only when acknowledged. Changes of items that are drafts or meant for their author only
//! are held back: they stay on the device until the item is published to an audience.

use rusqlite::params;

use super::{OutgoingChange, Store};
use crate::document::DocKind;
use crate::error::{Error, Result};

/// Why an outbox entry waits for good: an item created here whose change could not be built
/// (its stored form damaged). Reported like any deferred entry (`SyncReport::deferred`).
pub(crate) const CANNOT_BUILD: &str =
    "this item could not be prepared for sending on this device; copy its content, create it again and erase this one";

/// Why an outbox entry waits for good: an edit made here and kept as a patch whose change could
/// not be built (its stored entry damaged, or the item no longer readable by this core).
pub(crate) const EDIT_CANNOT_BUILD: &str =
    "an edit of this item could not be prepared for sending on this device; its other changes are sent, make this one again";

/// Outbox rows (`o`) that may leave the device: not changes of drafts or author-only items
/// (`i` is the items projection, left-joined on the document id). Every query that selects what
/// to send uses this one condition.
pub(crate) const MAY_LEAVE_DEVICE: &str =
    "LEFT JOIN items i ON i.item_id = o.doc_id WHERE (i.id IS NULL OR (i.status != 'draft' AND i.audience != 'author_only'))";

/// Marks outbox entry `seq` as waiting, for `reason`, since `now` (or since it first waited);
/// returns its document and since when it waits, `None` if the entry is gone.
pub(crate) fn defer_entry(
    conn: &rusqlite::Connection,
    seq: i64,
    reason: &str,
    now: i64,
) -> Result<Option<(String, i64)>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET deferred_since = coalesce(deferred_since, ?2), defer_reason = ?3 WHERE seq = ?1
             RETURNING doc_id, deferred_since",
        )?
        .query_row(params![seq, now, reason], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

impl Store {
    /// The oldest outbox entries that may leave the device, at most `limit`, their changes
    /// built first where they wait without them (`Store::seal_outbox`).
    pub fn pending_changes(&self, limit: usize) -> Result<Vec<OutgoingChange>> {
        self.seal_outbox(limit, false)?;
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT o.seq, o.doc_id, o.kind, o.space_id, o.hash, o.bytes FROM outbox o
                 {MAY_LEAVE_DEVICE} AND o.bytes IS NOT NULL ORDER BY o.seq LIMIT ?1"
            ))?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, doc_id, kind, space, hash, bytes) = row?;
                let kind =
                    DocKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("outbox kind {kind}")))?;
                let space = space
                    .parse()
                    .map_err(|_| Error::Corrupt(format!("outbox space {space}")))?;
                let hash = hash.iter().map(|b| format!("{b:02x}")).collect();
                out.push(OutgoingChange {
                    seq,
                    doc_id,
                    kind,
                    space,
                    hash,
                    bytes,
                });
            }
            Ok(out)
        })
    }

    /// Builds the changes of the oldest `limit` outbox entries that may leave the device and
    /// wait without their change (items created here, `documents::store_local_creation`, and
    /// edits kept as patches, `documents::PendingEdit`), so that they can be signed and pushed. One transaction; nothing is written when none wait.
    /// With `members_only`, only entries of spaces the server knows this device in: the ones a
    /// sync request pushes, so that the window sealed is the window pushed. An entry whose change
    /// cannot be built is marked deferred with [`CANNOT_BUILD`] (the app is told, as for any
    /// deferred entry) and passed over, never an error that stops every sync.
    pub(crate) fn seal_outbox(&self, limit: usize, members_only: bool) -> Result<usize> {
        let join = if members_only {
            "JOIN memberships m ON m.space_id = o.space_id"
        } else {
            ""
        };
        let sql = format!(
            "SELECT o.seq, o.doc_id, o.edit IS NOT NULL FROM outbox o {join} {MAY_LEAVE_DEVICE}
             AND o.bytes IS NULL AND o.defer_reason IS NOT ?2 AND o.defer_reason IS NOT ?3
             ORDER BY o.seq LIMIT ?1"
        );
        let waiting = |conn: &rusqlite::Connection| -> Result<Vec<(i64, String, bool)>> {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![limit as i64, CANNOT_BUILD, EDIT_CANNOT_BUILD], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        if self.read(waiting)?.is_empty() {
            return Ok(0);
        }
        self.write(|tx, _| {
            let mut sealed = 0;
            for (seq, doc_id, edit) in waiting(tx)? {
                // Building an edit builds every earlier entry of its document too.
                let built = |tx: &rusqlite::Connection| -> Result<bool> {
                    Ok(!tx
                        .prepare_cached("SELECT 1 FROM outbox WHERE seq = ?1 AND bytes IS NULL")?
                        .exists([seq])?)
                };
                if built(tx)? {
                    sealed += 1;
                    continue;
                }
                let done = match edit {
                    true => super::documents::settle_pending(tx, &doc_id).and_then(|()| built(tx)),
                    false => super::documents::seal(tx, &doc_id),
                };
                let failure = match done {
                    Ok(true) => {
                        sealed += 1;
                        continue;
                    }
                    Ok(false) if edit => "an edit of this item could not be prepared for sending".to_owned(),
                    Ok(false) => "the item is no longer stored".to_owned(),
                    Err(e @ (Error::Corrupt(_) | Error::MalformedChange { .. } | Error::Document { .. })) => {
                        e.to_string()
                    }
                    Err(e) => return Err(e),
                };
                tracing::error!(doc = %doc_id, reason = %failure, "a change made here cannot be sent");
                let reason = if edit { EDIT_CANNOT_BUILD } else { CANNOT_BUILD };
                defer_entry(tx, seq, reason, super::now_ms())?;
            }
            Ok(sealed)
        })
    }

    /// Number of outbox entries, held-back ones included.
    pub fn outbox_len(&self) -> Result<usize> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))? as usize)
        })
    }

    /// Marks every outbox entry of `space` as waiting, for `reason`, since now (or since it
    /// first waited): a space created here whose registration the server refused cannot take
    /// them yet, and the app is told so (`SyncReport::deferred`, overdue after the bound)
    /// instead of the changes waiting silently. Returns how many entries wait.
    pub(crate) fn defer_space_outbox(&self, space: &str, reason: &str) -> Result<usize> {
        let now = super::now_ms();
        self.write(|tx, _| {
            Ok(tx
                .prepare_cached(
                    "UPDATE outbox SET deferred_since = coalesce(deferred_since, ?2), defer_reason = ?3
                     WHERE space_id = ?1",
                )?
                .execute(rusqlite::params![space, now, reason])?)
        })
    }

    /// Removes acknowledged entries; returns how many were removed.
    pub fn acknowledge(&self, seqs: &[i64]) -> Result<usize> {
        self.write(|tx, _| {
            let mut removed = 0;
            for seq in seqs {
                removed += tx
                    .prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
                    .execute([seq])?;
            }
            Ok(removed)
        })
    }
}
