//! The help board on the device (`docs/neighbourhood.md`, "The help board"): a request (Suche)
//! or an offer of help (Biete) moves through open → responded → agreed with one person → done
//! or withdrawn, or expires by its `valid_until`. Each step waits in a small outbox and travels
//! with the next sync (`exchange`); the server decides the order, so of two agreements made
//! offline the first to arrive holds and the other comes back refused. The device keeps the
//! steps the server let this person see ([`HelpStatus`]), and the board
//! ([`Store::help_board`]) shows what is still open.

pub(crate) mod exchange;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::error::{parse_stored_uuid, Error, Result};
use crate::model::{Item, ItemId, ItemKind, PersonId, SpaceId, Viewer};
use crate::store::Store;
use crate::sync::server_log::ServerLog;

/// Where a request stands, as this device knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum HelpState {
    /// Nobody agreed yet (responses may have come).
    Open,
    /// The author chose one responder.
    Agreed,
    Done,
    Withdrawn,
    /// Past its `valid_until` while open: it left the board by itself.
    Expired,
}

/// A response as the request's author (all of them) or the responder (their own) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HelpResponseInfo {
    pub person: PersonId,
    pub note: String,
    pub at: DateTime<Utc>,
}

/// A request's flow as this person may see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HelpStatus {
    pub request: ItemId,
    pub state: HelpState,
    /// All responses for the author; one's own for a responder; none for anyone else.
    pub responses: Vec<HelpResponseInfo>,
    /// Whom the author chose: known to the two of them only (the other responders learn that
    /// it was not them: [`HelpStatus::chosen`]).
    pub agreed_with: Option<PersonId>,
    /// Whether this person was chosen (`Some(false)`: someone else was); `None` when they did
    /// not respond.
    pub chosen: Option<bool>,
    /// The other person's contact, once the two agreed (shown to them only).
    pub contact: Option<String>,
    /// This device's steps the server has not taken yet.
    pub pending: i32,
    /// The server refused a step of this device's (code and message), until dismissed.
    pub refused: Option<String>,
}

/// A step of this device's not yet taken by the server, or refused by it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PendingHelp {
    pub id: Uuid,
    pub request: ItemId,
    /// `respond`, `agree`, `done` or `withdraw`.
    pub action: String,
    pub refused: Option<String>,
}

fn check_text(text: &str, field: &'static str) -> Result<()> {
    let max = quartier_protocol::help::MAX_HELP_TEXT_CHARS;
    if text.chars().count() > max {
        return Err(Error::Invalid {
            field,
            reason: format!("at most {max} characters"),
        });
    }
    Ok(())
}

