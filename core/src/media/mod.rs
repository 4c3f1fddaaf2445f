//! The local media store: photos, audio and video of items, content-addressed by BLAKE3.
//!
//! Files live in a folder next to the database (`<db>.media/<hash>`), written atomically, and
//! are registered in the `media` table of the same store (migration 005): what each file is
//! (original, preview, thumbnail), whether a server has it, whether the app pinned it, whether
//! its bytes are on this device, and when it was last used. Items refer to media through
//! [`MediaRef`]; the bytes never enter an item document.
//!
//! Importing sniffs the type from the content, strips image metadata (see [`images`]) and the
//! metadata of audio and video (see `strip`), derives a preview and a thumbnail, and probes
//! the duration of audio and video (see `duration`).
//! A size budget is kept by evicting the least recently used files that a server has and the
//! app did not pin; an original no server has yet is never evicted. See `docs/media.md`.
//!
//! May touch: the store's SQLite tables `media` and `media_settings` (through [`Store`]) and
//! the media folder. Nothing else.

mod duration;
pub(crate) mod files;
pub mod images;
mod iso;
pub(crate) mod sealed;
mod sniff;
mod strip;

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension, Transaction};

use crate::error::{Error, Result};
use crate::model::{validate_hash, MediaRef, MediaVariantRef};
use crate::store::{now_ms, Store};
use sniff::Kind;

/// Largest file accepted by an import (a few minutes of phone video).
pub const MAX_IMPORT_BYTES: u64 = 200 * 1024 * 1024;
/// Budget of present media bytes until the app sets one.
pub const DEFAULT_MEDIA_BUDGET: i64 = 512 * 1024 * 1024;
/// Access times are refreshed at most this often per file: scrolling a feed of thumbnails
/// must not cost one durable write per image, and LRU needs no finer resolution.
const ACCESS_RESOLUTION_MS: i64 = 60_000;

/// Which file of a media reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum MediaVariant {
    Original,
    Preview,
    Thumbnail,
}

impl MediaVariant {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaVariant::Original => "original",
            MediaVariant::Preview => "preview",
            MediaVariant::Thumbnail => "thumbnail",
        }
    }

    fn parse(s: &str) -> Option<MediaVariant> {
        match s {
            "original" => Some(MediaVariant::Original),
            "preview" => Some(MediaVariant::Preview),
            "thumbnail" => Some(MediaVariant::Thumbnail),
            _ => None,
        }
    }
}

/// One content-addressed file known to this device.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct LocalMedia {
    pub hash: String,
    pub mime_type: String,
    /// Bytes (signed because it crosses the FFI; never negative).
    pub size: i64,
    pub variant: MediaVariant,
    /// The original's hash, for previews and thumbnails.
    pub of: Option<String>,
    /// A server has acknowledged the file: it may be evicted and fetched again.
    pub on_server: bool,
    /// The app asked to keep the file on this device.
    pub pinned: bool,
    /// The bytes are on this device (false after eviction).
    pub present: bool,
}

impl LocalMedia {
    /// The size as the transfer arithmetic uses it (a negative size, which only a malformed
    /// reference could carry, counts as empty and then fails the content check).
    pub fn size_bytes(&self) -> u64 {
        u64::try_from(self.size).unwrap_or(0)
    }

    /// The files a reference on an item needs, as a download queue expects them: on the
    /// server, not (yet) present. Original first, then preview and thumbnail.
    pub fn for_reference(reference: &MediaRef) -> Vec<LocalMedia> {
        let variant = |v: &MediaVariantRef, variant| LocalMedia {
            hash: v.hash.clone(),
            mime_type: v.mime_type.clone(),
            size: v.size,
            variant,
            of: Some(reference.hash.clone()),
            on_server: true,
            pinned: false,
            present: false,
        };
        let mut all = vec![LocalMedia {
            hash: reference.hash.clone(),
            mime_type: reference.mime_type.clone(),
            size: reference.size,
            variant: MediaVariant::Original,
            of: None,
            on_server: true,
            pinned: false,
            present: false,
        }];
        all.extend(
            reference
                .preview
                .iter()
                .map(|v| variant(v, MediaVariant::Preview)),
        );
        all.extend(
            reference
                .thumbnail
                .iter()
                .map(|v| variant(v, MediaVariant::Thumbnail)),
        );
        all
    }
}

