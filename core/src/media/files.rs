//! The media folder next to the database: `<db>.media/<hash>` holds content, `<db>.media/tmp/`
//! files being written or downloaded. Files are written atomically: temporary file, fsync,
//! rename into place, fsync of the folder, so a crash leaves either the whole file or none.
//! Touches the file system only.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::sealed::{self, MediaKey};
use crate::error::{Error, Result};

/// The folder of media files of the store at `db`.
pub(crate) fn media_dir(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".media");
    PathBuf::from(name)
}

/// The folder for files not yet in place; inside the media folder, hence on its file system,
/// so that a rename moves a finished file in.
pub(crate) fn temp_dir(db: &Path) -> PathBuf {
    media_dir(db).join("tmp")
}

/// A fully written and synced file in the temporary folder, with its BLAKE3 hash and size.
/// Removed when dropped unless it was placed.
pub(crate) struct Staged {
    file: NamedTempFile,
    pub hash: String,
    /// Bytes of the plaintext.
    pub size: u64,
    /// The file already holds the sealed form (`stage_sealed_bytes`): placed as it is.
    sealed: bool,
}

impl Staged {
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Hashes and syncs the file again after it was changed in place (metadata removal).
    pub fn rehash(mut self) -> Result<Staged> {
        let (hash, size) = hash_file(self.path())?;
        self.file
            .as_file()
            .sync_all()
            .map_err(|e| Error::media_io("syncing a media file", e))?;
        self.hash = hash;
        self.size = size;
        Ok(self)
    }

    /// Moves the file to `<dir>/<hash>` — sealed with `key` when the store is encrypted (the
    /// plain temporary file is then removed). Returns whether it was newly placed: `false` when
    /// the same content was already there (then the temporary copy is dropped).
    pub fn place(self, dir: &Path, key: Option<&MediaKey>) -> Result<bool> {
        let target = dir.join(&self.hash);
        if target.exists() {
            return Ok(false);
        }
        match key {
            _ if self.sealed => {
                self.file
                    .persist(&target)
                    .map_err(|e| Error::media_io("moving a media file into place", e.error))?;
            }
            None => {
                self.file
                    .persist(&target)
                    .map_err(|e| Error::media_io("moving a media file into place", e.error))?;
            }
            Some(key) => {
                let tmp = self.file.path().parent().unwrap_or(dir).to_path_buf();
                let sealed = seal_to_temp(key, self.file.path(), &tmp)?;
                sealed
                    .persist(&target)
                    .map_err(|e| Error::media_io("moving a media file into place", e.error))?;
            }
        }
        sync_dir(dir)?;
        Ok(true)
    }
}

/// Writes `bytes` to a new synced temporary file in `tmp`.
pub(crate) fn stage_bytes(tmp: &Path, bytes: &[u8]) -> Result<Staged> {
    stage_reader(tmp, bytes, u64::MAX)
}

/// Copies `reader` to a new synced temporary file in `tmp`, hashing on the way; more than
/// `limit` bytes is [`Error::MediaTooLarge`] and leaves nothing behind.
pub(crate) fn stage_reader(tmp: &Path, reader: impl Read, limit: u64) -> Result<Staged> {
    fs::create_dir_all(tmp).map_err(|e| Error::media_io("creating the media folder", e))?;
    let mut file =
        NamedTempFile::new_in(tmp).map_err(|e| Error::media_io("creating a temporary media file", e))?;
    let mut hasher = blake3::Hasher::new();
    let mut limited = reader.take(limit.saturating_add(1));
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = match limited.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::media_io("reading the media to import", e)),
        };
        size += n as u64;
        if size > limit {
            return Err(too_large(size, limit));
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n])
            .map_err(|e| Error::media_io("writing a media file", e))?;
    }
    file.as_file()
        .sync_all()
        .map_err(|e| Error::media_io("syncing a media file", e))?;
    Ok(Staged {
        file,
        hash: hasher.finalize().to_hex().to_string(),
        size,
        sealed: false,
    })
}

/// Seals `bytes` (already in memory: an encoded image) straight into a new synced temporary file
/// in `tmp`, so that their plaintext never reaches the disk, not even in the temporary folder.
pub(crate) fn stage_sealed_bytes(tmp: &Path, bytes: &[u8], key: &MediaKey) -> Result<Staged> {
    fs::create_dir_all(tmp).map_err(|e| Error::media_io("creating the media folder", e))?;
    let file =
        NamedTempFile::new_in(tmp).map_err(|e| Error::media_io("creating a temporary media file", e))?;
    let mut writer = io::BufWriter::new(file.as_file());
    sealed::seal(key, bytes, bytes.len() as u64, &mut writer)?;
    writer
        .flush()
        .map_err(|e| Error::media_io("writing a sealed media file", e))?;
    drop(writer);
    file.as_file()
        .sync_all()
        .map_err(|e| Error::media_io("syncing a media file", e))?;
    Ok(Staged {
        file,
        hash: blake3::hash(bytes).to_hex().to_string(),
        size: bytes.len() as u64,
        sealed: true,
    })
}

