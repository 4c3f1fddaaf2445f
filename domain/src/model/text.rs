//! Texts in several languages: a map from BCP-47 language tag to text, with an easy-language
//! variant carried as a private-use subtag (`de-x-easy`), because BCP-47 has no standard tag for
//! Leichte Sprache.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The private-use subtag that marks an easy-language variant: `de-x-easy`, `en-x-easy`.
pub const EASY_LANGUAGE_SUBTAG: &str = "x-easy";

/// A text with one variant per language tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalizedText(BTreeMap<String, String>);

impl LocalizedText {
    /// An empty text.
    pub fn new() -> Self {
        Self::default()
    }

    /// A text in one language.
    pub fn single(language: &str, text: impl Into<String>) -> Self {
        let mut t = Self::new();
        t.0.insert(language.to_owned(), text.into());
        t
    }

    /// Builder: adds or replaces the variant for `language`.
    pub fn with(mut self, language: &str, text: impl Into<String>) -> Self {
        self.0.insert(language.to_owned(), text.into());
        self
    }

    /// Adds or replaces the variant for `language`.
    pub fn set(&mut self, language: &str, text: impl Into<String>) {
        self.0.insert(language.to_owned(), text.into());
    }

    /// The variant for exactly this tag.
    pub fn get(&self, language: &str) -> Option<&str> {
        self.0.get(language).map(String::as_str)
    }

    /// The best variant for a reader who prefers `languages` in order (exact tag, then the
    /// primary language), falling back to any variant so nobody sees an empty title.
    pub fn best(&self, languages: &[&str]) -> Option<&str> {
        for wanted in languages {
            if let Some(text) = self.0.get(*wanted) {
                return Some(text);
            }
            let primary = wanted.split('-').next().unwrap_or(wanted);
            if let Some(text) = self.0.get(primary) {
                return Some(text);
            }
        }
        self.0.values().next().map(String::as_str)
    }

    /// The easy-language variant for a primary language, if there is one.
    pub fn easy(&self, primary: &str) -> Option<&str> {
        self.get(&format!("{primary}-{EASY_LANGUAGE_SUBTAG}"))
    }

    /// Iterates (language tag, text) in tag order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when no variant is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All variants joined with newlines, for indexing.
    pub fn joined(&self) -> String {
        self.0.values().map(String::as_str).collect::<Vec<_>>().join("\n")
    }

    /// Total length in bytes of all variants.
    pub fn byte_len(&self) -> usize {
        self.0.values().map(String::len).sum()
    }

    pub(crate) fn validate(&self, field: &'static str, max_bytes: usize) -> Result<()> {
        for (tag, text) in &self.0 {
            validate_language_tag(tag).map_err(|reason| Error::invalid(field, reason))?;
            if text.len() > max_bytes {
                return Err(Error::invalid(
                    field,
                    format!(
                        "the `{tag}` variant has {} bytes, at most {max_bytes} are allowed",
                        text.len()
                    ),
                ));
            }
            if text.contains('\0') {
                return Err(Error::invalid(
                    field,
                    format!("the `{tag}` variant contains a NUL character"),
                ));
            }
        }
        Ok(())
    }
}

// Across the FFI a text is a plain map BCP-47 tag → text (Kotlin `Map<String, String>`, Swift
// `[String: String]`, Python `dict`): uniffi has no ordered map, and the order is this type's
// business. Tags are checked where a text is written (`validate`), as for texts from JSON.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(LocalizedText, std::collections::HashMap<String, String>, {
    lower: |text| text.0.into_iter().collect(),
    try_lift: |map| Ok(LocalizedText(map.into_iter().collect())),
});

impl<const N: usize> From<[(&str, &str); N]> for LocalizedText {
    fn from(pairs: [(&str, &str); N]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

/// Checks the shape of a BCP-47 tag: a 2–3 letter primary language, then subtags of 1–8
/// letters or digits (`de`, `de-DE`, `uk`, `ar`, `tr`, `de-x-easy`, `sr-Latn-RS`).
pub fn validate_language_tag(tag: &str) -> std::result::Result<(), String> {
    let shown: String = tag.chars().take(20).collect();
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    if !(2..=3).contains(&primary.len()) || !primary.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "`{shown}` is not a BCP-47 language tag (expected e.g. `de`, `en-GB`, `de-x-easy`)"
        ));
    }
    for part in parts {
        if part.is_empty() || part.len() > 8 || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "`{shown}` is not a BCP-47 language tag (bad subtag `{}`)",
                part.chars().take(10).collect::<String>()
            ));
        }
    }
    Ok(())
}
