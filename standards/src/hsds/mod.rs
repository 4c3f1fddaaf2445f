//! Open Referral HSDS 3.0: offers out as HSDS services and in from them.
//!
//! Two forms, one mapping: the JSON form is a list of the 3.0 "compiled" service objects (each
//! with its nested organization, service_at_locations → location → addresses and accessibility,
//! schedules, contacts → phones, languages), and the CSV form is the tabular datapackage (one
//! CSV per table plus `datapackage.json`), handed over as a map file name → bytes. CSV is read
//! by assembling the same service objects from the tables (`tables`), and written by
//! flattening them, so the mapping of fields lives once, here; schedules ↔ opening rules live in
//! `schedule`. Zip archives are not read: a datapackage is passed as its files.
//!
//! Ids: a service's id is the offer's item id; the rows an offer gives rise to (organization,
//! location, address, schedules, contacts, phones, languages, accessibility) get UUIDv5 ids
//! derived from the item id and the row's role, so exporting again gives the same ids. Imports
//! key each offer `hsds:service:<service id>`, so re-importing an updated file updates.
//! The field-by-field mapping, and what does not map, is in `docs/standards.md`.

mod schedule;
mod tables;

use std::collections::BTreeMap;

use chrono::{NaiveDate, SecondsFormat};
use quartier_domain::model::{
    validate_language_tag, Address, Contact, Item, ItemContent, ItemDetails, LocalizedText, Location,
    NewItem, Offer, Organization, PersonId, ServiceLocation, SpaceId, Status,
};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::ical::content_line::http_url;
use crate::ical::not_a_url;
use crate::import::{Import, ImportError, ImportedItem, Skipped};

pub use tables::{HsdsCsvError, CSV_TABLES, MAX_CELL_BYTES, MAX_JOINED_BYTES};

/// Most services one import reads (the file size bounds the rest).
pub const MAX_SERVICES: usize = 50_000;

const FORMAT: &str = "HSDS JSON";

/// Who imports, and into what: the space and author of the new offers, and the language
/// (BCP-47) of HSDS texts, which carry none.
#[derive(Clone, Debug)]
pub struct HsdsImportOptions {
    pub space: SpaceId,
    pub author: PersonId,
    pub language: String,
}

/// An HSDS JSON export: a one-page `service_list` (`contents`: the compiled service objects),
/// and what could not be written, per item or per part of one.
#[derive(Clone, Debug, PartialEq)]
pub struct HsdsJsonExport {
    pub bytes: Vec<u8>,
    pub skipped: Vec<Skipped>,
}

/// An HSDS CSV export: file name → CSV bytes (the [`CSV_TABLES`] and `datapackage.json`), and
/// what could not be written.
#[derive(Clone, Debug, PartialEq)]
pub struct HsdsCsvExport {
    pub files: BTreeMap<String, Vec<u8>>,
    pub skipped: Vec<Skipped>,
}

/// Writes offers as HSDS 3.0 compiled service objects in a one-page `service_list`. HSDS texts
/// have no language: names and descriptions are taken in `language` (or the nearest variant).
/// Items of other kinds, drafts, hidden and deleted items are not written (reported).
pub fn export_hsds_json(items: &[Item], language: &str) -> HsdsJsonExport {
    let (services, skipped) = services_of(items, language);
    let count = services.len();
    let page = json!({
        "total_items": count,
        "total_pages": 1,
        "page_number": 1,
        "size": count,
        "first_page": true,
        "last_page": true,
        "empty": count == 0,
        "contents": services,
    });
    HsdsJsonExport {
        bytes: format!("{page:#}").into_bytes(),
        skipped,
    }
}

/// Writes offers as the HSDS 3.0 tabular datapackage: one CSV per table and `datapackage.json`.
pub fn export_hsds_csv(items: &[Item], language: &str) -> Result<HsdsCsvExport, HsdsCsvError> {
    let (services, skipped) = services_of(items, language);
    Ok(HsdsCsvExport {
        files: tables::write(&services)?,
        skipped,
    })
}

