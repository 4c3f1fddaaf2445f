//! iCalendar (RFC 5545): round trips, files as calendar programs export them, bad files.
//! `cargo test ical` runs them (with the independent check in `ical_validators.rs`).

use crate::common::python;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use quartier_domain::model::{
    Address, Contact, Event, Item, ItemContent, ItemDetails, LocalizedText, Location, NewItem, Offer,
    Organization, PersonId, ServiceLocation, Space, SpaceId, SpaceMeta, Status,
};
use quartier_domain::schedule::{opening_intervals, EventTiming, OpeningRule};
use quartier_standards::ical::MAX_ICAL_COMPONENTS;
use quartier_standards::{
    export_ics, import_ics, IcalExportOptions, IcalImportOptions, Import, ImportError, MAX_IMPORT_BYTES,
};

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn space() -> Space {
    Space {
        id: SpaceId::new(),
        meta: SpaceMeta {
            name: LocalizedText::from([("de", "Wrangelkiez, Berlin"), ("tr", "Wrangelkiez mahallesi")]),
            description: LocalizedText::new(),
            time_zone: "Europe/Berlin".into(),
            default_language: "de".into(),
            categories: BTreeMap::new(),
            layers: BTreeMap::new(),
        },
    }
}

fn item(space: &Space, content: ItemContent) -> Item {
    content.validate().expect("test items are valid");
    let mut item = NewItem::new(space.id, PersonId::new(), content).into_item(utc(2026, 1, 10, 9, 0));
    item.updated_at = utc(2026, 2, 1, 12, 30);
    item
}

fn event(space: &Space, title: LocalizedText, timing: EventTiming, venue: Option<&str>) -> Item {
    item(
        space,
        ItemContent::new(
            title,
            ItemDetails::Event(Event {
                timing,
                venue: venue.map(str::to_owned),
            }),
        ),
    )
}

fn timing(start: NaiveDateTime, end: NaiveDateTime, zone: &str, rrule: Option<&str>) -> EventTiming {
    EventTiming {
        start,
        end,
        time_zone: zone.into(),
        rrule: rrule.map(str::to_owned),
        exdates: Vec::new(),
    }
}

/// Weekly repair café with translations, tags, a position, cancelled dates and text that needs
/// escaping and folding.
fn repair_cafe(space: &Space) -> Item {
    let mut t = timing(
        local(2026, 3, 5, 19, 0),
        local(2026, 3, 5, 21, 0),
        "Europe/Berlin",
        Some("FREQ=WEEKLY;BYDAY=TH;COUNT=12"),
    );
    t.exdates = vec![local(2026, 4, 2, 19, 0), local(2026, 4, 16, 19, 0)];
    let mut item = event(
        space,
        LocalizedText::from([
            ("de", "Repair-Café: Räder, Toaster; Lampen"),
            ("tr", "Tamir kafesi"),
        ]),
        t,
        Some("Nachbarschaftshaus, Cuvrystraße 13, 10997 Berlin"),
    );
    item.content.body = LocalizedText::from([
        ("de", "Wir reparieren zusammen.\nBitte Werkzeug mitbringen, wenn ihr habt; Kaffee gibt es gegen Spende. \\o/ ".repeat(3).trim().to_owned().as_str()),
        ("ar", "نصلح معًا"),
    ]);
    item.content.tags = ["reparatur".to_owned(), "café, treff".to_owned()].into();
    item.content.location = Some(Location::new(52.502341, -13.401092));
    item
}

fn street_party(space: &Space) -> Item {
    event(
        space,
        LocalizedText::single("de", "Straßenfest"),
        timing(
            local(2026, 6, 13, 0, 0),
            local(2026, 6, 15, 0, 0),
            "Europe/Berlin",
            None,
        ),
        Some("Wrangelstraße"),
    )
}

fn online_meeting(space: &Space) -> Item {
    let mut t = timing(
        local(2026, 3, 20, 17, 0),
        local(2026, 3, 20, 18, 30),
        "UTC",
        Some("FREQ=MONTHLY;BYDAY=3FR"),
    );
    t.exdates = vec![local(2026, 5, 15, 17, 0)];
    event(space, LocalizedText::single("en", "Tenants' video call"), t, None)
}

