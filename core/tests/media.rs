//! The local media store: import (bytes and files, MIME sniffed from content), metadata
//! stripping checked with an independent EXIF reader (kamadak-exif), orientation, preview and
//! thumbnail sizes, dedup, typed errors with nothing stored, eviction that never removes an
//! original no server has, downloads checked against their hash, and persistence across reopen.
//! Every image is generated in the test; EXIF is written with kamadak-exif's writer.

use crate::common;

use std::io::Cursor;
use std::path::Path;

use common::*;
use exif::experimental::Writer as ExifWriter;
use exif::{Field, In, Rational, Tag, Value};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageEncoder, ImageFormat, Rgb, RgbImage};
use proptest::prelude::*;
use quartier_core::media::{ImportOptions, LocalMedia, MediaVariant};
use quartier_core::model::*;
use quartier_core::{Error, IncomingChange, Store, StoreOptions};

// ---------------------------------------------------------------------------------------------
// Generated fixtures

/// Camera serial and maker written into test photos; they must never come out again.
const SERIAL: &str = "SN-4711-QUARTIER";
const MAKE: &str = "Testkamera GmbH";

/// A `width`×`height` picture: the top-left quadrant red, the rest blue, plus a little noise
/// from `seed` so that different seeds give different content.
fn picture(width: u32, height: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let noise = ((x.wrapping_mul(31) ^ y.wrapping_mul(17) ^ seed.wrapping_mul(2_654_435_761)) % 7) as u8;
        if x < width / 2 && y < height / 2 {
            Rgb([230 + noise, 20, 20])
        } else {
            Rgb([20, 20, 230 + noise])
        }
    })
}

/// The TIFF body of an EXIF block with orientation, maker, camera serial, time and a GPS
/// position (Cologne), as a phone camera writes it.
fn exif_block(orientation: u16) -> Vec<u8> {
    let fields = [
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![orientation]),
        },
        Field {
            tag: Tag::Make,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![MAKE.as_bytes().to_vec()]),
        },
        Field {
            tag: Tag::BodySerialNumber,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![SERIAL.as_bytes().to_vec()]),
        },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"2026:05:01 10:11:12".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"N".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational { num: 50, denom: 1 },
                Rational { num: 56, denom: 1 },
                Rational {
                    num: 3_312,
                    denom: 100,
                },
            ]),
        },
        Field {
            tag: Tag::GPSLongitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"E".to_vec()]),
        },
        Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational { num: 6, denom: 1 },
                Rational { num: 57, denom: 1 },
                Rational {
                    num: 1_044,
                    denom: 100,
                },
            ]),
        },
    ];
    let mut writer = ExifWriter::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).expect("write EXIF");
    out.into_inner()
}

/// A JPEG of `picture(width, height)` carrying the EXIF block of [`exif_block`].
fn camera_jpeg(width: u32, height: u32, orientation: u16, seed: u32) -> Vec<u8> {
    let img = picture(width, height, seed);
    let mut bytes = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 90);
    encoder
        .set_exif_metadata(exif_block(orientation))
        .expect("EXIF supported");
    encoder
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .expect("encode");
    bytes
}

fn png(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(picture(width, height, seed))
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .expect("encode png");
    bytes
}

/// A PCM WAV file (16-bit mono) of `samples` samples at `rate` Hz; `seed` varies the content.
fn wav(rate: u32, samples: u32, seed: u32) -> Vec<u8> {
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let sample = (i.wrapping_mul(31).wrapping_add(seed.wrapping_mul(977)) % 2000) as i16 - 1000;
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Every EXIF block an independent reader finds in `bytes` (JPEG, PNG, WebP containers).
fn exif_of(bytes: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()
}

/// No EXIF, and none of the identifying strings anywhere in the file.
fn assert_no_metadata(bytes: &[u8], what: &str) {
    assert!(exif_of(bytes).is_none(), "{what}: EXIF found");
    for needle in [b"Exif\0\0".as_slice(), SERIAL.as_bytes(), MAKE.as_bytes()] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{what}: contains {:?}",
            String::from_utf8_lossy(needle)
        );
    }
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("stored image decodes")
}

fn is_red(p: Rgb<u8>) -> bool {
    p[0] > 180 && p[2] < 80
}

fn is_blue(p: Rgb<u8>) -> bool {
    p[2] > 180 && p[0] < 80
}

fn open(dir: &Path) -> Store {
    Store::open(dir.join("store.db"), StoreOptions::default()).expect("open store")
}

/// Files in the media folder (the temporary folder excluded).
fn media_files(store: &Store) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store.media_dir()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Files left in the temporary folder.
fn temp_files(store: &Store) -> usize {
    std::fs::read_dir(store.media_temp_dir())
        .map(|entries| entries.count())
        .unwrap_or(0)
}

