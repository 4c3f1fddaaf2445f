//! Encryption at rest (`docs/store.md`, "Encryption at rest"): a store opened with a store key is
//! SQLCipher-encrypted (database and WAL) and its media files are sealed; a wrong key is a typed
//! error that changes nothing; a rekey works; a plain store is encrypted when opened with a key,
//! crash-safely, with everything in it.
//!
//! The byte scans carry `plaintext` in their names: `cargo test plaintext` runs them.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use quartier_core::media::ImportOptions;
use quartier_core::model::*;
use quartier_core::query::FeedQuery;
use quartier_core::{Error, Store, StoreKey, StoreOptions};

/// Marker strings written into items and media. Lowercase ASCII single tokens, so that a plain
/// store shows them in the search index too (which folds case).
const MARKERS: [&str; 3] = ["zebrafinkmarker", "quokkaschluessel", "axolotlgeheimnis"];

fn key(byte: u8) -> StoreKey {
    StoreKey::new([byte; 32])
}

fn keyed(byte: u8) -> StoreOptions {
    StoreOptions {
        store_key: Some(key(byte)),
        ..StoreOptions::default()
    }
}

/// A PCM WAV whose samples are `payload` (the import keeps the data chunk as it is).
fn wav_with(payload: &[u8]) -> Vec<u8> {
    let mut data = payload.to_vec();
    if !data.len().is_multiple_of(2) {
        data.push(0);
    }
    let len = u32::try_from(data.len()).expect("small");
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// Writes items (title, body, tags with the markers) and imports a recording whose samples
/// carry them; returns the ids and the recording's hash.
fn write_markers(store: &Store, space: SpaceId, author: PersonId, n: usize) -> (Vec<ItemId>, String) {
    let mut ids = Vec::new();
    for i in 0..n {
        let marker = MARKERS[i % MARKERS.len()];
        let mut content = post(
            &format!("{marker} Titel {i}"),
            &format!("Im Hof {marker} und mehr Text, Nummer {i}"),
        );
        content.tags.insert(marker.to_owned());
        let item = store
            .create_item(NewItem::new(space, author, content))
            .expect("create");
        ids.push(item.id);
    }
    let payload: Vec<u8> = MARKERS.join(" ").repeat(50).into_bytes();
    let imported = store
        .import_media_bytes(&wav_with(&payload), &ImportOptions::default())
        .expect("import recording");
    (ids, imported.reference.hash)
}

/// Every file under `dir`, recursively: database, WAL, shared memory, media, temporary files.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path, bytes);
            }
        }
    }
    out
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    text.encode_utf16()
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

/// Every zstd frame that starts somewhere in `bytes`, decompressed (bounded), for the scan.
fn zstd_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let mut out = Vec::new();
    for start in 0..bytes.len().saturating_sub(3) {
        if bytes[start..start + 4] != MAGIC {
            continue;
        }
        let Ok(decoder) = zstd::stream::read::Decoder::new(&bytes[start..]) else {
            continue;
        };
        let mut decoded = Vec::new();
        // A partial frame still yields what it decoded before failing.
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(decoder, 1 << 22), &mut decoded);
        if !decoded.is_empty() {
            out.push(decoded);
        }
    }
    out
}

/// Where each marker is found in the files under `dir`: as UTF-8, UTF-16 (LE and BE), or inside
/// a zstd frame in any of these encodings.
fn plaintext_found(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (path, bytes) in files_under(dir) {
        let name = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
        let mut layers = vec![("raw", bytes.clone())];
        layers.extend(zstd_frames(&bytes).into_iter().map(|d| ("zstd", d)));
        for (layer, content) in &layers {
            for marker in MARKERS {
                let encodings = [
                    ("utf-8", marker.as_bytes().to_vec()),
                    ("utf-16le", utf16(marker, false)),
                    ("utf-16be", utf16(marker, true)),
                ];
                for (encoding, needle) in encodings {
                    if contains(content, &needle) {
                        found.push(format!("{marker} in {name} ({layer}, {encoding})"));
                    }
                }
            }
        }
    }
    found
}

fn feed_titles(store: &Store, space: SpaceId) -> Vec<String> {
    let mut q = FeedQuery::new(space, Viewer::new(PersonId::new(), Role::Coordinator));
    q.limit = 1000.into();
    let mut titles: Vec<String> = store
        .feed(&q)
        .expect("feed")
        .items
        .into_iter()
        .filter_map(|i| i.content.title.get("de").map(str::to_owned))
        .collect();
    titles.sort();
    titles
}

