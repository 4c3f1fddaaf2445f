//! The default [`BlobStore`]: files under `<data>/blobs`. Touches only that folder.
//!
//! - `stored/ab/<hash>`: verified blobs (two-level fan-out keeps folders small);
//! - `partial/<hash>.<uploader>/<index>`: chunks of uploads under way, one folder per blob and
//!   uploader (folders named by a bare hash are from before schema version 4 and are removed
//!   on open: those uploads start over);
//! - `tmp/`: files being written; renamed into place only once complete and synced, so a crash
//!   never leaves a half-written chunk or blob under its final name.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use super::{BlobError, BlobStore};

pub struct FsBlobStore {
    root: PathBuf,
    /// Makes temporary names unique when the same chunk arrives twice at once.
    counter: AtomicU64,
}

impl FsBlobStore {
    /// Opens (creating) the store under `root`; clears leftovers of writes a crash interrupted.
    pub fn open(root: &Path) -> Result<FsBlobStore, BlobError> {
        for dir in ["stored", "partial", "tmp"] {
            fs::create_dir_all(root.join(dir))?;
        }
        if let Ok(entries) = fs::read_dir(root.join("tmp")) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        if let Ok(entries) = fs::read_dir(root.join("partial")) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name.to_str().is_some_and(quartier_protocol::blobs::is_blob_hash) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(FsBlobStore {
            root: root.to_path_buf(),
            counter: AtomicU64::new(0),
        })
    }

    /// Attaches to the store of a running server (`admin gc`): nothing is cleared, since the
    /// server may be writing in `tmp/` right now.
    pub fn attach(root: &Path) -> Result<FsBlobStore, BlobError> {
        if !root.join("stored").is_dir() {
            return Err(BlobError::Io(format!("{} holds no blob store", root.display())));
        }
        Ok(FsBlobStore {
            root: root.to_path_buf(),
            counter: AtomicU64::new(0),
        })
    }

    /// Callers validate hashes before they get here; this keeps a bad one out of paths anyway.
    fn checked(hash: &str) -> Result<&str, BlobError> {
        if quartier_protocol::blobs::is_blob_hash(hash) {
            Ok(hash)
        } else {
            Err(BlobError::InvalidHash)
        }
    }

    fn stored_path(&self, hash: &str) -> Result<PathBuf, BlobError> {
        let hash = Self::checked(hash)?;
        Ok(self.root.join("stored").join(&hash[..2]).join(hash))
    }

    fn partial_dir(&self, hash: &str, uploader: Uuid) -> Result<PathBuf, BlobError> {
        Ok(self
            .root
            .join("partial")
            .join(format!("{}.{}", Self::checked(hash)?, uploader.as_simple())))
    }

    fn temp_path(&self, what: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{what}.{}.{n}", std::process::id()))
    }
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl BlobStore for FsBlobStore {
    fn put_chunk(&self, hash: &str, uploader: Uuid, index: u32, bytes: &[u8]) -> Result<(), BlobError> {
        let dir = self.partial_dir(hash, uploader)?;
        fs::create_dir_all(&dir)?;
        let temp = self.temp_path(&format!("{hash}-{index}"));
        let written = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, dir.join(index.to_string()))?;
            sync_dir(&dir)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        Ok(written?)
    }

