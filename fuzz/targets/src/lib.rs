//! # quartier-fuzz-targets
//!
//! The body of every fuzz target (`docs/fuzzing.md`): one function per decoder that reads bytes
//! from outside the process, taking arbitrary bytes and returning normally whatever they are. A
//! panic, an abort (stack overflow, allocation failure) or work without bound is a finding.
//!
//! The libFuzzer harnesses in `fuzz/fuzz_targets/` (nightly, `cargo fuzz run <target>`) call
//! these functions and nothing else; `tests/replay.rs` runs every file of `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` through them in the ordinary `cargo test`, so CI replays the
//! corpus on stable without fuzzing.
//!
//! Targets that need state (a server database, a device store) build it once per process
//! ([`fixtures`]) and undo what an input did where the code under test allows it, so an input
//! behaves the same whether it runs first or after a million others.

pub mod fixtures;
pub mod seeds;

/// Called once by every libFuzzer harness before fuzzing: with `QUARTIER_FUZZ_WRITE_SEEDS` set,
/// writes the seed corpus and the hand-made regression inputs first ([`seeds`]).
///
/// It also puts back the default panic hook in place of libfuzzer-sys's, which aborts on every
/// panic, even one the code under test catches by design (the media duration probe turns a
/// parser panic into "no duration"). A panic that escapes a target still aborts: libfuzzer-sys
/// catches it at the harness boundary.
pub fn init() {
    let _ = std::panic::take_hook();
    if std::env::var_os("QUARTIER_FUZZ_WRITE_SEEDS").is_some() {
        seeds::write_corpus();
        seeds::write_nested_maps_regressions();
    }
}

use std::io::Write as _;

use automerge::{Automerge, Change};
use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use quartier_core::document::{
    checksum_matches, creation_of, guarded, item_from_doc, rebuild_creation, space_from_doc, ChangeNote,
    Creation, DocKind,
};
use quartier_core::schedule::{
    is_open_at, next_opening, opening_intervals, parse_time_zone, EventTiming, OpeningRule,
};
use quartier_core::search::{fold, snippet, SearchQuery};
use quartier_protocol::blobs::{
    chunk_count, chunk_range, missing_chunks, AnnounceBlob, UploadState, BLOB_CHUNK_BYTES,
};
use quartier_server::blobs::{index, BlobError, BlobStore};
use uuid::Uuid;

use fixtures::{server, SPACE};

