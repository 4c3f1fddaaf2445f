//! iCalendar value types Quartier reads and writes: DATE, DATE-TIME (local, UTC or with a
//! TZID), DURATION and UTC-OFFSET, and the rewriting of an RRULE's UNTIL into the form RFC 5545
//! requires for a given DTSTART. Recurrence itself is the domain's (`schedule`); nothing here
//! expands a rule.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use quartier_domain::schedule::local_to_utc;

/// A DATE or DATE-TIME value as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateValue {
    /// `VALUE=DATE`: `20260305`.
    Date(NaiveDate),
    /// A local date-time without zone: `20260305T190000` (floating, or with a TZID parameter).
    Local(NaiveDateTime),
    /// `20260305T180000Z`.
    Utc(DateTime<Utc>),
}

/// Reads `YYYYMMDD`, `YYYYMMDDTHHMMSS` or `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_date_value(text: &str) -> Result<DateValue, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{}` is not a DATE (20260305) or DATE-TIME (20260305T190000, 20260305T180000Z)",
            text.chars().take(40).collect::<String>()
        )
    };
    if !text.is_ascii() {
        return Err(bad());
    }
    match text.len() {
        8 => NaiveDate::parse_from_str(text, "%Y%m%d")
            .map(DateValue::Date)
            .map_err(|_| bad()),
        15 => NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S")
            .map(DateValue::Local)
            .map_err(|_| bad()),
        16 if text.ends_with(['Z', 'z']) => NaiveDateTime::parse_from_str(&text[..15], "%Y%m%dT%H%M%S")
            .map(|t| DateValue::Utc(Utc.from_utc_datetime(&t)))
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

pub(crate) fn format_date(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

pub(crate) fn format_local(time: NaiveDateTime) -> String {
    time.format("%Y%m%dT%H%M%S").to_string()
}

pub(crate) fn format_utc(time: DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `+0100`, `-0330`, `+053028` (seconds only when there are any).
pub(crate) fn format_utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let abs = seconds.unsigned_abs();
    let (h, m, s) = (abs / 3600, (abs % 3600) / 60, abs % 60);
    if s == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{s:02}")
    }
}

/// A DURATION (RFC 5545 §3.3.6): nominal days and weeks (added on the calendar, so P1D is the
/// same local time the next day across a DST change) and exact seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IcalDuration {
    pub days: i64,
    pub seconds: i64,
}

/// Reads `P1W`, `P1D`, `PT1H30M`, `P1DT12H`, `-PT15M`; refuses negative or empty ones for an
/// event's length.
pub(crate) fn parse_duration(text: &str) -> Result<IcalDuration, String> {
    let bad = || {
        format!(
            "`{}` is not a DURATION such as PT1H30M, P1D or P1W",
            text.chars().take(40).collect::<String>()
        )
    };
    let text = text.trim();
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.starts_with('-') {
        return Err(format!("{}: an event cannot last a negative time", bad()));
    }
    let Some(body) = body.strip_prefix(['P', 'p']) else {
        return Err(bad());
    };
    let (mut days, mut seconds) = (0_i64, 0_i64);
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    let mut any_time = false;
    for c in body.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' => number.push(c),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit @ ('W' | 'D' | 'H' | 'M' | 'S') => {
                // At most nine digits keeps every product far from overflowing.
                if number.is_empty() || number.len() > 9 {
                    return Err(bad());
                }
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                any = true;
                any_time |= in_time;
                match (unit, in_time) {
                    ('W', false) => days += n * 7,
                    ('D', false) => days += n,
                    ('H', true) => seconds += n * 3600,
                    ('M', true) => seconds += n * 60,
                    ('S', true) => seconds += n,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    if !any || !number.is_empty() || (in_time && !any_time) {
        return Err(bad());
    }
    Ok(IcalDuration { days, seconds })
}

/// How DTSTART is written, which decides the form UNTIL must take (RFC 5545 §3.3.10).
#[derive(Clone, Copy, Debug)]
pub(crate) enum StartForm {
    /// DTSTART is a DATE: UNTIL is a DATE.
    Date,
    /// DTSTART is local time with a TZID: UNTIL is UTC.
    Zoned(Tz),
    /// DTSTART is UTC: UNTIL is UTC.
    Utc,
}

/// The RRULE with its UNTIL written in the form `form` needs, and, when `limit` is given, no
/// occurrence starting after that UTC instant. The domain reads UNTIL in any of the three
/// forms; calendar programs (and RFC 5545) do not.
pub(crate) fn rewrite_until(
    rrule: &str,
    form: StartForm,
    limit: Option<DateTime<Utc>>,
) -> Result<String, String> {
    let mut parts: Vec<String> = Vec::new();
    let mut until: Option<DateTime<Utc>> = None;
    let mut date_until: Option<NaiveDate> = None;
    for part in rrule.split(';').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((name, value)) if name.eq_ignore_ascii_case("UNTIL") => {
                let parsed = parse_date_value(value)?;
                match (parsed, form) {
                    (DateValue::Date(d), StartForm::Date) => date_until = Some(d),
                    (DateValue::Local(l), StartForm::Date) => date_until = Some(l.date()),
                    (DateValue::Utc(u), StartForm::Date) => date_until = Some(u.date_naive()),
                    (value, StartForm::Zoned(tz)) => until = Some(instant_bound(value, tz)),
                    (value, StartForm::Utc) => until = Some(instant_bound(value, chrono_tz::UTC)),
                }
            }
            _ => parts.push(part.to_owned()),
        }
    }
    if let Some(limit) = limit {
        match form {
            StartForm::Date => {
                let day = limit.date_naive();
                date_until = Some(date_until.map_or(day, |d| d.min(day)));
            }
            _ => until = Some(until.map_or(limit, |u| u.min(limit))),
        }
    }
    if let Some(day) = date_until {
        parts.push(format!("UNTIL={}", format_date(day)));
    } else if let Some(instant) = until {
        parts.push(format!("UNTIL={}", format_utc(instant)));
    }
    Ok(parts.join(";"))
}