fn offer(space: &Space) -> Item {
    let mut mondays = OpeningRule {
        rrule: "FREQ=WEEKLY;BYDAY=MO,WE".into(),
        opens: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        closes: NaiveTime::from_hms_opt(12, 30, 0).unwrap(),
        valid_from: None,
        valid_until: Some(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()),
        closed_on: vec![NaiveDate::from_ymd_opt(2026, 4, 6).unwrap()],
        description: Some("Sprechstunde".into()),
    };
    mondays
        .closed_on
        .push(NaiveDate::from_ymd_opt(2026, 5, 25).unwrap());
    let first_tuesday = OpeningRule {
        rrule: "FREQ=MONTHLY;BYDAY=1TU;COUNT=20".into(),
        opens: NaiveTime::from_hms_opt(16, 0, 0).unwrap(),
        closes: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
        valid_from: Some(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()),
        valid_until: Some(NaiveDate::from_ymd_opt(2026, 9, 30).unwrap()),
        closed_on: Vec::new(),
        description: None,
    };
    let mut content = ItemContent::new(
        LocalizedText::from([("de", "Sozialberatung"), ("en", "Welfare advice")]),
        ItemDetails::Offer(Offer {
            organization: Organization {
                name: "Stadtteilmütter Kreuzberg e.V.".into(),
                url: Some("https://stadtteilmuetter.example".into()),
                email: Some("kontakt@stadtteilmuetter.example".into()),
                phone: Some("+49 30 1234567".into()),
            },
            service_url: Some("https://stadtteilmuetter.example/beratung".into()),
            location: Some(ServiceLocation {
                name: "Familienzentrum".into(),
                address: Some(Address {
                    street: "Oranienstraße 5".into(),
                    postal_code: "10999".into(),
                    city: "Berlin".into(),
                    country: "DE".into(),
                }),
            }),
            schedules: vec![mondays, first_tuesday],
            contacts: vec![Contact {
                name: Some("Ayşe Yılmaz".into()),
                title: Some("Beraterin".into()),
                phone: Some("+49 170 1234567".into()),
                email: Some("ayse@stadtteilmuetter.example".into()),
            }],
            languages: vec!["de".into(), "tr".into()],
            ..Offer::default()
        }),
    );
    content.tags = ["beratung".to_owned()].into();
    content.location = Some(Location::new(52.4998, 13.4183));
    item(space, content)
}

fn options() -> IcalExportOptions {
    IcalExportOptions {
        now: utc(2026, 3, 1, 8, 0),
        languages: vec!["de".into()],
        item_link_base: Some("https://quartier.example/i/".into()),
    }
}

fn import_options(space: &Space) -> IcalImportOptions {
    IcalImportOptions::new(space.id, PersonId::new(), "de", "Europe/Berlin").unwrap()
}

fn by_key<'a>(import: &'a Import, key: &str) -> &'a ItemContent {
    &import
        .items
        .iter()
        .find(|i| i.source_key == key)
        .unwrap_or_else(|| panic!("{key} not imported: {:#?}", import.skipped))
        .item
        .content
}

fn timing_of(content: &ItemContent) -> &EventTiming {
    match &content.details {
        ItemDetails::Event(event) => &event.timing,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn ical_round_trip_keeps_every_field_the_standard_holds() {
    let space = space();
    let items = vec![repair_cafe(&space), street_party(&space), online_meeting(&space)];
    let export = export_ics(&space, &items, &options());
    assert!(export.skipped.is_empty(), "{:?}", export.skipped);
    let import = import_ics(export.ics.as_bytes(), &import_options(&space)).unwrap();
    // The link to the item is the one thing an event item has no field for.
    assert_eq!(import.skipped.len(), 3, "{:#?}", import.skipped);
    for skipped in &import.skipped {
        assert_eq!(
            skipped.reason,
            "imported without: URL (an event item has no link field)"
        );
    }
    assert_eq!(import.items.len(), 3);
    for original in &items {
        let back = by_key(&import, &format!("ical:{}@quartier", original.id));
        // Everything an event carries comes back as it was: texts in every language, tags,
        // position, venue, start, end, zone, rule and cancelled dates.
        assert_eq!(back.title, original.content.title);
        assert_eq!(back.body, original.content.body);
        assert_eq!(back.tags, original.content.tags);
        assert_eq!(back.location, original.content.location);
        assert_eq!(back.details, original.content.details);
    }
}

#[test]
fn ical_export_is_crlf_folded_escaped_with_vtimezone() {
    let space = space();
    let export = export_ics(&space, &[repair_cafe(&space), online_meeting(&space)], &options());
    let ics = &export.ics;
    assert!(ics.ends_with("END:VCALENDAR\r\n"));
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "{line:?} has {} octets", line.len());
        assert!(!line.contains('\n') && !line.contains('\r'));
    }
    let unfolded = ics.replace("\r\n ", "");
    assert!(unfolded.contains("SUMMARY;LANGUAGE=de:Repair-Café: Räder\\, Toaster\\; Lampen\r\n"));
    assert!(unfolded.contains("CATEGORIES:café\\, treff,reparatur\r\n"));
    assert!(unfolded.contains("DTSTART;TZID=Europe/Berlin:20260305T190000\r\n"));
    assert!(unfolded.contains("EXDATE;TZID=Europe/Berlin:20260402T190000,20260416T190000\r\n"));
    assert!(unfolded.contains("GEO:52.502341;-13.401092\r\n"));
    assert!(unfolded.contains("X-QUARTIER-SUMMARY;LANGUAGE=tr:Tamir kafesi\r\n"));
    // The UTC event needs no VTIMEZONE; Berlin gets exactly one, with 2026's changes.
    assert_eq!(unfolded.matches("BEGIN:VTIMEZONE").count(), 1);
    assert!(unfolded.contains("DTSTART:20260320T170000Z\r\n"));
    assert!(unfolded
        .contains("BEGIN:DAYLIGHT\r\nDTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"));
    assert!(unfolded.contains(&format!("UID:{}@quartier", repair_cafe_id(&unfolded))));
    assert!(unfolded.contains(
        "DTSTAMP:20260301T080000Z\r\nCREATED:20260110T090000Z\r\nLAST-MODIFIED:20260201T123000Z\r\n"
    ));
}

