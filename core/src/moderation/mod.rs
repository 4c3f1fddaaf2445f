//! Moderation on the device (`docs/neighbourhood.md`): reporting an item, a coordinator's
//! decisions (hide, restore, erase, dismiss; block and unblock a member), muting a person, and
//! what the server's moderation log says — the coordinators' queue of open reports and the log
//! itself. Reports and decisions wait in a small outbox of their own and travel with the next
//! sync (`exchange`); the server decides, and the device keeps a read-only copy of what it
//! decided, as it does for memberships.
//!
//! What a decision changes shows in the projections through one column, `items.hidden`: bit 1
//! hidden by the space's coordinators (a pending hide or restore of this device's counts at
//! once), bit 2 its author muted by this person. Every read filters on it (`query::Filter::
//! visible_to`), except the author's own view of their item.

pub(crate) mod exchange;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use uuid::Uuid;

use crate::error::{parse_stored_uuid, Error, Result};
use crate::model::{ItemId, PersonId, SpaceId};
use crate::store::Store;
use crate::sync::server_log::ServerLog;

/// Why a member reports an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ReportReason {
    Spam,
    Insult,
    /// Someone's personal data (an address, a phone number, a photo of a person).
    PersonalData,
    Dangerous,
    /// Anything else: the report's text says what.
    Other,
}

impl ReportReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportReason::Spam => "spam",
            ReportReason::Insult => "insult",
            ReportReason::PersonalData => "personal_data",
            ReportReason::Dangerous => "dangerous",
            ReportReason::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "spam" => ReportReason::Spam,
            "insult" => ReportReason::Insult,
            "personal_data" => ReportReason::PersonalData,
            "dangerous" => ReportReason::Dangerous,
            "other" => ReportReason::Other,
            _ => return None,
        })
    }
}

/// What a coordinator decides, or (in the log) that someone reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ModerationAction {
    /// A member reported an item (log entries only; see [`Store::report_item`]).
    Report,
    /// The item disappears from every other member's views (its author still sees it).
    Hide,
    /// A hidden item shows again.
    Restore,
    /// The item and its comments are removed from the server and every device.
    Erase,
    /// The item's open reports are closed without acting on it.
    Dismiss,
    /// The member's changes are no longer taken by the server.
    Block,
    Unblock,
}

impl ModerationAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            ModerationAction::Report => "report",
            ModerationAction::Hide => "hide",
            ModerationAction::Restore => "restore",
            ModerationAction::Erase => "erase",
            ModerationAction::Dismiss => "dismiss",
            ModerationAction::Block => "block",
            ModerationAction::Unblock => "unblock",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "report" => ModerationAction::Report,
            "hide" => ModerationAction::Hide,
            "restore" => ModerationAction::Restore,
            "erase" => ModerationAction::Erase,
            "dismiss" => ModerationAction::Dismiss,
            "block" => ModerationAction::Block,
            "unblock" => ModerationAction::Unblock,
            _ => return None,
        })
    }

    fn about_a_person(&self) -> bool {
        matches!(self, ModerationAction::Block | ModerationAction::Unblock)
    }
}

/// One entry of a space's moderation log, as the server let this person see it: coordinators
/// see who reported or decided and why; others see decisions about items (and the note on
/// their own) and decisions about themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ModerationEntry {
    pub seq: i64,
    pub space: SpaceId,
    pub action: ModerationAction,
    pub item: Option<ItemId>,
    /// The person a block is about, or the author of the item.
    pub person: Option<PersonId>,
    /// Who reported or decided (coordinators only).
    pub actor: Option<PersonId>,
    pub reason: Option<ReportReason>,
    /// A report's text or a decision's note.
    pub text: Option<String>,
    pub at: DateTime<Utc>,
}

/// One report in the coordinators' queue.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OpenReport {
    pub reporter: Option<PersonId>,
    pub reason: ReportReason,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// An item with open reports (none decided since), for the coordinators.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ModerationQueueEntry {
    pub item: ItemId,
    pub space: SpaceId,
    /// The item's title as this device holds it (`None`: not on this device).
    pub title: Option<String>,
    pub author: Option<PersonId>,
    /// Hidden now (by an earlier decision, or this device's pending one).
    pub hidden: bool,
    /// Oldest first.
    pub reports: Vec<OpenReport>,
}