/// How to import a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ImportOptions {
    /// Keep the original bytes with their metadata (EXIF, GPS, camera serial; MP4/MOV `udta`
    /// and `meta`). Off by default: a stored photo is re-encoded with the orientation applied
    /// and no metadata, and MP4/MOV/M4A/3GP lose their metadata boxes.
    /// Previews and thumbnails never carry metadata.
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub keep_metadata: bool,
    /// Never evict these files from this device.
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub pinned: bool,
}

/// The result of an import.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ImportedMedia {
    /// Ready to put on an item (add alt text and caption first).
    pub reference: MediaRef,
    /// The files now stored: original, then preview and thumbnail where made.
    pub stored: Vec<LocalMedia>,
}

/// What an eviction run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EvictionReport {
    /// Hashes whose bytes were removed (their rows stay, `present = false`).
    pub evicted: Vec<String>,
    pub freed_bytes: i64,
    /// Bytes of media still present; above `budget` only when the rest is protected
    /// (pinned, not on a server yet, or just imported).
    pub present_bytes: i64,
    pub budget: i64,
}

/// How long a file no item references stays before [`Store::collect_media_garbage`] removes
/// it (as the background sync calls it): time for the app to attach an import to an item.
pub const MEDIA_GC_GRACE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);

/// What a media garbage collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaGcReport {
    /// Hashes whose rows (and files, where present) were removed.
    pub removed: Vec<String>,
    pub freed_bytes: i64,
}

/// A file ready to be registered.
struct NewFile {
    staged: files::Staged,
    mime_type: String,
    variant: MediaVariant,
    width: Option<u32>,
    height: Option<u32>,
    duration_ms: Option<u64>,
}

const COLUMNS: &str = "hash, mime_type, size, variant, of_hash, on_server, pinned, present";

fn local_media(row: &rusqlite::Row<'_>) -> rusqlite::Result<LocalMedia> {
    let variant: String = row.get(3)?;
    let variant = MediaVariant::parse(&variant).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("unknown media variant `{variant}`").into(),
        )
    })?;
    Ok(LocalMedia {
        hash: row.get(0)?,
        mime_type: row.get(1)?,
        size: row.get::<_, i64>(2)?.max(0),
        variant,
        of: row.get(4)?,
        on_server: row.get(5)?,
        pinned: row.get(6)?,
        present: row.get(7)?,
    })
}

fn select_one(conn: &rusqlite::Connection, hash: &str) -> Result<Option<LocalMedia>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM media WHERE hash = ?1"),
            [hash],
            local_media,
        )
        .optional()?)
}

fn not_found(hash: &str) -> Error {
    Error::NotFound {
        what: "media",
        id: hash.to_owned(),
    }
}

/// A size or count for a type that crosses the FFI: signed there (no `ULong` in Kotlin), and
/// saturating where it would not fit (never for a real file or count).
pub fn saturating_i64<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

