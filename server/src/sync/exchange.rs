//! One sync exchange as a function of the database: the checks of a request, its push, its pull
//! and the device's memberships. `POST /v1/sync` carries it over HTTP; tests call it in-process
//! (the simulated network of `tests/simulated_sync.rs`), so both run the same rules.

use quartier_protocol::{
    Record, SyncRequest, SyncResponse, MAX_CURSORS_PER_REQUEST as MAX_CURSORS,
    MAX_PUSH_PER_REQUEST as MAX_PUSH, PROTOCOL_VERSION,
};

use crate::documents::DocCache;
use crate::error::ServerError;
use crate::storage::{spaces, Db, DeviceRecord};

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
    // A revoked device learns that every space it asks about is gone, and nothing else.
    if device.revoked {
        return Ok(SyncResponse {
            protocol: PROTOCOL_VERSION,
            acks: vec![],
            pages: vec![],
            memberships: vec![],
            revoked: req.cursors.iter().map(|c| c.space).collect(),
            counselling: None,
        });
    }
    // Document changes and counselling records go separate ways; acknowledgements keep each
    // record's place in the push.
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
        },
    )?;
    // The same snapshot as the pages: memberships and pages agree.
    let memberships = spaces::memberships(&conn, device.person)?;
    drop(snapshot);
    Ok(SyncResponse {
        protocol: PROTOCOL_VERSION,
        acks,
        pages,
        memberships,
        revoked,
        counselling,
    })
}