/// Reads HSDS JSON: a `service_list` page (`contents`), a JSON array of service objects, or one
/// service object. Each active service becomes an offer keyed `hsds:service:<id>`.
pub fn import_hsds_json(bytes: &[u8], options: &HsdsImportOptions) -> Result<Import, ImportError> {
    let text = ImportError::check_text(bytes)?;
    let value: Value = serde_json::from_str(text).map_err(|e| ImportError::Malformed {
        format: FORMAT,
        reason: e.to_string(),
    })?;
    let services = match value {
        Value::Array(list) => list,
        Value::Object(mut page) if page.get("contents").is_some_and(Value::is_array) => {
            match page.remove("contents") {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            }
        }
        Value::Object(service) if service.contains_key("id") || service.contains_key("name") => {
            vec![Value::Object(service)]
        }
        _ => {
            return Err(ImportError::Malformed {
                format: FORMAT,
                reason: "expected a service object, a list of them, or a page with `contents`".into(),
            })
        }
    };
    Ok(import_services(services, options))
}

/// Reads the HSDS tabular form: file name (`services.csv`, …) → bytes, the names as in the
/// datapackage. Rows that belong to no imported service are reported.
pub fn import_hsds_csv(
    files: &BTreeMap<String, Vec<u8>>,
    options: &HsdsImportOptions,
) -> Result<Import, ImportError> {
    let (services, mut skipped) = tables::read(files)?;
    let mut import = import_services(services, options);
    skipped.append(&mut import.skipped);
    import.skipped = skipped;
    Ok(import)
}

/// The id of a row derived from an item: stable across exports.
fn derived(item: &Item, role: &str) -> String {
    Uuid::new_v5(&item.id.as_uuid(), role.as_bytes()).to_string()
}

fn services_of(items: &[Item], language: &str) -> (Vec<Value>, Vec<Skipped>) {
    let mut services = Vec::new();
    let mut skipped = Vec::new();
    for item in items {
        let ItemDetails::Offer(offer) = &item.content.details else {
            skipped.push(Skipped {
                record: item.id.to_string(),
                reason: format!("a {} is not an HSDS service (only offers are)", item.kind()),
            });
            continue;
        };
        let status = match item.content.status {
            Status::Published => "active",
            Status::Expired => "inactive",
            other => {
                skipped.push(Skipped {
                    record: item.id.to_string(),
                    reason: format!("a {other} offer is not exported"),
                });
                continue;
            }
        };
        let mut lost = Vec::new();
        services.push(service_of(item, offer, status, language, &mut lost));
        skipped.extend(lost.into_iter().map(|reason| Skipped {
            record: item.id.to_string(),
            reason,
        }));
    }
    (services, skipped)
}

fn put(object: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        object.insert(key.into(), value.into());
    }
}

