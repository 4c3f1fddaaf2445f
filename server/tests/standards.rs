//! The server's side of the standards (`docs/standards.md`) against a real `quartier-server`:
//! a member's secret calendar feed (public events and opening hours as iCalendar, read back by
//! Python's `icalendar`), renewed and ended; and the plain web page of a public item that the
//! printed guide's QR codes lead to. `cargo test ical`, `cargo test item_page`.

use crate::common;

use chrono::{Duration, Utc};
use common::*;
use quartier_core::model::*;
use quartier_core::moderation::ModerationAction;
use quartier_core::schedule::EventTiming;

fn event(space: SpaceId, author: PersonId, title: &str, audience: Audience) -> NewItem {
    let start = (Utc::now() + Duration::days(3))
        .date_naive()
        .and_hms_opt(18, 0, 0)
        .expect("time");
    let content = ItemContent {
        audience,
        ..ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Event(Event {
                timing: EventTiming {
                    start,
                    end: start + Duration::hours(2),
                    time_zone: "Europe/Berlin".into(),
                    rrule: Some("FREQ=WEEKLY;COUNT=4".into()),
                    exdates: vec![],
                },
                venue: Some("Bürgerhaus, Turmstraße 3".into()),
            }),
        )
    };
    NewItem::new(space, author, content)
}

async fn get(url: &str) -> (u16, String, String) {
    let response = http().get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, response.text().await.expect("body"))
}

/// Python with `icalendar` reads the feed; its summaries and the number of occurrences of the
/// weekly event in the next six weeks. `None` (with a note) when the parser is not installed
/// and `QUARTIER_REQUIRE_VALIDATORS` is not set.
fn python_reads_ics(ics: &str) -> Option<String> {
    let script = r#"
import sys, datetime
try:
    import icalendar
except ImportError:
    sys.exit(77)
cal = icalendar.Calendar.from_ical(sys.stdin.read())
for ev in cal.walk("VEVENT"):
    print("SUMMARY", str(ev.get("SUMMARY")), "RRULE" if ev.get("RRULE") else "")
"#;
    let required = std::env::var_os("QUARTIER_REQUIRE_VALIDATORS").is_some();
    let spawned = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        assert!(!required, "python3 is required (QUARTIER_REQUIRE_VALIDATORS)");
        eprintln!("note: python3 missing; the feed was not read by an independent parser");
        return None;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ics.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    match out.status.code() {
        Some(77) => {
            assert!(
                !required,
                "Python icalendar is required (QUARTIER_REQUIRE_VALIDATORS)"
            );
            eprintln!("note: Python icalendar missing; the feed was not read by an independent parser");
            None
        }
        Some(0) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => panic!("icalendar could not read the feed: {out:?}\n{ics}"),
    }
}

#[tokio::test]
async fn ical_calendar_feed_is_per_member_secret_public_only_renewable_and_revocable() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    let ben = join(&url, &coord, space, Role::Resident, "Ben").await;
    for (title, audience) in [
        ("Nachbarschaftscafé", Audience::Everyone),
        ("Helferrunde", Audience::Volunteers),
    ] {
        coord
            .store
            .create_item(event(space, coord.person, title, audience))
            .expect("event");
    }
    sync_each(&[&coord, &anna, &ben]).await;

    let feed = anna
        .client
        .renew_calendar_feed(&anna.store, space)
        .await
        .expect("feed");
    assert!(feed.starts_with(&url) && feed.ends_with(".ics"), "{feed}");
    let (status, kind, ics) = get(&feed).await;
    assert_eq!(status, 200, "{ics}");
    assert!(kind.starts_with("text/calendar"), "{kind}");
    assert!(ics.contains("Nachbarschaftscaf"), "{ics}");
    assert!(
        !ics.contains("Helferrunde"),
        "a volunteers' event stays out of feeds: {ics}"
    );
    if let Some(read) = python_reads_ics(&ics) {
        assert!(read.contains("SUMMARY Nachbarschaftscafé RRULE"), "{read}");
        assert!(!read.contains("Helferrunde"), "{read}");
    }

    // Ben's feed is another address; a new one of Anna's ends her old one.
    let bens = ben
        .client
        .renew_calendar_feed(&ben.store, space)
        .await
        .expect("ben's feed");
    assert_ne!(bens, feed);
    let renewed = anna
        .client
        .renew_calendar_feed(&anna.store, space)
        .await
        .expect("renew");
    assert_ne!(renewed, feed);
    assert_eq!(get(&feed).await.0, 404, "the old address answers nothing");
    assert_eq!(get(&renewed).await.0, 200);
    anna.client
        .end_calendar_feed(&anna.store, space)
        .await
        .expect("end");
    assert_eq!(get(&renewed).await.0, 404);
    assert!(
        anna.client.end_calendar_feed(&anna.store, space).await.is_err(),
        "nothing left to end"
    );

    // A member removed from the space: their feed ends with their membership.
    assert_eq!(get(&bens).await.0, 200);
    coord
        .client
        .remove_member(&coord.store, space, ben.person)
        .await
        .expect("remove");
    assert_eq!(get(&bens).await.0, 404);

    // Back in the space by a new invite: the old address stays dead.
    let code = coord.invite(space, Role::Resident).await;
    ben.client.redeem_invite(&ben.store, &code).await.expect("rejoin");
    assert_eq!(
        get(&bens).await.0,
        404,
        "a feed ends with the membership, for good"
    );

    // Guesses and junk: 404, bounded.
    for path in [
        "/calendar/00.ics",
        "/calendar/zz.ics",
        "/calendar/x",
        &format!("/calendar/{}.ics", "a".repeat(10_000)),
    ] {
        assert_eq!(get(&format!("{url}{path}")).await.0, 404, "{path}");
    }
    // Someone who is no member gets no feed.
    let stranger = Device::register(&url, "Fremd").await;
    assert!(stranger
        .client
        .renew_calendar_feed(&stranger.store, space)
        .await
        .is_err());
}

