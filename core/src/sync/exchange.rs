//! The sans-IO half of sync: turning the store's state into a [`SyncRequest`] and a
//! [`SyncResponse`] into store changes. No sockets here, so every rule of the exchange is
//! testable without a network; `client` carries these messages over HTTP.
//!
//! A response is applied in one transaction: the pages' records, the new cursors, the
//! acknowledged outbox entries, the memberships and the purge of revoked spaces. An
//! interruption therefore loses at most the page in flight, and applying the same response twice
//! changes nothing the second time. A response to a request built before the store's cursors or
//! memberships moved (delivered late or twice, or racing another sync of the same store) is stale:
//! only its acknowledgements are applied, so an old page can neither move a cursor back nor bring
//! back a space purged since.

use std::collections::BTreeSet;

use automerge::Automerge;
use quartier_protocol::{
    AckOutcome, DocKind, Record, SpaceCursor, SyncRequest, SyncResponse, ACCEPTS_CREATED,
    MAX_CURSORS_PER_REQUEST, PROTOCOL_VERSION,
};
use rusqlite::{params, Connection, OptionalExtension};

use super::account::{load_account, record_membership};
use super::identity::sign_change;
use crate::error::{Error, Result};
use crate::store::{IncomingChange, Store, MAY_LEAVE_DEVICE};

/// What a request carried, to apply its response against: the outbox entries it pushes, by
/// their position in the request, and the cursor it sent for each space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushedEntries {
    pub(crate) seqs: Vec<i64>,
    pub(crate) cursors: Vec<SpaceCursor>,
    /// The last space of this request's window when the device is in more spaces than one
    /// request may carry: the next window starts after it.
    pub(crate) window_end: Option<uuid::Uuid>,
}

impl PushedEntries {
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

/// A pushed change the server refused for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedChange {
    pub doc_id: String,
    pub code: String,
    pub message: String,
}

/// What applying one response did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExchangeOutcome {
    /// Pushed changes the server now has (stored or already there).
    pub acknowledged: usize,
    /// Pushed changes to push again later.
    pub deferred: usize,
    pub rejected: Vec<RejectedChange>,
    /// Records received and applied.
    pub received: usize,
    /// Spaces purged because this device may no longer see them.
    pub purged: Vec<String>,
    /// The server has more for at least one space.
    pub more: bool,
    /// The response answered a request older than the store's cursors or memberships (delivered
    /// late or twice): only its acknowledgements were applied.
    pub stale: bool,
}

impl Store {
    /// Builds the next request: the cursor of every space the server lets this device see (the
    /// first [`MAX_CURSORS_PER_REQUEST`] of them), and up to `max_push` outbox entries of those
    /// spaces, signed.
    pub fn build_sync_request(
        &self,
        budget_bytes: u32,
        max_push: usize,
    ) -> Result<(SyncRequest, PushedEntries)> {
        self.build_sync_request_after(budget_bytes, max_push, None)
    }

