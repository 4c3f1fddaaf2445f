//! Removing location and personal metadata from audio and video on import, in place on the
//! staged copy (the stored original is what is hashed afterwards).
//!
//! - **MP4 family** (MP4, M4A, MOV, 3GP): the boxes that hold metadata — `udta` (user data:
//!   `©xyz` GPS, `loci`, `©nam`, `©ART`, `©day`, `©too` …), `meta` (iTunes `ilst`, Apple
//!   `keys` with `com.apple.quicktime.location.ISO6709`, make, model, software, creation date)
//!   and XMP `uuid` boxes — are turned into `free` boxes of the same size with zeroed contents,
//!   at the top level and under `moov`, `trak` and `mdia`. Sizes and offsets stay as they were,
//!   so sample tables (`stco`/`co64`) stay valid and the file decodes as before. Only box
//!   headers are read (8 or 16 bytes each), at most [`iso::MAX_BOXES`] of them; media data is never
//!   read.
//!
//! - **Audio tags** (MP3, AAC, FLAC, Ogg Vorbis/Opus/Speex, WAV, AIFF): every tag the format
//!   has is removed with [`lofty`] (`TagType::remove_from`): ID3v2 at the start (and ID3v2
//!   chunks of WAV/AIFF), ID3v1 and APE at the end (MP3), FLAC `VORBIS_COMMENT` and `PICTURE`
//!   blocks (the other blocks and the last-block flag stay right), the Ogg comment header (the
//!   vendor string stays, every comment and picture goes; the Ogg pages are rewritten with new
//!   sequence numbers and CRCs), RIFF `LIST`/`INFO` (WAV) and AIFF `NAME`/`AUTH`/`(c) `/`ANNO`/
//!   `COMT` chunks. The file is then read back with lofty: a tag still there (a format carrying
//!   the same tag twice) is removed in another round, at most [`MAX_TAG_ROUNDS`]; one left
//!   after that makes the file refused. lofty rewrites the file through memory: removing a tag
//!   holds the whole file (at most the import limit, 200 MiB) in memory once, and one tag item
//!   at most [`MAX_TAG_ITEM_BYTES`]. A WAV/AIFF whose RIFF/FORM size runs past the end of the
//!   file is refused before lofty sees it (lofty would reserve that size in memory). An Ogg
//!   stream lofty does not know (Ogg FLAC, Theora) is refused as unsupported.
//!
//! Not yet: Matroska/WebM tags (lofty has no Matroska support) and WAV chunks other than
//! `LIST`/`INFO` and ID3 (`bext`, `iXML`, `_PMX`); Matroska/WebM and AMR (no metadata) files
//! are kept as they are (see `docs/media.md`). A panic is caught and reported as [`Error::MalformedMedia`];
//! nothing is stored then.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use lofty::config::{apply_global_options, GlobalOptions, ParseOptions, ParsingMode};
use lofty::error::{ErrorKind, LoftyError};
use lofty::file::{FileType, TaggedFileExt};
use lofty::probe::Probe;
use lofty::tag::{ItemKey, Tag, TagType};

use super::iso::{self, BoxError};
use crate::error::{Error, Result};

/// Boxes that carry metadata and are blanked wherever they are found.
const METADATA_BOXES: [&[u8; 4]; 2] = [b"udta", b"meta"];
/// Boxes whose children are looked at.
const CONTAINERS: [&[u8; 4]; 3] = [b"moov", b"trak", b"mdia"];
/// The extended type of XMP packets stored in `uuid` boxes.
const XMP_UUID: [u8; 16] = [
    0xbe, 0x7a, 0xcf, 0xcb, 0x97, 0xa9, 0x42, 0xe8, 0x9c, 0x71, 0x99, 0x94, 0x91, 0xe3, 0xaf, 0xac,
];

/// How a file's metadata is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// ISO base media file format boxes.
    IsoBoxes,
    /// Audio tags, removed with lofty.
    AudioTags,
    /// No metadata removal for this container.
    None,
}

