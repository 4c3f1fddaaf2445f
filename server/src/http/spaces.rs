//! Spaces, invites and membership: decided by the server only.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use quartier_protocol::{
    CreateInvite, CreateSpace, InviteCreated, InviteList, MemberList, Membership, RedeemInvite, Role, SetRole,
};
use uuid::Uuid;

use super::auth::Device;
use super::{blocking, Ids, Wire};
use crate::config::Allowed;
use crate::error::ServerError;
use crate::state::AppState;
use crate::storage::{accounts, now_ms, random_token, spaces};

/// Longest an invite may stay valid.
const MAX_INVITE_DAYS: i64 = 90;
const MAX_INVITE_USES: u32 = 10_000;

pub async fn create(
    State(state): State<Arc<AppState>>,
    device: Device,
    Wire(req): Wire<CreateSpace>,
) -> Result<Wire<Membership>, ServerError> {
    let device = device.active()?;
    let membership = blocking(move || {
        let conn = state.db.lock();
        if state.config.space_creation == Allowed::Approved && !accounts::is_approved(&conn, device.person)? {
            return Err(ServerError::Forbidden(
                "on this server only persons its operator approved may register spaces; ask the operator to approve you (your person id is in the app)".into(),
            ));
        }
        spaces::create_space(&conn, req.space, device.person)
    })
    .await?;
    Ok(Wire(membership))
}

fn last_coordinator() -> ServerError {
    ServerError::Conflict(
        "a space keeps at least one coordinator: make another member coordinator first".into(),
    )
}

/// Who may give `role` in `space`: caseworkers are appointed by an organisation admin (in any
/// space of the server), never by a space's coordinators, who may not read what caseworkers
/// read; every other role by the space's coordinators.
fn require_appointer(
    conn: &rusqlite::Connection,
    space: Uuid,
    person: Uuid,
    role: Role,
) -> Result<(), ServerError> {
    if role != Role::Caseworker {
        return require_coordinator(conn, space, person);
    }
    if spaces::space_exists(conn, space)? && accounts::is_org_admin(conn, person)? {
        return Ok(());
    }
    Err(ServerError::Forbidden(
        "caseworkers are appointed by the welfare organisation: only an organisation admin may invite or make someone a caseworker".into(),
    ))
}

fn require_coordinator(conn: &rusqlite::Connection, space: Uuid, person: Uuid) -> Result<(), ServerError> {
    match spaces::role_of(conn, space, person)? {
        Some(Role::Coordinator) => Ok(()),
        Some(_) => Err(ServerError::Forbidden("only coordinators may do this".into())),
        None => Err(ServerError::Forbidden(
            "you are not a member of this space".into(),
        )),
    }
}

pub async fn invite(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
    Wire(req): Wire<CreateInvite>,
) -> Result<Wire<InviteCreated>, ServerError> {
    let device = device.active()?;
    let now = now_ms();
    if req.expires_at_ms <= now || req.expires_at_ms > now + MAX_INVITE_DAYS * 86_400_000 {
        return Err(ServerError::BadRequest(format!(
            "an invite must expire in the future, within {MAX_INVITE_DAYS} days"
        )));
    }
    if req.max_uses == 0 || req.max_uses > MAX_INVITE_USES {
        return Err(ServerError::BadRequest(format!(
            "max_uses must be 1 to {MAX_INVITE_USES}"
        )));
    }
    // 16 random bytes: 32 hex characters, fits a QR code with room for a server address.
    let code = random_token(16)?;
    let stored = code.clone();
    blocking(move || {
        let conn = state.db.lock();
        require_appointer(&conn, space, device.person, req.role)?;
        if req.role != Role::Caseworker
            && state.config.invite_creation == Allowed::Approved
            && !accounts::is_approved(&conn, device.person)?
        {
            return Err(ServerError::Forbidden(
                "on this server only coordinators its operator approved may create invites".into(),
            ));
        }
        spaces::create_invite(
            &conn,
            space,
            req.role,
            req.expires_at_ms,
            req.max_uses,
            &stored,
            device.person,
        )
    })
    .await?;
    Ok(Wire(InviteCreated { code }))
}