/// A report or decision of this device not yet taken by the server, or refused by it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PendingModeration {
    pub id: Uuid,
    pub space: SpaceId,
    pub action: ModerationAction,
    pub item: Option<ItemId>,
    pub person: Option<PersonId>,
    /// The server's refusal (`forbidden`, `not_found`, `erased`, `not_allowed_now`, …) and its
    /// message; `None` while waiting. A refused entry stays listed until dismissed.
    pub refused: Option<String>,
}

/// Bits of `items.hidden`.
pub(crate) const HIDDEN_BY_MODERATORS: i64 = 1;
pub(crate) const AUTHOR_MUTED: i64 = 2;

/// Recomputes `items.hidden` for the items `filter` selects (`item_id = ?1` or `author = ?1`).
pub(crate) fn refresh_hidden(conn: &Connection, filter: &str, key: &str) -> Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE items SET hidden = {} WHERE {filter}",
        hidden_expression("items.item_id", "items.author")
    ))?
    .execute([key])?;
    Ok(())
}

/// Whether this store holds anything that can hide an item (a hide, a pending hide or restore,
/// a mute, an erasure): without it every item's `hidden` is 0 and need not be worked out.
pub(crate) fn any_hiding(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM hidden_items) OR EXISTS (SELECT 1 FROM muted_persons)
                 OR EXISTS (SELECT 1 FROM moderation_outbox WHERE action IN ('hide', 'restore'))
                 OR EXISTS (SELECT 1 FROM moderation_log WHERE action = 'erase')",
        )?
        .query_row([], |r| r.get(0))?)
}

/// The SQL value of `items.hidden` for an item and author (column names or parameters).
pub(crate) fn hidden_expression(item: &str, author: &str) -> String {
    format!(
        "(coalesce((SELECT o.action = 'hide' FROM moderation_outbox o
                     WHERE o.item_id = {item} AND o.action IN ('hide', 'restore') AND o.refused IS NULL
                     ORDER BY o.rowid DESC LIMIT 1),
                    EXISTS (SELECT 1 FROM hidden_items h WHERE h.item_id = {item})
                    OR EXISTS (SELECT 1 FROM moderation_log e WHERE e.item_id = {item} AND e.action = 'erase'))
             * {HIDDEN_BY_MODERATORS}
          | EXISTS (SELECT 1 FROM muted_persons m WHERE m.person_id = {author}) * {AUTHOR_MUTED})"
    )
}

fn space_of_item(conn: &Connection, item: ItemId) -> Result<SpaceId> {
    let space: Option<String> = rusqlite::OptionalExtension::optional(
        conn.prepare_cached("SELECT space_id FROM items WHERE item_id = ?1")?
            .query_row([item.to_string()], |r| r.get(0)),
    )?;
    space
        .ok_or_else(|| Error::NotFound {
            what: "item",
            id: item.to_string(),
        })?
        .parse()
        .map_err(Error::from)
}

fn check_text(text: &str, field: &'static str) -> Result<()> {
    let max = quartier_protocol::moderation::MAX_MODERATION_TEXT_CHARS;
    if text.chars().count() > max {
        return Err(Error::Invalid {
            field,
            reason: format!("at most {max} characters"),
        });
    }
    Ok(())
}

/// This device's role in `space`, as the memberships it holds say.
fn role_in(conn: &Connection, space: SpaceId) -> Result<Option<crate::model::Role>> {
    let role: Option<String> = rusqlite::OptionalExtension::optional(
        conn.prepare_cached("SELECT role FROM memberships WHERE space_id = ?1")?
            .query_row([space.to_string()], |r| r.get(0)),
    )?;
    Ok(role.and_then(|r| crate::model::Role::parse(&r)))
}

