//! Who may see what: roles in a space, the audience an item is meant for, the lifecycle status
//! of an item, and the viewer a query is asked for. Roles are decided by the server; the core
//! only reads them to filter what it shows.

use serde::{Deserialize, Serialize};

use super::ids::{ItemId, PersonId, SpaceId};
use super::item::Item;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name used in documents, projections and the protocol.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::error::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(crate::error::Error::invalid(
                        $what,
                        format!("`{}` is not one of {}", other.chars().take(40).collect::<String>(), [$($text),+].join(", ")),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

/// A member's role in one space, lowest to highest privilege for public content. Decided by
/// the server; shared with the protocol.
pub use quartier_protocol::Role;

// `Role` is defined in `quartier-protocol`, which knows nothing of uniffi (the server shares it):
// a remote definition mirrors it here, checked against the real enum by the compiler. Other
// crates that pass it across name it with `uniffi::use_remote_type!(quartier_domain::Role)`.
#[cfg(feature = "uniffi")]
#[uniffi::remote(Enum)]
pub enum Role {
    Resident,
    Volunteer,
    Caseworker,
    Coordinator,
}

/// Why a change is refused; the protocol's codes, shared by the server's acknowledgements and
/// the store's local check ([`Refusal`]).
pub use quartier_protocol::RejectCode;

string_enum!(
    /// Who an item is meant for.
    Audience, "audience" {
        /// Everyone in the space.
        Everyone = "everyone",
        /// Volunteers, caseworkers and coordinators.
        Volunteers = "volunteers",
        /// Caseworkers only (professional secrecy: not even coordinators).
        Caseworkers = "caseworkers",
        /// Nobody but the author.
        AuthorOnly = "author_only",
    }
);

string_enum!(
    /// Lifecycle of an item.
    Status, "status" {
        /// Only the author sees it; never leaves the device.
        Draft = "draft",
        Published = "published",
        /// Hidden by a moderator: coordinators and the author still see it.
        Hidden = "hidden",
        /// Past its validity; shown only when asked for.
        Expired = "expired",
        /// Tombstoned: content remains in history until erased.
        Deleted = "deleted",
    }
);

impl Audience {
    /// Whether a member with `role` who is not the author may see items for this audience.
    pub fn admits(&self, role: Role) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Volunteers => role >= Role::Volunteer,
            Audience::Caseworkers => role == Role::Caseworker,
            Audience::AuthorOnly => false,
        }
    }

    /// The audiences a member with `role` sees in others' items.
    pub fn admitting(role: Role) -> impl Iterator<Item = Audience> {
        Audience::ALL.iter().copied().filter(move |a| a.admits(role))
    }
}

/// The person a query is asked for, with their role in the space(s) queried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Viewer {
    pub person: PersonId,
    pub role: Role,
}

impl Viewer {
    pub fn new(person: PersonId, role: Role) -> Self {
        Self { person, role }
    }

    /// The audiences this viewer sees in others' items.
    pub fn audiences(&self) -> Vec<Audience> {
        Audience::admitting(self.role).collect()
    }

    /// The statuses this viewer sees in others' items.
    pub fn statuses(&self) -> Vec<Status> {
        let mut statuses = vec![Status::Published, Status::Expired];
        if self.role == Role::Coordinator {
            statuses.push(Status::Hidden);
        }
        statuses
    }
}

/// What someone wants to do with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    EditOwn,
    EditOthers,
    Delete,
    Read,
}

/// The permission table: may a member with `role` do `action` on an item of `kind` for
/// `audience`? `is_author` says whether the item is theirs (for `Delete` and `Read`). The server
/// enforces this on every push and pull; apps may ask it to grey out what will be refused.
pub fn permits(
    role: Role,
    action: Action,
    kind: super::ItemKind,
    audience: Audience,
    is_author: bool,
) -> bool {
    use super::ItemKind as K;
    let may_write_kind = match kind {
        K::Post | K::Request | K::Comment => true,
        K::Place | K::Observation => role >= Role::Volunteer,
        K::Event => role >= Role::Volunteer,
        K::Offer => matches!(role, Role::Caseworker | Role::Coordinator),
    };
    // Author-only items never leave the device, so no server ever accepts one.
    let may_write_audience = audience != Audience::AuthorOnly && (audience.admits(role));
    match action {
        Action::Read => is_author || audience.admits(role),
        Action::Create | Action::EditOwn => may_write_kind && may_write_audience,
        Action::EditOthers => role == Role::Coordinator && audience.admits(role),
        Action::Delete => {
            (is_author && may_write_audience) || (role == Role::Coordinator && audience.admits(role))
        }
    }
}