    /// As [`Store::build_sync_request`], with the cursors of the spaces after `spaces_after`
    /// (in id order): the window a device in many spaces asks about next.
    pub fn build_sync_request_after(
        &self,
        budget_bytes: u32,
        max_push: usize,
        spaces_after: Option<uuid::Uuid>,
    ) -> Result<(SyncRequest, PushedEntries)> {
        self.read(|conn| {
            let account = load_account(conn)?.ok_or(Error::NotRegistered)?;
            let mut cursors = Vec::new();
            let mut stmt = conn.prepare_cached(
                "SELECT m.space_id, s.cursor FROM memberships m LEFT JOIN sync_spaces s ON s.space_id = m.space_id
                 WHERE m.space_id > ?1 ORDER BY m.space_id LIMIT ?2",
            )?;
            let after = spaces_after.map(|s| s.to_string()).unwrap_or_default();
            // One more than a window holds, to know whether another window follows.
            let rows = stmt.query_map(params![after, MAX_CURSORS_PER_REQUEST as i64 + 1], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            for row in rows {
                let (space, after) = row?;
                let space = uuid::Uuid::parse_str(&space).map_err(|e| Error::Corrupt(format!("membership space: {e}")))?;
                cursors.push(SpaceCursor { space, after });
            }
            let window_end = if cursors.len() > MAX_CURSORS_PER_REQUEST {
                cursors.truncate(MAX_CURSORS_PER_REQUEST);
                cursors.last().map(|c| c.space)
            } else {
                None
            };
            // Only spaces the server knows this person in: anything else would be refused and lost.
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT o.seq, o.doc_id, o.kind, o.space_id, o.hash, o.bytes FROM outbox o
                 JOIN memberships m ON m.space_id = o.space_id {MAY_LEAVE_DEVICE}
                 ORDER BY o.seq LIMIT ?1"
            ))?;
            let rows = stmt.query_map([max_push as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                ))
            })?;
            let mut push = Vec::new();
            let mut pushed = Vec::new();
            for row in rows {
                let (seq, doc_id, kind, space, hash, bytes) = row?;
                let kind = DocKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("outbox kind {kind}")))?;
                let parse = |s: &str| uuid::Uuid::parse_str(s).map_err(|e| Error::Corrupt(format!("outbox id: {e}")));
                push.push(Record::Change {
                    space: parse(&space)?,
                    doc: parse(&doc_id)?,
                    kind,
                    signature: sign_change(self.signing_key(), &doc_id, &hash),
                    bytes,
                    device: account.device,
                });
                pushed.push(seq);
            }
            let entries = PushedEntries { seqs: pushed, cursors: cursors.clone(), window_end };
            let accepts = vec![ACCEPTS_CREATED.to_owned()];
            let request = SyncRequest { protocol: PROTOCOL_VERSION, cursors, push, budget_bytes, accepts };
            Ok((request, entries))
        })
    }

    /// Applies a server's response to the request that pushed `pushed`, in one transaction.
    pub fn apply_sync_response(
        &self,
        pushed: &PushedEntries,
        response: &SyncResponse,
    ) -> Result<ExchangeOutcome> {
        if response.protocol != PROTOCOL_VERSION {
            return Err(Error::ProtocolMismatch {
                ours: PROTOCOL_VERSION,
                theirs: vec![response.protocol],
            });
        }
        // Decode everything before touching the store: a malformed record refuses the response.
        let mut incoming = Vec::new();
        for page in &response.pages {
            for record in &page.records {
                incoming.extend(record_changes(record)?);
            }
        }
        let by_doc = crate::store::decode_incoming(&incoming)?;
        let now = crate::store::now_ms();
        self.write(|tx, touched| {
            let mut outcome = ExchangeOutcome { received: incoming.len(), ..Default::default() };
            for ack in &response.acks {
                let Some(seq) = pushed.seqs.get(ack.index as usize) else { continue };
                match &ack.outcome {
                    AckOutcome::Stored | AckOutcome::Duplicate => {
                        outcome.acknowledged += remove_outbox(tx, *seq)?;
                    }
                    AckOutcome::Rejected { code, message } => {
                        let doc_id: Option<String> =
                            tx.query_row("SELECT doc_id FROM outbox WHERE seq = ?1", [seq], |r| r.get(0)).optional()?;
                        remove_outbox(tx, *seq)?;
                        outcome.rejected.push(RejectedChange {
                            doc_id: doc_id.unwrap_or_default(),
                            code: format!("{code:?}").to_lowercase(),
                            message: message.clone(),
                        });
                    }
                    AckOutcome::Deferred { .. } | AckOutcome::Unknown => outcome.deferred += 1,
                }
            }
            // Acknowledgements hold whenever they arrive (outbox positions are never reused); the
            // rest only if the store still stands where the request was built.
            if is_stale(tx, pushed, response)? {
                outcome.stale = true;
                outcome.received = 0;
                outcome.more = true;
                return Ok(outcome);
            }
            let revoked: BTreeSet<String> = response.revoked.iter().map(|s| s.to_string()).collect();
            self.merge_decoded(tx, by_doc, touched)?;
            for page in &response.pages {
                outcome.more |= page.more;
                tx.prepare_cached(
                    "INSERT INTO sync_spaces (space_id, cursor, last_success, last_attempt, last_error)
                     VALUES (?1, ?2, ?3, ?3, NULL)
                     ON CONFLICT (space_id) DO UPDATE SET cursor = excluded.cursor, last_success = excluded.last_success,
                         last_attempt = excluded.last_attempt, last_error = NULL",
                )?
                .execute(params![page.space.to_string(), page.next, now])?;
            }
            for membership in &response.memberships {
                if !revoked.contains(&membership.space.to_string()) {
                    record_membership(tx, membership)?;
                }
            }
            for space in revoked {
                crate::store::purge_space(tx, &space, touched)?;
                outcome.purged.push(space);
            }
            Ok(outcome)
        })
    }

    /// Notes a failed attempt on every space (shown in [`Store::sync_status`]).
    pub fn record_sync_error(&self, message: &str) -> Result<()> {
        let now = crate::store::now_ms();
        self.write(|tx, _| {
            tx.execute(
                "UPDATE sync_spaces SET last_attempt = ?1, last_error = ?2 WHERE space_id IN (SELECT space_id FROM memberships)",
                params![now, message],
            )?;
            Ok(())
        })
    }
}