/// Moves a file that was written elsewhere (a finished download) to `<dir>/<hash>`, after
/// syncing it. Copies when a rename is impossible (another file system). Returns whether it
/// was newly placed; an already present copy wins and `file` is removed.
pub(crate) fn place_external(
    file: &Path,
    dir: &Path,
    tmp: &Path,
    hash: &str,
    key: Option<&MediaKey>,
) -> Result<bool> {
    let target = dir.join(hash);
    if target.exists() {
        remove_quietly(file);
        return Ok(false);
    }
    if let Some(key) = key {
        // Sealed into a new file; the plain download is removed once the sealed copy is placed.
        let sealed = seal_to_temp(key, file, tmp)?;
        sealed
            .persist(&target)
            .map_err(|e| Error::media_io("moving a media file into place", e.error))?;
        sync_dir(dir)?;
        remove_quietly(file);
        return Ok(true);
    }
    File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::media_io("syncing a downloaded media file", e))?;
    match fs::rename(file, &target) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(_) => {
            let source =
                File::open(file).map_err(|e| Error::media_io("opening a downloaded media file", e))?;
            let staged = stage_reader(tmp, source, u64::MAX)?;
            let placed = staged.place(dir, None)?;
            remove_quietly(file);
            Ok(placed)
        }
    }
}

/// Moves a finished encrypted download (`sealed::PartCipher`) to `<dir>/<hash>`, sealed: its
/// decrypted bytes are sealed into a new temporary file, placed, and the download removed.
pub(crate) fn place_encrypted_part(
    file: &Path,
    dir: &Path,
    tmp: &Path,
    hash: &str,
    key: &MediaKey,
) -> Result<bool> {
    let target = dir.join(hash);
    if target.exists() {
        remove_quietly(file);
        return Ok(false);
    }
    fs::create_dir_all(tmp).map_err(|e| Error::media_io("creating the media folder", e))?;
    let (plain, len) = sealed::part_reader(key, file)?;
    let out =
        NamedTempFile::new_in(tmp).map_err(|e| Error::media_io("creating a temporary media file", e))?;
    let mut writer = io::BufWriter::new(out.as_file());
    sealed::seal(key, plain, len, &mut writer)?;
    writer
        .flush()
        .map_err(|e| Error::media_io("writing a sealed media file", e))?;
    drop(writer);
    out.as_file()
        .sync_all()
        .map_err(|e| Error::media_io("syncing a media file", e))?;
    out.persist(&target)
        .map_err(|e| Error::media_io("moving a media file into place", e.error))?;
    sync_dir(dir)?;
    remove_quietly(file);
    Ok(true)
}

/// Seals the plain file at `plain` into a new synced temporary file in `tmp`.
pub(crate) fn seal_to_temp(key: &MediaKey, plain: &Path, tmp: &Path) -> Result<NamedTempFile> {
    fs::create_dir_all(tmp).map_err(|e| Error::media_io("creating the media folder", e))?;
    let source = File::open(plain).map_err(|e| Error::media_io("opening a media file to seal", e))?;
    let len = source
        .metadata()
        .map_err(|e| Error::media_io("reading the size of a media file", e))?
        .len();
    let out =
        NamedTempFile::new_in(tmp).map_err(|e| Error::media_io("creating a temporary media file", e))?;
    let mut writer = io::BufWriter::new(out.as_file());
    sealed::seal(key, io::BufReader::new(source), len, &mut writer)?;
    writer
        .flush()
        .map_err(|e| Error::media_io("writing a sealed media file", e))?;
    drop(writer);
    out.as_file()
        .sync_all()
        .map_err(|e| Error::media_io("syncing a media file", e))?;
    Ok(out)
}

/// Seals a plain file already in place at `<dir>/<name>` (written before the store was
/// encrypted): sealed copy in `tmp`, synced, renamed over it. A kill leaves the plain file or
/// the sealed one, never half of either.
pub(crate) fn seal_in_place(key: &MediaKey, path: &Path, tmp: &Path) -> Result<()> {
    let sealed = seal_to_temp(key, path, tmp)?;
    sealed
        .persist(path)
        .map_err(|e| Error::media_io("moving a sealed media file into place", e.error))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// BLAKE3 hash (hex) and size of a file, streamed.
pub(crate) fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).map_err(|e| Error::media_io("opening a downloaded media file", e))?;
    let mut hasher = blake3::Hasher::new();
    let size = io::copy(&mut file, &mut hasher).map_err(|e| Error::media_io("reading a media file", e))?;
    Ok((hasher.finalize().to_hex().to_string(), size))
}

/// Removes a file; a missing file is fine, other failures are logged (the row already says
/// the bytes are gone, so the worst case is a stray file).
pub(crate) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a media file");
        }
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::media_io("syncing the media folder", e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

pub(crate) fn too_large(size: u64, limit: u64) -> Error {
    Error::MediaTooLarge {
        reason: format!("more than {limit} bytes (read {size}), the import limit"),
    }
}
