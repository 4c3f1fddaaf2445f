//! RRULE text: strict parsing and bounded expansion on local wall-clock time.
//!
//! The `rrule` crate does the calendar arithmetic. It is always run in a
//! "floating" frame: local wall-clock times are fed to it as if they were UTC,
//! so the occurrences it returns are local wall-clock times, which callers
//! then map to instants with [`super::local_to_utc`]. `COUNT` and `UNTIL` are
//! taken out of the rule before it reaches the crate and applied by the
//! callers, which lets `UNTIL` be given in any RFC 5545 form and lets a
//! `COUNT`-free series start its expansion near the requested window instead
//! of at its first occurrence.

use chrono::{
    DateTime, Datelike, Duration, Month, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
    Weekday,
};
use rrule::{Frequency, NWeekday, RRule, Unvalidated};

use super::{zone, ScheduleError, MAX_COUNT, MAX_EXPANSION, SUPPORTED_YEARS};

/// Days in 400 Gregorian years, after which the calendar repeats exactly.
const GREGORIAN_CYCLE_DAYS: i64 = 146_097;

/// Longest RRULE text accepted.
const MAX_RULE_LEN: usize = 1024;

/// Rule parts of RFC 5545 section 3.3.10, upper case.
const RULE_PARTS: [&str; 14] = [
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
];

/// The `UNTIL` bound, in whichever RFC 5545 form it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// `UNTIL=YYYYMMDD`: last local date on which an occurrence may start.
    Date(NaiveDate),
    /// `UNTIL=YYYYMMDDTHHMMSS`: latest local start time.
    Floating(NaiveDateTime),
    /// `UNTIL=YYYYMMDDTHHMMSSZ`: latest start instant.
    Utc(DateTime<Utc>),
}

impl Until {
    /// Whether an occurrence starting at local time `local`, i.e. at instant
    /// `instant`, is inside the bound.
    pub(crate) fn admits(&self, local: NaiveDateTime, instant: DateTime<Utc>) -> bool {
        match *self {
            Until::Date(date) => local.date() <= date,
            Until::Floating(until) => local <= until,
            Until::Utc(until) => instant <= until,
        }
    }
}

/// A parsed, validated RRULE.
#[derive(Debug, Clone)]
pub(crate) struct Recurrence {
    /// The rule without `COUNT` and `UNTIL`.
    base: RRule<Unvalidated>,
    pub(crate) count: Option<u32>,
    pub(crate) until: Option<Until>,
}

/// Counts examined recurrence instances against a limit, normally
/// [`MAX_EXPANSION`].
pub(crate) struct Budget {
    what: &'static str,
    used: usize,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(what: &'static str) -> Self {
        Self::with_limit(what, MAX_EXPANSION)
    }

    pub(crate) fn with_limit(what: &'static str, limit: usize) -> Self {
        Budget { what, used: 0, limit }
    }

    pub(crate) fn spend(&mut self) -> Result<(), ScheduleError> {
        self.used += 1;
        if self.used > self.limit {
            Err(ScheduleError::TooManyOccurrences {
                what: self.what,
                limit: self.limit,
            })
        } else {
            Ok(())
        }
    }
}

impl Recurrence {
    /// Parses a bare RRULE value such as `FREQ=WEEKLY;BYDAY=MO,WE`.
    pub(crate) fn parse(text: &str) -> Result<Self, ScheduleError> {
        let fail = |reason: String| ScheduleError::InvalidRrule {
            rule: text.to_owned(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(fail(
                "the rule is empty; expected something like \"FREQ=WEEKLY;BYDAY=MO\"".into(),
            ));
        }
        if text.len() > MAX_RULE_LEN {
            return Err(fail(format!("longer than {MAX_RULE_LEN} bytes")));
        }
        if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(fail(format!(
                "unexpected character {c:?}: a rule is plain ASCII without spaces or line breaks"
            )));
        }
        if text.contains(':') {
            return Err(fail(
                "contains ':'; give only the RRULE value, without a property name such as \
                 \"RRULE:\" or \"DTSTART:\""
                    .into(),
            ));
        }

        let mut seen: Vec<String> = Vec::new();
        let mut kept: Vec<String> = Vec::new();
        let mut count = None;
        let mut until = None;
        for part in text.split(';').filter(|part| !part.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(fail(format!("{part:?} is not a NAME=VALUE pair")));
            };
            let name = name.to_ascii_uppercase();
            if !RULE_PARTS.contains(&name.as_str()) {
                return Err(fail(format!("unknown rule part {name:?}")));
            }
            if seen.contains(&name) {
                return Err(fail(format!("{name} appears more than once")));
            }
            if value.is_empty() {
                return Err(fail(format!("{name} has no value")));
            }
            match name.as_str() {
                "COUNT" => count = Some(parse_count(value).map_err(fail)?),
                "UNTIL" => until = Some(parse_until(value).map_err(fail)?),
                "INTERVAL" => {
                    match value.parse::<u16>() {
                        Ok(n) if n >= 1 => {}
                        _ => {
                            return Err(fail(format!(
                                "INTERVAL must be a whole number from 1 to 65535, not {value:?}"
                            )))
                        }
                    }
                    kept.push(format!("{name}={value}"));
                }
                "BYMONTHDAY" => {
                    // The crate silently drops 0, which would change the rule.
                    if value.split(',').any(|day| day.parse::<i64>() == Ok(0)) {
                        return Err(fail("BYMONTHDAY values are 1 to 31 or -31 to -1, not 0".into()));
                    }
                    kept.push(format!("{name}={value}"));
                }
                _ => kept.push(format!("{name}={value}")),
            }
            seen.push(name);
        }
        if !seen.iter().any(|name| name == "FREQ") {
            return Err(fail(
                "FREQ is missing; every rule needs one, e.g. \"FREQ=WEEKLY\"".into(),
            ));
        }
        if count.is_some() && until.is_some() {
            return Err(fail("COUNT and UNTIL must not both be given (RFC 5545)".into()));
        }

