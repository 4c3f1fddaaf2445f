//! vCard 4.0 (RFC 6350): round trips of an offer's organization and contacts, a file as a
//! contacts program exports it, bad files, and an independent check with Python `vobject`.
//! `cargo test vcard` runs them.

use crate::common::python;
use chrono::{DateTime, TimeZone, Utc};
use quartier_domain::model::{
    Address, Contact, Event, Item, ItemContent, ItemDetails, LocalizedText, NewItem, Offer, Organization,
    PersonId, ServiceLocation, SpaceId,
};
use quartier_domain::schedule::EventTiming;
use quartier_standards::vcard::MAX_VCARDS;
use quartier_standards::{export_vcards, import_vcards, ImportError, VcardExportError, MAX_IMPORT_BYTES};

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn offer_item() -> Item {
    let content = ItemContent::new(
        LocalizedText::from([
            ("de", "Sozialberatung, offen; für alle"),
            ("en", "Welfare advice"),
        ]),
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
                    street: "Oranienstraße 5, Hinterhaus".into(),
                    postal_code: "10999".into(),
                    city: "Berlin".into(),
                    country: "DE".into(),
                }),
            }),
            contacts: vec![
                Contact {
                    name: Some("Ayşe Yılmaz".into()),
                    title: Some("Beraterin; Koordination".into()),
                    phone: Some("+49 170 1234567".into()),
                    email: Some("ayse@stadtteilmuetter.example".into()),
                },
                Contact {
                    name: None,
                    title: Some("Empfang".into()),
                    phone: Some("030 / 98 76 54".into()),
                    email: None,
                },
                Contact {
                    name: Some("Oleksandr Kovalenko".into()),
                    title: None,
                    phone: None,
                    email: Some("o.kovalenko@stadtteilmuetter.example".into()),
                },
            ],
            languages: vec!["de".into(), "tr".into(), "uk".into()],
            ..Offer::default()
        }),
    );
    content.validate().unwrap();
    let mut item = NewItem::new(SpaceId::new(), PersonId::new(), content).into_item(utc(2026, 1, 10, 9, 0));
    item.updated_at = utc(2026, 2, 1, 12, 30);
    item
}

fn details(item: &Item) -> &Offer {
    match &item.content.details {
        ItemDetails::Offer(offer) => offer,
        _ => unreachable!(),
    }
}

#[test]
fn vcard_round_trip_keeps_contacts_and_organization() {
    let item = offer_item();
    let vcf = export_vcards(&item, &["de".to_owned()]).unwrap();
    let import = import_vcards(vcf.as_bytes()).unwrap();
    let offer = details(&item);
    assert_eq!(import.contacts, offer.contacts);
    assert_eq!(import.organizations, vec![offer.organization.clone()]);
    // What belongs to the offer rather than to a contact is said, card by card.
    assert_eq!(import.skipped.len(), 4, "{:#?}", import.skipped);
    assert_eq!(
        import.skipped[0].record,
        format!("vcard:{}-organization@quartier", item.id)
    );
    for skipped in &import.skipped {
        for expected in ["ADR (", "LANG ×3", "NOTE ("] {
            assert!(
                skipped.reason.contains(expected),
                "{expected}: {}",
                skipped.reason
            );
        }
    }
}

#[test]
fn vcard_export_is_folded_escaped_and_stable() {
    let item = offer_item();
    let vcf = export_vcards(&item, &["en".to_owned()]).unwrap();
    assert_eq!(vcf, export_vcards(&item, &["en".to_owned()]).unwrap());
    for line in vcf.split("\r\n") {
        assert!(line.len() <= 75, "{line:?}");
    }
    assert_eq!(vcf.matches("BEGIN:VCARD\r\nVERSION:4.0\r\n").count(), 4);
    let unfolded = vcf.replace("\r\n ", "");
    assert!(unfolded.contains("KIND:org\r\nFN:Stadtteilmütter Kreuzberg e.V.\r\nORG:Stadtteilmütter Kreuzberg e.V.\r\nTEL;TYPE=work,voice:+49 30 1234567\r\n"), "{unfolded}");
    assert!(unfolded.contains("TITLE:Beraterin\\; Koordination\r\n"));
    assert!(unfolded.contains(
        "ADR;TYPE=work;LABEL=\"Oranienstraße 5, Hinterhaus, 10999 Berlin, DE\":;;Oranienstraße 5\\, Hinterhaus;Berlin;;10999;DE\r\n"
    ));
    assert!(unfolded.contains("LANG;PREF=1:de\r\nLANG;PREF=2:tr\r\nLANG;PREF=3:uk\r\n"));
    assert!(unfolded.contains("NOTE;LANGUAGE=en:Welfare advice\r\nREV:20260201T123000Z\r\nEND:VCARD"));
    // The nameless contact is shown by its role.
    assert!(unfolded.contains(&format!(
        "UID:{}-contact-2@quartier\r\nKIND:individual\r\nFN:Empfang\r\n",
        item.id
    )));

    let event = NewItem::new(
        SpaceId::new(),
        PersonId::new(),
        ItemContent::new(
            LocalizedText::single("de", "Fest"),
            ItemDetails::Event(Event {
                timing: EventTiming {
                    start: utc(2026, 6, 1, 10, 0).naive_utc(),
                    end: utc(2026, 6, 1, 12, 0).naive_utc(),
                    time_zone: "UTC".into(),
                    rrule: None,
                    exdates: vec![],
                },
                venue: None,
            }),
        ),
    )
    .into_item(utc(2026, 1, 1, 0, 0));
    assert_eq!(
        export_vcards(&event, &[]),
        Err(VcardExportError::NotAnOffer { kind: "event" })
    );
}

