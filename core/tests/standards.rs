//! Imports and exports of the standards through the store (`docs/standards.md`): an import
//! lands in one transaction under source keys, so re-importing updates instead of
//! duplicating; what the store refuses is skipped with the reason; a bad file changes
//! nothing; exports hold what everyone in the space may read. `cargo test geojson` etc.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_core::query::FeedQuery;
use quartier_core::Error;

fn feature_collection(features: &[String]) -> Vec<u8> {
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
    .into_bytes()
}

fn point(id: &str, name: &str, lon: f64, lat: f64) -> String {
    format!(
        r#"{{"type":"Feature","id":"{id}","geometry":{{"type":"Point","coordinates":[{lon},{lat}]}},"properties":{{"name":"{name}"}}}}"#
    )
}

fn titles(fx: &Fixture) -> Vec<String> {
    let mut q = FeedQuery::new(fx.space, fx.author_viewer());
    q.limit = 500.into();
    let mut out: Vec<String> = fx
        .store
        .feed(&q)
        .expect("feed")
        .items
        .iter()
        .map(|i| i.content.title.get("de").unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn geojson_import_twice_updates_instead_of_duplicating() {
    let fx = Fixture::new();
    let file = feature_collection(&[
        point("bank-1", "Bank am Spielplatz", 6.9503, 50.9612),
        point("brunnen-2", "Trinkbrunnen", 6.9511, 50.9620),
    ]);
    let first = fx
        .store
        .import_geojson(fx.space, fx.author, &file, "de")
        .expect("import");
    assert_eq!(first.created.len(), 2, "{first:?}");
    assert!(first.skipped.is_empty(), "{first:?}");
    assert_eq!(titles(&fx), ["Bank am Spielplatz", "Trinkbrunnen"]);

    // The same file again changes nothing.
    let again = fx
        .store
        .import_geojson(fx.space, fx.author, &file, "de")
        .expect("again");
    assert!(again.created.is_empty() && again.updated.is_empty(), "{again:?}");
    assert_eq!(again.unchanged.len(), 2);

    // An updated file: one renamed and moved, one new; the renamed one keeps its id.
    let updated = feature_collection(&[
        point("bank-1", "Bank am Spielplatz (neu gestrichen)", 6.9504, 50.9613),
        point("brunnen-2", "Trinkbrunnen", 6.9511, 50.9620),
        point("tisch-3", "Tischtennisplatte", 6.9520, 50.9630),
    ]);
    let third = fx
        .store
        .import_geojson(fx.space, fx.author, &updated, "de")
        .expect("update");
    assert_eq!(third.updated, vec![first.created[0]], "{third:?}");
    assert_eq!(third.created.len(), 1);
    assert_eq!(third.unchanged, vec![first.created[1]]);
    assert_eq!(
        titles(&fx),
        [
            "Bank am Spielplatz (neu gestrichen)",
            "Tischtennisplatte",
            "Trinkbrunnen"
        ]
    );
    let bank = fx
        .store
        .item_detail(first.created[0], &fx.author_viewer())
        .expect("get")
        .item;
    let location = bank.content.location.expect("position");
    assert_eq!((location.lat, location.lon), (50.9613, 6.9504));
}

#[test]
fn geojson_import_keeps_what_the_device_set_and_leaves_deleted_items_deleted() {
    let fx = Fixture::new();
    let file = feature_collection(&[
        point("bank-1", "Bank", 6.95, 50.96),
        point("baum-2", "Baum", 6.96, 50.97),
    ]);
    let first = fx
        .store
        .import_geojson(fx.space, fx.author, &file, "de")
        .expect("import");
    let (bank, tree) = (first.created[0], first.created[1]);
    // The audience is the device's: a re-import does not make it public again.
    let patch = ItemPatch {
        audience: Some(Audience::Volunteers),
        ..Default::default()
    };
    fx.store.update_item(bank, &patch, fx.author).expect("narrow");
    fx.store.delete_item(tree, fx.author).expect("delete");
    let renamed = feature_collection(&[
        point("bank-1", "Bank (Holz)", 6.95, 50.96),
        point("baum-2", "Baum", 6.96, 50.97),
    ]);
    let again = fx
        .store
        .import_geojson(fx.space, fx.author, &renamed, "de")
        .expect("again");
    assert_eq!(again.updated, vec![bank]);
    let item = fx.store.item_detail(bank, &fx.author_viewer()).expect("get").item;
    assert_eq!(item.content.audience, Audience::Volunteers);
    assert_eq!(item.content.title.get("de"), Some("Bank (Holz)"));
    assert_eq!(again.skipped.len(), 1, "{again:?}");
    assert_eq!(again.skipped[0].record, "geojson:baum-2");
    assert!(again.skipped[0].reason.contains("deleted"), "{again:?}");
}

#[test]
fn geojson_bad_file_changes_nothing_and_bad_records_are_skipped_with_reasons() {
    let fx = Fixture::new();
    fx.post("schon da", "");
    for bad in [
        b"\xff\xfe not utf-8".to_vec(),
        b"{\"type\":\"FeatureCollection\",\"features\":[".to_vec(),
        "[".repeat(100_000).into_bytes(),
        vec![b' '; quartier_core::standards::MAX_IMPORT_BYTES + 1],
    ] {
        match fx.store.import_geojson(fx.space, fx.author, &bad, "de") {
            Err(Error::MalformedInput { what, reason }) => {
                assert_eq!(what, "import file");
                assert!(!reason.is_empty());
            }
            other => panic!("expected a malformed file, got {other:?}"),
        }
    }
    assert_eq!(titles(&fx), ["schon da"]);
    // One good feature among bad ones: the good one is taken, each bad one named.
    let file = feature_collection(&[
        point("gut", "Gut", 6.95, 50.96),
        point("weit-weg", "Weit weg", 200.0, 50.0),
        r#"{"type":"Feature","id":"linie","geometry":{"type":"LineString","coordinates":[[6.9,50.9],[6.91,50.91]]},"properties":{"name":"Weg"}}"#.into(),
        r#"{"type":"Feature","id":"ohne-name","geometry":{"type":"Point","coordinates":[6.9,50.9]},"properties":{}}"#.into(),
    ]);
    let outcome = fx
        .store
        .import_geojson(fx.space, fx.author, &file, "de")
        .expect("import");
    assert_eq!(outcome.created.len(), 1);
    let mut skipped: Vec<&str> = outcome.skipped.iter().map(|s| s.record.as_str()).collect();
    skipped.sort();
    assert_eq!(skipped.len(), 3, "{:?}", outcome.skipped);
    assert!(outcome.skipped.iter().all(|s| !s.reason.is_empty()));
    assert_eq!(titles(&fx), ["Gut", "schon da"]);
}

#[test]
fn geojson_import_a_record_the_store_refuses_is_skipped_and_the_rest_taken() {
    // The reader takes a long description; the store's per-document budget refuses it. That
    // record is named with the store's reason and rolled back alone; the others are taken.
    let fx = Fixture::with_options(quartier_core::StoreOptions {
        document_budget: 4096,
        ..Default::default()
    });
    let long = "Sehr lange Beschreibung. ".repeat(400);
    let file = feature_collection(&[
        point("a", "A", 6.95, 50.96),
        format!(
            r#"{{"type":"Feature","id":"lang","geometry":{{"type":"Point","coordinates":[6.9,50.9]}},"properties":{{"name":"Lang","description":"{long}"}}}}"#
        ),
        point("b", "B", 6.96, 50.97),
    ]);
    let outcome = fx
        .store
        .import_geojson(fx.space, fx.author, &file, "de")
        .expect("import");
    assert_eq!(outcome.created.len(), 2, "{outcome:?}");
    assert_eq!(outcome.skipped.len(), 1);
    assert_eq!(outcome.skipped[0].record, "geojson:lang");
    assert!(
        outcome.skipped[0].reason.contains("document too large"),
        "{outcome:?}"
    );
    assert_eq!(titles(&fx), ["A", "B"]);
}

#[test]
fn geojson_export_holds_what_everyone_may_read_and_erasure_forgets_the_source_key() {
    let fx = Fixture::new();
    let public = fx.create(place("Bücherschrank", 50.9612, 6.9503));
    let mut private = place("Schlüssel bei Frau K.", 50.9613, 6.9504);
    private.audience = Audience::Volunteers;
    fx.create(private);
    fx.post("Ein Beitrag", "ohne Ort");
    let exported = fx.store.export_geojson(fx.space).expect("export");
    let json: serde_json::Value = serde_json::from_slice(&exported.bytes).expect("json");
    let features = json["features"].as_array().expect("features");
    assert_eq!(features.len(), 1, "{json}");
    assert_eq!(features[0]["id"], public.id.to_string());

    // Erased (a data-protection request): the same record is not imported again.
    let file = feature_collection(&[point("bank", "Bank", 6.95, 50.96)]);
    let first = fx
        .store
        .import_geojson(fx.space, fx.author, &file, "de")
        .expect("import");
    fx.store.erase_item(first.created[0]).expect("erase");
    let again = fx
        .store
        .import_geojson(fx.space, fx.author, &file, "de")
        .expect("again");
    assert!(again.created.is_empty(), "{again:?}");
    assert!(again.skipped[0].reason.contains("erased"), "{again:?}");
}

fn ics(events: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Kalender//DE\r\n");
    for (uid, summary) in events {
        out.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T090000Z\r\nDTSTART;TZID=Europe/Berlin:20261210T180000\r\nDTEND;TZID=Europe/Berlin:20261210T200000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n"
        ));
    }
    out.push_str("BEGIN:VTODO\r\nUID:todo-1\r\nSUMMARY:Aufräumen\r\nEND:VTODO\r\nEND:VCALENDAR\r\n");
    out.into_bytes()
}

