//! References from an item to media (photos, audio, video) held in the content-addressed media
//! store. The bytes themselves are not part of the item document.

use serde::{Deserialize, Serialize};

use super::text::LocalizedText;
use crate::error::{Error, Result};

/// A reference to one media file by its BLAKE3 content hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaRef {
    /// BLAKE3 hash of the content, 64 lowercase hex digits.
    pub hash: String,
    pub mime_type: String,
    pub size: u64,
    /// Description for people who cannot see the image, per language.
    #[serde(default, skip_serializing_if = "LocalizedText::is_empty")]
    pub alt_text: LocalizedText,
    #[serde(default, skip_serializing_if = "LocalizedText::is_empty")]
    pub caption: LocalizedText,
}

impl MediaRef {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.hash.len() != 64
            || !self
                .hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::invalid(
                "media hash",
                "expected 64 lowercase hex digits (BLAKE3)",
            ));
        }
        let mut parts = self.mime_type.split('/');
        let ok = matches!((parts.next(), parts.next(), parts.next()), (Some(t), Some(s), None) if !t.is_empty() && !s.is_empty())
            && self.mime_type.len() <= 127
            && self.mime_type.is_ascii();
        if !ok {
            return Err(Error::invalid(
                "media MIME type",
                "expected `type/subtype`, e.g. `image/jpeg`",
            ));
        }
        self.alt_text.validate("media alt text", 4 * 1024)?;
        self.caption.validate("media caption", 4 * 1024)
    }
}