/// The request (kind, space, author) this store holds, or `NotFound`.
fn request_of(conn: &Connection, item: ItemId) -> Result<(SpaceId, PersonId)> {
    let row: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT space_id, author, kind FROM items WHERE item_id = ?1 AND status != 'deleted'",
        )?
        .query_row([item.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    match row {
        Some((space, author, kind)) if kind == ItemKind::Request.as_str() => {
            Ok((space.parse()?, author.parse()?))
        }
        _ => Err(Error::NotFound {
            what: "request",
            id: item.to_string(),
        }),
    }
}

fn account_person(conn: &Connection) -> Result<Option<PersonId>> {
    let me: Option<String> = conn
        .query_row("SELECT person_id FROM account", [], |r| r.get(0))
        .optional()?;
    me.map(|p| p.parse().map_err(Error::from)).transpose()
}

impl Store {
    /// Responds to someone's request or offer of help: `note` says what, `contact` how to be
    /// reached (shown to the author only once they choose this person). Sent with the next sync.
    pub fn respond_to_request(&self, request: ItemId, note: &str, contact: &str) -> Result<Uuid> {
        self.help_step(request, "respond", None, note, contact)
    }

    /// The author chooses one responder; `contact` is shown to that person only.
    pub fn agree_to_help(&self, request: ItemId, responder: PersonId, contact: &str) -> Result<Uuid> {
        self.help_step(request, "agree", Some(responder), "", contact)
    }

    /// The author or the chosen helper closes an agreed request.
    pub fn close_request(&self, request: ItemId, note: &str) -> Result<Uuid> {
        self.help_step(request, "done", None, note, "")
    }

    /// The author takes a request back (open or agreed).
    pub fn withdraw_request(&self, request: ItemId, note: &str) -> Result<Uuid> {
        self.help_step(request, "withdraw", None, note, "")
    }

    fn help_step(
        &self,
        request: ItemId,
        action: &str,
        person: Option<PersonId>,
        note: &str,
        contact: &str,
    ) -> Result<Uuid> {
        check_text(note, "note")?;
        check_text(contact, "contact")?;
        let id = Uuid::now_v7();
        self.write(|tx, touched| {
            let (space, author) = request_of(tx, request)?;
            let me = account_person(tx)?;
            let refused = |message: &str| Error::NotPermitted {
                code: quartier_protocol::RejectCode::Forbidden,
                message: message.into(),
            };
            // What the server would refuse on who acts, said at once where this device knows.
            if let Some(me) = me {
                let mine = author == me;
                match action {
                    "respond" if mine => return Err(refused("you cannot respond to your own request")),
                    "agree" | "withdraw" if !mine => return Err(refused("only the request's author does this")),
                    _ => {}
                }
            }
            if crate::moderation::blocked_in(tx, space)? {
                return Err(Error::NotPermitted {
                    code: quartier_protocol::RejectCode::Blocked,
                    message: "the space's coordinators have blocked you".into(),
                });
            }
            tx.prepare_cached(
                "INSERT INTO help_outbox (id, space_id, request_id, action, person_id, note, contact, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                id.to_string(),
                space.to_string(),
                request.to_string(),
                action,
                person.map(|p| p.to_string()),
                note.trim(),
                contact.trim(),
                crate::store::now_ms()
            ])?;
            touched.spaces.insert(space.to_string());
            touched.items.insert(request.to_string());
            Ok(())
        })?;
        Ok(id)
    }

    /// Where a request stands for this device's person.
    pub fn help_status(&self, request: ItemId) -> Result<HelpStatus> {
        self.read(|conn| status_of(conn, request))
    }

    /// The open requests and offers of help of a space that `viewer` may see, newest first
    /// (at most 200): not agreed, done, withdrawn or expired, nor ended by a step of this
    /// device's waiting to be sent.
    pub fn help_board(&self, space: SpaceId, viewer: Viewer) -> Result<Vec<Item>> {
        self.read(|conn| board_of(conn, space, viewer))
    }

    /// This device's help steps the server has not taken, and those it refused.
    pub fn pending_help(&self) -> Result<Vec<PendingHelp>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, request_id, action, refused FROM help_outbox ORDER BY rowid")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, request, action, refused) = row?;
                out.push(PendingHelp {
                    id: parse_stored_uuid(&id)?,
                    request: request.parse()?,
                    action,
                    refused,
                });
            }
            Ok(out)
        })
    }

    /// Forgets a refused help step (one still waiting is `Invalid`).
    pub fn dismiss_pending_help(&self, id: Uuid) -> Result<()> {
        self.write(|tx, _| ServerLog::Help.dismiss_refused(tx, id, "help step"))
    }
}

/// Whether a request has ended (agreed, done, withdrawn), as the log or a pending step says.
const ENDED: &str =
    "(EXISTS (SELECT 1 FROM help_log h WHERE h.request_id = ?1 AND h.action IN ('agree', 'done', 'withdraw'))
                     OR EXISTS (SELECT 1 FROM help_outbox o WHERE o.request_id = ?1 AND o.refused IS NULL
                                AND o.action IN ('agree', 'done', 'withdraw')))";

