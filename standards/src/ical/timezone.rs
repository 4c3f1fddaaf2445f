//! Time zones in iCalendar: a VTIMEZONE for each IANA zone an export uses, written from
//! chrono-tz's rules as the explicit transitions of the exported range; and the reading of a
//! TZID an import meets (IANA names, the path-prefixed names older Thunderbird and libical
//! write, `X-LIC-LOCATION`, and the Windows names Outlook writes for the zones our
//! neighbourhoods live in).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use quartier_domain::schedule::parse_time_zone;

use super::content_line::{Component, Writer};
use super::values::{format_local, format_utc_offset};

/// One offset in force from a moment on.
struct Span {
    /// UTC instant the offset starts.
    from: DateTime<Utc>,
    offset: i32,
    daylight: bool,
    name: String,
}

fn span_at(tz: Tz, at: DateTime<Utc>) -> Span {
    let offset = tz.offset_from_utc_datetime(&at.naive_utc());
    Span {
        from: at,
        offset: offset.fix().local_minus_utc(),
        daylight: offset.dst_offset() != Duration::zero(),
        name: offset.abbreviation().map_or_else(
            || format_utc_offset(offset.fix().local_minus_utc()),
            str::to_owned,
        ),
    }
}

fn same(a: &Span, b: &Span) -> bool {
    a.offset == b.offset && a.daylight == b.daylight && a.name == b.name
}

