//! Encrypted attachments of counselling messages (`docs/counselling.md`, "Attachments"). A file
//! is encrypted under a key of its own (`quartier_counselling::attachment`); its ciphertext is
//! kept in `<db>.media/counselling/<hash>` and uploaded by the next sync before the message that
//! carries its key goes out (`sync::counselling`); a reader fetches the ciphertext on demand and
//! opens it with the key from the message. Plaintext never touches the disk here: the app gets
//! it in memory. What lives here: the store side (files, rows of schema 18); the HTTP side is in
//! `sync::counselling`.

use std::path::{Path, PathBuf};

use quartier_counselling::attachment;
use quartier_protocol::blobs::is_blob_hash;
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use super::{not_found, seal_and_queue, state, Body, FileKey};
use crate::error::{parse_stored_uuid, Error, Result};
use crate::media::files;
use crate::store::Store;

/// Held while files are placed until their rows are committed, and while the folder is swept:
/// a sweep in between would take a file placed a moment before its row for a leftover.
static FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn files_lock() -> std::sync::MutexGuard<'static, ()> {
    FILES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most files one message carries.
pub const MAX_FILES_PER_MESSAGE: usize = 10;

/// A file to send in a counselling message: its bytes (at most 32 MiB) and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewAttachment {
    pub bytes: Vec<u8>,
    /// `type/subtype`, e.g. `image/jpeg`, shown to the reader before they fetch it.
    pub mime: String,
}

/// An attachment waiting to be uploaded.
pub(crate) struct PendingUpload {
    pub channel: Uuid,
    pub hash: String,
    pub size: u64,
    /// The resident side's access token (the team side is known by its credentials).
    pub token: Option<String>,
    pub path: PathBuf,
}

/// The folder of counselling attachments (ciphertext only) of the store at `db`.
pub(crate) fn folder(db: &Path) -> PathBuf {
    files::media_dir(db).join("counselling")
}

fn checked_hash(hash: &str) -> Result<&str> {
    if is_blob_hash(hash) {
        Ok(hash)
    } else {
        Err(Error::invalid(
            "attachment",
            "an attachment is named by its BLAKE3 hash: 64 lowercase hex digits",
        ))
    }
}

impl Store {
    /// Sends a message with files in a conversation: each file encrypted under a key of its
    /// own, its ciphertext kept on this device, the message (with the keys) encrypted and
    /// queued, all before this returns. The next sync uploads the files, then the message.
    pub fn send_counselling_files(
        &self,
        channel: Uuid,
        text: &str,
        files: Vec<NewAttachment>,
    ) -> Result<Uuid> {
        if files.is_empty() {
            return Err(Error::invalid("message", "no files: send a message instead"));
        }
        if files.len() > MAX_FILES_PER_MESSAGE {
            return Err(Error::invalid(
                "message",
                format!("at most {MAX_FILES_PER_MESSAGE} files per message"),
            ));
        }
        let dir = folder(self.path());
        std::fs::create_dir_all(&dir).map_err(|e| Error::media_io("creating the attachment folder", e))?;
        let tmp = files::temp_dir(self.path());
        let _placing = files_lock();
        let mut keys = Vec::with_capacity(files.len());
        let mut placed: Vec<(String, u64)> = Vec::with_capacity(files.len());
        let encrypted = (|| {
            for file in &files {
                let (ciphertext, key) = attachment::encrypt(&file.bytes, &file.mime)?;
                let staged = files::stage_bytes(&tmp, &ciphertext)?;
                if staged.hash != key.hash {
                    return Err(Error::Corrupt(
                        "an attachment's ciphertext changed on disk".into(),
                    ));
                }
                staged.place(&dir, None)?;
                placed.push((key.hash.clone(), ciphertext.len() as u64));
                keys.push(key);
            }
            Ok(())
        })();
        let result = encrypted.and_then(|()| {
            self.write(|tx, touched| {
                touched.counselling.insert(channel);
                let held = state::load_channel(tx, channel)?
                    .filter(|c| c.erase_sent && c.kind == "conversation")
                    .ok_or_else(|| not_found(channel))?;
                let id = seal_and_queue(
                    tx,
                    &held,
                    Body::Message {
                        text: text.to_owned(),
                        attachments: keys.clone(),
                    },
                )?;
                for (hash, size) in &placed {
                    tx.execute(
                        "INSERT OR REPLACE INTO counselling_files (channel_id, hash, record_id, size, uploaded)
                         VALUES (?1, ?2, ?3, ?4, 0)",
                        params![channel.to_string(), hash, id.to_string(), *size as i64],
                    )?;
                }
                Ok(id)
            })
        });
        if result.is_err() {
            // Fresh keys make fresh ciphertext: nothing else uses these files.
            for (hash, _) in &placed {
                files::remove_quietly(&dir.join(hash));
            }
        }
        result
    }