/// A fuzz target: its name (the folder of its corpus) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, most exposed first.
pub const TARGETS: &[Target] = &[
    Target {
        name: "wire_bodies",
        run: wire_bodies,
    },
    Target {
        name: "change_bytes",
        run: change_bytes,
    },
    Target {
        name: "creation_record",
        run: creation_record,
    },
    Target {
        name: "media_import",
        run: media_import,
    },
    Target {
        name: "server_requests",
        run: server_requests,
    },
    Target {
        name: "schedule_rules",
        run: schedule_rules,
    },
    Target {
        name: "search_query",
        run: search_query,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

// --- wire_bodies ---------------------------------------------------------------------------

/// Request and response bodies as the server and the core decode them (zstd, then CBOR, bounded
/// by [`MAX_DECODED_BYTES`]): every message type of the protocol. An upload state is then used
/// as the core's transfer queue uses one from the server: the chunks still to send.
/// The largest file a device announces in the wire target: a long phone video.
const MAX_ANNOUNCED_BYTES: u64 = 4 << 30;

pub fn wire_bodies(data: &[u8]) {
    use quartier_protocol::*;
    let _ = decode::<SyncRequest>(data, MAX_DECODED_BYTES);
    let _ = decode::<SyncResponse>(data, MAX_DECODED_BYTES);
    let _ = decode::<RegisterDevice>(data, MAX_DECODED_BYTES);
    let _ = decode::<DeviceRegistered>(data, MAX_DECODED_BYTES);
    let _ = decode::<CreateSpace>(data, MAX_DECODED_BYTES);
    let _ = decode::<CreateInvite>(data, MAX_DECODED_BYTES);
    let _ = decode::<InviteCreated>(data, MAX_DECODED_BYTES);
    let _ = decode::<RedeemInvite>(data, MAX_DECODED_BYTES);
    let _ = decode::<Membership>(data, MAX_DECODED_BYTES);
    let _ = decode::<SetRole>(data, MAX_DECODED_BYTES);
    let _ = decode::<ErrorBody>(data, MAX_DECODED_BYTES);
    let _ = decode::<AnnounceBlob>(data, MAX_DECODED_BYTES);
    if let Ok(state) = decode::<UploadState>(data, MAX_DECODED_BYTES) {
        // As the transfer queue takes an answer: checked against what it announced first (a
        // device announces its own file, in chunks of BLOB_CHUNK_BYTES), then planned.
        let announced = AnnounceBlob {
            hash: state.hash.clone(),
            size: state.size.min(MAX_ANNOUNCED_BYTES),
            mime_type: "image/jpeg".into(),
            chunk_size: BLOB_CHUNK_BYTES,
            variant: None,
        };
        if state.check_answers(&announced).is_ok() {
            let _ = missing_chunks(&state);
        }
    }
}

// --- change_bytes --------------------------------------------------------------------------

/// Change bytes as both sides read them. The core (merging a page): `guarded::decode`, the
/// checksum, the note, applying the change to a document (empty, or each base document) and
/// reading the result as an item or a space, and the same bytes as a snapshot
/// (`Automerge::load`). The server: the change signed by a registered member (an attacker is
/// one: he can sign anything) and pushed, then paged out again. What the server accepts stays:
/// the replay runs the corpus in one order, so it behaves the same every time.
///
/// The checksum is not required to match before applying: anyone can write the right checksum
/// for any change, so what follows it must hold up on its own.
pub fn change_bytes(data: &[u8]) {
    if let Ok(change) = guarded::decode(data.to_vec()) {
        let _ = checksum_matches(data, &change);
        let _ = ChangeNote::decode(change.message());
        for kind in [DocKind::Item, DocKind::Space] {
            let mut doc = Automerge::new();
            if guarded::apply(&mut doc, vec![change.clone()]).is_ok() {
                read_doc(&doc, fixtures::CREATED_DOC, kind);
            }
        }
        for (id, kind, base) in fixtures::base_docs() {
            if change
                .deps()
                .iter()
                .all(|d| base.get_change_meta_by_hash(d).is_some())
            {
                let mut doc = base.clone();
                if guarded::apply(&mut doc, vec![change.clone()]).is_ok() {
                    read_doc(&doc, *id, *kind);
                }
            }
        }
        push_to_server(data, &change);
    }
    if let Ok(doc) = guarded::load(data) {
        for change in guarded::changes_since(&doc, &[]).unwrap_or_default() {
            let _ = guarded::decode(change.raw_bytes().to_vec());
        }
        read_doc(&doc, fixtures::CREATED_DOC, DocKind::Item);
        read_doc(&doc, fixtures::CREATED_DOC, DocKind::Space);
    }
}

/// What the core and the server read of a document after merging: the item or space, and
/// whether its history is a creation the rule rebuilds.
fn read_doc(doc: &Automerge, id: Uuid, kind: DocKind) {
    let doc_id = id.to_string();
    match kind {
        DocKind::Item => {
            let _ = item_from_doc(doc, &doc_id);
        }
        DocKind::Space => {
            if let Ok(space) = space_from_doc(doc, &doc_id) {
                let _ = space.meta.validate();
            }
        }
    }
    let _ = creation_of(doc, &doc_id, kind);
}

/// Pushes the change as the fixed member's device would (`sync::push` stores it if every check
/// passes, each change whole or not at all), then pulls the page after it.
fn push_to_server(data: &[u8], change: &Change) {
    let (doc, kind) = document_of(change);
    let env = server();
    let Ok(before) = quartier_server::storage::log::last_seq(&env.db.lock(), SPACE) else {
        return;
    };
    let record = fixtures::signed_record(doc, kind, data);
    let _ = quartier_server::sync::push(
        &env.db,
        &env.docs,
        fixtures::PERSON,
        &[record],
        &quartier_server::sync::PushLimits::default(),
    );
    let cursor = quartier_protocol::SpaceCursor {
        space: SPACE,
        after: Some(format!("c:{before}:coordinator")),
        members_after: None,
        signatures_after: None,
    };
    let conn = env.db.lock();
    let _ = quartier_server::sync::pull(
        &conn,
        &env.docs,
        Uuid::from_u128(99),
        fixtures::PERSON,
        &[cursor],
        64 * 1024,
        quartier_server::sync::CreationForms {
            accepted: true,
            queue: None,
            signatures: quartier_server::sync::SignatureForm::Inline,
        },
    );
}

/// The document a change belongs to: a base document whose history it extends, or the one
/// it creates.
pub fn document_of(change: &Change) -> (Uuid, DocKind) {
    let base = fixtures::base_docs().iter().find(|(_, _, doc)| {
        !change.deps().is_empty()
            && change
                .deps()
                .iter()
                .all(|d| doc.get_change_meta_by_hash(d).is_some())
    });
    match base {
        Some((id, kind, _)) => (*id, *kind),
        None => created_doc(change),
    }
}

/// The id and kind a creating change gives its document (its `id` field), or a fixed id.
fn created_doc(change: &Change) -> (Uuid, DocKind) {
    let mut doc = Automerge::new();
    if guarded::apply(&mut doc, vec![change.clone()]).is_ok() {
        if let Ok(item) = item_from_doc(&doc, "new") {
            return (item.id.as_uuid(), DocKind::Item);
        }
        if let Ok(space) = space_from_doc(&doc, "new") {
            return (space.id.as_uuid(), DocKind::Space);
        }
    }
    (fixtures::CREATED_DOC, DocKind::Item)
}

// --- creation_record ------------------------------------------------------------------------

/// A creation record ([`quartier_protocol::Record::Created`]) as a device rebuilds it
/// (`document::rebuild_creation`), then applies and reads the rebuilt change. Inputs are the
/// record's fields in the layout of [`encode_creation`].
pub fn creation_record(data: &[u8]) {
    let Some((kind, creation)) = decode_creation(data) else {
        return;
    };
    let id = match kind {
        DocKind::Item => fixtures::CREATED_DOC,
        DocKind::Space => SPACE,
    };
    if let Ok(change) = rebuild_creation(&creation, &id.to_string(), kind) {
        let mut doc = Automerge::new();
        if guarded::apply(&mut doc, vec![change]).is_ok() {
            read_doc(&doc, id, kind);
        }
    }
}

/// Layout of a creation-record input: kind (1 byte: 0 item, else space), time (8 bytes LE),
/// actor length (1 byte) and actor, check (4 bytes), message length (2 bytes LE; `0xffff` for
/// none) and message, and the rest the state JSON. Text is taken as UTF-8, lossily (the wire
/// carries strings).
pub fn encode_creation(kind: DocKind, creation: &Creation) -> Vec<u8> {
    let mut out = vec![u8::from(kind == DocKind::Space)];
    out.extend_from_slice(&creation.time_ms.to_le_bytes());
    out.push(creation.actor.len() as u8);
    out.extend_from_slice(&creation.actor);
    let mut check = creation.check.clone();
    check.resize(4, 0);
    out.extend_from_slice(&check);
    match &creation.message {
        None => out.extend_from_slice(&u16::MAX.to_le_bytes()),
        Some(m) => {
            out.extend_from_slice(&(m.len() as u16).to_le_bytes());
            out.extend_from_slice(m.as_bytes());
        }
    }
    out.write_all(creation.state.as_bytes()).expect("vec");
    out
}

fn decode_creation(data: &[u8]) -> Option<(DocKind, Creation)> {
    let (&kind, rest) = data.split_first()?;
    let kind = if kind == 0 { DocKind::Item } else { DocKind::Space };
    let (time, rest) = rest.split_at_checked(8)?;
    let time_ms = i64::from_le_bytes(time.try_into().ok()?);
    let (&actor_len, rest) = rest.split_first()?;
    let (actor, rest) = rest.split_at_checked(usize::from(actor_len))?;
    let (check, rest) = rest.split_at_checked(4)?;
    let (len, rest) = rest.split_at_checked(2)?;
    let len = u16::from_le_bytes([len[0], len[1]]);
    let (message, rest) = if len == u16::MAX {
        (None, rest)
    } else {
        let (m, rest) = rest.split_at_checked(usize::from(len))?;
        (Some(String::from_utf8_lossy(m).into_owned()), rest)
    };
    Some((
        kind,
        Creation {
            actor: actor.to_vec(),
            time_ms,
            message,
            state: String::from_utf8_lossy(rest).into_owned(),
            check: check.to_vec(),
        },
    ))
}

// --- media_import ---------------------------------------------------------------------------

/// A file handed to the importer (`Store::import_media_bytes`): sniffing, image decoding,
/// metadata stripping, previews and thumbnails, audio and video probing, storing.
pub fn media_import(data: &[u8]) {
    let store = media_store();
    let _ = store.import_media_bytes(data, &quartier_core::media::ImportOptions::default());
}

fn media_store() -> &'static quartier_core::Store {
    static STORE: std::sync::OnceLock<(tempfile::TempDir, quartier_core::Store)> = std::sync::OnceLock::new();
    let (_, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            quartier_core::Store::open(dir.path().join("fuzz.db"), Default::default()).expect("store");
        (dir, store)
    });
    store
}

