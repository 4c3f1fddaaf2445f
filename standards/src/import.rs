//! What every import returns, whatever the standard: the items read, keyed by their source
//! identifier, and the records skipped with a reason. One shape for all standards so that the
//! core, the server and the bindings report imports one way.

use quartier_domain::model::{ItemContent, NewItem};

/// The largest file an import reads (bytes). A bigger one is refused whole before parsing, so a
/// 50 MB upload costs nothing but the check.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// One item an import could read.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedItem {
    /// The record's identifier in the source, prefixed with the standard (`hsds:service:…`,
    /// `ical:UID`, `geojson:…`): the key an importer keeps to update the same item next time.
    pub source_key: String,
    /// The item as Quartier would create it.
    pub item: NewItem,
}

/// A record an import could not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Where in the source: a record identifier, a line, a feature index.
    pub record: String,
    /// Why, in words a coordinator can act on.
    pub reason: String,
}

/// The result of reading one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Import {
    pub items: Vec<ImportedItem>,
    pub skipped: Vec<Skipped>,
}

/// A file that could not be read at all (nothing of it is taken).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("the file is {size} bytes; imports take at most {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("the file is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("the file is not valid {format}: {reason}")]
    Malformed { format: &'static str, reason: String },
}

impl ImportError {
    /// The checks every import makes before parsing: size, then UTF-8.
    pub fn check_text(bytes: &[u8]) -> Result<&str, ImportError> {
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err(ImportError::TooLarge {
                size: bytes.len(),
                max: MAX_IMPORT_BYTES,
            });
        }
        std::str::from_utf8(bytes).map_err(|e| ImportError::NotUtf8 {
            offset: e.valid_up_to(),
        })
    }
}

/// The fields an import owns: what the standards hold. Audience, status, media and a proxy's
/// details stay as they were set in Quartier, so a re-import never makes a narrowed item public
/// again or drops its photos.
pub const IMPORTED_FIELDS: [&str; 6] = ["title", "body", "tags", "location", "details", "valid_until"];

/// An item's content after importing `imported` over `current`: the one rule the device and the
/// server apply when a record comes back under the same source key.
pub fn imported_over(current: &ItemContent, imported: &ItemContent) -> ItemContent {
    ItemContent {
        title: imported.title.clone(),
        body: imported.body.clone(),
        tags: imported.tags.clone(),
        location: imported.location,
        details: imported.details.clone(),
        // Most standards carry no end date (HSDS, iCalendar): one set in Quartier to retire an
        // imported item stays unless the file gives one.
        valid_until: imported.valid_until.or(current.valid_until),
        ..current.clone()
    }
}
