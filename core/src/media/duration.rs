//! Play time of audio and video, read from container headers only (no decoding): the movie
//! header (`moov/mvhd`) for the MP4 family (MP4, M4A, MOV, 3GP), Symphonia's format probe for
//! WAV, FLAC, Ogg and MP3 (with a Xing/VBRI header). Anything that cannot be told cheaply has
//! no duration; that is never an error, the original is kept anyway. Touches the one file it is
//! given, read-only.
//!
//! MP4 does not go through Symphonia: its MP4 reader reads every sample table whole and
//! reserves memory for the entry count a table claims, so 1.3 KB claiming four billion chunk
//! offsets made it ask for 32 GiB, which aborts the process (`docs/fuzzing.md`, finding 8);
//! an allocation failure cannot be caught like a panic.

use std::fs::File;
use std::path::Path;

use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{iso, sniff, strip};

/// Duration in milliseconds of the longest track of the file at `path`, if its headers say.
pub(crate) fn probe_duration_ms(path: &Path, mime_type: &str) -> Option<u64> {
    // A parser bug on hostile input must not take the app down: a panic means "unknown".
    std::panic::catch_unwind(|| probe(path, mime_type)).unwrap_or_else(|_| {
        tracing::warn!(mime_type, "duration probe panicked");
        None
    })
}

fn probe(path: &Path, mime_type: &str) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    if strip::method(mime_type) == strip::Method::IsoBoxes {
        return iso::movie_duration_ms(&mut file).ok().flatten();
    }
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    hint.mime_type(mime_type);
    if let Some(ext) = sniff::extension(mime_type) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .ok()?;
    probed
        .format
        .tracks()
        .iter()
        .filter_map(|track| {
            let params = &track.codec_params;
            let frames = params.n_frames?;
            if let Some(base) = params.time_base {
                let time = base.calc_time(frames);
                Some(time.seconds.saturating_mul(1000) + (time.frac * 1000.0).round() as u64)
            } else {
                let rate = u64::from(params.sample_rate?).max(1);
                Some(frames.saturating_mul(1000) / rate)
            }
        })
        .max()
}
