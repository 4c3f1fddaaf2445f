//! Attachments of counselling conversations (`docs/counselling.md`, "Attachments"): files the
//! devices encrypted, each under a key of its own that only the conversation's messages carry.
//! The server keeps their ciphertext in the same byte store and tables as media, in a namespace
//! of their own: a conversation is the "space" of its attachments in `blob_claims`, and their
//! "uploader" (in `blob_claims` and `blob_uploads`) is an id derived from the conversation's
//! ([`uploader_of`]), which no person's id can equal (a conversation's id is the client's
//! choice; a person's never is, and the derivation cannot be steered to one). So no person or
//! device is recorded for them (a resident
//! stays pseudonymous), uploads resume chunk by chunk as media's do, a conversation has a quota
//! of its own, and erasing the conversation drops them (`storage::counselling`), the bytes
//! with the next [`gc::drop_erased`](super::gc::drop_erased).
//!
//! Who may: the devices proving the conversation's access token (its resident side) and the
//! devices of its team's caseworkers ([`may_use_conversation`]). To anyone else a conversation's
//! attachments do not exist (`NotFound`).

use quartier_protocol::blobs::{is_blob_hash, AnnounceBlob, BlobVariant, UploadState, BLOB_CONTENT_TYPE};
use quartier_protocol::counselling::{MAX_ATTACHMENT_CIPHERTEXT_BYTES, MAX_CONVERSATION_ATTACHMENT_BYTES};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::service::{self, Download};
use super::{index, BlobError, Blobs};
use crate::storage::{Db, DeviceRecord};
use crate::sync::counselling::may_use_conversation;

/// Who asks: the device, and the access token it sent (`quartier-access`), if any.
pub struct Asker<'a> {
    pub device: &'a DeviceRecord,
    pub token: Option<&'a str>,
}

/// The uploader id of a conversation's attachments: BLAKE3-derived from its id, so that a
/// conversation opened under someone's person id still never shares their uploads or claims.
pub fn uploader_of(conversation: Uuid) -> Uuid {
    let derived = blake3::derive_key(
        "quartier counselling attachment uploader v1",
        conversation.as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&derived[..16]);
    Uuid::from_bytes(bytes)
}

fn check_access(conn: &Connection, asker: &Asker<'_>, conversation: Uuid) -> Result<(), BlobError> {
    if may_use_conversation(conn, asker.device, conversation, asker.token)? {
        Ok(())
    } else {
        Err(BlobError::NotFound)
    }
}

/// Announces (or resumes) the upload of an attachment of `conversation`.
pub fn announce(
    db: &Db,
    blobs: &Blobs,
    asker: &Asker<'_>,
    conversation: Uuid,
    announced: &AnnounceBlob,
) -> Result<UploadState, BlobError> {
    if !is_blob_hash(&announced.hash) {
        return Err(BlobError::InvalidHash);
    }
    if announced.mime_type != BLOB_CONTENT_TYPE
        || announced.variant.is_some_and(|v| v != BlobVariant::Original)
        || announced.chunk_size != quartier_protocol::blobs::BLOB_CHUNK_BYTES
    {
        return Err(BlobError::BadRequest(format!(
            "an attachment is ciphertext: type `{BLOB_CONTENT_TYPE}`, an original, in chunks of {} bytes",
            quartier_protocol::blobs::BLOB_CHUNK_BYTES
        )));
    }
    if announced.size > MAX_ATTACHMENT_CIPHERTEXT_BYTES {
        return Err(BlobError::TooLarge {
            size: announced.size,
            limit: MAX_ATTACHMENT_CIPHERTEXT_BYTES,
        });
    }
    let limits = super::BlobLimits {
        max_blob_bytes: MAX_ATTACHMENT_CIPHERTEXT_BYTES,
        space_quota_bytes: MAX_CONVERSATION_ATTACHMENT_BYTES,
    };
    let (state, discard) = {
        let conn = db.lock();
        check_access(&conn, asker, conversation)?;
        index::announce(&conn, conversation, uploader_of(conversation), announced, &limits)?
    };
    if discard {
        blobs
            .store
            .discard_partial(&announced.hash, uploader_of(conversation))?;
    }
    Ok(state)
}

/// Stores chunk `index` of an attachment of `conversation` being uploaded.
pub fn put_chunk(
    db: &Db,
    blobs: &Blobs,
    asker: &Asker<'_>,
    conversation: Uuid,
    hash: &str,
    index: u32,
    bytes: &[u8],
) -> Result<UploadState, BlobError> {
    check_access(&db.lock(), asker, conversation)?;
    service::put_chunk(db, blobs, uploader_of(conversation), hash, index, bytes)
}

/// Every chunk is there: verifies the attachment's hash and keeps it.
pub fn complete(
    db: &Db,
    blobs: &Blobs,
    asker: &Asker<'_>,
    conversation: Uuid,
    hash: &str,
) -> Result<UploadState, BlobError> {
    check_access(&db.lock(), asker, conversation)?;
    service::complete(db, blobs, uploader_of(conversation), hash)
}

/// Opens an attachment of `conversation` that was uploaded into it (whole, or `range`).
pub fn download(
    db: &Db,
    blobs: &Blobs,
    asker: &Asker<'_>,
    conversation: Uuid,
    hash: &str,
    range: Option<&[u8]>,
    head_only: bool,
) -> Result<Download, BlobError> {
    service::open(db, blobs, hash, range, head_only, |conn| {
        Ok(
            may_use_conversation(conn, asker.device, conversation, asker.token)?
                && uploaded_into(conn, conversation, hash)?,
        )
    })
}

/// Whether `hash`'s bytes were uploaded (verified) into `conversation`.
fn uploaded_into(conn: &Connection, conversation: Uuid, hash: &str) -> Result<bool, BlobError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM blob_claims
             WHERE space_id = ?1 AND person_id = ?2 AND hash = ?3 AND uploaded_at IS NOT NULL",
        )?
        .query_row(
            params![
                conversation.to_string(),
                uploader_of(conversation).to_string(),
                hash
            ],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