    /// An attachment of `channel` opened with its key from the message, if this device holds
    /// its ciphertext (it sent it, or fetched it with `SyncClient::fetch_counselling_attachment`);
    /// `None` when it must be fetched first. A file that does not open with the key (tampered)
    /// is a `Counselling` error.
    pub fn counselling_attachment(&self, channel: Uuid, file: &FileKey) -> Result<Option<Vec<u8>>> {
        let hash = checked_hash(&file.hash)?;
        let held = self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM counselling_files WHERE channel_id = ?1 AND hash = ?2")?
                .exists(params![channel.to_string(), hash])?)
        })?;
        if !held {
            return Ok(None);
        }
        let ciphertext = match std::fs::read(folder(self.path()).join(hash)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::media_io("reading an attachment", e)),
        };
        Ok(Some(attachment::decrypt(&ciphertext, file)?))
    }

    /// Keeps the ciphertext of an attachment fetched from the server (its hash checked by the
    /// caller), if the channel is still held here.
    pub(crate) fn keep_fetched_attachment(&self, channel: Uuid, hash: &str, ciphertext: &[u8]) -> Result<()> {
        let hash = checked_hash(hash)?;
        let dir = folder(self.path());
        std::fs::create_dir_all(&dir).map_err(|e| Error::media_io("creating the attachment folder", e))?;
        let staged = files::stage_bytes(&files::temp_dir(self.path()), ciphertext)?;
        if staged.hash != hash {
            return Err(Error::invalid(
                "attachment",
                "the fetched bytes do not hash to its name",
            ));
        }
        let placing = files_lock();
        staged.place(&dir, None)?;
        let kept = self.write(|tx, _| {
            if state::load_channel(tx, channel)?.is_none_or(|c| !c.erase_sent) {
                return Ok(false);
            }
            tx.execute(
                "INSERT OR IGNORE INTO counselling_files (channel_id, hash, record_id, size, uploaded)
                 VALUES (?1, ?2, NULL, ?3, 1)",
                params![channel.to_string(), hash, ciphertext.len() as i64],
            )?;
            Ok(true)
        })?;
        drop(placing);
        if !kept {
            self.sweep_counselling_files()?;
        }
        Ok(())
    }

    /// Where the channel's access is proved: the resident side's token, if any. `NotFound` for
    /// a channel this device does not hold.
    pub(crate) fn counselling_access(&self, channel: Uuid) -> Result<Option<String>> {
        self.read(|conn| {
            let held = state::load_channel(conn, channel)?
                .filter(|c| c.erase_sent)
                .ok_or_else(|| not_found(channel))?;
            Ok(held.token)
        })
    }

    /// Attachments waiting for upload, of conversations the server has (opened).
    pub(crate) fn attachments_to_upload(&self) -> Result<Vec<PendingUpload>> {
        let dir = folder(self.path());
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT f.channel_id, f.hash, f.size, c.token FROM counselling_files f
                 JOIN counselling_channels c ON c.channel_id = f.channel_id
                 WHERE f.uploaded = 0 AND c.opened = 1 AND c.erase_sent = 1
                 ORDER BY f.rowid",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (channel, hash, size, token) = row?;
                checked_hash(&hash)?;
                out.push(PendingUpload {
                    channel: parse_stored_uuid(&channel)?,
                    path: dir.join(&hash),
                    hash,
                    size: u64::try_from(size).unwrap_or_default(),
                    token,
                });
            }
            Ok(out)
        })
    }

    pub(crate) fn mark_attachment_uploaded(&self, channel: Uuid, hash: &str) -> Result<()> {
        self.write(|tx, _| {
            tx.execute(
                "UPDATE counselling_files SET uploaded = 1 WHERE channel_id = ?1 AND hash = ?2",
                params![channel.to_string(), hash],
            )?;
            Ok(())
        })
    }

    /// The server refused an attachment for good (too large, over the conversation's quota):
    /// its message is not sent and shows the reason (`RecordState::Refused`), like a record the
    /// server refused.
    pub(crate) fn refuse_attachment(&self, channel: Uuid, hash: &str, reason: &str) -> Result<()> {
        self.write(|tx, touched| {
            touched.counselling.insert(channel);
            let record: Option<Option<String>> = tx
                .prepare_cached(
                    "SELECT record_id FROM counselling_files WHERE channel_id = ?1 AND hash = ?2",
                )?
                .query_row(params![channel.to_string(), hash], |r| r.get(0))
                .optional()?;
            tx.execute(
                "UPDATE counselling_files SET uploaded = -1 WHERE channel_id = ?1 AND hash = ?2",
                params![channel.to_string(), hash],
            )?;
            if let Some(Some(record)) = record {
                tx.execute(
                    "UPDATE counselling_records SET refused = ?2 WHERE record_id = ?1",
                    params![record, format!("attachment refused: {reason}")],
                )?;
                tx.execute(
                    "DELETE FROM counselling_outbox WHERE kind = 'sealed' AND record_id = ?1",
                    [&record],
                )?;
            }
            Ok(())
        })
    }

    /// Deletes attachment files no row holds any more (their conversation was erased or
    /// forgotten). Ciphertext only, but an erasure leaves nothing behind.
    pub(crate) fn sweep_counselling_files(&self) -> Result<usize> {
        let dir = folder(self.path());
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::media_io("listing the attachment folder", e)),
        };
        let _sweeping = files_lock();
        let held: std::collections::BTreeSet<String> = self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT DISTINCT hash FROM counselling_files")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !held.contains(name) {
                files::remove_quietly(&entry.path());
                removed += 1;
            }
        }
        Ok(removed)
    }
}
