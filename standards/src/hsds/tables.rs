//! The HSDS tabular form: compiled service objects flattened into one CSV per table, and the
//! tables joined back into service objects, so that the field mapping in `mod.rs` serves both
//! forms. Column names and order are those of the HSDS 3.0 datapackage.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::MAX_SERVICES;
use crate::import::{ImportError, Skipped, MAX_IMPORT_BYTES};

/// The tables written and read, with their columns (HSDS 3.0 order).
pub const CSV_TABLES: [(&str, &[&str]); 10] = [
    (
        "organizations.csv",
        &[
            "id",
            "name",
            "alternate_name",
            "description",
            "email",
            "website",
            "tax_status",
            "tax_id",
            "year_incorporated",
            "legal_status",
            "logo",
            "uri",
            "parent_organization_id",
        ],
    ),
    (
        "services.csv",
        &[
            "id",
            "organization_id",
            "program_id",
            "name",
            "alternate_name",
            "description",
            "url",
            "email",
            "status",
            "interpretation_services",
            "application_process",
            "fees_description",
            "wait_time",
            "fees",
            "accreditations",
            "eligibility_description",
            "minimum_age",
            "maximum_age",
            "assured_date",
            "assurer_email",
            "licenses",
            "alert",
            "last_modified",
        ],
    ),
    (
        "locations.csv",
        &[
            "id",
            "location_type",
            "url",
            "organization_id",
            "name",
            "alternate_name",
            "description",
            "transportation",
            "latitude",
            "longitude",
            "external_identifier",
            "external_identifier_type",
        ],
    ),
    (
        "addresses.csv",
        &[
            "id",
            "location_id",
            "attention",
            "address_1",
            "address_2",
            "city",
            "region",
            "state_province",
            "postal_code",
            "country",
            "address_type",
        ],
    ),
    (
        "service_at_location.csv",
        &["id", "service_id", "location_id", "description"],
    ),
    (
        "schedules.csv",
        &[
            "id",
            "service_id",
            "location_id",
            "service_at_location_id",
            "valid_from",
            "valid_to",
            "dtstart",
            "timezone",
            "until",
            "count",
            "wkst",
            "freq",
            "interval",
            "byday",
            "byweekno",
            "bymonthday",
            "byyearday",
            "description",
            "opens_at",
            "closes_at",
            "schedule_link",
            "attending_type",
            "notes",
        ],
    ),
    (
        "phones.csv",
        &[
            "id",
            "location_id",
            "service_id",
            "organization_id",
            "contact_id",
            "service_at_location_id",
            "number",
            "extension",
            "type",
            "description",
        ],
    ),
    (
        "contacts.csv",
        &[
            "id",
            "organization_id",
            "service_id",
            "service_at_location_id",
            "location_id",
            "name",
            "title",
            "department",
            "email",
        ],
    ),
    (
        "languages.csv",
        &[
            "id",
            "service_id",
            "location_id",
            "phone_id",
            "name",
            "code",
            "note",
        ],
    ),
    (
        "accessibility.csv",
        &["id", "location_id", "description", "details", "url"],
    ),
];

/// A CSV table could not be written (the writer failed; nothing was returned).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("writing the HSDS table {table} failed: {reason}")]
pub struct HsdsCsvError {
    pub table: &'static str,
    pub reason: String,
}

/// The longest cell an import reads, in bytes; a row with a longer one is skipped (reported).
pub const MAX_CELL_BYTES: usize = 64 * 1024;

/// The most an import's joined service objects may hold, in bytes of cell text (each cell
/// counted with its column name and a small overhead, once for every service it is copied
/// into): twice the largest file. Joining copies a shared row (an organization, a location)
/// into every service that names it, so without this bound a small file could ask for
/// gigabytes. A file that needs more is refused as malformed.
pub const MAX_JOINED_BYTES: usize = 2 * MAX_IMPORT_BYTES;

/// What each cell adds to [`MAX_JOINED_BYTES`] besides its text (the map entry).
const CELL_OVERHEAD: usize = 16;

fn cell(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => return String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    defuse(text)
}

