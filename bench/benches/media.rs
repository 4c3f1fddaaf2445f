//! Image processing on import (issue 5): a 12 MP camera JPEG (4000×3000, generated here with
//! photo-like detail) decoded, turned upright, scaled to a preview (1280 px) and a thumbnail
//! (256 px) and encoded; the same with the original re-encoded without metadata (what an
//! import does by default); and a whole `Store::import_media_bytes` (hashing, fsync, SQLite).
//! Prints the medians at the end.

use std::io::Cursor;
use std::time::Duration;

use criterion::Criterion;
use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, Rgb, RgbImage};
use quartier_bench::{criterion_median_ns, data_dir};
use quartier_core::media::{images, ImportOptions};
use quartier_core::{Store, StoreOptions};

const GROUP: &str = "media_12mp";
const FUNCTIONS: &[(&str, &str)] = &[
    ("decode", "decode + orientation"),
    ("preview_and_thumbnail", "decode + preview + thumbnail"),
    (
        "process_default",
        "decode + re-encoded original + preview + thumbnail",
    ),
    (
        "import_media_bytes",
        "Store::import_media_bytes (all of it, files synced)",
    ),
];

/// A 4000×3000 JPEG at quality 90 with gradients and fine texture, about the size a phone
/// writes (a flat image would compress and decode unrealistically fast).
fn camera_jpeg() -> Vec<u8> {
    let (w, h) = (4000u32, 3000u32);
    let img = RgbImage::from_fn(w, h, |x, y| {
        let texture =
            ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761) >> 27) as u8;
        Rgb([
            ((x * 255 / w) as u8).wrapping_add(texture),
            ((y * 255 / h) as u8).wrapping_add(texture / 2),
            (((x + y) / 30) as u8).wrapping_mul(3),
        ])
    });
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut Cursor::new(&mut bytes), 90)
        .encode_image(&img)
        .expect("encode 12 MP JPEG");
    bytes
}

fn bench_media(c: &mut Criterion) {
    let jpeg = camera_jpeg();
    eprintln!("12 MP JPEG: {} bytes", jpeg.len());
    let root = data_dir().join("tmp");
    std::fs::create_dir_all(&root).expect("bench data dir");
    let dir = tempfile::tempdir_in(&root).expect("temp dir");
    let store = Store::open(dir.path().join("store.db"), StoreOptions::default()).expect("open store");

    let mut group = c.benchmark_group(GROUP);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(12));
    group.bench_function("decode", |b| {
        b.iter(|| images::decode(&jpeg, ImageFormat::Jpeg).expect("decode"))
    });
    group.bench_function("preview_and_thumbnail", |b| {
        // keep_metadata: the original is kept as it is, so only the derived files are made.
        b.iter(|| images::process(&jpeg, ImageFormat::Jpeg, true).expect("process"))
    });
    group.bench_function("process_default", |b| {
        b.iter(|| images::process(&jpeg, ImageFormat::Jpeg, false).expect("process"))
    });
    group.bench_function("import_media_bytes", |b| {
        b.iter(|| {
            store
                .import_media_bytes(&jpeg, &ImportOptions::default())
                .expect("import")
        })
    });
    group.finish();
    let processed = images::process(&jpeg, ImageFormat::Jpeg, false).expect("process");
    eprintln!(
        "sizes: original {} bytes, preview {:?} bytes, thumbnail {:?} bytes",
        processed.original.bytes.len(),
        processed.preview.as_ref().map(|p| p.bytes.len()),
        processed.thumbnail.as_ref().map(|t| t.bytes.len())
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_media(&mut c);
    c.final_summary();
    for (function, what) in FUNCTIONS {
        if let Some(ns) = criterion_median_ns(GROUP, function) {
            println!("{GROUP}/{function}: median {:.1} ms — {what}", ns / 1e6);
        }
    }
}