fn service_of(item: &Item, offer: &Offer, status: &str, language: &str, lost: &mut Vec<String>) -> Value {
    let content = &item.content;
    let id = item.id.to_string();
    let mut service = Map::new();
    service.insert("id".into(), id.clone().into());
    service.insert(
        "name".into(),
        content.title.best(&[language]).unwrap_or("").into(),
    );
    service.insert(
        "description".into(),
        content.body.best(&[language]).unwrap_or("").into(),
    );
    for (texts, what) in [(&content.title, "title"), (&content.body, "description")] {
        if texts.iter().count() > 1 {
            lost.push(format!(
                "HSDS texts have one language: only the {what} nearest `{language}` is written"
            ));
        }
    }
    put(&mut service, "url", offer.service_url.as_deref());
    service.insert("status".into(), status.into());
    put(&mut service, "fees_description", offer.fees.as_deref());
    put(
        &mut service,
        "eligibility_description",
        offer.eligibility.as_deref(),
    );
    if let Some(date) = offer.assured_date {
        service.insert("assured_date".into(), date.to_string().into());
    }
    service.insert(
        "last_modified".into(),
        item.updated_at
            .to_rfc3339_opts(SecondsFormat::Millis, true)
            .into(),
    );

    let org = &offer.organization;
    let org_id = derived(item, "organization");
    let mut organization = Map::new();
    organization.insert("id".into(), org_id.clone().into());
    organization.insert("name".into(), org.name.as_str().into());
    // Required (and non-empty in the tabular form) by HSDS; Quartier keeps no description of
    // the organization, so its name stands in.
    organization.insert("description".into(), org.name.as_str().into());
    put(&mut organization, "website", org.url.as_deref());
    put(&mut organization, "email", org.email.as_deref());
    if let Some(number) = org.phone.as_deref().filter(|n| !n.is_empty()) {
        organization.insert(
            "phones".into(),
            json!([{"id": derived(item, "organization/phone"), "organization_id": org_id, "number": number}]),
        );
    }
    service.insert("organization_id".into(), org_id.into());
    service.insert("organization".into(), organization.into());

    let needs_location =
        offer.location.is_some() || content.location.is_some() || !offer.accessibility.is_empty();
    if needs_location {
        let location_id = derived(item, "location");
        let mut location = Map::new();
        location.insert("id".into(), location_id.clone().into());
        location.insert("location_type".into(), "physical".into());
        if let Some(place) = &offer.location {
            put(&mut location, "name", Some(&place.name));
            if let Some(address) = &place.address {
                location.insert(
                    "addresses".into(),
                    json!([{
                        "id": derived(item, "location/address"),
                        "location_id": location_id,
                        "address_1": address.street,
                        "city": address.city,
                        // Required by HSDS; Quartier's addresses have no state or province.
                        "state_province": "",
                        "postal_code": address.postal_code,
                        "country": address.country,
                        "address_type": "physical",
                    }]),
                );
            }
        }
        if let Some(position) = content.location {
            location.insert("latitude".into(), position.lat.into());
            location.insert("longitude".into(), position.lon.into());
        }
        if !offer.accessibility.is_empty() {
            let facts: Vec<Value> = offer
                .accessibility
                .iter()
                .enumerate()
                .map(|(i, fact)| {
                    json!({"id": derived(item, &format!("accessibility/{i}")), "location_id": location_id, "description": fact})
                })
                .collect();
            location.insert("accessibility".into(), facts.into());
        }
        service.insert(
            "service_at_locations".into(),
            json!([{
                "id": derived(item, "service_at_location"),
                "service_id": id,
                "location_id": location_id,
                "location": location,
            }]),
        );
    }

    let mut schedules = Vec::new();
    for (i, rule) in offer.schedules.iter().enumerate() {
        let (mut schedule, reasons) = schedule::to_hsds(rule);
        schedule.insert("id".into(), derived(item, &format!("schedule/{i}")).into());
        schedule.insert("service_id".into(), id.clone().into());
        lost.extend(reasons.into_iter().map(|r| format!("schedule {}: {r}", i + 1)));
        schedules.push(Value::Object(schedule));
    }
    if !schedules.is_empty() {
        service.insert("schedules".into(), schedules.into());
    }

    let contacts: Vec<Value> = offer
        .contacts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let contact_id = derived(item, &format!("contact/{i}"));
            let mut contact = Map::new();
            contact.insert("id".into(), contact_id.clone().into());
            contact.insert("service_id".into(), id.clone().into());
            put(&mut contact, "name", c.name.as_deref());
            put(&mut contact, "title", c.title.as_deref());
            put(&mut contact, "email", c.email.as_deref());
            if let Some(number) = c.phone.as_deref().filter(|n| !n.is_empty()) {
                contact.insert(
                    "phones".into(),
                    json!([{"id": derived(item, &format!("contact/{i}/phone")), "contact_id": contact_id, "number": number}]),
                );
            }
            Value::Object(contact)
        })
        .collect();
    if !contacts.is_empty() {
        service.insert("contacts".into(), contacts.into());
    }
    let languages: Vec<Value> = offer
        .languages
        .iter()
        .enumerate()
        .map(|(i, code)| json!({"id": derived(item, &format!("language/{i}")), "service_id": id, "code": code}))
        .collect();
    if !languages.is_empty() {
        service.insert("languages".into(), languages.into());
    }
    if offer.category.is_some() {
        lost.push("the category is not written (HSDS classifies through taxonomies)".into());
    }
    if !content.tags.is_empty() {
        lost.push("tags have no HSDS field and are not written".into());
    }
    if content.valid_until.is_some() {
        lost.push("the offer's end of validity has no HSDS field and is not written".into());
    }
    Value::Object(service)
}