/// The control for the scans below: the same writes in a plain store are found by the scan,
/// in the database or WAL and in the media file. Without it, a scan that finds nothing would
/// prove nothing.
#[test]
fn plaintext_scan_finds_the_markers_in_a_plain_store() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("store.db"), StoreOptions::default()).expect("open");
    let author = PersonId::new();
    let space = store
        .create_space(space_meta("Nippes"), author)
        .expect("space")
        .id;
    write_markers(&store, space, author, 30);
    let found = plaintext_found(dir.path());
    assert!(found.iter().any(|f| f.contains(".media")), "{found:#?}");
    assert!(found.iter().any(|f| f.contains("store.db")), "{found:#?}");
    assert!(found.iter().any(|f| f.contains("(zstd, utf-8)")), "{found:#?}");
}

#[test]
fn no_plaintext_at_rest_in_an_encrypted_store_database_wal_or_media() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    let store = Store::open(&path, keyed(7)).expect("open");
    assert!(store.is_encrypted());
    let author = PersonId::new();
    let space = store
        .create_space(space_meta("Nippes"), author)
        .expect("space")
        .id;
    let (ids, recording) = write_markers(&store, space, author, 30);
    // While open: the WAL holds the writes.
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    assert!(
        std::fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false),
        "a WAL to scan"
    );
    assert_eq!(plaintext_found(dir.path()), Vec::<String>::new(), "while open");
    // The content is there for the store itself.
    assert_eq!(feed_titles(&store, space).len(), ids.len());
    let bytes = store.read_media(&recording).expect("read recording");
    assert!(contains(&bytes, MARKERS[0].as_bytes()), "read_media decrypts");
    store.close().expect("close");
    assert_eq!(plaintext_found(dir.path()), Vec::<String>::new(), "after close");
}

/// Opens `path` with a wrong key and with none: each is `WrongStoreKey`, and the files named by
/// `watched` stay byte for byte as they were.
fn refuse_wrong_keys(path: &Path, watched: impl Fn() -> BTreeMap<PathBuf, Vec<u8>>) {
    let before = watched();
    assert!(!before.is_empty());
    for (options, key_given) in [(keyed(2), true), (StoreOptions::default(), false)] {
        match Store::open(path, options) {
            Err(Error::WrongStoreKey { key_given: given }) => assert_eq!(given, key_given),
            Err(other) => panic!("expected WrongStoreKey, got {other:?}"),
            Ok(_) => panic!("opened with the wrong key"),
        }
        assert_eq!(watched(), before, "a refused open changed a file");
    }
}

#[test]
fn a_wrong_store_key_is_a_typed_error_and_nothing_is_stored_or_lost() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    let store = Store::open(&path, keyed(1)).expect("open");
    let author = PersonId::new();
    let space = store
        .create_space(space_meta("Nippes"), author)
        .expect("space")
        .id;
    let (ids, recording) = write_markers(&store, space, author, 5);
    let titles = feed_titles(&store, space);
    assert_eq!(titles.len(), ids.len());

    // A store left by a kill: the latest writes only in its WAL. Database and WAL unchanged.
    let crashed_dir = tempfile::tempdir().expect("dir");
    let crashed = crashed_dir.path().join("store.db");
    copy_open_store(&path, &crashed);
    let wal = PathBuf::from(format!("{}-wal", crashed.display()));
    assert!(wal.exists());
    refuse_wrong_keys(&crashed, || {
        [crashed.clone(), wal.clone()]
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).expect("read");
                (p, bytes)
            })
            .collect()
    });
    let reopened = Store::open(&crashed, keyed(1)).expect("the right key opens it");
    assert_eq!(feed_titles(&reopened, space), titles, "nothing lost from the WAL");
    drop(reopened);

    // A closed store: every file of its folder unchanged.
    store.close().expect("close");
    refuse_wrong_keys(&path, || files_under(dir.path()));
    // The message names no key material.
    let message = Error::WrongStoreKey { key_given: true }.to_string();
    assert!(!message.contains("0101"), "{message}");
    let store = Store::open(&path, keyed(1)).expect("the right key opens it");
    assert_eq!(feed_titles(&store, space), titles);
    assert!(store.read_media(&recording).is_ok());
    store.integrity_check().expect("integrity");
}

