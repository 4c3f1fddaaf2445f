//! Imports and exports of the standards partners already use (`docs/standards.md`). The
//! conversions themselves are `quartier-standards`' pure functions; here they meet the store:
//! - which items an export holds: what everyone in the space may read (audience everyone,
//!   published), because a file or a calendar feed leaves the app's access control;
//! - how an import lands: in one write transaction, each record under its source key, so that
//!   importing an updated file updates the items it made before instead of adding new ones. A
//!   record the store refuses (invalid, not permitted) is skipped with the reason; the rest of
//!   the file is taken.

pub use quartier_standards::MAX_IMPORT_BYTES;
use std::collections::{BTreeMap, HashMap};

use quartier_standards::{imported_over, Import, ImportError, Skipped, IMPORTED_FIELDS};
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::model::{Audience, Item, ItemId, ItemKind, NewItem, PersonId, SpaceId, Status, Viewer};
use crate::query::{feed, FeedQuery, Limit};
use crate::store::{Store, Touched};

/// The most items one export writes; more are named in the export's skipped list.
pub const MAX_EXPORT_ITEMS: usize = 20_000;

/// A record of a file that was not taken (import) or an item not written (export), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SkippedRecord {
    /// Where: a record id of the file, a line, or an item id.
    pub record: String,
    pub reason: String,
}

impl From<Skipped> for SkippedRecord {
    fn from(s: Skipped) -> Self {
        SkippedRecord {
            record: s.record,
            reason: s.reason,
        }
    }
}

/// What importing a file changed on this device.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ImportOutcome {
    /// Items made from records seen for the first time.
    pub created: Vec<ItemId>,
    /// Items made by an earlier import of the same records, changed to what the file says now.
    pub updated: Vec<ItemId>,
    /// Items made by an earlier import that the file leaves as they are.
    pub unchanged: Vec<ItemId>,
    /// Records not taken, with the reason: what the file's reader could not read and what the
    /// store refused.
    pub skipped: Vec<SkippedRecord>,
}

/// An export: the file's bytes, and the items it could not hold.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Exported {
    pub bytes: Vec<u8>,
    pub skipped: Vec<SkippedRecord>,
}

impl From<ImportError> for Error {
    fn from(e: ImportError) -> Self {
        Error::MalformedInput {
            what: "import file",
            reason: e.to_string(),
        }
    }
}

/// Whether a store error refuses one record (it is skipped) or stops the import (the file's
/// records are all left out and the error returned): a full disk or a damaged store stops it.
fn refuses_the_record(error: &Error) -> bool {
    matches!(
        error,
        Error::Invalid { .. }
            | Error::InvalidCoordinates { .. }
            | Error::UnknownKind(_)
            | Error::MalformedInput { .. }
            | Error::DocumentTooLarge { .. }
            | Error::KindChange { .. }
            | Error::NotPermitted { .. }
            | Error::NotFound { .. }
            | Error::Schedule(_)
    )
}

enum Landed {
    Created(ItemId),
    Updated(ItemId),
    Unchanged(ItemId),
}