fn repair_cafe_id(ics: &str) -> String {
    let start = ics.find("UID:").unwrap() + 4;
    ics[start..start + 36].to_owned()
}

#[test]
fn ical_exported_until_dates_become_utc_and_series_stay_the_same() {
    let space = space();
    let original = event(
        &space,
        LocalizedText::single("de", "Chor"),
        timing(
            local(2026, 3, 5, 19, 0),
            local(2026, 3, 5, 21, 0),
            "Europe/Berlin",
            Some("FREQ=WEEKLY;UNTIL=20260326;BYDAY=TH"),
        ),
        None,
    );
    let export = export_ics(&space, std::slice::from_ref(&original), &options());
    assert!(
        export
            .ics
            .contains("RRULE:FREQ=WEEKLY;BYDAY=TH;UNTIL=20260326T225959Z\r\n"),
        "{}",
        export.ics
    );
    let import = import_ics(export.ics.as_bytes(), &import_options(&space)).unwrap();
    let back = timing_of(by_key(&import, &format!("ical:{}@quartier", original.id)));
    let window = (utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0));
    let original_timing = timing_of(&original.content);
    assert_eq!(
        back.occurrences_between(window.0, window.1, 100).unwrap(),
        original_timing
            .occurrences_between(window.0, window.1, 100)
            .unwrap()
    );
}

#[test]
fn ical_opening_hours_export_as_series_with_the_same_openings() {
    let space = space();
    let offer = offer(&space);
    let export = export_ics(&space, std::slice::from_ref(&offer), &options());
    assert!(export.skipped.is_empty(), "{:?}", export.skipped);
    let unfolded = export.ics.replace("\r\n ", "");
    assert!(
        unfolded.contains("SUMMARY;LANGUAGE=de:Sozialberatung (Sprechstunde)\r\n"),
        "{unfolded}"
    );
    assert!(unfolded.contains("TRANSP:TRANSPARENT\r\n"));
    assert!(unfolded.contains("LOCATION:Familienzentrum\\, Oranienstraße 5\\, 10999 Berlin\\, DE\r\n"));
    assert!(unfolded.contains("URL:https://stadtteilmuetter.example/beratung\r\n"));
    // Read back as events, each rule's occurrences are the domain's openings of that rule.
    let import = import_ics(export.ics.as_bytes(), &import_options(&space)).unwrap();
    let ItemDetails::Offer(details) = &offer.content.details else {
        unreachable!()
    };
    let tz = chrono_tz::Europe::Berlin;
    let (from, to) = (utc(2026, 3, 1, 0, 0), utc(2027, 3, 1, 0, 0));
    for (index, rule) in details.schedules.iter().enumerate() {
        let key = format!("ical:{}-opening-{}@quartier", offer.id, index + 1);
        let series = timing_of(by_key(&import, &key));
        let ours = opening_intervals(std::slice::from_ref(rule), tz, from, to).unwrap();
        let theirs = series.occurrences_between(from, to, 1000).unwrap();
        assert!(!ours.is_empty());
        assert_eq!(theirs, ours, "rule {}", index + 1);
    }
}