        let base: RRule<Unvalidated> = kept
            .join(";")
            .parse()
            .map_err(|e: rrule::RRuleError| fail(e.to_string()))?;
        match base.get_freq() {
            Frequency::Daily | Frequency::Weekly | Frequency::Monthly | Frequency::Yearly => {}
            finer => {
                return Err(fail(format!(
                    "FREQ={finer} is finer than daily; only DAILY, WEEKLY, MONTHLY and YEARLY \
                     are supported"
                )))
            }
        }
        // Let the crate check value ranges and part/frequency combinations.
        // Without UNTIL the outcome does not depend on the start used here.
        let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if let Some(probe) = probe {
            base.clone()
                .validate(probe.with_timezone(&rrule::Tz::UTC))
                .map_err(|e| fail(e.to_string()))?;
        }
        Ok(Recurrence { base, count, until })
    }

    pub(crate) fn interval(&self) -> u16 {
        self.base.get_interval()
    }

    /// Whether BYHOUR, BYMINUTE or BYSECOND is present.
    pub(crate) fn has_time_parts(&self) -> bool {
        !self.base.get_by_hour().is_empty()
            || !self.base.get_by_minute().is_empty()
            || !self.base.get_by_second().is_empty()
    }

    /// Whether the days picked depend on the start date, because RFC 5545
    /// takes missing day parts from DTSTART (e.g. `FREQ=WEEKLY` alone repeats
    /// on DTSTART's weekday).
    pub(crate) fn days_depend_on_start(&self) -> bool {
        matches!(
            self.base.get_freq(),
            Frequency::Weekly | Frequency::Monthly | Frequency::Yearly
        ) && self.lacks_day_parts()
    }

    fn lacks_day_parts(&self) -> bool {
        self.base.get_by_week_no().is_empty()
            && self.base.get_by_year_day().is_empty()
            && self.base.get_by_month_day().is_empty()
            && self.base.get_by_weekday().is_empty()
    }

    /// Local occurrence times of the series starting at `dtstart`, in order,
    /// ignoring COUNT and UNTIL (the caller applies them).
    ///
    /// Occurrences before `not_before` may be skipped: without COUNT the
    /// expansion starts at the last period boundary before it instead of at
    /// `dtstart`. `not_after` promises that the caller stops before any
    /// occurrence after it; it bounds how far a rule that rarely or never
    /// matches is searched (to about 400 years past it).
    ///
    /// `dtstart` must be whole seconds in a supported year.
    pub(crate) fn occurrences(
        &self,
        dtstart: NaiveDateTime,
        not_before: Option<NaiveDateTime>,
        not_after: Option<NaiveDateTime>,
    ) -> Result<impl Iterator<Item = NaiveDateTime>, ScheduleError> {
        let anchor = match not_before {
            Some(target) if self.count.is_none() && target > dtstart => self.aligned_anchor(dtstart, target),
            _ => dtstart,
        };
        // The crate searches for the next match up to the year 10000. The
        // Gregorian calendar repeats every 400 years (146097 days, a whole
        // number of weeks), so the series is moved by whole cycles to end
        // its search soon after `not_after`, and moved back on the way out.
        let cycles = not_after.map_or(0, |end| {
            let latest = end.year().max(anchor.year());
            ((*SUPPORTED_YEARS.end() - latest) / 400).max(0)
        });
        let shift = Duration::days(i64::from(cycles) * GREGORIAN_CYCLE_DAYS);
        let moved = |t: NaiveDateTime| t.checked_add_signed(shift).unwrap_or(t);
        let (dtstart_moved, anchor_moved) = (moved(dtstart), moved(anchor));
        let start = Utc
            .from_utc_datetime(&anchor_moved)
            .with_timezone(&rrule::Tz::UTC);
        let set = self
            .pinned(dtstart)
            .build(start)
            .map_err(|e| ScheduleError::InvalidRrule {
                rule: self.base.to_string(),
                reason: e.to_string(),
            })?
            // The crate's own guard against loops that find nothing.
            .limit();
        Ok((&set)
            .into_iter()
            .map(|occurrence| occurrence.naive_utc())
            .filter(move |occurrence| *occurrence >= dtstart_moved)
            .map(move |occurrence| occurrence.checked_sub_signed(shift).unwrap_or(occurrence)))
    }

    /// The rule with every part RFC 5545 would take from DTSTART written
    /// out, so that expansion may start at any period boundary.
    fn pinned(&self, dtstart: NaiveDateTime) -> RRule<Unvalidated> {
        let mut rule = self.base.clone();
        if self.lacks_day_parts() {
            // Day of month 1..=31 always fits i8.
            let day = i8::try_from(dtstart.day()).unwrap_or(1);
            match rule.get_freq() {
                Frequency::Yearly => {
                    if rule.get_by_month().is_empty() {
                        let month = u8::try_from(dtstart.month())
                            .ok()
                            .and_then(|m| Month::try_from(m).ok())
                            .unwrap_or(Month::January);
                        rule = rule.by_month(&[month]);
                    }
                    rule = rule.by_month_day(vec![day]);
                }
                Frequency::Monthly => rule = rule.by_month_day(vec![day]),
                Frequency::Weekly => rule = rule.by_weekday(vec![NWeekday::Every(dtstart.weekday())]),
                _ => {}
            }
        }
        // Hours, minutes and seconds are always in range for u8.
        if rule.get_by_hour().is_empty() {
            rule = rule.by_hour(vec![u8::try_from(dtstart.hour()).unwrap_or(0)]);
        }
        if rule.get_by_minute().is_empty() {
            rule = rule.by_minute(vec![u8::try_from(dtstart.minute()).unwrap_or(0)]);
        }
        if rule.get_by_second().is_empty() {
            rule = rule.by_second(vec![u8::try_from(dtstart.second()).unwrap_or(0)]);
        }
        rule
    }

    /// Start (00:00) of the last period of the series, as counted from
    /// `dtstart` in steps of INTERVAL, that begins on or before `target`'s
    /// date; `dtstart` itself if that is the first period.
    fn aligned_anchor(&self, dtstart: NaiveDateTime, target: NaiveDateTime) -> NaiveDateTime {
        let first = dtstart.date();
        let target = zone::clamp_date(target.date());
        let interval = i64::from(self.interval());
        let anchor = match self.base.get_freq() {
            Frequency::Daily => {
                let periods = (target - first).num_days() / interval;
                first.checked_add_signed(Duration::days(periods * interval))
            }
            Frequency::Weekly => {
                let week0 = week_start(first, self.base.get_week_start());
                let periods = (target - week0).num_days() / 7 / interval;
                week0.checked_add_signed(Duration::days(periods * interval * 7))
            }
            Frequency::Monthly => {
                let month_index = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
                let periods = (month_index(target) - month_index(first)) / interval;
                let index = month_index(first) + periods * interval;
                i32::try_from(index.div_euclid(12))
                    .ok()
                    .zip(u32::try_from(index.rem_euclid(12) + 1).ok())
                    .and_then(|(year, month)| NaiveDate::from_ymd_opt(year, month, 1))
            }
            Frequency::Yearly => {
                let periods = i64::from(target.year() - first.year()) / interval;
                i32::try_from(i64::from(first.year()) + periods * interval)
                    .ok()
                    .and_then(|year| NaiveDate::from_ymd_opt(year, 1, 1))
            }
            _ => None,
        };
        match anchor {
            Some(date) if date > first => date.and_time(NaiveTime::MIN),
            _ => dtstart,
        }
    }
}

