//! Spaces, members and invites. The server is the only authority on who belongs where.

use quartier_protocol::certificates::{RedeemOfflineInvite, MAX_OFFLINE_INVITE_MS};
use quartier_protocol::{InviteInfo, MemberInfo, Membership, Role, RosterChanges};
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
        None if super::counselling::id_taken(conn, space)? => {
            return Err(ServerError::Conflict("that space id is taken".into()))
        }
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
            roster_changed(&tx, space, person)?;
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

/// Whether the server hosts `space`.
pub fn space_exists(conn: &Connection, space: Uuid) -> Result<bool, ServerError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM spaces WHERE space_id = ?1")?
        .exists([space.to_string()])?)
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
         ON CONFLICT (space_id, person_id) DO UPDATE SET role = excluded.role, revoked_at = NULL,
             role_since = CASE WHEN members.role <> excluded.role OR members.revoked_at IS NOT NULL
                               THEN ?4 ELSE members.role_since END",
        params![space, person.to_string(), role.as_str(), now_ms()],
    )?;
    roster_changed(&tx, space_id, person)?;
    tx.commit()?;
    Ok(Membership {
        space: space_id,
        person,
        role,
    })
}

/// Redeems an offline invite (joining offline): the server's key signed its coordinator's
/// certificate, that device (registered, not revoked, with the key certified) signed it, its
/// person is still a coordinator of the space, it has not expired, and no one else used it. A
/// person removed from the space after the invite was made is not let back by it. The same
/// person redeeming it again gets the same answer.
pub fn redeem_offline_invite(
    conn: &Connection,
    key: &ed25519_dalek::SigningKey,
    redeem: &RedeemOfflineInvite,
    person: Uuid,
    approved_only: bool,
) -> Result<Membership, ServerError> {
    let (invite, certificate) = redeem
        .invite
        .verify(&key.verifying_key())
        .map_err(|e| ServerError::Forbidden(format!("not a valid offline invite: {e}")))?;
    // The secret only the QR code carried: the invite alone (seen in a session) redeems nothing.
    if blake3::hash(&redeem.secret).as_bytes().as_slice() != invite.secret_hash.as_slice() {
        return Err(ServerError::Forbidden(
            "not a valid offline invite: wrong secret".into(),
        ));
    }
    if !matches!(invite.role, Role::Resident | Role::Volunteer) {
        return Err(ServerError::Forbidden(
            "an offline invite makes residents or volunteers".into(),
        ));
    }
    // The same bounds as the device's: made in the past (a few minutes of clock skew allowed),
    // good for a week at most.
    let now = now_ms();
    if invite.issued_at_ms > now + 5 * 60 * 1000
        || invite.expires_at_ms.saturating_sub(invite.issued_at_ms) > MAX_OFFLINE_INVITE_MS
    {
        return Err(ServerError::Forbidden(
            "an offline invite is good for a week at most from its making".into(),
        ));
    }
    if invite.expires_at_ms < now {
        return Err(ServerError::Gone("the invite has expired".into()));
    }
    let issuer = super::accounts::device(conn, invite.issued_by)?
        .filter(|d| !d.revoked && d.public_key == certificate.device_key)
        .ok_or_else(|| ServerError::Forbidden("the inviting device is unknown or revoked".into()))?;
    // Where the operator lets only approved coordinators invite, offline invites too.
    if approved_only && !super::accounts::is_approved(conn, issuer.person)? {
        return Err(ServerError::Forbidden(
            "on this server only coordinators its operator approved may invite".into(),
        ));
    }
    let tx = conn.unchecked_transaction()?;
    if role_of(&tx, invite.space, issuer.person)? != Some(Role::Coordinator) {
        return Err(ServerError::Forbidden(
            "the invite's coordinator no longer is one".into(),
        ));
    }
    let used_by: Option<String> = tx
        .query_row(
            "SELECT person_id FROM offline_invite_uses WHERE invite_id = ?1",
            [invite.id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    match used_by {
        Some(other) if other != person.to_string() => {
            return Err(ServerError::Gone("the invite has been used".into()));
        }
        Some(_) => {
            let role = role_of(&tx, invite.space, person)?
                .ok_or_else(|| ServerError::Forbidden("you are no longer a member of this space".into()))?;
            return Ok(Membership {
                space: invite.space,
                person,
                role,
            });
        }
        None => {}
    }
    let removed_at: Option<Option<i64>> = tx
        .query_row(
            "SELECT revoked_at FROM members WHERE space_id = ?1 AND person_id = ?2 AND revoked_at IS NOT NULL",
            params![invite.space.to_string(), person.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    if removed_at.flatten().is_some_and(|at| at >= invite.issued_at_ms) {
        return Err(ServerError::Forbidden(
            "you were removed from this space after this invite was made; only a new invite lets you back"
                .into(),
        ));
    }
    tx.execute(
        "INSERT INTO offline_invite_uses (invite_id, space_id, person_id, used_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            invite.id.to_string(),
            invite.space.to_string(),
            person.to_string(),
            now_ms()
        ],
    )?;
    let role = role_of(&tx, invite.space, person)?.map_or(invite.role, |c| c.max(invite.role));
    tx.execute(
        "INSERT INTO members (space_id, person_id, role) VALUES (?1, ?2, ?3)
         ON CONFLICT (space_id, person_id) DO UPDATE SET role = excluded.role, revoked_at = NULL,
             role_since = CASE WHEN members.role <> excluded.role OR members.revoked_at IS NOT NULL
                               THEN ?4 ELSE members.role_since END",
        params![
            invite.space.to_string(),
            person.to_string(),
            role.as_str(),
            now_ms()
        ],
    )?;
    roster_changed(&tx, invite.space, person)?;
    tx.commit()?;
    Ok(Membership {
        space: invite.space,
        person,
        role,
    })
}

/// Sets a member's role.
pub fn set_role(conn: &Connection, space: Uuid, person: Uuid, role: Role) -> Result<Membership, ServerError> {
    let changed = conn.execute(
        "UPDATE members SET roster_seq = (SELECT max(roster_seq) + 1 FROM members),
             role_since = CASE WHEN role <> ?3 THEN ?4 ELSE role_since END, role = ?3
         WHERE space_id = ?1 AND person_id = ?2 AND revoked_at IS NULL",
        params![space.to_string(), person.to_string(), role.as_str(), now_ms()],
    )?;
    if changed == 0 {
        return Err(ServerError::NotFound("no such member".into()));
    }
    Ok(Membership { space, person, role })
}

/// Removes a member at once. Every invite made until now is spent for them (see
/// [`redeem_invite`]).
pub fn remove_member(conn: &Connection, space: Uuid, person: Uuid) -> Result<bool, ServerError> {
    // Their calendar feed ends with the membership, and does not come back if they rejoin.
    super::calendar_feeds::revoke(conn, person, space)?;
    Ok(conn.execute(
        "UPDATE members SET revoked_at = ?3, invites_before = (SELECT coalesce(max(rowid), 0) FROM invites),
             roster_seq = (SELECT max(roster_seq) + 1 FROM members)
         WHERE space_id = ?1 AND person_id = ?2 AND revoked_at IS NULL",
        params![space.to_string(), person.to_string(), now_ms()],
    )? == 1)
}

/// Notes a change of `person`'s membership of `space` (joined, role, name, left) as the latest
/// of the member list, for devices to fetch (`roster_changes`).
fn roster_changed(conn: &Connection, space: Uuid, person: Uuid) -> Result<(), ServerError> {
    conn.prepare_cached(
        "UPDATE members SET roster_seq = (SELECT coalesce(max(roster_seq), 0) + 1 FROM members)
         WHERE space_id = ?1 AND person_id = ?2",
    )?
    .execute(params![space.to_string(), person.to_string()])?;
    Ok(())
}

/// Notes a change of everything other members see of `person` (their display name) in every
/// space they belong to.
pub(crate) fn person_changed(conn: &Connection, person: Uuid) -> Result<(), ServerError> {
    conn.prepare_cached(
        "UPDATE members SET roster_seq = (SELECT coalesce(max(roster_seq), 0) + 1 FROM members)
         WHERE person_id = ?1 AND revoked_at IS NULL",
    )?
    .execute([person.to_string()])?;
    Ok(())
}

fn member_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Option<String>, String, bool, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn member_info(person: &str, display_name: Option<String>, role: &str) -> Result<MemberInfo, ServerError> {
    let corrupt = |what: &str| ServerError::Internal(format!("stored member: {what}"));
    Ok(MemberInfo {
        person: Uuid::parse_str(person).map_err(|_| corrupt("person"))?,
        display_name,
        role: Role::parse(role).ok_or_else(|| corrupt("role"))?,
    })
}

/// The current members of `space`, coordinators first, then caseworkers, volunteers and
/// residents; by display name (ignoring case) within a role, nameless members last.
pub fn members(conn: &Connection, space: Uuid) -> Result<Vec<MemberInfo>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.person_id, p.display_name, m.role, m.revoked_at IS NOT NULL, m.roster_seq
         FROM members m JOIN persons p ON p.person_id = m.person_id
         WHERE m.space_id = ?1 AND m.revoked_at IS NULL",
    )?;
    let rows = stmt.query_map([space.to_string()], member_from_row)?;
    let mut members = Vec::new();
    for row in rows {
        let (person, name, role, _, _) = row?;
        members.push(member_info(&person, name, &role)?);
    }
    sort_by_role(&mut members);
    Ok(members)
}

/// The order member lists are shown in: role (highest first), then name ignoring case
/// (nameless last), then person id, so that the order is stable.
pub fn sort_by_role(members: &mut [MemberInfo]) {
    members.sort_by(|a, b| {
        b.role
            .cmp(&a.role)
            .then_with(|| a.display_name.is_none().cmp(&b.display_name.is_none()))
            .then_with(|| {
                let fold = |m: &MemberInfo| m.display_name.as_deref().map(str::to_lowercase);
                fold(a).cmp(&fold(b))
            })
            .then_with(|| a.person.cmp(&b.person))
    });
}

/// The member changes of `space` after `after` (a device's `members_after`), in the order they
/// were made: at most `limit` of them, and no more than fill `budget` bytes (by
/// [`RosterChanges::weight`]; the first always goes, so a page always moves on); `None` when
/// nothing changed. The second value says whether more changes wait.
///
/// A device new to the list (`after` 0) gets the current members, in pages like any other;
/// once it has them all, its cursor skips past every departure before it came. A departure it
/// hears of while paging (someone who left after its first page) is one it may not have known:
/// dropping a member a device does not hold changes nothing.
pub fn roster_changes(
    conn: &Connection,
    space: Uuid,
    after: i64,
    limit: usize,
    budget: usize,
) -> Result<(Option<RosterChanges>, bool), ServerError> {
    let asked = after;
    let newest: i64 = conn
        .prepare_cached("SELECT coalesce(max(roster_seq), 0) FROM members WHERE space_id = ?1")?
        .query_row([space.to_string()], |r| r.get(0))?;
    // A device further than the server's newest change (a database restored from a backup)
    // would otherwise miss every change until the sequence caught up: it gets the whole list.
    let reset = after > newest;
    let after = if reset { 0 } else { after.max(0) };
    let mut stmt = conn.prepare_cached(
        "SELECT m.person_id, p.display_name, m.role, m.revoked_at IS NOT NULL, m.roster_seq
         FROM members m JOIN persons p ON p.person_id = m.person_id
         WHERE m.space_id = ?1 AND m.roster_seq > ?2 AND (?2 > 0 OR m.revoked_at IS NULL)
         ORDER BY m.roster_seq LIMIT ?3",
    )?;
    // One more than a page holds, to know whether more wait.
    let rows = stmt.query_map(
        params![
            space.to_string(),
            after,
            i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
        ],
        member_from_row,
    )?;
    let mut changes = RosterChanges {
        next: after,
        reset,
        ..Default::default()
    };
    let mut more = false;
    let mut used = 0;
    for (i, row) in rows.enumerate() {
        let (person, name, role, left, seq) = row?;
        if i == limit {
            more = true;
            break;
        }
        let member = (!left).then(|| member_info(&person, name, &role)).transpose()?;
        let weight = member
            .as_ref()
            .map_or(RosterChanges::LEFT_WEIGHT, MemberInfo::weight);
        if i > 0 && used + weight > budget {
            // Over the budget: this one waits for the next page.
            more = true;
            break;
        }
        used += weight;
        match member {
            Some(member) => changes.members.push(member),
            None => {
                let corrupt = || ServerError::Internal("stored member: person".into());
                changes
                    .left
                    .push(Uuid::parse_str(&person).map_err(|_| corrupt())?);
            }
        }
        changes.next = seq;
    }
    if after == 0 && !more {
        // The whole list: past every change so far, departures before this device came included.
        changes.next = newest;
    }
    Ok(((changes.next != after || after != asked).then_some(changes), more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{accounts, Db};

    fn person(conn: &Connection, name: &str) -> Uuid {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("random");
        accounts::register(conn, &key, Some(name), &format!("token-{name}"), None)
            .expect("register")
            .person
    }

    fn database() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(dir.path()).expect("db");
        (dir, db)
    }

    /// A space made by its coordinator Ada.
    fn space_of_ada(conn: &Connection) -> Uuid {
        let space = Uuid::now_v7();
        create_space(conn, space, person(conn, "Ada")).expect("space");
        space
    }

    fn join(conn: &Connection, space: Uuid, who: Uuid, role: Role) {
        let code = format!("code-{who}");
        create_invite(conn, space, role, now_ms() + 60_000, 1, &code, who).expect("invite");
        redeem_invite(conn, &code, who).expect("redeem");
    }

    fn names(changes: &RosterChanges) -> Vec<Option<&str>> {
        changes
            .members
            .iter()
            .map(|m| m.display_name.as_deref())
            .collect()
    }

    /// A device's member list follows the space: the current members first, then only what
    /// changed (a role, a name, someone leaving), each change once, in bounded pages.
    #[test]
    fn member_changes_come_in_order_in_bounded_pages_and_once() {
        let (_dir, db) = database();
        let conn = db.lock();
        let space = space_of_ada(&conn);
        let (ben, cem, dora) = (person(&conn, "Ben"), person(&conn, "Cem"), person(&conn, "Dora"));
        for (who, role) in [
            (ben, Role::Resident),
            (cem, Role::Volunteer),
            (dora, Role::Resident),
        ] {
            join(&conn, space, who, role);
        }
        // Dora leaves before a new device asks: it never hears of her.
        assert!(remove_member(&conn, space, dora).expect("remove"));

        // A device new to the list gets it in pages like any other; once it has it all, its
        // cursor is past Dora's departure, which it never hears of.
        let (first_page, more) = roster_changes(&conn, space, 0, 2, usize::MAX).expect("page");
        let first_page = first_page.expect("changes");
        assert!(more);
        assert_eq!(names(&first_page), vec![Some("Ada"), Some("Ben")]);
        let (second, more) = roster_changes(&conn, space, first_page.next, 2, usize::MAX).expect("page");
        let second = second.expect("changes");
        assert!(!more);
        assert_eq!(names(&second), vec![Some("Cem")]);
        // A departure after the first page may be one the device never held: dropping it
        // changes nothing there.
        assert_eq!(second.left, vec![dora]);
        let (whole, more) = roster_changes(&conn, space, 0, 10, usize::MAX).expect("page");
        let whole = whole.expect("changes");
        assert!(!more);
        assert_eq!(names(&whole), vec![Some("Ada"), Some("Ben"), Some("Cem")]);
        assert!(whole.left.is_empty(), "left before this device came: not listed");
        assert_eq!(whole.next, second.next);
        let second = whole;
        assert_eq!(
            roster_changes(&conn, space, second.next, 2, usize::MAX).expect("page"),
            (None, false)
        );
        // Later changes come in pages of the size asked for.
        let (first, more) = roster_changes(&conn, space, 1, 1, usize::MAX).expect("page");
        assert!(more);
        assert_eq!(names(&first.expect("changes")), vec![Some("Ben")]);

        // Ben renames himself, Cem is made coordinator, Ben leaves... in that order.
        accounts::set_display_name(&conn, ben, Some("Benno")).expect("rename");
        let (renamed, _) = roster_changes(&conn, space, second.next, 10, usize::MAX).expect("page");
        let renamed = renamed.expect("changes");
        assert_eq!(names(&renamed), vec![Some("Benno")]);
        set_role(&conn, space, cem, Role::Coordinator).expect("role");
        assert!(remove_member(&conn, space, ben).expect("remove"));
        let (later, _) = roster_changes(&conn, space, renamed.next, 10, usize::MAX).expect("page");
        let later = later.expect("changes");
        assert_eq!(
            later.members,
            vec![MemberInfo {
                person: cem,
                display_name: Some("Cem".into()),
                role: Role::Coordinator
            }]
        );
        assert_eq!(later.left, vec![ben]);

        // The list as the endpoint answers it: by role, then name.
        let listed: Vec<_> = members(&conn, space)
            .expect("members")
            .into_iter()
            .map(|m| (m.display_name, m.role))
            .collect();
        assert_eq!(
            listed,
            vec![
                (Some("Ada".into()), Role::Coordinator),
                (Some("Cem".into()), Role::Coordinator)
            ]
        );
        // A name change of someone in no space changes no list.
        let loner = person(&conn, "Solo");
        accounts::set_display_name(&conn, loner, None).expect("rename");
        assert_eq!(
            roster_changes(&conn, space, later.next, 10, usize::MAX).expect("page"),
            (None, false)
        );
    }

    #[test]
    fn a_page_of_members_stays_within_the_byte_budget() {
        let (_dir, db) = database();
        let conn = db.lock();
        let space = space_of_ada(&conn);
        for i in 0..30 {
            join(&conn, space, person(&conn, &format!("{i:0>60}")), Role::Resident);
        }
        // About three long names fit; the first always goes, even over the budget.
        let budget = 3 * (60 + 48);
        let (mut after, mut seen, mut pages) = (0, Vec::new(), 0);
        loop {
            let (page, more) = roster_changes(&conn, space, after, 200, budget).expect("page");
            let page = page.expect("changes while more wait");
            assert!(page.weight() <= budget + 16, "page of {} bytes", page.weight());
            assert!(!page.members.is_empty(), "every page moves on");
            seen.extend(page.members.iter().map(|m| m.person));
            after = page.next;
            pages += 1;
            if !more {
                break;
            }
        }
        assert_eq!(seen.len(), 31, "Ada and the 30, each once");
        assert_eq!(seen.iter().collect::<std::collections::HashSet<_>>().len(), 31);
        assert!(pages >= 10, "{pages} pages");
        let (one, more) = roster_changes(&conn, space, 0, 200, 0).expect("page");
        assert_eq!(one.expect("changes").members.len(), 1);
        assert!(more);
    }

    #[test]
    fn a_device_ahead_of_the_server_gets_the_whole_list_again() {
        let (_dir, db) = database();
        let conn = db.lock();
        let space = space_of_ada(&conn);
        join(&conn, space, person(&conn, "Ben"), Role::Resident);
        let (whole, _) = roster_changes(&conn, space, 0, 10, usize::MAX).expect("page");
        let whole = whole.expect("changes");
        // A cursor past the newest change (the server's database restored from an older
        // backup): the whole list, and a cursor the server has, instead of silence.
        let (again, more) = roster_changes(&conn, space, whole.next + 1_000, 10, usize::MAX).expect("page");
        let again = again.expect("the whole list again");
        assert!(again.reset, "the device is told to drop what it holds");
        assert!(!whole.reset);
        assert!(!more);
        assert_eq!(names(&again), names(&whole));
        assert_eq!(again.next, whole.next);
    }
}