/// How metadata is removed from a file of `mime_type` (as sniffed).
pub(crate) fn method(mime_type: &str) -> Method {
    match mime_type {
        "video/mp4" | "video/quicktime" | "video/x-m4v" | "video/3gpp" | "audio/mp4" => Method::IsoBoxes,
        "audio/mpeg" | "audio/aac" | "audio/flac" | "audio/ogg" | "audio/opus" | "audio/wav"
        | "audio/aiff" => Method::AudioTags,
        _ => Method::None,
    }
}

/// Removes the metadata of the file at `path` (sniffed as `mime_type`) in place.
pub(crate) fn strip_file(path: &Path, mime_type: &str) -> Result<()> {
    let malformed = |reason: String| Error::MalformedMedia {
        mime_type: mime_type.to_owned(),
        reason,
    };
    let outcome = std::panic::catch_unwind(|| match method(mime_type) {
        Method::IsoBoxes => {
            let mut file = open_rw(path)?;
            blank_iso_metadata(&mut file).map_err(|e| match e {
                BoxError::Io(e) => Error::media_io("removing metadata", e),
                BoxError::Malformed(reason) => malformed(reason),
            })?;
            file.sync_all()
                .map_err(|e| Error::media_io("syncing a media file", e))
        }
        Method::AudioTags => {
            let mut file = open_rw(path)?;
            remove_audio_tags(&mut file).map_err(|e| match e {
                TagError::Io(e) => Error::media_io("removing metadata", e),
                TagError::Unsupported(reason) => Error::UnsupportedMedia {
                    mime_type: mime_type.to_owned(),
                    reason,
                },
                TagError::Malformed(reason) => malformed(reason),
            })?;
            file.sync_all()
                .map_err(|e| Error::media_io("syncing a media file", e))
        }
        Method::None => Ok(()),
    });
    outcome.unwrap_or_else(|_| {
        tracing::warn!(mime_type, "metadata removal panicked");
        Err(malformed(
            "the file could not be parsed to remove its metadata".into(),
        ))
    })
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::media_io("opening a staged media file", e))
}

/// Blanks the metadata boxes of an ISO base media file (see the module docs). Returns how
/// many boxes were blanked. A box whose size runs past its parent is refused: the walk could
/// not tell where the next box starts.
fn blank_iso_metadata<F: Read + Write + Seek>(file: &mut F) -> Result<usize, BoxError> {
    let len = file.seek(SeekFrom::End(0))?;
    // (start, end) of box lists still to walk; no recursion that the input could drive.
    let mut pending = vec![(0u64, len)];
    let (mut seen, mut blanked) = (0usize, 0usize);
    while let Some((start, end)) = pending.pop() {
        for found in iso::children(file, start, end, &mut seen)? {
            let kind = found.kind;
            if METADATA_BOXES.contains(&&kind) || (&kind == b"uuid" && is_xmp(file, found.body, found.end)?) {
                blank(file, found.start, found.body, found.end)?;
                blanked += 1;
            } else if CONTAINERS.contains(&&kind) {
                pending.push((found.body, found.end));
            }
        }
    }
    Ok(blanked)
}

fn is_xmp<F: Read + Seek>(file: &mut F, body: u64, end: u64) -> Result<bool, BoxError> {
    if end - body < 16 {
        return Ok(false);
    }
    let mut id = [0u8; 16];
    file.seek(SeekFrom::Start(body))?;
    file.read_exact(&mut id)?;
    Ok(id == XMP_UUID)
}