pub(crate) fn board_of(conn: &Connection, space: SpaceId, viewer: Viewer) -> Result<Vec<Item>> {
    let mut q = crate::query::FeedQuery::new(space, viewer);
    q.kinds = vec![ItemKind::Request];
    q.limit = crate::query::Limit(500);
    let page = crate::query::feed(conn, &q)?;
    let mut ended = conn.prepare_cached(&format!("SELECT {ENDED}"))?;
    let mut out = Vec::new();
    for item in page.items {
        if !ended.query_row([item.id.to_string()], |r| r.get::<_, bool>(0))? {
            out.push(item);
            if out.len() == 200 {
                break;
            }
        }
    }
    Ok(out)
}

pub(crate) fn status_of(conn: &Connection, request: ItemId) -> Result<HelpStatus> {
    let (_, author) = request_of(conn, request)?;
    let me = account_person(conn)?;
    let key = request.to_string();
    let mut status = HelpStatus {
        request,
        state: HelpState::Open,
        responses: Vec::new(),
        agreed_with: None,
        chosen: None,
        contact: None,
        pending: 0,
        refused: None,
    };
    let mut stmt = conn.prepare_cached(
        "SELECT action, actor, person_id, note, contact, at FROM help_log WHERE request_id = ?1 ORDER BY seq",
    )?;
    type Row = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
    );
    let rows = stmt.query_map([&key], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })?;
    let mut responded = false;
    let mut agreed = false;
    for row in rows {
        let (action, actor, person, note, contact, at): Row = row?;
        let actor: Option<PersonId> = actor.map(|a| a.parse()).transpose()?;
        match action.as_str() {
            "respond" => {
                if let Some(actor) = actor {
                    responded |= Some(actor) == me;
                    status.responses.push(HelpResponseInfo {
                        person: actor,
                        note: note.unwrap_or_default(),
                        at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                    });
                }
            }
            "agree" => {
                status.state = HelpState::Agreed;
                status.agreed_with = person.map(|p| p.parse()).transpose()?;
                status.contact = contact;
                agreed = true;
            }
            "done" => status.state = HelpState::Done,
            _ => status.state = HelpState::Withdrawn,
        }
    }
    // Past its validity, a request is expired: the server refuses an agreement that arrives
    // then, so one still waiting on this device does not make it agreed.
    let until: Option<i64> = conn
        .prepare_cached("SELECT valid_until FROM items WHERE item_id = ?1")?
        .query_row([&key], |r| r.get(0))?;
    let expired = until.is_some_and(|u| u < crate::store::now_ms());
    // This device's own steps count at once.
    let mut stmt = conn.prepare_cached(
        "SELECT action, person_id, note, created_at, refused FROM help_outbox WHERE request_id = ?1 ORDER BY rowid",
    )?;
    type Pending = (String, Option<String>, String, i64, Option<String>);
    let rows = stmt.query_map([&key], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    for row in rows {
        let (action, person, note, at, refused): Pending = row?;
        if let Some(refused) = refused {
            status.refused = Some(refused);
            continue;
        }
        status.pending += 1;
        match action.as_str() {
            "respond" => {
                if let Some(me) = me {
                    responded = true;
                    status.responses.push(HelpResponseInfo {
                        person: me,
                        note,
                        at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                    });
                }
            }
            "agree" if status.state == HelpState::Open && !expired => {
                status.state = HelpState::Agreed;
                status.agreed_with = person.map(|p| p.parse()).transpose()?;
            }
            "done" if status.state == HelpState::Agreed => status.state = HelpState::Done,
            "withdraw" if matches!(status.state, HelpState::Open | HelpState::Agreed) => {
                status.state = HelpState::Withdrawn
            }
            _ => {}
        }
    }
    if status.state == HelpState::Open && expired {
        status.state = HelpState::Expired;
    }
    let is_author = me.is_some() && me == Some(author);
    // A responder learns whether they were chosen; the server names the chosen one to them
    // only if it is them.
    if responded && !is_author && agreed {
        status.chosen = Some(status.agreed_with.is_some() && status.agreed_with == me);
    }
    if !is_author && status.chosen != Some(true) {
        status.contact = None;
    }
    Ok(status)
}
