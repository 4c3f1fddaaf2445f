//! Audio and video lose their location and personal metadata on import (`docs/media.md`):
//! real files made by ffmpeg, carrying a GPS position (ISO 6709, as phones write it), a title,
//! an artist and a comment in each container's own way (MP4 `meta`/`keys`, MOV `udta`/`©xyz`,
//! M4A `udta`/`meta`/`ilst`; MP3 ID3v2 and ID3v1; FLAC Vorbis comments and a cover picture; Ogg
//! Vorbis and Opus comment headers; WAV RIFF INFO; AIFF text and ID3 chunks), must be stored
//! without any of them (neither in the bytes nor in what ffprobe reports) and still decode
//! (ffprobe, and a full decode by ffmpeg) with the same duration.
//!
//! Needs `ffmpeg`/`ffprobe` (Debian: `apt-get install -y ffmpeg`; `scripts/test-all` installs
//! it). Without them the tests say so and are skipped, unless `QUARTIER_REQUIRE_FFMPEG` is set
//! (CI sets it), where they fail.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use quartier_core::media::ImportOptions;
use quartier_core::Error;

const POSITION: &str = "+48.8577+002.2950/";
const SECRETS: [&str; 6] = [
    "+48.8577",
    "002.2950",
    "GeheimTitel",
    "GeheimKuenstler",
    "GeheimKommentar",
    "GeheimBild",
];

/// A file to make with ffmpeg and import.
struct Case {
    name: &'static str,
    /// ffmpeg arguments between the inputs and the metadata.
    args: &'static [&'static str],
    /// The MIME type the store sniffs.
    mime_type: &'static str,
    /// With a test picture as video stream (`Cover` makes it an attached cover picture).
    picture: Picture,
    /// Whether the container has a field ffmpeg writes the position into.
    has_position: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Picture {
    None,
    Video,
    Cover,
}

const MP4: Case = Case {
    name: "phone.mp4",
    args: &[
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-movflags",
        "use_metadata_tags",
    ],
    mime_type: "video/mp4",
    picture: Picture::Video,
    has_position: true,
};