/// Characters that make a spreadsheet read a cell as a formula (or, for TAB and CR, that let
/// a cell be shifted so that one does).
fn formula_start(c: char) -> bool {
    matches!(c, '=' | '@' | '\t' | '\r' | '+' | '-')
}

/// A number or phone number as people write them: `+49 221 555 0101`, `-3.5`, `(030) 12/34`.
fn plain_number(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '(' | ')' | '.' | '/' | '-' | '+'))
}

/// Guards a cell against formula injection (OWASP "CSV injection"): a cell starting with `=`,
/// `@`, TAB or CR, or with `+` or `-` when it is not a plain number, gets a leading `'`, which
/// spreadsheets show as text. A cell that starts with `'`s followed by one of those characters
/// gets one more `'`, so that [`restore`] gives back exactly what was written.
fn defuse(text: String) -> String {
    let after_quotes = text.trim_start_matches('\'');
    let Some(first) = after_quotes.chars().next() else {
        return text;
    };
    let quoted = after_quotes.len() < text.len();
    let dangerous = match first {
        '=' | '@' | '\t' | '\r' => true,
        '+' | '-' => quoted || !plain_number(&text),
        _ => false,
    };
    if dangerous {
        format!("'{text}")
    } else {
        text
    }
}

/// Undoes [`defuse`] on import: one leading `'` is removed where the cell, after its leading
/// `'`s, starts with `=`, `@`, TAB, CR, `+` or `-`.
fn restore(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(formula_start) => rest,
        _ => text,
    }
}

fn objects<'a>(object: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    object.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// Flattens service objects into the tables, plus `datapackage.json`.
pub(crate) fn write(services: &[Value]) -> Result<BTreeMap<String, Vec<u8>>, HsdsCsvError> {
    let mut rows: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for service in services {
        rows.entry("services.csv").or_default().push(service);
        if let Some(org) = service.get("organization") {
            rows.entry("organizations.csv").or_default().push(org);
            rows.entry("phones.csv")
                .or_default()
                .extend(objects(org, "phones"));
        }
        for at in objects(service, "service_at_locations") {
            rows.entry("service_at_location.csv").or_default().push(at);
            if let Some(location) = at.get("location") {
                rows.entry("locations.csv").or_default().push(location);
                rows.entry("addresses.csv")
                    .or_default()
                    .extend(objects(location, "addresses"));
                rows.entry("accessibility.csv")
                    .or_default()
                    .extend(objects(location, "accessibility"));
            }
        }
        rows.entry("schedules.csv")
            .or_default()
            .extend(objects(service, "schedules"));
        for contact in objects(service, "contacts") {
            rows.entry("contacts.csv").or_default().push(contact);
            rows.entry("phones.csv")
                .or_default()
                .extend(objects(contact, "phones"));
        }
        rows.entry("phones.csv")
            .or_default()
            .extend(objects(service, "phones"));
        rows.entry("languages.csv")
            .or_default()
            .extend(objects(service, "languages"));
    }
    let mut files = BTreeMap::new();
    let mut resources = Vec::new();
    for (table, columns) in CSV_TABLES {
        let fail = |e: csv::Error| HsdsCsvError {
            table,
            reason: e.to_string(),
        };
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(columns).map_err(fail)?;
        for row in rows.get(table).into_iter().flatten() {
            writer
                .write_record(columns.iter().map(|c| cell(row.get(*c))))
                .map_err(fail)?;
        }
        let bytes = writer.into_inner().map_err(|e| HsdsCsvError {
            table,
            reason: e.to_string(),
        })?;
        files.insert(table.to_owned(), bytes);
        resources.push(json!({
            "name": table.trim_end_matches(".csv"),
            "path": table,
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": {"fields": columns.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()},
        }));
    }
    let descriptor = json!({
        "name": "hsds-export",
        "title": "Offers exported by Quartier as Open Referral HSDS 3.0",
        "profile": "tabular-data-package",
        "version": "3.0",
        "homepage": "https://openreferral.org/",
        "resources": resources,
    });
    files.insert("datapackage.json".into(), format!("{descriptor:#}").into_bytes());
    Ok(files)
}