    fn assemble(&self, hash: &str, uploader: Uuid, count: u32, size: u64) -> Result<(), BlobError> {
        let target = self.stored_path(hash)?;
        // Stored before (by another upload, or a crash after the rename): the bytes are still
        // checked, since whoever sent them gains access by it, but not written again.
        let stored = target.exists();
        let dir = self.partial_dir(hash, uploader)?;
        let temp = self.temp_path(hash);
        let result = (|| -> Result<bool, BlobError> {
            let mut out = if stored { None } else { Some(File::create(&temp)?) };
            let mut hasher = blake3::Hasher::new();
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            for index in 0..count {
                let mut chunk = File::open(dir.join(index.to_string()))
                    .map_err(|e| BlobError::Io(format!("chunk {index} of {hash} is missing: {e}")))?;
                loop {
                    let n = chunk.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    if let Some(out) = out.as_mut() {
                        out.write_all(&buf[..n])?;
                    }
                    total += n as u64;
                }
            }
            if total != size || hasher.finalize().to_hex().as_str() != hash {
                return Ok(false);
            }
            if let Some(out) = out {
                out.sync_all()?;
            }
            Ok(true)
        })();
        match result {
            Ok(true) if stored => self.discard_partial(hash, uploader),
            Ok(true) => {
                let parent = target
                    .parent()
                    .ok_or_else(|| BlobError::Io("blob path has no folder".into()))?;
                fs::create_dir_all(parent)?;
                if let Err(e) = fs::rename(&temp, &target) {
                    let _ = fs::remove_file(&temp);
                    return Err(e.into());
                }
                sync_dir(parent)?;
                self.discard_partial(hash, uploader)
            }
            Ok(false) => {
                let _ = fs::remove_file(&temp);
                self.discard_partial(hash, uploader)?;
                Err(BlobError::HashMismatch)
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    fn discard_partial(&self, hash: &str, uploader: Uuid) -> Result<(), BlobError> {
        match fs::remove_dir_all(self.partial_dir(hash, uploader)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn partial_uploads(&self) -> Result<Vec<(String, Uuid)>, BlobError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("partial"))? {
            let name = entry?.file_name();
            let Some((hash, uploader)) = name.to_str().and_then(|n| n.split_once('.')) else {
                continue;
            };
            if let (true, Ok(uploader)) = (
                quartier_protocol::blobs::is_blob_hash(hash),
                Uuid::parse_str(uploader),
            ) {
                out.push((hash.to_owned(), uploader));
            }
        }
        Ok(out)
    }

    fn open_range(&self, hash: &str, start: u64, end: u64) -> Result<Box<dyn Read + Send>, BlobError> {
        let mut file = match File::open(self.stored_path(hash)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            other => other?,
        };
        file.seek(SeekFrom::Start(start))?;
        Ok(Box::new(file.take(end.saturating_sub(start))))
    }

    fn exists(&self, hash: &str) -> Result<bool, BlobError> {
        Ok(self.stored_path(hash)?.is_file())
    }

    fn delete(&self, hash: &str) -> Result<(), BlobError> {
        match fs::remove_file(self.stored_path(hash)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(bytes: &[u8]) -> String {
        blake3::hash(bytes).to_hex().to_string()
    }

    #[test]
    fn chunks_assemble_into_a_verified_blob_and_ranges_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..2500u32).map(|i| (i * 7) as u8).collect();
        let hash = hash_of(&data);
        let me = Uuid::new_v4();
        for (i, chunk) in data.chunks(1000).enumerate().rev() {
            store.put_chunk(&hash, me, i as u32, chunk).unwrap();
        }
        store.put_chunk(&hash, me, 1, &data[1000..2000]).unwrap();
        store.assemble(&hash, me, 3, 2500).unwrap();
        assert!(store.exists(&hash).unwrap());
        let mut out = Vec::new();
        store
            .open_range(&hash, 900, 2100)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, &data[900..2100]);
        assert!(!store.partial_dir(&hash, me).unwrap().exists());
    }

    #[test]
    fn a_second_upload_of_a_stored_blob_is_checked_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let data = b"the genuine content".to_vec();
        let hash = hash_of(&data);
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        store.put_chunk(&hash, first, 0, &data).unwrap();
        store.assemble(&hash, first, 1, data.len() as u64).unwrap();
        store
            .put_chunk(&hash, second, 0, b"not the genuine bytes")
            .unwrap();
        assert!(matches!(
            store.assemble(&hash, second, 1, 21),
            Err(BlobError::HashMismatch)
        ));
        store.put_chunk(&hash, second, 0, &data).unwrap();
        store.assemble(&hash, second, 1, data.len() as u64).unwrap();
        let mut out = Vec::new();
        store
            .open_range(&hash, 0, data.len() as u64)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert!(!store.partial_dir(&hash, second).unwrap().exists());
    }

    #[test]
    fn a_mismatch_discards_the_chunks_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let hash = hash_of(b"what was announced");
        let me = Uuid::new_v4();
        store.put_chunk(&hash, me, 0, b"something else entirely").unwrap();
        assert!(matches!(
            store.assemble(&hash, me, 1, 23),
            Err(BlobError::HashMismatch)
        ));
        assert!(!store.exists(&hash).unwrap());
        assert!(!store.partial_dir(&hash, me).unwrap().exists());
    }

    #[test]
    fn paths_never_come_from_unchecked_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        assert!(matches!(
            store.put_chunk("../../x", Uuid::new_v4(), 0, b""),
            Err(BlobError::InvalidHash)
        ));
    }
}