// --- server_requests ------------------------------------------------------------------------

/// The server's small parsers of request parts, on a real database: the first byte picks one,
/// the rest is its input.
/// - 0: a pull cursor (`SpaceCursor::after`), paged as `sync::pull` does;
/// - 1: an invite code redeemed (`storage::spaces::redeem_invite`), and a bearer token looked up;
/// - 2: a `Range` header of a blob download, resolved against a size (8 bytes LE first);
/// - 3: a chunk upload (`PUT /v1/blobs/{hash}/chunks/{index}`): 1 byte picks a pending upload,
///   4 bytes LE the index, the rest the chunk, checked and stored as the handler does.
pub fn server_requests(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let env = server();
            let conn = env.db.lock();
            // A NUL parts the cursor from the signatures cursor (`g:…`).
            let mut parts = rest.splitn(2, |b| *b == 0);
            let after = parts.next().unwrap_or_default();
            let cursor = quartier_protocol::SpaceCursor {
                space: SPACE,
                after: Some(String::from_utf8_lossy(after).into_owned()),
                members_after: None,
                signatures_after: parts.next().map(|s| String::from_utf8_lossy(s).into_owned()),
            };
            // Whatever paging writes (compacted snapshots) is rolled back.
            let Ok(tx) = conn.unchecked_transaction() else {
                return;
            };
            let _ = quartier_server::sync::pull(
                &tx,
                &env.docs,
                Uuid::from_u128(99),
                fixtures::PERSON,
                &[cursor],
                16 * 1024,
                quartier_server::sync::CreationForms {
                    accepted: mode & 0x80 != 0,
                    queue: None,
                    signatures: match mode & 0x40 != 0 {
                        true => quartier_server::sync::SignatureForm::Stream,
                        false => quartier_server::sync::SignatureForm::None,
                    },
                },
            );
        }
        1 => {
            let text = String::from_utf8_lossy(rest);
            let env = server();
            let conn = env.db.lock();
            let _ = quartier_server::storage::spaces::redeem_invite(&conn, &text, fixtures::GUEST);
            let _ = quartier_server::storage::accounts::device_by_token(&conn, &text);
        }
        2 => {
            let (size, header) = match rest.split_at_checked(8) {
                Some((size, header)) => (u64::from_le_bytes(size.try_into().unwrap_or_default()), header),
                None => (1000, rest),
            };
            let Ok(value) = axum::http::HeaderValue::from_bytes(header) else {
                return;
            };
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(axum::http::header::RANGE, value);
            if let Ok(Some((start, end))) = quartier_server::http::parse_range(&headers, size) {
                assert!(
                    start < end && end <= size,
                    "range {start}..{end} of a blob of {size} bytes"
                );
            }
        }
        _ => chunk_upload(rest),
    }
}

