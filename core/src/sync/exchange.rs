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

use std::collections::{BTreeMap, BTreeSet};

use quartier_protocol::{
    AckOutcome, DocKind, Record, SpaceCursor, SyncRequest, SyncResponse, ACCEPTS_CREATED,
    ACCEPTS_CREATED_UNVERSIONED, MAX_CURSORS_PER_REQUEST, PROTOCOL_VERSION,
};
use rusqlite::{params, Connection, OptionalExtension};

use super::account::{apply_roster, load_account, record_membership};
use super::identity::sign_change;
use crate::document::guarded;
use crate::error::{Error, Result};
use crate::store::{CreationsApplied, IncomingChange, IncomingCreation, Store, MAY_LEAVE_DEVICE};

/// What a request carried, to apply its response against: the outbox entries it pushes, by
/// their position in the request, and the cursor it sent for each space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushedEntries {
    pub(crate) seqs: Vec<i64>,
    pub(crate) cursors: Vec<SpaceCursor>,
    /// The last space of this request's window when the device is in more spaces than one
    /// request may carry: the next window starts after it.
    pub(crate) window_end: Option<uuid::Uuid>,
    /// What the request carried for counselling (first window only).
    pub(crate) counselling: Option<crate::counselling::exchange::PushedCounselling>,
    /// What the request carried for moderation (first window only).
    pub(crate) moderation: Option<crate::moderation::exchange::PushedModeration>,
    /// What the request carried for the help board (first window only).
    pub(crate) help: Option<crate::help::exchange::PushedHelp>,
    /// Where each space's stream of signatures stood when the request was built (sent or not):
    /// a response moves it only from there, so that a late answer cannot move it back, nor one
    /// to a request built before `set_peer_signatures(true)` undo it.
    pub(crate) signatures_held: BTreeMap<uuid::Uuid, Option<String>>,
    /// The other devices whose certificates the request asked for, by space.
    pub(crate) signers_asked: BTreeSet<(uuid::Uuid, uuid::Uuid)>,
}

impl PushedEntries {
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

/// A pushed change the server refused for good. It is out of the outbox, its document is back
/// to what the server accepted (the person's later edits made again on top), and it is listed
/// in [`Store::undelivered_changes`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RejectedChange {
    pub doc_id: String,
    /// The protocol's reject code, snake_case as on the wire (`forbidden`, `not_a_member`, …).
    pub code: String,
    pub message: String,
    /// Later local edits of the document made again on top of what the server accepted.
    pub reapplied: usize,
}

/// Why the changes of a space created on this device wait: the server refused to register the
/// space (e.g. space creation restricted to approved persons); every sync tries again.
pub const SPACE_NOT_REGISTERED: &str = "space_not_registered";

/// A pushed change the server asked to send again later, or a change that cannot be pushed yet;
/// it stays in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct DeferredChange {
    pub doc_id: String,
    /// The protocol's defer reason, snake_case (`missing_dependency`, `server_fault`, …), or
    /// [`SPACE_NOT_REGISTERED`] for changes of a space the server has refused to register.
    pub reason: String,
    /// When the server first deferred it (milliseconds since the epoch).
    pub since_ms: i64,
    /// Deferred for longer than the client's bound (`SyncClient::with_overdue_after`): the app
    /// should tell the person that this change has not reached the server.
    pub overdue: bool,
}