fn defaults() -> ImportOptions {
    ImportOptions::default()
}

// ---------------------------------------------------------------------------------------------
// Images: metadata, orientation, sizes

#[test]
fn camera_photo_loses_all_metadata_and_is_turned_upright() {
    let f = Fixture::new();
    // 2000×1000 as stored by the sensor, orientation 6: shown rotated 90° clockwise.
    let input = camera_jpeg(2000, 1000, 6, 1);
    let exif = exif_of(&input).expect("the input carries EXIF");
    assert!(exif.get_field(Tag::GPSLatitude, In::PRIMARY).is_some());
    assert!(exif.get_field(Tag::BodySerialNumber, In::PRIMARY).is_some());
    assert_eq!(
        exif.get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0)),
        Some(6)
    );

    let imported = f.store.import_media_bytes(&input, &defaults()).expect("import");
    let r = &imported.reference;
    assert_eq!(r.mime_type, "image/jpeg");
    assert_eq!(
        (r.width, r.height),
        (Some(1000), Some(2000)),
        "dimensions as displayed"
    );
    let preview = r.preview.as_ref().expect("preview");
    let thumbnail = r.thumbnail.as_ref().expect("thumbnail");
    assert_eq!(
        r.hashes(),
        vec![r.hash.as_str(), preview.hash.as_str(), thumbnail.hash.as_str()]
    );
    assert_eq!(
        imported.stored.iter().map(|m| m.variant).collect::<Vec<_>>(),
        [
            MediaVariant::Original,
            MediaVariant::Preview,
            MediaVariant::Thumbnail
        ]
    );

    for (hash, what, (w, h)) in [
        (&r.hash, "original", (1000, 2000)),
        (&preview.hash, "preview", (640, 1280)),
        (&thumbnail.hash, "thumbnail", (128, 256)),
    ] {
        let bytes = f.store.read_media(hash).expect("read stored file");
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            hash.as_str(),
            "{what}: content address"
        );
        assert_no_metadata(&bytes, what);
        let img = decode(&bytes).to_rgb8();
        assert_eq!(img.dimensions(), (w, h), "{what}: dimensions");
        // The sensor's top-left (red) quadrant is the top-right one once turned clockwise.
        let m = w / 10;
        assert!(is_red(*img.get_pixel(w - 1 - m, m)), "{what}: top right is red");
        assert!(is_blue(*img.get_pixel(m, m)), "{what}: top left is blue");
        assert!(
            is_blue(*img.get_pixel(w - 1 - m, h - 1 - m)),
            "{what}: bottom right is blue"
        );
    }
    assert_eq!((preview.width, preview.height), (640, 1280));
    assert_eq!((thumbnail.width, thumbnail.height), (128, 256));
    assert_eq!(preview.mime_type, "image/jpeg");
}

#[test]
fn keep_metadata_keeps_the_original_bytes_but_never_in_derived_files() {
    let f = Fixture::new();
    let input = camera_jpeg(1600, 1200, 6, 2);
    let options = ImportOptions {
        keep_metadata: true,
        pinned: false,
    };
    let imported = f.store.import_media_bytes(&input, &options).expect("import");
    let r = &imported.reference;
    let original = f.store.read_media(&r.hash).expect("original");
    assert_eq!(original, input);
    assert!(exif_of(&original)
        .and_then(|e| e.get_field(Tag::GPSLatitude, In::PRIMARY).cloned())
        .is_some());
    assert_eq!((r.width, r.height), (Some(1200), Some(1600)));
    for variant in [&r.preview, &r.thumbnail] {
        let v = variant.as_ref().expect("derived file");
        assert_no_metadata(&f.store.read_media(&v.hash).expect("read"), "derived");
    }
}

#[test]
fn derived_files_are_made_only_for_images_larger_than_them() {
    let f = Fixture::new();
    for (w, h, preview, thumbnail) in [
        (4000, 3000, Some((1280, 960)), Some((256, 192))),
        (1281, 300, Some((1280, 300)), Some((256, 60))),
        (1280, 720, None, Some((256, 144))),
        (300, 1000, None, Some((77, 256))),
        (256, 100, None, None),
        (10, 10, None, None),
    ] {
        let imported = f
            .store
            .import_media_bytes(&camera_jpeg(w, h, 1, w * h), &defaults())
            .expect("import");
        let r = imported.reference;
        assert_eq!((r.width, r.height), (Some(w as i32), Some(h as i32)));
        assert_eq!(
            r.preview.as_ref().map(|v| (v.width, v.height)),
            preview,
            "{w}×{h} preview"
        );
        assert_eq!(
            r.thumbnail.as_ref().map(|v| (v.width, v.height)),
            thumbnail,
            "{w}×{h} thumbnail"
        );
        for v in r.preview.iter().chain(&r.thumbnail) {
            let img = decode(&f.store.read_media(&v.hash).expect("read"));
            assert_eq!((img.width() as i32, img.height() as i32), (v.width, v.height));
            assert!(img.width().max(img.height()) <= 1280);
        }
        if let Some(t) = &r.thumbnail {
            assert!(t.width.max(t.height) <= 256);
        }
        assert_eq!(
            imported.stored.len(),
            1 + preview.iter().count() + thumbnail.iter().count()
        );
    }
}

