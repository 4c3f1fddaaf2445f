//! Paging the log out to a device: per space, the records after its cursor that it may see,
//! within the request's byte budget. A device without a cursor gets compacted snapshots of the
//! documents it may see first (cursor `s:<log position>:<last document>:<role>`), then the
//! changes after that position (cursor `c:<log position>:<role>`). The role a cursor was paged
//! as is part of it: a device whose person has since been given a role that reads more (a
//! resident made volunteer) starts over with snapshots, or it would never receive what its new
//! role may see of the log behind its cursor.
//!
//! A pull reads one consistent snapshot of the database (`storage::Snapshot`), normally through
//! a read-only connection beside the writer: its pages, cursors and permission checks all
//! describe the same committed state, and documents come from the shared cache only when the
//! cached state is not newer than that snapshot (`DocCache::get_as_of`).
//!
//! The authors' signatures of the changes inside forms and snapshots travel with them
//! ([`SignatureForm::Inline`]) or, for devices that take the stream, after the space's content
//! in pages of their own ([`SignatureForm::Stream`], cursor `g:<after>:<upto>`: the change rows
//! of the log after `after` up to `upto`, where the snapshots were taken).

use std::collections::HashMap;

use quartier_domain::model::{Audience, Role};
use quartier_protocol::{
    ChangeSignature, DocKind, Record, RosterChanges, SpaceCursor, SpacePage, MAX_MEMBERS_PER_PAGE,
};
use rusqlite::Connection;
use uuid::Uuid;

use super::may_read;
use crate::documents::DocCache;
use crate::error::ServerError;
use crate::storage::{log, spaces, DocMeta, PendingCreation, PendingCreations, Snapshot};

/// Bounds of the byte budget a device may ask for.
pub const MIN_BUDGET: usize = 16 * 1024;
pub const MAX_BUDGET: usize = 8 * 1024 * 1024;

/// Rows read from the log per step.
const STEP: i64 = 256;

/// Most log rows (or documents) one request looks at per space, sent or not: where a device may
/// read little of a space, its cursor moves on with `more` instead of one request reading the
/// whole log.
const MAX_EXAMINED: usize = 64 * STEP as usize;

enum Position {
    Snapshots { upto: i64, last_doc: String },
    Changes { after: i64 },
}

impl Position {
    /// The position and the role it was paged as (`None` in cursors of servers before roles
    /// were recorded in them).
    fn parse(cursor: Option<&str>) -> Result<Option<(Position, Option<Role>)>, ServerError> {
        let bad = || ServerError::BadRequest("a cursor was not one this server gave out".into());
        let Some(cursor) = cursor else { return Ok(None) };
        let role = |text: Option<&str>| match text {
            None => Ok(None),
            Some(text) => Role::parse(text).map(Some).ok_or_else(bad),
        };
        if let Some(rest) = cursor.strip_prefix("c:") {
            let mut parts = rest.splitn(2, ':');
            let after = parts.next().unwrap_or_default().parse().map_err(|_| bad())?;
            return Ok(Some((Position::Changes { after }, role(parts.next())?)));
        }
        if let Some(rest) = cursor.strip_prefix("s:") {
            let mut parts = rest.splitn(3, ':');
            let upto = parts.next().unwrap_or_default().parse().map_err(|_| bad())?;
            let last_doc = parts.next().ok_or_else(bad)?.to_owned();
            return Ok(Some((
                Position::Snapshots { upto, last_doc },
                role(parts.next())?,
            )));
        }
        Err(bad())
    }

    fn render(&self, role: Role) -> String {
        match self {
            Position::Snapshots { upto, last_doc } => format!("s:{upto}:{last_doc}:{role}"),
            Position::Changes { after } => format!("c:{after}:{role}"),
        }
    }
}

/// Whether `now` may read an audience that `before` could not.
fn reads_more(now: Role, before: Role) -> bool {
    Audience::ALL.iter().any(|a| a.admits(now) && !a.admits(before))
}

