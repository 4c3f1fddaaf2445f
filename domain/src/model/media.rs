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
    /// Bytes. Sizes, pixel dimensions and durations are signed (never negative: `validate`
    /// refuses that) because they cross the FFI, and Kotlin's unsigned types are not what an
    /// app developer expects in an API.
    pub size: i64,
    /// Pixel size as displayed (orientation applied), for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub width: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub height: Option<i32>,
    /// Play time of audio and video, where the container states it cheaply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub duration_ms: Option<i64>,
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
    /// What an audio or video recording says (a transcript or a summary), per language, for
    /// people who cannot listen; searchable like the alt text.
    #[serde(default, skip_serializing_if = "LocalizedText::is_empty")]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub transcript: LocalizedText,
    /// The language spoken in a recording (BCP-47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub language: Option<String>,
}

/// A derived file of a media reference (preview or thumbnail of an image).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MediaVariantRef {
    /// BLAKE3 hash of the derived file, 64 lowercase hex digits.
    pub hash: String,
    pub mime_type: String,
    pub size: i64,
    pub width: i32,
    pub height: i32,
}

impl MediaRef {
    /// A reference to a file with no dimensions, duration or derived files yet.
    pub fn new(hash: impl Into<String>, mime_type: impl Into<String>, size: i64) -> MediaRef {
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
            transcript: LocalizedText::default(),
            language: None,
        }
    }

    pub fn is_image(&self) -> bool {
        self.mime_type.starts_with("image/")
    }

    pub fn is_audio(&self) -> bool {
        self.mime_type.starts_with("audio/")
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
        if self.size < 0
            || self.duration_ms.is_some_and(|ms| ms < 0)
            || [self.width, self.height].into_iter().flatten().any(|d| d < 0)
        {
            return Err(Error::invalid(
                "media reference",
                "size, width, height and duration are never negative",
            ));
        }
        for variant in self.preview.iter().chain(&self.thumbnail) {
            validate_hash(&variant.hash)?;
            validate_mime_type(&variant.mime_type)?;
            if variant.size < 0 || variant.width < 0 || variant.height < 0 {
                return Err(Error::invalid(
                    "media variant",
                    "size, width and height are never negative",
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn negative_sizes_dimensions_and_durations_are_refused() {
        let good = MediaRef {
            width: Some(640),
            height: Some(480),
            duration_ms: Some(1_000),
            thumbnail: Some(MediaVariantRef {
                hash: HASH.into(),
                mime_type: "image/jpeg".into(),
                size: 10,
                width: 256,
                height: 192,
            }),
            ..MediaRef::new(HASH, "image/jpeg", 1_000)
        };
        assert!(good.validate().is_ok());
        let bad: [fn(&mut MediaRef); 6] = [
            |m| m.size = -1,
            |m| m.width = Some(-1),
            |m| m.height = Some(-640),
            |m| m.duration_ms = Some(-5),
            |m| m.thumbnail.as_mut().expect("thumbnail").size = -10,
            |m| m.thumbnail.as_mut().expect("thumbnail").width = -256,
        ];
        for (i, spoil) in bad.iter().enumerate() {
            let mut m = good.clone();
            spoil(&mut m);
            let e = m.validate().expect_err("negative");
            assert!(e.to_string().contains("never negative"), "case {i}: {e}");
        }
    }
}