#[test]
fn png_stays_png_without_text_chunks_and_transparent_images_get_png_previews() {
    let f = Fixture::new();
    // A PNG with a tEXt chunk naming a place: re-encoding must drop it.
    let mut input = png(600, 400, 3);
    let mut chunk = Vec::new();
    let text = b"Comment\0Aufgenommen in Nippes";
    chunk.extend_from_slice(&(text.len() as u32).to_be_bytes());
    chunk.extend_from_slice(b"tEXt");
    chunk.extend_from_slice(text);
    let crc = crc_of(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    input.splice(33..33, chunk); // after the signature (8) and IHDR (25)
    assert!(decode(&input).width() == 600, "the fixture is a valid PNG");

    let imported = f.store.import_media_bytes(&input, &defaults()).expect("import");
    assert_eq!(imported.reference.mime_type, "image/png");
    let stored = f.store.read_media(&imported.reference.hash).expect("read");
    assert!(!stored.windows(6).any(|w| w == b"Nippes"));
    assert_eq!(decode(&stored).to_rgb8(), picture(600, 400, 3), "lossless");
    let thumb = imported.reference.thumbnail.expect("thumbnail");
    assert_eq!(thumb.mime_type, "image/jpeg", "opaque: JPEG thumbnail");

    let mut rgba = Vec::new();
    DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
        500,
        500,
        image::Rgba([0, 200, 0, 100]),
    ))
    .write_to(&mut Cursor::new(&mut rgba), ImageFormat::Png)
    .expect("encode");
    let imported = f.store.import_media_bytes(&rgba, &defaults()).expect("import");
    let thumb = imported.reference.thumbnail.expect("thumbnail");
    assert_eq!(thumb.mime_type, "image/png", "transparency kept");
    let img = decode(&f.store.read_media(&thumb.hash).expect("read")).to_rgba8();
    assert!((99..=101).contains(&img.get_pixel(10, 10)[3]), "alpha kept");
}

