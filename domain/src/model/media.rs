//! References from an item to media (photos, audio, video) held in the content-addressed media
//! store. The bytes themselves are not part of the item document.

use serde::{Deserialize, Serialize};

use super::text::LocalizedText;
use crate::error::{Error, Result};

/// A reference to one media file by its BLAKE3 content hash, with the derived files (preview,
/// thumbnail) that let a phone on a poor link show it without fetching the original.
///
/// Fields added after the first release are optional and skipped when empty, so documents
/// written by older cores read back unchanged and older cores ignore the new fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MediaRef {
    /// BLAKE3 hash of the content, 64 lowercase hex digits.
    pub hash: String,
    pub mime_type: String,
    pub size: u64,
    /// Pixel size as displayed (orientation applied), for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub height: Option<u32>,
    /// Play time of audio and video, where the container states it cheaply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub duration_ms: Option<u64>,
    /// A downscaled copy (about 1280 px on the long side) of an image larger than that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub preview: Option<MediaVariantRef>,
    /// A small copy (about 256 px on the long side) of an image larger than that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub thumbnail: Option<MediaVariantRef>,
    /// Description for people who cannot see the image, per language.
    #[serde(default, skip_serializing_if = "LocalizedText::is_empty")]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub alt_text: LocalizedText,
    #[serde(default, skip_serializing_if = "LocalizedText::is_empty")]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub caption: LocalizedText,
}

/// A derived file of a media reference (preview or thumbnail of an image).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MediaVariantRef {
    /// BLAKE3 hash of the derived file, 64 lowercase hex digits.
    pub hash: String,
    pub mime_type: String,
    pub size: u64,
    pub width: u32,
    pub height: u32,
}

impl MediaRef {
    /// A reference to a file with no dimensions, duration or derived files yet.
    pub fn new(hash: impl Into<String>, mime_type: impl Into<String>, size: u64) -> MediaRef {
        MediaRef {
            hash: hash.into(),
            mime_type: mime_type.into(),
            size,
            width: None,
            height: None,
            duration_ms: None,
            preview: None,
            thumbnail: None,
            alt_text: LocalizedText::default(),
            caption: LocalizedText::default(),
        }
    }

    /// Every content hash this reference needs: the original, then the preview and the
    /// thumbnail where they exist.
    pub fn hashes(&self) -> Vec<&str> {
        let mut hashes = vec![self.hash.as_str()];
        hashes.extend(self.preview.iter().map(|v| v.hash.as_str()));
        hashes.extend(self.thumbnail.iter().map(|v| v.hash.as_str()));
        hashes
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_hash(&self.hash)?;
        validate_mime_type(&self.mime_type)?;
        for variant in self.preview.iter().chain(&self.thumbnail) {
            validate_hash(&variant.hash)?;
            validate_mime_type(&variant.mime_type)?;
        }
        self.alt_text.validate("media alt text", 4 * 1024)?;
        self.caption.validate("media caption", 4 * 1024)
    }
}

/// Checks a BLAKE3 content hash as written by the media store: 64 lowercase hex digits. The
/// media store also relies on this before using a hash as a file name.
pub fn validate_hash(hash: &str) -> Result<()> {
    if hash.len() != 64
        || !hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::invalid(
            "media hash",
            "expected 64 lowercase hex digits (BLAKE3)",
        ));
    }
    Ok(())
}

fn validate_mime_type(mime_type: &str) -> Result<()> {
    let mut parts = mime_type.split('/');
    let ok = matches!((parts.next(), parts.next(), parts.next()), (Some(t), Some(s), None) if !t.is_empty() && !s.is_empty())
        && mime_type.len() <= 127
        && mime_type.is_ascii();
    if !ok {
        return Err(Error::invalid(
            "media MIME type",
            "expected `type/subtype`, e.g. `image/jpeg`",
        ));
    }
    Ok(())
}