#[tokio::test]
async fn item_page_shows_public_offers_and_events_only_escaped_with_the_app_link() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let offer = |title: &str, audience: Audience, valid_until: Option<chrono::DateTime<Utc>>| {
        let content = ItemContent {
            audience,
            valid_until,
            ..ItemContent::new(
                LocalizedText::single("de", title),
                ItemDetails::Offer(Offer {
                    organization: Organization {
                        name: "Nachbarschaftshilfe".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
            )
        };
        coord
            .store
            .create_item(NewItem::new(space, coord.person, content))
            .expect("offer")
    };
    let public = offer(
        "Tauschregal <script>alert(1)</script> & mehr",
        Audience::Everyone,
        None,
    );
    let private = offer("Schlüsselliste", Audience::Volunteers, None);
    let hidden = offer("Bald versteckt", Audience::Everyone, None);
    let expired = offer(
        "Flohmarkt letzte Woche",
        Audience::Everyone,
        Some(Utc::now() - Duration::days(1)),
    );
    // Posts for everyone are for everyone in the space, not on the web: only offers and
    // events (what the guide prints) have pages.
    let post = coord.post(space, "Nur für die Nachbarschaft", Audience::Everyone);
    coord.sync().await;
    assert_eq!(get(&format!("{url}/i/{}", post.id)).await.0, 404);

    let (status, kind, html) = get(&format!("{url}/i/{}", public.id)).await;
    assert_eq!(status, 200, "{html}");
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(
        html.contains("Tauschregal &#60;script&#62;alert(1)&#60;/script&#62; &#38; mehr"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains(r#"lang="de""#), "{html}");
    assert!(html.contains(&format!("quartier://item/{}", public.id)), "{html}");

    assert_eq!(get(&format!("{url}/i/{}", private.id)).await.0, 404);
    coord
        .store
        .moderate_item(hidden.id, ModerationAction::Hide, "später")
        .expect("hide");
    assert_eq!(
        get(&format!("{url}/i/{}", hidden.id)).await.0,
        200,
        "not hidden until synced"
    );
    coord.sync().await;
    assert_eq!(
        get(&format!("{url}/i/{}", hidden.id)).await.0,
        404,
        "hidden by the coordinators"
    );
    assert_eq!(get(&format!("{url}/i/{}", ItemId::new())).await.0, 404);
    assert_eq!(get(&format!("{url}/i/not-an-id")).await.0, 400);
    // Past its validity: no longer shown.
    assert_eq!(get(&format!("{url}/i/{}", expired.id)).await.0, 404);
}

/// Runs `quartier-server <args>` as the operator would.
fn operator(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quartier-server"))
        .args(args)
        .env("QUARTIER_LOG", "warn")
        .output()
        .expect("run quartier-server");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn count_of(output: &str, what: &str) -> usize {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{what}: ")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{what}:` line in {output}"))
}

#[tokio::test]
async fn hsds_operator_import_reaches_every_member_and_a_reimport_updates() {
    let server = Server::start();
    let proxy = common::proxy::Proxy::start(&server.url).await;
    let url = proxy.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    sync_each(&[&coord, &anna]).await;
    let data = server.data.path().to_path_buf();
    let (space_text, coord_text) = (space.to_string(), coord.person.to_string());
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../standards/tests/data/hsds/examples/service_full.json"
    );
    let import = |file: &str| {
        operator(&[
            "import",
            "hsds",
            "--data",
            data.to_str().expect("path"),
            "--space",
            &space_text,
            "--as",
            &coord_text,
            "--language",
            "en",
            file,
        ])
    };

    // Not beside a running server: it keeps documents in memory.
    let (ok, text) = import(sample);
    assert!(!ok && text.contains("stop `serve` first"), "{text}");
    let data_dir = server.kill();
    let (ok, text) = import(sample);
    assert!(ok, "{text}");
    assert_eq!(count_of(&text, "created"), 1, "{text}");
    assert!(
        count_of(&text, "skipped") >= 1,
        "the sample's own errors are named: {text}"
    );
    // The same file again: nothing new.
    let (ok, again) = import(sample);
    assert!(ok, "{again}");
    assert_eq!(
        (count_of(&again, "created"), count_of(&again, "unchanged")),
        (0, 1),
        "{again}"
    );
    // A non-member may not import; a bad file is refused whole.
    let stranger = uuid::Uuid::new_v4().to_string();
    let (ok, text) = operator(&[
        "import",
        "hsds",
        "--data",
        data.to_str().expect("path"),
        "--space",
        &space_text,
        "--as",
        &stranger,
        sample,
    ]);
    assert!(!ok && text.contains("not a member"), "{text}");
    let junk = data.join("junk.json");
    std::fs::write(&junk, b"\xff\xfe{").expect("write");
    assert!(!import(junk.to_str().expect("path")).0);

    // Anna's phone receives the imported offer at its next sync.
    let server = Server::start_in(data_dir);
    proxy.set_upstream(&server.url);
    anna.sync().await;
    let offers = {
        let mut q = quartier_core::query::FeedQuery::new(space, anna.viewer(Role::Resident));
        q.kinds = vec![ItemKind::Offer];
        anna.store.feed(&q).expect("feed").items
    };
    assert_eq!(offers.len(), 1, "{offers:?}");
    let id = offers[0].id;

    // An updated file (the service renamed) updates the same item on the server and the phones.
    let renamed =
        std::fs::read_to_string(sample)
            .expect("sample")
            .replacen("\"name\": \"", "\"name\": \"Neu: ", 1);
    let updated = server.data.path().join("renamed.json");
    std::fs::write(&updated, renamed).expect("write");
    let data_dir = server.kill();
    let (ok, text) = import(updated.to_str().expect("path"));
    assert!(ok, "{text}");
    assert_eq!(count_of(&text, "updated"), 1, "{text}");
    let server = Server::start_in(data_dir);
    proxy.set_upstream(&server.url);
    anna.sync().await;
    let item = anna
        .store
        .item_detail(id, &anna.viewer(Role::Resident))
        .expect("the same item")
        .item;
    assert!(
        item.content.title.iter().any(|(_, t)| t.starts_with("Neu: ")),
        "{item:?}"
    );

    // Export and the guide, read from the same data folder.
    let out = tempfile::tempdir().expect("temp dir");
    let exported = out.path().join("offers.json");
    let (ok, text) = operator(&[
        "export",
        "hsds",
        "--data",
        server.data.path().to_str().expect("path"),
        "--space",
        &space_text,
        "--out",
        exported.to_str().expect("path"),
    ]);
    assert!(ok, "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exported).expect("read")).expect("json");
    assert_eq!(json["contents"][0]["id"], id.to_string(), "{json}");
    let (ok, text) = operator(&[
        "guide",
        "--data",
        server.data.path().to_str().expect("path"),
        "--space",
        &space_text,
        "--language",
        "en",
        "--from",
        "2026-12-07",
        "--to",
        "2026-12-20",
        "--link-base",
        &url,
        "--out",
        out.path().to_str().expect("path"),
    ]);
    assert!(ok, "{text}");
    assert!(std::fs::read(out.path().join("guide.pdf"))
        .expect("pdf")
        .starts_with(b"%PDF"));
    assert!(text.contains("1 offers"), "{text}");
}
