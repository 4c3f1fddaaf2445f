//! The seed corpus: valid inputs made by the project's own encoders, written into
//! `fuzz/corpus/<target>/`, then minimised with `cargo fuzz cmin` before committing
//! (`docs/fuzzing.md`). Written by `cargo test -p quartier-fuzz-targets --test integration seeds:: -- --ignored`,
//! or by any libFuzzer harness started with `QUARTIER_FUZZ_WRITE_SEEDS=1` (for machines that
//! only have the fuzz build).
//!
//! Media seeds are made by `ffmpeg` (audio and video, a tenth of a second) and the `image`
//! crate; without `ffmpeg` on the PATH only the images are written.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::encode_creation;
use crate::fixtures::{self, base_changes, base_docs, PERSON, SPACE};
use quartier_core::document::{creation_of, DocKind};
use quartier_core::model::{ItemId, ItemPatch, LocalizedText, PersonId, SpaceId};
use quartier_protocol::*;
use uuid::Uuid;

/// The `fuzz/` folder of the source tree.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

/// The base changes and a few edits of them, as a device makes them.
fn changes() -> Vec<(String, Uuid, DocKind, Vec<u8>)> {
    let mut all: Vec<(String, Uuid, DocKind, Vec<u8>)> = base_changes()
        .into_iter()
        .enumerate()
        .map(|(i, (doc, kind, change))| (format!("create-{i}"), doc, kind, change.raw_bytes().to_vec()))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fixtures::base_store(&dir.path().join("seed.db"));
    let by = PersonId::from(PERSON);
    for i in 0..fixtures::BASE_KINDS.len() {
        let id = ItemId::from(fixtures::base_item_id(i));
        let patch = ItemPatch {
            title: Some(LocalizedText::single("de", "Geändert – Straße 3").with("en", "Changed")),
            ..Default::default()
        };
        store.update_item(id, &patch, by).expect("edit");
    }
    store
        .delete_item(ItemId::from(fixtures::base_item_id(0)), by)
        .expect("delete");
    let mut meta = fixtures::base_space().meta;
    meta.name = LocalizedText::single("de", "Umbenannt");
    store
        .update_space(SpaceId::from(SPACE), meta, by)
        .expect("space edit");
    for (i, change) in store
        .pending_changes(100)
        .expect("outbox")
        .into_iter()
        .enumerate()
    {
        let doc = Uuid::parse_str(&change.doc_id).expect("doc id");
        all.push((format!("edit-{i}"), doc, change.kind, change.bytes));
    }
    all
}

