//! The moderation part of a sync (`docs/neighbourhood.md`): reports and coordinators' decisions
//! judged one by one and stored in one transaction under the writer, the person's mutes, then
//! each space's log after the device's cursor, cut to what the person's role may see.

use quartier_domain::document::item_from_doc;
use quartier_domain::model::{Audience, Role};
use quartier_protocol::moderation::{
    self, Decision, ModerationCursor, ModerationEvent, ModerationOutcome, ModerationRefusal,
    ModerationRequest, ModerationResponse, Report, DECISIONS, MAX_MODERATION_EVENTS,
    MAX_MODERATION_TEXT_CHARS, MAX_MUTES, MAX_SETTINGS, REPORT_REASONS, SETTING_KINDS,
};
use rusqlite::Connection;
use uuid::Uuid;

use crate::documents::DocCache;
use crate::error::ServerError;
use crate::storage::moderation::{self as store, LogReader, NewEntry};
use crate::storage::{log, now_ms, spaces, Db, DeviceRecord};

/// Checks the request's shape before anything is done (a bad one refuses the whole sync).
pub fn check(req: &ModerationRequest) -> Result<(), ServerError> {
    moderation::check_request(req, quartier_protocol::MAX_CURSORS_PER_REQUEST)
        .map_err(ServerError::BadRequest)
}

/// Runs the moderation part of one request for `device`.
pub fn exchange(
    db: &Db,
    docs: &DocCache,
    device: &DeviceRecord,
    req: &ModerationRequest,
) -> Result<ModerationResponse, ServerError> {
    let person = device.person;
    let (outcomes, erased) = {
        let conn = db.lock();
        let tx = conn.unchecked_transaction()?;
        let mut outcomes = Vec::with_capacity(req.reports.len() + req.decisions.len());
        let mut erased = Vec::new();
        let now = now_ms();
        for report in &req.reports {
            let refused = judge_report(&tx, person, report, now)?.err();
            outcomes.push(ModerationOutcome {
                id: report.id,
                refused,
            });
        }
        for decision in &req.decisions {
            let refused = match judge_decision(&tx, docs, person, decision, now)? {
                Ok(gone) => {
                    erased.extend(gone);
                    None
                }
                Err(refusal) => Some(refusal),
            };
            outcomes.push(ModerationOutcome {
                id: decision.id,
                refused,
            });
        }
        // Muting oneself means nothing; past the cap a mute is not kept. The answer's list is
        // the truth the device takes either way.
        let mut mutes = store::mute_count(&tx, person)?;
        for change in req.mutes.iter().filter(|c| c.person != person) {
            if change.muted && mutes >= MAX_MUTES {
                continue;
            }
            store::set_muted(&tx, person, change.person, change.muted)?;
            mutes = store::mute_count(&tx, person)?;
        }
        // Follows and notification kinds turned off: known kinds, short values, a cap per
        // person; the answer's list is the truth either way.
        let mut settings = store::setting_count(&tx, person)?;
        for change in &req.settings {
            let known = SETTING_KINDS.contains(&change.kind.as_str());
            let sized = !change.value.trim().is_empty() && change.value.chars().count() <= 200;
            if !known || !sized || (change.on && settings >= MAX_SETTINGS) {
                continue;
            }
            store::set_setting(&tx, person, &change.kind, &change.value, change.on)?;
            settings = store::setting_count(&tx, person)?;
        }
        tx.commit()?;
        (outcomes, erased)
    };
    for doc in &erased {
        docs.forget(*doc);
    }
    let conn = db.read()?;
    let mut response = ModerationResponse {
        outcomes,
        muted: store::muted(&conn, person)?,
        settings: Some(store::settings(&conn, person)?),
        ..Default::default()
    };
    let mut room = MAX_MODERATION_EVENTS;
    for cursor in &req.cursors {
        let Some(role) = spaces::role_of(&conn, cursor.space, person)? else {
            continue;
        };
        let audiences: Vec<&str> = Audience::admitting(role).map(|a| a.as_str()).collect();
        let reader = match role {
            Role::Coordinator => LogReader::Coordinator,
            _ => LogReader::Member {
                person,
                audiences: &audiences,
            },
        };
        let mut after = cursor.after.max(0);
        if room == 0 {
            response.more |= !store::entries_after(&conn, cursor.space, after, 1, &reader)?.is_empty();
        } else {
            let entries = store::entries_after(&conn, cursor.space, after, room, &reader)?;
            response.more |= entries.len() == room;
            room -= entries.len();
            for entry in entries {
                after = entry.seq;
                response.events.push(as_seen_by(entry, person, role));
            }
        }
        response.cursors.push(ModerationCursor {
            space: cursor.space,
            after,
        });
    }
    Ok(response)
}