fn chunk_upload(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Some((index, bytes)) = rest.split_at_checked(4) else {
        return;
    };
    let index = u32::from_le_bytes(index.try_into().unwrap_or_default());
    let hash = fixtures::UPLOAD_HASHES[usize::from(which) % fixtures::UPLOAD_HASHES.len()];
    let person = fixtures::PERSON;
    let env = server();
    let conn = env.db.lock();
    let Ok(Some(row)) = index::upload(&conn, hash, person) else {
        return;
    };
    let Some((start, end)) = chunk_range(row.size, row.chunk_size, index) else {
        return;
    };
    if bytes.len() as u64 != end - start {
        return;
    }
    if env.blobs.put_chunk(hash, person, index, bytes).is_err()
        || index::record_chunk(&conn, hash, person, index).is_err()
    {
        return;
    }
    let Ok(state) = index::upload_state(&conn, hash, person, &row) else {
        return;
    };
    if missing_chunks(&state).is_empty() {
        // Chunks of made-up content never hash to the announced name: the upload is discarded
        // and announced again, as a device would after `hash_mismatch`.
        let count = chunk_count(row.size, row.chunk_size);
        if let Err(BlobError::HashMismatch) = env.blobs.assemble(hash, person, count, row.size) {
            let _ = index::forget_pending(&conn, hash, person);
            let _ = env.blobs.discard_partial(hash, person);
            let announced = AnnounceBlob {
                hash: hash.into(),
                size: row.size,
                mime_type: row.mime_type.clone(),
                chunk_size: row.chunk_size,
                variant: None,
            };
            let _ = index::announce(&conn, SPACE, person, &announced, &env.limits);
        }
    }
}