/// Pixel dimensions for a type that crosses the FFI (see [`saturating_i64`]).
pub(crate) fn saturating_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn budget_of(conn: &rusqlite::Connection) -> Result<i64> {
    let budget: Option<i64> = conn
        .query_row("SELECT budget_bytes FROM media_settings WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(budget.map_or(DEFAULT_MEDIA_BUDGET, |b| b.max(0)))
}

fn check_import_size(size: u64) -> Result<()> {
    if size > MAX_IMPORT_BYTES {
        return Err(files::too_large(size, MAX_IMPORT_BYTES));
    }
    Ok(())
}

impl Store {
    /// The folder holding this store's media files.
    pub fn media_dir(&self) -> PathBuf {
        files::media_dir(self.path())
    }

    /// A folder on the media folder's file system for partial downloads; a finished file is
    /// moved from there by [`Store::adopt_downloaded_media`]. Created if it can be.
    pub fn media_temp_dir(&self) -> PathBuf {
        let dir = files::temp_dir(self.path());
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(error = %e, "could not create the media temp folder");
        }
        dir
    }

    /// Imports a photo, audio or video file. The type is sniffed from the content; the name
    /// does not matter. Nothing is stored if anything fails.
    pub fn import_media_file(&self, path: &Path, options: &ImportOptions) -> Result<ImportedMedia> {
        let mut file = File::open(path).map_err(|e| Error::media_io("opening the file to import", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::media_io("reading the size of the file to import", e))?
            .len();
        check_import_size(len)?;
        let mut head = Vec::with_capacity(sniff::HEAD_BYTES);
        (&mut file)
            .take(sniff::HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|e| Error::media_io("reading the file to import", e))?;
        let (mime_type, kind) = sniff::sniff(&head)?;
        match kind {
            Kind::Image(format) => {
                let mut bytes = head;
                // Bounded: the file may grow while we read it.
                file.take(MAX_IMPORT_BYTES + 1 - bytes.len() as u64)
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::media_io("reading the file to import", e))?;
                check_import_size(bytes.len() as u64)?;
                self.import_image(&bytes, format, options)
            }
            Kind::Audio | Kind::Video => {
                let staged = files::stage_reader(
                    &files::temp_dir(self.path()),
                    Cursor::new(head).chain(file),
                    MAX_IMPORT_BYTES,
                )?;
                self.import_as_is(staged, mime_type, options)
            }
        }
    }

    /// Imports a photo, audio or video from memory; see [`Store::import_media_file`].
    pub fn import_media_bytes(&self, bytes: &[u8], options: &ImportOptions) -> Result<ImportedMedia> {
        check_import_size(bytes.len() as u64)?;
        let (mime_type, kind) = sniff::sniff(&bytes[..bytes.len().min(sniff::HEAD_BYTES)])?;
        match kind {
            Kind::Image(format) => self.import_image(bytes, format, options),
            Kind::Audio | Kind::Video => {
                let staged = files::stage_bytes(&files::temp_dir(self.path()), bytes)?;
                self.import_as_is(staged, mime_type, options)
            }
        }
    }

    fn import_image(
        &self,
        bytes: &[u8],
        format: image::ImageFormat,
        options: &ImportOptions,
    ) -> Result<ImportedMedia> {
        let processed = images::process(bytes, format, options.keep_metadata)?;
        let tmp = files::temp_dir(self.path());
        let mut new_files = Vec::with_capacity(3);
        let mut derived = Vec::with_capacity(2);
        for (encoded, variant) in std::iter::once((processed.original, MediaVariant::Original))
            .chain(processed.preview.map(|e| (e, MediaVariant::Preview)))
            .chain(processed.thumbnail.map(|e| (e, MediaVariant::Thumbnail)))
        {
            // Images are encoded in memory: in an encrypted store they reach the disk sealed.
            let staged = match self.media_key() {
                Some(key) => files::stage_sealed_bytes(&tmp, &encoded.bytes, key)?,
                None => files::stage_bytes(&tmp, &encoded.bytes)?,
            };
            if variant != MediaVariant::Original {
                derived.push(MediaVariantRef {
                    hash: staged.hash.clone(),
                    mime_type: encoded.mime_type.into(),
                    size: saturating_i64(staged.size),
                    width: saturating_i32(encoded.width),
                    height: saturating_i32(encoded.height),
                });
            }
            new_files.push(NewFile {
                staged,
                mime_type: encoded.mime_type.into(),
                variant,
                width: Some(encoded.width),
                height: Some(encoded.height),
                duration_ms: None,
            });
        }
        let original = &new_files[0];
        let mut reference = MediaRef::new(
            original.staged.hash.clone(),
            original.mime_type.clone(),
            saturating_i64(original.staged.size),
        );
        reference.width = original.width.map(saturating_i32);
        reference.height = original.height.map(saturating_i32);
        let mut derived = derived.into_iter();
        if new_files.iter().any(|f| f.variant == MediaVariant::Preview) {
            reference.preview = derived.next();
        }
        reference.thumbnail = derived.next();
        let stored = self.register(new_files, options.pinned)?;
        Ok(ImportedMedia { reference, stored })
    }

    fn import_as_is(
        &self,
        staged: files::Staged,
        mime_type: String,
        options: &ImportOptions,
    ) -> Result<ImportedMedia> {
        let staged = if options.keep_metadata {
            staged
        } else {
            strip::strip_file(staged.path(), &mime_type)?;
            staged.rehash()?
        };
        let duration_ms = duration::probe_duration_ms(staged.path(), &mime_type);
        let mut reference = MediaRef::new(
            staged.hash.clone(),
            mime_type.clone(),
            saturating_i64(staged.size),
        );
        reference.duration_ms = duration_ms.map(saturating_i64);
        let stored = self.register(
            vec![NewFile {
                staged,
                mime_type,
                variant: MediaVariant::Original,
                width: None,
                height: None,
                duration_ms,
            }],
            options.pinned,
        )?;
        Ok(ImportedMedia { reference, stored })
    }

    /// Moves staged files into place and registers them in one transaction (the first file is
    /// the original), then keeps the budget. Files moved in by a failed transaction are removed
    /// again, unless they were there before.
    fn register(&self, new_files: Vec<NewFile>, pinned: bool) -> Result<Vec<LocalMedia>> {
        let dir = self.media_dir();
        let now = now_ms();
        let original = new_files.first().map(|f| f.staged.hash.clone());
        let hashes: Vec<String> = new_files.iter().map(|f| f.staged.hash.clone()).collect();
        let mut placed = Vec::new();
        let result = self.write(|tx, _| {
            let mut stored = Vec::with_capacity(new_files.len());
            for file in new_files {
                let hash = file.staged.hash.clone();
                let size = file.staged.size;
                if file.staged.place(&dir, self.media_key())? {
                    placed.push(dir.join(&hash));
                }
                let of = match file.variant {
                    MediaVariant::Original => None,
                    _ => original.as_deref(),
                };
                upsert(
                    tx,
                    &Upsert {
                        hash: &hash,
                        mime_type: &file.mime_type,
                        size,
                        variant: file.variant,
                        of,
                        width: file.width,
                        height: file.height,
                        duration_ms: file.duration_ms,
                        on_server: false,
                        imported: true,
                        pinned,
                        now,
                    },
                )?;
                stored.push(select_one(tx, &hash)?.ok_or_else(|| not_found(&hash))?);
            }
            Ok(stored)
        });
        match result {
            Ok(stored) => {
                self.keep_budget(&hashes);
                Ok(stored)
            }
            Err(e) => {
                for path in &placed {
                    files::remove_quietly(path);
                }
                Err(e)
            }
        }
    }

    /// Runs eviction after a write; a failure is logged, the write itself succeeded.
    fn keep_budget(&self, keep: &[String]) {
        if let Err(e) = self.evict_except(keep) {
            tracing::warn!(error = %e, "media eviction failed");
        }
    }

    /// What this device knows about a media file.
    pub fn media_info(&self, hash: &str) -> Result<Option<LocalMedia>> {
        validate_hash(hash)?;
        self.read(|conn| select_one(conn, hash))
    }

    /// The path of a file whose bytes are on this device, for the app to display or play;
    /// counts as a use for eviction. [`Error::NotFound`] if it is not here (never fetched, or
    /// evicted). In an encrypted store ([`Store::is_encrypted`]) the file holds the sealed
    /// bytes: read them through [`Store::read_media`] or [`Store::read_media_range`].
    pub fn media_file(&self, hash: &str) -> Result<PathBuf> {
        validate_hash(hash)?;
        let row: Option<(bool, i64)> = self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT present, last_access_ms FROM media WHERE hash = ?1",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })?;
        let Some((true, last_access)) = row else {
            return Err(not_found(hash));
        };
        let path = self.media_dir().join(hash);
        if !path.is_file() {
            // Removed behind our back (or an eviction whose commit failed): record the truth so
            // that a download queue fetches it again.
            tracing::warn!(hash, "media file missing on disk; marked as not present");
            self.write(|tx, _| {
                tx.execute("UPDATE media SET present = 0 WHERE hash = ?1", [hash])?;
                Ok(())
            })?;
            return Err(not_found(hash));
        }
        let now = now_ms();
        if now - last_access >= ACCESS_RESOLUTION_MS {
            self.write(|tx, _| {
                tx.execute(
                    "UPDATE media SET last_access_ms = ?2 WHERE hash = ?1",
                    params![hash, now],
                )?;
                Ok(())
            })?;
        }
        Ok(path)
    }

    /// The bytes of a file on this device (decrypted in an encrypted store); see
    /// [`Store::media_file`].
    pub fn read_media(&self, hash: &str) -> Result<Vec<u8>> {
        self.read_media_range(hash, 0, u64::MAX)
    }

    /// The bytes `start..end` of a file on this device (`end` clamped to its length):
    /// a chunk to upload, or a seek of a player. In an encrypted store only the segments the
    /// range falls in are decrypted.
    pub fn read_media_range(&self, hash: &str, start: u64, end: u64) -> Result<Vec<u8>> {
        let path = self.media_file(hash)?;
        let missing = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(hash),
            _ => Error::media_io("reading a media file", e),
        };
        if sealed::is_sealed(&path).map_err(missing)? {
            let key = self.media_key().ok_or_else(|| Error::MediaIo {
                op: "reading a media file",
                reason: "the file is sealed and this store has no media key (opened without its store key?)"
                    .into(),
            })?;
            return sealed::read_range(key, &path, start, end);
        }
        // A plain file: a store without a key, or one written before the store was encrypted
        // and not sealed yet.
        let mut file = File::open(&path).map_err(missing)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start)).map_err(missing)?;
        let mut bytes = Vec::new();
        file.take(end.saturating_sub(start))
            .read_to_end(&mut bytes)
            .map_err(missing)?;
        Ok(bytes)
    }

    /// Seals every plain media file of an encrypted store: the files written before the store
    /// was encrypted (`media_key.plain_files_left`). One file at a time, each atomically
    /// (`files::seal_in_place`); the mark is cleared when all are sealed, so an open killed
    /// half-way goes on at the next one. Files already sealed are recognised by their header.
    pub(crate) fn seal_plain_media(&self) -> Result<()> {
        let Some(key) = self.media_key() else {
            return Ok(());
        };
        let dir = self.media_dir();
        let tmp = files::temp_dir(self.path());
        let mut sealed_now = 0usize;
        match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::media_io("listing the media folder", e)),
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| Error::media_io("listing the media folder", e))?;
                    let path = entry.path();
                    let is_media = entry
                        .file_name()
                        .to_str()
                        .is_some_and(|n| validate_hash(n).is_ok());
                    if !is_media || !path.is_file() {
                        continue;
                    }
                    if !sealed::is_sealed(&path).map_err(|e| Error::media_io("reading a media file", e))? {
                        files::seal_in_place(key, &path, &tmp)?;
                        sealed_now += 1;
                    }
                }
            }
        }
        // Partial downloads from before are plain too: they start over, sealed on arrival.
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                files::remove_quietly(&entry.path());
            }
        }
        self.write(|tx, _| {
            tx.execute("UPDATE media_key SET plain_files_left = 0", [])?;
            Ok(())
        })?;
        if sealed_now > 0 {
            tracing::info!(
                files = sealed_now,
                "sealed the media files of a newly encrypted store"
            );
        }
        Ok(())
    }

    /// Removes what an import killed half-way left in the temporary folder of an encrypted
    /// store: audio and video are stripped and probed as a plain temporary file before they
    /// are sealed into place, so a kill in between leaves plaintext behind. Encrypted partial
    /// downloads stay (they resume). Run at every open of an encrypted store.
    pub(crate) fn sweep_plain_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(files::temp_dir(self.path())) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && !sealed::is_part(&path).unwrap_or(false) {
                files::remove_quietly(&path);
            }
        }
    }

    /// Files on this device that no server has yet, in upload order: thumbnails, previews,
    /// then originals (what others need first to see something), oldest first within each.
    pub fn media_awaiting_upload(&self) -> Result<Vec<LocalMedia>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM media WHERE present = 1 AND on_server = 0
                 ORDER BY CASE variant WHEN 'thumbnail' THEN 0 WHEN 'preview' THEN 1 ELSE 2 END,
                          created_ms, hash"
            ))?;
            let rows = stmt.query_map([], local_media)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// A file taken from another device to carry to the server (store-and-forward): this
    /// device uploads it like one it imported, and keeps it until a server has it.
    pub(crate) fn carry_media(&self, hash: &str) -> Result<()> {
        validate_hash(hash)?;
        self.write(|tx, _| {
            tx.execute(
                "UPDATE media SET imported = 1, on_server = 0 WHERE hash = ?1 AND imported = 0",
                [hash],
            )?;
            Ok(())
        })
    }

    /// Records that a server has the file: from now on it may be evicted.
    pub fn mark_media_on_server(&self, hash: &str) -> Result<()> {
        validate_hash(hash)?;
        self.update_flag("UPDATE media SET on_server = 1 WHERE hash = ?1", hash, None)
    }

    /// Records that the server holds the file for `space` (uploaded into it, or claimed there
    /// with bytes this person uploaded before): members of that space may fetch it now.
    pub fn mark_media_in_space(&self, hash: &str, space: &str) -> Result<()> {
        validate_hash(hash)?;
        self.write(|tx, _| {
            if tx.execute("UPDATE media SET on_server = 1 WHERE hash = ?1", [hash])? == 0 {
                return Err(not_found(hash));
            }
            tx.prepare_cached("INSERT OR IGNORE INTO media_spaces (hash, space_id) VALUES (?1, ?2)")?
                .execute([hash, space])?;
            Ok(())
        })
    }

    /// Files this device must still put on the server, each with the space it goes into: every
    /// file its person imported, for every space whose items use it and that does not have it
    /// yet (`uses`: (space, file or original hash) of every item that may leave the device, as
    /// [`crate::sync::TransferQueue`] plans them). A file no server has yet needs its bytes
    /// here; one already uploaded somewhere is claimed in a further space without them. In
    /// upload order: thumbnails, previews, then originals, oldest first within each.
    pub fn media_uploads_due<'a>(
        &self,
        uses: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Vec<(LocalMedia, String)>> {
        let mut spaces_of: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
        for (space, hash) in uses {
            let spaces = spaces_of.entry(hash).or_default();
            if !spaces.contains(&space) {
                spaces.push(space);
            }
        }
        self.read(|conn| {
            let mut done = std::collections::HashSet::new();
            let mut stmt = conn.prepare_cached("SELECT hash, space_id FROM media_spaces")?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                done.insert(row?);
            }
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM media WHERE imported = 1 AND (present = 1 OR on_server = 1)
                 ORDER BY CASE variant WHEN 'thumbnail' THEN 0 WHEN 'preview' THEN 1 ELSE 2 END,
                          created_ms, hash"
            ))?;
            let mut due = Vec::new();
            for media in stmt.query_map([], local_media)? {
                let media = media?;
                let spaces = spaces_of
                    .get(media.hash.as_str())
                    .or_else(|| media.of.as_deref().and_then(|of| spaces_of.get(of)));
                for space in spaces.into_iter().flatten() {
                    if !done.contains(&(media.hash.clone(), (*space).to_owned())) {
                        due.push((media.clone(), (*space).to_owned()));
                    }
                }
            }
            Ok(due)
        })
    }

    /// Pins a file on this device (never evicted) or releases it.
    pub fn set_media_pinned(&self, hash: &str, pinned: bool) -> Result<()> {
        validate_hash(hash)?;
        self.update_flag("UPDATE media SET pinned = ?2 WHERE hash = ?1", hash, Some(pinned))
    }

    fn update_flag(&self, sql: &str, hash: &str, value: Option<bool>) -> Result<()> {
        let changed = self.write(|tx, _| {
            Ok(match value {
                Some(v) => tx.execute(sql, params![hash, v])?,
                None => tx.execute(sql, [hash])?,
            })
        })?;
        if changed == 0 {
            return Err(not_found(hash));
        }
        Ok(())
    }

    /// A finished download: checks that `file` has the content `expected.hash` names (else
    /// [`Error::MediaHashMismatch`] and `file` is removed), moves it into the media folder and
    /// registers it as present and on the server. `file` should be in
    /// [`Store::media_temp_dir`], so that the move is a rename.
    pub fn adopt_downloaded_media(&self, file: &Path, expected: &LocalMedia) -> Result<LocalMedia> {
        validate_hash(&expected.hash)?;
        if let Some(of) = &expected.of {
            validate_hash(of)?;
        }
        // A download of an encrypted store arrives encrypted (`sealed::PartCipher`): its hash
        // is the hash of what it decrypts to.
        let encrypted_part = match self.media_key() {
            Some(_) => {
                sealed::is_part(file).map_err(|e| Error::media_io("reading a downloaded media file", e))?
            }
            None => false,
        };
        let (actual, size) = match (encrypted_part, self.media_key()) {
            (true, Some(key)) => {
                let (mut reader, _) = sealed::part_reader(key, file)?;
                let mut hasher = blake3::Hasher::new();
                let size = std::io::copy(&mut reader, &mut hasher)
                    .map_err(|e| Error::media_io("reading a downloaded media file", e))?;
                (hasher.finalize().to_hex().to_string(), size)
            }
            _ => files::hash_file(file)?,
        };
        if actual != expected.hash {
            files::remove_quietly(file);
            return Err(Error::MediaHashMismatch {
                expected: expected.hash.clone(),
                actual,
            });
        }
        let dir = self.media_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::media_io("creating the media folder", e))?;
        let tmp = files::temp_dir(self.path());
        let now = now_ms();
        let adopted = self.write(|tx, _| {
            match (encrypted_part, self.media_key()) {
                (true, Some(key)) => files::place_encrypted_part(file, &dir, &tmp, &expected.hash, key)?,
                (_, key) => files::place_external(file, &dir, &tmp, &expected.hash, key)?,
            };
            upsert(
                tx,
                &Upsert {
                    hash: &expected.hash,
                    mime_type: &expected.mime_type,
                    size,
                    variant: expected.variant,
                    of: expected.of.as_deref(),
                    width: None,
                    height: None,
                    duration_ms: None,
                    on_server: true,
                    imported: false,
                    pinned: expected.pinned,
                    now,
                },
            )?;
            select_one(tx, &expected.hash)?.ok_or_else(|| not_found(&expected.hash))
        })?;
        self.keep_budget(std::slice::from_ref(&expected.hash));
        Ok(adopted)
    }

    /// Sets the budget of media bytes kept on this device (persisted) and evicts down to it.
    pub fn set_media_budget(&self, bytes: i64) -> Result<()> {
        if bytes < 0 {
            return Err(Error::invalid("media budget", "bytes are never negative"));
        }
        let stored = bytes;
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO media_settings (id, budget_bytes) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET budget_bytes = excluded.budget_bytes",
                [stored],
            )?;
            Ok(())
        })?;
        self.keep_budget(&[]);
        Ok(())
    }

    /// The budget of media bytes kept on this device.
    pub fn media_budget(&self) -> Result<i64> {
        self.read(budget_of)
    }

    /// Removes media no item in the store references any more (deleted items, items of spaces
    /// this device left, imports never attached), once they have been neither created nor used
    /// for `grace`: the row and the file. Pinned files stay. References are read from every
    /// item that is not deleted (drafts and author-only items included) and from the content of
    /// every undelivered record; a reference this core cannot read keeps every hash-like string
    /// in it.
    pub fn collect_media_garbage(&self, grace: std::time::Duration) -> Result<MediaGcReport> {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(grace_ms);
        let dir = self.media_dir();
        self.write(|tx, _| {
            let mut referenced = std::collections::HashSet::new();
            {
                let mut stmt = tx.prepare(
                    "SELECT m.reference FROM item_media m JOIN items i ON i.id = m.item
                     WHERE i.status != 'deleted'",
                )?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                for json in rows {
                    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&json?) {
                        hashes_in(&value, &mut referenced);
                    }
                }
                // An undelivered record offers what the person wrote, to copy: its media
                // stays while the record does (a refused creation has no item any more).
                let mut stmt = tx.prepare("SELECT content FROM undelivered WHERE content IS NOT NULL")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                for json in rows {
                    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&json?) {
                        hashes_in(&value, &mut referenced);
                    }
                }
            }
            let candidates: Vec<(String, i64, bool)> = {
                let mut stmt = tx.prepare(
                    "SELECT hash, size, present FROM media
                     WHERE pinned = 0 AND created_ms <= ?1 AND last_access_ms <= ?1",
                )?;
                let rows = stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut report = MediaGcReport::default();
            for (hash, size, present) in candidates {
                if referenced.contains(&hash) {
                    continue;
                }
                tx.execute("DELETE FROM media WHERE hash = ?1", [&hash])?;
                if present {
                    files::remove_quietly(&dir.join(&hash));
                    report.freed_bytes += size.max(0);
                }
                report.removed.push(hash);
            }
            Ok(report)
        })
    }

    /// Evicts the least recently used files that a server has and that are not pinned, until
    /// the present media fit the budget. Originals no server has are never evicted.
    pub fn evict_media(&self) -> Result<EvictionReport> {
        self.evict_except(&[])
    }

    fn evict_except(&self, keep: &[String]) -> Result<EvictionReport> {
        let dir = self.media_dir();
        self.write(|tx, _| {
            let budget = budget_of(tx)?;
            let present: i64 = tx.query_row(
                "SELECT coalesce(sum(size), 0) FROM media WHERE present = 1",
                [],
                |r| r.get(0),
            )?;
            let mut report = EvictionReport {
                present_bytes: present.max(0),
                budget,
                ..EvictionReport::default()
            };
            if report.present_bytes <= budget {
                return Ok(report);
            }
            let candidates: Vec<(String, i64)> = {
                let mut stmt = tx.prepare(
                    "SELECT hash, size FROM media
                     WHERE present = 1 AND on_server = 1 AND pinned = 0
                     ORDER BY last_access_ms, hash",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (hash, size) in candidates {
                if report.present_bytes <= budget {
                    break;
                }
                if keep.contains(&hash) {
                    continue;
                }
                tx.execute("UPDATE media SET present = 0 WHERE hash = ?1", [&hash])?;
                files::remove_quietly(&dir.join(&hash));
                let size = size.max(0);
                report.present_bytes = report.present_bytes.saturating_sub(size);
                report.freed_bytes += size;
                report.evicted.push(hash);
            }
            Ok(report)
        })
    }
}

