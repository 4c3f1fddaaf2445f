//! Spaces, members and invites. The server is the only authority on who belongs where.

use quartier_protocol::{InviteInfo, Membership, Role};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{now_ms, secret_hash};
use crate::error::ServerError;

/// Registers a space with its creator as coordinator. Registering an existing space is an error
/// unless the caller created it (an idempotent retry, answered with their role now: a creator
/// since demoted is told so, one since removed is refused).
pub fn create_space(conn: &Connection, space: Uuid, person: Uuid) -> Result<Membership, ServerError> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT created_by FROM spaces WHERE space_id = ?1",
            [space.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    match existing {
        Some(creator) if creator == person.to_string() => {
            let role = role_of(conn, space, person)?
                .ok_or_else(|| ServerError::Forbidden("you are no longer a member of this space".into()))?;
            return Ok(Membership { space, person, role });
        }
        Some(_) => return Err(ServerError::Conflict("that space id is taken".into())),
        None => {
            let tx = conn.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO spaces (space_id, created_by, created_at) VALUES (?1, ?2, ?3)",
                params![space.to_string(), person.to_string(), now_ms()],
            )?;
            tx.execute(
                "INSERT INTO members (space_id, person_id, role) VALUES (?1, ?2, 'coordinator')",
                params![space.to_string(), person.to_string()],
            )?;
            tx.commit()?;
        }
    }
    Ok(Membership {
        space,
        person,
        role: Role::Coordinator,
    })
}

/// Whether `person` is the only coordinator of `space` (who then may not leave, be removed or
/// be demoted: nobody could invite or moderate any more).
pub fn is_last_coordinator(conn: &Connection, space: Uuid, person: Uuid) -> Result<bool, ServerError> {
    if role_of(conn, space, person)? != Some(Role::Coordinator) {
        return Ok(false);
    }
    let coordinators: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM members WHERE space_id = ?1 AND role = 'coordinator' AND revoked_at IS NULL",
        )?
        .query_row([space.to_string()], |r| r.get(0))?;
    Ok(coordinators <= 1)
}

/// A person's current role in a space, if they are a member.
pub fn role_of(conn: &Connection, space: Uuid, person: Uuid) -> Result<Option<Role>, ServerError> {
    let role: Option<String> = conn
        .prepare_cached(
            "SELECT role FROM members WHERE space_id = ?1 AND person_id = ?2 AND revoked_at IS NULL",
        )?
        .query_row([space.to_string(), person.to_string()], |r| r.get(0))
        .optional()?;
    Ok(role.and_then(|r| Role::parse(&r)))
}

/// Every current membership of a person.
pub fn memberships(conn: &Connection, person: Uuid) -> Result<Vec<Membership>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT space_id, role FROM members WHERE person_id = ?1 AND revoked_at IS NULL ORDER BY space_id",
    )?;
    let rows = stmt.query_map([person.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (space, role) = row?;
        if let (Ok(space), Some(role)) = (Uuid::parse_str(&space), Role::parse(&role)) {
            out.push(Membership { space, person, role });
        }
    }
    Ok(out)
}

/// Stores an invite; returns nothing (the caller holds the code).
pub fn create_invite(
    conn: &Connection,
    space: Uuid,
    role: Role,
    expires_at_ms: i64,
    max_uses: u32,
    code: &str,
    by: Uuid,
) -> Result<(), ServerError> {
    conn.execute(
        "INSERT INTO invites (code_hash, space_id, role, expires_at, max_uses, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![secret_hash(code), space.to_string(), role.as_str(), expires_at_ms, max_uses, by.to_string()],
    )?;
    Ok(())
}

/// The invites of `space` that can still be redeemed (not expired, not used up), oldest first.
pub fn open_invites(conn: &Connection, space: Uuid, now_ms: i64) -> Result<Vec<InviteInfo>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, role, expires_at, max_uses, uses, created_by FROM invites
         WHERE space_id = ?1 AND expires_at >= ?2 AND uses < max_uses ORDER BY rowid",
    )?;
    let rows = stmt.query_map(params![space.to_string(), now_ms], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut invites = Vec::new();
    for row in rows {
        let (id, role, expires_at_ms, max_uses, uses, created_by) = row?;
        let corrupt = |what: &str| ServerError::Internal(format!("stored invite {id}: {what}"));
        invites.push(InviteInfo {
            id: u64::try_from(id).map_err(|_| corrupt("id"))?,
            role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
            expires_at_ms,
            max_uses: u32::try_from(max_uses).map_err(|_| corrupt("max_uses"))?,
            uses: u32::try_from(uses).map_err(|_| corrupt("uses"))?,
            created_by: Uuid::parse_str(&created_by).map_err(|_| corrupt("creator"))?,
        });
    }
    Ok(invites)
}