/// Pages for every cursor of a request, and the spaces the person may no longer see. Changes the
/// requesting device pushed itself are not echoed back to it. With `send_created` (the device
/// accepts [`Record::Created`]) a document whose history is its creation travels in that form.
///
/// `conn` is best a reader (`Db::read`); the writer's connection works too. If `conn` is inside
/// a transaction already, the pull reads that transaction's view; otherwise it begins its own.
/// It never fills the document cache.
pub fn pull(
    conn: &Connection,
    docs: &DocCache,
    device: Uuid,
    person: Uuid,
    cursors: &[SpaceCursor],
    budget: usize,
    forms: CreationForms<'_>,
) -> Result<(Vec<SpacePage>, Vec<Uuid>), ServerError> {
    let (send_created, pending) = (forms.accepted, forms.queue);
    let snapshot = Snapshot::begin(conn)?;
    let mut budget = budget.clamp(MIN_BUDGET, MAX_BUDGET);
    let mut pages = Vec::new();
    let mut revoked = Vec::new();
    for cursor in cursors {
        let Some(role) = spaces::role_of(conn, cursor.space, person)? else {
            revoked.push(cursor.space);
            continue;
        };
        let person_text = person.to_string();
        let mut metas: HashMap<Uuid, Option<DocMeta>> = HashMap::new();
        let (mut position, started_over) = match Position::parse(cursor.after.as_deref())? {
            Some((p, seen_as)) if !seen_as.is_some_and(|before| reads_more(role, before)) => (p, false),
            // New to the space, or promoted since: snapshots of everything it may see now.
            _ => (
                Position::Snapshots {
                    upto: log::last_seq(conn, cursor.space)?,
                    last_doc: String::new(),
                },
                true,
            ),
        };
        let mut stream = match forms.signatures {
            SignatureForm::Stream => {
                SignatureStream::of(cursor.signatures_after.as_deref(), &position, started_over)?
            }
            _ => None,
        };
        let mut records = Vec::new();
        let mut signatures = Vec::new();
        let mut more = false;
        let mut examined = 0;
        'page: loop {
            match &mut position {
                Position::Snapshots { upto, last_doc } => {
                    let batch = log::docs_after(conn, cursor.space, last_doc, STEP)?;
                    let exhausted = (batch.len() as i64) < STEP;
                    for (doc, meta) in batch {
                        if examined == MAX_EXAMINED {
                            more = true;
                            break 'page;
                        }
                        examined += 1;
                        if may_read(&meta, &person_text, role) {
                            let record = snapshot_record(
                                &snapshot,
                                docs,
                                pending,
                                cursor.space,
                                doc,
                                &meta,
                                send_created,
                            )?;
                            let signed = match forms.signatures {
                                SignatureForm::Inline => log::signatures_of(conn, doc, snapshot.seq())?,
                                SignatureForm::None | SignatureForm::Stream => Vec::new(),
                            };
                            let weight =
                                record.weight() + signed.iter().map(ChangeSignature::weight).sum::<usize>();
                            if !records.is_empty() && weight > budget {
                                more = true;
                                break 'page;
                            }
                            budget = budget.saturating_sub(weight);
                            records.push(record);
                            signatures.extend(signed);
                        }
                        *last_doc = doc.to_string();
                    }
                    if exhausted {
                        position = Position::Changes { after: *upto };
                    }
                }
                Position::Changes { after } => {
                    let rows = log::rows_after(conn, cursor.space, *after, STEP)?;
                    let exhausted = (rows.len() as i64) < STEP;
                    for row in rows {
                        if examined == MAX_EXAMINED {
                            more = true;
                            break 'page;
                        }
                        examined += 1;
                        if !row.reveal && row.device == Some(device) {
                            *after = row.seq;
                            continue;
                        }
                        let meta = meta_of(conn, &mut metas, row.doc)?;
                        if let Some(meta) = meta.filter(|m| may_read(m, &person_text, role)) {
                            let mut signed = Vec::new();
                            let record = if row.reveal {
                                if forms.signatures != SignatureForm::None {
                                    signed = log::signatures_of(conn, row.doc, snapshot.seq())?;
                                }
                                snapshot_record(
                                    &snapshot,
                                    docs,
                                    pending,
                                    cursor.space,
                                    row.doc,
                                    &meta,
                                    send_created,
                                )?
                            } else {
                                Record::Change {
                                    space: cursor.space,
                                    doc: row.doc,
                                    kind: kind_of(Some(&meta)),
                                    bytes: row.bytes,
                                    device: row.device.unwrap_or_default(),
                                    signature: row.signature,
                                }
                            };
                            let weight =
                                record.weight() + signed.iter().map(ChangeSignature::weight).sum::<usize>();
                            if !records.is_empty() && weight > budget {
                                more = true;
                                break 'page;
                            }
                            budget = budget.saturating_sub(weight);
                            records.push(record);
                            signatures.extend(signed);
                        }
                        *after = row.seq;
                    }
                    if exhausted {
                        break 'page;
                    }
                }
            }
        }
        // The stream of signatures once the content is all there.
        if let Some(s) = stream.as_mut().filter(|_| !more) {
            // Not the device's own changes (it signs those itself when it shows them), nor
            // those of documents it may not read (or that are gone).
            let sends = |doc: Uuid, signer: Uuid| {
                Ok(signer != device
                    && meta_of(conn, &mut metas, doc)?.is_some_and(|m| may_read(&m, &person_text, role)))
            };
            let done = s.page(
                conn,
                cursor.space,
                sends,
                (&mut budget, &mut examined),
                &mut signatures,
                records.is_empty(),
            )?;
            more |= !done;
            if done {
                stream = None;
            }
        }
        // Member changes for devices that keep a member list (every role sees the list).
        let roster = match cursor.members_after {
            Some(after) => {
                let (roster, left_behind) =
                    spaces::roster_changes(conn, cursor.space, after, MAX_MEMBERS_PER_PAGE, budget)?;
                more |= left_behind;
                budget = budget.saturating_sub(roster.as_ref().map_or(0, RosterChanges::weight));
                roster
            }
            None => None,
        };
        pages.push(SpacePage {
            space: cursor.space,
            records,
            next: position.render(role),
            more,
            roster,
            signatures,
            signatures_next: stream.as_ref().map(SignatureStream::render),
        });
    }
    Ok((pages, revoked))
}

