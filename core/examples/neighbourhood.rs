//! A walk through the core for newcomers: a neighbourhood space in Köln-Nippes with real-life
//! content, then a search, a map query, an "open now" query, upcoming events, and concurrent
//! edits on two phones merged without a server.
//!
//! Run with `cargo run -p quartier-core --example neighbourhood`.

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use quartier_core::model::*;
use quartier_core::query::{EventsQuery, FeedQuery, OpenOffersQuery, RadiusQuery, SearchRequest};
use quartier_core::schedule::{EventTiming, OpeningRule};
use quartier_core::{Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let phone_a = Store::open(dir.path().join("phone-a.db"), StoreOptions::default())?;
    let coordinator = PersonId::new();
    let volunteer = PersonId::new();

    println!("# Quartier core — a neighbourhood in Köln-Nippes\n");
    let space = phone_a.create_space(
        SpaceMeta {
            name: LocalizedText::single("de", "Nippes hilft").with("en", "Nippes helps"),
            description: LocalizedText::single("de", "Angebote, Termine und Nachbarschaftshilfe im Veedel."),
            time_zone: "Europe/Berlin".into(),
            default_language: "de".into(),
            categories: Default::default(),
            layers: Default::default(),
        },
        coordinator,
    )?;
    println!(
        "Created space “{}” ({}), time zone {}",
        space.meta.name.best(&["de"]).unwrap_or("?"),
        space.id,
        space.meta.time_zone
    );

    let create =
        |author: PersonId, content: ItemContent| phone_a.create_item(NewItem::new(space.id, author, content));

    let tafel = create(
        coordinator,
        ItemContent {
            body: LocalizedText::single(
                "de",
                "Lebensmittelausgabe für Menschen mit wenig Geld. Bitte Berechtigungsnachweis mitbringen.",
            )
            .with("de-x-easy", "Hier bekommen Sie Essen. Es kostet fast nichts."),
            tags: ["essen".to_string(), "tafel".to_string()].into(),
            location: Some(Location::new(50.9668, 6.9526)),
            ..ItemContent::new(
                LocalizedText::single("de", "Tafel-Ausgabe an der Kempener Straße")
                    .with("tr", "Gıda bankası"),
                ItemDetails::Offer(Offer {
                    organization: Organization {
                        name: "Kölner Tafel e.V.".into(),
                        ..Default::default()
                    },
                    category: Some("food".into()),
                    schedules: vec![OpeningRule {
                        rrule: "FREQ=WEEKLY;BYDAY=TU,FR".into(),
                        opens: NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default(),
                        closes: NaiveTime::from_hms_opt(13, 0, 0).unwrap_or_default(),
                        valid_from: NaiveDate::from_ymd_opt(2026, 1, 1),
                        valid_until: None,
                        closed_on: vec![],
                        description: Some("Dienstag und Freitag".into()),
                    }],
                    languages: vec!["de".into(), "tr".into(), "ar".into()],
                    accessibility: vec!["stufenloser Zugang".into()],
                    ..Default::default()
                }),
            )
        },
    )?;
    let beratung = create(
        coordinator,
        ItemContent {
            body: LocalizedText::single(
                "de",
                "Offene Sprechstunde der Schuldnerberatung, ohne Termin. Vertraulich und kostenlos.",
            ),
            location: Some(Location::new(50.9641, 6.9553)),
            ..ItemContent::new(
                LocalizedText::single("de", "Schuldnerberatung im Bürgerzentrum Altenberger Hof"),
                ItemDetails::Offer(Offer {
                    organization: Organization {
                        name: "Caritas Köln".into(),
                        ..Default::default()
                    },
                    category: Some("counselling".into()),
                    schedules: vec![OpeningRule {
                        rrule: "FREQ=MONTHLY;BYDAY=1WE".into(),
                        opens: NaiveTime::from_hms_opt(14, 0, 0).unwrap_or_default(),
                        closes: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
                        valid_from: NaiveDate::from_ymd_opt(2026, 1, 1),
                        valid_until: None,
                        closed_on: vec![],
                        description: Some("Jeden ersten Mittwoch im Monat".into()),
                    }],
                    ..Default::default()
                }),
            )
        },
    )?;
    let cafe = create(
        volunteer,
        ItemContent {
            body: LocalizedText::single(
                "de",
                "Kaffee, Kuchen und Gespräche für Jung und Alt. Rollstuhlgerecht.",
            ),
            location: Some(Location::gps(50.9652, 6.9571, 8.0)),
            ..ItemContent::new(
                LocalizedText::single("de", "Nachbarschaftscafé in der Neusser Straße"),
                ItemDetails::Place(Place {
                    category: Some("cafe".into()),
                    address: Some(Address {
                        street: "Neusser Straße 250".into(),
                        postal_code: "50733".into(),
                        city: "Köln".into(),
                        country: "DE".into(),
                    }),
                    accessibility: [("step_free_entrance".to_string(), "yes".to_string())].into(),
                }),
            )
        },
    )?;
    create(
        volunteer,
        ItemContent {
            location: Some(Location::new(50.9701, 6.9489)),
            ..ItemContent::new(
                LocalizedText::single("de", "Spielplatz am Leipziger Platz"),
                ItemDetails::Place(Place {
                    category: Some("playground".into()),
                    ..Default::default()
                }),
            )
        },
    )?;
    let now = Utc::now();
    let next_thursday = (0..7)
        .map(|d| now.with_timezone(&Berlin).date_naive() + Duration::days(d))
        .find(|d| chrono::Datelike::weekday(d) == chrono::Weekday::Thu)
        .unwrap_or_else(|| now.date_naive());
    let repair_start = next_thursday.and_hms_opt(17, 0, 0).unwrap_or_default();
    create(
        volunteer,
        ItemContent {
            body: LocalizedText::single(
                "de",
                "Kaputte Toaster, Fahrräder, Kleidung: gemeinsam reparieren statt wegwerfen.",
            ),
            ..ItemContent::new(
                LocalizedText::single("de", "Repair-Café").with("en", "Repair café"),
                ItemDetails::Event(Event {
                    timing: EventTiming {
                        start: repair_start,
                        end: repair_start + Duration::hours(3),
                        time_zone: "Europe/Berlin".into(),
                        rrule: Some("FREQ=WEEKLY;COUNT=8".into()),
                        exdates: vec![],
                    },
                    venue: Some("Nachbarschaftscafé".into()),
                }),
            )
        },
    )?;
    create(
        volunteer,
        ItemContent {
            body: LocalizedText::single(
                "de",
                "Frau K. (82) sucht jemanden, der dienstags ihre Einkäufe in den 3. Stock trägt.",
            ),
            on_behalf_of: Some(OnBehalfOf {
                name: "Frau K.".into(),
                consent: ConsentMethod::Verbal,
                consent_given_at: now,
                witnessed_by: None,
                reach: None,
            }),
            ..ItemContent::new(
                LocalizedText::single("de", "Hilfe beim Einkaufen tragen"),
                ItemDetails::Request(Request {
                    direction: RequestDirection::Need,
                    category: "errands".into(),
                    state: RequestState::Open,
                }),
            )
        },
    )?;
    create(
        volunteer,
        ItemContent {
            body: LocalizedText::single(
                "tr",
                "Mahallede komşularla çay içmek için herkesi davet ediyoruz.",
            )
            .with("uk", "Запрошуємо сусідів на чай у нашому районі.")
            .with("ar", "ندعو جميع الجيران لشرب الشاي في الحي."),
            ..ItemContent::new(
                LocalizedText::single("tr", "Komşu çayı")
                    .with("uk", "Чай для сусідів")
                    .with("ar", "شاي الجيران"),
                ItemDetails::Post(Post {
                    post_type: PostType::Notice,
                }),
            )
        },
    )?;
    let resident = Viewer::new(PersonId::new(), Role::Resident);
    let page = phone_a.feed(&FeedQuery::new(space.id, resident))?;
    println!("\n## Feed ({} items, newest first)", page.items.len());
    for item in &page.items {
        println!(
            "- [{}] {}",
            item.kind(),
            item.content.title.best(&["de"]).unwrap_or("?")
        );
    }

    println!("\n## Search");
    for text in ["strasse", "Cafe", "komsu cay", "сусід", "reparieren -fahrrad"] {
        let hits = phone_a.search(&SearchRequest::new(space.id, resident, text))?;
        println!("“{text}” → {} hit(s)", hits.len());
        for hit in hits {
            println!(
                "    {}  …{}",
                hit.title.marked("[", "]"),
                hit.body.marked("[", "]")
            );
        }
    }
    match phone_a.search(&SearchRequest::new(space.id, resident, "\"(( -")) {
        Ok(hits) => println!("“\"(( -” → {} hit(s)", hits.len()),
        Err(e) => println!("“\"(( -” → refused: {e}"),
    }

    println!("\n## Within 300 m of the Nachbarschaftscafé");
    let near = phone_a.near(&RadiusQuery {
        space: space.id,
        viewer: resident,
        center: cafe.content.location.unwrap_or(Location::new(50.9652, 6.9571)),
        radius_m: 300.0,
        kinds: vec![],
        limit: 20.into(),
        at: None,
    })?;
    for n in near {
        println!(
            "- {:>5.0} m  {}",
            n.distance_m,
            n.item.content.title.best(&["de"]).unwrap_or("?")
        );
    }

    println!("\n## Open now?");
    let tuesday_11 = Berlin
        .with_ymd_and_hms(2026, 12, 1, 11, 0, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let first_wednesday_15 = Berlin
        .with_ymd_and_hms(2026, 12, 2, 15, 0, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    for (label, at) in [
        ("right now", now),
        ("Tue 1 Dec 2026, 11:00", tuesday_11),
        ("Wed 2 Dec 2026, 15:00", first_wednesday_15),
    ] {
        let open = phone_a.open_offers(&OpenOffersQuery {
            space: space.id,
            viewer: resident,
            at: Some(at),
        })?;
        let names: Vec<&str> = open
            .iter()
            .filter_map(|i| i.content.title.best(&["de"]))
            .collect();
        println!(
            "- {label}: {}",
            if names.is_empty() {
                "nothing open".to_string()
            } else {
                names.join(", ")
            }
        );
    }

    println!("\n## Events in the next 4 weeks");
    let events = phone_a.events_between(&EventsQuery {
        space: space.id,
        viewer: resident,
        from: now,
        to: now + Duration::weeks(4),
        limit: 10.into(),
    })?;
    for e in events {
        println!(
            "- {}  {}",
            e.start.with_timezone(&Berlin).format("%a %d.%m. %H:%M"),
            e.item.content.title.best(&["de"]).unwrap_or("?")
        );
    }

    println!("\n## Two phones edit offline, then merge");
    let phone_b = Store::open(dir.path().join("phone-b.db"), StoreOptions::default())?;
    for (doc, _) in phone_a.document_ids()? {
        phone_b.apply_changes(&phone_a.document_changes(&doc)?)?;
    }
    println!("phone B received {} documents", phone_b.document_ids()?.len());
    phone_a.update_item(
        beratung.id,
        &ItemPatch {
            title: Some(LocalizedText::single(
                "de",
                "Schuldner- und Insolvenzberatung im Altenberger Hof",
            )),
            ..Default::default()
        },
        coordinator,
    )?;
    phone_b.update_item(
        beratung.id,
        &ItemPatch {
            body: Some(LocalizedText::single(
                "de",
                "Offene Sprechstunde der Schuldnerberatung, ohne Termin. Vertraulich und kostenlos. Auch auf Türkisch.",
            )),
            ..Default::default()
        },
        volunteer,
    )?;
    let doc = beratung.id.to_string();
    let (from_a, from_b) = (phone_a.document_changes(&doc)?, phone_b.document_changes(&doc)?);
    let report_a = phone_a.apply_changes(&from_b)?;
    let report_b = phone_b.apply_changes(&from_a)?;
    println!(
        "merge on A: {} applied, {} duplicates; on B: {} applied, {} duplicates",
        report_a.applied, report_a.duplicates, report_b.applied, report_b.duplicates
    );
    let merged = phone_b.item_detail(beratung.id, &resident)?;
    println!(
        "title: {}",
        merged.item.content.title.best(&["de"]).unwrap_or("?")
    );
    println!("body:  {}", merged.item.content.body.best(&["de"]).unwrap_or("?"));
    println!(
        "same heads on both phones: {}",
        phone_a.document_heads(&doc)? == phone_b.document_heads(&doc)?
    );
    println!("history:");
    for h in merged.history {
        println!(
            "- {} by device {}…: {}",
            h.at.format("%H:%M:%S%.3f"),
            &h.device[..8.min(h.device.len())],
            h.fields.join(", ")
        );
    }
    println!(
        "\nOutbox on phone A: {} change(s) waiting for a server.",
        phone_a.outbox_len()?
    );
    let _ = tafel;
    println!(
        "\nNext: the same neighbourhood with a server, moderation, the help board and notifications:\n  cargo run -p quartier-server --example neighbourhood_life"
    );
    Ok(())
}