impl Store {
    /// Reports an item (or comment) of a space to its coordinators: sent with the next sync,
    /// where the server keeps it (the reporter shown to coordinators only). Reporting the same
    /// item again adds a report. `Other` needs a text. An item not on this device is
    /// `NotFound`. Returns the report's id.
    pub fn report_item(&self, item: ItemId, reason: ReportReason, text: &str) -> Result<Uuid> {
        check_text(text, "text")?;
        if reason == ReportReason::Other && text.trim().is_empty() {
            return Err(Error::Invalid {
                field: "text",
                reason: "a report for another reason says what it is".into(),
            });
        }
        let id = Uuid::now_v7();
        self.write(|tx, _| {
            let space = space_of_item(tx, item)?;
            tx.prepare_cached(
                "INSERT INTO moderation_outbox (id, space_id, action, item_id, person_id, reason, text, created_at)
                 VALUES (?1, ?2, 'report', ?3, NULL, ?4, ?5, ?6)",
            )?
            .execute(params![
                id.to_string(),
                space.to_string(),
                item.to_string(),
                reason.as_str(),
                text.trim(),
                crate::store::now_ms()
            ])?;
            Ok(())
        })?;
        Ok(id)
    }

    /// A coordinator's decision about an item (`Hide`, `Restore`, `Erase`, `Dismiss`): sent with
    /// the next sync. A hide or restore shows on this device at once; an erasure happens when
    /// the server has carried it out (the same sync). Refused at once where the memberships
    /// this store holds say the person is not the space's coordinator (`NotPermitted`).
    pub fn moderate_item(&self, item: ItemId, action: ModerationAction, note: &str) -> Result<Uuid> {
        if action.about_a_person() || action == ModerationAction::Report {
            return Err(Error::Invalid {
                field: "action",
                reason: format!("{} is not a decision about an item", action.as_str()),
            });
        }
        self.decide(None, Some(item), None, action, note)
    }

    /// A coordinator's decision about a member of `space` (`Block`, `Unblock`): sent with the
    /// next sync; from then on the server takes no change of theirs (their pending ones come
    /// back to their device refused, `blocked`).
    pub fn moderate_member(
        &self,
        space: SpaceId,
        person: PersonId,
        action: ModerationAction,
        note: &str,
    ) -> Result<Uuid> {
        if !action.about_a_person() {
            return Err(Error::Invalid {
                field: "action",
                reason: format!("{} is not a decision about a member", action.as_str()),
            });
        }
        self.decide(Some(space), None, Some(person), action, note)
    }

    fn decide(
        &self,
        space: Option<SpaceId>,
        item: Option<ItemId>,
        person: Option<PersonId>,
        action: ModerationAction,
        note: &str,
    ) -> Result<Uuid> {
        check_text(note, "note")?;
        let id = Uuid::now_v7();
        self.write(|tx, touched| {
            let space = match (space, item) {
                (Some(space), _) => space,
                (None, Some(item)) => space_of_item(tx, item)?,
                (None, None) => unreachable!("a decision names a space or an item"),
            };
            if self.local_permission_check() {
                if let Some(role) = role_in(tx, space)? {
                    if role != crate::model::Role::Coordinator {
                        return Err(Error::NotPermitted {
                            code: quartier_protocol::RejectCode::Forbidden,
                            message: "only coordinators moderate".into(),
                        });
                    }
                }
            }
            tx.prepare_cached(
                "INSERT INTO moderation_outbox (id, space_id, action, item_id, person_id, reason, text, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)",
            )?
            .execute(params![
                id.to_string(),
                space.to_string(),
                action.as_str(),
                item.map(|i| i.to_string()),
                person.map(|p| p.to_string()),
                note.trim(),
                crate::store::now_ms()
            ])?;
            if let Some(item) = item {
                refresh_hidden(tx, "item_id = ?1", &item.to_string())?;
                touched.items.insert(item.to_string());
            }
            touched.spaces.insert(space.to_string());
            Ok(())
        })?;
        Ok(id)
    }

