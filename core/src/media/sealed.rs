//! Media files sealed at rest: the body of every media file of an encrypted store is written
//! with XChaCha20-Poly1305 (`docs/store.md`, "Encryption at rest").
//!
//! The file is still named by the BLAKE3 hash of its *plaintext*, so deduplication, sync and the
//! server's blobs are unchanged; only the bytes on this device differ. Format:
//!
//! ```text
//! header   "QRTRMED1" (8 bytes) ‖ nonce prefix (16 random bytes, one per file)
//! segments ciphertext of 64 KiB of plaintext ‖ 16-byte tag, … , the last one shorter
//! ```
//!
//! Segment `i` is sealed under the nonce `prefix ‖ i as u64 big-endian` with the header and a
//! flag byte (1 on the last segment, else 0) as associated data — the STREAM construction: a
//! segment cannot be moved, dropped, or the file cut at a segment boundary without the read
//! failing. Segments let an upload read one chunk and a player seek without decrypting (or
//! holding) the whole file. An empty file is one empty last segment.
//!
//! The key is the store's media key: 32 random bytes kept inside the encrypted database
//! (`media_key`, migration 017), so a rekey of the database never has to rewrite media. Files
//! written before the store was encrypted are recognised by the missing header and sealed by
//! [`crate::Store`] on open (`Store::seal_plain_media`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// First bytes of a sealed file (format version 1).
const MAGIC: &[u8; 8] = b"QRTRMED1";
const PREFIX_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + PREFIX_LEN;
/// Plaintext bytes per segment.
const SEGMENT: usize = 64 * 1024;
const TAG_LEN: usize = 16;

/// The key media files of one store are sealed with; wiped when dropped.
#[derive(Clone)]
pub(crate) struct MediaKey([u8; 32]);

impl MediaKey {
    pub fn from_slice(bytes: &[u8]) -> Result<MediaKey> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Corrupt(format!("the stored media key has {} bytes, not 32", bytes.len())))?;
        Ok(MediaKey(array))
    }

    pub fn generate() -> Result<MediaKey> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::MediaIo {
            op: "making the media key",
            reason: e.to_string(),
        })?;
        Ok(MediaKey(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

impl Drop for MediaKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKey(…)")
    }
}

fn nonce(prefix: &[u8], index: u64) -> XNonce {
    let mut bytes = [0u8; 24];
    bytes[..PREFIX_LEN].copy_from_slice(prefix);
    bytes[PREFIX_LEN..].copy_from_slice(&index.to_be_bytes());
    XNonce::from(bytes)
}

fn aad(header: &[u8], last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + 1);
    aad.extend_from_slice(header);
    aad.push(u8::from(last));
    aad
}

/// Segments of a plaintext of `len` bytes (at least one, the last one possibly empty).
fn segments(len: u64) -> u64 {
    len.div_ceil(SEGMENT as u64).max(1)
}

/// Bytes of the sealed form of `len` plaintext bytes.
pub(crate) fn sealed_len(len: u64) -> u64 {
    HEADER_LEN as u64 + len + segments(len) * TAG_LEN as u64
}

/// Plaintext bytes of a sealed file of `len` bytes; `None` when no plaintext length seals to it.
fn plain_len(len: u64) -> Option<u64> {
    let body = len.checked_sub(HEADER_LEN as u64)?;
    let whole = (SEGMENT + TAG_LEN) as u64;
    let count = body.div_ceil(whole).max(1);
    let plain = body.checked_sub(count * TAG_LEN as u64)?;
    (sealed_len(plain) == len).then_some(plain)
}

