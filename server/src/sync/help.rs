//! The help board part of a sync (`docs/neighbourhood.md`, "The help board"): each step of a
//! request's flow judged against where the request stands, in arrival order, in one
//! transaction under the writer; then each space's help log after the device's cursor, cut to
//! what the person may see.

use quartier_domain::document::item_from_doc;
use quartier_domain::model::Audience;
use quartier_protocol::help::{
    HelpAction, HelpCursor, HelpEvent, HelpOutcome, HelpRequest, HelpResponse, HELP_ACTIONS, MAX_HELP_EVENTS,
    MAX_HELP_TEXT_CHARS,
};
use rusqlite::Connection;
use uuid::Uuid;

use super::moderation::{refuse, Judged};
use crate::documents::DocCache;
use crate::error::ServerError;
use crate::storage::help::{self as store, HelpRow, NewHelpEntry};
use crate::storage::{log, moderation, now_ms, spaces, Db, DeviceRecord};

/// Checks the request's shape before anything is done (a bad one refuses the whole sync).
pub fn check(req: &HelpRequest) -> Result<(), ServerError> {
    quartier_protocol::help::check_request(req, quartier_protocol::MAX_CURSORS_PER_REQUEST)
        .map_err(ServerError::BadRequest)
}

/// Runs the help part of one request for `device`.
pub fn exchange(
    db: &Db,
    docs: &DocCache,
    device: &DeviceRecord,
    req: &HelpRequest,
) -> Result<HelpResponse, ServerError> {
    let person = device.person;
    let outcomes = {
        let conn = db.lock();
        let tx = conn.unchecked_transaction()?;
        let now = now_ms();
        let mut outcomes = Vec::with_capacity(req.actions.len());
        for action in &req.actions {
            let refused = judge(&tx, docs, person, action, now)?.err();
            outcomes.push(HelpOutcome {
                id: action.id,
                refused,
            });
        }
        tx.commit()?;
        outcomes
    };
    let conn = db.read()?;
    let mut response = HelpResponse {
        outcomes,
        ..Default::default()
    };
    let mut room = MAX_HELP_EVENTS;
    for cursor in &req.cursors {
        let Some(role) = spaces::role_of(&conn, cursor.space, person)? else {
            continue;
        };
        let audiences: Vec<&str> = Audience::admitting(role).map(|a| a.as_str()).collect();
        let mut after = cursor.after.max(0);
        if room > 0 {
            let rows = store::rows_after(&conn, cursor.space, after, room, person, &audiences)?;
            if rows.len() == room {
                response.more = true;
            }
            room -= rows.len();
            for row in rows {
                after = row.seq;
                response
                    .events
                    .extend(as_seen_by(&conn, cursor.space, row, person)?);
            }
        } else {
            response.more |=
                !store::rows_after(&conn, cursor.space, after, 1, person, &audiences)?.is_empty();
        }
        response.cursors.push(HelpCursor {
            space: cursor.space,
            after,
        });
    }
    Ok(response)
}

/// A log row as `person` may see it, or nothing: a response only to the request's author and
/// the responder; the end of a request (agreed, done, withdrawn) to every member who may read
/// it (the rows are cut by audience when read), but who acted, whom the author chose and the
/// note only to the author and the chosen person; the contact only to the other of those two.
fn as_seen_by(
    conn: &Connection,
    space: Uuid,
    row: HelpRow,
    person: Uuid,
) -> Result<Option<HelpEvent>, ServerError> {
    let is_author = row.author == person;
    if row.action == "respond" && !is_author && row.actor != person {
        return Ok(None);
    }
    // `person` on agree, done and withdraw rows is the chosen responder (if any).
    let privy = is_author || row.actor == person && row.action == "respond" || row.person == Some(person);
    let contact = match row.action.as_str() {
        "agree" if is_author => row
            .person
            .map(|p| store::response_of(conn, row.request, p))
            .transpose()?
            .flatten(),
        "agree" if row.person == Some(person) => Some(row.contact.clone()),
        _ => None,
    };
    Ok(Some(HelpEvent {
        seq: row.seq,
        space,
        request: row.request,
        action: row.action,
        actor: privy.then_some(row.actor),
        person: if privy { row.person } else { None },
        note: privy.then_some(row.note),
        contact,
        at_ms: row.at,
    }))
}

