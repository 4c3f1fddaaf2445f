//! Who may see what: roles in a space, the audience an item is meant for, the lifecycle status
//! of an item, and the viewer a query is asked for. Roles are decided by the server; the core
//! only reads them to filter what it shows.

use serde::{Deserialize, Serialize};

use super::ids::PersonId;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
}

/// The person a query is asked for, with their role in the space(s) queried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        Audience::ALL
            .iter()
            .copied()
            .filter(|a| a.admits(self.role))
            .collect()
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
