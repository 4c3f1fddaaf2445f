//! Time-zone lookup and the one rule mapping local wall-clock time to UTC.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use super::{ScheduleError, SUPPORTED_YEARS};

/// Looks up an IANA time zone by its exact name, e.g. `"Europe/Berlin"`.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone(name.to_owned()))
}

/// The UTC instant of local wall-clock time `local` in `tz`.
///
/// * unambiguous local times map to their instant;
/// * a time inside a spring-forward gap (it never appears on clocks) maps to
///   the first instant after the gap, i.e. the moment of the change;
/// * a time inside a fall-back overlap (it appears twice) maps to the earlier
///   of its two instants.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => after_gap(tz, local),
    }
}

/// Local wall-clock time of `at` in `tz`, saturating at chrono's limits.
pub(crate) fn utc_to_local(tz: Tz, at: DateTime<Utc>) -> NaiveDateTime {
    let utc = at.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset).unwrap_or(if utc.year() > 0 {
        NaiveDateTime::MAX
    } else {
        NaiveDateTime::MIN
    })
}

fn exists(tz: Tz, local: NaiveDateTime) -> bool {
    !matches!(tz.from_local_datetime(&local), LocalResult::None)
}

/// First instant after the gap that contains `local` (which does not exist).
fn after_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    // Gap boundaries are whole seconds in the tz database.
    let base = local.with_nanosecond(0).unwrap_or(local);
    // Gaps last minutes to a day: widen until a valid local time is found ...
    let mut invalid_secs: i64 = 0;
    let mut valid_secs: Option<i64> = None;
    let mut step: i64 = 30 * 60;
    while step <= 72 * 3600 {
        match base.checked_add_signed(Duration::seconds(step)) {
            Some(candidate) if exists(tz, candidate) => {
                valid_secs = Some(step);
                break;
            }
            Some(_) => invalid_secs = step,
            None => break,
        }
        step *= 2;
    }
    // ... then narrow down to the first valid second.
    if let Some(mut hi) = valid_secs {
        let mut lo = invalid_secs;
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match base.checked_add_signed(Duration::seconds(mid)) {
                Some(candidate) if exists(tz, candidate) => hi = mid,
                _ => lo = mid,
            }
        }
        if let Some(first_valid) = base.checked_add_signed(Duration::seconds(hi)) {
            if let Some(t) = tz.from_local_datetime(&first_valid).earliest() {
                return t.with_timezone(&Utc);
            }
        }
    }
    // Unreachable with real tz data; fall back to the offset in force at the
    // same numeric instant rather than failing.
    let offset = tz.offset_from_utc_datetime(&local).fix();
    let utc = local
        .checked_sub_signed(Duration::seconds(i64::from(offset.local_minus_utc())))
        .unwrap_or(local);
    Utc.from_utc_datetime(&utc)
}

/// Fails unless `date` lies in [`SUPPORTED_YEARS`].
pub(crate) fn check_year(what: &'static str, date: NaiveDate) -> Result<(), ScheduleError> {
    if SUPPORTED_YEARS.contains(&date.year()) {
        Ok(())
    } else {
        Err(ScheduleError::OutOfSupportedRange {
            what,
            value: date.to_string(),
        })
    }
}

/// First and last supported dates.
pub(crate) fn min_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(*SUPPORTED_YEARS.start(), 1, 1).unwrap_or(NaiveDate::MIN)
}

pub(crate) fn max_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(*SUPPORTED_YEARS.end(), 12, 31).unwrap_or(NaiveDate::MAX)
}

/// `date` moved into the supported range.
pub(crate) fn clamp_date(date: NaiveDate) -> NaiveDate {
    date.clamp(min_date(), max_date())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_time(NaiveTime::from_hms_opt(h, min, 0).unwrap())
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn known_and_unknown_zones() {
        assert_eq!(parse_time_zone("Europe/Berlin"), Ok(chrono_tz::Europe::Berlin));
        assert_eq!(parse_time_zone("UTC"), Ok(chrono_tz::UTC));
        for bad in ["", "Europe/Bérlin", "Mars/Olympus", "europe/berlin ", "+01:00"] {
            assert_eq!(
                parse_time_zone(bad),
                Err(ScheduleError::UnknownTimeZone(bad.to_owned()))
            );
        }
    }

    #[test]
    fn plain_local_times_map_to_their_instant() {
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            local_to_utc(berlin, local(2026, 1, 5, 9, 0)),
            utc(2026, 1, 5, 8, 0)
        );
        assert_eq!(
            local_to_utc(berlin, local(2026, 7, 6, 9, 0)),
            utc(2026, 7, 6, 7, 0)
        );
    }

    #[test]
    fn spring_forward_gap_maps_to_end_of_gap() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-03-29 02:00 CET -> 03:00 CEST, i.e. 01:00Z.
        for minute in [0, 1, 30, 59] {
            assert_eq!(
                local_to_utc(berlin, local(2026, 3, 29, 2, minute)),
                utc(2026, 3, 29, 1, 0)
            );
        }
        assert_eq!(
            local_to_utc(berlin, local(2026, 3, 29, 3, 0)),
            utc(2026, 3, 29, 1, 0)
        );
        assert_eq!(
            local_to_utc(berlin, local(2026, 3, 29, 1, 59)),
            utc(2026, 3, 29, 0, 59)
        );
        // New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z).
        let ny = chrono_tz::America::New_York;
        assert_eq!(local_to_utc(ny, local(2026, 3, 8, 2, 30)), utc(2026, 3, 8, 7, 0));
    }

    #[test]
    fn whole_skipped_day_maps_to_next_day() {
        // Samoa skipped 2011-12-30 entirely.
        let apia = chrono_tz::Pacific::Apia;
        let got = local_to_utc(apia, local(2011, 12, 30, 12, 0));
        assert_eq!(utc_to_local(apia, got), local(2011, 12, 31, 0, 0));
    }

    #[test]
    fn fall_back_overlap_takes_earlier_instant() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-10-25 03:00 CEST -> 02:00 CET; 02:30 happens at 00:30Z and 01:30Z.
        assert_eq!(
            local_to_utc(berlin, local(2026, 10, 25, 2, 30)),
            utc(2026, 10, 25, 0, 30)
        );
        assert_eq!(
            local_to_utc(berlin, local(2026, 10, 25, 3, 0)),
            utc(2026, 10, 25, 2, 0)
        );
    }

    #[test]
    fn year_checks_and_clamping() {
        assert!(check_year("x", NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).is_ok());
        assert!(matches!(
            check_year("x", NaiveDate::from_ymd_opt(0, 1, 1).unwrap()),
            Err(ScheduleError::OutOfSupportedRange { what: "x", .. })
        ));
        assert_eq!(clamp_date(NaiveDate::MAX), max_date());
        assert_eq!(clamp_date(NaiveDate::MIN), min_date());
    }
}