/// Whether the file at `path` is sealed (starts with the header's magic).
pub(crate) fn is_sealed(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; MAGIC.len()];
    let mut file = File::open(path)?;
    match file.read_exact(&mut head) {
        Ok(()) => Ok(&head == MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn unreadable(reason: impl Into<String>) -> Error {
    Error::MediaIo {
        op: "decrypting a media file",
        reason: reason.into(),
    }
}

/// Seals the `len` bytes of `plain` into `out` (a new file; the caller syncs and places it).
pub(crate) fn seal(key: &MediaKey, mut plain: impl Read, len: u64, mut out: impl Write) -> Result<()> {
    let write_err = |e| Error::media_io("writing a sealed media file", e);
    let mut header = [0u8; HEADER_LEN];
    header[..MAGIC.len()].copy_from_slice(MAGIC);
    getrandom::fill(&mut header[MAGIC.len()..]).map_err(|e| Error::MediaIo {
        op: "sealing a media file",
        reason: e.to_string(),
    })?;
    out.write_all(&header).map_err(write_err)?;
    let cipher = key.cipher();
    let count = segments(len);
    let mut buffer = vec![0u8; SEGMENT];
    let mut left = len;
    for index in 0..count {
        let take = usize::try_from(left.min(SEGMENT as u64)).unwrap_or(SEGMENT);
        plain
            .read_exact(&mut buffer[..take])
            .map_err(|e| Error::media_io("reading a media file to seal", e))?;
        left -= take as u64;
        let last = index + 1 == count;
        let sealed = cipher
            .encrypt(
                &nonce(&header[MAGIC.len()..], index),
                Payload {
                    msg: &buffer[..take],
                    aad: &aad(&header, last),
                },
            )
            .map_err(|_| Error::MediaIo {
                op: "sealing a media file",
                reason: "the cipher refused the segment".into(),
            })?;
        out.write_all(&sealed).map_err(write_err)?;
    }
    buffer.zeroize();
    Ok(())
}

/// The plaintext bytes `start..end` of the sealed file at `path` (clamped to its length),
/// decrypting only the segments they fall in.
pub(crate) fn read_range(key: &MediaKey, path: &Path, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| Error::media_io("opening a media file", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::media_io("reading the size of a media file", e))?
        .len();
    let plain = plain_len(len).ok_or_else(|| unreadable("the file's length is not a sealed length"))?;
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header)
        .map_err(|e| Error::media_io("reading a media file", e))?;
    if &header[..MAGIC.len()] != MAGIC {
        return Err(unreadable("the file is not sealed"));
    }
    let end = end.min(plain);
    let count = segments(plain);
    let mut out = Vec::with_capacity(usize::try_from(end.saturating_sub(start)).unwrap_or(0));
    if start >= end && !(start == 0 && end == 0) {
        return Ok(out);
    }
    let cipher = key.cipher();
    let first = start / SEGMENT as u64;
    let last_wanted = if end == 0 { 0 } else { (end - 1) / SEGMENT as u64 };
    let whole = (SEGMENT + TAG_LEN) as u64;
    file.seek(SeekFrom::Start(HEADER_LEN as u64 + first * whole))
        .map_err(|e| Error::media_io("reading a media file", e))?;
    let mut buffer = vec![0u8; SEGMENT + TAG_LEN];
    for index in first..=last_wanted.min(count - 1) {
        let segment_plain = if index + 1 == count {
            plain - index * SEGMENT as u64
        } else {
            SEGMENT as u64
        };
        let size = usize::try_from(segment_plain).unwrap_or(SEGMENT) + TAG_LEN;
        file.read_exact(&mut buffer[..size])
            .map_err(|e| Error::media_io("reading a media file", e))?;
        let mut opened = cipher
            .decrypt(
                &nonce(&header[MAGIC.len()..], index),
                Payload {
                    msg: &buffer[..size],
                    aad: &aad(&header, index + 1 == count),
                },
            )
            .map_err(|_| unreadable("a segment does not authenticate (damaged, or another key)"))?;
        let base = index * SEGMENT as u64;
        let from = usize::try_from(start.saturating_sub(base)).unwrap_or(0);
        let to = usize::try_from((end - base).min(segment_plain)).unwrap_or(0);
        out.extend_from_slice(&opened[from.min(to)..to]);
        opened.zeroize();
    }
    Ok(out)
}

/// The whole plaintext of the sealed file at `path`.
#[cfg(test)]
fn read_all(key: &MediaKey, path: &Path) -> Result<Vec<u8>> {
    read_range(key, path, 0, u64::MAX)
}

/// First bytes of a download in progress of an encrypted store (`<hash>.part`).
const PART_MAGIC: &[u8; 8] = b"QRTRPRT1";
const PART_HEADER_LEN: usize = PART_MAGIC.len() + 24;

/// A download in progress of an encrypted store, encrypted as its pieces arrive: XChaCha20 under
/// a key derived from the media key and a random nonce in the file's header, each piece at its
/// offset (the cipher seeks), so a cut keeps every byte that came and the download resumes at
/// the byte where it stopped. No tag: the download is authenticated as a whole by its BLAKE3
/// hash when it is complete (`Store::adopt_downloaded_media`), before it is sealed into place.
/// A piece written again at the same offset after a crash is the same bytes of the same
/// content-addressed file, so a keystream is never used for two plaintexts.
pub(crate) struct PartCipher {
    cipher: chacha20::XChaCha20,
}

impl PartCipher {
    fn new(key: &MediaKey, nonce: &[u8; 24]) -> PartCipher {
        use chacha20::cipher::KeyIvInit;
        let part_key = Zeroizing::new(blake3::derive_key("quartier media part v1", key.as_bytes()));
        PartCipher {
            cipher: chacha20::XChaCha20::new(&(*part_key).into(), &(*nonce).into()),
        }
    }

    /// Encrypts (or decrypts) `bytes` found at plaintext offset `offset`.
    pub fn apply_at(&mut self, offset: u64, bytes: &mut [u8]) {
        use chacha20::cipher::{StreamCipher, StreamCipherSeek};
        self.cipher.seek(offset);
        self.cipher.apply_keystream(bytes);
    }

    /// Opens the partial download at `path` (appending), starting it (a new header) when it is
    /// missing, empty or not one of ours; returns the file, its cipher and the plaintext bytes
    /// it holds.
    pub fn open(key: &MediaKey, path: &Path) -> Result<(File, PartCipher, u64)> {
        let io = |e| Error::media_io("opening a partial download", e);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut header = [0u8; PART_HEADER_LEN];
        if len >= PART_HEADER_LEN as u64 && file.read_exact(&mut header).is_ok() && &header[..8] == PART_MAGIC
        {
            let mut nonce = [0u8; 24];
            nonce.copy_from_slice(&header[8..]);
            return Ok((file, PartCipher::new(key, &nonce), len - PART_HEADER_LEN as u64));
        }
        let cipher = PartCipher::start(key, &mut file)?;
        Ok((file, cipher, 0))
    }

    /// Empties `file` and writes a new header with a fresh nonce (a reset download must not
    /// reuse the keystream for other bytes); returns its cipher.
    pub fn start(key: &MediaKey, file: &mut File) -> Result<PartCipher> {
        let io = |e| Error::media_io("resetting a partial download", e);
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| Error::MediaIo {
            op: "starting a partial download",
            reason: e.to_string(),
        })?;
        file.set_len(0).map_err(io)?;
        file.write_all(PART_MAGIC).map_err(io)?;
        file.write_all(&nonce).map_err(io)?;
        Ok(PartCipher::new(key, &nonce))
    }
}