#[test]
fn ical_import_through_the_store_updates_on_reimport_and_names_what_it_skips() {
    let fx = Fixture::new();
    let file = ics(&[("a@kalender", "Chorprobe"), ("b@kalender", "Sprachcafé")]);
    let first = fx
        .store
        .import_icalendar(fx.space, fx.author, &file, "de")
        .expect("import");
    assert_eq!(first.created.len(), 2, "{first:?}");
    assert!(
        first
            .skipped
            .iter()
            .any(|s| s.record.contains("todo-1") || s.reason.contains("VTODO")),
        "{first:?}"
    );
    let changed = ics(&[
        ("a@kalender", "Chorprobe (neuer Raum)"),
        ("b@kalender", "Sprachcafé"),
    ]);
    let again = fx
        .store
        .import_icalendar(fx.space, fx.author, &changed, "de")
        .expect("again");
    assert_eq!(
        (again.created.len(), again.updated.len(), again.unchanged.len()),
        (0, 1, 1),
        "{again:?}"
    );
    assert_eq!(titles(&fx), ["Chorprobe (neuer Raum)", "Sprachcafé"]);
    let item = fx
        .store
        .item_detail(again.updated[0], &fx.author_viewer())
        .expect("get")
        .item;
    match item.content.details {
        ItemDetails::Event(event) => {
            assert_eq!(event.timing.rrule.as_deref(), Some("FREQ=WEEKLY;COUNT=3"));
            assert_eq!(event.timing.time_zone, "Europe/Berlin");
            assert_eq!(event.timing.start, local(2026, 12, 10, 18, 0));
        }
        other => panic!("an event, got {other:?}"),
    }
}