/// Reads services into offers, keeping the first of each id.
fn import_services(services: Vec<Value>, options: &HsdsImportOptions) -> Import {
    let mut import = Import::default();
    let mut seen = std::collections::BTreeSet::new();
    let total = services.len();
    for (index, value) in services.into_iter().take(MAX_SERVICES).enumerate() {
        let record = match value.get("id").and_then(Value::as_str) {
            Some(id) => format!("service {id}"),
            None => format!("service {}", index + 1),
        };
        let mut notes = Vec::new();
        match offer_from(&value, options, &mut notes) {
            Ok((id, item)) => {
                let source_key = format!("hsds:service:{id}");
                if !seen.insert(source_key.clone()) {
                    import.skipped.push(Skipped {
                        record,
                        reason: "the id appears twice; the first service with it was taken".into(),
                    });
                    continue;
                }
                import.items.push(ImportedItem { source_key, item });
                import
                    .skipped
                    .extend(notes.into_iter().map(|(part, reason)| Skipped {
                        record: format!("{record} {part}"),
                        reason,
                    }));
            }
            Err(reason) => import.skipped.push(Skipped { record, reason }),
        }
    }
    if total > MAX_SERVICES {
        import.skipped.push(Skipped {
            record: format!("services {} to {total}", MAX_SERVICES + 1),
            reason: format!("an import reads at most {MAX_SERVICES} services; these were not read"),
        });
    }
    import
}

type Notes = Vec<(String, String)>;