/// A row to insert, or to merge into an existing row for the same content.
struct Upsert<'a> {
    hash: &'a str,
    mime_type: &'a str,
    size: u64,
    variant: MediaVariant,
    of: Option<&'a str>,
    width: Option<u32>,
    height: Option<u32>,
    duration_ms: Option<u64>,
    on_server: bool,
    /// This device's person brought the file in (an import, not a download): uploading it
    /// into every space that uses it is this device's job.
    imported: bool,
    pinned: bool,
    now: i64,
}

/// Same content, same row: a second import or download of a known file makes it present
/// again and only ever adds facts (pinned, on the server, dimensions); it never unpins.
fn upsert(tx: &Transaction<'_>, row: &Upsert<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO media (hash, mime_type, size, variant, of_hash, width, height, duration_ms,
                            on_server, pinned, present, created_ms, last_access_ms, imported)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?11, ?12)
         ON CONFLICT (hash) DO UPDATE SET
            present = 1,
            size = excluded.size,
            on_server = max(on_server, excluded.on_server),
            imported = max(imported, excluded.imported),
            pinned = max(pinned, excluded.pinned),
            width = coalesce(width, excluded.width),
            height = coalesce(height, excluded.height),
            duration_ms = coalesce(duration_ms, excluded.duration_ms),
            last_access_ms = excluded.last_access_ms",
        params![
            row.hash,
            row.mime_type,
            i64::try_from(row.size).unwrap_or(i64::MAX),
            row.variant.as_str(),
            row.of,
            row.width,
            row.height,
            row.duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
            row.on_server,
            row.pinned,
            row.now,
            row.imported,
        ],
    )?;
    Ok(())
}

/// The media key of an encrypted store, made on its first open with a key, and whether media
/// files from before may still be plain (see [`Store::seal_plain_media`]).
pub(crate) fn load_or_create_key(conn: &rusqlite::Connection) -> Result<(sealed::MediaKey, bool)> {
    let row: Option<(Vec<u8>, bool)> = conn
        .query_row(
            "SELECT key, plain_files_left FROM media_key WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((bytes, plain_left)) = row {
        return Ok((sealed::MediaKey::from_slice(&bytes)?, plain_left));
    }
    let key = sealed::MediaKey::generate()?;
    conn.execute(
        "INSERT INTO media_key (id, key, plain_files_left) VALUES (1, ?1, 1)",
        [&key.as_bytes()[..]],
    )?;
    Ok((key, true))
}

/// Every string in `value` that is a media hash (64 lowercase hex digits).
fn hashes_in(value: &serde_json::Value, out: &mut std::collections::HashSet<String>) {
    match value {
        serde_json::Value::String(s) if validate_hash(s).is_ok() => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| hashes_in(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| hashes_in(v, out)),
        _ => {}
    }
}