/// Turns the box at `at` into a `free` box of the same size with zeroed contents.
fn blank<F: Write + Seek>(file: &mut F, at: u64, body: u64, end: u64) -> Result<(), BoxError> {
    file.seek(SeekFrom::Start(at + 4))?;
    file.write_all(b"free")?;
    file.seek(SeekFrom::Start(body))?;
    let zeros = [0u8; 8192];
    let mut left = end - body;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Most rounds of tag removal on one file. One round removes every kind of tag the format
/// has; another is needed only for a file carrying the same kind twice (two ID3v2 tags).
pub(crate) const MAX_TAG_ROUNDS: usize = 3;

/// Most bytes lofty may allocate for one tag item (a comment, a picture, a FLAC metadata
/// block) while removing and checking; FLAC blocks cannot be larger (24-bit sizes). A larger
/// item makes the file refused.
pub(crate) const MAX_TAG_ITEM_BYTES: usize = 16 * 1024 * 1024;

/// The tags of each audio format, in the order they are removed.
fn tag_types(file_type: FileType) -> Option<&'static [TagType]> {
    Some(match file_type {
        FileType::Mpeg => &[TagType::Id3v2, TagType::Id3v1, TagType::Ape],
        FileType::Aac => &[TagType::Id3v2, TagType::Id3v1],
        FileType::Flac => &[TagType::VorbisComments, TagType::Id3v2],
        FileType::Opus | FileType::Vorbis | FileType::Speex => &[TagType::VorbisComments],
        FileType::Wav => &[TagType::RiffInfo, TagType::Id3v2],
        FileType::Aiff => &[TagType::AiffText, TagType::Id3v2],
        _ => return None,
    })
}

#[derive(Debug)]
enum TagError {
    Io(std::io::Error),
    /// lofty does not know the format, or what the container holds.
    Unsupported(String),
    Malformed(String),
}

impl From<std::io::Error> for TagError {
    fn from(e: std::io::Error) -> Self {
        TagError::Io(e)
    }
}

impl From<LoftyError> for TagError {
    fn from(e: LoftyError) -> Self {
        match e.kind() {
            // A read past the end is a cut or lying file, not a failing disk.
            ErrorKind::Io(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
                TagError::Io(std::io::Error::new(io.kind(), e.to_string()))
            }
            ErrorKind::UnknownFormat => TagError::Unsupported(unknown_format()),
            _ => TagError::Malformed(format!("its tags could not be removed: {e}")),
        }
    }
}

fn unknown_format() -> String {
    "metadata cannot be removed from this audio format (MP3, AAC, FLAC, Ogg Vorbis/Opus, WAV and AIFF can)"
        .into()
}

/// Removes every tag of an audio file (see the module docs), then reads the file back to check
/// that none is left.
fn remove_audio_tags(file: &mut File) -> Result<(), TagError> {
    // Thread-local in lofty: set on the thread that is about to use it.
    apply_global_options(
        GlobalOptions::new()
            .allocation_limit(MAX_TAG_ITEM_BYTES)
            .use_custom_resolvers(false),
    );
    check_chunk_size(file)?;
    for _ in 0..MAX_TAG_ROUNDS {
        file.rewind()?;
        let file_type = Probe::new(&mut *file).guess_file_type()?.file_type();
        let types = file_type
            .and_then(tag_types)
            .ok_or_else(|| TagError::Unsupported(unknown_format()))?;
        for tag_type in types {
            // lofty 0.24 "removes" an ID3v1 tag from a file without one by appending an
            // empty one: only ask it where there is one.
            if *tag_type == TagType::Id3v1 && !ends_with_id3v1(file)? {
                continue;
            }
            file.rewind()?;
            tag_type.remove_from(file)?;
        }
        if !has_tags(file)? {
            return Ok(());
        }
    }
    Err(TagError::Malformed(format!(
        "tags are left after {MAX_TAG_ROUNDS} rounds of removal"
    )))
}

/// Whether lofty still reads a tag from the file, read strictly. An Ogg file always has a comment header;
/// lofty shows its vendor string (kept on purpose) as one encoder item: a header with nothing
/// else counts as no tag.
fn has_tags(file: &mut File) -> Result<bool, TagError> {
    file.rewind()?;
    let tagged = Probe::new(&mut *file)
        // Strict: where the lenient mode would stop at damage and call the rest junk (and not
        // see a tag there), the check fails and the file is refused.
        .options(
            ParseOptions::new()
                .read_properties(false)
                .parsing_mode(ParsingMode::Strict),
        )
        .guess_file_type()?
        .read()?;
    Ok(tagged
        .tags()
        .iter()
        .any(|tag| tag.tag_type() != TagType::VorbisComments || !only_vendor(tag)))
}

