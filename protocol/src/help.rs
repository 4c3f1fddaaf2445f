//! The help board over the batched sync (`docs/neighbourhood.md`, "The help board"): what a
//! device sends in [`crate::SyncRequest::help`] (responses to requests and offers of help, the
//! author's agreement with one responder, done, withdrawn) and what the server answers in
//! [`crate::SyncResponse::help`] (an outcome per entry and each space's help log after the
//! device's cursor, cut to what the person may see).
//!
//! The flow is decided by the server, one entry after the other: of two agreements made
//! offline for the same request, the first to arrive holds and the second is refused
//! (`not_allowed_now`), so exactly one survives and the other device is told. Contacts travel
//! only between the two people once they agreed; who responded is seen by the request's author
//! and the responder only.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::moderation::{ModerationCursor as HelpCursor, ModerationOutcome as HelpOutcome};

/// What a help entry does. `respond`: a member offers (or asks for) help on someone's request;
/// `agree`: the request's author chooses one responder; `done`: the author or the chosen
/// helper closes it; `withdraw`: the author takes the request back.
pub const HELP_ACTIONS: [&str; 4] = ["respond", "agree", "done", "withdraw"];

/// Most help entries one request may carry.
pub const MAX_HELP_ENTRIES: usize = 200;

/// Most log entries one response carries; `more` says there are others.
pub const MAX_HELP_EVENTS: usize = 500;

/// Most characters of a note or a contact.
pub const MAX_HELP_TEXT_CHARS: usize = 1_000;

/// One step of the flow. `id` is made by the device (UUIDv7), so an entry sent twice is taken
/// once. `person` names the responder an `agree` chooses. `contact` is how the acting person
/// wants to be reached, shown to the other one only once they agreed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpAction {
    pub id: Uuid,
    pub space: Uuid,
    pub request: Uuid,
    /// One of [`HELP_ACTIONS`].
    pub action: String,
    pub person: Option<Uuid>,
    pub note: String,
    pub contact: String,
    pub at_ms: i64,
}

/// The help part of a sync request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpRequest {
    pub actions: Vec<HelpAction>,
    /// At most one per space.
    pub cursors: Vec<HelpCursor>,
}

/// One entry of a space's help log as the receiving person may see it. Everyone sees that a
/// request was agreed, done or withdrawn (so that it leaves the board); the request's author
/// and its responders see who responded and whom the author chose; the contact is shown to
/// the other of the two who agreed only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpEvent {
    pub seq: i64,
    pub space: Uuid,
    pub request: Uuid,
    /// One of [`HELP_ACTIONS`].
    pub action: String,
    /// Who acted (to the people involved only).
    pub actor: Option<Uuid>,
    /// The responder an `agree` chose (to the people involved only).
    pub person: Option<Uuid>,
    pub note: Option<String>,
    /// The other person's contact: on the `agree` entry, to the author (the chosen responder's)
    /// and to the chosen responder (the author's).
    pub contact: Option<String>,
    pub at_ms: i64,
}

/// The help part of a sync response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpResponse {
    pub outcomes: Vec<HelpOutcome>,
    pub events: Vec<HelpEvent>,
    pub cursors: Vec<HelpCursor>,
    pub more: bool,
}

/// Checks the shape of a request (counts, one cursor per space).
pub fn check_request(req: &HelpRequest, max_cursors: usize) -> Result<(), String> {
    if req.actions.len() > MAX_HELP_ENTRIES {
        return Err(format!("at most {MAX_HELP_ENTRIES} help entries per request"));
    }
    if req.cursors.len() > max_cursors {
        return Err(format!("at most {max_cursors} help cursors per request"));
    }
    let mut spaces: Vec<_> = req.cursors.iter().map(|c| c.space).collect();
    spaces.sort_unstable();
    if spaces.windows(2).any(|w| w[0] == w[1]) {
        return Err("a space may be named once per help request".into());
    }
    Ok(())
}