#[test]
fn a_key_of_the_wrong_length_is_refused() {
    assert!(matches!(
        StoreKey::from_slice(&[0u8; 31]),
        Err(Error::Invalid { .. })
    ));
    assert!(StoreKey::from_slice(&[0u8; 32]).is_ok());
    assert_eq!(format!("{:?}", key(0xab)), "StoreKey(…)");
}

#[test]
fn rekey_makes_the_store_open_with_the_new_key_only() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    let store = Store::open(&path, keyed(1)).expect("open");
    let author = PersonId::new();
    let space = store
        .create_space(space_meta("Nippes"), author)
        .expect("space")
        .id;
    let (_, recording) = write_markers(&store, space, author, 5);
    let titles = feed_titles(&store, space);
    // A reader of the pool with the old key exists now; after the rekey reads still work.
    store.rekey(&key(9)).expect("rekey");
    assert_eq!(feed_titles(&store, space), titles, "reads after the rekey");
    let more = store
        .create_item(NewItem::new(space, author, post("Nach dem Wechsel", "neu")))
        .expect("write after the rekey");
    assert!(!store.read_media(&recording).expect("media").is_empty());
    store.close().expect("close");
    assert!(matches!(
        Store::open(&path, keyed(1)),
        Err(Error::WrongStoreKey { key_given: true })
    ));
    let store = Store::open(&path, keyed(9)).expect("the new key opens it");
    let now = feed_titles(&store, space);
    assert_eq!(now.len(), titles.len() + 1);
    assert!(now.contains(&"Nach dem Wechsel".to_owned()), "{:?}", more.id);
    assert!(
        store.read_media(&recording).is_ok(),
        "media survive a rekey unchanged"
    );
    store.integrity_check().expect("integrity");
}

#[test]
fn rekey_of_a_plain_store_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("store.db"), StoreOptions::default()).expect("open");
    assert!(matches!(store.rekey(&key(3)), Err(Error::Invalid { .. })));
}

/// A live query keeps its own reader: after a rekey it must still be called with results.
#[test]
fn live_queries_go_on_after_a_rekey() {
    use quartier_core::store::LiveQuery;
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("store.db"), keyed(1)).expect("open");
    let author = PersonId::new();
    let space = store
        .create_space(space_meta("Nippes"), author)
        .expect("space")
        .id;
    let (sender, receiver) = std::sync::mpsc::channel();
    let _subscription = store.subscribe(
        LiveQuery::Feed(FeedQuery::new(space, Viewer::new(author, Role::Coordinator))),
        move |result| {
            let _ = sender.send(result.is_ok());
        },
    );
    assert_eq!(receiver.recv_timeout(Duration::from_secs(10)), Ok(true));
    store
        .create_item(NewItem::new(space, author, post("Vorher", "x")))
        .expect("create");
    assert_eq!(receiver.recv_timeout(Duration::from_secs(10)), Ok(true));
    store.rekey(&key(2)).expect("rekey");
    store
        .create_item(NewItem::new(space, author, post("Nachher", "y")))
        .expect("create");
    assert_eq!(
        receiver.recv_timeout(Duration::from_secs(10)),
        Ok(true),
        "after the rekey"
    );
}

/// Copies a store's files (database, WAL) while it is open, as a kill would leave them.
fn copy_open_store(from: &Path, to: &Path) {
    for suffix in ["", "-wal"] {
        let source = PathBuf::from(format!("{}{suffix}", from.display()));
        if source.exists() {
            std::fs::copy(&source, format!("{}{suffix}", to.display())).expect("copy");
        }
    }
    let media = PathBuf::from(format!("{}.media", from.display()));
    let target = PathBuf::from(format!("{}.media", to.display()));
    std::fs::create_dir_all(&target).expect("media dir");
    for entry in std::fs::read_dir(&media).expect("media") {
        let entry = entry.expect("entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), target.join(entry.file_name())).expect("copy media");
        }
    }
}

