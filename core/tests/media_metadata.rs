//! Video and MP4 audio lose their location and personal metadata on import (`docs/media.md`):
//! real files made by ffmpeg, carrying a GPS position (ISO 6709, as phones write it), a title,
//! an artist and a comment in each container's own way (MP4 `meta`/`keys`, MOV `udta`/`©xyz`,
//! M4A `udta`/`meta`/`ilst`), must be stored without any of them and still decode (ffprobe,
//! and a full decode by ffmpeg).
//!
//! Needs `ffmpeg`/`ffprobe` (Debian: `apt-get install -y ffmpeg`; `scripts/test-all` installs
//! it). Without them the test says so and is skipped, unless `QUARTIER_REQUIRE_FFMPEG` is set
//! (CI sets it), where it fails.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use quartier_core::media::ImportOptions;
use quartier_core::Error;

const POSITION: &str = "+48.8577+002.2950/";
const SECRETS: [&str; 5] = [
    "+48.8577",
    "002.2950",
    "GeheimTitel",
    "GeheimKuenstler",
    "GeheimKommentar",
];

/// (file name, ffmpeg arguments between the inputs and the metadata, sniffed MIME type, video?)
const CASES: [(&str, &[&str], &str, bool); 3] = [
    (
        "phone.mp4",
        &[
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-movflags",
            "use_metadata_tags",
        ],
        "video/mp4",
        true,
    ),
    (
        "phone.mov",
        &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
        "video/quicktime",
        true,
    ),
    ("voice.m4a", &["-vn", "-c:a", "aac"], "audio/mp4", false),
];

fn tools_present() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Whether to run; panics when ffmpeg is required (CI) but missing.
fn ffmpeg_or_skip() -> bool {
    if tools_present() {
        return true;
    }
    if std::env::var_os("QUARTIER_REQUIRE_FFMPEG").is_some() {
        panic!("ffmpeg/ffprobe are required (QUARTIER_REQUIRE_FFMPEG) but not installed: apt-get install -y ffmpeg");
    }
    eprintln!("SKIPPED: ffmpeg/ffprobe are not installed (apt-get install -y ffmpeg); audio/video metadata stripping not tested");
    false
}

fn make(dir: &Path, name: &str, args: &[&str], video: bool) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y"]);
    if video {
        command.args(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1"]);
    }
    command.args(["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]);
    command.args(args);
    if video {
        command.arg("-shortest");
    }
    for (key, value) in [
        ("title", "GeheimTitel"),
        ("artist", "GeheimKuenstler"),
        ("comment", "GeheimKommentar"),
        ("location", POSITION),
    ] {
        command.args(["-metadata", &format!("{key}={value}")]);
    }
    let out = command.arg(&path).output().expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Stream codecs and the container's duration, as ffprobe reads them.
fn probe(path: &Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let duration = lines.pop().and_then(|d| d.parse().ok()).unwrap_or(f64::NAN);
    (lines, duration)
}

/// Decodes every stream; ffmpeg reports any damage on stderr.
fn decodes(path: &Path) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn audio_and_video_lose_location_and_tags_on_import_and_still_decode() {
    if !ffmpeg_or_skip() {
        return;
    }
    let f = Fixture::new();
    let work = tempfile::tempdir().expect("temp dir");
    for (name, args, mime_type, video) in CASES {
        let path = make(work.path(), name, args, video);
        let original = std::fs::read(&path).expect("read");
        // The input really carries the metadata (at least the title everywhere, and the
        // position where the container has a field for it), or the test proves nothing.
        assert!(
            contains(&original, "GeheimTitel"),
            "{name}: ffmpeg wrote no title"
        );
        if !name.ends_with(".m4a") {
            assert!(
                contains(&original, "+48.8577"),
                "{name}: ffmpeg wrote no position"
            );
        }
        let imported = f
            .store
            .import_media_file(&path, &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{name}: import: {e}"));
        assert_eq!(imported.reference.mime_type, mime_type, "{name}");
        let stored_path = f.store.media_file(&imported.reference.hash).expect("stored");
        let stored = std::fs::read(&stored_path).expect("read stored");
        for secret in SECRETS {
            assert!(
                !contains(&stored, secret),
                "{name}: `{secret}` is still in the stored file"
            );
        }
        assert_eq!(stored.len() as u64, imported.reference.size, "{name}");
        assert_eq!(
            blake3::hash(&stored).to_hex().as_str(),
            imported.reference.hash,
            "{name}: the reference names the stripped bytes"
        );
        let (codecs_before, duration_before) = probe(&path);
        let (codecs_after, duration_after) = probe(&stored_path);
        assert_eq!(codecs_after, codecs_before, "{name}: streams changed");
        assert!(
            (duration_after - duration_before).abs() < 0.05,
            "{name}: {duration_before} s became {duration_after} s"
        );
        decodes(&stored_path).unwrap_or_else(|e| panic!("{name}: the stored file does not decode: {e}"));
        assert!(
            imported.reference.duration_ms.is_some_and(|d| d > 900),
            "{name}: {:?}",
            imported.reference.duration_ms
        );

        // Kept on request, byte for byte (archives that need provenance).
        let kept = f
            .store
            .import_media_file(
                &path,
                &ImportOptions {
                    keep_metadata: true,
                    ..Default::default()
                },
            )
            .expect("import keeping metadata");
        assert_eq!(
            f.store.read_media(&kept.reference.hash).expect("read"),
            original,
            "{name}"
        );
    }
}

#[test]
fn damaged_mp4_box_trees_are_refused_and_nothing_is_stored() {
    if !ffmpeg_or_skip() {
        return;
    }
    let f = Fixture::new();
    let work = tempfile::tempdir().expect("temp dir");
    let path = make(work.path(), "cut.mp4", CASES[0].1, true);
    let bytes = std::fs::read(&path).expect("read");
    let before = f.store.media_awaiting_upload().expect("list").len();
    // Cut inside the box tree, and a box size that runs past the end of the file.
    let mut past_end = bytes.clone();
    past_end[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
    for (what, damaged) in [
        ("cut", bytes[..bytes.len() * 2 / 3].to_vec()),
        ("past the end", past_end),
    ] {
        match f.store.import_media_bytes(&damaged, &ImportOptions::default()) {
            Err(Error::MalformedMedia { mime_type, reason }) => {
                assert_eq!(mime_type, "video/mp4", "{what}: {reason}")
            }
            other => panic!("{what}: expected MalformedMedia, got {other:?}"),
        }
    }
    assert_eq!(f.store.media_awaiting_upload().expect("list").len(), before);
}
