//! Counselling teams and key backups (`docs/counselling.md`). Coordinators name teams and
//! route them (topic, postcodes, retention); coordinators and organisation admins put
//! caseworkers of the space into teams; members list the teams to open a conversation with.
//! Conversations themselves travel in the sync (`sync::counselling`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use quartier_protocol::counselling::{
    BackupDownload, BackupUpload, TeamInfo, TeamList, TeamMembers, TeamSettings, MAX_BACKUP_BYTES,
};
use quartier_protocol::Role;
use uuid::Uuid;

use super::auth::Device;
use super::{blocking, Ids, Wire};
use crate::error::ServerError;
use crate::state::AppState;
use crate::storage::counselling as store;
use crate::storage::{accounts, now_ms, secret_hash, spaces};

/// Longest retention a team may set (ten years: the longest record-keeping duty a welfare
/// organisation has).
const MAX_RETENTION_DAYS: i32 = 3650;
const MAX_POSTCODES: usize = 200;

fn check_settings(settings: &TeamSettings) -> Result<(), ServerError> {
    let name = settings.name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(ServerError::BadRequest(
            "a team name has 1 to 80 characters, no control characters".into(),
        ));
    }
    let topic_ok = !settings.topic.is_empty()
        && settings.topic.len() <= 40
        && settings
            .topic
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !topic_ok {
        return Err(ServerError::BadRequest(
            "a topic is 1 to 40 characters of a-z, 0-9 and '-' (e.g. debt, addiction, family)".into(),
        ));
    }
    let postcodes_ok = settings.postcodes.len() <= MAX_POSTCODES
        && settings
            .postcodes
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !postcodes_ok {
        return Err(ServerError::BadRequest(format!(
            "at most {MAX_POSTCODES} postcodes (or leading digits), each 1 to 10 letters or digits"
        )));
    }
    if settings
        .retention_days
        .is_some_and(|d| d <= 0 || d > MAX_RETENTION_DAYS)
    {
        return Err(ServerError::BadRequest(format!(
            "retention is 1 to {MAX_RETENTION_DAYS} days, or none"
        )));
    }
    Ok(())
}

fn require_role(
    conn: &rusqlite::Connection,
    space: Uuid,
    person: Uuid,
    allowed: &[Role],
) -> Result<Role, ServerError> {
    match spaces::role_of(conn, space, person)? {
        Some(role) if allowed.contains(&role) => Ok(role),
        Some(_) => Err(ServerError::Forbidden(
            "your role in this space may not do this".into(),
        )),
        None => Err(ServerError::Forbidden(
            "you are not a member of this space".into(),
        )),
    }
}

/// The team `team` of `space`, or `404`.
fn team_of(conn: &rusqlite::Connection, space: Uuid, team: Uuid) -> Result<store::TeamRow, ServerError> {
    store::team(conn, team)?
        .filter(|t| t.space == space)
        .ok_or_else(|| ServerError::NotFound("no such team in this space".into()))
}

/// `POST /v1/spaces/{space}/teams`: a coordinator names a team.
pub async fn create(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
    Wire(settings): Wire<TeamSettings>,
) -> Result<Wire<TeamInfo>, ServerError> {
    let device = device.active()?;
    check_settings(&settings)?;
    let info = blocking(move || {
        let conn = state.db.lock();
        require_role(&conn, space, device.person, &[Role::Coordinator])?;
        let id = store::create_team(&conn, space, &settings, now_ms())?;
        Ok(team_of(&conn, space, id)?.info)
    })
    .await?;
    Ok(Wire(info))
}

/// `PUT /v1/spaces/{space}/teams/{team}`: renaming, re-routing, retention.
pub async fn update(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((space, team)): Ids<(Uuid, Uuid)>,
    Wire(settings): Wire<TeamSettings>,
) -> Result<Wire<TeamInfo>, ServerError> {
    let device = device.active()?;
    check_settings(&settings)?;
    let info = blocking(move || {
        let conn = state.db.lock();
        require_role(&conn, space, device.person, &[Role::Coordinator])?;
        team_of(&conn, space, team)?;
        store::update_team(&conn, team, &settings)?;
        Ok(team_of(&conn, space, team)?.info)
    })
    .await?;
    Ok(Wire(info))
}

/// `GET /v1/spaces/{space}/teams`: every member sees the teams (to open a conversation).
pub async fn list(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
) -> Result<Wire<TeamList>, ServerError> {
    let device = device.active()?;
    let teams = blocking(move || {
        let conn = state.db.read()?;
        if spaces::role_of(&conn, space, device.person)?.is_none() {
            return Err(ServerError::Forbidden(
                "you are not a member of this space".into(),
            ));
        }
        store::teams_of_space(&conn, space)
    })
    .await?;
    Ok(Wire(TeamList { teams }))
}