/// Writes the seed corpus of every target into `fuzz/corpus/`.
pub fn write_corpus() {
    let changes = changes();

    // change_bytes: every change, and the base documents saved whole (snapshots).
    for (name, _, _, bytes) in &changes {
        write("change_bytes", name, bytes);
    }
    for (i, (_, _, doc)) in base_docs().iter().enumerate() {
        write("change_bytes", &format!("snapshot-{i}"), &doc.save_nocompress());
    }

    // creation_record: the creation form of every base document.
    for (i, (id, kind, doc)) in base_docs().iter().enumerate() {
        let creation = creation_of(doc, &id.to_string(), *kind)
            .expect("creation")
            .expect("a base document is its creation");
        write(
            "creation_record",
            &format!("created-{i}"),
            &encode_creation(*kind, &creation),
        );
    }

    // wire_bodies: one of every message, as the peers encode them.
    let push: Vec<Record> = changes
        .iter()
        .take(3)
        .map(|(_, doc, kind, bytes)| fixtures::signed_record(*doc, *kind, bytes))
        .collect();
    let request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursors: vec![SpaceCursor {
            space: SPACE,
            after: Some("c:12:resident".into()),
            members_after: None,
            signatures_after: None,
        }],
        push,
        budget_bytes: 256 * 1024,
        accepts: vec![ACCEPTS_CREATED.into()],
        counselling: None,
        credentials: None,
        moderation: None,
        help: None,
    };
    write("wire_bodies", "sync-request", &encode(&request).expect("encode"));
    let (doc, kind, base) = &base_docs()[1];
    let creation = creation_of(base, &doc.to_string(), *kind)
        .expect("creation")
        .expect("creation form");
    let response = SyncResponse {
        protocol: PROTOCOL_VERSION,
        acks: vec![
            Ack {
                index: 0,
                outcome: AckOutcome::Stored,
            },
            Ack {
                index: 1,
                outcome: AckOutcome::Rejected {
                    code: RejectCode::Forbidden,
                    message: "no".into(),
                },
            },
        ],
        pages: vec![SpacePage {
            space: SPACE,
            records: vec![
                Record::Snapshot {
                    space: SPACE,
                    doc: *doc,
                    kind: *kind,
                    bytes: base.save_nocompress(),
                },
                creation.into_record(SPACE, *doc, *kind),
                fixtures::signed_record(changes[8].1, changes[8].2, &changes[8].3),
            ],
            next: "c:40:coordinator".into(),
            more: true,
            roster: None,
            signatures: Vec::new(),
            signatures_next: None,
        }],
        memberships: vec![Membership {
            space: SPACE,
            person: PERSON,
            role: Role::Coordinator,
        }],
        revoked: vec![Uuid::from_u128(5)],
        counselling: None,
        credentials: None,
        moderation: None,
        help: None,
    };
    write(
        "wire_bodies",
        "sync-response",
        &encode(&response).expect("encode"),
    );
    let key = fixtures::signing_key().verifying_key().to_bytes().to_vec();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "register",
            encode(&RegisterDevice {
                public_key: key,
                display_name: Some("Aylin".into()),
                challenge: Some(vec![7; 32]),
                signature: Some(vec![9; 64]),
                link_code: None,
                person: None,
            })
            .expect("encode"),
        ),
        (
            "invite",
            encode(&CreateInvite {
                role: Role::Volunteer,
                expires_at_ms: 1_800_000_000_000,
                max_uses: 20,
            })
            .expect("encode"),
        ),
        (
            "redeem",
            encode(&RedeemInvite {
                code: fixtures::INVITE_CODE.into(),
            })
            .expect("encode"),
        ),
        (
            "announce",
            encode(&blobs::AnnounceBlob {
                hash: "ab".repeat(32),
                size: 600_000,
                mime_type: "image/jpeg".into(),
                chunk_size: blobs::BLOB_CHUNK_BYTES,
                variant: None,
            })
            .expect("encode"),
        ),
        (
            "upload-state",
            encode(&blobs::UploadState {
                hash: "ab".repeat(32),
                size: 600_000,
                chunk_size: blobs::BLOB_CHUNK_BYTES,
                received: vec![0, 2],
                complete: false,
            })
            .expect("encode"),
        ),
        (
            "error",
            encode(&ErrorBody {
                code: "protocol_version".into(),
                message: "upgrade".into(),
                protocol_versions: vec![1],
                request_id: Some("req-1".into()),
            })
            .expect("encode"),
        ),
    ];
    for (name, bytes) in bodies {
        write("wire_bodies", name, &bytes);
    }

    // server_requests: cursors, invite codes, ranges, a chunk.
    let mut server: Vec<(String, Vec<u8>)> = Vec::new();
    for cursor in [
        "c:0:coordinator",
        "c:3",
        "s:0::resident",
        "s:7:0190:volunteer",
        "x",
    ] {
        server.push((
            format!("cursor-{cursor}"),
            [&[0u8][..], cursor.as_bytes()].concat(),
        ));
    }
    server.push((
        "cursor-created".into(),
        [&[0x80u8][..], b"s:0::coordinator"].concat(),
    ));
    for code in [fixtures::INVITE_CODE, "ffffffffffffffffffffffffffffffff"] {
        server.push((format!("invite-{code}"), [&[1u8][..], code.as_bytes()].concat()));
    }
    for range in ["bytes=0-99", "bytes=-5", "bytes=10-", "bytes=5-2"] {
        server.push((
            format!("range-{range}"),
            [&[2u8][..], &1000u64.to_le_bytes(), range.as_bytes()].concat(),
        ));
    }
    server.push((
        "chunk-last".into(),
        [&[3u8, 0][..], &2u32.to_le_bytes(), &[9u8; 17]].concat(),
    ));
    for (name, bytes) in server {
        write("server_requests", &name.replace(['/', ':', '='], "_"), &bytes);
    }

    // schedule_rules: opening rules and events as offers and events carry them.
    let schedules = [
        ([9u8, 0, 12, 0, 0, 30, 18, 8], "FREQ=WEEKLY;BYDAY=MO,WE\nEurope/Berlin\nFREQ=WEEKLY;BYDAY=TH;COUNT=10\n7,14"),
        ([22, 0, 2, 0, 1, 60, 20, 6], "FREQ=MONTHLY;BYDAY=1TU;COUNT=12\nEurope/Istanbul\nFREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20261231\n"),
        ([8, 30, 8, 30, 0, 7, 9, 4], "FREQ=DAILY;INTERVAL=2\nAmerica/New_York\nFREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29\n0"),
        ([10, 0, 16, 0, 2, 90, 10, 2], "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;UNTIL=20300101T000000Z\nEurope/Kyiv\nFREQ=WEEKLY;WKST=SU;BYDAY=SA,SU;UNTIL=20270101T120000\n"),
    ];
    for (i, (head, text)) in schedules.iter().enumerate() {
        write(
            "schedule_rules",
            &format!("rule-{i}"),
            &[&head[..], text.as_bytes()].concat(),
        );
    }

    // search_query: what people type.
    let queries = [
        "Straße",
        "\"Sprechstunde Caritas\"",
        "caf* -kirche",
        "Muenchen OR Köln",
        "м'ясо Київ",
        "المَدْرَسَة ٣",
        "İstanbul ﬁ Ａ１",
        "\"unclosed -",
        "a AND b NOT c NEAR(d e)",
    ];
    for (i, q) in queries.iter().enumerate() {
        write("search_query", &format!("query-{i}"), q.as_bytes());
    }

    // media_import: small images from the image crate, audio and video from ffmpeg.
    let image = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 10) as u8, (y * 15) as u8, 90]));
    for (name, format) in [
        ("image.png", image::ImageFormat::Png),
        ("image.jpg", image::ImageFormat::Jpeg),
        ("image.gif", image::ImageFormat::Gif),
        ("image.webp", image::ImageFormat::WebP),
    ] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).expect("encode image");
        write("media_import", name, bytes.get_ref());
    }
    let out = tempfile::tempdir().expect("temp dir");
    for (name, args) in [
        (
            "audio.wav",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.1",
                "-ar",
                "8000",
            ][..],
        ),
        (
            "audio.mp3",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.1",
                "-ar",
                "8000",
                "-b:a",
                "8k",
            ],
        ),
        (
            // ID3v2.3 at the start and ID3v1 at the end: both are removed on import.
            "audio-id3v1.mp3",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.1",
                "-ar",
                "8000",
                "-b:a",
                "8k",
                "-id3v2_version",
                "3",
                "-write_id3v1",
                "1",
            ],
        ),
        (
            "audio.opus",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.1",
                "-c:a",
                "libopus",
            ],
        ),
        (
            "audio.aiff",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.1",
                "-ar",
                "8000",
                "-write_id3v2",
                "1",
            ],
        ),
        (
            "audio.ogg",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.1",
                "-ar",
                "8000",
                "-c:a",
                "libvorbis",
            ],
        ),
        (
            "audio.flac",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.1",
                "-ar",
                "8000",
            ],
        ),
        (
            "audio.m4a",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.1",
                "-ar",
                "8000",
                "-c:a",
                "aac",
                "-b:a",
                "8k",
            ],
        ),
        (
            "video.mp4",
            &[
                "-f",
                "lavfi",
                "-i",
                "color=c=red:s=16x16:d=0.1:r=5",
                "-pix_fmt",
                "yuv420p",
            ],
        ),
    ] {
        let path = out.path().join(name);
        let made = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y"])
            .args(args)
            .args([
                "-metadata",
                "title=Seed",
                "-metadata",
                "location=+50.9375+006.9603/",
            ])
            .arg(&path)
            .status();
        if let Ok(status) = made {
            if status.success() {
                write(
                    "media_import",
                    name,
                    &std::fs::read(&path).expect("ffmpeg output"),
                );
            }
        }
    }
}