const MP4_FAMILY: [Case; 3] = [
    MP4,
    Case {
        name: "phone.mov",
        args: &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
        mime_type: "video/quicktime",
        picture: Picture::Video,
        has_position: true,
    },
    Case {
        name: "voice.m4a",
        args: &["-vn", "-c:a", "aac"],
        mime_type: "audio/mp4",
        picture: Picture::None,
        has_position: false,
    },
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

fn make(dir: &Path, case: &Case) -> PathBuf {
    let path = dir.join(case.name);
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y"]);
    match case.picture {
        Picture::None => {}
        Picture::Video => {
            command.args(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1"]);
        }
        Picture::Cover => {
            command.arg("-i").arg(cover(dir));
        }
    }
    command.args(["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]);
    if case.picture == Picture::Cover {
        command.args(["-map", "1:a", "-map", "0:v", "-c:v", "copy"]);
        command.args([
            "-disposition:v",
            "attached_pic",
            "-metadata:s:v",
            "title=GeheimBild",
        ]);
    }
    command.args(case.args);
    if case.picture == Picture::Video {
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
        "ffmpeg {}: {}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// A small PNG to attach as cover picture.
fn cover(dir: &Path) -> PathBuf {
    let path = dir.join("cover.png");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "color=red:size=16x16"])
        .args(["-frames:v", "1"])
        .arg(&path)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg cover: {}",
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

/// Every tag ffprobe reports, of the container and of each stream.
fn probe_tags(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format_tags:stream_tags",
            "-of",
            "flat",
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes the file of `case`, checks that it carries the metadata, imports it and checks that
/// the stored file carries none of it and still decodes to the same streams and duration
/// (`expected_codecs`: the streams left, where stripping removes one, e.g. a cover picture).
/// Returns the bytes made and stored, and the duration the store read.
fn check(f: &Fixture, case: &Case, expected_codecs: Option<&[&str]>) -> Checked {
    let work = tempfile::tempdir().expect("temp dir");
    let name = case.name;
    let path = make(work.path(), case);
    let original = std::fs::read(&path).expect("read");
    // The input really carries the metadata (at least the title everywhere, and the
    // position where the container has a field for it), or the test proves nothing.
    assert!(
        contains(&original, "GeheimTitel"),
        "{name}: ffmpeg wrote no title"
    );
    if case.has_position {
        assert!(
            contains(&original, "+48.8577"),
            "{name}: ffmpeg wrote no position"
        );
    }
    if case.picture == Picture::Cover {
        assert!(
            contains(&original, "GeheimBild"),
            "{name}: ffmpeg wrote no cover picture"
        );
    }
    let imported = f
        .store
        .import_media_file(&path, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{name}: import: {e}"));
    assert_eq!(imported.reference.mime_type, case.mime_type, "{name}");
    let stored_path = f.store.media_file(&imported.reference.hash).expect("stored");
    let stored = std::fs::read(&stored_path).expect("read stored");
    let tags = probe_tags(&stored_path);
    for secret in SECRETS {
        assert!(
            !contains(&stored, secret),
            "{name}: `{secret}` is still in the stored file"
        );
        assert!(
            !tags.contains(secret),
            "{name}: ffprobe still reports `{secret}`: {tags}"
        );
    }
    assert_eq!(stored.len() as i64, imported.reference.size, "{name}");
    assert_eq!(
        blake3::hash(&stored).to_hex().as_str(),
        imported.reference.hash,
        "{name}: the reference names the stripped bytes"
    );
    let (codecs_before, duration_before) = probe(&path);
    let (codecs_after, duration_after) = probe(&stored_path);
    match expected_codecs {
        Some(expected) => assert_eq!(codecs_after, expected, "{name}: streams"),
        None => assert_eq!(codecs_after, codecs_before, "{name}: streams changed"),
    }
    assert!(
        (duration_after - duration_before).abs() < 0.05,
        "{name}: {duration_before} s became {duration_after} s"
    );
    decodes(&stored_path).unwrap_or_else(|e| panic!("{name}: the stored file does not decode: {e}"));

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
    Checked {
        original,
        stored,
        duration_ms: imported.reference.duration_ms,
    }
}

struct Checked {
    original: Vec<u8>,
    stored: Vec<u8>,
    duration_ms: Option<i64>,
}

#[test]
fn audio_and_video_lose_location_and_tags_on_import_and_still_decode() {
    if !ffmpeg_or_skip() {
        return;
    }
    let f = Fixture::new();
    for case in &MP4_FAMILY {
        let checked = check(&f, case, None);
        assert!(
            checked.duration_ms.is_some_and(|d| d > 900),
            "{}: {:?}",
            case.name,
            checked.duration_ms
        );
    }
}

#[test]
fn mp3_loses_its_id3v2_and_id3v1_tags() {
    if !ffmpeg_or_skip() {
        return;
    }
    let case = Case {
        name: "song.mp3",
        args: &["-c:a", "libmp3lame", "-id3v2_version", "3", "-write_id3v1", "1"],
        mime_type: "audio/mpeg",
        picture: Picture::None,
        has_position: true,
    };
    let checked = check(&Fixture::new(), &case, None);
    // Both tags were there, and neither is left.
    assert!(checked.original.starts_with(b"ID3"), "no ID3v2 tag made");
    let id3v1 = |bytes: &[u8]| bytes.len() > 128 && bytes[bytes.len() - 128..].starts_with(b"TAG");
    assert!(id3v1(&checked.original), "no ID3v1 tag made");
    assert!(!checked.stored.starts_with(b"ID3"), "the ID3v2 tag is left");
    assert!(!id3v1(&checked.stored), "the ID3v1 tag is left");
}

#[test]
fn mp3_with_a_cover_picture_loses_it_with_the_id3v2_tag() {
    if !ffmpeg_or_skip() {
        return;
    }
    let case = Case {
        name: "cover.mp3",
        args: &["-c:a", "libmp3lame", "-id3v2_version", "3"],
        mime_type: "audio/mpeg",
        picture: Picture::Cover,
        has_position: true,
    };
    let checked = check(&Fixture::new(), &case, Some(&["mp3"]));
    // No ID3v1 tag made, and none added by the removal (lofty 0.24 appends an empty one when
    // asked to remove one that is not there).
    let stored = &checked.stored;
    assert!(
        !stored[stored.len() - 128..].starts_with(b"TAG"),
        "an ID3v1 tag was added"
    );
}

#[test]
fn flac_loses_its_vorbis_comments_and_cover_picture() {
    if !ffmpeg_or_skip() {
        return;
    }
    let case = Case {
        name: "recording.flac",
        args: &["-c:a", "flac"],
        mime_type: "audio/flac",
        picture: Picture::Cover,
        has_position: true,
    };
    check(&Fixture::new(), &case, Some(&["flac"]));
}

#[test]
fn ogg_vorbis_loses_its_comments() {
    if !ffmpeg_or_skip() {
        return;
    }
    let case = Case {
        name: "recording.ogg",
        args: &["-c:a", "libvorbis"],
        mime_type: "audio/ogg",
        picture: Picture::None,
        has_position: true,
    };
    check(&Fixture::new(), &case, None);
}

#[test]
fn opus_loses_its_comments() {
    if !ffmpeg_or_skip() {
        return;
    }
    let case = Case {
        name: "voice.opus",
        args: &["-c:a", "libopus"],
        mime_type: "audio/opus",
        picture: Picture::None,
        has_position: true,
    };
    check(&Fixture::new(), &case, None);
}

#[test]
fn wav_loses_its_riff_info() {
    if !ffmpeg_or_skip() {
        return;
    }
    // ffmpeg writes title, artist and comment as RIFF INFO; it has no field for a position.
    let case = Case {
        name: "recording.wav",
        args: &["-c:a", "pcm_s16le"],
        mime_type: "audio/wav",
        picture: Picture::None,
        has_position: false,
    };
    check(&Fixture::new(), &case, None);
}

#[test]
fn aiff_loses_its_text_and_id3_chunks() {
    if !ffmpeg_or_skip() {
        return;
    }
    let case = Case {
        name: "recording.aiff",
        args: &["-write_id3v2", "1"],
        mime_type: "audio/aiff",
        picture: Picture::None,
        has_position: true,
    };
    check(&Fixture::new(), &case, None);
}

#[test]
fn damaged_mp4_box_trees_are_refused_and_nothing_is_stored() {
    if !ffmpeg_or_skip() {
        return;
    }
    let f = Fixture::new();
    let work = tempfile::tempdir().expect("temp dir");
    let path = make(work.path(), &MP4);
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
