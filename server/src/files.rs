//! The operator's file tasks (`quartier-server import | export | guide`, docs/standards.md):
//! files read and written at the edge, the work done by `import`, `public` and the
//! `quartier-standards` and `quartier-guide` crates.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use quartier_domain::model::ItemKind;
use quartier_standards::{ImportError, Skipped, MAX_IMPORT_BYTES};
use uuid::Uuid;

use crate::documents::DocCache;
use crate::error::ServerError;
use crate::import::{self, ImportSummary};
use crate::public;
use crate::storage::Db;

/// The standards the file tasks speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standard {
    /// Open Referral HSDS 3.0 JSON (a `service_list` page of services).
    Hsds,
    /// HSDS 3.0 tables: a folder of CSV files and `datapackage.json`.
    HsdsTables,
    /// iCalendar (RFC 5545).
    Ical,
    /// GeoJSON (RFC 7946).
    Geojson,
}

/// The data folder held by one process that writes documents: `serve`, or an import. A second
/// one is refused, because the serving process keeps documents in memory and would not see
/// changes written beside it.
pub struct DataLock {
    _file: File,
}

impl DataLock {
    pub fn acquire(data: &Path, what: &str) -> Result<Self, ServerError> {
        let path = data.join("quartier-server.lock");
        let file = File::create(&path)
            .map_err(|e| ServerError::Startup(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(DataLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(ServerError::Startup(format!(
                "another quartier-server process holds {} ({what} needs it alone): stop `serve` first",
                data.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(ServerError::Startup(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, ServerError> {
    let size = std::fs::metadata(path)
        .map_err(|e| ServerError::BadRequest(format!("{}: {e}", path.display())))?
        .len();
    if size > MAX_IMPORT_BYTES as u64 {
        return Err(ServerError::BadRequest(format!(
            "{}: {}",
            path.display(),
            ImportError::TooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                max: MAX_IMPORT_BYTES,
            }
        )));
    }
    std::fs::read(path).map_err(|e| ServerError::BadRequest(format!("{}: {e}", path.display())))
}

/// The CSV files and `datapackage.json` of an HSDS tables folder, at most
/// [`MAX_IMPORT_BYTES`] in all.
fn read_tables(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, ServerError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| ServerError::BadRequest(format!("{}: {e}", dir.display())))?;
    let mut files = BTreeMap::new();
    let mut total = 0usize;
    for entry in entries {
        let entry = entry.map_err(|e| ServerError::BadRequest(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".csv") || name == "datapackage.json") {
            continue;
        }
        let bytes = read_bounded(&entry.path())?;
        total += bytes.len();
        if total > MAX_IMPORT_BYTES {
            return Err(ServerError::BadRequest(format!(
                "{}: the tables hold more than {MAX_IMPORT_BYTES} bytes",
                dir.display()
            )));
        }
        files.insert(name, bytes);
    }
    Ok(files)
}

fn unreadable(e: ImportError) -> ServerError {
    ServerError::BadRequest(e.to_string())
}

/// Imports `input` (a file, or a folder for [`Standard::HsdsTables`]) into `space` as `person`.
pub fn import(
    db: &Db,
    space: Uuid,
    person: Uuid,
    standard: Standard,
    language: &str,
    input: &Path,
) -> Result<ImportSummary, ServerError> {
    let (space_id, author) = (space.into(), person.into());
    let read = match standard {
        Standard::Hsds | Standard::HsdsTables => {
            let options = quartier_standards::HsdsImportOptions {
                space: space_id,
                author,
                language: language.to_owned(),
            };
            if standard == Standard::Hsds {
                quartier_standards::import_hsds_json(&read_bounded(input)?, &options)
            } else {
                quartier_standards::import_hsds_csv(&read_tables(input)?, &options)
            }
        }
        Standard::Ical => {
            let zone = {
                let conn = db.read()?;
                public::space(&conn, space)?
                    .ok_or_else(|| ServerError::NotFound(format!("no space {space}")))?
                    .meta
                    .time_zone
            };
            let options = quartier_standards::IcalImportOptions::new(space_id, author, language, &zone)
                .map_err(|e| ServerError::BadRequest(e.to_string()))?;
            quartier_standards::import_ics(&read_bounded(input)?, &options)
        }
        Standard::Geojson => {
            quartier_standards::import_geojson(&read_bounded(input)?, space_id, author, language)
        }
    }
    .map_err(unreadable)?;
    import::run(db, &DocCache::new(1024), space, person, read)
}

/// Writes what everyone in `space` may read as `standard` to `out` (a file, or a folder for
/// [`Standard::HsdsTables`]); returns the items not written, and why.
pub fn export(
    db: &Db,
    space: Uuid,
    standard: Standard,
    language: &str,
    out: &Path,
) -> Result<Vec<Skipped>, ServerError> {
    let conn = db.read()?;
    let now = chrono::Utc::now();
    let kinds: &[ItemKind] = match standard {
        Standard::Hsds | Standard::HsdsTables => &[ItemKind::Offer],
        Standard::Ical => &[ItemKind::Event, ItemKind::Offer],
        Standard::Geojson => &[ItemKind::Place, ItemKind::Observation],
    };
    let meta =
        public::space(&conn, space)?.ok_or_else(|| ServerError::NotFound(format!("no space {space}")))?;
    let (items, more) = public::items(&conn, space, kinds, now)?;
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|e| ServerError::Internal(format!("{}: {e}", path.display())))
    };
    let mut skipped = match standard {
        Standard::Hsds => {
            let export = quartier_standards::export_hsds_json(&items, language);
            write(out, &export.bytes)?;
            export.skipped
        }
        Standard::HsdsTables => {
            let export = quartier_standards::export_hsds_csv(&items, language)
                .map_err(|e| ServerError::Internal(format!("HSDS tables: {e}")))?;
            std::fs::create_dir_all(out)
                .map_err(|e| ServerError::Internal(format!("{}: {e}", out.display())))?;
            for (name, bytes) in &export.files {
                write(&out.join(name), bytes)?;
            }
            export.skipped
        }
        Standard::Ical => {
            let options = quartier_standards::IcalExportOptions {
                now,
                languages: vec![language.to_owned()],
                item_link_base: None,
            };
            let export = quartier_standards::export_ics(&meta, &items, &options);
            write(out, export.ics.as_bytes())?;
            export.skipped
        }
        Standard::Geojson => {
            let export = quartier_standards::export_geojson(&items)
                .map_err(|e| ServerError::Internal(format!("GeoJSON: {e}")))?;
            write(out, &export.bytes)?;
            export.skipped
        }
    };
    if more {
        skipped.push(Skipped {
            record: "…".into(),
            reason: format!("only the newest {} items are exported", public::MAX_PUBLIC_ITEMS),
        });
    }
    Ok(skipped)
}

/// What the printed guide is made of, as the operator asks for it.
pub struct GuideTask {
    pub space: Uuid,
    pub language: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Where the QR codes lead: `<base>/i/<item>`, this server's item pages.
    pub link_base: String,
    pub paper: quartier_guide::PaperFormat,
    pub large_print: bool,
    pub easy_language: bool,
    pub out: PathBuf,
}

/// Writes the guide as `guide.pdf` and `guide.html` into the task's folder.
pub fn guide(db: &Db, task: &GuideTask) -> Result<quartier_guide::GuideSummary, ServerError> {
    let conn = db.read()?;
    let now = chrono::Utc::now();
    let meta = public::space(&conn, task.space)?
        .ok_or_else(|| ServerError::NotFound(format!("no space {}", task.space)))?;
    let (offers, _) = public::items(&conn, task.space, &[ItemKind::Offer], now)?;
    let (events, _) = public::items(&conn, task.space, &[ItemKind::Event], now)?;
    drop(conn);
    let bad = |e: quartier_guide::GuideError| ServerError::BadRequest(e.to_string());
    let name = meta
        .meta
        .name
        .best(&[&task.language, &meta.meta.default_language])
        .unwrap_or_default()
        .to_owned();
    let mut request = quartier_guide::GuideRequest::new(
        name,
        task.language.clone(),
        task.first_day,
        task.last_day,
        meta.meta.time_zone.clone(),
        quartier_guide::LinkScheme::from_base(&task.link_base).map_err(bad)?,
    );
    request.offers = offers;
    request.events = events;
    request.options = quartier_guide::GuideOptions {
        paper: task.paper,
        large_print: task.large_print,
        easy_language: task.easy_language,
    };
    let pdf = quartier_guide::render_pdf(&request).map_err(bad)?;
    let html = quartier_guide::render_html(&request).map_err(bad)?;
    std::fs::create_dir_all(&task.out)
        .map_err(|e| ServerError::Internal(format!("{}: {e}", task.out.display())))?;
    for (name, bytes) in [
        ("guide.pdf", pdf.bytes.as_slice()),
        ("guide.html", html.html.as_bytes()),
    ] {
        let path = task.out.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| ServerError::Internal(format!("{}: {e}", path.display())))?;
    }
    Ok(pdf.summary)
}