    /// The neighbour an item was recorded for withdrew their consent: the item (and its
    /// comments) is erased from the server and every device, as a coordinator's erasure is
    /// (sent with the next sync; this device erases it when the server has). Only the person
    /// who recorded it, and only for an item recorded on someone's behalf.
    pub fn withdraw_consent(&self, item: ItemId, note: &str) -> Result<Uuid> {
        check_text(note, "note")?;
        let id = Uuid::now_v7();
        self.write(|tx, touched| {
            let recorded = crate::query::item_by_id(tx, &item.to_string())?.ok_or_else(|| Error::NotFound {
                what: "item",
                id: item.to_string(),
            })?;
            let me: Option<String> =
                rusqlite::OptionalExtension::optional(tx.query_row("SELECT person_id FROM account", [], |r| r.get(0)))?;
            if recorded.content.on_behalf_of.is_none() {
                return Err(Error::Invalid {
                    field: "item",
                    reason: "the item was not recorded on someone's behalf".into(),
                });
            }
            if me.is_some_and(|me| me != recorded.author.to_string()) {
                return Err(Error::NotPermitted {
                    code: quartier_protocol::RejectCode::Forbidden,
                    message: "only the person who recorded it".into(),
                });
            }
            tx.prepare_cached(
                "INSERT INTO moderation_outbox (id, space_id, action, item_id, person_id, reason, text, created_at)
                 VALUES (?1, ?2, 'erase', ?3, NULL, NULL, ?4, ?5)",
            )?
            .execute(params![
                id.to_string(),
                recorded.space.to_string(),
                item.to_string(),
                note.trim(),
                crate::store::now_ms()
            ])?;
            touched.spaces.insert(recorded.space.to_string());
            Ok(())
        })?;
        Ok(id)
    }

    /// Mutes (or unmutes) a person for this device's person: their items and comments are
    /// hidden from every view on this person's devices (at once here, on the others after
    /// their next sync); nobody else learns of it. Muting oneself is `Invalid`.
    pub fn set_muted(&self, person: PersonId, muted: bool) -> Result<()> {
        self.write(|tx, touched| {
            let me: Option<String> = rusqlite::OptionalExtension::optional(
                tx.query_row("SELECT person_id FROM account", [], |r| r.get(0)),
            )?;
            if me.as_deref() == Some(person.to_string().as_str()) {
                return Err(Error::Invalid {
                    field: "person",
                    reason: "you cannot mute yourself".into(),
                });
            }
            let key = person.to_string();
            if muted {
                tx.prepare_cached("INSERT OR IGNORE INTO muted_persons (person_id) VALUES (?1)")?
                    .execute([&key])?;
            } else {
                tx.prepare_cached("DELETE FROM muted_persons WHERE person_id = ?1")?
                    .execute([&key])?;
            }
            tx.prepare_cached(
                "INSERT INTO mute_outbox (person_id, muted) VALUES (?1, ?2)
                 ON CONFLICT (person_id) DO UPDATE SET muted = excluded.muted, seq = (SELECT coalesce(max(seq), 0) + 1 FROM mute_outbox)",
            )?
            .execute(params![key, muted])?;
            refresh_hidden(tx, "author = ?1", &key)?;
            let mut stmt = tx.prepare_cached("SELECT DISTINCT space_id FROM items WHERE author = ?1")?;
            for space in stmt.query_map([&key], |r| r.get::<_, String>(0))? {
                touched.spaces.insert(space?);
            }
            Ok(())
        })
    }

    /// The persons this device's person has muted.
    pub fn muted_persons(&self) -> Result<Vec<PersonId>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT person_id FROM muted_persons ORDER BY person_id")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row?.parse()?);
            }
            Ok(out)
        })
    }

    /// Whether the space's coordinators have blocked this device's person in `space` (as the
    /// last sync said). A blocked person's writes to the space are refused at once.
    pub fn is_blocked(&self, space: SpaceId) -> Result<bool> {
        self.read(|conn| blocked_in(conn, space))
    }

    /// This device's reports and decisions the server has not taken yet, and those it refused
    /// (until [`Store::dismiss_pending_moderation`]), oldest first.
    pub fn pending_moderation(&self) -> Result<Vec<PendingModeration>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, space_id, action, item_id, person_id, refused FROM moderation_outbox ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, space, action, item, person, refused) = row?;
                out.push(PendingModeration {
                    id: parse_stored_uuid(&id)?,
                    space: space.parse()?,
                    action: ModerationAction::parse(&action)
                        .ok_or_else(|| Error::Corrupt(format!("moderation action {action}")))?,
                    item: item.map(|i| i.parse()).transpose()?,
                    person: person.map(|p| p.parse()).transpose()?,
                    refused,
                });
            }
            Ok(out)
        })
    }

    /// Forgets a refused report or decision (one still waiting is kept: `Invalid`).
    pub fn dismiss_pending_moderation(&self, id: Uuid) -> Result<()> {
        self.write(|tx, _| ServerLog::Moderation.dismiss_refused(tx, id, "report or decision"))
    }

    /// The space's moderation log as this device received it, newest first, at most `limit`.
    pub fn moderation_log(&self, space: SpaceId, limit: u32) -> Result<Vec<ModerationEntry>> {
        self.read(|conn| log_of(conn, space, limit))
    }

    /// The coordinators' queue: items of `space` with reports no decision has closed yet, the
    /// oldest open report first. Empty for anyone but a coordinator (the server sends reports
    /// to coordinators only).
    pub fn moderation_queue(&self, space: SpaceId) -> Result<Vec<ModerationQueueEntry>> {
        self.read(|conn| queue_of(conn, space))
    }
}