#[test]
fn vcard_contacts_program_export_imports() {
    let bytes = std::fs::read(format!(
        "{}/tests/data/vcard/contacts_program_export.vcf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let import = import_vcards(&bytes).unwrap();
    assert_eq!(
        import.contacts,
        vec![Contact {
            name: Some("Ayşe Yılmaz".into()),
            title: Some("Beraterin".into()),
            phone: Some("+49 170 1234567".into()),
            email: Some("ayse.yilmaz@example.org".into()),
        }]
    );
    assert_eq!(
        import.organizations,
        vec![Organization {
            name: "Beratungsstelle Nord".into(),
            url: Some("https://beratung-nord.example".into()),
            email: Some("info@beratung-nord.example".into()),
            phone: Some("+49-30-555-0100".into()),
        }]
    );
    let reasons: Vec<_> = import
        .skipped
        .iter()
        .map(|s| (s.record.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert_eq!(reasons[0].0, "line 1");
    for expected in ["1 fax number", "ADR (", "NOTE (", "ORG ("] {
        assert!(reasons[0].1.contains(expected), "{expected}: {}", reasons[0].1);
    }
    assert_eq!(reasons[1].0, "line 23");
    assert!(reasons[1].1.contains("vCard 2.1 is not read"));
}

#[test]
fn vcard_bad_files_are_typed_errors_or_skipped_cards() {
    assert!(matches!(
        import_vcards(&[0xFF, 0xFE, b'B']),
        Err(ImportError::NotUtf8 { offset: 0 })
    ));
    let big = vec![b' '; MAX_IMPORT_BYTES + 1];
    assert!(matches!(import_vcards(&big), Err(ImportError::TooLarge { .. })));
    let ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
    assert!(matches!(
        import_vcards(ics),
        Err(ImportError::Malformed { format: "vCard", .. })
    ));
    let nested = "BEGIN:VCARD\r\n".repeat(100_000);
    let error = import_vcards(nested.as_bytes()).unwrap_err();
    assert!(
        matches!(&error, ImportError::Malformed { reason, .. } if reason.contains("nested")),
        "{error}"
    );

    let text = "stray:line\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nTITLE:Nur Rolle\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ok\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:Offen\r\n";
    let import = import_vcards(text.as_bytes()).unwrap();
    assert_eq!(import.contacts.len(), 1);
    let reasons: Vec<_> = import
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.record, s.reason))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:#?}");
    assert!(
        reasons.iter().any(|r| r.starts_with("line 10: VCARD has no END")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("line 1: STRAY stands outside")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("line 2: the card has no name")),
        "{reasons:#?}"
    );

    let many = "BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n".repeat(MAX_VCARDS + 5);
    let import = import_vcards(many.as_bytes()).unwrap();
    assert_eq!(import.contacts.len(), MAX_VCARDS);
    assert!(import
        .skipped
        .last()
        .unwrap()
        .reason
        .starts_with("5 more cards were not read"));
}

/// Reads a `.vcf` with Python `vobject` and prints each card's fields as JSON.
const READ_VCF: &str = r#"
import sys, json, vobject
cards = []
for card in vobject.readComponents(open(sys.argv[1], encoding='utf-8').read()):
    def values(name):
        return [c.value for c in card.contents.get(name, [])]
    adr = [{'street': a.value.street, 'city': a.value.city, 'code': a.value.code, 'country': a.value.country} for a in card.contents.get('adr', [])]
    cards.append({
        'version': values('version'), 'uid': values('uid'), 'kind': values('kind'), 'fn': values('fn'),
        'org': [list(v) if isinstance(v, list) else [v] for v in values('org')], 'title': values('title'),
        'tel': values('tel'), 'tel_types': [c.params.get('TYPE', []) for c in card.contents.get('tel', [])],
        'email': values('email'), 'url': values('url'), 'lang': values('lang'), 'note': values('note'), 'adr': adr,
    })
print(json.dumps(cards, ensure_ascii=False))
"#;

#[test]
fn vcard_exports_read_the_same_in_python_vobject() {
    let item = offer_item();
    let dir = std::env::temp_dir().join(format!("quartier-vcard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("contacts.vcf");
    std::fs::write(&path, export_vcards(&item, &["de".to_owned()]).unwrap()).unwrap();
    let out = python(READ_VCF, &["vobject"], &[path.to_str().unwrap()], &[], b"");
    let _ = std::fs::remove_dir_all(&dir);
    let Some(out) = out else {
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cards: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cards = cards.as_array().unwrap();
    let offer = details(&item);
    assert_eq!(cards.len(), 1 + offer.contacts.len());
    let org = &offer.organization;
    let strings =
        |value: &serde_json::Value| -> Vec<String> { serde_json::from_value(value.clone()).unwrap() };
    for (index, card) in cards.iter().enumerate() {
        assert_eq!(strings(&card["version"]), vec!["4.0"]);
        assert_eq!(card["org"], serde_json::json!([[org.name]]));
        assert_eq!(strings(&card["lang"]), offer.languages);
        assert_eq!(strings(&card["note"]), vec!["Sozialberatung, offen; für alle"]);
        assert_eq!(
            card["adr"],
            serde_json::json!([{"street": "Oranienstraße 5, Hinterhaus", "city": "Berlin", "code": "10999", "country": "DE"}])
        );
        let (kind, full_name, title, phone, email) = if index == 0 {
            (
                "org",
                org.name.clone(),
                None,
                org.phone.clone(),
                org.email.clone(),
            )
        } else {
            let contact = &offer.contacts[index - 1];
            let full_name = contact.name.clone().or(contact.title.clone()).unwrap();
            (
                "individual",
                full_name,
                contact.title.clone(),
                contact.phone.clone(),
                contact.email.clone(),
            )
        };
        assert_eq!(strings(&card["kind"]), vec![kind]);
        assert_eq!(strings(&card["fn"]), vec![full_name]);
        assert_eq!(strings(&card["title"]), title.into_iter().collect::<Vec<_>>());
        assert_eq!(
            strings(&card["tel"]),
            phone.clone().into_iter().collect::<Vec<_>>()
        );
        if phone.is_some() {
            assert_eq!(card["tel_types"], serde_json::json!([["work", "voice"]]));
        }
        assert_eq!(strings(&card["email"]), email.into_iter().collect::<Vec<_>>());
    }
    assert_eq!(strings(&cards[0]["url"]), vec![org.url.clone().unwrap()]);
}

#[test]
fn vcard_export_lets_no_language_or_url_inject_properties() {
    let mut item = offer_item();
    if let ItemDetails::Offer(offer) = &mut item.content.details {
        offer.languages = vec!["de\r\nTEL:+1 900 FRAUD".into(), "tr".into()];
        offer.organization.url = Some("https://x.example/\r\nTEL:+1 900 FRAUD".into());
    }
    let vcf = export_vcards(&item, &["de".into()]).unwrap();
    assert!(!vcf.contains("FRAUD"), "{vcf}");
    for line in vcf.split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "{line:?}");
    }
    // Only the valid tag is written, as the first (PREF=1) language.
    assert!(vcf.contains("LANG;PREF=1:tr\r\n"), "{vcf}");
    assert!(!vcf.contains("\r\nURL"), "{vcf}");
    let import = import_vcards(vcf.as_bytes()).unwrap();
    assert_eq!(import.organizations[0].phone.as_deref(), Some("+49 30 1234567"));
    assert!(import
        .contacts
        .iter()
        .all(|c| c.phone.as_deref() != Some("+1 900 FRAUD")));
}

#[test]
fn vcard_import_takes_only_http_urls_and_skips_crowded_cards() {
    let card = |uid: &str, extra: &str| {
        format!(
            "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\nKIND:org\r\nFN:Verein {uid}\r\n{extra}END:VCARD\r\n"
        )
    };
    let file = [
        card("a", "URL:javascript:alert(1)\r\n"),
        card("b", "URL:https://verein.example/\r\n"),
        card("c", &"X-A:1\r\n".repeat(1_000)),
    ]
    .concat();
    let import = import_vcards(file.as_bytes()).unwrap();
    let urls: Vec<Option<&str>> = import.organizations.iter().map(|o| o.url.as_deref()).collect();
    assert_eq!(urls, [None, Some("https://verein.example/")]);
    let reasons: Vec<String> = import
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.record, s.reason))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("vcard:a:") && r.contains("not an http(s) URL")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("VCARD has more than 1000 properties")),
        "{reasons:?}"
    );
}
