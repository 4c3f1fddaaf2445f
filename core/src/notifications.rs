//! Notifications (`docs/neighbourhood.md`, "Notifications"): what is new for this device's
//! person, worked out on the device in the same transaction as what brought it — a merge of
//! items from a sync or a peer (`item_arrived`), the help board's and moderation's log
//! entries (`help_entry`, `moderation_entry`), and reminders of followed events
//! ([`Store::check_reminders`], also run after every sync). Nothing is pushed by a server: the
//! apps turn the list (live as `LiveQuery::Notifications`) into local notifications.
//!
//! Each event is recorded once, under a key that names it (the comment, the log entry, the
//! event's occurrence): a sync delivered twice, a replayed page or another order makes no
//! second notification. Nothing is made for what this person did, for what happened before the
//! store made notifications, for hidden or muted content, or for a kind the person turned off.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::model::{Item, ItemDetails, ItemId, ItemKind, OnBehalfOf, PersonId, Reach, SpaceId, Viewer};
use crate::store::{Store, Touched};

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum NotificationKind {
    /// A comment on my item.
    Reply,
    /// Someone responded to my request or offer of help.
    Response,
    /// The author of a request I responded to chose me.
    Agreed,
    /// The author of a request I responded to chose someone else.
    NotChosen,
    /// An event I follow starts within the hour.
    EventSoon,
    /// A new item in a category or with a tag I follow, near a place I follow, or a comment on
    /// an item I follow.
    Followed,
    /// A coordinators' decision about my content or about me (`detail`: the decision).
    Moderation,
    /// A reply or a response to an item I recorded for a neighbour who is reached through me:
    /// mine to pass on ([`Store::call_backs`]).
    CallBack,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 8] = [
        NotificationKind::CallBack,
        NotificationKind::Reply,
        NotificationKind::Response,
        NotificationKind::Agreed,
        NotificationKind::NotChosen,
        NotificationKind::EventSoon,
        NotificationKind::Followed,
        NotificationKind::Moderation,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            NotificationKind::Reply => "reply",
            NotificationKind::Response => "response",
            NotificationKind::Agreed => "agreed",
            NotificationKind::NotChosen => "not_chosen",
            NotificationKind::EventSoon => "event_soon",
            NotificationKind::Followed => "followed",
            NotificationKind::Moderation => "moderation",
            NotificationKind::CallBack => "call_back",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One notification.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Notification {
    pub id: i64,
    pub kind: NotificationKind,
    pub space: SpaceId,
    pub item: Option<ItemId>,
    /// Who did it, where this person may know (a reply's author, a responder).
    pub person: Option<PersonId>,
    /// The moderation decision (`hide`, `erase`, `block` …) or the event's start (RFC 3339).
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
    pub read: bool,
}

/// One entry of a volunteer's call-back list.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CallBack {
    /// The reply or response (its `item` is the recorded item, `person` who wrote).
    pub notification: Notification,
    /// The recorded item's title.
    pub title: String,
    /// The neighbour to pass it on to, and how they consented.
    pub neighbour: OnBehalfOf,
}

/// What a person follows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum FollowTarget {
    /// New items whose category is this (offers, requests, places, observations).
    Category { name: String },
    /// New items with this tag.
    Tag { tag: String },
    /// An item: comments on it; for an event, a reminder before each occurrence; for a place,
    /// new items within [`NEAR_A_PLACE_M`] of it.
    Item { item: ItemId },
}

/// How near a new item must be to a followed place to count as "at" it.
pub const NEAR_A_PLACE_M: f64 = 150.0;

/// How long before an occurrence of a followed event the reminder comes.
pub const REMINDER_BEFORE_MIN: i64 = 60;

impl FollowTarget {
    fn key(&self) -> (&'static str, String) {
        match self {
            FollowTarget::Category { name } => ("category", name.trim().to_lowercase()),
            FollowTarget::Tag { tag } => ("tag", tag.trim().to_lowercase()),
            FollowTarget::Item { item } => ("item", item.to_string()),
        }
    }
}

/// Whether a kind is on (every kind is, until turned off).
fn enabled(conn: &Connection, kind: NotificationKind) -> Result<bool> {
    let on: Option<bool> = conn
        .prepare_cached("SELECT enabled FROM notification_settings WHERE kind = ?1")?
        .query_row([kind.as_str()], |r| r.get(0))
        .optional()?;
    Ok(on.unwrap_or(true))
}