#[test]
fn ical_export_leaves_out_drafts_and_reports_unwritable_rules() {
    let space = space();
    let mut draft = street_party(&space);
    draft.content.status = Status::Draft;
    let mut ended = offer(&space);
    if let ItemDetails::Offer(details) = &mut ended.content.details {
        details.schedules[0].valid_until = Some(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        details.schedules[0].valid_from = Some(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        details.schedules[0].valid_until = Some(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        details.schedules[0].rrule = "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30".into();
    }
    let export = export_ics(&space, &[draft, ended.clone()], &options());
    assert!(!export.ics.contains("Straßenfest"));
    assert_eq!(export.skipped.len(), 1, "{:?}", export.skipped);
    assert_eq!(
        export.skipped[0].record,
        format!("offer {} opening rule 1", ended.id)
    );
    assert!(
        export.skipped[0].reason.contains("no opening"),
        "{}",
        export.skipped[0].reason
    );
    assert!(export
        .ics
        .contains(&format!("UID:{}-opening-2@quartier", ended.id)));
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/ical/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn ical_google_calendar_export_imports_cleanly() {
    let space = space();
    let import = import_ics(&data("google_calendar_export.ics"), &import_options(&space)).unwrap();
    assert_eq!(import.items.len(), 3, "{:#?}", import.skipped);
    // Only the moved occurrence is skipped, saying why.
    assert_eq!(import.skipped.len(), 1, "{:#?}", import.skipped);
    assert_eq!(
        import.skipped[0].record,
        "ical:4kq1v8d0c6h3k2j9s7n5m1p0aa@google.com"
    );
    assert!(import.skipped[0].reason.contains("RECURRENCE-ID"));

    let cafe = by_key(&import, "ical:4kq1v8d0c6h3k2j9s7n5m1p0aa@google.com");
    assert_eq!(cafe.title.get("de"), Some("Repair-Café: Räder, Toaster, Lampen"));
    assert_eq!(
        cafe.body.get("de"),
        Some("Wir reparieren zusammen Fahrräder, Toaster und Lampen.\nBitte Werkzeug mitbringen, wenn ihr habt. Kaffee, Tee und Kuchen gibt es gegen Spende.")
    );
    let ItemDetails::Event(details) = &cafe.details else {
        panic!()
    };
    assert_eq!(
        details.venue.as_deref(),
        Some("Nachbarschaftshaus, Cuvrystraße 13, 10997 Berlin, Deutschland")
    );
    let starts: Vec<_> = details
        .timing
        .occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 100)
        .unwrap()
        .into_iter()
        .map(|o| o.start)
        .collect();
    assert_eq!(
        starts,
        vec![
            utc(2026, 3, 5, 18, 0),
            utc(2026, 3, 12, 18, 0),
            utc(2026, 3, 19, 18, 0),
            utc(2026, 3, 26, 18, 0),
            utc(2026, 4, 9, 17, 0),
            utc(2026, 4, 16, 17, 0),
            utc(2026, 4, 23, 17, 0),
        ]
    );

    // The all-day event lies in the import's zone, midnight to midnight.
    let party = timing_of(by_key(&import, "ical:7h2b9c1d3e5f@google.com"));
    assert_eq!(
        (party.start, party.end),
        (local(2026, 6, 13, 0, 0), local(2026, 6, 14, 0, 0))
    );
    assert_eq!(party.time_zone, "Europe/Berlin");
    // UTC times stay in UTC.
    let call = timing_of(by_key(&import, "ical:utc-meeting-1@google.com"));
    assert_eq!(
        (call.start, call.end, call.time_zone.as_str()),
        (local(2026, 3, 20, 17, 0), local(2026, 3, 20, 18, 30), "UTC")
    );
}

#[test]
fn ical_thunderbird_export_imports_with_its_time_zones() {
    let space = space();
    let import = import_ics(&data("thunderbird_export.ics"), &import_options(&space)).unwrap();
    assert_eq!(import.items.len(), 2, "{:#?}", import.skipped);
    assert_eq!(import.skipped.len(), 1, "{:#?}", import.skipped);
    assert_eq!(import.skipped[0].record, "ical:todo-1");
    assert!(import.skipped[0].reason.contains("VTODO"));

    let breakfast = by_key(&import, "ical:b0a5c9d2-1f3e-4a6b-8c7d-9e0f1a2b3c4d");
    assert_eq!(breakfast.title.get("tr"), Some("Kahvaltı: Komşular buluşuyor"));
    assert_eq!(
        breakfast.body.get("tr"),
        Some("Herkes davetli. Çay ve simit var.")
    );
    assert_eq!(
        breakfast.tags,
        ["Familie".to_owned(), "Frühstück".to_owned(), "Treff".to_owned()].into()
    );
    assert_eq!(breakfast.location, Some(Location::new(52.498512, 13.432187)));
    let series = timing_of(breakfast);
    assert_eq!(series.time_zone, "Europe/Berlin");
    let starts: Vec<_> = series
        .occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 100)
        .unwrap()
        .into_iter()
        .map(|o| o.start)
        .collect();
    assert_eq!(
        starts,
        vec![
            utc(2026, 2, 7, 9, 0),
            utc(2026, 5, 2, 8, 0),
            utc(2026, 6, 6, 8, 0),
            utc(2026, 7, 4, 8, 0)
        ]
    );
    let call = timing_of(by_key(&import, "ical:ankara-call-7"));
    assert_eq!(call.time_zone, "Europe/Istanbul");
    assert_eq!(
        (call.start, call.end),
        (local(2026, 3, 12, 15, 0), local(2026, 3, 12, 15, 45))
    );
}

fn calendar(events: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n")
}

fn reason_for(import: &Import, record: &str) -> String {
    import
        .skipped
        .iter()
        .find(|s| s.record == record)
        .map(|s| s.reason.clone())
        .unwrap_or_else(|| panic!("{record} not skipped: {:#?}", import.skipped))
}

#[test]
fn ical_bad_records_are_skipped_with_reasons() {
    let space = space();
    let text = calendar(concat!(
        "BEGIN:VEVENT\r\nUID:no-start\r\nSUMMARY:Ohne Beginn\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:bad-date\r\nSUMMARY:Kaputt\r\nDTSTART:2026-03-05 19:00\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:mixed\r\nSUMMARY:Gemischt\r\nDTSTART;VALUE=DATE:20260305\r\nDTEND:20260306T100000\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:huge-count\r\nSUMMARY:Endlos\r\nDTSTART:20260305T190000Z\r\nDTEND:20260305T200000Z\r\nRRULE:FREQ=DAILY;COUNT=10000000\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:hourly\r\nSUMMARY:Stündlich\r\nDTSTART:20260305T190000Z\r\nDTEND:20260305T200000Z\r\nRRULE:FREQ=HOURLY\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:no-title\r\nDTSTART:20260305T190000Z\r\nDTEND:20260305T200000Z\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:reversed\r\nSUMMARY:Rückwärts\r\nDTSTART:20260305T190000Z\r\nDTEND:20260305T180000Z\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:mars\r\nSUMMARY:Mars\r\nDTSTART;TZID=Mars/Olympus:20260305T190000\r\nDTEND;TZID=Mars/Olympus:20260305T200000\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:cancelled\r\nSUMMARY:Abgesagt\r\nSTATUS:CANCELLED\r\nDTSTART:20260305T190000Z\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nSUMMARY:Ohne UID\r\nDTSTART:20260305T190000Z\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:guests\r\nSUMMARY:Mit Gästen\r\nDTSTART:20260305T190000Z\r\nDURATION:PT2H\r\n",
        "ATTENDEE;CN=Max:mailto:max@example.org\r\nATTENDEE:mailto:eva@example.org\r\nRDATE:20260310T190000Z\r\n",
        "GEO:95;200\r\nURL:https://example.org/e\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:guests\r\nSUMMARY:Doppelt\r\nDTSTART:20260305T190000Z\r\nEND:VEVENT\r\n",
        "BEGIN:VJOURNAL\r\nUID:journal\r\nSUMMARY:Notiz\r\nEND:VJOURNAL\r\n",
        "this line is no content line\r\n",
    ));
    let import = import_ics(text.as_bytes(), &import_options(&space)).unwrap();
    assert_eq!(import.items.len(), 1, "{:#?}", import.items);
    assert!(reason_for(&import, "ical:no-start").contains("no DTSTART"));
    assert!(reason_for(&import, "ical:bad-date").contains("is not a DATE"));
    assert!(reason_for(&import, "ical:mixed").contains("both be dates"));
    assert!(reason_for(&import, "ical:huge-count").contains("COUNT must be a whole number from 1 to 10000"));
    assert!(reason_for(&import, "ical:hourly").contains("finer than daily"));
    assert!(reason_for(&import, "ical:no-title").contains("no SUMMARY"));
    assert!(reason_for(&import, "ical:reversed").contains("end must be after the start"));
    assert!(reason_for(&import, "ical:mars").contains("Mars/Olympus"));
    assert!(reason_for(&import, "ical:cancelled").contains("cancelled"));
    let line_of = |needle: &str| {
        format!(
            "line {}",
            text[..text.find(needle).unwrap()].matches('\n').count() + 1
        )
    };
    assert!(reason_for(&import, &line_of("BEGIN:VEVENT\r\nSUMMARY:Ohne UID")).contains("no UID"));
    assert!(reason_for(&import, "ical:journal").contains("VJOURNAL"));
    assert!(reason_for(&import, &line_of("this line")).contains("no `:`"));
    // The event with guests is imported, and what it lost is said.
    let guests: Vec<_> = import
        .skipped
        .iter()
        .filter(|s| s.record == "ical:guests")
        .collect();
    assert_eq!(guests.len(), 2, "{guests:#?}");
    for expected in ["ATTENDEE ×2", "RDATE", "GEO `95;200`", "URL"] {
        assert!(
            guests[0].reason.contains(expected),
            "{expected}: {}",
            guests[0].reason
        );
    }
    assert!(guests[1].reason.contains("same UID"));
    assert_eq!(import.items[0].source_key, "ical:guests");
    let timing = timing_of(&import.items[0].item.content);
    assert_eq!(timing.end, local(2026, 3, 5, 21, 0));
}

#[test]
fn ical_bad_files_are_typed_errors() {
    let space = space();
    let options = import_options(&space);
    let mut bad_utf8 = calendar("BEGIN:VEVENT\r\nUID:x\r\nSUMMARY:caf").into_bytes();
    bad_utf8.extend_from_slice(&[0xC3, 0x28, b'\r', b'\n']);
    assert!(matches!(
        import_ics(&bad_utf8, &options),
        Err(ImportError::NotUtf8 { .. })
    ));

    let big = vec![b'A'; 50 * 1024 * 1024];
    assert_eq!(
        import_ics(&big, &options),
        Err(ImportError::TooLarge {
            size: 50 * 1024 * 1024,
            max: MAX_IMPORT_BYTES
        })
    );

    let nested = format!("BEGIN:VCALENDAR\r\n{}", "BEGIN:X\r\n".repeat(200_000));
    let error = import_ics(nested.as_bytes(), &options).unwrap_err();
    assert!(
        matches!(&error, ImportError::Malformed { format: "iCalendar", reason } if reason.contains("nested")),
        "{error}"
    );

    let vcard = b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Max\r\nEND:VCARD\r\n";
    assert!(matches!(
        import_ics(vcard, &options),
        Err(ImportError::Malformed { .. })
    ));
    assert!(matches!(
        import_ics(b"{\"json\": true}", &options),
        Err(ImportError::Malformed { .. })
    ));
}

#[test]
fn ical_import_work_is_bounded_for_a_million_components() {
    let space = space();
    let event = "BEGIN:VEVENT\r\nEND:VEVENT\r\n";
    let count = (MAX_IMPORT_BYTES - 100) / event.len();
    let text = calendar(&event.repeat(count));
    let started = std::time::Instant::now();
    let import = import_ics(text.as_bytes(), &import_options(&space)).unwrap();
    assert!(import.items.is_empty());
    // Every kept component is reported once (no UID), then one line for the rest.
    assert_eq!(import.skipped.len(), MAX_ICAL_COMPONENTS + 1);
    let last = import.skipped.last().unwrap();
    assert_eq!(last.record, "file");
    assert!(
        last.reason
            .contains(&format!("{} more components", count - MAX_ICAL_COMPONENTS)),
        "{}",
        last.reason
    );
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
}

#[test]
fn ical_line_folded_inside_a_character_still_reads() {
    let space = space();
    let mut bytes =
        calendar("BEGIN:VEVENT\r\nUID:fold\r\nDTSTART:20260305T190000Z\r\nSUMMARY:Caf").into_bytes();
    bytes.truncate(bytes.len() - "END:VCALENDAR\r\n".len());
    // "é" is C3 A9; a naive writer folded between its two octets.
    bytes.extend_from_slice(&[0xC3, b'\r', b'\n', b' ', 0xA9]);
    bytes.extend_from_slice(b"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
    let import = import_ics(&bytes, &import_options(&space)).unwrap();
    assert_eq!(import.items[0].item.content.title.get("de"), Some("Café"));
}

/// Reads an `.ics` with Python `icalendar` (zones by name) and with `vobject` (zones from the
/// file's VTIMEZONEs), expands every VEVENT with dateutil over 2026, and prints per UID:
/// the summary, the duration and the occurrence starts (UTC, or the date for all-day events).
const EXPAND_ICS: &str = r#"
import sys, json, datetime
import icalendar, vobject
from dateutil import rrule as dr

path = sys.argv[1]
raw = open(path, 'rb').read()
utc = datetime.timezone.utc
lo = datetime.datetime(2026, 1, 1, tzinfo=utc)
hi = datetime.datetime(2027, 1, 1, tzinfo=utc)

def show(value):
    if isinstance(value, datetime.datetime):
        return value.astimezone(utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    return value.strftime('%Y-%m-%d')

def window(start):
    if isinstance(start, datetime.datetime):
        return lo, hi
    return lo.replace(tzinfo=None), hi.replace(tzinfo=None)

def expand(start, end, rule, exdates):
    all_day = not isinstance(start, datetime.datetime)
    first = datetime.datetime.combine(start, datetime.time()) if all_day else start
    rs = dr.rruleset()
    if rule:
        rs.rrule(dr.rrulestr(rule, dtstart=first))
    else:
        rs.rdate(first)
    for ex in exdates:
        if all_day:
            ex = datetime.datetime.combine(ex, datetime.time()) if not isinstance(ex, datetime.datetime) else ex
        rs.exdate(ex)
    a, b = window(start)
    starts = rs.between(a, b, inc=True)
    return [show(s.date() if all_day else s) for s in starts], (end - start).total_seconds()

out = {'icalendar': {}, 'vobject': {}}
cal = icalendar.Calendar.from_ical(raw)
for ev in cal.walk('VEVENT'):
    start = ev.decoded('DTSTART')
    end = ev.decoded('DTEND')
    rule = ev.get('RRULE')
    rule = rule.to_ical().decode() if rule else None
    exdates = []
    ex = ev.get('EXDATE')
    for group in (ex if isinstance(ex, list) else [ex] if ex else []):
        exdates += [d.dt for d in group.dts]
    starts, length = expand(start, end, rule, exdates)
    out['icalendar'][str(ev['UID'])] = {'summary': str(ev['SUMMARY']), 'length': length, 'starts': starts}

vcal = vobject.readOne(raw.decode('utf-8'))
for ev in vcal.vevent_list:
    start = ev.dtstart.value
    end = ev.dtend.value
    rs = ev.getrruleset(addRDate=True)
    a, b = window(start)
    if rs is None:
        starts = [start] if a <= (start if isinstance(start, datetime.datetime) else datetime.datetime.combine(start, datetime.time())) < b else []
    else:
        starts = rs.between(a, b, inc=True)
    all_day = not isinstance(start, datetime.datetime)
    shown = [show(s.date() if all_day and isinstance(s, datetime.datetime) else s) for s in starts]
    out['vobject'][ev.uid.value] = {'summary': ev.summary.value, 'length': (end - start).total_seconds(), 'starts': shown}
print(json.dumps(out, sort_keys=True))
"#;

#[test]
fn ical_exports_read_the_same_in_python_icalendar_and_vobject() {
    let space = space();
    let items = vec![
        repair_cafe(&space),
        street_party(&space),
        online_meeting(&space),
        offer(&space),
    ];
    let export = export_ics(&space, &items, &options());
    assert!(export.skipped.is_empty(), "{:?}", export.skipped);
    let dir = std::env::temp_dir().join(format!("quartier-ical-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("export.ics");
    std::fs::write(&path, &export.ics).unwrap();
    let Some(out) = python(
        EXPAND_ICS,
        &["icalendar", "vobject", "dateutil"],
        &[path.to_str().unwrap()],
        &[],
        b"",
    ) else {
        return;
    };
    assert!(
        out.status.success(),
        "the independent parser failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let output = String::from_utf8(out.stdout).expect("UTF-8 from python");
    let _ = std::fs::remove_dir_all(&dir);
    let parsed: serde_json::Value = serde_json::from_str(&output).unwrap();

    // What we expect, from the domain's own expansion.
    let (from, to) = (utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0));
    let tz = chrono_tz::Europe::Berlin;
    let mut expected: BTreeMap<String, (String, f64, Vec<String>)> = BTreeMap::new();
    let show = |timing: &EventTiming, start: DateTime<Utc>| {
        if timing.start.time() == NaiveTime::MIN && timing.end.time() == NaiveTime::MIN {
            start.with_timezone(&tz).format("%Y-%m-%d").to_string()
        } else {
            start.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        }
    };
    for item in &items {
        match &item.content.details {
            ItemDetails::Event(event) => {
                let t = &event.timing;
                let occurrences = t.occurrences_between(from, to, 1000).unwrap();
                let length = (occurrences[0].end - occurrences[0].start).num_seconds() as f64;
                let starts = occurrences.iter().map(|o| show(t, o.start)).collect();
                let title = item.content.title.best(&["de"]).unwrap().to_owned();
                expected.insert(format!("{}@quartier", item.id), (title, length, starts));
            }
            ItemDetails::Offer(offer) => {
                for (index, rule) in offer.schedules.iter().enumerate() {
                    // A rule without a start date is written from the export's day on.
                    let since = if rule.valid_from.is_some() {
                        from
                    } else {
                        options().now
                    };
                    let openings = opening_intervals(std::slice::from_ref(rule), tz, since, to).unwrap();
                    let length = (openings[0].end - openings[0].start).num_seconds() as f64;
                    let starts = openings
                        .iter()
                        .map(|o| o.start.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .collect();
                    let title = match &rule.description {
                        Some(d) => format!("Sozialberatung ({d})"),
                        None => "Sozialberatung".to_owned(),
                    };
                    expected.insert(
                        format!("{}-opening-{}@quartier", item.id, index + 1),
                        (title, length, starts),
                    );
                }
            }
            _ => unreachable!(),
        }
    }
    for parser in ["icalendar", "vobject"] {
        let events = parsed[parser].as_object().unwrap();
        assert_eq!(events.len(), expected.len(), "{parser}: {events:#?}");
        for (uid, (title, length, starts)) in &expected {
            let got = &events[uid];
            assert_eq!(got["summary"].as_str(), Some(title.as_str()), "{parser} {uid}");
            assert_eq!(got["length"].as_f64(), Some(*length), "{parser} {uid}");
            let got_starts: Vec<String> = serde_json::from_value(got["starts"].clone()).unwrap();
            assert_eq!(&got_starts, starts, "{parser} {uid}");
        }
    }
}

mod ical_properties {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        "[a-zé😀ل,;:\\\\\"^ \n\t]{1,120}".prop_filter("needs a visible character", |t| !t.trim().is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the text (escapes, quotes, carets, line breaks, multi-octet characters
        /// across folds), it comes back as it was.
        #[test]
        fn ical_any_text_round_trips(title in text(), body in text(), venue in "[a-zé,;\\\\ ]{0,40}[a-z]") {
            let space = space();
            let mut original = street_party(&space);
            original.content.title = LocalizedText::single("de", title.as_str());
            original.content.body = LocalizedText::single("de", body.as_str());
            if let ItemDetails::Event(event) = &mut original.content.details {
                event.venue = Some(venue.trim().to_owned());
            }
            let export = export_ics(&space, std::slice::from_ref(&original), &options());
            for line in export.ics.split("\r\n") {
                prop_assert!(line.len() <= 75);
            }
            let import = import_ics(export.ics.as_bytes(), &import_options(&space)).unwrap();
            let back = by_key(&import, &format!("ical:{}@quartier", original.id));
            prop_assert_eq!(&back.title, &original.content.title);
            prop_assert_eq!(&back.body, &original.content.body);
            prop_assert_eq!(&back.details, &original.content.details);
        }

        /// Any jumble of calendar-looking lines gives items, skipped records or a typed error,
        /// never a panic.
        #[test]
        fn ical_import_never_panics(parts in proptest::collection::vec(prop_oneof![
            Just("BEGIN:VCALENDAR"), Just("END:VCALENDAR"), Just("BEGIN:VEVENT"), Just("END:VEVENT"),
            Just("BEGIN:VALARM"), Just("UID:a"), Just("UID:b"), Just("SUMMARY:x\\,y"),
            Just("DTSTART:20260101T100000Z"), Just("DTSTART;VALUE=DATE:20260101"), Just("DTEND:20251231T100000Z"),
            Just("DTSTART;TZID=\"Europe/Berlin\":20260329T023000"), Just("DURATION:P1W"), Just("RRULE:FREQ=DAILY;COUNT=3"),
            Just("RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"), Just("EXDATE:20260102T100000Z,20260103"),
            Just("RECURRENCE-ID:20260102T100000Z"), Just("GEO:1;2"), Just(" folded"), Just(";;;"), Just(":"),
            Just("CATEGORIES:a,,b\\,c"), Just("END:VTODO"), Just("\u{e9}"),
        ], 0..60)) {
            let text = parts.join("\r\n");
            let space = space();
            let _ = import_ics(text.as_bytes(), &import_options(&space));
        }
    }
}

#[test]
fn ical_cancelled_single_occurrences_become_exdates() {
    let space = space();
    // As Outlook writes a deleted occurrence: the override comes before its series.
    let text = calendar(concat!(
        "BEGIN:VEVENT\r\nUID:chor\r\nRECURRENCE-ID;TZID=W. Europe Standard Time:20260312T190000\r\n",
        "STATUS:CANCELLED\r\nSUMMARY:Chor\r\nDTSTART;TZID=W. Europe Standard Time:20260312T190000\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:chor\r\nSUMMARY:Chor\r\nDTSTART;TZID=W. Europe Standard Time:20260305T190000\r\n",
        "DTEND;TZID=W. Europe Standard Time:20260305T203000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:elsewhere\r\nRECURRENCE-ID:20260312T180000Z\r\nSTATUS:CANCELLED\r\n",
        "SUMMARY:Fremd\r\nDTSTART:20260312T180000Z\r\nEND:VEVENT\r\n",
    ));
    let import = import_ics(text.as_bytes(), &import_options(&space)).unwrap();
    assert_eq!(import.skipped.len(), 1, "{:#?}", import.skipped);
    assert!(reason_for(&import, "ical:elsewhere").contains("not in this file"));
    let series = timing_of(by_key(&import, "ical:chor"));
    assert_eq!(series.time_zone, "Europe/Berlin");
    assert_eq!(series.exdates, vec![local(2026, 3, 12, 19, 0)]);
    let starts: Vec<_> = series
        .occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 10)
        .unwrap()
        .into_iter()
        .map(|o| o.start)
        .collect();
    assert_eq!(starts, vec![utc(2026, 3, 5, 18, 0), utc(2026, 3, 19, 18, 0)]);
}

/// An offer as an attacker stores it: no validation on the way (the export must hold anyway).
fn offer_with_urls(space: &Space, service_url: &str, organization_url: &str) -> Item {
    let mut item = offer(space);
    if let ItemDetails::Offer(offer) = &mut item.content.details {
        offer.service_url = Some(service_url.into());
        offer.organization.url = Some(organization_url.into());
    }
    item
}

#[test]
fn ical_export_lets_no_url_inject_lines_or_events() {
    let space = space();
    let injection = "https://x.example/\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:victim@quartier\r\n\
                     SUMMARY:Injected\r\nDTSTART:20260301T100000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nX-A:b";
    let item = offer_with_urls(&space, injection, "javascript:alert(1)");
    let export = export_ics(&space, std::slice::from_ref(&item), &options());
    // Two opening rules, two events; nothing else.
    assert_eq!(export.ics.matches("BEGIN:VEVENT").count(), 2, "{}", export.ics);
    assert!(!export.ics.contains("victim@quartier"), "{}", export.ics);
    assert!(!export.ics.contains("SUMMARY:Injected"), "{}", export.ics);
    assert!(!export.ics.contains("\nURL"), "{}", export.ics);
    for line in export.ics.split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "{line:?}");
    }
    let reasons: Vec<&str> = export.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("the service URL is not written")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("the organization URL is not written")),
        "{reasons:?}"
    );
    // The import of the export sees two events, each with its own UID.
    let import = import_ics(export.ics.as_bytes(), &import_options(&space)).unwrap();
    assert_eq!(import.items.len(), 2, "{:#?}", import.skipped);
    assert!(import
        .items
        .iter()
        .all(|i| i.source_key.contains(&item.id.to_string())));

    // A valid organization URL stands in for a bad service URL.
    let item = offer_with_urls(&space, "https://x.example/ a", "https://verein.example/");
    let export = export_ics(&space, &[item], &options());
    assert_eq!(
        export.ics.matches("URL:https://verein.example/").count(),
        2,
        "{}",
        export.ics
    );
}

#[test]
fn ical_import_skips_a_component_with_too_many_properties() {
    use quartier_standards::ical::MAX_PROPERTIES_PER_COMPONENT;
    let space = space();
    let crowded = format!(
        "BEGIN:VEVENT\r\nUID:crowded\r\nDTSTART:20260305T190000Z\r\nSUMMARY:Voll\r\n{}END:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:fine\r\nDTSTART:20260305T190000Z\r\nSUMMARY:Gut\r\nEND:VEVENT\r\n",
        "X:\r\n".repeat(MAX_PROPERTIES_PER_COMPONENT)
    );
    let import = import_ics(calendar(&crowded).as_bytes(), &import_options(&space)).unwrap();
    let keys: Vec<&str> = import.items.iter().map(|i| i.source_key.as_str()).collect();
    assert_eq!(keys, ["ical:fine"]);
    assert!(
        import.skipped.iter().any(|s| s.reason.contains(&format!(
            "VEVENT has more than {MAX_PROPERTIES_PER_COMPONENT} properties"
        ))),
        "{:#?}",
        import.skipped
    );
}

#[test]
fn ical_import_refuses_a_file_of_too_many_content_lines() {
    use quartier_standards::ical::{MAX_CONTENT_LINES, MAX_PROPERTIES_PER_COMPONENT};
    let space = space();
    // Events just under the property limit, enough of them to pass the line limit.
    let event = format!(
        "BEGIN:VEVENT\r\n{}END:VEVENT\r\n",
        "X:\r\n".repeat(MAX_PROPERTIES_PER_COMPONENT - 1)
    );
    let events = MAX_CONTENT_LINES / MAX_PROPERTIES_PER_COMPONENT + 1;
    let text = calendar(&event.repeat(events));
    assert!(text.len() < MAX_IMPORT_BYTES);
    match import_ics(text.as_bytes(), &import_options(&space)) {
        Err(ImportError::Malformed { reason, .. }) => {
            assert!(
                reason.contains(&format!("more than {MAX_CONTENT_LINES} content lines")),
                "{reason}"
            )
        }
        other => panic!("expected Malformed, got {:?}", other.map(|i| i.skipped.len())),
    }
}
