//! # quartier-standards
//!
//! The standards Quartier's partners already use, mapped onto the model of `quartier-domain`.
//! Every conversion here is a pure function: an export takes items (and the space they belong
//! to) and returns bytes; an import takes bytes and returns an [`Import`]: the items it could
//! read, each under the key it had in the source (so that re-importing an updated file updates
//! instead of duplicating), and every record it could not take, with the reason. Nothing here
//! touches a store, a file or the network: the device core and the server apply imports and
//! write exports.
//!
//! Field-by-field mappings, and what does not map, are in `docs/standards.md`.

pub mod geojson;
pub mod hsds;
pub mod ical;
pub mod import;
pub mod vcard;

pub use geojson::{export_geojson, import_geojson, GeoJsonExport};
pub use hsds::{
    export_hsds_csv, export_hsds_json, import_hsds_csv, import_hsds_json, HsdsCsvExport, HsdsImportOptions,
    HsdsJsonExport,
};
pub use ical::{export_ics, import_ics, IcalExport, IcalExportOptions, IcalImportOptions};
pub use import::{
    imported_over, Import, ImportError, ImportedItem, Skipped, IMPORTED_FIELDS, MAX_IMPORT_BYTES,
};
pub use vcard::{export_vcards, import_vcards, VcardExportError, VcardImport};
