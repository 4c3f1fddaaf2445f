//! The change log and the per-document metadata kept beside it.

use quartier_domain::document::Creation;
use quartier_protocol::ChangeSignature;
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::now_ms;
use crate::error::ServerError;

/// What the server knows of a document without loading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocMeta {
    pub space: Uuid,
    pub kind: String,
    pub author: Option<String>,
    pub item_kind: Option<String>,
    pub audience: Option<String>,
}

/// One row of the log, as a pull reads it.
#[derive(Clone, Debug)]
pub struct LogRow {
    pub seq: i64,
    pub doc: Uuid,
    pub reveal: bool,
    pub bytes: Vec<u8>,
    pub device: Option<Uuid>,
    pub signature: Vec<u8>,
}

/// A `docs` row: space, kind, author, item kind, audience.
type DocRow = (String, String, Option<String>, Option<String>, Option<String>);

/// A document's snapshot (if compacted), the changes logged after it, and the log position of
/// the last of them (of the snapshot when no change followed it; 0 for a document the server
/// does not have).
pub type DocState = (Option<Vec<u8>>, Vec<Vec<u8>>, i64);

pub fn doc_meta(conn: &Connection, doc: Uuid) -> Result<Option<DocMeta>, ServerError> {
    let row: Option<DocRow> = conn
        .prepare_cached("SELECT space_id, kind, author, item_kind, audience FROM docs WHERE doc_id = ?1")?
        .query_row([doc.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    Ok(match row {
        Some((space, kind, author, item_kind, audience)) => Some(DocMeta {
            space: Uuid::parse_str(&space).map_err(|e| ServerError::Internal(e.to_string()))?,
            kind,
            author,
            item_kind,
            audience,
        }),
        None => None,
    })
}

/// The document a stored change belongs to, by its hash (`None`: never stored).
pub fn document_of_change(conn: &Connection, hash: &[u8]) -> Result<Option<Uuid>, ServerError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc_id FROM log WHERE hash = ?1")?
        .query_row([hash], |row| row.get(0))
        .optional()?;
    doc.map(|doc| {
        Uuid::parse_str(&doc).map_err(|e| ServerError::Internal(format!("stored document id {doc}: {e}")))
    })
    .transpose()
}

/// Appends a change and updates the document's metadata; returns the new sequence number.
#[allow(clippy::too_many_arguments)]
pub fn append_change(
    conn: &Connection,
    doc: Uuid,
    meta: &DocMeta,
    hash: &[u8],
    bytes: &[u8],
    device: Uuid,
    signature: &[u8],
    reveal: bool,
) -> Result<i64, ServerError> {
    conn.prepare_cached(
        "INSERT INTO docs (doc_id, space_id, kind, author, item_kind, audience, changes_since)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
         ON CONFLICT (doc_id) DO UPDATE SET author = excluded.author, item_kind = excluded.item_kind,
             audience = excluded.audience, changes_since = changes_since + 1",
    )?
    .execute(params![
        doc.to_string(),
        meta.space.to_string(),
        meta.kind,
        meta.author,
        meta.item_kind,
        meta.audience
    ])?;
    conn.prepare_cached(
        "INSERT INTO log (space_id, doc_id, record, hash, bytes, device_id, signature, received_at)
         VALUES (?1, ?2, 'change', ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        meta.space.to_string(),
        doc.to_string(),
        hash,
        bytes,
        device.to_string(),
        signature,
        now_ms()
    ])?;
    let seq = conn.last_insert_rowid();
    if reveal {
        conn.prepare_cached(
            "INSERT INTO log (space_id, doc_id, record, received_at) VALUES (?1, ?2, 'reveal', ?3)",
        )?
        .execute(params![meta.space.to_string(), doc.to_string(), now_ms()])?;
    }
    Ok(seq)
}

/// Rows of a space's log after `after`, oldest first, at most `limit`.
pub fn rows_after(
    conn: &Connection,
    space: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<LogRow>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, doc_id, record, bytes, device_id, signature FROM log
         WHERE space_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![space.to_string(), after, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<Vec<u8>>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<Vec<u8>>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, doc, record, bytes, device, signature) = row?;
        out.push(LogRow {
            seq,
            doc: Uuid::parse_str(&doc).map_err(|e| ServerError::Internal(e.to_string()))?,
            reveal: record == "reveal",
            bytes: bytes.unwrap_or_default(),
            device: device.and_then(|d| Uuid::parse_str(&d).ok()),
            signature: signature.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A change in the log, as the stream of signatures reads it: its author's signature, if the
/// row has one (every change pushed since signatures were logged does).
#[derive(Clone, Debug)]
pub struct SignedRow {
    pub seq: i64,
    pub doc: Uuid,
    pub signed: Option<ChangeSignature>,
}

/// Up to `limit` change rows of a space's log after `after` up to `upto`, in order.
pub fn signed_after(
    conn: &Connection,
    space: Uuid,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<SignedRow>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, doc_id, hash, device_id, signature FROM log
         WHERE space_id = ?1 AND seq > ?2 AND seq <= ?3 AND record = 'change' ORDER BY seq LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![space.to_string(), after, upto, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<Vec<u8>>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<Vec<u8>>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, doc, hash, device, signature) = row?;
        let doc = Uuid::parse_str(&doc).map_err(|e| ServerError::Internal(e.to_string()))?;
        let signed = signature_of_row(doc, hash, device, signature);
        out.push(SignedRow { seq, doc, signed });
    }
    Ok(out)
}

/// The signatures of a document's changes up to `seq`, as their devices pushed them.
pub fn signatures_of(conn: &Connection, doc: Uuid, seq: i64) -> Result<Vec<ChangeSignature>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT hash, device_id, signature FROM log
         WHERE doc_id = ?1 AND record = 'change' AND seq <= ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![doc.to_string(), seq], |r| {
        Ok((
            r.get::<_, Option<Vec<u8>>>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<Vec<u8>>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (hash, device, signature) = row?;
        out.extend(signature_of_row(doc, hash, device, signature));
    }
    Ok(out)
}

/// A change row's signature, if it has one (every change pushed since signatures were logged).
fn signature_of_row(
    doc: Uuid,
    hash: Option<Vec<u8>>,
    device: Option<String>,
    signature: Option<Vec<u8>>,
) -> Option<ChangeSignature> {
    let device = Uuid::parse_str(&device?).ok()?;
    Some(ChangeSignature {
        doc,
        hash: hash?,
        device,
        signature: signature?,
    })
}

/// The highest sequence number of a space's log (0 when empty).
pub fn last_seq(conn: &Connection, space: Uuid) -> Result<i64, ServerError> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM log WHERE space_id = ?1")?
        .query_row([space.to_string()], |r| r.get(0))?)
}

/// Documents of a space after `after_doc` (by id), at most `limit`, with their metadata.
pub fn docs_after(
    conn: &Connection,
    space: Uuid,
    after_doc: &str,
    limit: i64,
) -> Result<Vec<(Uuid, DocMeta)>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc_id, kind, author, item_kind, audience FROM docs WHERE space_id = ?1 AND doc_id > ?2
         ORDER BY doc_id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![space.to_string(), after_doc, limit], |r| {
        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (doc, kind, author, item_kind, audience) = row?;
        let doc = Uuid::parse_str(&doc).map_err(|e| ServerError::Internal(e.to_string()))?;
        out.push((
            doc,
            DocMeta {
                space,
                kind,
                author,
                item_kind,
                audience,
            },
        ));
    }
    Ok(out)
}

/// Loads what is needed to rebuild a document: its snapshot, the changes after it, and the log
/// position the state reaches.
pub fn doc_state(conn: &Connection, doc: Uuid) -> Result<DocState, ServerError> {
    let (snapshot, since): (Option<Vec<u8>>, i64) = conn
        .prepare_cached("SELECT snapshot, snapshot_seq FROM docs WHERE doc_id = ?1")?
        .query_row([doc.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((None, 0));
    let mut stmt = conn.prepare_cached(
        "SELECT seq, bytes FROM log WHERE doc_id = ?1 AND record = 'change' AND seq > ?2 ORDER BY seq",
    )?;
    let mut last = since;
    let changes = stmt
        .query_map(params![doc.to_string(), since], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?
        .map(|row| {
            row.map(|(seq, bytes)| {
                last = last.max(seq);
                bytes
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((snapshot, changes, last))
}

/// Stores a compacted snapshot of a document covering the log up to `upto`.
pub fn store_snapshot(conn: &Connection, doc: Uuid, snapshot: &[u8], upto: i64) -> Result<(), ServerError> {
    conn.prepare_cached(
        "UPDATE docs SET snapshot = ?2, snapshot_seq = ?3, changes_since = 0 WHERE doc_id = ?1",
    )?
    .execute(params![doc.to_string(), snapshot, upto])?;
    Ok(())
}

/// Changes stored for a document since its last snapshot.
pub fn changes_since_snapshot(conn: &Connection, doc: Uuid) -> Result<i64, ServerError> {
    Ok(conn
        .prepare_cached("SELECT changes_since FROM docs WHERE doc_id = ?1")?
        .query_row([doc.to_string()], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Records `doc`'s creation form (its first change was just stored).
pub fn record_creation(conn: &Connection, doc: Uuid, c: &Creation) -> Result<(), ServerError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO doc_creations (doc_id, actor, time_ms, message, state, hash_prefix)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        doc.to_string(),
        c.actor,
        c.time_ms,
        c.message,
        c.state,
        c.check
    ])?;
    Ok(())
}

/// Drops `doc`'s creation form: it has more than one change now.
pub fn drop_creation(conn: &Connection, doc: Uuid) -> Result<(), ServerError> {
    conn.prepare_cached("DELETE FROM doc_creations WHERE doc_id = ?1")?
        .execute([doc.to_string()])?;
    Ok(())
}

/// `doc`'s creation form, if it was recorded when stored and the document was not edited since.
pub fn creation(conn: &Connection, doc: Uuid) -> Result<Option<Creation>, ServerError> {
    Ok(conn
        .prepare_cached(
            "SELECT actor, time_ms, message, state, hash_prefix FROM doc_creations WHERE doc_id = ?1",
        )?
        .query_row([doc.to_string()], |r| {
            Ok(Creation {
                actor: r.get(0)?,
                time_ms: r.get(1)?,
                message: r.get(2)?,
                state: r.get(3)?,
                check: r.get(4)?,
            })
        })
        .optional()?)
}