/// Deletes invite `id` of `space`, so its code redeems nothing any more; `false` if the space
/// has no such invite.
pub fn revoke_invite(conn: &Connection, space: Uuid, id: u64) -> Result<bool, ServerError> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(false);
    };
    Ok(conn.execute(
        "DELETE FROM invites WHERE rowid = ?1 AND space_id = ?2",
        params![id, space.to_string()],
    )? == 1)
}

/// Redeems an invite for a person: checks expiry and uses, then adds (or re-adds) the member.
/// A person removed from the space (or who left it) comes back only through an invite made
/// after that: every invite made before is spent for them.
pub fn redeem_invite(conn: &Connection, code: &str, person: Uuid) -> Result<Membership, ServerError> {
    let tx = conn.unchecked_transaction()?;
    let invite: Option<(i64, String, String, i64, i64, i64)> = tx
        .query_row(
            "SELECT rowid, space_id, role, expires_at, max_uses, uses FROM invites WHERE code_hash = ?1",
            [secret_hash(code)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((invite, space, role, expires_at, max_uses, uses)) = invite else {
        return Err(ServerError::NotFound("no such invite".into()));
    };
    let spent_up_to: Option<Option<i64>> = tx
        .query_row(
            "SELECT invites_before FROM members WHERE space_id = ?1 AND person_id = ?2 AND revoked_at IS NOT NULL",
            params![space, person.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(spent_up_to) = spent_up_to {
        // Removed before schema 4 recorded it: every invite counts as made before.
        if invite <= spent_up_to.unwrap_or(i64::MAX) {
            return Err(ServerError::Forbidden(
                "you were removed from this space after this invite was made; only a new invite lets you back"
                    .into(),
            ));
        }
    }
    if expires_at < now_ms() {
        return Err(ServerError::Gone("the invite has expired".into()));
    }
    if uses >= max_uses {
        return Err(ServerError::Gone("the invite has been used up".into()));
    }
    let role = Role::parse(&role).ok_or_else(|| ServerError::Internal(format!("invite role {role}")))?;
    let space_id = Uuid::parse_str(&space).map_err(|e| ServerError::Internal(e.to_string()))?;
    tx.execute(
        "UPDATE invites SET uses = uses + 1 WHERE code_hash = ?1",
        [secret_hash(code)],
    )?;
    // An existing member keeps the higher of the two roles; a removed member is re-admitted.
    let current = role_of(&tx, space_id, person)?;
    let role = current.map_or(role, |c| c.max(role));
    tx.execute(
        "INSERT INTO members (space_id, person_id, role) VALUES (?1, ?2, ?3)
         ON CONFLICT (space_id, person_id) DO UPDATE SET role = excluded.role, revoked_at = NULL",
        params![space, person.to_string(), role.as_str()],
    )?;
    tx.commit()?;
    Ok(Membership {
        space: space_id,
        person,
        role,
    })
}

/// Sets a member's role.
pub fn set_role(conn: &Connection, space: Uuid, person: Uuid, role: Role) -> Result<Membership, ServerError> {
    let changed = conn.execute(
        "UPDATE members SET role = ?3 WHERE space_id = ?1 AND person_id = ?2 AND revoked_at IS NULL",
        params![space.to_string(), person.to_string(), role.as_str()],
    )?;
    if changed == 0 {
        return Err(ServerError::NotFound("no such member".into()));
    }
    Ok(Membership { space, person, role })
}

/// Removes a member at once. Every invite made until now is spent for them (see
/// [`redeem_invite`]).
pub fn remove_member(conn: &Connection, space: Uuid, person: Uuid) -> Result<bool, ServerError> {
    Ok(conn.execute(
        "UPDATE members SET revoked_at = ?3, invites_before = (SELECT coalesce(max(rowid), 0) FROM invites)
         WHERE space_id = ?1 AND person_id = ?2 AND revoked_at IS NULL",
        params![space.to_string(), person.to_string(), now_ms()],
    )? == 1)
}