/// Whether a space the response speaks of has moved since the request was built: its cursor
/// changed, or it is no longer among the memberships (purged). Spaces the request did not carry
/// are not judged.
fn is_stale(conn: &Connection, pushed: &PushedEntries, response: &SyncResponse) -> Result<bool> {
    let spaces = response
        .pages
        .iter()
        .map(|p| p.space)
        .chain(response.revoked.iter().copied());
    for space in spaces {
        let Some(sent) = pushed.cursors.iter().find(|c| c.space == space) else {
            continue;
        };
        let now: Option<Option<String>> = conn
            .prepare_cached(
                "SELECT s.cursor FROM memberships m LEFT JOIN sync_spaces s ON s.space_id = m.space_id
                 WHERE m.space_id = ?1",
            )?
            .query_row([space.to_string()], |r| r.get(0))
            .optional()?;
        if now.as_ref() != Some(&sent.after) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn remove_outbox(conn: &Connection, seq: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
        .execute([seq])?)
}

/// The changes a record carries: a change itself, every change of a snapshot, or the rebuilt
/// change of a creation.
fn record_changes(record: &Record) -> Result<Vec<IncomingChange>> {
    Ok(match record {
        Record::Change { doc, kind, bytes, .. } => {
            vec![IncomingChange {
                doc_id: doc.to_string(),
                kind: *kind,
                bytes: bytes.clone(),
            }]
        }
        Record::Snapshot { doc, kind, bytes, .. } => {
            let loaded = Automerge::load(bytes).map_err(|e| Error::MalformedChange {
                doc: doc.to_string(),
                reason: format!("snapshot: {e}"),
            })?;
            loaded
                .get_changes(&[])
                .into_iter()
                .map(|c| IncomingChange {
                    doc_id: doc.to_string(),
                    kind: *kind,
                    bytes: c.raw_bytes().to_vec(),
                })
                .collect()
        }
        Record::Created {
            doc,
            kind,
            actor,
            time_ms,
            message,
            state,
            check,
            ..
        } => {
            let creation = crate::document::Creation {
                actor: actor.clone(),
                time_ms: *time_ms,
                message: message.clone(),
                state: state.clone(),
                check: check.clone(),
            };
            let change = crate::document::rebuild_creation(&creation, &doc.to_string(), *kind)?;
            vec![IncomingChange {
                doc_id: doc.to_string(),
                kind: *kind,
                bytes: change.raw_bytes().to_vec(),
            }]
        }
        Record::Unknown => Vec::new(),
    })
}
