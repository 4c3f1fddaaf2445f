//! Removing location and personal metadata from audio and video on import, in place on the
//! staged copy (the stored original is what is hashed afterwards).
//!
//! - **MP4 family** (MP4, M4A, MOV, 3GP): the boxes that hold metadata — `udta` (user data:
//!   `©xyz` GPS, `loci`, `©nam`, `©ART`, `©day`, `©too` …), `meta` (iTunes `ilst`, Apple
//!   `keys` with `com.apple.quicktime.location.ISO6709`, make, model, software, creation date)
//!   and XMP `uuid` boxes — are turned into `free` boxes of the same size with zeroed contents,
//!   at the top level and under `moov`, `trak` and `mdia`. Sizes and offsets stay as they were,
//!   so sample tables (`stco`/`co64`) stay valid and the file decodes as before. Only box
//!   headers are read (8 or 16 bytes each), at most [`MAX_BOXES`] of them; media data is never
//!   read.
//!
//! Not yet: ID3 (MP3, AAC), Vorbis comments (FLAC, Ogg, Opus), RIFF INFO (WAV), AIFF text
//! chunks, Matroska/WebM tags; those files are kept as they are (see `docs/media.md`). A panic
//! is caught and reported as [`Error::MalformedMedia`]; nothing is stored then.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Most box headers read from one MP4 file; real files have a few hundred.
pub(crate) const MAX_BOXES: usize = 100_000;

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
    /// No metadata removal for this container.
    None,
}

/// How metadata is removed from a file of `mime_type` (as sniffed).
pub(crate) fn method(mime_type: &str) -> Method {
    match mime_type {
        "video/mp4" | "video/quicktime" | "video/x-m4v" | "video/3gpp" | "audio/mp4" => Method::IsoBoxes,
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

#[derive(Debug)]
enum BoxError {
    Io(std::io::Error),
    Malformed(String),
}

impl From<std::io::Error> for BoxError {
    fn from(e: std::io::Error) -> Self {
        BoxError::Io(e)
    }
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
        let mut at = start;
        while end - at >= 8 {
            seen += 1;
            if seen > MAX_BOXES {
                return Err(BoxError::Malformed(format!("more than {MAX_BOXES} boxes")));
            }
            let mut header = [0u8; 16];
            file.seek(SeekFrom::Start(at))?;
            file.read_exact(&mut header[..8])?;
            let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
            let (size, header_len) = match size32 {
                0 => (end - at, 8), // to the end of the enclosing box (or file)
                1 => {
                    if end - at < 16 {
                        return Err(BoxError::Malformed(format!("box at {at} is cut off")));
                    }
                    file.read_exact(&mut header[8..16])?;
                    let large = u64::from_be_bytes([
                        header[8], header[9], header[10], header[11], header[12], header[13], header[14],
                        header[15],
                    ]);
                    (large, 16)
                }
                n => (u64::from(n), 8),
            };
            if size < header_len || size > end - at {
                return Err(BoxError::Malformed(format!(
                    "box `{}` at {at} has size {size}, outside its parent",
                    String::from_utf8_lossy(&kind)
                )));
            }
            let body = at + header_len;
            let box_end = at + size;
            if METADATA_BOXES.contains(&&kind) || (&kind == b"uuid" && is_xmp(file, body, box_end)?) {
                blank(file, at, body, box_end)?;
                blanked += 1;
            } else if CONTAINERS.contains(&&kind) {
                pending.push((body, box_end));
            }
            at = box_end;
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