/// CRC-32 (PNG chunks), bitwise; only for building a fixture.
fn crc_of(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

// ---------------------------------------------------------------------------------------------
// Sniffing and bad input

#[test]
fn the_type_comes_from_the_content_not_the_name() {
    let f = Fixture::new();
    let path = f.dir.path().join("holiday.png");
    std::fs::write(&path, camera_jpeg(400, 300, 1, 4)).expect("write");
    let imported = f.store.import_media_file(&path, &defaults()).expect("import");
    assert_eq!(imported.reference.mime_type, "image/jpeg");

    let path = f.dir.path().join("recording.jpg");
    std::fs::write(&path, wav(8_000, 12_000, 1)).expect("write");
    let imported = f.store.import_media_file(&path, &defaults()).expect("import");
    assert_eq!(imported.reference.mime_type, "audio/wav");
    assert_eq!(imported.reference.duration_ms, Some(1_500));
    assert_eq!(
        (imported.reference.width, imported.reference.preview.is_some()),
        (None, false)
    );
}

#[test]
fn unsupported_and_malformed_files_are_typed_errors_and_store_nothing() {
    let f = Fixture::new();
    let jpeg = camera_jpeg(800, 600, 6, 5);
    let mut corrupt = jpeg[..200].to_vec();
    corrupt.extend(std::iter::repeat_n(0x5a, 5_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"this is not a photo at all, just some words".to_vec()),
        ("empty", Vec::new()),
        ("pdf", b"%PDF-1.4\n1 0 obj << >> endobj\n".to_vec()),
        ("jpeg header only", jpeg[..4].to_vec()),
        ("jpeg with garbage after the header", corrupt),
        ("png header only", png(10, 10, 0)[..20].to_vec()),
        ("truncated jpeg", jpeg[..jpeg.len() / 2].to_vec()),
        ("jpeg without its end marker", jpeg[..jpeg.len() - 2].to_vec()),
        ("truncated png", png(300, 200, 9)[..5_000].to_vec()),
    ];
    for (what, bytes) in &cases {
        let err = f.store.import_media_bytes(bytes, &defaults()).expect_err(what);
        assert!(
            matches!(err, Error::UnsupportedMedia { .. } | Error::MalformedMedia { .. }),
            "{what}: {err:?}"
        );
        assert!(!err.to_string().is_empty());
        let path = f.dir.path().join("input.bin");
        std::fs::write(&path, bytes).expect("write");
        let err = f.store.import_media_file(&path, &defaults()).expect_err(what);
        assert!(
            matches!(err, Error::UnsupportedMedia { .. } | Error::MalformedMedia { .. }),
            "{what} (file): {err:?}"
        );
    }
    match f.store.import_media_bytes(b"%PDF-1.4\n", &defaults()) {
        Err(Error::UnsupportedMedia { mime_type, .. }) => assert_eq!(mime_type, "application/pdf"),
        other => panic!("pdf: {other:?}"),
    }
    let err = f
        .store
        .import_media_file(&f.dir.path().join("does-not-exist.jpg"), &defaults())
        .expect_err("missing file");
    assert!(matches!(err, Error::MediaIo { .. }), "{err:?}");

    assert!(media_files(&f.store).is_empty(), "no file stored");
    assert_eq!(temp_files(&f.store), 0, "no temporary file left");
    assert!(
        f.store.media_awaiting_upload().expect("list").is_empty(),
        "no row stored"
    );
}

/// A JPEG whose frame header claims `width`×`height` (the data is a small image's).
fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = camera_jpeg(64, 64, 1, 6);
    let sof = bytes
        .windows(2)
        .position(|w| w[0] == 0xff && matches!(w[1], 0xc0..=0xc2))
        .expect("frame header");
    // FF Cx, length (2), precision (1), height (2), width (2)
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    let f = Fixture::new();
    for (w, h) in [(20_000, 100), (100, 30_000), (15_000, 15_000)] {
        let err = f
            .store
            .import_media_bytes(&jpeg_claiming(w, h), &defaults())
            .expect_err("too large");
        assert!(matches!(err, Error::MediaTooLarge { .. }), "{w}×{h}: {err:?}");
    }
    assert!(media_files(&f.store).is_empty());
}

