//! The store key: encryption at rest of the whole store with SQLCipher (`docs/store.md`,
//! "Encryption at rest").
//!
//! The app holds a random 32-byte key in the platform's key store (Android Keystore, iOS
//! Keychain) and hands its raw bytes to [`Store::open`](super::Store::open). SQLCipher takes it
//! in its raw-key form (`PRAGMA key = "x'<64 hex digits>'"`), so no passphrase derivation runs
//! on every open: the key already has full entropy. The hex form exists only in buffers that
//! are wiped when dropped, and never goes into a log line or an error message.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// The first 16 bytes of every plain SQLite database file. An encrypted file starts with its
/// random salt instead, so this tells a plain store from an encrypted one without a key.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The raw 32-byte key of an encrypted store. Its bytes are wiped when it is dropped and its
/// `Debug` form shows nothing of them, so a logged `StoreOptions` cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; StoreKey::LEN]);

impl StoreKey {
    /// Bytes of a store key.
    pub const LEN: usize = 32;

    /// A key from its raw bytes.
    pub fn new(bytes: [u8; StoreKey::LEN]) -> StoreKey {
        StoreKey(bytes)
    }

    /// A key from the bytes the app's key store returned: exactly 32 of them
    /// ([`Error::Invalid`] otherwise, naming only the length).
    pub fn from_slice(bytes: &[u8]) -> Result<StoreKey> {
        let array: [u8; StoreKey::LEN] = bytes.try_into().map_err(|_| {
            Error::invalid(
                "store key",
                format!("must be {} bytes, got {}", StoreKey::LEN, bytes.len()),
            )
        })?;
        Ok(StoreKey(array))
    }

    /// A key from bytes handed over in a buffer of their own (the FFI's): the buffer is wiped
    /// whatever the outcome, so the key's only copy is this one.
    pub fn from_vec(mut bytes: Vec<u8>) -> Result<StoreKey> {
        let key = StoreKey::from_slice(&bytes);
        bytes.zeroize();
        key
    }

    /// A new random key, for apps and tests that create one on first run.
    pub fn generate() -> Result<StoreKey> {
        let mut bytes = [0u8; StoreKey::LEN];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::invalid("store key", format!("no randomness available: {e}")))?;
        Ok(StoreKey(bytes))
    }

    /// SQLCipher's raw-key literal `x'<hex>'`, as `PRAGMA key`, `PRAGMA rekey` and
    /// `ATTACH … KEY` take it; wiped when dropped.
    pub(crate) fn sqlcipher_literal(&self) -> Zeroizing<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = Zeroizing::new(String::with_capacity(3 + 2 * StoreKey::LEN));
        text.push_str("x'");
        for byte in &self.0 {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        text.push('\'');
        text
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(…)")
    }
}

/// Gives a fresh connection its key: the very first statement on it, as SQLCipher requires
/// (a statement that reads the file before the key would read it as plain SQLite). Without a
/// key the connection stays plain SQLite. Then checks the key by reading the schema: a wrong key
/// is [`Error::WrongStoreKey`] here, before anything reads or writes the store.
pub(crate) fn apply(conn: &Connection, key: Option<&StoreKey>) -> Result<()> {
    let Some(key) = key else {
        return Ok(());
    };
    set_key(conn, key)?;
    verify(conn, true)
}

/// `PRAGMA key` with the raw key, and nothing else (the key is not checked yet).
pub(crate) fn set_key(conn: &Connection, key: &StoreKey) -> Result<()> {
    let literal = key.sqlcipher_literal();
    let mut statement = Zeroizing::new(String::with_capacity(literal.len() + 16));
    statement.push_str("PRAGMA key = \"");
    statement.push_str(&literal);
    statement.push_str("\";");
    // Its error never carries SQLite's message, which could quote the statement.
    conn.execute_batch(&statement)
        .map_err(|e| Error::from(without_sql(e)))
}

/// Reads the schema to find out whether the connection can read the file: SQLCipher answers
/// "file is not a database" when the key does not decrypt the first page.
pub(crate) fn verify(conn: &Connection, key_given: bool) -> Result<()> {
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(e) if is_not_a_database(&e) => Err(Error::WrongStoreKey { key_given }),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn is_not_a_database(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ffi::ErrorCode::NotADatabase)
}

