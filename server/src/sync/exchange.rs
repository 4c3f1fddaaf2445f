//! One sync exchange as a function of the database: the checks of a request, its push, its pull
//! and the device's memberships. `POST /v1/sync` carries it over HTTP; tests call it in-process
//! (the simulated network of `tests/simulated_sync.rs`), so both run the same rules.

use quartier_protocol::{
    Credentials, CredentialsRequest, Record, SyncRequest, SyncResponse,
    MAX_CURSORS_PER_REQUEST as MAX_CURSORS, MAX_PUSH_PER_REQUEST as MAX_PUSH, MAX_SIGNER_CERTIFICATES,
    PROTOCOL_VERSION,
};

use crate::documents::DocCache;
use crate::error::ServerError;
use crate::storage::{accounts, certificates, spaces, Db, DeviceRecord};

/// Answers one sync request of `device`. Blocking (database work): call it off async threads.
pub fn exchange(
    db: &Db,
    docs: &DocCache,
    device: &DeviceRecord,
    req: &SyncRequest,
) -> Result<SyncResponse, ServerError> {
    if req.protocol != PROTOCOL_VERSION {
        return Err(ServerError::ProtocolVersion(req.protocol));
    }
    if req.push.len() > MAX_PUSH || req.cursors.len() > MAX_CURSORS {
        return Err(ServerError::BadRequest(format!(
            "at most {MAX_PUSH} records and {MAX_CURSORS} spaces per request"
        )));
    }
    // One cursor per space: the same space asked for many times would multiply the work and
    // the answer (a first member list each time) for nothing.
    let mut spaces: Vec<_> = req.cursors.iter().map(|c| c.space).collect();
    spaces.sort_unstable();
    if spaces.windows(2).any(|w| w[0] == w[1]) {
        return Err(ServerError::BadRequest(
            "a space may be named once per request".into(),
        ));
    }
    if let Some(counselling) = &req.counselling {
        super::counselling::check(counselling)?;
    }
    if let Some(moderation) = &req.moderation {
        super::moderation::check(moderation)?;
    }
    if let Some(help) = &req.help {
        super::help::check(help)?;
    }
    // A revoked device learns that every space it asks about is gone, and nothing else.
    if device.revoked {
        return Ok(SyncResponse {
            protocol: PROTOCOL_VERSION,
            acks: vec![],
            pages: vec![],
            memberships: vec![],
            revoked: req.cursors.iter().map(|c| c.space).collect(),
            counselling: None,
            credentials: None,
            moderation: None,
            help: None,
        });
    }
    // Document changes and counselling records go separate ways; acknowledgements keep each
    // record's place in the push.
    // Moderation before the push: a decision (a block, an erasure) holds for the changes that
    // follow it, this request's included.
    let moderation = match &req.moderation {
        Some(moderation) => Some(super::moderation::exchange(db, docs, device, moderation)?),
        None => None,
    };
    let help = match &req.help {
        Some(help) => Some(super::help::exchange(db, docs, device, help)?),
        None => None,
    };
    type Indexed<'a> = Vec<(usize, &'a Record)>;
    let (sealed, documents): (Indexed<'_>, Indexed<'_>) =
        req.push.iter().enumerate().partition(|(_, r)| r.is_counselling());
    let document_records: Vec<Record> = documents.iter().map(|(_, r)| (*r).clone()).collect();
    // The push takes and hands over the database lock itself (bounded work per hold).
    let mut acks = super::push(
        db,
        docs,
        device.person,
        &document_records,
        &super::PushLimits::default(),
    )?
    .acks;
    for ack in &mut acks {
        ack.index = documents
            .get(ack.index as usize)
            .map_or(ack.index, |(i, _)| *i as u32);
    }
    // Counselling first: a message is worth more of a small page than a document.
    let mut budget = req.budget_bytes as usize;
    let counselling = match &req.counselling {
        Some(counselling) => {
            let (counselling_acks, response, used) =
                super::counselling::exchange(db, device, counselling, &sealed, budget)?;
            acks.extend(counselling_acks);
            budget = budget.saturating_sub(used).max(budget / 4);
            Some(response)
        }
        None => {
            for (index, _) in &sealed {
                acks.push(quartier_protocol::Ack {
                    index: *index as u32,
                    outcome: quartier_protocol::AckOutcome::Rejected {
                        code: quartier_protocol::RejectCode::Malformed,
                        message: "counselling records need the request's counselling part".into(),
                    },
                });
            }
            None
        }
    };
    acks.sort_by_key(|a| a.index);
    // Pages are read through a reader, in parallel with other pulls and with pushes; the push
    // above has committed, so the reader's snapshot holds it.
    let conn = db.read()?;
    let snapshot = crate::storage::Snapshot::begin(&conn)?;
    let (pages, revoked) = super::pull(
        &conn,
        docs,
        device.device,
        device.person,
        &req.cursors,
        budget,
        super::CreationForms {
            accepted: quartier_protocol::accepts_created_v1(&req.accepts),
            queue: Some(db.pending_creations()),
            signatures: super::SignatureForm::of(&req.accepts),
        },
    )?;
    // The same snapshot as the pages: memberships and pages agree.
    let memberships = spaces::memberships(&conn, device.person)?;
    let credentials = match &req.credentials {
        Some(asked) => Some(credentials(&conn, db.signing_key(), device, &memberships, asked)?),
        None => None,
    };
    drop(snapshot);
    Ok(SyncResponse {
        protocol: PROTOCOL_VERSION,
        acks,
        pages,
        memberships,
        revoked,
        counselling,
        credentials,
        moderation,
        help,
    })
}

/// Certificates and revocation lists for device to device: only of spaces the device's person
/// is a member of, and of other devices only while their person is one too.
fn credentials(
    conn: &rusqlite::Connection,
    key: &ed25519_dalek::SigningKey,
    device: &DeviceRecord,
    memberships: &[quartier_protocol::Membership],
    asked: &CredentialsRequest,
) -> Result<Credentials, ServerError> {
    if asked.signers.len() > MAX_SIGNER_CERTIFICATES
        || asked.own.len() > MAX_CURSORS
        || asked.revocations.len() > MAX_CURSORS
    {
        return Err(ServerError::BadRequest(format!(
            "at most {MAX_SIGNER_CERTIFICATES} certificates of others and {MAX_CURSORS} spaces per request"
        )));
    }
    let member_of = |space: &uuid::Uuid| memberships.iter().any(|m| m.space == *space);
    let now = crate::storage::now_ms();
    let mut out = Credentials {
        server_key: key.verifying_key().to_bytes().to_vec(),
        ..Credentials::default()
    };
    for space in asked.own.iter().filter(|s| member_of(s)) {
        out.certificates
            .extend(certificates::certificate(conn, key, *space, device, now)?);
    }
    for signer in asked.signers.iter().filter(|s| member_of(&s.space)) {
        if let Some(other) = accounts::device(conn, signer.device)? {
            out.certificates
                .extend(certificates::certificate(conn, key, signer.space, &other, now)?);
        }
    }
    for cursor in asked.revocations.iter().filter(|c| member_of(&c.space)) {
        out.revocations.extend(certificates::revocation_list(
            conn,
            key,
            cursor.space,
            cursor.after_ms,
            now,
        )?);
    }
    Ok(out)
}
