//! What a file is, decided from its content only (names and declared types are not trusted):
//! magic numbers through `infer`, mapped to the kinds the store handles. Pure functions.

use image::ImageFormat;

use crate::error::{Error, Result};

/// How many leading bytes are enough to recognise every supported type.
pub(crate) const HEAD_BYTES: usize = 8 * 1024;

/// What the store does with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Decoded, stripped of metadata, with preview and thumbnail.
    Image(ImageFormat),
    /// Stored as one file, its metadata removed (`strip`), duration probed.
    Audio,
    Video,
}

/// The MIME type and kind of a file from its first bytes.
pub(crate) fn sniff(head: &[u8]) -> Result<(String, Kind)> {
    let Some(found) = infer::get(head) else {
        return Err(Error::UnsupportedMedia {
            mime_type: "unknown".into(),
            reason: "the content is not a recognised image, audio or video format".into(),
        });
    };
    let sniffed = found.mime_type();
    let kind = match sniffed {
        "image/jpeg" => Kind::Image(ImageFormat::Jpeg),
        "image/png" => Kind::Image(ImageFormat::Png),
        "image/webp" => Kind::Image(ImageFormat::WebP),
        "image/gif" => Kind::Image(ImageFormat::Gif),
        "audio/mpeg" | "audio/ogg" | "audio/opus" | "audio/x-flac" | "audio/x-wav" | "audio/m4a"
        | "audio/aac" | "audio/amr" | "audio/x-aiff" => Kind::Audio,
        "video/mp4" | "video/quicktime" | "video/webm" | "video/x-matroska" | "video/x-m4v"
        | "video/3gpp" => Kind::Video,
        other if other.starts_with("image/") => {
            return Err(Error::UnsupportedMedia {
                mime_type: other.into(),
                reason: "this image format cannot be processed here; convert it to JPEG, PNG or WebP".into(),
            })
        }
        other => {
            return Err(Error::UnsupportedMedia {
                mime_type: other.into(),
                reason: "only images, audio and video are stored as media".into(),
            })
        }
    };
    Ok((canonical(sniffed).to_owned(), kind))
}

/// The registered (IANA) name where `infer` reports an older `x-` or informal one.
fn canonical(mime_type: &str) -> &str {
    match mime_type {
        "audio/x-flac" => "audio/flac",
        "audio/x-wav" => "audio/wav",
        "audio/m4a" => "audio/mp4",
        "audio/x-aiff" => "audio/aiff",
        other => other,
    }
}

/// A file-name extension for a MIME type, as a hint for container probes.
pub(crate) fn extension(mime_type: &str) -> Option<&'static str> {
    Some(match mime_type {
        "audio/mpeg" => "mp3",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/flac" => "flac",
        "audio/wav" => "wav",
        "audio/mp4" => "m4a",
        "audio/aac" => "aac",
        "video/mp4" | "video/x-m4v" | "video/3gpp" => "mp4",
        "video/quicktime" => "mov",
        _ => return None,
    })
}
