//! Moderation over the batched sync (`docs/neighbourhood.md`): what a device sends in
//! [`crate::SyncRequest::moderation`] (reports, coordinators' decisions, its person's mutes) and
//! what the server answers in [`crate::SyncResponse::moderation`] (an outcome per entry and the
//! space's moderation log after the device's cursor, as far as its role may see it).
//!
//! Moderation is not CRDT data: like membership, the server decides it and devices hold a
//! read-only copy, so no merge can un-hide an item or unblock a person.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most reports, decisions or mute changes one request may carry (each list).
pub const MAX_MODERATION_ENTRIES: usize = 200;

/// Most log entries one response carries; `more` says there are others.
pub const MAX_MODERATION_EVENTS: usize = 500;

/// Most characters of a report's text or a decision's note.
pub const MAX_MODERATION_TEXT_CHARS: usize = 1_000;

/// Most persons one person may mute.
pub const MAX_MUTES: usize = 1_000;

/// Why a member reports an item. On the wire as its snake_case name, checked by the server
/// entry by entry (an unknown reason refuses that report, not the whole sync).
pub const REPORT_REASONS: [&str; 5] = ["spam", "insult", "personal_data", "dangerous", "other"];

/// What a coordinator decides. `dismiss` closes an item's open reports without acting on it.
pub const DECISIONS: [&str; 6] = ["hide", "restore", "erase", "dismiss", "block", "unblock"];

/// A member's report of an item (or comment). `id` is made by the device (UUIDv7), so a report
/// sent twice is stored once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: Uuid,
    pub space: Uuid,
    pub item: Uuid,
    /// One of [`REPORT_REASONS`].
    pub reason: String,
    /// What the reporter adds (required for `other`).
    pub text: String,
    pub at_ms: i64,
}

/// A coordinator's decision. Item decisions (`hide`, `restore`, `erase`, `dismiss`) name
/// `item`; person decisions (`block`, `unblock`) name `person`. `id` as for [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub id: Uuid,
    pub space: Uuid,
    /// One of [`DECISIONS`].
    pub action: String,
    pub item: Option<Uuid>,
    pub person: Option<Uuid>,
    /// Why, for the other coordinators and the author of the item.
    pub note: String,
    pub at_ms: i64,
}

/// Mute (`muted`) or unmute a person for the requesting person: their content is hidden on
/// that person's devices only. Nobody else learns of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuteChange {
    pub person: Uuid,
    pub muted: bool,
}

/// Most personal settings (follows, notification kinds turned off) one person keeps.
pub const MAX_SETTINGS: usize = 2_000;

/// The kinds of personal setting: what a person follows, and the notification kinds they
/// turned off (`value`: the kind's name).
pub const SETTING_KINDS: [&str; 4] = [
    "follow_category",
    "follow_tag",
    "follow_item",
    "notifications_off",
];

/// A person's setting added (`on`) or removed, from one of their devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    pub kind: String,
    pub value: String,
    pub on: bool,
}

/// One of a person's settings, as the server keeps it for all their devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonSetting {
    pub kind: String,
    pub value: String,
}

/// Where a device stands in a space's moderation log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationCursor {
    pub space: Uuid,
    /// The last entry received (0: none).
    pub after: i64,
}

/// The moderation part of a sync request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationRequest {
    pub reports: Vec<Report>,
    pub decisions: Vec<Decision>,
    pub mutes: Vec<MuteChange>,
    /// At most one per space (spaces the person is no member of are left out of the answer).
    pub cursors: Vec<ModerationCursor>,
    /// Follows and notification kinds turned off, kept per person like mutes.
    #[serde(default)]
    pub settings: Vec<SettingChange>,
}

/// What became of one report or decision, by its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationOutcome {
    pub id: Uuid,
    /// `None`: stored (or stored before). Otherwise why not: a stable code and a message.
    pub refused: Option<ModerationRefusal>,
}

/// Why a report or decision was refused; nothing of it is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationRefusal {
    /// `forbidden`, `not_a_member`, `not_found`, `erased`, `invalid`, `not_allowed_now`.
    pub code: String,
    pub message: String,
}

/// One entry of a space's moderation log, as the receiving person may see it: coordinators
/// see every entry whole; others see decisions about items (without who made them, and with
/// the note only on their own items) and decisions about themselves; never reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationEvent {
    pub seq: i64,
    pub space: Uuid,
    /// `report` or one of [`DECISIONS`].
    pub action: String,
    pub item: Option<Uuid>,
    /// A decision's person; for an item, its author (as far as the server knows).
    pub person: Option<Uuid>,
    /// Who reported or decided: coordinators only.
    pub actor: Option<Uuid>,
    /// A report's reason (coordinators only).
    pub reason: Option<String>,
    /// A report's text or a decision's note (see above who sees it).
    pub text: Option<String>,
    pub at_ms: i64,
}

/// The moderation part of a sync response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationResponse {
    pub outcomes: Vec<ModerationOutcome>,
    pub events: Vec<ModerationEvent>,
    /// The cursor of every space asked about, after these events.
    pub cursors: Vec<ModerationCursor>,
    /// Whether more events wait (ask again).
    pub more: bool,
    /// Everyone the person has muted, now.
    pub muted: Vec<Uuid>,
    /// All the person's settings, now (`None` from a server that keeps none: the device keeps
    /// its own).
    #[serde(default)]
    pub settings: Option<Vec<PersonSetting>>,
}

/// Checks the shape of a request (counts, one cursor per space); each entry's content is the
/// server's to judge one by one.
pub fn check_request(req: &ModerationRequest, max_cursors: usize) -> Result<(), String> {
    if req.reports.len() > MAX_MODERATION_ENTRIES
        || req.decisions.len() > MAX_MODERATION_ENTRIES
        || req.mutes.len() > MAX_MODERATION_ENTRIES
        || req.settings.len() > MAX_MODERATION_ENTRIES
    {
        return Err(format!(
            "at most {MAX_MODERATION_ENTRIES} reports, decisions and mute changes each per request"
        ));
    }
    if req.cursors.len() > max_cursors {
        return Err(format!("at most {max_cursors} moderation cursors per request"));
    }
    let mut spaces: Vec<_> = req.cursors.iter().map(|c| c.space).collect();
    spaces.sort_unstable();
    if spaces.windows(2).any(|w| w[0] == w[1]) {
        return Err("a space may be named once per moderation request".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_naming_a_space_twice_or_too_many_entries_is_refused() {
        let space = Uuid::now_v7();
        let cursor = ModerationCursor { space, after: 0 };
        let twice = ModerationRequest {
            cursors: vec![cursor.clone(), cursor],
            ..Default::default()
        };
        assert!(check_request(&twice, 10).is_err());
        let many = ModerationRequest {
            mutes: vec![
                MuteChange {
                    person: space,
                    muted: true
                };
                MAX_MODERATION_ENTRIES + 1
            ],
            ..Default::default()
        };
        assert!(check_request(&many, 10).is_err());
        assert!(check_request(&ModerationRequest::default(), 10).is_ok());
    }
}