/// A document's metadata, read once per request.
fn meta_of(
    conn: &Connection,
    metas: &mut HashMap<Uuid, Option<DocMeta>>,
    doc: Uuid,
) -> Result<Option<DocMeta>, ServerError> {
    if let Some(meta) = metas.get(&doc) {
        return Ok(meta.clone());
    }
    let meta = log::doc_meta(conn, doc)?;
    metas.insert(doc, meta.clone());
    Ok(meta)
}

fn kind_of(meta: Option<&DocMeta>) -> DocKind {
    match meta.map(|m| m.kind.as_str()) {
        Some("space") => DocKind::Space,
        _ => DocKind::Item,
    }
}

/// How a pull may send never-edited documents.
#[derive(Clone, Copy, Default)]
pub struct CreationForms<'a> {
    /// The device reads `Record::Created` (`accepts_created_v1`).
    pub accepted: bool,
    /// Where a form worked out during the pull (never recorded by the prover) is queued again.
    pub queue: Option<&'a PendingCreations>,
    /// How the device wants the signatures of the changes inside forms and snapshots.
    pub signatures: SignatureForm,
}

/// How a pull sends the authors' signatures of the changes inside forms and snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureForm {
    /// Not at all (the device never shows them to peers).
    #[default]
    None,
    /// Beside each form and snapshot ([`quartier_protocol::ACCEPTS_SIGNATURES`]).
    Inline,
    /// After the space's content, in a stream of their own
    /// ([`quartier_protocol::ACCEPTS_SIGNATURE_STREAM`]); a document revealed later to the
    /// device's role still brings its signatures along.
    Stream,
}

impl SignatureForm {
    /// What a request's `accepts` asks for: the stream where the device takes it.
    pub fn of(accepts: &[String]) -> SignatureForm {
        let listed = |name: &str| accepts.iter().any(|a| a == name);
        if listed(quartier_protocol::ACCEPTS_SIGNATURE_STREAM) {
            SignatureForm::Stream
        } else if listed(quartier_protocol::ACCEPTS_SIGNATURES) {
            SignatureForm::Inline
        } else {
            SignatureForm::None
        }
    }
}

/// Where a device stands in a space's stream of signatures: the change rows after `after` up to
/// `upto` are still to send.
struct SignatureStream {
    after: i64,
    upto: i64,
}

