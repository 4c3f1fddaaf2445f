//! The printed guide, checked from outside: the PDF parses with poppler's `pdftotext` and holds
//! the entries and this week's opening hours (worked out here from the sample's plain specs, not
//! with the recurrence engine), its QR codes decode with `zbarimg` to each entry's link, the A3
//! poster and large print parse too, the Arabic guide extracts in logical order, and the HTML
//! carries `lang`, `dir`, headings and alt texts. `cargo test -p quartier-guide guide`.
//!
//! Without poppler-utils or zbar-tools a test prints a note and returns, unless
//! `QUARTIER_REQUIRE_VALIDATORS` is set (as `scripts/test-all` and CI do), where it fails.

#[path = "common/sample.rs"]
mod sample;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{Datelike, Duration as Days, NaiveDate};
use quartier_guide::{
    render_html, render_pdf, GuideError, GuideOptions, LinkScheme, PaperFormat, MAX_OFFERS,
};
use sample::{event_specs, offer_specs, OfferSpec};

/// Whether the external tools are there; a note (or, when required, a failure) otherwise.
fn tools(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| Command::new(name).arg("-v").output().is_err())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("QUARTIER_REQUIRE_VALIDATORS").is_none(),
        "{missing:?} missing (Debian: poppler-utils, zbar-tools) and QUARTIER_REQUIRE_VALIDATORS is set"
    );
    eprintln!("note: {missing:?} not installed (poppler-utils, zbar-tools); check skipped");
    false
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command.output().expect("the tool runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The PDF's text as `pdftotext` gives it, bidi embedding marks dropped and whitespace
/// collapsed (a title wrapped over two lines reads as one).
fn pdf_text(pdf: &[u8], dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).expect("write the PDF");
    let text = run(Command::new("pdftotext").arg(&path).arg("-"));
    let text = String::from_utf8(text).expect("pdftotext writes UTF-8");
    text.chars()
        .filter(|c| !('\u{202A}'..='\u{202E}').contains(c))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// This week's opening lines of an offer, from its spec by plain date arithmetic: the 7 days
/// from the guide's first day, on the spec's weekdays, not on its closed day, and for an
/// every-other-week offer only an even number of weeks after its anchor.
fn expected_hours(spec: &OfferSpec, weekdays: [&str; 7]) -> Vec<String> {
    let mut lines = Vec::new();
    for offset in 0..7 {
        let day = sample::from() + Days::days(offset);
        if !spec.days.contains(&day.weekday()) {
            continue;
        }
        if spec.closed_on.map(|(y, m, d)| sample::date(y, m, d)) == Some(day) {
            continue;
        }
        if let Some((y, m, d)) = spec.every_other_week_from {
            let anchor: NaiveDate = sample::date(y, m, d);
            let weeks = (day - anchor).num_days();
            if weeks < 0 || weeks % 14 != 0 {
                continue;
            }
        }
        lines.push(format!(
            "{} {:02}:{:02}–{:02}:{:02}",
            weekdays[day.weekday().num_days_from_monday() as usize],
            spec.opens.0,
            spec.opens.1,
            spec.closes.0,
            spec.closes.1
        ));
    }
    lines
}

const DE_WEEKDAYS: [&str; 7] = ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"];

#[test]
fn guide_pdf_lists_entries_and_this_weeks_opening_hours() {
    let guide = render_pdf(&sample::request("de", GuideOptions::default())).expect("the guide renders");
    assert_eq!(guide.summary.offers_printed, 6);
    assert_eq!(guide.summary.events_printed, 3);
    assert!(guide.summary.problems.is_empty(), "{:?}", guide.summary.problems);
    if !tools(&["pdftotext"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let text = pdf_text(&guide.bytes, dir.path(), "de");
    for spec in offer_specs() {
        let title = spec.title("de");
        assert!(text.contains(title), "title {title:?} missing from:\n{text}");
        let hours = expected_hours(&spec, DE_WEEKDAYS);
        for line in &hours {
            assert!(text.contains(line), "{title}: {line:?} missing from:\n{text}");
        }
        assert!(text.contains(spec.organization), "{title}: organisation missing");
    }
    // The sample's specifics, spelled out: the food bank's Friday is a holiday, the German
    // course is on in its second week.
    assert!(text.contains("Di 10:00–13:30"), "{text}");
    assert!(
        !text.contains("Fr 10:00–13:30"),
        "a closed day is printed:\n{text}"
    );
    assert!(text.contains("Do 14:00–16:30"), "{text}");
    for spec in event_specs() {
        assert!(
            text.contains(spec.title("de")),
            "event {:?} missing",
            spec.title("de")
        );
    }
    // The weekly repair café: both Thursdays of the range, in Berlin time.
    assert!(text.contains("Do 07.05. 18:00–20:00"), "{text}");
    assert!(text.contains("Do 14.05. 18:00–20:00"), "{text}");
    assert!(text.contains("Sa 16.05. 14:00–22:00"), "{text}");
    for number in ["112", "110", "0800 111 0 111", "0231 123 45 67"] {
        assert!(text.contains(number), "number {number} missing");
    }
    assert!(text.contains("Seite 1 / 2"), "{text}");
}

#[test]
fn guide_qr_codes_decode_to_each_entrys_link() {
    let guide = render_pdf(&sample::request("de", GuideOptions::default())).expect("the guide renders");
    if !tools(&["pdftoppm", "zbarimg"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pdf = dir.path().join("guide.pdf");
    std::fs::write(&pdf, &guide.bytes).expect("write the PDF");
    run(Command::new("pdftoppm")
        .args(["-png", "-r", "150"])
        .arg(&pdf)
        .arg(dir.path().join("page")));
    let mut decoded = BTreeSet::new();
    for entry in std::fs::read_dir(dir.path()).expect("list pages") {
        let path = entry.expect("a page").path();
        if path.extension().is_some_and(|e| e == "png") {
            let out = Command::new("zbarimg")
                .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
                .arg(&path)
                .output()
                .expect("zbarimg runs");
            decoded.extend(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned));
        }
    }
    let expected: BTreeSet<String> = offer_specs()
        .iter()
        .map(OfferSpec::link)
        .chain(event_specs().iter().map(|e| e.link()))
        .collect();
    assert_eq!(decoded, expected);
}

#[test]
fn guide_a3_poster_and_large_print_parse() {
    let poster = render_pdf(&sample::request(
        "de",
        GuideOptions {
            paper: PaperFormat::A3Poster,
            ..GuideOptions::default()
        },
    ))
    .expect("the poster renders");
    let large = render_pdf(&sample::request(
        "de",
        GuideOptions {
            large_print: true,
            ..GuideOptions::default()
        },
    ))
    .expect("the large print renders");
    let normal = render_pdf(&sample::request("de", GuideOptions::default())).expect("renders");
    assert!(large.pages > normal.pages, "{} vs {}", large.pages, normal.pages);
    assert!(poster.pages <= normal.pages);
    if !tools(&["pdftotext", "pdfinfo"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, guide, size) in [("poster", &poster, "(A3)"), ("large", &large, "(A4)")] {
        let text = pdf_text(&guide.bytes, dir.path(), name);
        for spec in offer_specs() {
            assert!(
                text.contains(spec.title("de")),
                "{name}: {:?} missing",
                spec.title("de")
            );
            for line in expected_hours(&spec, DE_WEEKDAYS) {
                assert!(text.contains(&line), "{name}: {line:?} missing");
            }
        }
        let info = run(Command::new("pdfinfo").arg(dir.path().join(format!("{name}.pdf"))));
        let info = String::from_utf8_lossy(&info);
        assert!(info.contains(size), "{name}: page size not {size}:\n{info}");
    }
}

#[test]
fn guide_in_arabic_is_shaped_right_to_left_and_extracts_in_logical_order() {
    let guide = render_pdf(&sample::request("ar", GuideOptions::default())).expect("renders");
    if !tools(&["pdftotext"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let text = pdf_text(&guide.bytes, dir.path(), "ar");
    for spec in offer_specs() {
        let title = spec.title("ar");
        assert!(text.contains(title), "title {title:?} missing from:\n{text}");
    }
    for spec in event_specs() {
        assert!(
            text.contains(spec.title("ar")),
            "event {:?} missing",
            spec.title("ar")
        );
    }
    // Labels with lam-alef ligatures come back with their letters in order.
    for label in ["مفتوح هذا الأسبوع", "الإدخال", "الطوارئ والإطفاء والإسعاف"]
    {
        assert!(text.contains(label), "{label:?} missing from:\n{text}");
    }
    // Hours in an Arabic line: the weekday, and the span as printed (poppler gives the numbers
    // of a right-to-left line in visual order: closing time first).
    assert!(text.contains("12:00–09:00 الاثنين"), "{text}");
    // A phone number stays one left-to-right unit.
    assert!(text.contains("0231 123 45 67"), "{text}");
}

#[test]
fn guide_in_turkish_and_ukrainian_prints_their_titles_and_labels() {
    if !tools(&["pdftotext"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (language, label, weekday) in [
        ("tr", "Bu hafta açık", "Pzt 09:00–12:00"),
        ("uk", "Відчинено цього тижня", "Пн 09:00–12:00"),
    ] {
        let guide = render_pdf(&sample::request(language, GuideOptions::default())).expect("renders");
        let text = pdf_text(&guide.bytes, dir.path(), language);
        for spec in offer_specs() {
            assert!(
                text.contains(spec.title(language)),
                "{language}: {:?} missing",
                spec.title(language)
            );
        }
        assert!(text.contains(label), "{language}: {label:?} missing");
        assert!(text.contains(weekday), "{language}: {weekday:?} missing:\n{text}");
    }
}

#[test]
fn guide_in_easy_language_uses_the_easy_texts() {
    let options = GuideOptions {
        easy_language: true,
        ..GuideOptions::default()
    };
    let html = render_html(&sample::request("de", options))
        .expect("renders")
        .html;
    assert!(html.contains("<h3>Hilfe bei Briefen vom Amt</h3>"));
    assert!(html.contains("Wir helfen Ihnen."));
    assert!(!html.contains("<h3>Sozialberatung</h3>"));
    // An offer without an easy text keeps its ordinary one.
    assert!(html.contains("<h3>Deutschkurs für Frauen mit Kinderbetreuung</h3>"));
    assert!(html.contains("class=\"a4 easy-language\""));
    if !tools(&["pdftotext"]) {
        return;
    }
    let guide = render_pdf(&sample::request("de", options)).expect("renders");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let text = pdf_text(&guide.bytes, dir.path(), "easy");
    assert!(text.contains("Hilfe bei Briefen vom Amt"), "{text}");
    assert!(text.contains("Essen für wenig Geld"), "{text}");
}

#[test]
fn guide_html_is_accessible() {
    let de = render_html(&sample::request("de", GuideOptions::default()))
        .expect("renders")
        .html;
    assert!(de.starts_with("<!DOCTYPE html>\n<html lang=\"de\" dir=\"ltr\">"));
    assert_eq!(de.matches("<h1>").count(), 1);
    assert_eq!(de.matches("<h2 ").count(), 3, "numbers, offers, events");
    assert_eq!(de.matches("<h3>").count(), 9, "one per entry");
    assert_eq!(de.matches("<svg class=\"qr\" role=\"img\"").count(), 9);
    assert!(de.contains("aria-label=\"QR-Code: Link zu „Sozialberatung“\""));
    assert!(de.contains("<title>QR-Code: Link zu „Sozialberatung“</title>"));
    for spec in offer_specs() {
        assert!(
            de.contains(&format!("href=\"{}\"", spec.link())),
            "{}",
            spec.link()
        );
    }
    // Entries whose text is in another language say so.
    assert!(de.contains("<article lang=\"uk\">\n"));
    assert_eq!(
        de.matches("<article lang=").count(),
        1,
        "only the Ukrainian title is in another language"
    );
    assert!(de.contains("<a href=\"tel:112\">112</a>"));
    assert!(de.contains("@media print"));
    assert!(de.contains("@page { size: A4 portrait;"));
    // This week's hours as a list.
    assert!(de.contains("<li>Mo 09:00–12:00</li>"));

    let ar = render_html(&sample::request("ar", GuideOptions::default()))
        .expect("renders")
        .html;
    assert!(ar.contains("<html lang=\"ar\" dir=\"rtl\">"));
    assert!(ar.contains("<h3>استشارة اجتماعية</h3>"));
    assert!(ar.contains("aria-label=\"رمز QR: رابط إلى «استشارة اجتماعية»\""));

    let large = render_html(&sample::request(
        "de",
        GuideOptions {
            paper: PaperFormat::A3Poster,
            large_print: true,
            easy_language: false,
        },
    ))
    .expect("renders")
    .html;
    assert!(large.contains("<body class=\"a3 large-print\">"));
    assert!(large.contains("@page { size: A3 portrait;"));
    assert!(large.contains("body.large-print {"));
}

#[test]
fn guide_prints_nothing_that_is_not_public() {
    let mut request = sample::request("de", GuideOptions::default());
    request.offers.push(sample::members_only_offer());
    let html = render_html(&request).expect("renders");
    assert_eq!(html.summary.not_public, 1);
    assert!(!html.html.contains("Interne Teamsitzung"));
    assert!(
        !html.html.contains("0231 000 00 01"),
        "a members-only contact was printed"
    );
    // Items of another kind in a list are skipped and counted.
    let mut request = sample::request("de", GuideOptions::default());
    request.offers.push(event_specs()[0].item());
    let pdf = render_pdf(&request).expect("renders");
    assert_eq!(pdf.summary.wrong_kind, 1);
    assert_eq!(pdf.summary.offers_printed, 6);
}

#[test]
fn guide_of_ten_thousand_offers_is_capped_and_says_what_is_left_out() {
    let mut request = sample::request("de", GuideOptions::default());
    request.offers = sample::many_offers(10_000);
    let started = Instant::now();
    let pdf = render_pdf(&request).expect("renders");
    let html = render_html(&request).expect("renders");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(120), "took {took:?}");
    assert_eq!(pdf.summary.offers_printed, MAX_OFFERS);
    assert_eq!(pdf.summary.offers_left_out, 10_000 - MAX_OFFERS);
    let note = format!("{} weitere Angebote und 0 weitere Termine", 10_000 - MAX_OFFERS);
    assert!(html.html.contains(&note));
    eprintln!(
        "10 000 offers: {} pages, {} bytes, {took:?}",
        pdf.pages,
        pdf.bytes.len()
    );
    if !tools(&["pdftotext"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("big.pdf");
    std::fs::write(&path, &pdf.bytes).expect("write the PDF");
    let last = pdf.pages.to_string();
    let text = run(Command::new("pdftotext")
        .args(["-f", &last, "-l", &last])
        .arg(&path)
        .arg("-"));
    let text = String::from_utf8_lossy(&text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains(&note),
        "the last page does not say what is left out:\n{text}"
    );
}

#[test]
fn guide_request_errors_are_typed() {
    let mut request = sample::request("de", GuideOptions::default());
    request.to = sample::date(2026, 5, 1);
    assert!(matches!(
        render_pdf(&request),
        Err(GuideError::InvalidDateRange { .. })
    ));
    request.to = sample::date(2027, 5, 1);
    assert!(matches!(
        render_html(&request),
        Err(GuideError::InvalidDateRange { .. })
    ));
    let mut request = sample::request("de", GuideOptions::default());
    request.time_zone = "Mars/Olympus".to_owned();
    assert!(matches!(render_pdf(&request), Err(GuideError::TimeZone(_))));
    let mut request = sample::request("de", GuideOptions::default());
    request.language = "deutsch!".to_owned();
    let error = render_pdf(&request).expect_err("a bad tag is refused");
    assert!(matches!(error, GuideError::InvalidLanguage(_)));
    assert!(error.to_string().contains("BCP-47"), "{error}");
    for bad in [
        "ftp://x.example/{item}",
        "https://x.example/i/",
        "https://x.example/{item} x",
    ] {
        assert!(
            matches!(LinkScheme::new(bad), Err(GuideError::InvalidLinkScheme { .. })),
            "{bad}"
        );
    }
    let scheme = LinkScheme::new("https://q.example/open?item={item}").expect("valid");
    let id = offer_specs()[0].item_id();
    assert_eq!(scheme.link(id), format!("https://q.example/open?item={id}"));
    assert_eq!(
        LinkScheme::from_base("https://q.example/")
            .expect("valid")
            .template(),
        "https://q.example/i/{item}"
    );
}

#[test]
fn guide_reports_an_unreadable_opening_rule_and_prints_the_rest() {
    let mut request = sample::request("de", GuideOptions::default());
    if let quartier_domain::model::ItemDetails::Offer(offer) = &mut request.offers[0].content.details {
        offer.schedules[0].rrule = "FREQ=SOMETIMES".to_owned();
    }
    let html = render_html(&request).expect("renders");
    assert_eq!(html.summary.problems.len(), 1);
    assert_eq!(html.summary.problems[0].0, offer_specs()[0].item_id());
    assert!(html.html.contains("Keine festen Öffnungszeiten"));
    assert_eq!(html.summary.offers_printed, 6);
}
