//! ISO base media file format (MP4, M4A, MOV, 3GP): reading box headers, bounded and without
//! recursion, for the metadata remover (`strip`) and the duration probe (`duration`). Only
//! headers and the few fixed fields asked for are read; media data never is, and nothing is
//! allocated by what a header claims.

use std::io::{Read, Seek, SeekFrom};

/// Most box headers read from one file; real files have a few hundred.
pub(crate) const MAX_BOXES: usize = 100_000;

/// Why a box tree could not be walked.
#[derive(Debug)]
pub(crate) enum BoxError {
    Io(std::io::Error),
    Malformed(String),
}

impl From<std::io::Error> for BoxError {
    fn from(e: std::io::Error) -> Self {
        BoxError::Io(e)
    }
}

/// One box: its type, where its header starts, where its body starts and where it ends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BoxHeader {
    pub kind: [u8; 4],
    pub start: u64,
    pub body: u64,
    pub end: u64,
}

/// The header of the box at `at`, which must lie within `..end` (its parent's end, or the
/// file's). A box whose size runs past its parent is refused: where the next box starts could
/// not be told.
pub(crate) fn read_header<F: Read + Seek>(file: &mut F, at: u64, end: u64) -> Result<BoxHeader, BoxError> {
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
                header[8], header[9], header[10], header[11], header[12], header[13], header[14], header[15],
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
    Ok(BoxHeader {
        kind,
        start: at,
        body: at + header_len,
        end: at + size,
    })
}

/// The boxes directly inside `start..end`, each read once; `seen` counts headers across calls
/// against [`MAX_BOXES`].
pub(crate) fn children<F: Read + Seek>(
    file: &mut F,
    start: u64,
    end: u64,
    seen: &mut usize,
) -> Result<Vec<BoxHeader>, BoxError> {
    let mut boxes = Vec::new();
    let mut at = start;
    while end - at >= 8 {
        *seen += 1;
        if *seen > MAX_BOXES {
            return Err(BoxError::Malformed(format!("more than {MAX_BOXES} boxes")));
        }
        let header = read_header(file, at, end)?;
        at = header.end;
        boxes.push(header);
    }
    Ok(boxes)
}

/// The movie's duration in milliseconds, from `moov/mvhd` (its time scale and duration): the
/// play time the file itself states, read from two fixed fields. `None` if the file has no
/// movie header, or says the duration is unknown.
pub(crate) fn movie_duration_ms<F: Read + Seek>(file: &mut F) -> Result<Option<u64>, BoxError> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut seen = 0;
    let top = children(file, 0, len, &mut seen)?;
    let Some(moov) = top.iter().find(|b| &b.kind == b"moov") else {
        return Ok(None);
    };
    let inner = children(file, moov.body, moov.end, &mut seen)?;
    let Some(mvhd) = inner.iter().find(|b| &b.kind == b"mvhd") else {
        return Ok(None);
    };
    // version (1), flags (3), then creation and modification times (4 or 8 each), time scale
    // (4) and duration (4 or 8).
    let mut fields = [0u8; 32];
    let available = (mvhd.end - mvhd.body).min(fields.len() as u64) as usize;
    file.seek(SeekFrom::Start(mvhd.body))?;
    file.read_exact(&mut fields[..available])?;
    let (scale, duration) = match (fields[0], available) {
        (0, 20..) => (
            u32::from_be_bytes([fields[12], fields[13], fields[14], fields[15]]),
            Some(u32::from_be_bytes([
                fields[16], fields[17], fields[18], fields[19],
            ]))
            .filter(|&d| d != u32::MAX)
            .map(u64::from),
        ),
        (1, 32..) => (
            u32::from_be_bytes([fields[20], fields[21], fields[22], fields[23]]),
            Some(u64::from_be_bytes([
                fields[24], fields[25], fields[26], fields[27], fields[28], fields[29], fields[30],
                fields[31],
            ]))
            .filter(|&d| d != u64::MAX),
        ),
        _ => {
            return Err(BoxError::Malformed(
                "the movie header is cut off or of an unknown version".into(),
            ))
        }
    };
    if scale == 0 {
        return Ok(None);
    }
    Ok(duration.map(|d| (u128::from(d) * 1000 / u128::from(scale)).min(u128::from(u64::MAX)) as u64))
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

    fn mvhd_v0(scale: u32, duration: u32) -> Vec<u8> {
        let mut body = vec![0u8; 100];
        body[12..16].copy_from_slice(&scale.to_be_bytes());
        body[16..20].copy_from_slice(&duration.to_be_bytes());
        boxed(b"mvhd", &body)
    }

    #[test]
    fn the_duration_is_read_from_the_movie_header() {
        let file = [
            boxed(b"ftyp", b"isom\0\0\0\0"),
            boxed(b"moov", &mvhd_v0(600, 900)),
        ]
        .concat();
        assert_eq!(
            movie_duration_ms(&mut Cursor::new(file)).ok().flatten(),
            Some(1_500)
        );
        let mut v1 = vec![0u8; 108];
        v1[0] = 1;
        v1[20..24].copy_from_slice(&1000u32.to_be_bytes());
        v1[24..32].copy_from_slice(&2_500u64.to_be_bytes());
        let file = boxed(b"moov", &boxed(b"mvhd", &v1));
        assert_eq!(
            movie_duration_ms(&mut Cursor::new(file)).ok().flatten(),
            Some(2_500)
        );
    }

    #[test]
    fn unknown_or_unstated_durations_are_none_and_damaged_headers_errors() {
        let unknown = boxed(b"moov", &mvhd_v0(600, u32::MAX));
        assert_eq!(movie_duration_ms(&mut Cursor::new(unknown)).ok().flatten(), None);
        let no_scale = boxed(b"moov", &mvhd_v0(0, 900));
        assert_eq!(movie_duration_ms(&mut Cursor::new(no_scale)).ok().flatten(), None);
        let no_movie = boxed(b"mdat", &[7; 40]);
        assert_eq!(movie_duration_ms(&mut Cursor::new(no_movie)).ok().flatten(), None);
        let cut = boxed(b"moov", &boxed(b"mvhd", &[0; 10]));
        assert!(movie_duration_ms(&mut Cursor::new(cut)).is_err());
        let past_the_end = [0, 0, 1, 0].iter().chain(b"moov").copied().collect::<Vec<_>>();
        assert!(movie_duration_ms(&mut Cursor::new(past_the_end)).is_err());
    }
}