#[test]
fn ical_export_through_the_store_holds_public_events_and_opening_hours_only() {
    let fx = Fixture::new();
    fx.create(event(
        "Nachbarschaftscafé",
        local(2026, 12, 10, 15, 0),
        local(2026, 12, 10, 17, 0),
        Some("FREQ=WEEKLY;BYDAY=TH"),
        vec![],
    ));
    let mut narrow = event(
        "Helferrunde",
        local(2026, 12, 11, 18, 0),
        local(2026, 12, 11, 19, 0),
        None,
        vec![],
    );
    narrow.audience = Audience::Volunteers;
    fx.create(narrow);
    fx.create(offer(
        "Kleiderkammer",
        vec![opening("FREQ=WEEKLY;BYDAY=MO,WE", hm(10, 0), hm(12, 0), None)],
    ));
    let exported = fx
        .store
        .export_icalendar(fx.space, Some("https://quartier.example/i/".into()))
        .expect("export");
    let text = String::from_utf8(exported.bytes).expect("utf-8");
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n"), "{text}");
    assert!(text.contains("SUMMARY;LANGUAGE=de:Nachbarschaftscafé"), "{text}");
    assert!(text.contains("Kleiderkammer"), "{text}");
    assert!(text.contains("BYDAY=MO,WE"), "{text}");
    assert!(!text.contains("Helferrunde"), "{text}");
    assert!(text.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin"), "{text}");
}

#[test]
fn hsds_round_trip_through_two_stores_json_and_tables() {
    let fx = Fixture::new();
    let mut content = offer(
        "Sozialberatung",
        vec![opening(
            "FREQ=WEEKLY;BYDAY=TU,TH",
            hm(9, 0),
            hm(12, 30),
            Some(date(2026, 1, 1)),
        )],
    );
    if let ItemDetails::Offer(o) = &mut content.details {
        o.languages = vec!["de".into(), "tr".into()];
        o.contacts = vec![Contact {
            name: Some("Frau Yilmaz".into()),
            phone: Some("+49 221 555 0101".into()),
            ..Default::default()
        }];
    }
    let original = fx.create(content);
    let json = fx.store.export_hsds(fx.space, "de").expect("json");
    let tables = fx.store.export_hsds_tables(fx.space, "de").expect("tables");
    assert!(tables.files.contains_key("services.csv") && tables.files.contains_key("schedules.csv"));

    for via_tables in [false, true] {
        let other = Fixture::new();
        let outcome = if via_tables {
            other
                .store
                .import_hsds_tables(other.space, other.author, tables.files.clone(), "de")
        } else {
            other
                .store
                .import_hsds(other.space, other.author, &json.bytes, "de")
        }
        .expect("import");
        assert_eq!(outcome.created.len(), 1, "{outcome:?}");
        let copy = other
            .store
            .item_detail(outcome.created[0], &other.author_viewer())
            .expect("get")
            .item;
        assert_eq!(copy.content.title, original.content.title);
        let (ItemDetails::Offer(a), ItemDetails::Offer(b)) =
            (&original.content.details, &copy.content.details)
        else {
            panic!("offers")
        };
        assert_eq!(a.schedules, b.schedules, "tables: {via_tables}");
        assert_eq!(a.languages, b.languages);
        assert_eq!(a.contacts[0].phone, b.contacts[0].phone);
        // Importing the same file again: nothing new.
        let again = if via_tables {
            other
                .store
                .import_hsds_tables(other.space, other.author, tables.files.clone(), "de")
        } else {
            other
                .store
                .import_hsds(other.space, other.author, &json.bytes, "de")
        }
        .expect("again");
        assert_eq!(again.unchanged, outcome.created, "{again:?}");
    }
}

#[test]
fn hsds_the_specification_sample_imports_through_the_store() {
    let fx = Fixture::new();
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../standards/tests/data/hsds/examples/service_full.json"
    ))
    .expect("sample");
    let outcome = fx
        .store
        .import_hsds(fx.space, fx.author, &sample, "en")
        .expect("import");
    assert_eq!(outcome.created.len(), 1, "{outcome:?}");
    // The sample's own errors (a schedule with COUNT and UNTIL, a location at latitude 100)
    // are named, not silently dropped.
    assert!(!outcome.skipped.is_empty(), "{outcome:?}");
    assert!(outcome.skipped.iter().all(|s| !s.reason.is_empty()));
    let too_many: std::collections::HashMap<String, Vec<u8>> = [(
        "services.csv".to_owned(),
        vec![b'a'; quartier_core::standards::MAX_IMPORT_BYTES + 1],
    )]
    .into();
    assert!(matches!(
        fx.store.import_hsds_tables(fx.space, fx.author, too_many, "en"),
        Err(Error::MalformedInput { .. })
    ));
    assert!(matches!(
        fx.store
            .import_hsds(fx.space, fx.author, b"{}", "not a language tag!"),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn vcard_an_offers_contacts_round_trip_through_cards() {
    let fx = Fixture::new();
    let mut content = offer("Mieterberatung", vec![]);
    if let ItemDetails::Offer(o) = &mut content.details {
        o.contacts = vec![
            Contact {
                name: Some("Herr Petrenko".into()),
                phone: Some("+49 221 555 0202".into()),
                email: Some("beratung@example.org".into()),
                ..Default::default()
            },
            Contact {
                name: Some("Frau Haddad".into()),
                phone: Some("+49 221 555 0303".into()),
                ..Default::default()
            },
        ];
    }
    let item = fx.create(content);
    let cards = fx.store.offer_vcards(item.id, fx.author_viewer()).expect("cards");
    assert!(cards.contains("BEGIN:VCARD\r\nVERSION:4.0"), "{cards}");
    let read = quartier_core::standards::read_vcards(cards.as_bytes()).expect("read");
    let names: Vec<_> = read.contacts.iter().filter_map(|c| c.name.clone()).collect();
    assert_eq!(names, ["Herr Petrenko", "Frau Haddad"]);
    assert_eq!(read.contacts[0].email.as_deref(), Some("beratung@example.org"));
    assert_eq!(read.organizations[0].name, "Caritas Köln");
    let post = fx.post("Kein Angebot", "");
    assert!(matches!(
        fx.store.offer_vcards(post.id, fx.author_viewer()),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn guide_from_the_store_prints_what_everyone_may_read() {
    use quartier_core::guide::{GuidePaper, GuidePhoneNumber, GuideSpec};
    let fx = Fixture::new();
    fx.create(offer(
        "Kleiderkammer",
        vec![opening("FREQ=WEEKLY;BYDAY=MO", hm(10, 0), hm(12, 0), None)],
    ));
    let mut narrow = offer("Schlüsseldienst für Helfende", vec![]);
    narrow.audience = Audience::Volunteers;
    fx.create(narrow);
    let spec = GuideSpec {
        language: "de".into(),
        first_day: date(2026, 12, 7),
        last_day: date(2026, 12, 20),
        link_template: "https://quartier.example/i/{item}".into(),
        paper: GuidePaper::A4Booklet,
        large_print: false,
        easy_language: false,
        phone_numbers: vec![GuidePhoneNumber {
            label: LocalizedText::single("de", "Notruf"),
            number: "112".into(),
        }],
    };
    let guide = fx.store.make_guide(fx.space, &spec).expect("guide");
    assert!(guide.pdf.starts_with(b"%PDF"));
    assert_eq!((guide.offers_printed, guide.events_printed), (1, 0));
    assert!(guide.html.contains("Kleiderkammer") && !guide.html.contains("Schlüsseldienst"));
    let bad = GuideSpec {
        link_template: "quartier.example/{item}".into(),
        ..spec
    };
    assert!(matches!(
        fx.store.make_guide(fx.space, &bad),
        Err(Error::Invalid { field: "guide", .. })
    ));
}

#[test]
fn hsds_reimport_keeps_an_end_date_set_here_and_exports_leave_out_hidden_own_items() {
    let fx = Fixture::new();
    fx.create(offer("Kleiderkammer", vec![]));
    let file = fx.store.export_hsds(fx.space, "de").expect("export").bytes;
    let other = Fixture::new();
    let first = other
        .store
        .import_hsds(other.space, other.author, &file, "de")
        .expect("import");
    let id = first.created[0];
    // The coordinator retires the imported offer with an end date; HSDS carries none, so a
    // re-import of the partner's file leaves it retired.
    let until = chrono::Utc::now() + chrono::Duration::days(1);
    let patch = ItemPatch {
        valid_until: Some(until),
        ..Default::default()
    };
    other.store.update_item(id, &patch, other.author).expect("retire");
    let again = other
        .store
        .import_hsds(other.space, other.author, &file, "de")
        .expect("again");
    assert_eq!(again.unchanged, vec![id], "{again:?}");
    let item = other
        .store
        .item_detail(id, &other.author_viewer())
        .expect("get")
        .item;
    assert!(item.content.valid_until.is_some(), "{item:?}");

    // An offer of the exporter's own that the coordinators hid is not exported nor printed.
    other
        .store
        .moderate_item(id, quartier_core::moderation::ModerationAction::Hide, "veraltet")
        .expect("hide");
    let exported = other.store.export_hsds(other.space, "de").expect("export");
    let json: serde_json::Value = serde_json::from_slice(&exported.bytes).expect("json");
    assert_eq!(json["contents"].as_array().map(Vec::len), Some(0), "{json}");
}