impl SignatureStream {
    /// The stream a page continues: one over everything when the device starts the space over
    /// (its snapshots are new) or is on snapshots without one, else the one its cursor names
    /// (`""`: one over what it holds up to where its content stands).
    fn of(asked: Option<&str>, position: &Position, started_over: bool) -> Result<Option<Self>, ServerError> {
        let bad = || ServerError::BadRequest("a signatures cursor was not one this server gave out".into());
        let held = match position {
            Position::Snapshots { upto, .. } => *upto,
            Position::Changes { after } => *after,
        };
        if started_over {
            return Ok(Some(SignatureStream { after: 0, upto: held }));
        }
        let Some(asked) = asked else {
            // Still on snapshots without a stream: a device that began them under a core or a
            // server from before the stream; the rest of its snapshots come without signatures.
            return Ok(match position {
                Position::Snapshots { upto, .. } => Some(SignatureStream {
                    after: 0,
                    upto: *upto,
                }),
                Position::Changes { .. } => None,
            });
        };
        if asked.is_empty() {
            return Ok(Some(SignatureStream { after: 0, upto: held }));
        }
        let rest = asked.strip_prefix("g:").ok_or_else(bad)?;
        let (after, upto) = rest.split_once(':').ok_or_else(bad)?;
        let (after, upto) = (
            after.parse().map_err(|_| bad())?,
            upto.parse().map_err(|_| bad())?,
        );
        if after < 0 || upto < after {
            return Err(bad());
        }
        Ok(Some(SignatureStream { after, upto }))
    }

    fn render(&self) -> String {
        format!("g:{}:{}", self.after, self.upto)
    }

    /// Adds the next signatures `sends` lets through (by document and signing device) to `out`,
    /// within the byte budget (at least one when the page holds nothing else, so that the stream
    /// always moves) and the rows left to examine ([`MAX_EXAMINED`]). True when the stream is
    /// complete.
    fn page(
        &mut self,
        conn: &Connection,
        space: Uuid,
        mut sends: impl FnMut(Uuid, Uuid) -> Result<bool, ServerError>,
        (budget, examined): (&mut usize, &mut usize),
        out: &mut Vec<ChangeSignature>,
        alone: bool,
    ) -> Result<bool, ServerError> {
        while self.after < self.upto {
            let rows = log::signed_after(conn, space, self.after, self.upto, STEP)?;
            let exhausted = (rows.len() as i64) < STEP;
            for row in rows {
                if *examined == MAX_EXAMINED {
                    return Ok(false);
                }
                *examined += 1;
                if let Some(signature) = row.signed {
                    if sends(row.doc, signature.device)? {
                        let weight = signature.weight();
                        if !(alone && out.is_empty()) && weight > *budget {
                            return Ok(false);
                        }
                        *budget = budget.saturating_sub(weight);
                        out.push(signature);
                    }
                }
                self.after = row.seq;
            }
            if exhausted {
                self.after = self.upto;
            }
        }
        Ok(true)
    }
}

/// A document as the snapshot holds it: its creation form, or its whole state.
fn snapshot_record(
    snapshot: &Snapshot<'_>,
    docs: &DocCache,
    pending: Option<&PendingCreations>,
    space: Uuid,
    doc: Uuid,
    meta: &DocMeta,
    send_created: bool,
) -> Result<Record, ServerError> {
    let conn = snapshot.conn();
    let kind = kind_of(Some(meta));
    if send_created {
        if let Some(c) = log::creation(conn, doc)? {
            return Ok(c.into_record(space, doc, kind));
        }
    }
    let state = docs.get_as_of(conn, doc, snapshot.seq())?;
    if send_created {
        // Documents stored before creation forms were recorded are worked out now; one the
        // rule cannot rebuild (or cannot read) still travels, as a snapshot.
        if let Ok(Some(c)) = quartier_domain::document::creation_of(&state.doc, &doc.to_string(), kind) {
            // Worked out here because the prover never recorded it (a restart, a full queue):
            // queued again, so the next new member reads it instead of rebuilding it too.
            if let Some(pending) = pending {
                pending.add(PendingCreation {
                    doc,
                    kind,
                    seq: state.seq,
                });
            }
            return Ok(c.into_record(space, doc, kind));
        }
    }
    Ok(Record::Snapshot {
        space,
        doc,
        kind,
        // Uncompressed: Automerge's own DEFLATE of each document hides the redundancy between
        // documents from the page's zstd; left to zstd, an initial sync is about half as many
        // bytes (docs/benchmarks.md, "Sync").
        bytes: state.doc.save_nocompress(),
    })
}