fn me(conn: &Connection) -> Result<Option<String>> {
    // Cached: asked for every item a sync or a bulk apply merges.
    Ok(conn
        .prepare_cached("SELECT person_id FROM account")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// Records one notification under `key` unless it exists or its kind is off.
#[allow(clippy::too_many_arguments)]
fn record(
    conn: &Connection,
    touched: &mut Touched,
    key: &str,
    kind: NotificationKind,
    space: &str,
    item: Option<&str>,
    person: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    if !enabled(conn, kind)? {
        return Ok(());
    }
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO notifications (key, kind, space_id, item_id, person_id, detail, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            key,
            kind.as_str(),
            space,
            item,
            person,
            detail,
            crate::store::now_ms()
        ])?;
    touched.notifications |= added > 0;
    Ok(())
}

fn category_of(details: &ItemDetails) -> Option<&str> {
    match details {
        ItemDetails::Offer(o) => o.category.as_deref(),
        ItemDetails::Request(r) => Some(r.category.as_str()),
        ItemDetails::Place(p) => p.category.as_deref(),
        ItemDetails::Observation(o) => o.category.as_deref(),
        _ => None,
    }
}

/// An item merged from a sync or a peer: a reply to my item, or something I follow.
pub(crate) fn item_arrived(conn: &Connection, item: &Item, touched: &mut Touched) -> Result<()> {
    let Some(me) = me(conn)? else { return Ok(()) };
    let id = item.id.to_string();
    if item.author.to_string() == me {
        return Ok(());
    }
    if !is_new(conn, item.created_at.timestamp_millis())? {
        return Ok(());
    }
    // Hidden by the coordinators, muted, deleted, or not for this person: nothing to tell.
    let shown: Option<(i64, String)> = conn
        .prepare_cached("SELECT hidden, status FROM items WHERE item_id = ?1")?
        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if !shown.is_some_and(|(hidden, status)| hidden == 0 && status == "published") {
        return Ok(());
    }
    let space = item.space.to_string();
    let author = item.author.to_string();
    if let Some(parent) = item.content.details.parent() {
        let parent = parent.to_string();
        let parent_author: Option<String> = conn
            .prepare_cached("SELECT author FROM items WHERE item_id = ?1")?
            .query_row([&parent], |r| r.get(0))
            .optional()?;
        if parent_author.as_deref() == Some(me.as_str()) {
            let key = format!("reply:{id}");
            return record(
                conn,
                touched,
                &key,
                reply_kind(conn, &parent, NotificationKind::Reply)?,
                &space,
                Some(&parent),
                Some(&author),
                None,
            );
        }
        if follows(conn, "item", &parent)? {
            let key = format!("followed:{id}");
            return record(
                conn,
                touched,
                &key,
                NotificationKind::Followed,
                &space,
                Some(&parent),
                Some(&author),
                None,
            );
        }
        return Ok(());
    }
    let key = format!("followed:{id}");
    let mut matched = category_of(&item.content.details)
        .is_some_and(|c| follows(conn, "category", &c.trim().to_lowercase()).unwrap_or(false));
    for tag in &item.content.tags {
        matched = matched || follows(conn, "tag", &tag.trim().to_lowercase())?;
    }
    if !matched {
        if let Some(at) = &item.content.location {
            matched = near_a_followed_place(conn, at.lat, at.lon, &id)?;
        }
    }
    if matched {
        record(
            conn,
            touched,
            &key,
            NotificationKind::Followed,
            &space,
            Some(&id),
            Some(&author),
            None,
        )?;
    }
    Ok(())
}

/// `CallBack` when `item` (mine) was recorded for a neighbour who is reached through me,
/// otherwise `kind`.
fn reply_kind(conn: &Connection, item: &str, kind: NotificationKind) -> Result<NotificationKind> {
    let through_me = crate::query::item_by_id(conn, item)?
        .and_then(|i| i.content.on_behalf_of)
        .is_some_and(|b| matches!(b.reach, None | Some(Reach::ThroughRecorder)));
    Ok(if through_me {
        NotificationKind::CallBack
    } else {
        kind
    })
}

/// Whether something that happened at `at_ms` is news: not from before the store made
/// notifications (a first sync, a linked device, a log read again after a change of role).
fn is_new(conn: &Connection, at_ms: i64) -> Result<bool> {
    let since: Option<i64> = conn
        .prepare_cached("SELECT coalesce(notifications_since, created_at) FROM device WHERE singleton = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(since.is_none_or(|since| at_ms >= since))
}

fn follows(conn: &Connection, kind: &str, value: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM follows WHERE kind = ?1 AND value = ?2")?
        .exists([kind, value])?)
}

fn near_a_followed_place(conn: &Connection, lat: f64, lon: f64, id: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.lat, i.lon FROM follows f JOIN items i ON i.item_id = f.value
         WHERE f.kind = 'item' AND i.kind = 'place' AND i.lat IS NOT NULL AND i.item_id != ?1",
    )?;
    let rows = stmt.query_map([id], |r| Ok((r.get::<_, f64>(0)?, r.get::<_, f64>(1)?)))?;
    for row in rows {
        let (plat, plon) = row?;
        if crate::model::haversine_m(lat, lon, plat, plon) <= NEAR_A_PLACE_M {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A help log entry this device just received (once): a response to my request, or the
/// author's choice on a request I responded to.
pub(crate) fn help_entry(
    conn: &Connection,
    e: &quartier_protocol::help::HelpEvent,
    touched: &mut Touched,
) -> Result<()> {
    let Some(me) = me(conn)? else { return Ok(()) };
    let space = e.space.to_string();
    let request = e.request.to_string();
    let actor = e.actor.map(|a| a.to_string());
    if actor.as_deref() == Some(me.as_str()) || !is_new(conn, e.at_ms)? {
        return Ok(());
    }
    match e.action.as_str() {
        // A response reaches only the request's author and the responder: here, the author.
        "respond" => record(
            conn,
            touched,
            &format!("response:{space}:{}", e.seq),
            reply_kind(conn, &request, NotificationKind::Response)?,
            &space,
            Some(&request),
            actor.as_deref(),
            None,
        ),
        "agree" if e.person.map(|p| p.to_string()).as_deref() == Some(me.as_str()) => record(
            conn,
            touched,
            &format!("agreed:{request}"),
            NotificationKind::Agreed,
            &space,
            Some(&request),
            actor.as_deref(),
            None,
        ),
        // Someone else was chosen: only a responder learns who acted (the author).
        "agree" if actor.is_some() => record(
            conn,
            touched,
            &format!("not_chosen:{request}"),
            NotificationKind::NotChosen,
            &space,
            Some(&request),
            None,
            None,
        ),
        _ => Ok(()),
    }
}

/// A moderation log entry this device just received (once): a decision about my item or me.
pub(crate) fn moderation_entry(
    conn: &Connection,
    e: &quartier_protocol::moderation::ModerationEvent,
    touched: &mut Touched,
) -> Result<()> {
    let Some(me) = me(conn)? else { return Ok(()) };
    let mine = |p: Option<uuid::Uuid>| p.map(|p| p.to_string()).as_deref() == Some(me.as_str());
    if !mine(e.person) || mine(e.actor) || e.action == "report" || !is_new(conn, e.at_ms)? {
        return Ok(());
    }
    let space = e.space.to_string();
    let item = e.item.map(|i| i.to_string());
    record(
        conn,
        touched,
        &format!("moderation:{space}:{}", e.seq),
        NotificationKind::Moderation,
        &space,
        item.as_deref(),
        None,
        Some(&e.action),
    )
}

/// Reminders of the followed events whose occurrence starts within the hour after `now`.
pub(crate) fn remind(conn: &Connection, now: DateTime<Utc>, touched: &mut Touched) -> Result<usize> {
    let Some(me) = me(conn)? else { return Ok(0) };
    let person: PersonId = me.parse()?;
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT i.space_id, m.role FROM follows f JOIN items i ON i.item_id = f.value
         JOIN memberships m ON m.space_id = i.space_id WHERE f.kind = 'item' AND i.kind = ?1",
    )?;
    let spaces: Vec<(String, String)> = stmt
        .query_map([ItemKind::Event.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut made = 0;
    for (space, role) in spaces {
        let Some(role) = crate::model::Role::parse(&role) else {
            continue;
        };
        let query = crate::query::EventsQuery {
            space: space.parse()?,
            viewer: Viewer::new(person, role),
            from: now,
            to: now + Duration::minutes(REMINDER_BEFORE_MIN),
            limit: crate::query::Limit(200),
        };
        for occurrence in crate::query::events_between(conn, &query)? {
            let id = occurrence.item.id.to_string();
            if occurrence.start < now || !follows(conn, "item", &id)? {
                continue;
            }
            let key = format!("event:{id}:{}", occurrence.start.timestamp_millis());
            let before = touched.notifications;
            touched.notifications = false;
            record(
                conn,
                touched,
                &key,
                NotificationKind::EventSoon,
                &space,
                Some(&id),
                None,
                Some(&occurrence.start.to_rfc3339()),
            )?;
            made += usize::from(touched.notifications);
            touched.notifications |= before;
        }
    }
    Ok(made)
}

impl Store {
    /// The person's notifications, newest first: all, or only the unread; at most `limit`.
    pub fn notifications(&self, unread_only: bool, limit: u32) -> Result<Vec<Notification>> {
        self.read(|conn| list(conn, unread_only, limit))
    }

    /// How many notifications are unread.
    pub fn unread_notifications(&self) -> Result<u32> {
        self.read(|conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM notifications WHERE read_at IS NULL",
                [],
                |r| r.get(0),
            )?;
            Ok(n as u32)
        })
    }

    /// Marks notifications read (`ids`), or all of them (`ids` empty).
    pub fn mark_notifications_read(&self, ids: &[i64]) -> Result<()> {
        self.write(|tx, touched| {
            let now = crate::store::now_ms();
            if ids.is_empty() {
                tx.execute(
                    "UPDATE notifications SET read_at = ?1 WHERE read_at IS NULL",
                    [now],
                )?;
            } else {
                let mut stmt = tx.prepare_cached(
                    "UPDATE notifications SET read_at = ?1 WHERE id = ?2 AND read_at IS NULL",
                )?;
                for id in ids {
                    stmt.execute(params![now, id])?;
                }
            }
            touched.notifications = true;
            Ok(())
        })
    }

    /// Follows a category, a tag or an item (see [`FollowTarget`]).
    pub fn follow(&self, target: FollowTarget) -> Result<()> {
        let (kind, value) = target.key();
        if value.is_empty() || value.chars().count() > 200 {
            return Err(Error::Invalid {
                field: "follow",
                reason: "a category or tag of 1 to 200 characters".into(),
            });
        }
        self.write(|tx, _| {
            tx.execute(
                "INSERT OR IGNORE INTO follows (kind, value, since) VALUES (?1, ?2, ?3)",
                params![kind, value, crate::store::now_ms()],
            )?;
            queue_setting(tx, &format!("follow_{kind}"), &value, true)
        })
    }

    pub fn unfollow(&self, target: FollowTarget) -> Result<()> {
        let (kind, value) = target.key();
        self.write(|tx, _| {
            tx.execute(
                "DELETE FROM follows WHERE kind = ?1 AND value = ?2",
                params![kind, value],
            )?;
            queue_setting(tx, &format!("follow_{kind}"), &value, false)
        })
    }

    pub fn follows(&self) -> Result<Vec<FollowTarget>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT kind, value FROM follows ORDER BY kind, value")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (kind, value) = row?;
                out.push(match kind.as_str() {
                    "category" => FollowTarget::Category { name: value },
                    "tag" => FollowTarget::Tag { tag: value },
                    _ => FollowTarget::Item { item: value.parse()? },
                });
            }
            Ok(out)
        })
    }

    /// Turns a kind of notification on or off (off: none of it is made from then on).
    pub fn set_notifications_enabled(&self, kind: NotificationKind, enabled: bool) -> Result<()> {
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO notification_settings (kind, enabled) VALUES (?1, ?2)
                 ON CONFLICT (kind) DO UPDATE SET enabled = excluded.enabled",
                params![kind.as_str(), enabled],
            )?;
            queue_setting(tx, "notifications_off", kind.as_str(), !enabled)
        })
    }

    /// The kinds turned off.
    pub fn disabled_notifications(&self) -> Result<Vec<NotificationKind>> {
        self.read(|conn| {
            let mut out = Vec::new();
            for kind in NotificationKind::ALL {
                if !enabled(conn, kind)? {
                    out.push(kind);
                }
            }
            Ok(out)
        })
    }

    /// The call-back list: replies and responses to items this person recorded for neighbours
    /// reached through them, oldest first, with whom to pass each on to. Those not passed on
    /// yet only, unless `all`; [`Store::mark_notifications_read`] marks one passed on.
    pub fn call_backs(&self, all: bool) -> Result<Vec<CallBack>> {
        self.read(|conn| {
            let mut out = Vec::new();
            for notification in list(conn, !all, 1_000)?.into_iter().rev() {
                if notification.kind != NotificationKind::CallBack {
                    continue;
                }
                let Some(item) = notification.item else { continue };
                let Some(recorded) = crate::query::item_by_id(conn, &item.to_string())? else {
                    continue;
                };
                let Some(neighbour) = recorded.content.on_behalf_of.clone() else {
                    continue;
                };
                out.push(CallBack {
                    notification,
                    title: recorded.content.title.joined(),
                    neighbour,
                });
            }
            Ok(out)
        })
    }

    /// Makes the reminders of followed events starting within the hour after `now` (each
    /// occurrence once); also done after every sync. An app's background timer calls it.
    pub fn check_reminders(&self, now: DateTime<Utc>) -> Result<usize> {
        self.write(|tx, touched| remind(tx, now, touched))
    }
}

