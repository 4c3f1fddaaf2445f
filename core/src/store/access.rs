//! The local permission check: before a write, the store applies the rule the server applies
//! on push ([`judge_item`], [`judge_space_edit`]) with the role from the memberships it holds, so
//! that a change the server would refuse is refused at once with the same code
//! ([`Error::NotPermitted`]) instead of sitting in the outbox.
//!
//! A store that holds no membership for the space (never synced, or a space that only exists on
//! this device) is permissive: it cannot know the role, and the server still decides on push.
//! Items for their author only never leave the device, so their author may always write them.

use rusqlite::{Connection, OptionalExtension};

use super::Store;
use crate::error::{Error, Result};
use crate::model::{
    judge_item, judge_space_edit, permits, Action, Audience, Item, ItemId, ItemKind, PersonId, Refusal,
    RejectCode, Role, SpaceId,
};

/// What a person may do with one item, as the store's memberships say (see `docs/permissions.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AllowedActions {
    /// `update_item` (for a coordinator on someone else's item: moderation).
    pub edit: bool,
    /// `delete_item`.
    pub delete: bool,
}

/// The person and role this store's membership names for `space`, if it holds one.
fn membership_of(conn: &Connection, space: SpaceId) -> Result<Option<(PersonId, Role)>> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT person_id, role FROM memberships WHERE space_id = ?1")?
        .query_row([space.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((person, role)) = row else {
        return Ok(None);
    };
    let role = Role::parse(&role).ok_or_else(|| Error::Corrupt(format!("membership role {role}")))?;
    Ok(Some((person.parse()?, role)))
}

/// The membership to judge `by`'s write with, or `None` (permissive). A device writes as its
/// account's person only: the server refuses a change naming anyone else.
fn role_for(conn: &Connection, space: SpaceId, by: PersonId) -> Result<Option<Role>, Refusal> {
    match membership_of(conn, space) {
        Ok(None) => Ok(None),
        Ok(Some((person, _))) if person != by => Err(Refusal::new(
            RejectCode::NotYourChange,
            "the change names another person than this device's account",
        )),
        Ok(Some((_, role))) => Ok(Some(role)),
        Err(e) => Err(Refusal::new(RejectCode::Other, e.to_string())),
    }
}

/// Whether `new` stays on this device as `by`'s own (author-only), which its author may always write.
fn stays_with_author(by: PersonId, old: Option<&Item>, new: &Item) -> bool {
    new.content.audience == Audience::AuthorOnly && new.author == by && old.is_none_or(|o| o.author == by)
}

/// Checks a local item write from `old` (`None`: creation) to `new` by `by`.
pub(crate) fn check_item_write(
    store: &Store,
    conn: &Connection,
    by: PersonId,
    old: Option<&Item>,
    new: &Item,
) -> Result<()> {
    if !store.local_permission_check() || stays_with_author(by, old, new) {
        return Ok(());
    }
    let Some(role) = role_for(conn, new.space, by).map_err(refused)? else {
        return Ok(());
    };
    if crate::moderation::blocked_in(conn, new.space)? {
        return Err(refused(Refusal::new(
            RejectCode::Blocked,
            "the space's coordinators have blocked you: no change of yours is taken",
        )));
    }
    judge_item(role, by, new.space, new.id, old, new).map_err(refused)
}

/// Checks a local edit of a space's details by `by`.
pub(crate) fn check_space_edit(store: &Store, conn: &Connection, by: PersonId, space: SpaceId) -> Result<()> {
    if !store.local_permission_check() {
        return Ok(());
    }
    match role_for(conn, space, by).map_err(refused)? {
        None => Ok(()),
        Some(role) => judge_space_edit(role).map_err(refused),
    }
}

fn refused(refusal: Refusal) -> Error {
    Error::NotPermitted {
        code: refusal.code,
        message: refusal.message,
    }
}

impl Store {
    /// Turns the local permission check on (the default) or off for this store (all its
    /// clones). Off is for tools and tests that must reach the server with changes it refuses
    /// (`server/tests/permissions.rs`); the server decides either way.
    pub fn set_local_permission_check(&self, enabled: bool) {
        self.inner
            .check_permissions
            .store(enabled, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn local_permission_check(&self) -> bool {
        self.inner
            .check_permissions
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What `by` may do with an item, from the memberships this store holds: apps grey out
    /// what the store (and the server) would refuse. Everything is allowed in a space the store
    /// holds no membership for. `Error::NotFound` if the item is not here.
    pub fn allowed_actions(&self, item: ItemId, by: PersonId) -> Result<AllowedActions> {
        self.read(|conn| {
            let item = crate::query::item_by_id(conn, &item.to_string())?.ok_or_else(|| Error::NotFound {
                what: "item",
                id: item.to_string(),
            })?;
            let is_author = item.author == by;
            if is_author && item.content.audience == Audience::AuthorOnly {
                return Ok(AllowedActions {
                    edit: true,
                    delete: true,
                });
            }
            let role = match role_for(conn, item.space, by) {
                Ok(None) => {
                    return Ok(AllowedActions {
                        edit: true,
                        delete: true,
                    })
                }
                Ok(Some(role)) => role,
                Err(_) => {
                    return Ok(AllowedActions {
                        edit: false,
                        delete: false,
                    })
                }
            };
            let (kind, audience) = (item.kind(), item.content.audience);
            let edit = if is_author {
                permits(role, Action::EditOwn, kind, audience, true)
            } else {
                permits(role, Action::EditOthers, kind, audience, false)
            };
            Ok(AllowedActions {
                edit,
                delete: permits(role, Action::Delete, kind, audience, is_author),
            })
        })
    }

    /// Whether `by` may create an item of `kind` for `audience` in `space`, from the
    /// memberships this store holds (always in a space it holds none for).
    pub fn may_create(
        &self,
        space: SpaceId,
        kind: ItemKind,
        audience: Audience,
        by: PersonId,
    ) -> Result<bool> {
        if audience == Audience::AuthorOnly {
            return Ok(true);
        }
        self.read(|conn| {
            Ok(match role_for(conn, space, by) {
                Ok(None) => true,
                Ok(Some(role)) => permits(role, Action::Create, kind, audience, true),
                Err(_) => false,
            })
        })
    }
}