/// One CSV row: column → non-empty value, with its line for reports.
struct Row {
    line: u64,
    cells: BTreeMap<String, String>,
    /// What the row costs each time it is copied into a service.
    size: usize,
}

impl Row {
    fn get(&self, column: &str) -> Option<&str> {
        self.cells.get(column).map(String::as_str)
    }

    fn id(&self) -> Option<&str> {
        self.get("id")
    }

    /// The row as an object, its size taken from `budget` (see [`MAX_JOINED_BYTES`]).
    fn object(&self, budget: &mut Budget) -> Result<Map<String, Value>, ImportError> {
        budget.spend(self.size)?;
        Ok(self
            .cells
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect())
    }
}

/// What is left of [`MAX_JOINED_BYTES`] while joining.
struct Budget {
    left: usize,
}

impl Budget {
    fn spend(&mut self, bytes: usize) -> Result<(), ImportError> {
        self.left = self
            .left
            .checked_sub(bytes)
            .ok_or_else(|| ImportError::Malformed {
                format: "HSDS CSV",
                reason: format!(
                    "joined into services, the tables would hold more than {MAX_JOINED_BYTES} bytes \
                 (rows shared by many services are copied into each); split the file"
                ),
            })?;
        Ok(())
    }
}

fn parse_table(name: &str, text: &str, skipped: &mut Vec<Skipped>) -> Vec<Row> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
            .collect::<Vec<_>>(),
        Err(e) => {
            skipped.push(Skipped {
                record: name.to_owned(),
                reason: format!("not read: the header line is not CSV ({e})"),
            });
            return Vec::new();
        }
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, csv::Position::line);
                if let Some((column, long)) = headers
                    .iter()
                    .zip(record.iter())
                    .find(|(_, v)| v.len() > MAX_CELL_BYTES)
                {
                    skipped.push(Skipped {
                        record: format!("{name} line {line}"),
                        reason: format!(
                            "not read: its `{}` is {} bytes; a cell is read up to {MAX_CELL_BYTES} bytes",
                            column.chars().take(40).collect::<String>(),
                            long.len()
                        ),
                    });
                    continue;
                }
                let cells: BTreeMap<String, String> = headers
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(h, v)| (h.clone(), restore(v).to_owned()))
                    .collect();
                let size = cells.iter().map(|(k, v)| k.len() + v.len() + CELL_OVERHEAD).sum();
                rows.push(Row { line, cells, size });
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                skipped.push(Skipped {
                    record: format!("{name} line {line}"),
                    reason: format!("not read: {e}"),
                });
            }
        }
    }
    rows
}

type Used = BTreeMap<&'static str, BTreeSet<usize>>;

/// The rows found (by index) that are not excluded and not taken yet, as objects; marks them.
fn take(
    used: &mut Used,
    budget: &mut Budget,
    table: &'static str,
    found: Option<&Vec<(usize, &Row)>>,
    exclude: &dyn Fn(&Row) -> bool,
) -> Result<Vec<Value>, ImportError> {
    let mut out = Vec::new();
    for (i, row) in found.into_iter().flatten() {
        if exclude(row) {
            continue;
        }
        if used.entry(table).or_default().insert(*i) {
            out.push(Value::Object(row.object(budget)?));
        }
    }
    Ok(out)
}