/// The finding of issue 12 that fuzzing must keep finding fixed: an edit of a base item that
/// nests maps ~180 deep (687 bytes when reported), which overflowed the stack of whoever read
/// the document (the server aborted). A deeper one too, so that a bound, not a bigger stack,
/// is what makes it pass.
pub fn write_nested_maps_regressions() {
    use automerge::transaction::Transactable;
    let dir = fuzz_dir().join("regressions/change_bytes");
    std::fs::create_dir_all(&dir).expect("regressions folder");
    for depth in [180, 5_000] {
        let (_, _, base) = &base_docs()[0];
        let mut doc = base.clone().with_actor(automerge::ActorId::from(&[0x66; 16][..]));
        let mut tx = doc.transaction();
        let mut obj = automerge::ROOT;
        for _ in 0..depth {
            obj = tx
                .put_object(&obj, "x", automerge::ObjType::Map)
                .expect("nested map");
        }
        // Signed and noted as the member's own edit, so the server reads it after applying.
        let note = quartier_core::document::ChangeNote::new(PersonId::from(PERSON), ["body"]);
        tx.commit_with(automerge::transaction::CommitOptions::default().with_message(note.encode()));
        let change = doc.get_last_local_change().expect("the change");
        std::fs::write(dir.join(format!("nested-maps-{depth}")), change.raw_bytes()).expect("write");
    }
}