/// The offsets of `tz` from `from` to `to`: the one in force at `from`, then one per change.
/// Changes are found by stepping 12 hours and bisecting to the second (zones change at most a
/// few times a year, never twice within 12 hours).
fn spans(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Span> {
    let mut out = vec![span_at(tz, from)];
    let step = Duration::hours(12);
    let mut at = DateTime::from_timestamp(from.timestamp(), 0).unwrap_or(from);
    while at < to {
        let next = at + step;
        let current = span_at(tz, at);
        if !same(&current, &span_at(tz, next)) {
            // The change lies in (at, next]: bisect, in whole seconds, to its first second.
            let (mut lo, mut hi) = (at.timestamp(), next.timestamp());
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let probe = DateTime::from_timestamp(mid, 0).unwrap_or(at);
                if same(&current, &span_at(tz, probe)) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let hi = DateTime::from_timestamp(hi, 0).unwrap_or(next);
            out.push(span_at(tz, hi));
        }
        at = next;
    }
    out
}

/// Writes a VTIMEZONE for `tz` whose observances cover `[from, to]`: one STANDARD or DAYLIGHT
/// per offset in force, with its exact start (written in the offset before it, as RFC 5545
/// §3.6.5 wants). Calendar programs that know the IANA name use their own rules; the others
/// have what they need for the exported events.
pub(crate) fn write_vtimezone(writer: &mut Writer, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) {
    writer.begin("VTIMEZONE");
    writer.property("TZID", &[], tz.name());
    writer.property("X-LIC-LOCATION", &[], tz.name());
    let spans = spans(tz, from, to);
    let mut previous_offset = spans.first().map_or(0, |s| s.offset);
    for span in &spans {
        let kind = if span.daylight { "DAYLIGHT" } else { "STANDARD" };
        writer.begin(kind);
        let local_start = span.from.naive_utc() + Duration::seconds(i64::from(previous_offset));
        writer.property("DTSTART", &[], &format_local(local_start));
        writer.property("TZOFFSETFROM", &[], &format_utc_offset(previous_offset));
        writer.property("TZOFFSETTO", &[], &format_utc_offset(span.offset));
        writer.text("TZNAME", &[], &span.name);
        writer.end(kind);
        previous_offset = span.offset;
    }
    writer.end("VTIMEZONE");
}

/// The span a VTIMEZONE covers for events from `first` to `last`: whole years, from the start
/// of the first event's year to the end of the last's.
pub(crate) fn covered_range(first: DateTime<Utc>, last: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = NaiveDate::from_ymd_opt(first.year(), 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(first, |d| Utc.from_utc_datetime(&d));
    let end = NaiveDate::from_ymd_opt(last.year() + 1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(last, |d| Utc.from_utc_datetime(&d));
    (start, end)
}

/// Windows zone names (as Outlook and Exchange write them) for the zones of the places Quartier
/// is used in and of the languages it speaks; the full CLDR table is not carried.
const WINDOWS_ZONES: [(&str, &str); 22] = [
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("FLE Standard Time", "Europe/Kyiv"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Arabic Standard Time", "Asia/Baghdad"),
    ("Syria Standard Time", "Asia/Damascus"),
    ("Jordan Standard Time", "Asia/Amman"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Afghanistan Standard Time", "Asia/Kabul"),
    ("Eastern Standard Time", "America/New_York"),
    ("Central Standard Time", "America/Chicago"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("UTC", "UTC"),
];

/// The IANA zones a file's VTIMEZONEs point to through `X-LIC-LOCATION`, by TZID.
pub(crate) fn lic_locations(calendar: &Component) -> BTreeMap<String, String> {
    calendar
        .children
        .iter()
        .filter(|c| c.name == "VTIMEZONE")
        .filter_map(|c| {
            let tzid = c.property("TZID")?.value.trim().to_owned();
            let location = c.property("X-LIC-LOCATION")?.value.trim().to_owned();
            Some((tzid, location))
        })
        .collect()
}

/// The IANA zone a TZID names, or why it could not be read.
pub(crate) fn resolve_tzid(tzid: &str, locations: &BTreeMap<String, String>) -> Result<Tz, String> {
    let tzid = tzid.trim();
    if let Ok(tz) = parse_time_zone(tzid) {
        return Ok(tz);
    }
    // `/mozilla.org/20070129_1/Europe/Berlin`, `/freeassociation.sourceforge.net/Tzfile/…`:
    // the last one to three path segments.
    let segments: Vec<&str> = tzid.split('/').filter(|s| !s.is_empty()).collect();
    for take in (2..=3.min(segments.len())).rev() {
        if let Ok(tz) = parse_time_zone(&segments[segments.len() - take..].join("/")) {
            return Ok(tz);
        }
    }
    if let Some(tz) = locations.get(tzid).and_then(|name| parse_time_zone(name).ok()) {
        return Ok(tz);
    }
    if let Some((_, iana)) = WINDOWS_ZONES
        .iter()
        .find(|(windows, _)| windows.eq_ignore_ascii_case(tzid))
    {
        return parse_time_zone(iana).map_err(|e| e.to_string());
    }
    Err(format!(
        "the time zone `{}` is neither an IANA name (such as Europe/Berlin) nor described by an \
         X-LIC-LOCATION; the event cannot be placed in time",
        tzid.chars().take(60).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ical_vtimezone_lists_the_changes_of_the_range() {
        let berlin = chrono_tz::Europe::Berlin;
        let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let found = spans(berlin, from, to);
        let starts: Vec<_> = found.iter().map(|s| (s.from, s.offset, s.daylight)).collect();
        assert_eq!(
            starts,
            vec![
                (from, 3600, false),
                (Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap(), 7200, true),
                (Utc.with_ymd_and_hms(2026, 10, 25, 1, 0, 0).unwrap(), 3600, false),
            ]
        );
        let mut writer = Writer::new();
        write_vtimezone(&mut writer, berlin, from, to);
        let text = writer.finish();
        assert!(text.contains("BEGIN:DAYLIGHT\r\nDTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"), "{text}");
        assert_eq!(spans(chrono_tz::Asia::Tokyo, from, to).len(), 1);
    }

    #[test]
    fn ical_tzids_from_other_programs_resolve() {
        let none = BTreeMap::new();
        let berlin = Ok(chrono_tz::Europe::Berlin);
        assert_eq!(resolve_tzid("Europe/Berlin", &none), berlin);
        assert_eq!(
            resolve_tzid("/mozilla.org/20070129_1/Europe/Berlin", &none),
            berlin
        );
        assert_eq!(resolve_tzid("W. Europe Standard Time", &none), berlin);
        let locations = BTreeMap::from([("Mitteleuropa".to_owned(), "Europe/Berlin".to_owned())]);
        assert_eq!(resolve_tzid("Mitteleuropa", &locations), berlin);
        assert!(resolve_tzid("Mitteleuropa", &none)
            .unwrap_err()
            .contains("Mitteleuropa"));
        assert!(resolve_tzid("Berlin", &none).is_err());
    }
}