/// The last instant an UNTIL admits, for a series in `tz`: a date ends at the last second of
/// that local day, a floating time is read in `tz`.
fn instant_bound(value: DateValue, tz: Tz) -> DateTime<Utc> {
    match value {
        DateValue::Utc(instant) => instant,
        DateValue::Local(local) => local_to_utc(tz, local),
        DateValue::Date(date) => end_of_local_day(tz, date),
    }
}

/// The last whole second of local `date` in `tz`.
pub(crate) fn end_of_local_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    match date.succ_opt() {
        Some(next) => local_to_utc(tz, next.and_time(NaiveTime::MIN)) - Duration::seconds(1),
        None => local_to_utc(tz, date.and_time(NaiveTime::MIN)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ical_values_parse_and_format() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
        assert_eq!(parse_date_value("20260305"), Ok(DateValue::Date(date)));
        let local = date.and_hms_opt(19, 0, 0).unwrap();
        assert_eq!(parse_date_value("20260305T190000"), Ok(DateValue::Local(local)));
        assert_eq!(
            parse_date_value("20260305T190000Z"),
            Ok(DateValue::Utc(Utc.from_utc_datetime(&local)))
        );
        for bad in [
            "2026-03-05",
            "20261305",
            "20260305T250000",
            "x",
            "20260305T190000+01",
        ] {
            assert!(parse_date_value(bad).is_err(), "{bad}");
        }
        assert_eq!(format_utc_offset(3600), "+0100");
        assert_eq!(format_utc_offset(-12_600), "-0330");
        assert_eq!(format_utc_offset(3208), "+005328");
    }

    #[test]
    fn ical_durations() {
        assert_eq!(
            parse_duration("PT1H30M"),
            Ok(IcalDuration {
                days: 0,
                seconds: 5400
            })
        );
        assert_eq!(parse_duration("P1W"), Ok(IcalDuration { days: 7, seconds: 0 }));
        assert_eq!(parse_duration("P1DT2S"), Ok(IcalDuration { days: 1, seconds: 2 }));
        for bad in ["-PT1H", "P", "PT", "1H", "PT1D", "P1H", "P99999999999D", "P1DT"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ical_until_is_rewritten_for_the_start_form() {
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            rewrite_until(
                "FREQ=WEEKLY;UNTIL=20260326;BYDAY=TH",
                StartForm::Zoned(berlin),
                None
            )
            .unwrap(),
            "FREQ=WEEKLY;BYDAY=TH;UNTIL=20260326T225959Z"
        );
        assert_eq!(
            rewrite_until("FREQ=DAILY;UNTIL=20260326T190000", StartForm::Date, None).unwrap(),
            "FREQ=DAILY;UNTIL=20260326"
        );
        let limit = Utc.with_ymd_and_hms(2026, 3, 20, 0, 0, 0).unwrap();
        assert_eq!(
            rewrite_until("FREQ=DAILY;UNTIL=20260326T190000Z", StartForm::Utc, Some(limit)).unwrap(),
            "FREQ=DAILY;UNTIL=20260320T000000Z"
        );
        assert_eq!(
            rewrite_until("FREQ=DAILY;COUNT=3", StartForm::Utc, None).unwrap(),
            "FREQ=DAILY;COUNT=3"
        );
    }
}