/// Queues a change of a personal setting for the server, which keeps them for all the
/// person's devices (`moderation::exchange` carries it).
fn queue_setting(tx: &Connection, kind: &str, value: &str, on: bool) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO settings_outbox (kind, value, \"on\", seq)
         VALUES (?1, ?2, ?3, (SELECT coalesce(max(seq), 0) + 1 FROM settings_outbox))
         ON CONFLICT (kind, value) DO UPDATE SET \"on\" = excluded.\"on\", seq = excluded.seq",
    )?
    .execute(params![kind, value, on])?;
    Ok(())
}

/// Takes the server's list of the person's settings, with the changes made here since:
/// follows and turned-off kinds become what it says.
pub(crate) fn take_settings(
    tx: &Connection,
    settings: &[quartier_protocol::moderation::PersonSetting],
) -> Result<()> {
    let mut target: std::collections::BTreeSet<(String, String)> = settings
        .iter()
        .map(|s| (s.kind.clone(), s.value.clone()))
        .collect();
    {
        let mut stmt = tx.prepare_cached("SELECT kind, value, \"on\" FROM settings_outbox")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        for row in rows {
            let (kind, value, on) = row?;
            if on {
                target.insert((kind, value));
            } else {
                target.remove(&(kind, value));
            }
        }
    }
    let now = crate::store::now_ms();
    let follows: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached("SELECT kind, value FROM follows")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (kind, value) in &follows {
        if !target.contains(&(format!("follow_{kind}"), value.clone())) {
            tx.execute(
                "DELETE FROM follows WHERE kind = ?1 AND value = ?2",
                params![kind, value],
            )?;
        }
    }
    tx.execute("DELETE FROM notification_settings", [])?;
    for (kind, value) in &target {
        if let Some(follow) = kind.strip_prefix("follow_") {
            tx.execute(
                "INSERT OR IGNORE INTO follows (kind, value, since) VALUES (?1, ?2, ?3)",
                params![follow, value, now],
            )?;
        } else if kind == "notifications_off" {
            tx.execute(
                "INSERT OR REPLACE INTO notification_settings (kind, enabled) VALUES (?1, 0)",
                [value],
            )?;
        }
    }
    Ok(())
}

pub(crate) fn list(conn: &Connection, unread_only: bool, limit: u32) -> Result<Vec<Notification>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, space_id, item_id, person_id, detail, at, read_at FROM notifications
         WHERE (?1 = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT ?2",
    )?;
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
        Option<i64>,
    );
    let rows = stmt.query_map(params![unread_only, limit.min(1_000)], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, space, item, person, detail, at, read_at): Row = row?;
        let Some(kind) = NotificationKind::parse(&kind) else {
            continue;
        };
        out.push(Notification {
            id,
            kind,
            space: space.parse()?,
            item: item.map(|i| i.parse()).transpose()?,
            person: person.map(|p| p.parse()).transpose()?,
            detail,
            at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
            read: read_at.is_some(),
        });
    }
    Ok(out)
}