/// Joins the tables into service objects. Rows no service uses are reported, with the reason.
pub(crate) fn read(files: &BTreeMap<String, Vec<u8>>) -> Result<(Vec<Value>, Vec<Skipped>), ImportError> {
    let total: usize = files.values().map(Vec::len).sum();
    if total > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge {
            size: total,
            max: MAX_IMPORT_BYTES,
        });
    }
    let mut skipped = Vec::new();
    let mut tables: BTreeMap<&str, Vec<Row>> = BTreeMap::new();
    for (name, bytes) in files {
        let known = CSV_TABLES.iter().find(|(t, _)| t == name).map(|(t, _)| *t);
        let text = ImportError::check_text(bytes)?;
        match known {
            Some(table) => {
                tables.insert(table, parse_table(table, text, &mut skipped));
            }
            None if name == "datapackage.json" => {}
            None => skipped.push(Skipped {
                record: name.clone(),
                reason: "not read: this HSDS table does not map onto Quartier offers".into(),
            }),
        }
    }
    if !tables.contains_key("services.csv") {
        return Err(ImportError::Malformed {
            format: "HSDS CSV",
            reason: "there is no services.csv".into(),
        });
    }
    let table = |name: &str| tables.get(name).map(Vec::as_slice).unwrap_or(&[]);
    let by = |name: &'static str, column: &'static str| {
        let mut index: BTreeMap<&str, Vec<(usize, &Row)>> = BTreeMap::new();
        for (i, row) in table(name).iter().enumerate() {
            if let Some(key) = row.get(column) {
                index.entry(key).or_default().push((i, row));
            }
        }
        index
    };
    let organizations = by("organizations.csv", "id");
    let locations = by("locations.csv", "id");
    let addresses = by("addresses.csv", "location_id");
    let accessibility = by("accessibility.csv", "location_id");
    let at_locations = by("service_at_location.csv", "service_id");
    let schedules_of_service = by("schedules.csv", "service_id");
    let schedules_of_at = by("schedules.csv", "service_at_location_id");
    let schedules_of_location = by("schedules.csv", "location_id");
    let contacts = by("contacts.csv", "service_id");
    let phones_of_contact = by("phones.csv", "contact_id");
    let phones_of_service = by("phones.csv", "service_id");
    let phones_of_organization = by("phones.csv", "organization_id");
    let languages = by("languages.csv", "service_id");

    let mut used: Used = BTreeMap::new();
    let none = |_: &Row| false;
    let contact_ids: BTreeSet<&str> = table("contacts.csv")
        .iter()
        .filter(|c| c.get("service_id").is_some())
        .filter_map(Row::id)
        .collect();

    let mut budget = Budget {
        left: MAX_JOINED_BYTES,
    };
    let service_rows = table("services.csv");
    if service_rows.len() > MAX_SERVICES {
        skipped.push(Skipped {
            record: format!("services.csv rows {} to {}", MAX_SERVICES + 1, service_rows.len()),
            reason: format!("an import reads at most {MAX_SERVICES} services; these were not read"),
        });
    }
    let mut services = Vec::new();
    for service_row in service_rows.iter().take(MAX_SERVICES) {
        let mut service = service_row.object(&mut budget)?;
        let id = service_row.id().unwrap_or("");
        if let Some(org_id) = service_row.get("organization_id") {
            if let Some(&(i, org)) = organizations.get(org_id).and_then(|o| o.first()) {
                used.entry("organizations.csv").or_default().insert(i);
                let mut organization = org.object(&mut budget)?;
                // A phone of a contact goes with the contact, a phone of the service with it.
                let phones = take(
                    &mut used,
                    &mut budget,
                    "phones.csv",
                    phones_of_organization.get(org_id),
                    &|p| {
                        p.get("contact_id").is_some_and(|c| contact_ids.contains(c))
                            || p.get("service_id").is_some()
                    },
                )?;
                if !phones.is_empty() {
                    organization.insert("phones".into(), phones.into());
                }
                service.insert("organization".into(), organization.into());
            }
        }
        let mut ats = Vec::new();
        for (i, at) in at_locations.get(id).into_iter().flatten() {
            used.entry("service_at_location.csv").or_default().insert(*i);
            let mut at_object = at.object(&mut budget)?;
            let at_schedules = take(
                &mut used,
                &mut budget,
                "schedules.csv",
                at.id().and_then(|a| schedules_of_at.get(a)),
                &|s| s.get("service_id").is_some(),
            )?;
            if !at_schedules.is_empty() {
                at_object.insert("schedules".into(), at_schedules.into());
            }
            if let Some(location_id) = at.get("location_id") {
                if let Some(&(j, location)) = locations.get(location_id).and_then(|l| l.first()) {
                    used.entry("locations.csv").or_default().insert(j);
                    let mut location_object = location.object(&mut budget)?;
                    let list = take(
                        &mut used,
                        &mut budget,
                        "addresses.csv",
                        addresses.get(location_id),
                        &none,
                    )?;
                    if !list.is_empty() {
                        location_object.insert("addresses".into(), list.into());
                    }
                    let list = take(
                        &mut used,
                        &mut budget,
                        "accessibility.csv",
                        accessibility.get(location_id),
                        &none,
                    )?;
                    if !list.is_empty() {
                        location_object.insert("accessibility".into(), list.into());
                    }
                    let list = take(
                        &mut used,
                        &mut budget,
                        "schedules.csv",
                        schedules_of_location.get(location_id),
                        &|s| s.get("service_id").is_some() || s.get("service_at_location_id").is_some(),
                    )?;
                    if !list.is_empty() {
                        location_object.insert("schedules".into(), list.into());
                    }
                    at_object.insert("location".into(), location_object.into());
                }
            }
            ats.push(Value::Object(at_object));
        }
        if !ats.is_empty() {
            service.insert("service_at_locations".into(), ats.into());
        }
        let list = take(
            &mut used,
            &mut budget,
            "schedules.csv",
            schedules_of_service.get(id),
            &none,
        )?;
        if !list.is_empty() {
            service.insert("schedules".into(), list.into());
        }
        let mut contact_list = Vec::new();
        for (i, contact) in contacts.get(id).into_iter().flatten() {
            used.entry("contacts.csv").or_default().insert(*i);
            let mut contact_object = contact.object(&mut budget)?;
            let phones = take(
                &mut used,
                &mut budget,
                "phones.csv",
                contact.id().and_then(|c| phones_of_contact.get(c)),
                &none,
            )?;
            if !phones.is_empty() {
                contact_object.insert("phones".into(), phones.into());
            }
            contact_list.push(Value::Object(contact_object));
        }
        if !contact_list.is_empty() {
            service.insert("contacts".into(), contact_list.into());
        }
        let phones = take(
            &mut used,
            &mut budget,
            "phones.csv",
            phones_of_service.get(id),
            &|p| p.get("contact_id").is_some_and(|c| contact_ids.contains(c)),
        )?;
        if !phones.is_empty() {
            service.insert("phones".into(), phones.into());
        }
        let list = take(&mut used, &mut budget, "languages.csv", languages.get(id), &none)?;
        if !list.is_empty() {
            service.insert("languages".into(), list.into());
        }
        services.push(Value::Object(service));
    }

    for (name, _) in CSV_TABLES {
        if name == "services.csv" {
            continue;
        }
        let reason = match name {
            "organizations.csv" => "no service names this organization (an organization alone is no offer)",
            "locations.csv" => "no service_at_location links this location to a service",
            "addresses.csv" => "its location belongs to no service",
            "accessibility.csv" => "its location belongs to no service",
            "service_at_location.csv" => "its service is not in services.csv",
            "schedules.csv" => "it belongs to no service, service_at_location or location of a service",
            "phones.csv" => "it belongs to no service, contact of a service or organization of a service",
            "contacts.csv" => {
                "it belongs to no service (contacts of organizations or locations alone do not map)"
            }
            _ => "it belongs to no service",
        };
        for (i, row) in table(name).iter().enumerate() {
            if !used.get(name).is_some_and(|u| u.contains(&i)) {
                skipped.push(Skipped {
                    record: format!("{name} line {} ({})", row.line, row.id().unwrap_or("no id")),
                    reason: format!("not taken: {reason}"),
                });
            }
        }
    }
    Ok((services, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsds_csv_cells_defuse_and_restore() {
        for (cell, written) in [
            ("=1+1", "'=1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\r=x", "'\r=x"),
            ("+SUM(A1)", "'+SUM(A1)"),
            ("-x", "'-x"),
            ("-", "'-"),
            ("+49 221 555 0101", "+49 221 555 0101"),
            ("-3.5", "-3.5"),
            ("(030) 12/34-5", "(030) 12/34-5"),
            ("'=x", "''=x"),
            ("''+49 1", "'''+49 1"),
            ("'plain", "'plain"),
            ("'", "'"),
            ("plain = text", "plain = text"),
            ("", ""),
        ] {
            assert_eq!(defuse(cell.to_owned()), written, "{cell:?}");
            assert_eq!(restore(written), cell, "{written:?}");
        }
    }
}