/// Coordinators of the space and organisation admins manage who is in a team.
fn require_team_manager(conn: &rusqlite::Connection, space: Uuid, person: Uuid) -> Result<(), ServerError> {
    if spaces::role_of(conn, space, person)? == Some(Role::Coordinator)
        || accounts::is_org_admin(conn, person)?
    {
        return Ok(());
    }
    Err(ServerError::Forbidden(
        "only the space's coordinators and organisation admins manage counselling teams".into(),
    ))
}

/// `PUT /v1/spaces/{space}/teams/{team}/members/{person}`: a caseworker of the space joins
/// the team; from their next sync their devices read the team's conversations (new ones whole,
/// running ones from their senders' current sessions)
/// and notes.
pub async fn add_member(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((space, team, person)): Ids<(Uuid, Uuid, Uuid)>,
) -> Result<Wire<TeamMembers>, ServerError> {
    let device = device.active()?;
    let members = blocking(move || {
        let conn = state.db.lock();
        require_team_manager(&conn, space, device.person)?;
        team_of(&conn, space, team)?;
        if spaces::role_of(&conn, space, person)? != Some(Role::Caseworker) {
            return Err(ServerError::Conflict(
                "only caseworkers of the space join counselling teams (an organisation admin appoints them)"
                    .into(),
            ));
        }
        store::add_team_member(&conn, team, person, now_ms())?;
        Ok(TeamMembers {
            team,
            caseworkers: store::team_members(&conn, team)?,
        })
    })
    .await?;
    Ok(Wire(members))
}

/// `DELETE /v1/spaces/{space}/teams/{team}/members/{person}`: the caseworker leaves the team
/// (a manager removes them, or they leave). Their devices receive nothing of the team from now
/// on, and the other devices start new conversation keys without them.
pub async fn remove_member(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((space, team, person)): Ids<(Uuid, Uuid, Uuid)>,
) -> Result<StatusCode, ServerError> {
    let device = device.active()?;
    blocking(move || {
        let conn = state.db.lock();
        if person != device.person {
            require_team_manager(&conn, space, device.person)?;
        }
        team_of(&conn, space, team)?;
        if store::remove_team_member(&conn, team, person)? {
            Ok(())
        } else {
            Err(ServerError::NotFound("not a member of this team".into()))
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/spaces/{space}/teams/{team}/members`: for managers and the team's caseworkers (who
/// hold the caseworker role now). Whether a team exists is told only to those.
pub async fn members(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((space, team)): Ids<(Uuid, Uuid)>,
) -> Result<Wire<TeamMembers>, ServerError> {
    let device = device.active()?;
    let members = blocking(move || {
        let conn = state.db.read()?;
        let in_team = store::teams_of_caseworker(&conn, device.person)?
            .iter()
            .any(|t| t.id == team && t.space == space);
        if !in_team {
            require_team_manager(&conn, space, device.person)?;
        }
        team_of(&conn, space, team)?;
        Ok(TeamMembers {
            team,
            caseworkers: store::team_members(&conn, team)?,
        })
    })
    .await?;
    Ok(Wire(members))
}

/// A backup id: 32 hex characters (16 random bytes, made by the device).
fn check_backup_id(id: &str) -> Result<(), ServerError> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(ServerError::BadRequest(
            "a backup id is 32 lowercase hex characters".into(),
        ))
    }
}

/// `PUT /v1/counselling/backups/{id}`: stores or replaces a sealed key backup. Any registered
/// device may (the backup is not linked to it); replacing needs the backup's secret.
pub async fn put_backup(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(id): Ids<String>,
    Wire(upload): Wire<BackupUpload>,
) -> Result<StatusCode, ServerError> {
    device.active()?;
    check_backup_id(&id)?;
    if upload.sealed.len() > MAX_BACKUP_BYTES {
        return Err(ServerError::BodyTooLarge {
            limit: MAX_BACKUP_BYTES,
        });
    }
    if upload.secret.len() < 32 || upload.secret.len() > 128 {
        return Err(ServerError::BadRequest(
            "a backup secret has 32 to 128 characters".into(),
        ));
    }
    blocking(move || {
        let conn = state.db.lock();
        if store::put_backup(&conn, &id, &secret_hash(&upload.secret), &upload.sealed, now_ms())? {
            Ok(())
        } else {
            Err(ServerError::Forbidden(
                "this backup id is taken by another backup".into(),
            ))
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/counselling/backups/{id}`: the sealed backup (useless without the passphrase).
pub async fn get_backup(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(id): Ids<String>,
) -> Result<Wire<BackupDownload>, ServerError> {
    device.active()?;
    check_backup_id(&id)?;
    let sealed = blocking(move || {
        let conn = state.db.read()?;
        store::backup(&conn, &id)
    })
    .await?;
    sealed
        .map(|sealed| Wire(BackupDownload { sealed }))
        .ok_or_else(|| ServerError::NotFound("no backup under this id".into()))
}