impl Store {
    /// Takes what a standards reader read (`quartier_standards::import_*`) into the store, in
    /// one transaction: each record creates an item, or updates the one an earlier import of
    /// the same source key made. An item deleted here since is left deleted (skipped).
    pub fn apply_import(&self, import: Import) -> Result<ImportOutcome> {
        let mut outcome = ImportOutcome {
            skipped: import.skipped.into_iter().map(SkippedRecord::from).collect(),
            ..Default::default()
        };
        self.write(|tx, touched| {
            let mut seen = std::collections::BTreeSet::new();
            for record in import.items {
                if !seen.insert((record.item.space, record.source_key.clone())) {
                    outcome.skipped.push(SkippedRecord {
                        record: record.source_key,
                        reason: "the file has this record twice; the first one was taken".into(),
                    });
                    continue;
                }
                tx.execute_batch("SAVEPOINT import_record")?;
                match self.land(tx, touched, &record.source_key, record.item) {
                    Ok(landed) => {
                        tx.execute_batch("RELEASE import_record")?;
                        match landed {
                            Landed::Created(id) => outcome.created.push(id),
                            Landed::Updated(id) => outcome.updated.push(id),
                            Landed::Unchanged(id) => outcome.unchanged.push(id),
                        }
                    }
                    Err(e) if refuses_the_record(&e) => {
                        tx.execute_batch("ROLLBACK TO import_record; RELEASE import_record")?;
                        outcome.skipped.push(SkippedRecord {
                            record: record.source_key,
                            reason: e.to_string(),
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
        Ok(outcome)
    }

    fn land(&self, tx: &Connection, touched: &mut Touched, key: &str, new: NewItem) -> Result<Landed> {
        let space = new.space.to_string();
        let earlier: Option<String> = tx
            .prepare_cached("SELECT item_id FROM imported_items WHERE space_id = ?1 AND source_key = ?2")?
            .query_row([&space, key], |r| r.get(0))
            .optional()?;
        if earlier.as_deref() == Some("") {
            return Err(Error::invalid(
                "record",
                "the item it made was erased on this device; it is not imported again",
            ));
        }
        let existing = match earlier {
            Some(id) => crate::query::item_by_id(tx, &id)?.map(|item| (item.id, item)),
            None => None,
        };
        if let Some((id, current)) = existing {
            if current.content.status == Status::Deleted {
                return Err(Error::invalid(
                    "record",
                    "the item it made was deleted on this device; it is not brought back",
                ));
            }
            let next = imported_over(&current.content, &new.content);
            if next == current.content {
                return Ok(Landed::Unchanged(id));
            }
            self.change_item_in(tx, touched, id, new.author, IMPORTED_FIELDS.to_vec(), |_| {
                next.validate()?;
                Ok(next.clone())
            })??;
            return Ok(Landed::Updated(id));
        }
        let item = self.create_item_in(tx, touched, new)?;
        tx.prepare_cached(
            "INSERT INTO imported_items (space_id, source_key, item_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (space_id, source_key) DO UPDATE SET item_id = excluded.item_id",
        )?
        .execute([&space, key, &item.id.to_string()])?;
        Ok(Landed::Created(item.id))
    }

    /// The items of `kinds` in `space` that everyone there may read (audience everyone,
    /// published, not hidden), newest first, at most [`MAX_EXPORT_ITEMS`]; whether there were
    /// more. Items of people this device's person muted are left out too (`items.hidden`).
    pub(crate) fn exportable_items(&self, space: SpaceId, kinds: &[ItemKind]) -> Result<(Vec<Item>, bool)> {
        // Read as a resident who wrote nothing sees the space: what everyone there may read.
        // The caller's own items get no exception (one of theirs hidden by the coordinators is
        // not exported), nor do their role's wider audiences.
        let everyone = Viewer::new(PersonId::from(uuid::Uuid::nil()), crate::model::Role::Resident);
        self.read(|conn| {
            let mut query = FeedQuery::new(space, everyone);
            query.kinds = kinds.to_vec();
            query.audiences = vec![Audience::Everyone];
            query.limit = Limit(500);
            let mut items = Vec::new();
            loop {
                let page = feed(conn, &query)?;
                items.extend(page.items);
                if items.len() > MAX_EXPORT_ITEMS {
                    items.truncate(MAX_EXPORT_ITEMS);
                    return Ok((items, true));
                }
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => return Ok((items, false)),
                }
            }
        })
    }

    /// Places and observations of `space` as a GeoJSON `FeatureCollection` (RFC 7946).
    pub fn export_geojson(&self, space: SpaceId) -> Result<Exported> {
        let (items, more) = self.exportable_items(space, &[ItemKind::Place, ItemKind::Observation])?;
        let export = quartier_standards::export_geojson(&items).map_err(|e| Error::MalformedInput {
            what: "GeoJSON export",
            reason: e.to_string(),
        })?;
        Ok(Exported {
            bytes: export.bytes,
            skipped: with_cap_note(export.skipped, more),
        })
    }

    /// Reads a GeoJSON `FeatureCollection` into places and observations of `space`, authored by
    /// `by` (texts in `language`), and takes them in ([`Store::apply_import`]).
    pub fn import_geojson(
        &self,
        space: SpaceId,
        by: PersonId,
        bytes: &[u8],
        language: &str,
    ) -> Result<ImportOutcome> {
        self.apply_import(quartier_standards::import_geojson(bytes, space, by, language)?)
    }
}

impl Store {
    /// Events and offers' opening hours of `space` as iCalendar (RFC 5545), texts in the
    /// space's default language first. `item_link_base` (e.g. `https://server.example/i/`) gives
    /// each event a URL.
    pub fn export_icalendar(&self, space: SpaceId, item_link_base: Option<String>) -> Result<Exported> {
        let meta = self.space(space)?;
        let (items, more) = self.exportable_items(space, &[ItemKind::Event, ItemKind::Offer])?;
        let options = quartier_standards::IcalExportOptions {
            now: chrono::Utc::now(),
            languages: vec![meta.meta.default_language.clone()],
            item_link_base,
        };
        let export = quartier_standards::export_ics(&meta, &items, &options);
        Ok(Exported {
            bytes: export.ics.into_bytes(),
            skipped: with_cap_note(export.skipped, more),
        })
    }

    /// Reads an `.ics` file into events of `space` authored by `by` (texts without a language
    /// in `language`; floating times and all-day events in the space's time zone), and takes
    /// them in ([`Store::apply_import`]).
    pub fn import_icalendar(
        &self,
        space: SpaceId,
        by: PersonId,
        bytes: &[u8],
        language: &str,
    ) -> Result<ImportOutcome> {
        let meta = self.space(space)?;
        let options = quartier_standards::IcalImportOptions::new(space, by, language, &meta.meta.time_zone)?;
        self.apply_import(quartier_standards::import_ics(bytes, &options)?)
    }

    /// Offers of `space` as Open Referral HSDS 3.0 JSON (a `service_list` page of compiled
    /// service objects), texts in `language`.
    pub fn export_hsds(&self, space: SpaceId, language: &str) -> Result<Exported> {
        let (items, more) = self.exportable_items(space, &[ItemKind::Offer])?;
        let export = quartier_standards::export_hsds_json(&items, language);
        Ok(Exported {
            bytes: export.bytes,
            skipped: with_cap_note(export.skipped, more),
        })
    }

    /// Offers of `space` as the HSDS 3.0 tabular datapackage: file name → CSV (and
    /// `datapackage.json`).
    pub fn export_hsds_tables(&self, space: SpaceId, language: &str) -> Result<ExportedTables> {
        let (items, more) = self.exportable_items(space, &[ItemKind::Offer])?;
        let export =
            quartier_standards::export_hsds_csv(&items, language).map_err(|e| Error::MalformedInput {
                what: "HSDS tables",
                reason: e.to_string(),
            })?;
        Ok(ExportedTables {
            files: export.files.into_iter().collect(),
            skipped: with_cap_note(export.skipped, more),
        })
    }

    /// Reads HSDS 3.0 JSON (a `service_list` page, a list of services or one service) into
    /// offers of `space` authored by `by`, texts in `language`, and takes them in.
    pub fn import_hsds(
        &self,
        space: SpaceId,
        by: PersonId,
        bytes: &[u8],
        language: &str,
    ) -> Result<ImportOutcome> {
        let options = hsds_options(space, by, language)?;
        self.apply_import(quartier_standards::import_hsds_json(bytes, &options)?)
    }

    /// Reads the HSDS 3.0 tabular form (file name → CSV bytes, names as in the datapackage:
    /// `services.csv`, `schedules.csv`, …) and takes it in as [`Store::import_hsds`] does.
    pub fn import_hsds_tables(
        &self,
        space: SpaceId,
        by: PersonId,
        files: HashMap<String, Vec<u8>>,
        language: &str,
    ) -> Result<ImportOutcome> {
        let total: usize = files.values().map(Vec::len).sum();
        if total > MAX_IMPORT_BYTES {
            return Err(ImportError::TooLarge {
                size: total,
                max: MAX_IMPORT_BYTES,
            }
            .into());
        }
        let options = hsds_options(space, by, language)?;
        let files: BTreeMap<String, Vec<u8>> = files.into_iter().collect();
        self.apply_import(quartier_standards::import_hsds_csv(&files, &options)?)
    }

    /// An offer's organization and contacts as vCard 4.0 cards (one `.vcf` text), texts in the
    /// space's default language first.
    pub fn offer_vcards(&self, item: ItemId, viewer: Viewer) -> Result<String> {
        let item = self.item_detail(item, &viewer)?.item;
        let meta = self.space(item.space)?;
        quartier_standards::export_vcards(&item, &[meta.meta.default_language]).map_err(|e| Error::Invalid {
            field: "item",
            reason: e.to_string(),
        })
    }
}

fn hsds_options(
    space: SpaceId,
    by: PersonId,
    language: &str,
) -> Result<quartier_standards::HsdsImportOptions> {
    crate::model::validate_language_tag(language).map_err(|reason| Error::Invalid {
        field: "language",
        reason,
    })?;
    Ok(quartier_standards::HsdsImportOptions {
        space,
        author: by,
        language: language.to_owned(),
    })
}

/// What a `.vcf` file held: organizations and contacts to put into an offer, and the cards or
/// properties not taken.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct VcardContacts {
    pub organizations: Vec<crate::model::Organization>,
    pub contacts: Vec<crate::model::Contact>,
    pub skipped: Vec<SkippedRecord>,
}

/// Reads vCards (3.0 or 4.0, as contacts programs export them) into offer contacts.
pub fn read_vcards(bytes: &[u8]) -> Result<VcardContacts> {
    let read = quartier_standards::import_vcards(bytes)?;
    Ok(VcardContacts {
        organizations: read.organizations,
        contacts: read.contacts,
        skipped: read.skipped.into_iter().map(SkippedRecord::from).collect(),
    })
}

/// An export in several files (HSDS tables): file name → bytes, and the items not written.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ExportedTables {
    pub files: HashMap<String, Vec<u8>>,
    pub skipped: Vec<SkippedRecord>,
}

/// An export's skipped list, with a line for the items left out over [`MAX_EXPORT_ITEMS`].
fn with_cap_note(skipped: Vec<Skipped>, more: bool) -> Vec<SkippedRecord> {
    let mut out: Vec<SkippedRecord> = skipped.into_iter().map(SkippedRecord::from).collect();
    if more {
        out.push(SkippedRecord {
            record: "…".into(),
            reason: format!("only the newest {MAX_EXPORT_ITEMS} items are exported"),
        });
    }
    out
}