pub(crate) fn blocked_in(conn: &Connection, space: SpaceId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM blocked_spaces WHERE space_id = ?1")?
        .exists([space.to_string()])?)
}

type EntryRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

fn entry_of(row: EntryRow) -> Result<Option<ModerationEntry>> {
    let (seq, space, action, item, person, actor, reason, text, at) = row;
    let Some(action) = ModerationAction::parse(&action) else {
        return Ok(None);
    };
    Ok(Some(ModerationEntry {
        seq,
        space: space.parse()?,
        action,
        item: item.map(|i| i.parse()).transpose()?,
        person: person.map(|p| p.parse()).transpose()?,
        actor: actor.map(|p| p.parse()).transpose()?,
        reason: reason.as_deref().and_then(ReportReason::parse),
        text,
        at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
    }))
}

const ENTRY_COLUMNS: &str = "seq, space_id, action, item_id, person_id, actor, reason, text, at";

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntryRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

pub(crate) fn log_of(conn: &Connection, space: SpaceId, limit: u32) -> Result<Vec<ModerationEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM moderation_log WHERE space_id = ?1 ORDER BY seq DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![space.to_string(), limit], entry_row)?;
    let mut out = Vec::new();
    for row in rows {
        // An action of a newer server this core does not know is left out, not an error.
        if let Some(entry) = entry_of(row?)? {
            out.push(entry);
        }
    }
    Ok(out)
}

pub(crate) fn queue_of(conn: &Connection, space: SpaceId) -> Result<Vec<ModerationQueueEntry>> {
    // Reports after the item's last decision.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM moderation_log r
         WHERE r.space_id = ?1 AND r.action = 'report'
           AND r.seq > coalesce((SELECT max(d.seq) FROM moderation_log d
                                 WHERE d.space_id = r.space_id AND d.item_id = r.item_id
                                   AND d.action IN ('hide', 'restore', 'erase', 'dismiss')), 0)
         ORDER BY r.seq"
    ))?;
    let rows = stmt.query_map([space.to_string()], entry_row)?;
    let mut out: Vec<ModerationQueueEntry> = Vec::new();
    for row in rows {
        let Some(entry) = entry_of(row?)? else { continue };
        let Some(item) = entry.item else { continue };
        let report = OpenReport {
            reporter: entry.actor,
            reason: entry.reason.unwrap_or(ReportReason::Other),
            text: entry.text.unwrap_or_default(),
            at: entry.at,
        };
        if let Some(open) = out.iter_mut().find(|e| e.item == item) {
            open.reports.push(report);
            continue;
        }
        let held: Option<(String, i64)> = rusqlite::OptionalExtension::optional(
            conn.prepare_cached("SELECT title, hidden FROM items WHERE item_id = ?1")?
                .query_row([item.to_string()], |r| Ok((r.get(0)?, r.get(1)?))),
        )?;
        let title = held
            .as_ref()
            .and_then(|(t, _)| serde_json::from_str::<crate::model::LocalizedText>(t).ok())
            .map(|t| t.joined());
        out.push(ModerationQueueEntry {
            item,
            space,
            title,
            author: entry.person,
            hidden: held.is_some_and(|(_, h)| h & HIDDEN_BY_MODERATORS != 0),
            reports: vec![report],
        });
    }
    Ok(out)
}