fn judge(conn: &Connection, docs: &DocCache, person: Uuid, a: &HelpAction, now: i64) -> Judged<()> {
    if !HELP_ACTIONS.contains(&a.action.as_str()) {
        return Ok(Err(refuse(
            "invalid",
            format!("unknown step; one of {}", HELP_ACTIONS.join(", ")),
        )));
    }
    if a.note.chars().count() > MAX_HELP_TEXT_CHARS || a.contact.chars().count() > MAX_HELP_TEXT_CHARS {
        return Ok(Err(refuse(
            "invalid",
            format!("a note or contact has at most {MAX_HELP_TEXT_CHARS} characters"),
        )));
    }
    let Some(role) = spaces::role_of(conn, a.space, person)? else {
        return Ok(Err(refuse("not_a_member", "you are not a member of this space")));
    };
    match store::entry_owner(conn, a.id)? {
        Some(owner) if owner == (person, a.space, a.request, a.action.clone()) => return Ok(Ok(())),
        Some(_) => return Ok(Err(refuse("invalid", "this entry id is taken"))),
        None => {}
    }
    if moderation::is_blocked(conn, a.space, person)? {
        return Ok(Err(refuse(
            "blocked",
            "the space's coordinators have blocked you",
        )));
    }
    if moderation::erased_in(conn, a.request)? == Some(a.space) {
        return Ok(Err(refuse(
            "erased",
            "the request was erased by the space's coordinators",
        )));
    }
    let meta = log::doc_meta(conn, a.request)?;
    let meta_audience = meta.as_ref().and_then(|m| m.audience.clone());
    let readable = meta.as_ref().is_some_and(|m| {
        m.space == a.space
            && m.item_kind.as_deref() == Some("request")
            && super::may_read(m, &person.to_string(), role)
    });
    let author = meta.and_then(|m| m.author).and_then(|a| Uuid::parse_str(&a).ok());
    let (true, Some(author)) = (readable, author) else {
        return Ok(Err(refuse("not_found", "no such request in this space")));
    };
    if author != person && moderation::is_hidden(conn, a.request)? {
        return Ok(Err(refuse("not_found", "no such request in this space")));
    }
    let at = store::state(conn, a.request)?;
    let expired = || -> Result<bool, ServerError> {
        let doc = docs.get(conn, a.request)?;
        Ok(item_from_doc(&doc.doc, &a.request.to_string())
            .ok()
            .and_then(|item| item.content.valid_until)
            .is_some_and(|until| until.timestamp_millis() < now))
    };
    let not_now = |what: &str| Ok(Err(refuse("not_allowed_now", what.to_owned())));
    let mut person_named = None;
    match a.action.as_str() {
        "respond" => {
            if person == author {
                return Ok(Err(refuse("forbidden", "you cannot respond to your own request")));
            }
            if at.state != "open" {
                return not_now(&format!("the request is {} already", at.state));
            }
            if store::response_of(conn, a.request, person)?.is_some() {
                return not_now("you have responded already");
            }
            if expired()? {
                return not_now("the request has expired");
            }
        }
        "agree" => {
            if person != author {
                return Ok(Err(refuse("forbidden", "only the request's author chooses")));
            }
            let Some(chosen) = a.person else {
                return Ok(Err(refuse("invalid", "an agreement names the responder")));
            };
            if store::response_of(conn, a.request, chosen)?.is_none() {
                return Ok(Err(refuse("not_found", "this person has not responded")));
            }
            if at.state != "open" {
                return not_now(&format!("the request is {} already", at.state));
            }
            if expired()? {
                return not_now("the request has expired");
            }
            store::set_state(conn, a.space, a.request, "agreed", Some(chosen))?;
            person_named = Some(chosen);
        }
        "done" => {
            if person != author && at.agreed_with != Some(person) {
                return Ok(Err(refuse("forbidden", "only the two who agreed close it")));
            }
            if at.state != "agreed" {
                return not_now(&format!("the request is {}, not agreed", at.state));
            }
            store::set_state(conn, a.space, a.request, "done", at.agreed_with)?;
            person_named = at.agreed_with;
        }
        _ => {
            // withdraw
            if person != author {
                return Ok(Err(refuse("forbidden", "only the request's author withdraws it")));
            }
            if at.state != "open" && at.state != "agreed" {
                return not_now(&format!("the request is {} already", at.state));
            }
            store::set_state(conn, a.space, a.request, "withdrawn", at.agreed_with)?;
            person_named = at.agreed_with;
        }
    }
    store::append(
        conn,
        &NewHelpEntry {
            id: a.id,
            space: a.space,
            request: a.request,
            author,
            item_audience: meta_audience.as_deref(),
            action: &a.action,
            actor: person,
            person: person_named,
            note: a.note.trim(),
            contact: a.contact.trim(),
            at: now,
        },
    )?;
    Ok(Ok(()))
}