#[test]
fn a_plain_store_opened_with_a_key_is_encrypted_with_everything_in_it_and_no_plaintext_left() {
    let plain_dir = tempfile::tempdir().expect("dir");
    let plain_path = plain_dir.path().join("store.db");
    let plain = Store::open(&plain_path, StoreOptions::default()).expect("open");
    let author = PersonId::new();
    let space = plain
        .create_space(space_meta("Nippes"), author)
        .expect("space")
        .id;
    let (ids, recording) = write_markers(&plain, space, author, 40);
    let titles = feed_titles(&plain, space);
    let media_bytes = plain.read_media(&recording).expect("media");
    let detail = plain
        .item_detail(ids[0], &Viewer::new(author, Role::Coordinator))
        .expect("detail");
    // Copied while open: the latest writes are in the WAL only.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    copy_open_store(&plain_path, &path);
    assert!(PathBuf::from(format!("{}-wal", path.display())).exists());
    drop(plain);

    let store = Store::open(&path, keyed(5)).expect("encrypt on open");
    assert!(store.is_encrypted());
    assert_eq!(feed_titles(&store, space), titles, "every item is still there");
    assert_eq!(
        store
            .item_detail(ids[0], &Viewer::new(author, Role::Coordinator))
            .expect("detail"),
        detail
    );
    assert_eq!(store.read_media(&recording).expect("media"), media_bytes);
    let found = store
        .search(&quartier_core::query::SearchRequest::new(
            space,
            Viewer::new(author, Role::Coordinator),
            MARKERS[1],
        ))
        .expect("search");
    assert!(!found.is_empty(), "the search index came along");
    store.integrity_check().expect("integrity");
    assert_eq!(plaintext_found(dir.path()), Vec::<String>::new());
    store.close().expect("close");
    assert_eq!(plaintext_found(dir.path()), Vec::<String>::new());
    assert!(!PathBuf::from(format!("{}.encrypting", path.display())).exists());
    assert!(matches!(
        Store::open(&path, StoreOptions::default()),
        Err(Error::WrongStoreKey { key_given: false })
    ));
    let store = Store::open(&path, keyed(5)).expect("reopen");
    assert_eq!(feed_titles(&store, space), titles);
}

/// What an encryption cut short before its rename leaves: the plain store, whole, and a partial
/// copy with its journal. The plain store still opens without a key; with the key it is
/// encrypted from the start again.
#[test]
fn an_encryption_cut_short_leaves_the_plain_store_whole() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    let store = Store::open(&path, StoreOptions::default()).expect("open");
    let author = PersonId::new();
    let space = store
        .create_space(space_meta("Nippes"), author)
        .expect("space")
        .id;
    write_markers(&store, space, author, 10);
    let titles = feed_titles(&store, space);
    store.close().expect("close");
    std::fs::write(format!("{}.encrypting", path.display()), vec![0x5a; 8192]).expect("partial");
    std::fs::write(format!("{}.encrypting-journal", path.display()), vec![1; 512]).expect("journal");
    let store = Store::open(&path, StoreOptions::default()).expect("still a plain store");
    assert_eq!(feed_titles(&store, space), titles);
    store.close().expect("close");
    let store = Store::open(&path, keyed(4)).expect("encrypted now");
    assert_eq!(feed_titles(&store, space), titles);
    assert!(!PathBuf::from(format!("{}.encrypting", path.display())).exists());
    assert!(!PathBuf::from(format!("{}.encrypting-journal", path.display())).exists());
}

const CHILD_STORE_ENV: &str = "QUARTIER_ENCRYPT_STORE";

/// Run as a child by the kill test: opens the store at the given path with key 6 (encrypting
/// it), then says so.
#[test]
#[ignore = "run as a child process by a_kill_during_encryption_leaves_one_whole_store_and_no_plaintext"]
fn child_encrypter() {
    let Ok(path) = std::env::var(CHILD_STORE_ENV) else {
        return;
    };
    let store = Store::open(&path, keyed(6)).expect("child open");
    drop(store);
    println!("encrypted");
}