/// An entry (one `reader` receives) as `person` sees it: a coordinator whole; anyone else
/// without who reported or decided, the note only on what concerns them, and the person named
/// only when it is them.
fn as_seen_by(mut entry: ModerationEvent, person: Uuid, role: Role) -> ModerationEvent {
    if role == Role::Coordinator {
        return entry;
    }
    let concerns_me = entry.person == Some(person);
    // Who decided is the coordinators' to know, unless it was this person (a withdrawn consent).
    if entry.actor != Some(person) {
        entry.actor = None;
    }
    entry.reason = None;
    if !concerns_me {
        entry.text = None;
        entry.person = None;
    }
    entry
}

pub(super) fn refuse(code: &str, message: impl Into<String>) -> ModerationRefusal {
    ModerationRefusal {
        code: code.into(),
        message: message.into(),
    }
}

pub(super) type Judged<T> = Result<Result<T, ModerationRefusal>, ServerError>;

fn check_text(text: &str, what: &str) -> Result<(), ModerationRefusal> {
    if text.chars().count() > MAX_MODERATION_TEXT_CHARS {
        return Err(refuse(
            "invalid",
            format!("a {what} has at most {MAX_MODERATION_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

/// What the moderation of an item needs to know of it.
struct Target {
    author: Option<Uuid>,
    audience: Option<String>,
}

/// The item `item` of `space` if `person` (of `role`) may read it; `not_found` otherwise (never
/// whether it exists), `erased` if it was erased.
fn readable_item(conn: &Connection, space: Uuid, item: Uuid, person: Uuid, role: Role) -> Judged<Target> {
    if store::erased_in(conn, item)? == Some(space) {
        return Ok(Err(refuse(
            "erased",
            "the item was erased by the space's coordinators",
        )));
    }
    match log::doc_meta(conn, item)? {
        Some(meta)
            if meta.space == space
                && meta.kind == "item"
                && super::may_read(&meta, &person.to_string(), role) =>
        {
            Ok(Ok(Target {
                author: meta.author.and_then(|a| Uuid::parse_str(&a).ok()),
                audience: meta.audience,
            }))
        }
        _ => Ok(Err(refuse("not_found", "no such item in this space"))),
    }
}

/// Whether an entry with this id was taken before: `Ok(true)` when it was this person's for
/// this space (sent again: stored), a refusal when someone else's.
fn taken_before(conn: &Connection, id: Uuid, person: Uuid, space: Uuid) -> Judged<bool> {
    match store::entry_owner(conn, id)? {
        None => Ok(Ok(false)),
        Some((actor, at)) if actor == person && at == space => Ok(Ok(true)),
        Some(_) => Ok(Err(refuse("invalid", "this entry id is taken"))),
    }
}

fn judge_report(conn: &Connection, person: Uuid, report: &Report, now: i64) -> Judged<()> {
    if !REPORT_REASONS.contains(&report.reason.as_str()) {
        return Ok(Err(refuse(
            "invalid",
            format!("unknown reason; one of {}", REPORT_REASONS.join(", ")),
        )));
    }
    if let Err(refusal) = check_text(&report.text, "report") {
        return Ok(Err(refusal));
    }
    if report.reason == "other" && report.text.trim().is_empty() {
        return Ok(Err(refuse(
            "invalid",
            "a report for another reason says what it is",
        )));
    }
    let Some(role) = spaces::role_of(conn, report.space, person)? else {
        return Ok(Err(refuse("not_a_member", "you are not a member of this space")));
    };
    match taken_before(conn, report.id, person, report.space)? {
        Ok(true) => return Ok(Ok(())),
        Ok(false) => {}
        Err(refusal) => return Ok(Err(refusal)),
    }
    if store::is_blocked(conn, report.space, person)? {
        return Ok(Err(refuse(
            "blocked",
            "the space's coordinators have blocked you",
        )));
    }
    let target = match readable_item(conn, report.space, report.item, person, role)? {
        Ok(target) => target,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // Coordinators decide on what they can read only (caseworkers' items are not theirs).
    let coordinators_read = target
        .audience
        .as_deref()
        .and_then(|a| a.parse::<Audience>().ok())
        .is_some_and(|a| a.admits(Role::Coordinator));
    if !coordinators_read {
        return Ok(Err(refuse(
            "forbidden",
            "the coordinators cannot read this item; tell the people it is shared with",
        )));
    }
    if store::has_open_report(conn, report.item, person)? {
        return Ok(Err(refuse(
            "not_allowed_now",
            "you have reported this item already",
        )));
    }
    store::append(
        conn,
        &NewEntry {
            id: report.id,
            space: report.space,
            action: "report",
            item: Some(report.item),
            person: target.author,
            actor: person,
            audience: "coordinators",
            item_audience: target.audience.as_deref(),
            reason: Some(&report.reason),
            text: Some(report.text.trim()),
            at: now,
        },
    )?;
    Ok(Ok(()))
}

/// Judges and carries out one decision; the documents an erasure removed.
fn judge_decision(
    conn: &Connection,
    docs: &DocCache,
    person: Uuid,
    d: &Decision,
    now: i64,
) -> Judged<Vec<Uuid>> {
    if !DECISIONS.contains(&d.action.as_str()) {
        return Ok(Err(refuse(
            "invalid",
            format!("unknown decision; one of {}", DECISIONS.join(", ")),
        )));
    }
    if let Err(refusal) = check_text(&d.note, "note") {
        return Ok(Err(refusal));
    }
    match spaces::role_of(conn, d.space, person)? {
        None => return Ok(Err(refuse("not_a_member", "you are not a member of this space"))),
        Some(Role::Coordinator) => {}
        // The neighbour an item was recorded for withdrew consent: the person who recorded it
        // erases it everywhere.
        Some(_)
            if d.action == "erase"
                && !store::is_blocked(conn, d.space, person)?
                && recorded_by(conn, docs, d, person)? => {}
        Some(_) => return Ok(Err(refuse("forbidden", "only coordinators moderate"))),
    }
    match taken_before(conn, d.id, person, d.space)? {
        Ok(true) => return Ok(Ok(Vec::new())),
        Ok(false) => {}
        Err(refusal) => return Ok(Err(refusal)),
    }
    let mut erased = Vec::new();
    let (target, item_audience, audience) = match d.action.as_str() {
        "block" | "unblock" => {
            let Some(target) = d.person else {
                return Ok(Err(refuse("invalid", "a block names a person")));
            };
            if target == person {
                return Ok(Err(refuse("forbidden", "you cannot block yourself")));
            }
            let block = d.action == "block";
            match spaces::role_of(conn, d.space, target)? {
                None => return Ok(Err(refuse("not_found", "no such member in this space"))),
                Some(Role::Coordinator) if block => {
                    return Ok(Err(refuse(
                        "forbidden",
                        "a coordinator cannot be blocked; change their role first",
                    )))
                }
                Some(_) => {}
            }
            if store::is_blocked(conn, d.space, target)? == block {
                let now_is = if block { "already blocked" } else { "not blocked" };
                return Ok(Err(refuse("not_allowed_now", format!("the member is {now_is}"))));
            }
            store::set_blocked(conn, d.space, target, block, now)?;
            (Some(target), None, "person")
        }
        action => {
            let Some(item) = d.item else {
                return Ok(Err(refuse("invalid", "this decision names an item")));
            };
            let target = match readable_item(conn, d.space, item, person, Role::Coordinator)? {
                Ok(target) => target,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let hidden = store::is_hidden(conn, item)?;
            match action {
                "hide" if hidden => return Ok(Err(refuse("not_allowed_now", "the item is hidden already"))),
                "restore" if !hidden => return Ok(Err(refuse("not_allowed_now", "the item is not hidden"))),
                "hide" | "restore" => store::set_hidden(conn, d.space, item, action == "hide", now)?,
                "erase" => {
                    erased = item_and_comments(conn, docs, d.space, item)?;
                    store::erase_documents(conn, d.space, item, &erased, now)?;
                }
                _ => {} // dismiss: the reports are closed by the entry itself
            }
            // A dismissal is the coordinators' own business; the others are for the members.
            let audience = if action == "dismiss" {
                "coordinators"
            } else {
                "members"
            };
            (target.author, target.audience, audience)
        }
    };
    store::append(
        conn,
        &NewEntry {
            id: d.id,
            space: d.space,
            action: &d.action,
            item: d
                .item
                .filter(|_| !matches!(d.action.as_str(), "block" | "unblock")),
            person: target,
            actor: person,
            audience,
            item_audience: item_audience.as_deref(),
            reason: None,
            text: Some(d.note.trim()),
            at: now,
        },
    )?;
    Ok(Ok(erased))
}

/// Whether `person` recorded the decision's item on someone's behalf.
fn recorded_by(conn: &Connection, docs: &DocCache, d: &Decision, person: Uuid) -> Result<bool, ServerError> {
    let Some(item) = d.item else { return Ok(false) };
    let Some(meta) = log::doc_meta(conn, item)? else {
        return Ok(false);
    };
    if meta.space != d.space || meta.author.as_deref() != Some(person.to_string().as_str()) {
        return Ok(false);
    }
    let Ok(state) = docs.get(conn, item) else {
        return Ok(false);
    };
    Ok(item_from_doc(&state.doc, &item.to_string()).is_ok_and(|i| i.content.on_behalf_of.is_some()))
}

/// The item and its comments: those whose parent the server recorded, and those stored before
/// it recorded parents, each read once here (their parent recorded; one that cannot be read is
/// recorded as having none, so it is not read again).
fn item_and_comments(
    conn: &Connection,
    docs: &DocCache,
    space: Uuid,
    item: Uuid,
) -> Result<Vec<Uuid>, ServerError> {
    let (mut doomed, unknown) = store::comments_of(conn, space, item)?;
    for doc in unknown {
        let parent = docs
            .get(conn, doc)
            .ok()
            .and_then(|state| item_from_doc(&state.doc, &doc.to_string()).ok())
            .and_then(|comment| comment.content.details.parent())
            .map(|p| p.as_uuid());
        store::set_parent(conn, doc, parent)?;
        if parent == Some(item) {
            doomed.push(doc);
        }
    }
    doomed.push(item);
    Ok(doomed)
}