#[test]
fn hashes_from_outside_are_checked_before_they_name_a_file() {
    let f = Fixture::new();
    let (g, upper) = ("g".repeat(64), "A".repeat(64));
    for bad in ["../store.db", "", "ABCDEF", g.as_str(), upper.as_str()] {
        assert!(
            matches!(f.store.media_file(bad), Err(Error::Invalid { .. })),
            "{bad}"
        );
        assert!(
            matches!(f.store.media_info(bad), Err(Error::Invalid { .. })),
            "{bad}"
        );
        assert!(
            matches!(f.store.read_media(bad), Err(Error::Invalid { .. })),
            "{bad}"
        );
    }
    let unknown = "0".repeat(64);
    assert!(matches!(
        f.store.media_file(&unknown),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        f.store.mark_media_on_server(&unknown),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        f.store.set_media_pinned(&unknown, true),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(f.store.media_info(&unknown).expect("info"), None);
}

// ---------------------------------------------------------------------------------------------
// Dedup, upload queue, downloads

#[test]
fn the_same_content_is_stored_once() {
    let f = Fixture::new();
    let input = camera_jpeg(1500, 1000, 1, 7);
    let first = f.store.import_media_bytes(&input, &defaults()).expect("import");
    let files = media_files(&f.store);
    assert_eq!(files.len(), 3);
    let pinned = ImportOptions {
        keep_metadata: false,
        pinned: true,
    };
    let second = f.store.import_media_bytes(&input, &pinned).expect("import again");
    assert_eq!(first.reference, second.reference);
    assert_eq!(media_files(&f.store), files);
    assert!(second.stored.iter().all(|m| m.pinned), "a second import may pin");
    assert_eq!(f.store.media_awaiting_upload().expect("list").len(), 3);
    let third = f.store.import_media_bytes(&input, &defaults()).expect("import");
    assert!(
        third.stored.iter().all(|m| m.pinned),
        "a plain import never unpins"
    );
}

#[test]
fn uploads_go_thumbnails_first_and_leave_the_queue_when_the_server_has_them() {
    let f = Fixture::new();
    let a = f
        .store
        .import_media_bytes(&camera_jpeg(2000, 1500, 1, 8), &defaults())
        .expect("a");
    let b = f
        .store
        .import_media_bytes(&wav(8_000, 800, 2), &defaults())
        .expect("b");
    let queue = f.store.media_awaiting_upload().expect("queue");
    let order: Vec<(MediaVariant, &str)> = queue.iter().map(|m| (m.variant, m.hash.as_str())).collect();
    let r = &a.reference;
    assert_eq!(
        order,
        vec![
            (
                MediaVariant::Thumbnail,
                r.thumbnail.as_ref().expect("t").hash.as_str()
            ),
            (
                MediaVariant::Preview,
                r.preview.as_ref().expect("p").hash.as_str()
            ),
            (MediaVariant::Original, r.hash.as_str()),
            (MediaVariant::Original, b.reference.hash.as_str()),
        ]
    );
    assert_eq!(queue[0].of.as_deref(), Some(r.hash.as_str()));
    assert_eq!(queue[2].of, None);
    for m in &queue[..2] {
        f.store.mark_media_on_server(&m.hash).expect("mark");
    }
    let left: Vec<String> = f
        .store
        .media_awaiting_upload()
        .expect("queue")
        .into_iter()
        .map(|m| m.hash)
        .collect();
    assert_eq!(left, vec![r.hash.clone(), b.reference.hash.clone()]);
    assert!(
        f.store
            .media_info(&queue[0].hash)
            .expect("info")
            .expect("row")
            .on_server
    );
}

#[test]
fn downloads_are_adopted_only_with_the_right_content() {
    let dir = tempfile::tempdir().expect("dir");
    let sender = Store::open(dir.path().join("a.db"), StoreOptions::default()).expect("a");
    let receiver = Store::open(dir.path().join("b.db"), StoreOptions::default()).expect("b");
    let imported = sender
        .import_media_bytes(&camera_jpeg(1400, 900, 1, 9), &defaults())
        .expect("import");
    let expected = LocalMedia::for_reference(&imported.reference);
    assert_eq!(expected.len(), 3);
    assert_eq!(receiver.media_info(&expected[0].hash).expect("info"), None);

    // A download whose bytes are not what the hash says: refused, partial file removed.
    let wrong = receiver.media_temp_dir().join("download-1");
    std::fs::write(&wrong, b"not the thumbnail").expect("write");
    let err = receiver
        .adopt_downloaded_media(&wrong, &expected[2])
        .expect_err("mismatch");
    assert!(matches!(err, Error::MediaHashMismatch { .. }), "{err:?}");
    assert!(!wrong.exists());
    assert_eq!(receiver.media_info(&expected[2].hash).expect("info"), None);

    for want in &expected {
        let part = receiver
            .media_temp_dir()
            .join(format!("download-{}", &want.hash[..8]));
        std::fs::write(&part, sender.read_media(&want.hash).expect("read")).expect("write");
        let adopted = receiver.adopt_downloaded_media(&part, want).expect("adopt");
        assert!(adopted.present && adopted.on_server && !adopted.pinned);
        assert_eq!((adopted.variant, &adopted.of), (want.variant, &want.of));
        assert!(!part.exists(), "moved, not copied");
        assert_eq!(
            receiver.read_media(&want.hash).expect("read"),
            sender.read_media(&want.hash).expect("read")
        );
    }
    assert!(
        receiver.media_awaiting_upload().expect("queue").is_empty(),
        "downloads are not uploaded"
    );
}

// ---------------------------------------------------------------------------------------------
// Eviction

/// Sets a file's last use directly in the database, to order eviction without waiting.
fn set_last_access(store: &Store, hash: &str, ms: i64) {
    let conn = rusqlite::Connection::open(store.path()).expect("open db");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("timeout");
    conn.execute(
        "UPDATE media SET last_access_ms = ?2 WHERE hash = ?1",
        rusqlite::params![hash, ms],
    )
    .expect("update");
}

#[test]
fn eviction_removes_least_recently_used_synced_files_and_keeps_the_rows() {
    let f = Fixture::new();
    let files: Vec<LocalMedia> = (0..4)
        .map(|i| {
            let m = f
                .store
                .import_media_bytes(&wav(8_000, 5_000, i), &defaults())
                .expect("import");
            m.stored[0].clone()
        })
        .collect();
    let size = files[0].size;
    for (i, m) in files.iter().enumerate() {
        f.store.mark_media_on_server(&m.hash).expect("mark");
        set_last_access(&f.store, &m.hash, 1_000 + i as i64);
    }
    // Oldest use: files[0], then 1, 2, 3. Pin files[1]. Budget for two files.
    f.store.set_media_pinned(&files[1].hash, true).expect("pin");
    f.store.set_media_budget(0).expect("budget");
    f.store.set_media_budget(i64::MAX).expect("budget");
    // A negative budget (the API is signed for Kotlin and Swift) is refused and changes nothing.
    assert!(matches!(f.store.set_media_budget(-1), Err(Error::Invalid { .. })));
    assert_eq!(f.store.media_budget().expect("budget"), i64::MAX);
    assert!(files.iter().skip(2).all(|m| f
        .store
        .media_info(&m.hash)
        .expect("info")
        .is_some_and(|i| !i.present)));
    assert!(
        f.store
            .media_info(&files[1].hash)
            .expect("info")
            .expect("row")
            .present,
        "pinned stays"
    );

    // Fetch the evicted ones back, then evict with a budget of two files.
    for m in files.iter().filter(|m| m.hash != files[1].hash) {
        let part = f.store.media_temp_dir().join("part");
        std::fs::write(
            &part,
            wav(8_000, 5_000, files.iter().position(|x| x == m).expect("i") as u32),
        )
        .expect("write");
        f.store.adopt_downloaded_media(&part, m).expect("adopt");
    }
    for (i, m) in files.iter().enumerate() {
        set_last_access(&f.store, &m.hash, 1_000 + i as i64);
    }
    f.store.set_media_budget(2 * size).expect("budget");
    let present: Vec<bool> = files
        .iter()
        .map(|m| f.store.media_info(&m.hash).expect("info").expect("row").present)
        .collect();
    assert_eq!(
        present,
        vec![false, true, false, true],
        "LRU order, pinned skipped"
    );
    assert!(matches!(
        f.store.media_file(&files[0].hash),
        Err(Error::NotFound { .. })
    ));
    assert!(!f.store.media_dir().join(&files[0].hash).exists());
    assert_eq!(f.store.media_budget().expect("budget"), 2 * size);
    let report = f.store.evict_media().expect("evict");
    assert_eq!((report.evicted.len(), report.present_bytes), (0, 2 * size));
}

#[test]
fn nothing_is_evicted_that_no_server_has() {
    let f = Fixture::new();
    let photo = f
        .store
        .import_media_bytes(&camera_jpeg(1400, 1400, 1, 10), &defaults())
        .expect("import");
    f.store.set_media_budget(0).expect("budget");
    let report = f.store.evict_media().expect("evict");
    assert!(report.evicted.is_empty());
    assert!(
        report.present_bytes > report.budget,
        "over budget, but nothing may go"
    );
    for hash in photo.reference.hashes() {
        assert!(f.store.read_media(hash).is_ok());
    }
    // Once the server has the thumbnail, only the thumbnail may go.
    let thumb = photo
        .reference
        .thumbnail
        .as_ref()
        .expect("thumbnail")
        .hash
        .clone();
    f.store.mark_media_on_server(&thumb).expect("mark");
    assert_eq!(f.store.evict_media().expect("evict").evicted, vec![thumb]);
    assert!(f.store.read_media(&photo.reference.hash).is_ok());
}

/// One step of the eviction property.
#[derive(Clone, Debug)]
enum Op {
    Import { samples: u32, pinned: bool },
    MarkOnServer(usize),
    Pin(usize, bool),
    Budget(i64),
    Evict,
    Touch(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (100u32..4_000, any::<bool>()).prop_map(|(samples, pinned)| Op::Import { samples, pinned }),
        3 => (0usize..32).prop_map(Op::MarkOnServer),
        1 => (0usize..32, any::<bool>()).prop_map(|(i, p)| Op::Pin(i, p)),
        2 => (0i64..20_000).prop_map(Op::Budget),
        1 => Just(Op::Evict),
        1 => (0usize..32).prop_map(Op::Touch),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever happens, every file no server has and every file pinned while present is still
    /// on the device with the right content, and after an eviction the store is within budget
    /// unless only protected files are left. (Pinning an evicted file does not fetch it.)
    #[test]
    fn eviction_never_loses_an_unsynced_or_pinned_file(ops in prop::collection::vec(op(), 1..40)) {
        let f = Fixture::new();
        let mut known: Vec<(String, Vec<u8>)> = Vec::new();
        let mut pinned_present = std::collections::BTreeSet::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Import { samples, pinned } => {
                    let bytes = wav(8_000, samples, step as u32);
                    let options = ImportOptions { keep_metadata: false, pinned };
                    let m = f.store.import_media_bytes(&bytes, &options).expect("import");
                    if pinned {
                        pinned_present.insert(m.reference.hash.clone());
                    }
                    known.push((m.reference.hash, bytes));
                }
                Op::MarkOnServer(i) if !known.is_empty() => {
                    f.store.mark_media_on_server(&known[i % known.len()].0).expect("mark");
                }
                Op::Pin(i, pinned) if !known.is_empty() => {
                    let hash = &known[i % known.len()].0;
                    f.store.set_media_pinned(hash, pinned).expect("pin");
                    let present = f.store.media_info(hash).expect("info").is_some_and(|m| m.present);
                    if pinned && present {
                        pinned_present.insert(hash.clone());
                    } else {
                        pinned_present.remove(hash);
                    }
                }
                Op::Touch(i) if !known.is_empty() => {
                    let _ = f.store.media_file(&known[i % known.len()].0);
                }
                Op::Budget(bytes) => f.store.set_media_budget(bytes).expect("budget"),
                Op::Evict => {
                    let report = f.store.evict_media().expect("evict");
                    if report.present_bytes > report.budget {
                        for (hash, _) in &known {
                            let info = f.store.media_info(hash).expect("info").expect("row");
                            prop_assert!(!info.present || !info.on_server || info.pinned,
                                "an evictable file is left while over budget");
                        }
                    }
                }
                _ => {}
            }
            for (hash, bytes) in &known {
                let info = f.store.media_info(hash).expect("info").expect("row");
                prop_assert_eq!(info.pinned, pinned_present.contains(hash) || (info.pinned && !info.present));
                if !info.on_server || pinned_present.contains(hash) {
                    prop_assert!(info.present, "protected file evicted");
                    prop_assert_eq!(&f.store.read_media(hash).expect("read"), bytes);
                }
                prop_assert_eq!(info.present, f.store.media_dir().join(hash).is_file());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Persistence and items

#[test]
fn media_rows_files_and_budget_survive_reopening() {
    let dir = tempfile::tempdir().expect("dir");
    let (reference, stored) = {
        let store = open(dir.path());
        let m = store
            .import_media_bytes(&camera_jpeg(1300, 700, 1, 11), &defaults())
            .expect("import");
        store.mark_media_on_server(&m.reference.hash).expect("mark");
        store.set_media_budget(123_456_789).expect("budget");
        store.close().expect("close");
        (m.reference, m.stored)
    };
    let store = open(dir.path());
    assert_eq!(store.media_budget().expect("budget"), 123_456_789);
    for m in &stored {
        let info = store.media_info(&m.hash).expect("info").expect("row");
        assert_eq!(info.on_server, m.hash == reference.hash);
        assert_eq!((info.variant, info.size, info.present), (m.variant, m.size, true));
        assert!(store.read_media(&m.hash).is_ok());
    }
    assert_eq!(store.media_awaiting_upload().expect("queue").len(), 2);
}

#[test]
fn a_file_removed_behind_the_stores_back_is_reported_missing_and_fetched_again() {
    let f = Fixture::new();
    let m = f
        .store
        .import_media_bytes(&wav(8_000, 1_000, 3), &defaults())
        .expect("import");
    let hash = &m.reference.hash;
    std::fs::remove_file(f.store.media_dir().join(hash)).expect("remove");
    assert!(matches!(f.store.read_media(hash), Err(Error::NotFound { .. })));
    assert!(!f.store.media_info(hash).expect("info").expect("row").present);
}

#[test]
fn media_references_with_variants_round_trip_through_items_and_sync() {
    let f = Fixture::new();
    let m = f
        .store
        .import_media_bytes(&camera_jpeg(2400, 1600, 6, 12), &defaults())
        .expect("import");
    let mut reference = m.reference.clone();
    reference.alt_text = LocalizedText::single("de", "Der Hof mit Kuchenbuffet");
    let mut content = post("Hoffest", "Fotos vom Fest");
    content.media = vec![reference.clone(), MediaRef::new("a".repeat(64), "image/jpeg", 10)];
    let item = f.create(content);
    assert_eq!(item.content.media[0], reference);

    let detail = f.store.item_detail(item.id, &f.author_viewer()).expect("detail");
    assert_eq!(detail.item.content.media, item.content.media);

    // Through Automerge into another store.
    let other = Store::open(f.dir.path().join("other.db"), StoreOptions::default()).expect("other");
    let changes: Vec<IncomingChange> = f
        .store
        .pending_changes(1_000)
        .expect("pending")
        .iter()
        .map(IncomingChange::from)
        .collect();
    other.apply_changes(&changes).expect("apply");
    let copied = other.item_detail(item.id, &f.author_viewer()).expect("detail");
    assert_eq!(copied.item.content.media, item.content.media);
    let on_item = &copied.item.content.media[0];
    assert_eq!((on_item.width, on_item.height), (Some(1600), Some(2400)));
    assert_eq!(
        on_item.thumbnail.as_ref().map(|t| (t.width, t.height)),
        Some((171, 256))
    );

    // A bad variant hash on an item is refused like a bad original hash.
    let mut bad = reference;
    if let Some(p) = bad.preview.as_mut() {
        p.hash = "../../etc/passwd".into();
    }
    let mut content = post("Kaputt", "x");
    content.media = vec![bad];
    let err = f
        .store
        .create_item(NewItem::new(f.space, f.author, content))
        .expect_err("invalid");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// The transfer queue's plan

#[test]
fn the_upload_plan_puts_each_file_into_every_space_that_uses_it_without_reading_the_items_once_per_file() {
    use quartier_core::sync::{SyncClient, TransferQueue};
    let f = Fixture::new();
    let other = f.other_space("Ehrenfeld");
    const FILES: usize = 500;
    let mut expected: std::collections::BTreeSet<(String, String)> = Default::default();
    for i in 0..FILES {
        // Audio is stored as one file: cheap to import, one file per item.
        let bytes = wav(8000, 16, i as u32);
        let imported = f.store.import_media_bytes(&bytes, &defaults()).expect("import");
        let space = if i % 2 == 0 { f.space } else { other };
        let mut content = post(&format!("Nr. {i}"), "Text");
        content.media = vec![imported.reference.clone()];
        f.store
            .create_item(NewItem::new(space, f.author, content.clone()))
            .expect("item");
        expected.insert((imported.reference.hash.clone(), space.to_string()));
        // A newer item elsewhere references the same file: it goes into that space too (the
        // server lets a space's members fetch only what was uploaded into it).
        if i % 10 == 0 {
            let elsewhere = if space == f.space { other } else { f.space };
            f.store
                .create_item(NewItem::new(elsewhere, f.author, content))
                .expect("second item");
            expected.insert((imported.reference.hash, elsewhere.to_string()));
        }
    }
    let client = SyncClient::new("http://127.0.0.1:9").expect("client");
    let queue = TransferQueue::new(&client).expect("queue");
    let started = std::time::Instant::now();
    let (plan, deferred) = queue.plan(&f.store).expect("plan");
    let took = started.elapsed();
    assert_eq!((plan.len(), deferred), (FILES + FILES / 10, 0));
    let planned: std::collections::BTreeSet<(String, String)> = plan
        .iter()
        .map(|t| (t.media.hash.clone(), t.space.clone().expect("a space")))
        .collect();
    assert_eq!(planned, expected);
    // Once a file is in a space, that space is done; the other stays due.
    let first = &plan[0];
    f.store
        .mark_media_in_space(&first.media.hash, first.space.as_deref().expect("space"))
        .expect("mark");
    let (again, _) = queue.plan(&f.store).expect("plan");
    assert_eq!(again.len(), plan.len() - 1);
    assert!(!again.contains(first));
    // Reading every item once per pending file took seconds here (500 × 550 references).
    assert!(
        took < std::time::Duration::from_millis(1_000),
        "planning {FILES} uploads took {took:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Garbage collection

#[test]
fn media_no_item_references_is_collected_after_the_grace_period_and_pinned_media_stays() {
    let f = Fixture::new();
    let audio = |n: u32| wav(8000, 800, n);
    let attach = |reference: MediaRef, title: &str| {
        let mut content = post(title, "Text");
        content.media = vec![reference];
        f.create(content)
    };
    let photo = f
        .store
        .import_media_bytes(&png(1400, 900, 7), &defaults())
        .expect("photo");
    assert_eq!(photo.stored.len(), 3, "original, preview, thumbnail");
    attach(photo.reference.clone(), "Bleibt");
    let dropped = f
        .store
        .import_media_bytes(&audio(1), &defaults())
        .expect("import");
    let gone = attach(dropped.reference.clone(), "Geht");
    f.store.delete_item(gone.id, f.author).expect("delete");
    let loose = f
        .store
        .import_media_bytes(&audio(2), &defaults())
        .expect("import");
    let pinned = f
        .store
        .import_media_bytes(
            &audio(3),
            &ImportOptions {
                pinned: true,
                ..defaults()
            },
        )
        .expect("import");

    let report = f
        .store
        .collect_media_garbage(std::time::Duration::from_secs(3600))
        .expect("collect");
    assert!(report.removed.is_empty(), "within the grace period: {report:?}");
    let report = f
        .store
        .collect_media_garbage(std::time::Duration::ZERO)
        .expect("collect");
    let mut expected = vec![dropped.reference.hash.clone(), loose.reference.hash.clone()];
    expected.sort();
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, expected);
    assert_eq!(report.freed_bytes, dropped.reference.size + loose.reference.size);
    for hash in &expected {
        assert!(f.store.media_info(hash).expect("info").is_none());
        assert!(!f.store.media_dir().join(hash).exists(), "the file is gone");
    }
    for kept in photo
        .reference
        .hashes()
        .into_iter()
        .chain([pinned.reference.hash.as_str()])
    {
        assert!(f.store.media_file(kept).is_ok(), "{kept} stays");
    }
    let mut files = media_files(&f.store);
    files.sort();
    assert_eq!(files.len(), 4);
}