/// An error of a statement that carries the key, with SQLite's code kept (a full disk stays a
/// full disk) and its message replaced: a message such as `near "…": syntax error` quotes the
/// statement, and so could quote the key.
fn without_sql(error: rusqlite::Error) -> rusqlite::Error {
    let code = match &error {
        rusqlite::Error::SqliteFailure(code, _) => *code,
        _ => rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
    };
    rusqlite::Error::SqliteFailure(code, Some("a statement with the store key failed".into()))
}

/// What the first bytes of an existing, non-empty store file say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// Starts with SQLite's plain header.
    Plain,
    /// Anything else: an encrypted store, or not a database at all (the two look alike: an
    /// encrypted file is indistinguishable from random bytes, which is its purpose).
    Opaque,
}

pub(crate) fn file_kind(path: &Path) -> std::io::Result<FileKind> {
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(if read == head.len() && &head == SQLITE_HEADER {
        FileKind::Plain
    } else {
        FileKind::Opaque
    })
}

/// Whether an opaque file could be an encrypted store: SQLCipher writes whole pages (512 bytes
/// at the least), so a file of another length is damaged or not a store at all.
pub(crate) fn could_be_encrypted(len: u64) -> bool {
    len >= 512 && len.is_multiple_of(512)
}

/// `<path><suffix>`, beside the store.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The file an encryption of a plain store is written to before it replaces the store.
pub(crate) fn encrypting_path(path: &Path) -> PathBuf {
    sibling(path, ".encrypting")
}

/// Removes what an encryption cut short (the app killed during it) left beside the store: its
/// half-written copy and that copy's journal. The store itself was not touched by it yet.
pub(crate) fn remove_interrupted_encryption(path: &Path) -> Result<()> {
    let target = encrypting_path(path);
    for file in [
        sibling(&target, "-journal"),
        sibling(&target, "-wal"),
        sibling(&target, "-shm"),
        target.clone(),
    ] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("removing an interrupted encryption", e)),
        }
    }
    Ok(())
}

/// Encrypts the plain store at `path` with `key`, so that a kill at any moment leaves either the
/// old plain store or the new encrypted one, each whole:
///
/// 1. the plain store leaves WAL mode (`journal_mode=DELETE`), which folds its WAL into the
///    file and removes `-wal` and `-shm`: from here the file alone is the whole store, and no
///    plain WAL can be left to be replayed into the encrypted file;
/// 2. `sqlcipher_export` copies everything into `<path>.encrypting` (attached with the key),
///    with its `user_version` and `application_id`; the copy is synced;
/// 3. the copy is renamed over the store (atomic) and the folder synced.
///
/// A kill before 3 leaves the plain store and a stray copy, removed by the next open, which
/// starts over. The caller has looked at the file ([`super::migrations::inspect`]) and found a
/// Quartier store this core can open.
pub(crate) fn encrypt_plain_store(path: &Path, key: &StoreKey) -> Result<()> {
    remove_interrupted_encryption(path)?;
    let target = encrypting_path(path);
    let target_text = target
        .to_str()
        .ok_or_else(|| Error::invalid("store path", "must be valid UTF-8 to be encrypted"))?;
    {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(Error::Corrupt(format!(
                "the plain store could not leave {mode} mode to be encrypted; it was not changed"
            )));
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let application: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let literal = key.sqlcipher_literal();
        conn.execute(
            "ATTACH DATABASE ?1 AS encrypted KEY ?2",
            rusqlite::params![target_text, literal.as_str()],
        )
        .map_err(without_sql)?;
        conn.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
        conn.pragma_update(Some("encrypted"), "user_version", version)?;
        conn.pragma_update(Some("encrypted"), "application_id", application)?;
        conn.execute("DETACH DATABASE encrypted", [])?;
    }
    std::fs::File::open(&target)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error("syncing the encrypted store", e))?;
    std::fs::rename(&target, path).map_err(|e| io_error("moving the encrypted store into place", e))?;
    sync_parent(path)?;
    tracing::info!("encrypted a plain store with its store key");
    Ok(())
}