/// Kills a process that is encrypting a plain store (database and media) at random moments:
/// afterwards the store is either the old plain one or the new encrypted one, whole, and
/// opening it with the key always ends with everything there.
#[test]
fn a_kill_during_encryption_leaves_one_whole_store_and_no_plaintext() {
    let template_dir = tempfile::tempdir().expect("dir");
    let template = template_dir.path().join("store.db");
    let store = Store::open(&template, StoreOptions::default()).expect("open");
    let author = PersonId::new();
    let space = store
        .create_space(space_meta("Nippes"), author)
        .expect("space")
        .id;
    write_markers(&store, space, author, 400);
    for i in 0..6u8 {
        let payload = vec![i; 300_000];
        store
            .import_media_bytes(&wav_with(&payload), &ImportOptions::default())
            .expect("import");
    }
    let titles = feed_titles(&store, space);
    let media: Vec<String> = store
        .media_awaiting_upload()
        .expect("media")
        .into_iter()
        .map(|m| m.hash)
        .collect();
    store.close().expect("close");

    let exe = std::env::current_exe().expect("test binary");
    let run = |path: &Path| {
        Command::new(&exe)
            .args([
                "encryption::child_encrypter",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_STORE_ENV, path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let fresh = |round: usize| {
        let dir = template_dir.path().join(format!("round-{round}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("store.db");
        copy_open_store(&template, &path);
        path
    };
    // How long a whole run takes, to spread the kills over it.
    let path = fresh(0);
    let started = Instant::now();
    let status = run(&path).wait().expect("wait");
    assert!(status.success());
    let whole = started.elapsed();

    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut plain_after = 0;
    for round in 1..=12 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let path = fresh(round);
        let mut child = run(&path);
        let wait = whole.mul_f64((seed % 1000) as f64 / 1000.0);
        std::thread::sleep(wait);
        let _ = child.kill();
        let _ = child.wait();
        // Either the plain store, whole, or the encrypted one.
        if let Ok(store) = Store::open(&path, StoreOptions::default()) {
            plain_after += 1;
            assert_eq!(
                feed_titles(&store, space),
                titles,
                "round {round}: the plain store"
            );
            drop(store);
        }
        let store = Store::open(&path, keyed(6)).expect("opens with the key");
        assert_eq!(feed_titles(&store, space), titles, "round {round}");
        for hash in &media {
            store.read_media(hash).expect("every media file reads");
        }
        store.integrity_check().expect("integrity");
        store.close().expect("close");
        let dir = path.parent().expect("dir");
        assert_eq!(plaintext_found(dir), Vec::<String>::new(), "round {round}");
    }
    eprintln!("a whole encryption run: {whole:?}; the plain store was left in {plain_after} of 12 rounds");
}

/// Photos are encoded in memory and sealed on their way to the disk: original, preview and
/// thumbnail read back as the images they are, and each file at rest is sealed.
#[test]
fn photos_of_an_encrypted_store_are_sealed_and_read_back_as_images() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("store.db"), keyed(3)).expect("open");
    let picture = image::RgbImage::from_fn(1600, 1200, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 90])
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode");
    let imported = store
        .import_media_bytes(&png, &ImportOptions::default())
        .expect("import");
    assert_eq!(imported.stored.len(), 3, "original, preview, thumbnail");
    for media in &imported.stored {
        let bytes = store.read_media(&media.hash).expect("read");
        assert_eq!(
            blake3::hash(&bytes).to_hex().to_string(),
            media.hash,
            "plaintext of its name"
        );
        image::load_from_memory(&bytes).expect("an image");
        let at_rest = std::fs::read(store.media_file(&media.hash).expect("path")).expect("file");
        assert!(at_rest.starts_with(b"QRTRMED1"), "{:?} is sealed", media.variant);
        let segments = ((media.size + 65535) / 65536).max(1);
        assert_eq!(
            at_rest.len() as i64,
            24 + media.size + 16 * segments,
            "header, body, one tag per segment"
        );
    }
    let temp = std::fs::read_dir(store.media_temp_dir()).expect("tmp").count();
    assert_eq!(temp, 0, "no temporary file left");
}

/// An import killed while its plain temporary file (audio and video are stripped and probed
/// before they are sealed) was in the temporary folder leaves nothing readable: the next open
/// of the encrypted store removes it, and keeps an encrypted partial download (it resumes).
#[test]
fn plain_leftovers_of_a_killed_import_are_gone_at_the_next_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let store = Store::open(&path, keyed(7)).expect("open");
    let tmp = store.media_temp_dir();
    std::fs::write(tmp.join(".tmpKILLED"), b"MARKER-PLAIN-AUDIO-LEFTOVER").expect("leftover");
    let mut part = b"QRTRPRT1".to_vec();
    part.extend_from_slice(&[0u8; 24]);
    part.extend_from_slice(b"encrypted bytes");
    let part_path = tmp.join(format!("{}.part", "ab".repeat(32)));
    std::fs::write(&part_path, &part).expect("partial download");
    drop(store);
    let _reopened = Store::open(&path, keyed(7)).expect("reopen");
    assert!(!tmp.join(".tmpKILLED").exists(), "the plain leftover is removed");
    assert_eq!(
        std::fs::read(&part_path).expect("kept"),
        part,
        "the partial download stays"
    );
}