impl std::fmt::Debug for PartCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartCipher(…)")
    }
}

/// Whether the file at `path` is an encrypted partial download.
pub(crate) fn is_part(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; PART_MAGIC.len()];
    let mut file = File::open(path)?;
    match file.read_exact(&mut head) {
        Ok(()) => Ok(&head == PART_MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The plaintext of an encrypted partial download, as a reader, and its length.
pub(crate) fn part_reader(key: &MediaKey, path: &Path) -> Result<(impl Read, u64)> {
    let io_err = |e| Error::media_io("reading a downloaded media file", e);
    let mut file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let mut header = [0u8; PART_HEADER_LEN];
    file.read_exact(&mut header).map_err(io_err)?;
    if &header[..8] != PART_MAGIC {
        return Err(unreadable("not an encrypted partial download"));
    }
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&header[8..]);
    let reader = PartReader {
        file: io::BufReader::new(file),
        cipher: PartCipher::new(key, &nonce),
        offset: 0,
    };
    Ok((reader, len.saturating_sub(PART_HEADER_LEN as u64)))
}

struct PartReader {
    file: io::BufReader<File>,
    cipher: PartCipher,
    offset: u64,
}

impl Read for PartReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.cipher.apply_at(self.offset, &mut buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(key: &MediaKey, plain: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp");
        seal(key, plain, plain.len() as u64, file.as_file_mut()).expect("seal");
        file
    }

    #[test]
    fn ranges_of_every_length_read_back_what_was_sealed() {
        let key = MediaKey::generate().expect("key");
        for len in [0usize, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let file = sealed(&key, &plain);
            let size = std::fs::metadata(file.path()).expect("meta").len();
            assert_eq!(size, sealed_len(len as u64), "length of {len}");
            assert_eq!(plain_len(size), Some(len as u64));
            assert!(is_sealed(file.path()).expect("sealed"));
            assert_eq!(read_all(&key, file.path()).expect("read"), plain, "{len}");
            for (start, end) in [(0, 1), (SEGMENT - 2, SEGMENT + 3), (len / 2, len), (5, 5)] {
                let (start, end) = (start.min(len), end.min(len));
                let got = read_range(&key, file.path(), start as u64, end as u64).expect("range");
                assert_eq!(got, plain[start..end.max(start)], "{len}: {start}..{end}");
            }
        }
    }

    #[test]
    fn another_key_a_flipped_bit_or_a_cut_file_is_refused() {
        let key = MediaKey::generate().expect("key");
        let plain = vec![7u8; 2 * SEGMENT + 5];
        let file = sealed(&key, &plain);
        let other = MediaKey::generate().expect("key");
        assert!(read_all(&other, file.path()).is_err());
        let bytes = std::fs::read(file.path()).expect("read");
        let mut flipped = bytes.clone();
        flipped[HEADER_LEN + 3] ^= 1;
        std::fs::write(file.path(), &flipped).expect("write");
        assert!(read_all(&key, file.path()).is_err());
        // Cut after the first two whole segments: the second is not marked last.
        let cut = &bytes[..HEADER_LEN + 2 * (SEGMENT + TAG_LEN)];
        std::fs::write(file.path(), cut).expect("write");
        assert!(read_all(&key, file.path()).is_err());
    }
}