pub async fn redeem(
    State(state): State<Arc<AppState>>,
    device: Device,
    Wire(req): Wire<RedeemInvite>,
) -> Result<Wire<Membership>, ServerError> {
    let device = device.active()?;
    if req.code.len() > 128 {
        return Err(ServerError::BadRequest("not an invite code".into()));
    }
    let membership =
        blocking(move || spaces::redeem_invite(&state.db.lock(), &req.code, device.person)).await?;
    Ok(Wire(membership))
}

/// `POST /v1/invites/redeem-offline`: joins the space of an offline invite (joining offline).
pub async fn redeem_offline(
    State(state): State<Arc<AppState>>,
    device: Device,
    Wire(req): Wire<quartier_protocol::certificates::RedeemOfflineInvite>,
) -> Result<Wire<Membership>, ServerError> {
    let device = device.active()?;
    let membership = blocking(move || {
        let approved_only = state.config.invite_creation == Allowed::Approved;
        spaces::redeem_offline_invite(
            &state.db.lock(),
            state.db.signing_key(),
            &req,
            device.person,
            approved_only,
        )
    })
    .await?;
    Ok(Wire(membership))
}

pub async fn set_role(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((space, person)): Ids<(Uuid, Uuid)>,
    Wire(req): Wire<SetRole>,
) -> Result<Wire<Membership>, ServerError> {
    let device = device.active()?;
    let membership = blocking(move || {
        let conn = state.db.lock();
        require_appointer(&conn, space, device.person, req.role)?;
        if req.role == Role::Caseworker
            && spaces::role_of(&conn, space, person)? == Some(Role::Coordinator)
            && spaces::role_of(&conn, space, device.person)? != Some(Role::Coordinator)
        {
            // Coordinators answer to their space: an organisation admin from outside it
            // appoints among the other members.
            return Err(ServerError::Forbidden(
                "a coordinator's role is changed by the space's coordinators; make them a volunteer first"
                    .into(),
            ));
        }
        if req.role != Role::Coordinator && spaces::is_last_coordinator(&conn, space, person)? {
            return Err(last_coordinator());
        }
        spaces::set_role(&conn, space, person, req.role)
    })
    .await?;
    Ok(Wire(membership))
}

/// `GET /v1/spaces/{space}/members`: the space's members by role, for its members (every
/// role: residents see who the coordinators and caseworkers are, and each other; names and
/// roles only). Read through a reader, beside pushes.
pub async fn members(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
) -> Result<Wire<MemberList>, ServerError> {
    let device = device.active()?;
    let members = blocking(move || {
        let conn = state.db.read()?;
        if spaces::role_of(&conn, space, device.person)?.is_none() {
            return Err(ServerError::Forbidden(
                "you are not a member of this space".into(),
            ));
        }
        spaces::members(&conn, space)
    })
    .await?;
    Ok(Wire(MemberList { members }))
}

/// `GET /v1/spaces/{space}/invites`: the open invites, for the space's coordinators.
pub async fn list_invites(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
) -> Result<Wire<InviteList>, ServerError> {
    let device = device.active()?;
    let invites = blocking(move || {
        let conn = state.db.lock();
        require_coordinator(&conn, space, device.person)?;
        spaces::open_invites(&conn, space, now_ms())
    })
    .await?;
    Ok(Wire(InviteList { invites }))
}

/// `DELETE /v1/spaces/{space}/invites/{id}`: a coordinator withdraws an invite (a code shared
/// too widely, a flyer lost); redeeming its code answers `404` from then on.
pub async fn revoke_invite(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((space, id)): Ids<(Uuid, u64)>,
) -> Result<StatusCode, ServerError> {
    let device = device.active()?;
    blocking(move || {
        let conn = state.db.lock();
        require_coordinator(&conn, space, device.person)?;
        if spaces::revoke_invite(&conn, space, id)? {
            Ok(())
        } else {
            Err(ServerError::NotFound("no such invite".into()))
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member (coordinators), or leaves a space (the member themselves). At once: the
/// member's next sync purges the space from their devices.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((space, person)): Ids<(Uuid, Uuid)>,
) -> Result<StatusCode, ServerError> {
    let device = device.active()?;
    blocking(move || {
        let conn = state.db.lock();
        if person != device.person {
            require_coordinator(&conn, space, device.person)?;
        }
        if spaces::is_last_coordinator(&conn, space, person)? {
            return Err(last_coordinator());
        }
        if spaces::remove_member(&conn, space, person)? {
            Ok(())
        } else {
            Err(ServerError::NotFound("no such member".into()))
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