/// Text of an optional field: absent, null and "" are none; numbers are taken as text; anything
/// else is a wrong type.
fn text(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{key}` must be text, not {}", type_name(other))),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The objects of a list field; a field of another type is noted and read as empty.
fn list<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    part: &str,
    notes: &mut Notes,
) -> Vec<&'a Map<String, Value>> {
    match object.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Value::Object(o) => Some(o),
                other => {
                    notes.push((
                        format!("{part}{key} {}", i + 1),
                        format!("not taken: {} instead of an object", type_name(other)),
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            notes.push((
                format!("{part}{key}"),
                format!("not taken: {} instead of a list", type_name(other)),
            ));
            Vec::new()
        }
    }
}

fn optional(object: &Map<String, Value>, key: &str, part: &str, notes: &mut Notes) -> Option<String> {
    text(object, key).unwrap_or_else(|reason| {
        notes.push((part.trim_end().to_owned(), format!("not taken: {reason}")));
        None
    })
}

/// A URL field: only an http(s) URL of printable characters without spaces is taken; another
/// value is noted (it could break the lines of an iCalendar or vCard export, or be a
/// `javascript:` link).
fn url_field(object: &Map<String, Value>, key: &str, part: &str, notes: &mut Notes) -> Option<String> {
    let value = optional(object, key, part, notes)?;
    match http_url(&value) {
        Some(url) => Some(url.to_owned()),
        None => {
            let at = format!("{part} {key}");
            notes.push((at.trim().to_owned(), format!("not taken: {}", not_a_url(&value))));
            None
        }
    }
}

fn offer_from(
    value: &Value,
    options: &HsdsImportOptions,
    notes: &mut Notes,
) -> Result<(String, NewItem), String> {
    let Value::Object(service) = value else {
        return Err(format!("{} instead of a service object", type_name(value)));
    };
    let id = text(service, "id")?.ok_or("no `id`: HSDS requires one, and re-imports are matched by it")?;
    let name = text(service, "name")?.ok_or("no `name`: a service needs one")?;
    match text(service, "status")?.as_deref() {
        Some("active") | Some("temporarily closed") | None => {}
        Some(other) => {
            return Err(format!(
                "the service is `{other}`; only active and temporarily closed services are imported"
            ))
        }
    }
    let language = options.language.as_str();
    let organization = match service.get("organization") {
        Some(Value::Object(org)) => org,
        Some(Value::Null) | None => {
            return Err("no organization: a Quartier offer names the organization that runs it".into())
        }
        Some(other) => {
            return Err(format!(
                "`organization` is {} instead of an object",
                type_name(other)
            ))
        }
    };
    let org_name = text(organization, "name")?.ok_or("the organization has no `name`")?;
    let org_phones = list(organization, "phones", "organization ", notes);
    let mut org_phone = None;
    for (i, phone) in org_phones.iter().enumerate() {
        match optional(phone, "number", "organization phones", notes) {
            Some(number) if org_phone.is_none() => org_phone = Some(number),
            Some(_) => notes.push((
                format!("organization phones {}", i + 1),
                "not taken: Quartier keeps one phone number per organization".into(),
            )),
            None => notes.push((
                format!("organization phones {}", i + 1),
                "not taken: no `number`".into(),
            )),
        }
    }
    let mut offer = Offer {
        organization: Organization {
            name: org_name,
            url: url_field(organization, "website", "organization", notes),
            email: optional(organization, "email", "organization", notes),
            phone: org_phone,
        },
        service_url: url_field(service, "url", "", notes),
        fees: optional(service, "fees_description", "", notes)
            .or_else(|| optional(service, "fees", "", notes)),
        eligibility: optional(service, "eligibility_description", "", notes),
        ..Offer::default()
    };
    if let Some(date) = optional(service, "assured_date", "", notes) {
        match NaiveDate::parse_from_str(date.get(..10).unwrap_or(&date), "%Y-%m-%d") {
            Ok(d) => offer.assured_date = Some(d),
            Err(_) => notes.push((
                "assured_date".into(),
                format!("not taken: `{date}` is not a date YYYY-MM-DD"),
            )),
        }
    }

    // Locations: the first service_at_location's location; its position is the item's.
    let mut position = None;
    let at_locations = list(service, "service_at_locations", "", notes);
    let mut location_schedules = Vec::new();
    for (i, at) in at_locations.iter().enumerate() {
        if i > 0 {
            notes.push((
                format!("service_at_locations {}", i + 1),
                "not taken: a Quartier offer has one location".into(),
            ));
            continue;
        }
        let Some(Value::Object(location)) = at.get("location") else {
            notes.push((
                "service_at_locations 1".into(),
                "not taken: no `location` object".into(),
            ));
            continue;
        };
        let mut place = ServiceLocation {
            name: optional(location, "name", "location", notes).unwrap_or_default(),
            address: None,
        };
        for (j, address) in list(location, "addresses", "location ", notes).iter().enumerate() {
            if place.address.is_some() {
                notes.push((
                    format!("location addresses {}", j + 1),
                    "not taken: a Quartier offer has one address".into(),
                ));
                continue;
            }
            let street = [
                optional(address, "address_1", "location address", notes),
                optional(address, "address_2", "location address", notes),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
            place.address = Some(Address {
                street,
                postal_code: optional(address, "postal_code", "location address", notes).unwrap_or_default(),
                city: optional(address, "city", "location address", notes).unwrap_or_default(),
                country: optional(address, "country", "location address", notes).unwrap_or_default(),
            });
        }
        let coordinate = |key: &str| -> Option<f64> {
            match location.get(key) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
        };
        match (coordinate("latitude"), coordinate("longitude")) {
            (Some(lat), Some(lon)) => {
                let here = Location::new(lat, lon);
                match here.validate() {
                    Ok(()) => position = Some(here),
                    Err(e) => notes.push(("location latitude/longitude".into(), format!("not taken: {e}"))),
                }
            }
            (None, None) => {}
            _ => notes.push((
                "location latitude/longitude".into(),
                "not taken: latitude and longitude must both be numbers".into(),
            )),
        }
        for fact in list(location, "accessibility", "location ", notes) {
            let text = optional(fact, "description", "location accessibility", notes)
                .or_else(|| optional(fact, "details", "location accessibility", notes));
            if let Some(text) = text {
                offer.accessibility.push(text);
            }
        }
        offer.location = Some(place);
        location_schedules = list(at, "schedules", "service_at_location ", notes);
        if location_schedules.is_empty() {
            location_schedules = list(location, "schedules", "location ", notes);
        }
    }

    // Schedules: the service's own, else those of its location.
    let mut schedules = list(service, "schedules", "", notes);
    if schedules.is_empty() {
        schedules = location_schedules;
    }
    for (i, schedule) in schedules.iter().enumerate() {
        let part = match schedule.get("id").and_then(Value::as_str) {
            Some(id) => format!("schedule {id}"),
            None => format!("schedule {}", i + 1),
        };
        match schedule::from_hsds(schedule) {
            Ok((rule, dropped)) => {
                offer.schedules.push(rule);
                notes.extend(
                    dropped
                        .into_iter()
                        .map(|d| (part.clone(), format!("partly taken: {d}"))),
                );
            }
            Err(reason) => notes.push((part, format!("not taken: {reason}"))),
        }
    }

    for contact in list(service, "contacts", "", notes) {
        let phones = list(contact, "phones", "contact ", notes);
        let mut numbers = phones
            .iter()
            .filter_map(|p| optional(p, "number", "contact phone", notes));
        let phone = numbers.next();
        if numbers.next().is_some() {
            notes.push((
                "contact phones".into(),
                "partly taken: Quartier keeps one phone per contact".into(),
            ));
        }
        offer.contacts.push(Contact {
            name: optional(contact, "name", "contact", notes),
            title: optional(contact, "title", "contact", notes),
            phone,
            email: optional(contact, "email", "contact", notes),
        });
    }
    // A phone of the service itself becomes a contact with only that number.
    for phone in list(service, "phones", "", notes) {
        match optional(phone, "number", "phone", notes) {
            Some(number) => offer.contacts.push(Contact {
                phone: Some(number),
                ..Contact::default()
            }),
            None => notes.push(("phones".into(), "not taken: a phone without `number`".into())),
        }
    }
    for entry in list(service, "languages", "", notes) {
        let code = optional(entry, "code", "language", notes);
        match code {
            Some(code) if validate_language_tag(&code).is_ok() => {
                if !offer.languages.contains(&code) {
                    offer.languages.push(code);
                }
            }
            Some(code) => notes.push((
                "language".into(),
                format!("not taken: `{code}` is not a BCP-47 tag"),
            )),
            None => notes.push((
                "language".into(),
                "not taken: no `code` (a language is kept by its BCP-47 tag, not its name)".into(),
            )),
        }
    }

    let mut content = ItemContent::new(LocalizedText::single(language, name), ItemDetails::Offer(offer));
    if let Some(description) = optional(service, "description", "", notes) {
        content.body = LocalizedText::single(language, description);
    }
    content.location = position;
    content
        .validate()
        .map_err(|e| format!("the offer would be invalid: {e}"))?;
    Ok((id, NewItem::new(options.space, options.author, content)))
}