fn sync_parent(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("syncing the store's folder", e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn io_error(op: &str, error: std::io::Error) -> Error {
    match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => Error::StorageFull,
        _ => Error::Storage(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some(format!("{op}: {error}")),
        )),
    }
}

/// Changes the key of the open store behind `conn` (the writer) to `new_key`, then folds the WAL
/// into the file and truncates it, so that no page written under the old key stays in it.
pub(crate) fn rekey(conn: &Connection, new_key: &StoreKey) -> Result<()> {
    let literal = new_key.sqlcipher_literal();
    let mut statement = Zeroizing::new(String::with_capacity(literal.len() + 18));
    statement.push_str("PRAGMA rekey = \"");
    statement.push_str(&literal);
    statement.push_str("\";");
    conn.execute_batch(&statement)
        .map_err(|e| Error::from(without_sql(e)))?;
    fold_wal(conn)
}

/// How often, and how long apart, a rekey tries to fold the WAL when a reader's snapshot holds
/// it (about two seconds in all).
const FOLD_ATTEMPTS: u32 = 40;
const FOLD_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Folds the WAL into the database file and truncates it, waiting for readers' snapshots: a
/// blocked checkpoint does not fail, it reports itself busy (the first column), and a rekey
/// whose old-key pages stayed in the file would not be one (nor an erasure whose old pages
/// stayed in the WAL). Still busy after the attempts: `false`.
pub(crate) fn try_fold_wal(conn: &Connection) -> Result<bool> {
    // A TRUNCATE checkpoint waits for readers through the busy handler: with the connection's
    // five seconds per try, forty tries would be minutes. Here each try answers at once and
    // the pauses between them bound the wait (about two seconds).
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let folded = (|| {
        for _ in 0..FOLD_ATTEMPTS {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 {
                return Ok(true);
            }
            std::thread::sleep(FOLD_PAUSE);
        }
        Ok(false)
    })();
    conn.busy_timeout(super::connection::BUSY_TIMEOUT)?;
    folded
}

/// A WAL a long read kept from being folded in: an error the caller can retry.
pub(crate) fn wal_busy(what: &str) -> Error {
    Error::Storage(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some(what.into()),
    ))
}

fn fold_wal(conn: &Connection) -> Result<()> {
    if try_fold_wal(conn)? {
        return Ok(());
    }
    Err(wal_busy(
        "the store was rekeyed, but a long read kept pages of the old key in the file; call rekey again with the new key",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_key_literal_is_sqlciphers_and_errors_never_quote_it() {
        let key = StoreKey::new([0xab; 32]);
        let literal = key.sqlcipher_literal();
        assert_eq!(literal.len(), 67);
        assert!(literal.starts_with("x'abab") && literal.ends_with("ab'"));
        // A statement that fails with a message quoting it: the message is replaced.
        let conn = Connection::open_in_memory().expect("memory");
        let failed = conn
            .execute_batch(&format!("SELECT * FROM \"{}\";", literal.as_str()))
            .expect_err("no such table");
        assert!(failed.to_string().contains("abab"), "SQLite quotes it: {failed}");
        let cleaned = Error::from(without_sql(failed)).to_string();
        assert!(!cleaned.contains("abab"), "{cleaned}");
    }

    /// The SQLite this core links is SQLCipher with the codec, and still has what the store
    /// needs (FTS5, R*Tree) and the flags `.cargo/config.toml` sets (`LIBSQLITE3_FLAGS`).
    #[test]
    fn the_linked_sqlite_is_sqlcipher_with_fts5_rtree_and_the_workspace_flags() {
        let conn = Connection::open_in_memory().expect("memory");
        let version: String = conn
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))
            .expect("SQLCipher answers cipher_version");
        assert!(!version.is_empty());
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        for wanted in ["ENABLE_FTS5", "ENABLE_RTREE", "HAS_CODEC", "DEFAULT_MEMSTATUS=0"] {
            assert!(
                options.iter().any(|o| o == wanted),
                "{wanted} missing from {options:?}"
            );
        }
    }
}