/// A change the permission rule refuses: the code the server answers with (`forbidden`,
/// `not_your_change`, ...) and a message that says why (no personal data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: RejectCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The permission rule for one change of an item, from `old` (`None` when the change creates
/// it) to `new`, made by `person` with `role` in the item's space. The server applies it to
/// every pushed item change and the store before every local item write, so both refuse the
/// same changes with the same code.
pub fn judge_item(
    role: Role,
    person: PersonId,
    space: SpaceId,
    doc: ItemId,
    old: Option<&Item>,
    new: &Item,
) -> Result<(), Refusal> {
    if new.id != doc || new.space != space {
        return Err(Refusal::new(
            RejectCode::Forbidden,
            "an item must keep its own id and space",
        ));
    }
    let kind = new.kind();
    let audience = new.content.audience;
    let Some(old) = old else {
        if new.author != person {
            return Err(Refusal::new(
                RejectCode::NotYourChange,
                "an item is created by its author",
            ));
        }
        if !permits(role, Action::Create, kind, audience, true) {
            return Err(Refusal::new(
                RejectCode::Forbidden,
                format!("a {role} may not create a {kind} for {audience}"),
            ));
        }
        return check_offer_assurance(person, None, new);
    };
    check_offer_assurance(person, Some(old), new)?;
    let is_author = old.author == person;
    if new.author != old.author || new.kind() != old.kind() || new.created_at != old.created_at {
        return Err(Refusal::new(
            RejectCode::Forbidden,
            "an item's author, kind and creation time cannot change",
        ));
    }
    // A comment stays with its item: erasing the item erases it (moving it would let it escape).
    if new.content.details.parent() != old.content.details.parent() {
        return Err(Refusal::new(
            RejectCode::Forbidden,
            "a comment cannot move to another item",
        ));
    }
    // Recorded for someone when it is made, or never: its recorder may erase it everywhere when
    // the neighbour withdraws consent, which must not become a way to erase others' comments.
    if old.content.on_behalf_of.is_none() && new.content.on_behalf_of.is_some() {
        return Err(Refusal::new(
            RejectCode::Forbidden,
            "an item is recorded on someone's behalf when it is made",
        ));
    }
    let allowed = if new.content.status == Status::Deleted && old.content.status != Status::Deleted {
        permits(role, Action::Delete, kind, old.content.audience, is_author)
    } else if is_author {
        permits(role, Action::EditOwn, kind, audience, true)
    } else {
        permits(role, Action::EditOthers, kind, old.content.audience, false)
            && permits(role, Action::EditOthers, kind, audience, false)
    };
    if allowed {
        Ok(())
    } else {
        Err(Refusal::new(
            RejectCode::Forbidden,
            format!(
                "a {role} may not make this change to a {kind} for {}",
                old.content.audience
            ),
        ))
    }
}

/// The rule for a change of a space's details: coordinators only.
pub fn judge_space_edit(role: Role) -> Result<(), Refusal> {
    if role == Role::Coordinator {
        Ok(())
    } else {
        Err(Refusal::new(
            RejectCode::Forbidden,
            "only coordinators edit a space's details",
        ))
    }
}

/// An offer's check (`assured_by`, `assured_date`) is signed by whoever records it and is not
/// dated after the day of the change: nobody vouches in someone else's name or keeps an offer
/// off the review list with a date to come.
fn check_offer_assurance(person: PersonId, old: Option<&Item>, new: &Item) -> Result<(), Refusal> {
    let assurance = |item: &Item| match &item.content.details {
        super::ItemDetails::Offer(o) => (o.assured_date, o.assured_by),
        _ => (None, None),
    };
    let now = assurance(new);
    if old.map(assurance) == Some(now) || now == (None, None) {
        return Ok(());
    }
    if now.1.is_some_and(|by| by != person) {
        return Err(Refusal::new(
            RejectCode::Forbidden,
            "an offer is marked checked by the person who checked it",
        ));
    }
    if now
        .0
        .is_some_and(|day| day > (new.updated_at + chrono::Duration::days(1)).date_naive())
    {
        return Err(Refusal::new(
            RejectCode::Forbidden,
            "an offer cannot be checked in the future",
        ));
    }
    Ok(())
}