fn only_vendor(tag: &Tag) -> bool {
    tag.pictures().is_empty()
        && tag.items().count() <= 1
        && tag.items().all(|item| item.key() == ItemKey::EncoderSoftware)
}

/// Whether the file ends with an ID3v1 tag (128 bytes starting with `TAG`).
fn ends_with_id3v1(file: &mut File) -> Result<bool, TagError> {
    let len = file.seek(SeekFrom::End(0))?;
    if len < 128 {
        return Ok(false);
    }
    let mut marker = [0u8; 3];
    file.seek(SeekFrom::Start(len - 128))?;
    file.read_exact(&mut marker)?;
    Ok(&marker == b"TAG")
}

/// Refuses a WAV or AIFF file whose RIFF/FORM chunk claims more bytes than the file has:
/// lofty would reserve memory for the claimed size (up to 4 GiB) before finding out.
fn check_chunk_size(file: &mut File) -> Result<(), TagError> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut header = [0u8; 8];
    file.rewind()?;
    if len < 8 {
        return Ok(()); // not a chunk file; lofty decides
    }
    file.read_exact(&mut header)?;
    let size = match &header[..4] {
        b"RIFF" => u32::from_le_bytes([header[4], header[5], header[6], header[7]]),
        b"FORM" => u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        _ => return Ok(()),
    };
    if u64::from(size) + 8 > len {
        return Err(TagError::Malformed(format!(
            "the {} chunk claims {size} bytes, but the file has {len}",
            String::from_utf8_lossy(&header[..4])
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn metadata_boxes_become_free_boxes_of_the_same_size() {
        let xyz = boxed(b"\xa9xyz", b"+48.8577+002.2950/");
        let udta = boxed(b"udta", &xyz);
        let trak = boxed(
            b"trak",
            &[boxed(b"tkhd", &[1; 20]), boxed(b"meta", b"ilst")].concat(),
        );
        let moov = boxed(b"moov", &[boxed(b"mvhd", &[2; 20]), udta, trak].concat());
        let file = [boxed(b"ftyp", b"isom\0\0\0\0"), moov, boxed(b"mdat", &[7; 64])].concat();
        let mut cursor = Cursor::new(file.clone());
        assert_eq!(blank_iso_metadata(&mut cursor).expect("walk"), 2);
        let out = cursor.into_inner();
        assert_eq!(out.len(), file.len());
        assert!(!out
            .windows(4)
            .any(|w| w == b"udta" || w == b"meta" || w == b"\xa9xyz"));
        assert!(!out.windows(7).any(|w| w == b"+48.857"));
        assert!(out.windows(4).any(|w| w == b"mvhd") && out.ends_with(&[7; 64]));
    }

    /// A PCM WAV with a RIFF INFO list carrying a title.
    fn tagged_wav() -> Vec<u8> {
        let info = [&b"INFO"[..], b"INAM", &12u32.to_le_bytes(), b"GeheimTitel\0"].concat();
        let list = [&b"LIST"[..], &(info.len() as u32).to_le_bytes(), &info].concat();
        let fmt = [
            &b"fmt "[..],
            &16u32.to_le_bytes(),
            &1u16.to_le_bytes(),
            &1u16.to_le_bytes(),
            &8000u32.to_le_bytes(),
            &16000u32.to_le_bytes(),
            &2u16.to_le_bytes(),
            &16u16.to_le_bytes(),
        ]
        .concat();
        let data = [&b"data"[..], &64u32.to_le_bytes(), &[3; 64]].concat();
        let body = [&b"WAVE"[..], &fmt, &list, &data].concat();
        [&b"RIFF"[..], &(body.len() as u32).to_le_bytes(), &body].concat()
    }

    fn strip_bytes(bytes: &[u8], mime_type: &str) -> (Result<()>, Vec<u8>) {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(bytes).expect("write");
        let result = strip_file(file.path(), mime_type);
        (result, std::fs::read(file.path()).expect("read back"))
    }

    #[test]
    fn audio_types_lose_their_tags_and_others_are_kept() {
        for mime_type in [
            "audio/mpeg",
            "audio/flac",
            "audio/ogg",
            "audio/opus",
            "audio/wav",
            "audio/aiff",
        ] {
            assert_eq!(method(mime_type), Method::AudioTags, "{mime_type}");
        }
        for mime_type in ["audio/amr", "video/webm", "video/x-matroska"] {
            assert_eq!(method(mime_type), Method::None, "{mime_type}");
        }
        let (result, out) = strip_bytes(&tagged_wav(), "audio/wav");
        result.expect("strip");
        assert!(!out.windows(6).any(|w| w == b"Geheim"));
        let riff_size = u32::from_le_bytes([out[4], out[5], out[6], out[7]]);
        assert_eq!(u64::from(riff_size) + 8, out.len() as u64, "RIFF size fixed");
    }

    #[test]
    fn damaged_audio_is_refused_without_panicking() {
        let wav = tagged_wav();
        let mut past_end = wav.clone();
        past_end[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let refused = [
            (past_end, "audio/wav"),
            (wav[..wav.len() / 2].to_vec(), "audio/wav"),
            (b"fLaC\0\0\0\x22garbage".to_vec(), "audio/flac"),
            (b"OggS\0\x02garbage-garbage-garbage-garbage".to_vec(), "audio/ogg"),
            // An empty ID3v2 tag and no MPEG frames after it.
            (b"ID3\x04\0\0\0\0\0\0not audio".to_vec(), "audio/mpeg"),
        ];
        for (bytes, mime_type) in refused {
            let (result, _) = strip_bytes(&bytes, mime_type);
            assert!(
                matches!(
                    result,
                    Err(Error::MalformedMedia { .. } | Error::UnsupportedMedia { .. })
                ),
                "{mime_type} {bytes:?}: {result:?}"
            );
        }
        // Every single-byte change of a tagged WAV either strips or is refused; none escapes.
        for at in 0..wav.len() {
            let mut damaged = wav.clone();
            damaged[at] ^= 0xa5;
            let (result, out) = strip_bytes(&damaged, "audio/wav");
            match result {
                Ok(()) => assert!(
                    !out.windows(6).any(|w| w == b"Geheim") || !damaged.windows(4).any(|w| w == b"INFO"),
                    "byte {at}: the title is left"
                ),
                Err(Error::MalformedMedia { .. } | Error::UnsupportedMedia { .. }) => {}
                Err(other) => panic!("byte {at}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_box_trees_are_refused_without_panicking() {
        let cases: Vec<Vec<u8>> = vec![
            [0, 0, 0, 4].iter().chain(b"moov").copied().collect(), // smaller than its header
            [0, 0, 1, 0].iter().chain(b"moov").copied().collect(), // past the end
            [0, 0, 0, 1]
                .iter()
                .chain(b"moov")
                .chain(&[0xff; 8])
                .copied()
                .collect(),
            boxed(b"moov", &[0, 0, 0, 200, b't', b'r', b'a', b'k']),
        ];
        for case in cases {
            let result = blank_iso_metadata(&mut Cursor::new(case.clone()));
            assert!(
                matches!(result, Err(BoxError::Malformed(_))),
                "{case:?}: {result:?}"
            );
        }
        // Deeply nested containers are walked without recursion and within the box bound.
        let mut nested = boxed(b"udta", b"secret");
        for _ in 0..10_000 {
            nested = boxed(b"trak", &nested);
        }
        let mut cursor = Cursor::new(boxed(b"moov", &nested));
        assert_eq!(blank_iso_metadata(&mut cursor).expect("walk"), 1);
    }
}