/// What applying one response did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExchangeOutcome {
    /// Pushed changes the server now has (stored or already there).
    pub acknowledged: usize,
    /// Pushed changes to push again later.
    pub deferred: Vec<DeferredChange>,
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
    /// Counselling conversations erased from this device by this response.
    pub counselling_erased: usize,
    /// Items (and comments) erased from this device by the coordinators' decisions.
    pub moderation_erased: usize,
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
        self.seal_outbox(max_push, true)?;
        if spaces_after.is_none() {
            self.prepare_counselling()?;
            self.expire_carried()?;
        }
        self.read(|conn| {
            let account = load_account(conn)?.ok_or(Error::NotRegistered)?;
            let mut cursors = Vec::new();
            let peer_signatures = crate::peer::credentials::keeps_peer_signatures(conn)?;
            let mut stmt = conn.prepare_cached(
                "SELECT m.space_id, s.cursor, coalesce(s.members_after, 0), s.signatures_next
                 FROM memberships m LEFT JOIN sync_spaces s ON s.space_id = m.space_id
                 WHERE m.space_id > ?1 ORDER BY m.space_id LIMIT ?2",
            )?;
            let after = spaces_after.map(|s| s.to_string()).unwrap_or_default();
            // One more than a window holds, to know whether another window follows.
            let rows = stmt.query_map(params![after, MAX_CURSORS_PER_REQUEST as i64 + 1], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            let mut signatures_held = BTreeMap::new();
            for row in rows {
                let (space, after, members_after, signatures_after) = row?;
                let space = uuid::Uuid::parse_str(&space)
                    .map_err(|e| Error::Corrupt(format!("membership space: {e}")))?;
                signatures_held.insert(space, signatures_after.clone());
                cursors.push(SpaceCursor {
                    space,
                    after,
                    members_after: Some(members_after),
                    signatures_after: signatures_after.filter(|_| peer_signatures),
                });
            }
            let window_end = if cursors.len() > MAX_CURSORS_PER_REQUEST {
                cursors.truncate(MAX_CURSORS_PER_REQUEST);
                cursors.last().map(|c| c.space)
            } else {
                None
            };
            // Only spaces the server knows this person in: anything else would be refused and lost.
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT o.seq, o.doc_id, o.kind, o.space_id, o.hash, o.bytes, o.signer, o.signature FROM outbox o
                 JOIN memberships m ON m.space_id = o.space_id {MAY_LEAVE_DEVICE} AND o.bytes IS NOT NULL
                 ORDER BY o.seq LIMIT ?1"
            ))?;
            let rows = stmt.query_map([max_push as i64], |r| {
                Ok((
                    (
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, Vec<u8>>(5)?,
                    ),
                    (r.get::<_, Option<String>>(6)?, r.get::<_, Option<Vec<u8>>>(7)?),
                ))
            })?;
            let mut push = Vec::new();
            let mut pushed = Vec::new();
            for row in rows {
                let ((seq, doc_id, kind, space, hash, bytes), carried) = row?;
                let kind =
                    DocKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("outbox kind {kind}")))?;
                let parse =
                    |s: &str| uuid::Uuid::parse_str(s).map_err(|e| Error::Corrupt(format!("outbox id: {e}")));
                // A change carried for another device goes as its author signed it; this
                // device's own is signed now.
                let (device, signature) = match carried {
                    (Some(signer), Some(signature)) => (parse(&signer)?, signature),
                    _ => (account.device, sign_change(self.signing_key(), &doc_id, &hash)),
                };
                push.push(Record::Change {
                    space: parse(&space)?,
                    doc: parse(&doc_id)?,
                    kind,
                    signature,
                    bytes,
                    device,
                });
                pushed.push(seq);
            }
            // Counselling rides on the first window's request, after the document changes.
            let counselling = match spaces_after {
                None => crate::counselling::exchange::request_part(conn, push.len())?,
                Some(_) => None,
            };
            let (counselling, counselling_pushed) = match counselling {
                Some((part, records, pushed_part)) => {
                    push.extend(records);
                    (Some(part), Some(pushed_part))
                }
                None => (None, None),
            };
            // Moderation rides on the first window's request too.
            let (moderation, moderation_pushed) = match spaces_after {
                None => {
                    let (part, pushed) = crate::moderation::exchange::request_part(conn)?;
                    (Some(part), Some(pushed))
                }
                Some(_) => (None, None),
            };
            let (help, help_pushed) = match spaces_after {
                None => {
                    let (part, pushed) = crate::help::exchange::request_part(conn)?;
                    (Some(part), Some(pushed))
                }
                Some(_) => (None, None),
            };
            let mut entries = PushedEntries {
                seqs: pushed,
                cursors: cursors.clone(),
                window_end,
                counselling: counselling_pushed,
                moderation: moderation_pushed,
                help: help_pushed,
                signatures_held,
                signers_asked: BTreeSet::new(),
            };
            // A device that failed to rebuild a creation record asks for snapshots from then on.
            let creation_failed: Option<i64> = conn.query_row(
                "SELECT creation_records_failed_at FROM device WHERE singleton = 1",
                [],
                |r| r.get(0),
            )?;
            // The unversioned name too, for servers from before the rule had a version.
            // And the signatures of what comes whole, so that it can be shown to peers: after
            // the content, or beside it from servers before the stream.
            let mut accepts = Vec::new();
            if peer_signatures {
                accepts.extend([
                    quartier_protocol::ACCEPTS_SIGNATURE_STREAM.to_owned(),
                    quartier_protocol::ACCEPTS_SIGNATURES.to_owned(),
                ]);
            }
            if creation_failed.is_none() {
                accepts.extend([ACCEPTS_CREATED.to_owned(), ACCEPTS_CREATED_UNVERSIONED.to_owned()]);
            }
            // Certificates and revocation lists ride on the first window's request.
            let credentials = match spaces_after {
                None => Some(crate::peer::credentials::credentials_request(
                    conn,
                    account.device,
                    crate::store::now_ms(),
                )?),
                Some(_) => None,
            };
            if let Some(asked) = &credentials {
                entries.signers_asked = asked.signers.iter().map(|s| (s.space, s.device)).collect();
            }
            let request = SyncRequest {
                protocol: PROTOCOL_VERSION,
                cursors,
                push,
                budget_bytes,
                accepts,
                counselling,
                credentials,
                moderation,
                help,
            };
            Ok((request, entries))
        })
    }

    /// Applies a server's response to the request that pushed `pushed`, in one transaction.
    ///
    /// Takes the response whole: the records' payloads move into what is stored instead of
    /// being copied beside it (a page of creation forms is megabytes once decoded).
    pub fn apply_sync_response(
        &self,
        pushed: &PushedEntries,
        mut response: SyncResponse,
    ) -> Result<ExchangeOutcome> {
        if response.protocol != PROTOCOL_VERSION {
            return Err(Error::ProtocolMismatch {
                ours: PROTOCOL_VERSION,
                theirs: vec![response.protocol],
            });
        }
        // Decode everything before touching the store: a malformed record refuses the response.
        // A creation record this core rebuilds differently is not the server's fault nor ours:
        // the pages are set aside (acknowledgements still hold), and this device asks for
        // snapshots from now on, so the same page comes again in a form it can check.
        // Creations new to the store are kept in their form (history on demand); their rule is
        // checked when a document is first built, and a form that fails then is set aside the same
        // way (`documents::distrust_creation`).
        // The signatures first: a change's hash is read from its bytes, which move below.
        let signatures = signatures_of(&response.pages);
        let mut incoming = Vec::new();
        let mut creations = Vec::new();
        let mut creation_failed = None;
        for page in &mut response.pages {
            for record in &mut page.records {
                if let Record::Created { .. } = record {
                    match incoming_creation(record) {
                        Ok(creation) => creations.extend(creation),
                        Err(e) => {
                            creation_failed = Some(e);
                            break;
                        }
                    }
                    continue;
                }
                incoming.extend(record_changes(record)?);
            }
        }
        if creation_failed.is_some() {
            incoming.clear();
            creations.clear();
        }
        let by_doc = crate::store::decode_incoming(&incoming)?;
        let now = crate::store::now_ms();
        let outcome = self.write(|tx, touched| {
            let mut outcome = ExchangeOutcome {
                received: incoming.len() + creations.len(),
                ..Default::default()
            };
            // Refusals first: returning a refused change withdraws the entries built on it,
            // whatever the server said of those (it defers them, waiting for the refused one).
            let mut acks: Vec<_> = response.acks.iter().collect();
            acks.sort_by_key(|a| !matches!(a.outcome, AckOutcome::Rejected { .. }));
            for ack in acks {
                let Some(seq) = pushed.seqs.get(ack.index as usize) else { continue };
                match &ack.outcome {
                    AckOutcome::Stored | AckOutcome::Duplicate => {
                        outcome.acknowledged += remove_outbox(tx, *seq)?;
                    }
                    AckOutcome::Rejected { code, message } => {
                        if let Some(returned) = self.return_refused_or_set_aside(tx, *seq, code.as_str(), message, touched)? {
                            outcome.rejected.push(RejectedChange {
                                doc_id: returned.doc_id,
                                code: code.as_str().to_owned(),
                                message: message.clone(),
                                reapplied: returned.reapplied,
                            });
                        }
                    }
                    AckOutcome::Deferred { reason, .. } => {
                        outcome.deferred.extend(mark_deferred(tx, *seq, reason.as_str(), now)?);
                    }
                    AckOutcome::Unknown => {
                        outcome.deferred.extend(mark_deferred(tx, *seq, "unknown", now)?);
                    }
                }
            }
            // Counselling keeps its own cursors (they only move forward): its answer holds unless
            // the request is stale.
            if let Some(part) = &pushed.counselling {
                let current = creation_failed.is_none() && !is_stale(tx, pushed, &response)?;
                let applied = crate::counselling::exchange::apply_part(
                    tx,
                    part,
                    &response.acks,
                    response.counselling.as_ref().filter(|_| current),
                )?;
                outcome.received += applied.received;
                outcome.more |= applied.more;
                outcome.counselling_erased += applied.erased;
                touched.counselling.extend(applied.channels);
            }
            // Credentials hold whenever they arrive: each is checked against the pinned key.
            if let Some(credentials) = &response.credentials {
                crate::peer::credentials::apply_credentials(tx, credentials)?;
            }
            // Moderation keeps its own cursors, and applies each log entry once.
            if let (Some(part), Some(answer)) = (&pushed.moderation, &response.moderation) {
                let applied = crate::moderation::exchange::apply_part(tx, part, answer, touched)?;
                outcome.more |= applied.more;
                outcome.moderation_erased += applied.erased;
            }
            if let (Some(part), Some(answer)) = (&pushed.help, &response.help) {
                outcome.more |= crate::help::exchange::apply_part(tx, part, answer, touched)?;
            }
            // Acknowledgements hold whenever they arrive (outbox positions are never reused); the
            // rest only if the store still stands where the request was built.
            if let Some(e) = &creation_failed {
                tracing::warn!(error = %e, "a creation record did not rebuild; asking for snapshots from now on");
                tx.execute("UPDATE device SET creation_records_failed_at = ?1 WHERE singleton = 1", [now])?;
                outcome.more = true;
                return Ok(outcome);
            }
            if is_stale(tx, pushed, &response)? {
                outcome.stale = true;
                outcome.received = 0;
                outcome.more = true;
                return Ok(outcome);
            }
            let revoked: BTreeSet<String> = response.revoked.iter().map(|s| s.to_string()).collect();
            let mut report = crate::store::MergeReport::default();
            if let CreationsApplied::Unbuildable(e) = self.merge_creations(tx, creations, &mut report, touched)? {
                tracing::warn!(error = %e, "a creation record did not rebuild; asking for snapshots from now on");
                tx.execute("UPDATE device SET creation_records_failed_at = ?1 WHERE singleton = 1", [now])?;
                outcome.more = true;
                return Ok(outcome);
            }
            self.merge_decoded(tx, by_doc, touched)?;
            // The authors' signatures, kept to show the changes to peers.
            for (doc, hash, device, signature) in &signatures {
                crate::peer::credentials::keep_signature(tx, doc, hash, *device, signature)?;
                crate::peer::relay::delivered(tx, hash)?;
            }
            // Devices whose signatures are new here: their certificates are asked for in this
            // same sync, so that what they signed can be shown to peers at once. Not those this
            // request asked for already (the server could not issue them: their person left).
            if let Some(account) = load_account(tx)? {
                for (space, signer) in signers_of(&response.pages) {
                    if signer == account.device || signer.is_nil() {
                        continue;
                    }
                    crate::peer::credentials::keep_signer(tx, space, signer)?;
                    outcome.more |= !pushed.signers_asked.contains(&(space, signer))
                        && !crate::peer::credentials::holds_certificate(tx, signer, space)?;
                }
            }
            for page in &response.pages {
                outcome.more |= page.more;
                if touched.refetch.contains(&page.space.to_string()) {
                    outcome.more = true;
                    continue;
                }
                // The stream moves only from where it stood when the request was built.
                let held = pushed.signatures_held.get(&page.space).cloned().flatten();
                tx.prepare_cached(
                    "INSERT INTO sync_spaces (space_id, cursor, signatures_next, last_success, last_attempt, last_error)
                     VALUES (?1, ?2, ?3, ?4, ?4, NULL)
                     ON CONFLICT (space_id) DO UPDATE SET cursor = excluded.cursor,
                         signatures_next = CASE WHEN signatures_next IS ?5 THEN excluded.signatures_next
                                                ELSE signatures_next END,
                         last_success = excluded.last_success, last_attempt = excluded.last_attempt,
                         last_error = NULL",
                )?
                .execute(params![page.space.to_string(), page.next, page.signatures_next, now, held])?;
                if let Some(roster) = &page.roster {
                    apply_roster(tx, page.space, roster)?;
                }
            }
            for membership in &response.memberships {
                if !revoked.contains(&membership.space.to_string()) {
                    let set_aside = drop_what_a_new_role_may_not_read(tx, membership, touched)?;
                    outcome.rejected.extend(set_aside.into_iter().map(RejectedChange::from));
                    // A space new to this store (a further device of the person at its first
                    // sync, a membership granted elsewhere) is fetched in this same sync: the
                    // request did not carry its cursor.
                    let before: Option<String> = tx
                        .prepare_cached("SELECT role FROM memberships WHERE space_id = ?1")?
                        .query_row([membership.space.to_string()], |r| r.get(0))
                        .optional()?;
                    outcome.more |= before.is_none();
                    // The moderation log is cut to the role: a new role reads it again from
                    // the start (a new coordinator gets the reports, a former one loses them).
                    if before.as_deref().is_some_and(|r| r != membership.role.as_str()) {
                        crate::moderation::exchange::forget_log(tx, &membership.space.to_string())?;
                        outcome.more = true;
                    }
                    record_membership(tx, membership)?;
                }
            }
            // A device that has just learnt it is a caseworker's publishes its counselling
            // identity in this same sync, so that residents can give it their keys.
            if response.memberships.iter().any(|m| m.role == quartier_protocol::Role::Caseworker)
                && crate::counselling::state::caseworker_curve(tx)?.is_none()
            {
                outcome.more = true;
            }
            for space in revoked {
                let set_aside = crate::store::purge_space(tx, &space, touched)?;
                outcome.rejected.extend(set_aside.into_iter().map(RejectedChange::from));
                outcome.purged.push(space);
            }
            // Reminders of followed events, with what this sync brought (not of spaces left).
            crate::notifications::remind(tx, chrono::Utc::now(), touched)?;
            Ok(outcome)
        })?;
        // Erased counselling content leaves the WAL too (its pages were zeroed by
        // secure_delete); best effort, as after an item's erasure.
        if outcome.counselling_erased > 0 || outcome.moderation_erased > 0 {
            self.checkpoint_after_erasure();
        }
        Ok(outcome)
    }

    /// Outbox entries the server has deferred and not taken yet, oldest first; those deferred
    /// for longer than `overdue_after_ms` are marked overdue.
    pub fn deferred_changes(&self, overdue_after_ms: i64) -> Result<Vec<DeferredChange>> {
        let now = crate::store::now_ms();
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT doc_id, defer_reason, deferred_since FROM outbox
                 WHERE deferred_since IS NOT NULL ORDER BY deferred_since, seq",
            )?;
            let rows = stmt.query_map([], |r| {
                let since_ms: i64 = r.get(2)?;
                Ok(DeferredChange {
                    doc_id: r.get(0)?,
                    reason: r.get::<_, Option<String>>(1)?.unwrap_or_else(|| "unknown".into()),
                    since_ms,
                    overdue: now.saturating_sub(since_ms) > overdue_after_ms,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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

impl Store {
    /// Returns a refused change (see `store::refusal`); if that fails (a document this core
    /// cannot rebuild), the attempt is rolled back and the entry only leaves the outbox for the
    /// undelivered list, so one bad document can never fail every later sync the same way.
    fn return_refused_or_set_aside(
        &self,
        tx: &Connection,
        seq: i64,
        code: &str,
        message: &str,
        touched: &mut crate::store::Touched,
    ) -> Result<Option<crate::store::Returned>> {
        tx.execute_batch("SAVEPOINT return_refused")?;
        match self.return_refused(tx, seq, code, message, touched) {
            Ok(returned) => {
                tx.execute_batch("RELEASE return_refused")?;
                Ok(returned)
            }
            Err(e) => {
                tracing::warn!(error = %e, "a refused change could not be returned; it is set aside as undelivered");
                tx.execute_batch("ROLLBACK TO return_refused; RELEASE return_refused")?;
                self.set_refused_aside(tx, seq, code, message)
            }
        }
    }
}

/// Notes that the server deferred an outbox entry (the first time, and why); `None` if the entry
/// is gone (withdrawn with a refused change it was built on).
fn mark_deferred(conn: &Connection, seq: i64, reason: &str, now: i64) -> Result<Option<DeferredChange>> {
    Ok(
        crate::store::defer_entry(conn, seq, reason, now)?.map(|(doc_id, since_ms)| DeferredChange {
            doc_id,
            reason: reason.to_owned(),
            since_ms,
            overdue: false,
        }),
    )
}

/// A demoted member's device drops the items its new role may not read (`docs/permissions.md`).
fn drop_what_a_new_role_may_not_read(
    tx: &Connection,
    membership: &quartier_protocol::Membership,
    touched: &mut crate::store::Touched,
) -> Result<Vec<crate::store::SetAside>> {
    crate::store::purge_unreadable(
        tx,
        &membership.space.to_string(),
        &membership.person.to_string(),
        membership.role,
        touched,
    )
}

impl From<crate::store::SetAside> for RejectedChange {
    fn from(set_aside: crate::store::SetAside) -> Self {
        RejectedChange {
            doc_id: set_aside.doc_id,
            code: set_aside.code.to_owned(),
            message: set_aside.message.to_owned(),
            reapplied: 0,
        }
    }
}

fn remove_outbox(conn: &Connection, seq: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
        .execute([seq])?)
}

/// The creation form a `Record::Created` carries, after the checks that need no building
/// ([`IncomingCreation::validate`]); its payload moves out of the record.
fn incoming_creation(record: &mut Record) -> Result<Option<IncomingCreation>> {
    let Record::Created {
        space,
        doc,
        kind,
        actor,
        time_ms,
        message,
        state,
        check,
    } = record
    else {
        return Ok(None);
    };
    let incoming = IncomingCreation {
        doc_id: doc.to_string(),
        kind: *kind,
        space: Some(crate::model::SpaceId::from(*space)),
        creation: crate::document::Creation {
            actor: std::mem::take(actor),
            time_ms: *time_ms,
            message: message.take(),
            state: std::mem::take(state),
            check: std::mem::take(check),
        },
    };
    incoming.validate()?;
    Ok(Some(incoming))
}

/// The signed changes of a response's pages: (document, change hash, device, signature).
fn signatures_of(pages: &[quartier_protocol::SpacePage]) -> Vec<(String, Vec<u8>, uuid::Uuid, Vec<u8>)> {
    let mut out: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.signatures)
        .map(|s| (s.doc.to_string(), s.hash.clone(), s.device, s.signature.clone()))
        .collect();
    for record in pages.iter().flat_map(|p| &p.records) {
        if let Record::Change {
            doc,
            bytes,
            device,
            signature,
            ..
        } = record
        {
            // Decoded before (a malformed change refused the response already).
            if let Ok(change) = guarded::decode(bytes.clone()) {
                out.push((
                    doc.to_string(),
                    change.hash().0.to_vec(),
                    *device,
                    signature.clone(),
                ));
            }
        }
    }
    out
}

/// The devices whose signatures a response's pages bring, by space.
fn signers_of(pages: &[quartier_protocol::SpacePage]) -> BTreeSet<(uuid::Uuid, uuid::Uuid)> {
    let mut out = BTreeSet::new();
    for page in pages {
        out.extend(page.signatures.iter().map(|s| (page.space, s.device)));
        out.extend(page.records.iter().filter_map(|r| match r {
            Record::Change { device, .. } => Some((page.space, *device)),
            _ => None,
        }));
    }
    out
}

/// The changes a record carries: a change itself (its bytes move out of the record), or every
/// change of a snapshot (creations are taken by [`incoming_creation`]).
fn record_changes(record: &mut Record) -> Result<Vec<IncomingChange>> {
    Ok(match record {
        Record::Change { doc, kind, bytes, .. } => {
            vec![IncomingChange {
                doc_id: doc.to_string(),
                kind: *kind,
                bytes: std::mem::take(bytes),
            }]
        }
        Record::Snapshot { doc, kind, bytes, .. } => {
            let malformed = |e: guarded::Unsound| Error::MalformedChange {
                doc: doc.to_string(),
                reason: format!("snapshot: {e}"),
            };
            let loaded = guarded::load(&std::mem::take(bytes)).map_err(malformed)?;
            guarded::changes_since(&loaded, &[])
                .map_err(malformed)?
                .into_iter()
                .map(|c| IncomingChange {
                    doc_id: doc.to_string(),
                    kind: *kind,
                    bytes: c.raw_bytes().to_vec(),
                })
                .collect()
        }
        // Counselling records travel in their own part of the answer, never in a space's page.
        Record::Created { .. } | Record::Sealed { .. } | Record::ToDevice { .. } | Record::Unknown => {
            Vec::new()
        }
    })
}

#[cfg(test)]
mod tests {
    //! The exchange without a network: responses are written by hand, as a server would answer.

    use quartier_protocol::{
        accepts_created_v1, Ack, DeferReason, MemberInfo, Membership, RejectCode, Role, RosterChanges,
    };

    use super::*;
    use crate::model::*;
    use crate::sync::account::{record_membership, save_account, Account};
    use crate::StoreOptions;

    struct Phone {
        _dir: tempfile::TempDir,
        store: Store,
        person: PersonId,
        space: SpaceId,
    }

    fn phone() -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("phone.db"), StoreOptions::default()).unwrap();
        let person = PersonId::new();
        let space = store
            .create_space(
                SpaceMeta {
                    name: LocalizedText::single("de", "Nippes"),
                    description: LocalizedText::single("de", "Veedel"),
                    time_zone: "Europe/Berlin".into(),
                    default_language: "de".into(),
                    categories: Default::default(),
                    layers: Default::default(),
                },
                person,
            )
            .unwrap()
            .id;
        let account = Account {
            server: "http://127.0.0.1:9".into(),
            device: uuid::Uuid::now_v7(),
            person,
            token: "t".into(),
        };
        let membership = Membership {
            space: space.as_uuid(),
            person: person.as_uuid(),
            role: Role::Coordinator,
        };
        store
            .write(|tx, _| {
                save_account(tx, &account)?;
                record_membership(tx, &membership)
            })
            .unwrap();
        // The space's own creation, taken by the server.
        push_all(&store, |_| AckOutcome::Stored);
        Phone {
            _dir: dir,
            store,
            person,
            space,
        }
    }

    /// An edit that gives the item this German title.
    fn title_patch(text: &str) -> ItemPatch {
        ItemPatch {
            title: Some(LocalizedText::single("de", text)),
            ..Default::default()
        }
    }

    /// An edit that gives the item this German body.
    fn body_patch(text: &str) -> ItemPatch {
        ItemPatch {
            body: Some(LocalizedText::single("de", text)),
            ..Default::default()
        }
    }

    fn news(p: &Phone, title: &str) -> Item {
        let content = ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        );
        p.store
            .create_item(NewItem::new(p.space, p.person, content))
            .unwrap()
    }

    fn answer(acks: Vec<AckOutcome>) -> SyncResponse {
        SyncResponse {
            protocol: PROTOCOL_VERSION,
            acks: acks
                .into_iter()
                .enumerate()
                .map(|(index, outcome)| Ack {
                    index: index as u32,
                    outcome,
                })
                .collect(),
            pages: Vec::new(),
            memberships: Vec::new(),
            revoked: Vec::new(),
            counselling: None,
            credentials: None,
            moderation: None,
            help: None,
        }
    }

    fn push_all(store: &Store, outcome: impl Fn(&Record) -> AckOutcome) -> (Vec<Record>, ExchangeOutcome) {
        let (request, pushed) = store.build_sync_request(1 << 20, 100).unwrap();
        let response = answer(request.push.iter().map(&outcome).collect());
        let applied = store.apply_sync_response(&pushed, response.clone()).unwrap();
        (request.push, applied)
    }

    fn deps_of(record: &Record) -> Vec<automerge::ChangeHash> {
        let Record::Change { bytes, .. } = record else {
            panic!("a change")
        };
        automerge::Change::from_bytes(bytes.clone())
            .unwrap()
            .deps()
            .to_vec()
    }

    fn hash_of(record: &Record) -> automerge::ChangeHash {
        let Record::Change { bytes, .. } = record else {
            panic!("a change")
        };
        automerge::Change::from_bytes(bytes.clone()).unwrap().hash()
    }

    /// An edit made while the push carrying an earlier edit is on its way is kept as a patch;
    /// when the server refuses the earlier edit, the later one is built and made again on the
    /// accepted state like any later edit, and nothing the person wrote is lost.
    #[test]
    fn an_edit_made_while_a_refused_one_was_on_its_way_is_made_again_on_the_accepted_state() {
        let p = phone();
        let item = news(&p, "Alt");
        let (accepted, _) = push_all(&p.store, |_| AckOutcome::Stored);
        let creation = accepted.iter().map(hash_of).next_back().unwrap();
        let title = title_patch("Verboten");
        p.store.update_item(item.id, &title, p.person).unwrap();
        let (request, pushed) = p.store.build_sync_request(1 << 20, 100).unwrap();
        assert_eq!(request.push.len(), 1, "the title edit is built and sent");
        let body = body_patch("Unterwegs geschrieben");
        p.store.update_item(item.id, &body, p.person).unwrap();
        let response = answer(vec![AckOutcome::Rejected {
            code: RejectCode::Forbidden,
            message: "a resident may not make this change".into(),
        }]);
        let outcome = p.store.apply_sync_response(&pushed, response.clone()).unwrap();
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(outcome.rejected[0].reapplied, 1, "the body edit is made again");
        let detail = p
            .store
            .item_detail(item.id, &Viewer::new(p.person, Role::Coordinator))
            .unwrap();
        assert_eq!(detail.item.content.title.get("de"), Some("Alt"));
        assert_eq!(detail.item.content.body.get("de"), Some("Unterwegs geschrieben"));
        let (again, _) = push_all(&p.store, |_| AckOutcome::Stored);
        assert_eq!(again.len(), 1, "only the body edit goes out");
        assert_eq!(
            deps_of(&again[0]),
            vec![creation],
            "built on what the server accepted"
        );
        assert_eq!(p.store.outbox_len().unwrap(), 0);
    }

    /// An edit kept as a patch whose stored entry is damaged does not stop the sync: it is
    /// reported as waiting (never sent half-built), the other changes go out, and a change of the
    /// same item from elsewhere still merges.
    #[test]
    fn a_damaged_edit_kept_as_a_patch_is_reported_not_a_wedge() {
        let p = phone();
        let item = news(&p, "Tauschbörse");
        push_all(&p.store, |_| AckOutcome::Stored);
        // The first edit after a push is built at once (it checks the sealed form); the ones
        // after it are kept as patches.
        let first = body_patch("Bücher und Spiele");
        p.store.update_item(item.id, &first, p.person).unwrap();
        push_all(&p.store, |_| AckOutcome::Stored);
        p.store
            .update_item(item.id, &title_patch("Tauschbörse im Hof"), p.person)
            .unwrap();
        p.store
            .write(|tx, _| {
                Ok(tx.execute(
                    "UPDATE outbox SET edit = x'28b52ffd00' WHERE edit IS NOT NULL",
                    [],
                )?)
            })
            .unwrap();
        p.store
            .update_item(
                item.id,
                &ItemPatch {
                    tags: Some(["tausch".to_owned()].into()),
                    ..Default::default()
                },
                p.person,
            )
            .unwrap();
        let other = news(&p, "Lesecafé");
        let (pushed, _) = push_all(&p.store, |_| AckOutcome::Stored);
        assert_eq!(pushed.len(), 2, "the later edit and the other item go out");
        let deferred = p.store.deferred_changes(0).unwrap();
        assert_eq!(deferred.len(), 1, "{deferred:?}");
        assert_eq!(deferred[0].doc_id, item.id.to_string());
        assert!(
            deferred[0].reason.contains("could not be prepared"),
            "{deferred:?}"
        );
        let viewer = Viewer::new(p.person, Role::Coordinator);
        assert_eq!(
            p.store
                .item_detail(other.id, &viewer)
                .unwrap()
                .item
                .content
                .title
                .get("de"),
            Some("Lesecafé")
        );
        // A change from elsewhere to the same item still merges.
        let (_dir, elsewhere) = {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path().join("e.db"), crate::StoreOptions::default()).unwrap();
            (dir, store)
        };
        let changes = p.store.document_changes(&p.space.to_string()).unwrap();
        elsewhere.apply_changes(&changes).unwrap();
        let item_changes = p.store.document_changes(&item.id.to_string()).unwrap();
        assert_eq!(
            item_changes.len(),
            3,
            "the damaged edit is not built, the later one is"
        );
        elsewhere.apply_changes(&item_changes).unwrap();
        elsewhere
            .update_item(item.id, &body_patch("Jeden Samstag"), p.person)
            .unwrap();
        let report = p
            .store
            .apply_changes(&elsewhere.document_changes(&item.id.to_string()).unwrap())
            .unwrap();
        assert_eq!(report.applied, 1);
        assert_eq!(
            p.store
                .item_detail(item.id, &viewer)
                .unwrap()
                .item
                .content
                .body
                .get("de"),
            Some("Jeden Samstag")
        );
    }

    /// A refused title edit followed by an allowed body edit built on it: the title returns to
    /// what the server has, the body edit is made again on the accepted state (so it no longer
    /// depends on the refused change), and the refused edit is listed for the person.
    #[test]
    fn a_refused_change_is_returned_and_the_later_edit_made_again_on_the_accepted_state() {
        let p = phone();
        let item = news(&p, "Alt");
        let (accepted, _) = push_all(&p.store, |_| AckOutcome::Stored);
        let creation = accepted.iter().map(hash_of).next_back().unwrap();

        let title = title_patch("Verboten");
        p.store.update_item(item.id, &title, p.person).unwrap();
        let body = body_patch("Neuer Text");
        p.store.update_item(item.id, &body, p.person).unwrap();

        let refused_hash = std::cell::Cell::new(None);
        let (pushed, outcome) = push_all(&p.store, |record| {
            if refused_hash.get().is_none() {
                refused_hash.set(Some(hash_of(record)));
                AckOutcome::Rejected {
                    code: RejectCode::Forbidden,
                    message: "a resident may not make this change".into(),
                }
            } else {
                AckOutcome::Deferred {
                    message: "waiting".into(),
                    reason: DeferReason::MissingDependency,
                }
            }
        });
        assert_eq!(pushed.len(), 2);
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(outcome.rejected[0].code, "forbidden");
        assert_eq!(outcome.rejected[0].reapplied, 1);
        assert!(
            outcome.deferred.is_empty(),
            "the deferred edit was withdrawn with the refused one: {:?}",
            outcome.deferred
        );

        let detail = p
            .store
            .item_detail(item.id, &Viewer::new(p.person, Role::Coordinator))
            .unwrap();
        let now = &detail.item;
        assert_eq!(
            now.content.title.get("de"),
            Some("Alt"),
            "back to what the server has"
        );
        assert_eq!(
            now.content.body.get("de"),
            Some("Neuer Text"),
            "the later edit is kept"
        );
        assert_eq!(
            detail.history.len(),
            2,
            "history: the creation and the remade edit, not the refused one"
        );

        let (again, _) = push_all(&p.store, |_| AckOutcome::Stored);
        assert_eq!(again.len(), 1, "only the remade edit is pushed");
        assert_eq!(
            deps_of(&again[0]),
            vec![creation],
            "built on what the server accepted"
        );
        assert!(!p
            .store
            .document_changes(&item.id.to_string())
            .unwrap()
            .iter()
            .any(|c| automerge::Change::from_bytes(c.bytes.clone()).unwrap().hash()
                == refused_hash.get().unwrap()));

        let undelivered = p.store.undelivered_changes().unwrap();
        assert_eq!(undelivered.len(), 1);
        assert_eq!(undelivered[0].fields, vec!["title".to_owned()]);
        assert_eq!(undelivered[0].doc_id, item.id.to_string());
        let kept: serde_json::Value =
            serde_json::from_str(undelivered[0].content.as_deref().unwrap()).unwrap();
        assert_eq!(kept["title"]["de"], "Verboten", "what the person wrote, to copy");
        assert!(
            kept.get("body").is_none(),
            "only the fields that did not get through"
        );

        // Losing the space keeps the record (the person is still told) without its content:
        // nothing of the space stays on the device.
        let mut revoked = answer(Vec::new());
        revoked.revoked.push(p.space.as_uuid());
        let (_, pushed) = p.store.build_sync_request(1 << 20, 0).unwrap();
        p.store.apply_sync_response(&pushed, revoked.clone()).unwrap();
        let left = p.store.undelivered_changes().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(
            (left[0].fields.clone(), left[0].content.clone()),
            (vec!["title".to_owned()], None)
        );
    }

    /// Remaking a later edit never overwrites what someone else changed in the same field since:
    /// that field is reported as not delivered instead.
    #[test]
    fn a_remade_edit_does_not_undo_someone_elses_concurrent_edit() {
        let p = phone();
        let item = news(&p, "Alt");
        push_all(&p.store, |_| AckOutcome::Stored);
        let dir = tempfile::tempdir().unwrap();
        let other = Store::open(dir.path().join("other.db"), StoreOptions::default()).unwrap();
        other
            .apply_changes(&p.store.document_changes(&item.id.to_string()).unwrap())
            .unwrap();

        let title = title_patch("Verboten");
        p.store.update_item(item.id, &title, p.person).unwrap();
        let tags = ItemPatch {
            tags: Some(["mein".to_owned()].into()),
            ..Default::default()
        };
        p.store.update_item(item.id, &tags, p.person).unwrap();
        // A coordinator, concurrently, sets other tags; it reaches this phone before the refusal.
        let moderated = ItemPatch {
            tags: Some(["moderiert".to_owned()].into()),
            ..Default::default()
        };
        other.update_item(item.id, &moderated, PersonId::new()).unwrap();
        let theirs: Vec<IncomingChange> = other.document_changes(&item.id.to_string()).unwrap();
        p.store.apply_changes(&theirs).unwrap();

        let first = std::cell::Cell::new(true);
        let (_, outcome) = push_all(&p.store, |_| {
            if first.replace(false) {
                AckOutcome::Rejected {
                    code: RejectCode::Forbidden,
                    message: "no".into(),
                }
            } else {
                AckOutcome::Deferred {
                    message: "waiting".into(),
                    reason: DeferReason::MissingDependency,
                }
            }
        });
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(
            outcome.rejected[0].reapplied, 0,
            "nothing of the later edit could be made again"
        );
        let detail = p
            .store
            .item_detail(item.id, &Viewer::new(p.person, Role::Coordinator))
            .unwrap();
        assert_eq!(
            detail.item.content.tags,
            ["moderiert".to_owned()].into(),
            "the coordinator's tags stay"
        );
        assert_eq!(detail.item.content.title.get("de"), Some("Alt"));
        let undelivered = p.store.undelivered_changes().unwrap();
        assert_eq!(undelivered[0].fields, vec!["tags".to_owned(), "title".to_owned()]);
    }

    /// The server failing for a moment is not a refusal: the change stays, and the first time it
    /// was deferred is what counts towards "overdue".
    #[test]
    fn a_server_fault_keeps_the_change_and_remembers_since_when() {
        let p = phone();
        news(&p, "Hallo");
        let fault = |_: &Record| AckOutcome::Deferred {
            message: "later".into(),
            reason: DeferReason::ServerFault,
        };
        let (_, first) = push_all(&p.store, fault);
        assert!(first.rejected.is_empty());
        assert_eq!(first.deferred.len(), 1);
        assert_eq!(first.deferred[0].reason, "server_fault");
        std::thread::sleep(std::time::Duration::from_millis(3));
        let (_, second) = push_all(&p.store, fault);
        assert_eq!(second.deferred[0].since_ms, first.deferred[0].since_ms);
        assert_eq!(p.store.sync_outbox_len().unwrap(), 1);
        let listed = p.store.deferred_changes(0).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].overdue);
        assert!(!p.store.deferred_changes(i64::MAX).unwrap()[0].overdue);
        let (_, done) = push_all(&p.store, |_| AckOutcome::Stored);
        assert_eq!(done.acknowledged, 1);
        assert!(p.store.deferred_changes(0).unwrap().is_empty());
    }

    /// A page of `p`'s space with this content cursor and stream of signatures, nothing else.
    fn stream_page(p: &Phone, next: &str, signatures_next: Option<&str>) -> SyncResponse {
        let mut response = answer(Vec::new());
        response.pages.push(quartier_protocol::SpacePage {
            space: p.space.as_uuid(),
            records: Vec::new(),
            next: next.into(),
            more: false,
            roster: None,
            signatures: Vec::new(),
            signatures_next: signatures_next.map(str::to_owned),
        });
        response
    }

    /// The stream of signatures moves only from where it stood when the request was built: an
    /// answer to a request built before the app turned the signatures on does not undo that,
    /// and a late copy of an answer does not move the stream back.
    #[test]
    fn the_stream_of_signatures_moves_only_from_where_the_request_left_it() {
        let p = phone();
        let stream = |p: &Phone| {
            let (request, _) = p.store.build_sync_request(1 << 20, 0).unwrap();
            let listed = request
                .accepts
                .iter()
                .any(|a| a == quartier_protocol::ACCEPTS_SIGNATURE_STREAM);
            (request.cursors[0].signatures_after.clone(), listed)
        };
        let (_, first) = p.store.build_sync_request(1 << 20, 0).unwrap();
        p.store
            .apply_sync_response(&first, stream_page(&p, "c:5", None))
            .unwrap();
        p.store.set_peer_signatures(false).unwrap();
        assert_eq!(stream(&p), (None, false), "off: no stream, not listed");
        let (_, built_while_off) = p.store.build_sync_request(1 << 20, 0).unwrap();
        p.store.set_peer_signatures(true).unwrap();
        p.store
            .apply_sync_response(&built_while_off, stream_page(&p, "c:6", None))
            .unwrap();
        assert_eq!(
            stream(&p),
            (Some(String::new()), true),
            "turned on: from the start"
        );

        let (_, asked) = p.store.build_sync_request(1 << 20, 0).unwrap();
        let late_copy = stream_page(&p, "c:6", Some("g:3:9"));
        p.store.apply_sync_response(&asked, late_copy.clone()).unwrap();
        assert_eq!(stream(&p).0.as_deref(), Some("g:3:9"));
        let (_, next) = p.store.build_sync_request(1 << 20, 0).unwrap();
        p.store
            .apply_sync_response(&next, stream_page(&p, "c:6", Some("g:7:9")))
            .unwrap();
        p.store.apply_sync_response(&asked, late_copy.clone()).unwrap();
        assert_eq!(stream(&p).0.as_deref(), Some("g:7:9"), "not moved back");
        let (_, last) = p.store.build_sync_request(1 << 20, 0).unwrap();
        p.store
            .apply_sync_response(&last, stream_page(&p, "c:6", None))
            .unwrap();
        assert_eq!(stream(&p), (None, true), "complete");
    }

    /// A creation record that fails the checks made on arrival (here: a state that is not JSON)
    /// sets the page aside and switches the device to snapshots, so the same page is not asked
    /// for unchanged again.
    #[test]
    fn a_malformed_creation_record_switches_to_snapshots() {
        let p = phone();
        let (request, pushed) = p.store.build_sync_request(1 << 20, 0).unwrap();
        assert!(request.accepts.iter().any(|a| a == ACCEPTS_CREATED));
        let cursor_before = request.cursors.clone();
        let mut response = answer(Vec::new());
        response.pages.push(quartier_protocol::SpacePage {
            space: p.space.as_uuid(),
            records: vec![Record::Created {
                space: p.space.as_uuid(),
                doc: uuid::Uuid::now_v7(),
                kind: DocKind::Item,
                actor: vec![1; 16],
                time_ms: 1,
                message: None,
                state: "not json".into(),
                check: vec![0, 0, 0, 0],
            }],
            next: "c:99".into(),
            more: false,
            roster: None,
            signatures: Vec::new(),
            signatures_next: None,
        });
        let outcome = p.store.apply_sync_response(&pushed, response.clone()).unwrap();
        assert!(outcome.more, "the page is asked for again");
        assert_eq!(outcome.received, 0);
        let (again, _) = p.store.build_sync_request(1 << 20, 0).unwrap();
        assert_eq!(again.cursors, cursor_before, "the cursor did not move");
        assert!(
            !accepts_created_v1(&again.accepts),
            "snapshots from now on: {:?}",
            again.accepts
        );
    }

    /// An item written by another device in `p`'s space, as that device's Automerge document.
    fn written_elsewhere(p: &Phone, title: &str) -> (Item, automerge::Automerge) {
        let at = chrono::DateTime::from_timestamp_millis(crate::store::now_ms()).unwrap();
        let content = ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        );
        let item = NewItem::new(p.space, p.person, content).into_item(at);
        let actor = automerge::ActorId::random();
        let change = crate::document::new_item_change(&item, &actor).unwrap();
        let mut doc = automerge::Automerge::new();
        doc.apply_changes([change]).unwrap();
        (item, doc)
    }

    /// The author retitles `item` on its own device (`doc`); the change as a page record.
    fn retitled_elsewhere(
        p: &Phone,
        item: &Item,
        doc: &mut automerge::Automerge,
        title: &str,
    ) -> (Item, Record) {
        let mut edited = item.clone();
        edited.content.title = LocalizedText::single("de", title);
        let note = crate::document::ChangeNote::new(p.person, ["title"]);
        let json = crate::document::item_to_json(&edited).unwrap();
        let change = crate::document::write_change(doc, &item.id.to_string(), DocKind::Item, &json, &note, 5)
            .unwrap()
            .unwrap();
        let record = Record::Change {
            space: p.space.as_uuid(),
            doc: item.id.as_uuid(),
            kind: DocKind::Item,
            signature: vec![0; 64],
            bytes: change.raw_bytes().to_vec(),
            device: uuid::Uuid::now_v7(),
        };
        (edited, record)
    }

    fn snapshot_record(p: &Phone, item: &Item, doc: &automerge::Automerge) -> Record {
        Record::Snapshot {
            space: p.space.as_uuid(),
            doc: item.id.as_uuid(),
            kind: DocKind::Item,
            bytes: doc.save(),
        }
    }

    fn creation_record(p: &Phone, item: &Item, doc: &automerge::Automerge) -> Record {
        crate::document::creation_of(doc, &item.id.to_string(), DocKind::Item)
            .unwrap()
            .expect("a new item has a creation form")
            .into_record(p.space.as_uuid(), item.id.as_uuid(), DocKind::Item)
    }

    /// Applies one page of `records` for `p`'s space, after the cursor it stands at.
    fn receive(p: &Phone, records: Vec<Record>) -> ExchangeOutcome {
        let (request, pushed) = p.store.build_sync_request(1 << 20, 0).unwrap();
        let after = request.cursors[0].after.clone().unwrap_or_else(|| "c:0".into());
        let next: u64 = after.trim_start_matches("c:").parse::<u64>().unwrap_or(0) + 1;
        let mut response = answer(Vec::new());
        response.pages.push(quartier_protocol::SpacePage {
            space: p.space.as_uuid(),
            records,
            next: format!("c:{next}"),
            more: false,
            roster: None,
            signatures: Vec::new(),
            signatures_next: None,
        });
        p.store.apply_sync_response(&pushed, response.clone()).unwrap()
    }

    fn creation_kept(p: &Phone, item: &Item) -> bool {
        p.store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT creation IS NOT NULL FROM documents WHERE doc_id = ?1",
                    [item.id.to_string()],
                    |r| r.get::<_, bool>(0),
                )?)
            })
            .unwrap()
    }

    fn history_keys(p: &Phone, item: &Item) -> Vec<String> {
        let viewer = Viewer::new(p.person, Role::Coordinator);
        let detail = p.store.item_detail(item.id, &viewer).unwrap();
        detail.history.into_iter().map(|h| h.change).collect()
    }

    /// History on demand: a document received in creation form is shown at once without being
    /// built; the first edit builds it bit for bit (same heads as its author's), stores the change
    /// and gives its history entry the full hash.
    #[test]
    fn a_received_creation_is_kept_in_its_form_until_the_first_edit() {
        let p = phone();
        let (item, doc) = written_elsewhere(&p, "Flohmarkt am Samstag");
        let created_hash = doc.get_heads()[0];
        let outcome = receive(&p, vec![creation_record(&p, &item, &doc)]);
        assert_eq!(outcome.received, 1);
        let viewer = Viewer::new(p.person, Role::Coordinator);
        assert_eq!(p.store.item_detail(item.id, &viewer).unwrap().item, item);
        assert!(creation_kept(&p, &item), "kept in its form, not built");
        let stored: i64 = p
            .store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT length(creation) FROM documents WHERE doc_id = ?1",
                    [item.id.to_string()],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert!(
            stored < 200,
            "the state is left to the projection: {stored} bytes"
        );
        let key = history_keys(&p, &item);
        assert_eq!(key.len(), 1);
        assert!(created_hash.to_string().starts_with(&key[0]), "{key:?}");
        assert_eq!(
            p.store.document_heads(&item.id.to_string()).unwrap(),
            vec![created_hash.to_string()],
            "reading the document builds the same change"
        );

        let patch = title_patch("Flohmarkt am Sonntag");
        p.store.update_item(item.id, &patch, p.person).unwrap();
        assert!(!creation_kept(&p, &item), "built and stored on the first edit");
        let keys = history_keys(&p, &item);
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[0],
            created_hash.to_string(),
            "the history entry got the full hash"
        );
        let changes = p.store.document_changes(&item.id.to_string()).unwrap();
        assert_eq!(changes.len(), 2);
        // The edit went out on top of the author's change, as the server will check.
        let pending = p.store.pending_changes(10).unwrap();
        let edit = automerge::Change::from_bytes(pending.last().unwrap().bytes.clone()).unwrap();
        assert_eq!(edit.deps(), vec![created_hash]);
        assert_eq!(
            history_keys(&p, &item)[1],
            edit.hash().to_string(),
            "the edit's history entry has its hash once it is built"
        );
        // Received again (a replayed page), it is a duplicate, not a second document.
        receive(&p, vec![creation_record(&p, &item, &doc)]);
        assert_eq!(p.store.document_changes(&item.id.to_string()).unwrap().len(), 2);
    }

    /// A creation record whose check bytes do not match its change: what a server with other
    /// rules would send.
    fn with_wrong_check(mut record: Record) -> Record {
        let Record::Created { check, .. } = &mut record else {
            unreachable!("a creation record")
        };
        check.iter_mut().for_each(|b| *b ^= 0xff);
        record
    }

    /// A local edit of a document whose stored form does not rebuild is refused as `NotFound`,
    /// and the document is set aside at once (not at every further edit): it leaves the device
    /// and its space is fetched again, as snapshots.
    #[test]
    fn a_local_edit_of_a_form_that_does_not_rebuild_sets_it_aside() {
        let p = phone();
        let (item, _doc) = written_elsewhere(&p, "Lesepaten gesucht");
        receive(&p, vec![with_wrong_check(creation_record(&p, &item, &_doc))]);
        let patch = title_patch("Lesepatinnen gesucht");
        let refused = p.store.update_item(item.id, &patch, p.person).unwrap_err();
        assert!(matches!(refused, Error::NotFound { .. }), "{refused:?}");
        let viewer = Viewer::new(p.person, Role::Coordinator);
        assert!(
            p.store.item_detail(item.id, &viewer).is_err(),
            "not shown unchecked"
        );
        let (again, _) = p.store.build_sync_request(1 << 20, 0).unwrap();
        assert!(!accepts_created_v1(&again.accepts), "snapshots from now on");
        assert_eq!(again.cursors[0].after, None, "the space is fetched again");
        assert!(matches!(
            p.store.update_item(item.id, &patch, p.person),
            Err(Error::NotFound { .. })
        ));
    }

    /// Losing a space whose documents include a received form that does not rebuild and an
    /// edit kept as a patch whose entry is damaged: the purge goes through (it runs inside the
    /// sync), and the edit is listed as not delivered.
    #[test]
    fn losing_a_space_with_unbuildable_forms_and_damaged_edits_is_not_a_wedge() {
        let p = phone();
        let (item, doc) = written_elsewhere(&p, "Lesepaten gesucht");
        receive(&p, vec![with_wrong_check(creation_record(&p, &item, &doc))]);
        let mine = news(&p, "Hofflohmarkt");
        push_all(&p.store, |_| AckOutcome::Stored);
        let first = body_patch("Im Hof");
        p.store.update_item(mine.id, &first, p.person).unwrap();
        push_all(&p.store, |_| AckOutcome::Stored);
        let title = title_patch("Hofflohmarkt am Samstag");
        p.store.update_item(mine.id, &title, p.person).unwrap();
        p.store
            .write(|tx, _| {
                Ok(tx.execute(
                    "UPDATE outbox SET edit = x'28b52ffd00' WHERE edit IS NOT NULL",
                    [],
                )?)
            })
            .unwrap();
        // And a draft made here (never sealed) whose creation form no longer decodes.
        let mut content = ItemContent::new(
            LocalizedText::single("de", "Entwurf"),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        );
        content.status = crate::model::Status::Draft;
        let draft = p
            .store
            .create_item(NewItem::new(p.space, p.person, content))
            .unwrap();
        p.store
            .write(|tx, _| {
                Ok(tx.execute(
                    "UPDATE documents SET creation = x'28b52ffd00' WHERE doc_id = ?1",
                    [draft.id.to_string()],
                )?)
            })
            .unwrap();
        let mut revoked = answer(Vec::new());
        revoked.revoked.push(p.space.as_uuid());
        let (_, pushed) = p.store.build_sync_request(1 << 20, 0).unwrap();
        p.store.apply_sync_response(&pushed, revoked.clone()).unwrap();
        assert_eq!(p.store.outbox_len().unwrap(), 0);
        let undelivered = p.store.undelivered_changes().unwrap();
        let docs: Vec<String> = undelivered.iter().map(|u| u.doc_id.clone()).collect();
        assert_eq!(docs.len(), 2, "{undelivered:?}");
        assert!(docs.contains(&mine.id.to_string()) && docs.contains(&draft.id.to_string()));
    }

    /// A document merged into a form this core does not read (a newer core's schema) keeps its
    /// last readable projection; an edit of it is refused, as before edits were kept as patches,
    /// instead of being written over what the person never saw.
    #[test]
    fn an_edit_of_a_document_this_core_does_not_read_is_refused() {
        let p = phone();
        let (item, mut doc) = written_elsewhere(&p, "Sprechstunde");
        receive(&p, vec![snapshot_record(&p, &item, &doc)]);
        let mut tx = doc.transaction();
        automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, "schema", 2_i64).unwrap();
        tx.commit();
        let change = doc.get_last_local_change().unwrap().clone();
        receive(
            &p,
            vec![Record::Change {
                space: p.space.as_uuid(),
                doc: item.id.as_uuid(),
                kind: DocKind::Item,
                signature: vec![0; 64],
                bytes: change.raw_bytes().to_vec(),
                device: uuid::Uuid::now_v7(),
            }],
        );
        let title = title_patch("Sprechstunde neu");
        assert!(p.store.update_item(item.id, &title, p.person).is_err());
        assert_eq!(
            p.store.document_changes(&item.id.to_string()).unwrap().len(),
            2,
            "nothing written into it"
        );
    }

    /// A stored creation form that does not rebuild to the change it names (a server with other
    /// rules) is found when a later change needs the document: the document leaves the store,
    /// the device asks for snapshots and fetches the space again, and the snapshot brings it back
    /// with the later change; nothing is wedged.
    #[test]
    fn a_stored_creation_that_does_not_rebuild_is_fetched_again_as_a_snapshot() {
        let p = phone();
        let (item, mut doc) = written_elsewhere(&p, "Sprechstunde");
        receive(&p, vec![with_wrong_check(creation_record(&p, &item, &doc))]);
        let viewer = Viewer::new(p.person, Role::Coordinator);
        assert!(p.store.item_detail(item.id, &viewer).is_ok(), "shown on arrival");

        // The author edits it; the edit needs the document.
        let (edited, edit) = retitled_elsewhere(&p, &item, &mut doc, "Sprechstunde (verlegt)");
        receive(&p, vec![edit]);
        let (again, _) = p.store.build_sync_request(1 << 20, 0).unwrap();
        assert!(!accepts_created_v1(&again.accepts), "snapshots from now on");
        assert_eq!(again.cursors[0].after, None, "the space is fetched again");
        assert!(
            p.store.item_detail(item.id, &viewer).is_err(),
            "not shown unchecked"
        );

        receive(&p, vec![snapshot_record(&p, &item, &doc)]);
        assert_eq!(
            p.store.item_detail(item.id, &viewer).unwrap().item.content.title,
            edited.content.title
        );
        assert_eq!(p.store.document_changes(&item.id.to_string()).unwrap().len(), 2);
    }

    /// A stored form that no longer decodes (a damaged row) is set aside like one that does not
    /// rebuild when a change needs it: the sync goes on, the space is fetched again, and the
    /// snapshot brings the document back. Never an error that repeats on every sync.
    #[test]
    fn a_stored_creation_that_does_not_decode_is_set_aside_not_a_wedge() {
        let p = phone();
        let (item, mut doc) = written_elsewhere(&p, "Tauschbörse");
        receive(&p, vec![creation_record(&p, &item, &doc)]);
        p.store
            .write(|tx, _| {
                tx.execute(
                    "UPDATE documents SET creation = x'00ff00ff' WHERE doc_id = ?1",
                    [item.id.to_string()],
                )?;
                Ok(())
            })
            .unwrap();
        let (edited, edit) = retitled_elsewhere(&p, &item, &mut doc, "Tauschbörse (neu)");
        let outcome = receive(&p, vec![edit]);
        assert!(outcome.more, "the space comes again");
        let (again, _) = p.store.build_sync_request(1 << 20, 0).unwrap();
        assert_eq!(again.cursors[0].after, None);
        receive(&p, vec![snapshot_record(&p, &item, &doc)]);
        let viewer = Viewer::new(p.person, Role::Coordinator);
        assert_eq!(
            p.store.item_detail(item.id, &viewer).unwrap().item.content.title,
            edited.content.title
        );
    }

    /// A page's member changes go into the space's list in its transaction; a page that
    /// arrives late with older changes never takes the list back; the cursor says how far it is.
    #[test]
    fn member_changes_keep_the_list_and_an_older_page_never_takes_it_back() {
        let p = phone();
        let ben = PersonId::new();
        let member = |person: PersonId, name: &str, role| MemberInfo {
            person: person.as_uuid(),
            display_name: Some(name.into()),
            role,
        };
        let exchange = |roster: RosterChanges| {
            let (request, pushed) = p.store.build_sync_request(1 << 20, 0).unwrap();
            let mut response = answer(Vec::new());
            response.pages.push(quartier_protocol::SpacePage {
                space: p.space.as_uuid(),
                records: vec![],
                next: request.cursors[0].after.clone().unwrap_or_else(|| "c:0".into()),
                more: false,
                roster: Some(roster),
                signatures: Vec::new(),
                signatures_next: None,
            });
            p.store.apply_sync_response(&pushed, response.clone()).unwrap();
            request.cursors[0].members_after
        };
        let names = || -> Vec<(Option<String>, Role)> {
            p.store
                .members(p.space)
                .unwrap()
                .into_iter()
                .map(|m| (m.display_name, m.role))
                .collect()
        };
        let sent = exchange(RosterChanges {
            members: vec![
                member(ben, "Ben", Role::Resident),
                member(p.person, "Ada", Role::Coordinator),
            ],
            left: vec![],
            next: 4,
            reset: false,
        });
        assert_eq!(sent, Some(0), "a device with no list asks for all of it");
        assert_eq!(
            names(),
            vec![
                (Some("Ada".into()), Role::Coordinator),
                (Some("Ben".into()), Role::Resident)
            ]
        );
        let sent = exchange(RosterChanges {
            members: vec![member(ben, "Alt", Role::Volunteer)],
            left: vec![],
            next: 3,
            reset: false,
        });
        assert_eq!(sent, Some(4));
        assert_eq!(
            names()[1],
            (Some("Ben".into()), Role::Resident),
            "older changes are not applied"
        );
        let sent = exchange(RosterChanges {
            members: vec![],
            left: vec![ben.as_uuid()],
            next: 6,
            reset: false,
        });
        assert_eq!(sent, Some(4));
        assert_eq!(names(), vec![(Some("Ada".into()), Role::Coordinator)]);
        let (request, _) = p.store.build_sync_request(1 << 20, 0).unwrap();
        assert_eq!(request.cursors[0].members_after, Some(6));
        assert!(p.store.member(p.space, ben).unwrap().is_none());

        // The server was restored from a backup: its numbers are behind ours. Its list, marked
        // as started over, replaces ours, and we ask from its numbers on.
        let cem = PersonId::new();
        let sent = exchange(RosterChanges {
            members: vec![member(cem, "Cem", Role::Resident)],
            left: vec![],
            next: 2,
            reset: true,
        });
        assert_eq!(sent, Some(6));
        assert_eq!(names(), vec![(Some("Cem".into()), Role::Resident)]);
        let (request, _) = p.store.build_sync_request(1 << 20, 0).unwrap();
        assert_eq!(request.cursors[0].members_after, Some(2));
    }
}