/// First day of the week containing `date`, weeks starting on `wkst`.
pub(crate) fn week_start(date: NaiveDate, wkst: Weekday) -> NaiveDate {
    let back = (date.weekday().num_days_from_monday() + 7 - wkst.num_days_from_monday()) % 7;
    date.checked_sub_signed(Duration::days(i64::from(back)))
        .unwrap_or(date)
}

/// First day of the RRULE period (day, week, month, year) containing `date`.
pub(crate) fn period_start(rec: &Recurrence, date: NaiveDate) -> NaiveDate {
    match rec.base.get_freq() {
        Frequency::Weekly => week_start(date, rec.base.get_week_start()),
        Frequency::Monthly => date.with_day(1).unwrap_or(date),
        Frequency::Yearly => date.with_ordinal(1).unwrap_or(date),
        _ => date,
    }
}

fn parse_count(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(format!(
            "COUNT must be a whole number from 1 to {MAX_COUNT}, not {value:?}"
        )),
    }
}

/// Parses `YYYYMMDD`, `YYYYMMDDTHHMMSS` or `YYYYMMDDTHHMMSSZ`.
fn parse_until(value: &str) -> Result<Until, String> {
    let bad = || format!("UNTIL must look like 20261231, 20261231T180000 or 20261231T170000Z, not {value:?}");
    if !value.is_ascii() {
        return Err(bad());
    }
    let digits = |s: &str| -> Result<u32, String> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (date_part, time_part) = match value.len() {
        8 => (value, None),
        15 | 16 => {
            let (date_part, rest) = value.split_at(8);
            (date_part, Some(rest))
        }
        _ => return Err(bad()),
    };
    let year = i32::try_from(digits(&date_part[0..4])?).map_err(|_| bad())?;
    let date = NaiveDate::from_ymd_opt(year, digits(&date_part[4..6])?, digits(&date_part[6..8])?)
        .filter(|d| d.year() >= 1)
        .ok_or_else(bad)?;
    let Some(time_part) = time_part else {
        return Ok(Until::Date(date));
    };
    let (time_digits, utc) = match time_part.strip_suffix('Z') {
        Some(rest) => (rest, true),
        None => (time_part, false),
    };
    let Some(time_digits) = time_digits.strip_prefix('T').filter(|t| t.len() == 6) else {
        return Err(bad());
    };
    let time = NaiveTime::from_hms_opt(
        digits(&time_digits[0..2])?,
        digits(&time_digits[2..4])?,
        digits(&time_digits[4..6])?,
    )
    .ok_or_else(bad)?;
    let local = date.and_time(time);
    Ok(if utc {
        Until::Utc(Utc.from_utc_datetime(&local))
    } else {
        Until::Floating(local)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn reason(text: &str) -> String {
        match Recurrence::parse(text) {
            Err(ScheduleError::InvalidRrule { rule, reason }) => {
                assert_eq!(rule, text);
                reason
            }
            other => panic!("{text:?} should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn rejects_malformed_rules_with_reasons() {
        assert!(reason("").contains("empty"));
        assert!(reason("   ").contains("empty"));
        assert!(reason("FREQ=SOMETIMES").to_lowercase().contains("frequency"));
        assert!(reason("BYDAY=XX").contains("FREQ is missing"));
        assert!(reason("FREQ=WEEKLY;BYDAY=XX").contains("XX"));
        assert!(reason("FREQ=WEEKLY;INTERVAL=-1").contains("INTERVAL"));
        assert!(reason("FREQ=WEEKLY;INTERVAL=0").contains("INTERVAL"));
        assert!(reason("FREQ=DAILY;COUNT=0").contains("COUNT"));
        assert!(reason("FREQ=DAILY;COUNT=99999999999").contains("COUNT"));
        assert!(reason("FREQ=HOURLY").contains("finer than daily"));
        assert!(reason("FREQ=MINUTELY;BYSECOND=1").contains("finer than daily"));
        assert!(reason("RRULE:FREQ=DAILY").contains("':'"));
        assert!(reason("DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY").contains("character"));
        assert!(reason("FREQ=DAILY;FREQ=WEEKLY").contains("more than once"));
        assert!(reason("FREQ=DAILY;COLOUR=RED").contains("COLOUR"));
        assert!(reason("FREQ=DAILY;BYMONTH").contains("NAME=VALUE"));
        assert!(reason("FREQ=DAILY;BYMONTH=").contains("no value"));
        assert!(reason("FREQ=DAILY;BYMONTH=13").contains("13"));
        assert!(reason("FREQ=MONTHLY;BYMONTHDAY=1,+0").contains("not 0"));
        assert!(reason("FREQ=WEEKLY;BYMONTHDAY=3").contains("BYMONTHDAY"));
        assert!(reason("FREQ=DAILY;COUNT=3;UNTIL=20260101").contains("COUNT and UNTIL"));
        assert!(reason("FREQ=DAILY;UNTIL=2026-01-01").contains("UNTIL"));
        assert!(reason("FREQ=DAILY;UNTIL=20261301").contains("UNTIL"));
        assert!(reason("FREQ=DAILY;UNTIL=20260101T250000Z").contains("UNTIL"));
        assert!(reason("FREQ=DAILY;UNTIL=00000101").contains("UNTIL"));
        assert!(reason("FREQ=WEEKLY;BYDAY=MO WE").contains("character"));
        assert!(reason("FREQ=WEEKLY;BYDAY=éMO").contains("character"));
        assert!(reason(&"FREQ=DAILY;".repeat(200)).contains("longer"));
    }

    #[test]
    fn accepts_valid_rules_and_splits_count_until() {
        let r = Recurrence::parse("freq=weekly;byday=mo,we;").unwrap();
        assert_eq!((r.count, r.until), (None, None));
        let r = Recurrence::parse("FREQ=DAILY;COUNT=3").unwrap();
        assert_eq!(r.count, Some(3));
        let date = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let r = Recurrence::parse("FREQ=DAILY;UNTIL=20261231").unwrap();
        assert_eq!(r.until, Some(Until::Date(date)));
        let r = Recurrence::parse("FREQ=DAILY;UNTIL=20261231T180000").unwrap();
        assert_eq!(r.until, Some(Until::Floating(dt(2026, 12, 31, 18, 0))));
        let r = Recurrence::parse("FREQ=DAILY;UNTIL=20261231T170000Z").unwrap();
        assert_eq!(
            r.until,
            Some(Until::Utc(Utc.from_utc_datetime(&dt(2026, 12, 31, 17, 0))))
        );
        assert!(Recurrence::parse("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1").is_ok());
    }

    #[test]
    fn shifted_expansion_matches_full_expansion() {
        let rules = [
            "FREQ=DAILY;INTERVAL=3",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SA",
            "FREQ=WEEKLY;INTERVAL=3",
            "FREQ=WEEKLY;WKST=SU;INTERVAL=2;BYDAY=SU,MO;BYSETPOS=1",
            "FREQ=MONTHLY;INTERVAL=5",
            "FREQ=MONTHLY;BYDAY=1TU",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "FREQ=MONTHLY;BYMONTHDAY=-1;INTERVAL=2",
            "FREQ=YEARLY;INTERVAL=2",
            "FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
            "FREQ=DAILY;BYHOUR=9,17;BYMINUTE=30",
        ];
        let dtstart = dt(2021, 3, 17, 19, 45);
        for text in rules {
            let rec = Recurrence::parse(text).unwrap();
            let full: Vec<_> = rec
                .occurrences(dtstart, None, None)
                .unwrap()
                .take_while(|o| *o < dt(2031, 1, 1, 0, 0))
                .collect();
            for target in [
                dt(2021, 3, 18, 0, 0),
                dt(2024, 2, 29, 12, 0),
                dt(2029, 12, 31, 23, 0),
            ] {
                let shifted: Vec<_> = rec
                    .occurrences(dtstart, Some(target), Some(dt(2031, 1, 1, 0, 0)))
                    .unwrap()
                    .skip_while(|o| *o < target)
                    .take_while(|o| *o < dt(2031, 1, 1, 0, 0))
                    .collect();
                let expected: Vec<_> = full.iter().copied().filter(|o| *o >= target).collect();
                assert_eq!(shifted, expected, "{text} from {target}");
            }
        }
    }

    #[test]
    fn until_forms_admit_inclusively() {
        let at = |l: NaiveDateTime| Utc.from_utc_datetime(&l);
        let day = Until::Date(NaiveDate::from_ymd_opt(2026, 5, 1).unwrap());
        assert!(day.admits(dt(2026, 5, 1, 23, 59), at(dt(2026, 5, 1, 23, 59))));
        assert!(!day.admits(dt(2026, 5, 2, 0, 0), at(dt(2026, 5, 2, 0, 0))));
        let floating = Until::Floating(dt(2026, 5, 1, 9, 0));
        assert!(floating.admits(dt(2026, 5, 1, 9, 0), at(dt(2026, 5, 1, 7, 0))));
        assert!(!floating.admits(dt(2026, 5, 1, 9, 1), at(dt(2026, 5, 1, 7, 1))));
        let instant = Until::Utc(at(dt(2026, 5, 1, 7, 0)));
        assert!(instant.admits(dt(2026, 5, 1, 9, 0), at(dt(2026, 5, 1, 7, 0))));
        assert!(!instant.admits(dt(2026, 5, 1, 9, 0), at(dt(2026, 5, 1, 7, 1))));
    }
}