// --- schedule_rules -------------------------------------------------------------------------

/// Opening-rule and event RRULE text with the values around it, evaluated as the projections
/// and queries do. Layout: 8 header bytes (opening and closing hour and minute, valid-from
/// offset in weeks, window length in days, event hour, event length in quarter hours), then
/// lines: opening RRULE, time zone, event RRULE, EXDATE offsets in days (comma-separated).
pub fn schedule_rules(data: &[u8]) {
    let Some((head, text)) = data.split_at_checked(8) else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let mut lines = text.split('\n');
    let rrule = lines.next().unwrap_or_default().to_owned();
    let zone = lines.next().unwrap_or_default();
    let event_rrule = lines.next().map(str::to_owned);
    let exdates = lines.next().unwrap_or_default();
    let time = |h: u8, m: u8| NaiveTime::from_hms_opt(u32::from(h % 24), u32::from(m % 60), 0);
    let (Some(opens), Some(closes)) = (time(head[0], head[1]), time(head[2], head[3])) else {
        return;
    };
    let base = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
    let valid_from = (head[4] != 0).then(|| base + Duration::weeks(i64::from(head[4] as i8)));
    let rule = OpeningRule {
        rrule,
        opens,
        closes,
        valid_from,
        valid_until: valid_from.map(|d| d + Duration::days(400)),
        closed_on: vec![base + Duration::days(3)],
        description: None,
    };
    let tz = parse_time_zone(zone).unwrap_or(chrono_tz_berlin());
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().expect("time");
    let window = Duration::days(i64::from(head[5]));
    let rules = [rule];
    if rules[0].validate().is_ok() {
        let _ = is_open_at(&rules, tz, at);
        let _ = next_opening(&rules, tz, at, u32::from(head[5]) * 16);
        let _ = opening_intervals(&rules, tz, at, at + window);
    }
    let start = base.and_hms_opt(u32::from(head[6] % 24), 0, 0).expect("time");
    let event = EventTiming {
        start,
        end: start + Duration::minutes(15 * i64::from(head[7].max(1))),
        time_zone: zone.to_owned(),
        rrule: event_rrule.filter(|r| !r.is_empty()),
        exdates: exdates
            .split(',')
            .filter_map(|d| d.trim().parse::<i64>().ok())
            .filter_map(|d| start.checked_add_signed(Duration::try_days(d)?))
            .collect(),
    };
    if event.validate().is_ok() {
        let _ = event.occurrences_between(at, at + window, 500);
        let _ = event.series_bounds();
    }
}

fn chrono_tz_berlin() -> chrono_tz::Tz {
    chrono_tz::Europe::Berlin
}

// --- search_query ---------------------------------------------------------------------------

/// What a person types into search: parsed, turned into an FTS5 `MATCH` expression that SQLite
/// must accept (the docs promise it is never a syntax error), highlighted and folded.
pub fn search_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = fold(&text);
    let Ok(query) = SearchQuery::parse(&text) else {
        return;
    };
    let expression = query.fts5_match();
    let _ = query.highlight_terms();
    let _ = snippet(&text, &query, 80).marked("[", "]");
    let _ = snippet("Sprechstunde im Stadtteilbüro, Straße der Nachbarn 3", &query, 20);
    thread_local! {
        static FTS: rusqlite::Connection = {
            let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
            conn.execute_batch(
                "CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 0');
                 INSERT INTO t VALUES ('sprechstunde', 'stadtteilburo strasse der nachbarn');",
            )
            .expect("fts5 table");
            conn
        };
    }
    FTS.with(|conn| {
        let result = conn
            .prepare_cached("SELECT count(*) FROM t WHERE t MATCH ?1")
            .and_then(|mut s| s.query_row([&expression], |r| r.get::<_, i64>(0)));
        if let Err(e) = result {
            panic!("query {text:?} became the FTS5 expression {expression:?}, which SQLite refuses: {e}");
        }
    });
}
