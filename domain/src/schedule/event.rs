//! Event timing: a local start/end in the event's own zone, optionally
//! repeated by an RRULE with cancelled dates (EXDATE).

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::recur::{Budget, Recurrence, Until};
use super::zone::{self, local_to_utc, parse_time_zone, utc_to_local};
use super::{Interval, ScheduleError, MAX_COUNT};

/// When an event happens: local start/end in its own time zone, optional
/// recurrence.
///
/// Semantics follow RFC 5545: `start` is DTSTART and always the first
/// occurrence (it counts toward `COUNT` even if the rule would not pick it);
/// every occurrence lasts the same *exact* duration as the first one (the
/// real time between `start` and `end` in `time_zone`); `exdates` cancel the
/// occurrences with exactly that local start. Sub-second parts are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EventTiming {
    /// Local start of the first occurrence.
    pub start: NaiveDateTime,
    /// Local end of the first occurrence; must be after `start`.
    pub end: NaiveDateTime,
    /// IANA zone name, e.g. "Europe/Berlin".
    pub time_zone: String,
    /// RRULE value, e.g. "FREQ=WEEKLY;BYDAY=TH;COUNT=10".
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub rrule: Option<String>,
    /// Local start times of cancelled occurrences.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub exdates: Vec<NaiveDateTime>,
}

impl EventTiming {
    /// Checks the time zone, the dates (supported years, `end > start`, also
    /// as instants), the RRULE and that its UNTIL is not before `start`.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.compile().map(|_| ())
    }

    /// Occurrences overlapping `[from, to)`, in start order, cancelled ones
    /// left out.
    ///
    /// Returns at most `limit` occurrences (the earliest ones; a full result
    /// may mean there are more). Fails with [`ScheduleError::InvalidRange`]
    /// if `to < from`, and with [`ScheduleError::TooManyOccurrences`] if more
    /// than [`super::MAX_EXPANSION`] instances would have to be examined.
    pub fn occurrences_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Interval>, ScheduleError> {
        let event = self.compile()?;
        if to < from {
            return Err(ScheduleError::InvalidRange {
                what: "time window",
                start: from.to_rfc3339(),
                end: to.to_rfc3339(),
                reason: "the end is before the start",
            });
        }
        let mut found = Vec::new();
        if limit == 0 || from == to {
            return Ok(found);
        }
        // Occurrences starting a duration (plus a day of slack for offsets)
        // before `from` cannot reach into the window.
        let not_before = from
            .checked_sub_signed(event.duration)
            .map(|earliest| utc_to_local(event.tz, earliest))
            .and_then(|local| local.checked_sub_signed(Duration::days(1)));
        let not_after = plus_a_day(utc_to_local(event.tz, to));
        let mut budget = Budget::new("event occurrences");
        event.for_each(not_before, not_after, &mut budget, |occurrence| {
            if occurrence.start >= to {
                return Step::Stop;
            }
            if occurrence.end > from {
                found.push(occurrence);
                if found.len() >= limit {
                    return Step::Stop;
                }
            }
            Step::Continue
        })?;
        Ok(found)
    }

    /// For index prefiltering: the start of the first occurrence and the end
    /// of the last one, `None` for a series without COUNT or UNTIL.
    ///
    /// The range never misses an occurrence: an UNTIL series too long to
    /// expand reports its UNTIL plus one duration as the end, and a series
    /// whose occurrences are all cancelled reports its nominal first
    /// occurrence.
    pub fn series_bounds(&self) -> Result<(DateTime<Utc>, Option<DateTime<Utc>>), ScheduleError> {
        let event = self.compile()?;
        let nominal = event.instance(event.start);
        let mut first = None;
        let found_first = event.for_each(None, None, &mut Budget::new("event series start"), |o| {
            first = Some(o);
            Step::Stop
        });
        match found_first {
            Ok(()) | Err(ScheduleError::TooManyOccurrences { .. }) => {}
            Err(e) => return Err(e),
        }
        let first = first.unwrap_or(nominal);
        let rec = match &event.rec {
            None => return Ok((first.start, Some(first.end))),
            Some(rec) if rec.count.is_none() && rec.until.is_none() => return Ok((first.start, None)),
            Some(rec) => rec,
        };
        let not_after = rec.until.and_then(|until| match until {
            Until::Date(date) => date.succ_opt().and_then(|next| next.and_hms_opt(0, 0, 0)),
            Until::Floating(local) => plus_a_day(local),
            Until::Utc(instant) => plus_a_day(utc_to_local(event.tz, instant)),
        });
        // Enough for any COUNT; longer UNTIL series get the conservative end.
        let mut budget = Budget::with_limit("event series end", MAX_COUNT as usize + 2);
        let mut last = None;
        let expanded = event.for_each(None, not_after, &mut budget, |o| {
            last = Some(o);
            Step::Continue
        });
        match (expanded, rec.until) {
            (Ok(()), _) => {}
            (Err(ScheduleError::TooManyOccurrences { .. }), Some(until)) => {
                return Ok((first.start, Some(event.latest_end(until))));
            }
            (Err(e), _) => return Err(e),
        }
        let last = last.unwrap_or(nominal);
        Ok((first.start, Some(last.end.max(first.end))))
    }

    fn compile(&self) -> Result<CompiledEvent, ScheduleError> {
        let tz = parse_time_zone(&self.time_zone)?;
        let start = whole_seconds(self.start);
        let end = whole_seconds(self.end);
        zone::check_year("event start", start.date())?;
        zone::check_year("event end", end.date())?;
        let bad_range = |reason| ScheduleError::InvalidRange {
            what: "event start/end",
            start: self.start.to_string(),
            end: self.end.to_string(),
            reason,
        };
        if end <= start {
            return Err(bad_range("the end must be after the start"));
        }
        let start_at = local_to_utc(tz, start);
        let duration = local_to_utc(tz, end) - start_at;
        if duration <= Duration::zero() {
            return Err(bad_range(
                "in this time zone the end is not after the start (daylight-saving gap)",
            ));
        }
        let rec = match &self.rrule {
            Some(text) => {
                let rec = Recurrence::parse(text)?;
                if let Some(until) = rec.until {
                    if !until.admits(start, start_at) {
                        return Err(ScheduleError::InvalidRrule {
                            rule: text.clone(),
                            reason: format!("UNTIL is before the event start {start}"),
                        });
                    }
                }
                Some(rec)
            }
            None => None,
        };
        let mut exdates: Vec<NaiveDateTime> = self.exdates.iter().copied().map(whole_seconds).collect();
        exdates.sort_unstable();
        exdates.dedup();
        Ok(CompiledEvent {
            tz,
            start,
            duration,
            rec,
            exdates,
        })
    }
}

fn plus_a_day(t: NaiveDateTime) -> Option<NaiveDateTime> {
    t.checked_add_signed(Duration::days(1))
}

fn whole_seconds(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap_or(t)
}

enum Step {
    Continue,
    Stop,
}

struct CompiledEvent {
    tz: Tz,
    start: NaiveDateTime,
    duration: Duration,
    rec: Option<Recurrence>,
    exdates: Vec<NaiveDateTime>,
}

impl CompiledEvent {
    fn instance(&self, local_start: NaiveDateTime) -> Interval {
        let start = local_to_utc(self.tz, local_start);
        let end = start
            .checked_add_signed(self.duration)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Interval { start, end }
    }

    fn cancelled(&self, local_start: NaiveDateTime) -> bool {
        self.exdates.binary_search(&local_start).is_ok()
    }

    /// The latest end any occurrence admitted by `until` can have.
    fn latest_end(&self, until: Until) -> DateTime<Utc> {
        let latest_start = match until {
            Until::Utc(instant) => instant,
            Until::Floating(local) => local_to_utc(self.tz, local),
            Until::Date(date) => date
                .succ_opt()
                .and_then(|next| next.and_hms_opt(0, 0, 0))
                .map_or(DateTime::<Utc>::MAX_UTC, |next| local_to_utc(self.tz, next)),
        };
        latest_start
            .checked_add_signed(self.duration)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Calls `visit` with each non-cancelled occurrence in start order, from
    /// the first one, or possibly skipping those starting before local time
    /// `not_before`. `visit` must stop once occurrences start after local
    /// time `not_after`.
    fn for_each(
        &self,
        not_before: Option<NaiveDateTime>,
        not_after: Option<NaiveDateTime>,
        budget: &mut Budget,
        mut visit: impl FnMut(Interval) -> Step,
    ) -> Result<(), ScheduleError> {
        // DTSTART is always the first occurrence (RFC 5545, 3.8.5.3).
        if !self.cancelled(self.start) {
            if let Step::Stop = visit(self.instance(self.start)) {
                return Ok(());
            }
        }
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        let mut counted: u32 = 1;
        for local in rec.occurrences(self.start, not_before, not_after)? {
            budget.spend()?;
            if local <= self.start {
                continue;
            }
            counted += 1;
            if rec.count.is_some_and(|count| counted > count) {
                break;
            }
            let occurrence = self.instance(local);
            if let Some(until) = rec.until {
                if !until.admits(local, occurrence.start) {
                    break;
                }
            }
            if self.cancelled(local) {
                continue;
            }
            if let Step::Stop = visit(occurrence) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn iv(start: DateTime<Utc>, end: DateTime<Utc>) -> Interval {
        Interval { start, end }
    }

    fn event(start: NaiveDateTime, end: NaiveDateTime, rrule: Option<&str>) -> EventTiming {
        EventTiming {
            start,
            end,
            time_zone: "Europe/Berlin".to_owned(),
            rrule: rrule.map(str::to_owned),
            exdates: Vec::new(),
        }
    }

    /// Thursday 2026-03-05 19:00–21:00 Berlin, weekly on Thursdays.
    fn thursdays(rrule: &str) -> EventTiming {
        event(local(2026, 3, 5, 19, 0), local(2026, 3, 5, 21, 0), Some(rrule))
    }

    fn starts(found: &[Interval]) -> Vec<DateTime<Utc>> {
        found.iter().map(|o| o.start).collect()
    }

    #[test]
    fn weekly_with_count_across_dst() {
        let e = thursdays("FREQ=WEEKLY;BYDAY=TH;COUNT=5");
        let found = e
            .occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 100)
            .unwrap();
        assert_eq!(
            found,
            vec![
                iv(utc(2026, 3, 5, 18, 0), utc(2026, 3, 5, 20, 0)),
                iv(utc(2026, 3, 12, 18, 0), utc(2026, 3, 12, 20, 0)),
                iv(utc(2026, 3, 19, 18, 0), utc(2026, 3, 19, 20, 0)),
                iv(utc(2026, 3, 26, 18, 0), utc(2026, 3, 26, 20, 0)),
                // After the change to CEST: still 19:00 local.
                iv(utc(2026, 4, 2, 17, 0), utc(2026, 4, 2, 19, 0)),
            ]
        );
        // A window in the middle, and the limit truncates.
        let middle = e
            .occurrences_between(utc(2026, 3, 12, 19, 0), utc(2026, 3, 26, 18, 0), 100)
            .unwrap();
        assert_eq!(
            starts(&middle),
            vec![utc(2026, 3, 12, 18, 0), utc(2026, 3, 19, 18, 0)]
        );
        let limited = e
            .occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 2)
            .unwrap();
        assert_eq!(
            starts(&limited),
            vec![utc(2026, 3, 5, 18, 0), utc(2026, 3, 12, 18, 0)]
        );
        assert_eq!(
            e.occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 0),
            Ok(vec![])
        );
    }

    #[test]
    fn exdates_cancel_occurrences() {
        let mut e = thursdays("FREQ=WEEKLY;BYDAY=TH");
        e.exdates = vec![local(2026, 3, 12, 19, 0), local(2026, 3, 5, 19, 0)];
        // An exdate that matches no occurrence changes nothing.
        e.exdates.push(local(2026, 3, 19, 18, 0));
        let found = e
            .occurrences_between(utc(2026, 3, 1, 0, 0), utc(2026, 3, 27, 0, 0), 100)
            .unwrap();
        assert_eq!(
            starts(&found),
            vec![utc(2026, 3, 19, 18, 0), utc(2026, 3, 26, 18, 0)]
        );
        // With COUNT, cancelled occurrences still count (RFC 5545).
        let mut counted = thursdays("FREQ=WEEKLY;BYDAY=TH;COUNT=3");
        counted.exdates = vec![local(2026, 3, 12, 19, 0)];
        let found = counted
            .occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 100)
            .unwrap();
        assert_eq!(
            starts(&found),
            vec![utc(2026, 3, 5, 18, 0), utc(2026, 3, 19, 18, 0)]
        );
    }

    #[test]
    fn occurrence_spanning_midnight_overlaps_window_start() {
        // Daily 22:00–02:00 Berlin (CEST in May: 20:00Z–00:00Z).
        let e = event(
            local(2026, 5, 1, 22, 0),
            local(2026, 5, 2, 2, 0),
            Some("FREQ=DAILY"),
        );
        // Window starts at 01:00 local on May 3: the May 2 night is running.
        let found = e
            .occurrences_between(utc(2026, 5, 2, 23, 0), utc(2026, 5, 3, 21, 0), 10)
            .unwrap();
        assert_eq!(
            found,
            vec![
                iv(utc(2026, 5, 2, 20, 0), utc(2026, 5, 3, 0, 0)),
                iv(utc(2026, 5, 3, 20, 0), utc(2026, 5, 4, 0, 0)),
            ]
        );
        // Ends are exclusive: a window starting at the end misses it.
        let found = e
            .occurrences_between(utc(2026, 5, 3, 0, 0), utc(2026, 5, 3, 20, 0), 10)
            .unwrap();
        assert!(found.is_empty(), "{found:?}");
        // Non-recurring event spanning midnight.
        let once = event(local(2026, 5, 1, 22, 0), local(2026, 5, 2, 2, 0), None);
        assert_eq!(
            once.occurrences_between(utc(2026, 5, 1, 23, 0), utc(2026, 5, 1, 23, 30), 10),
            Ok(vec![iv(utc(2026, 5, 1, 20, 0), utc(2026, 5, 2, 0, 0))])
        );
    }

    #[test]
    fn dtstart_is_always_the_first_occurrence() {
        // Starts on a Wednesday, rule says Thursdays: Wed, Thu, Thu (COUNT=3).
        let e = event(
            local(2026, 3, 4, 19, 0),
            local(2026, 3, 4, 20, 0),
            Some("FREQ=WEEKLY;BYDAY=TH;COUNT=3"),
        );
        let found = e
            .occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 10)
            .unwrap();
        assert_eq!(
            starts(&found),
            vec![
                utc(2026, 3, 4, 18, 0),
                utc(2026, 3, 5, 18, 0),
                utc(2026, 3, 12, 18, 0)
            ]
        );
    }

    #[test]
    fn series_bounds_for_count_until_and_infinite() {
        let count = thursdays("FREQ=WEEKLY;BYDAY=TH;COUNT=5");
        assert_eq!(
            count.series_bounds(),
            Ok((utc(2026, 3, 5, 18, 0), Some(utc(2026, 4, 2, 19, 0))))
        );
        // UNTIL as a date is inclusive: 2026-03-26 is the last Thursday.
        let until = thursdays("FREQ=WEEKLY;BYDAY=TH;UNTIL=20260326");
        assert_eq!(
            until.series_bounds(),
            Ok((utc(2026, 3, 5, 18, 0), Some(utc(2026, 3, 26, 20, 0))))
        );
        // UNTIL in UTC, exactly the start of the 2026-03-19 occurrence.
        let until_utc = thursdays("FREQ=WEEKLY;BYDAY=TH;UNTIL=20260319T180000Z");
        assert_eq!(
            until_utc.series_bounds(),
            Ok((utc(2026, 3, 5, 18, 0), Some(utc(2026, 3, 19, 20, 0))))
        );
        // Floating UNTIL, local 19:00 on 2026-04-02 (CEST).
        let floating = thursdays("FREQ=WEEKLY;BYDAY=TH;UNTIL=20260402T190000");
        assert_eq!(floating.series_bounds().unwrap().1, Some(utc(2026, 4, 2, 19, 0)));
        let infinite = thursdays("FREQ=WEEKLY;BYDAY=TH");
        assert_eq!(infinite.series_bounds(), Ok((utc(2026, 3, 5, 18, 0), None)));
        let once = event(local(2026, 3, 5, 19, 0), local(2026, 3, 5, 21, 0), None);
        assert_eq!(
            once.series_bounds(),
            Ok((utc(2026, 3, 5, 18, 0), Some(utc(2026, 3, 5, 20, 0))))
        );
        // First occurrence cancelled: the bounds start at the second.
        let mut late = thursdays("FREQ=WEEKLY;BYDAY=TH;COUNT=5");
        late.exdates = vec![local(2026, 3, 5, 19, 0), local(2026, 4, 2, 19, 0)];
        assert_eq!(
            late.series_bounds(),
            Ok((utc(2026, 3, 12, 18, 0), Some(utc(2026, 3, 26, 20, 0))))
        );
        // The largest COUNT is expanded exactly.
        let most = event(
            local(2026, 3, 5, 19, 0),
            local(2026, 3, 5, 21, 0),
            Some("FREQ=DAILY;COUNT=10000"),
        );
        let last_start = local(2026, 3, 5, 21, 0) + Duration::days(9999);
        assert_eq!(
            most.series_bounds(),
            Ok((
                utc(2026, 3, 5, 18, 0),
                Some(local_to_utc(chrono_tz::Europe::Berlin, last_start))
            ))
        );
        // A daily UNTIL series over centuries is not expanded; the bound is
        // UNTIL's day plus one duration, never too early.
        let long = event(
            local(2000, 1, 1, 10, 0),
            local(2000, 1, 1, 11, 0),
            Some("FREQ=DAILY;UNTIL=29991231"),
        );
        let (first, last) = long.series_bounds().unwrap();
        assert_eq!(first, utc(2000, 1, 1, 9, 0));
        let last = last.unwrap();
        assert!(
            last >= utc(2999, 12, 31, 10, 0) && last <= utc(3000, 1, 1, 0, 0),
            "{last}"
        );
    }

    #[test]
    fn dst_gap_start_and_exact_duration() {
        // Daily 02:30–03:30; on 2026-03-29 02:30 does not exist.
        let e = event(
            local(2026, 3, 28, 2, 30),
            local(2026, 3, 28, 3, 30),
            Some("FREQ=DAILY;COUNT=3"),
        );
        let found = e
            .occurrences_between(utc(2026, 3, 27, 0, 0), utc(2026, 4, 1, 0, 0), 10)
            .unwrap();
        assert_eq!(
            found,
            vec![
                iv(utc(2026, 3, 28, 1, 30), utc(2026, 3, 28, 2, 30)),
                iv(utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)),
                iv(utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 1, 30)),
            ]
        );
        // A night spanning the fall-back lasts 7 real hours; later
        // occurrences keep that exact duration (RFC 5545).
        let party = event(
            local(2026, 10, 24, 22, 0),
            local(2026, 10, 25, 4, 0),
            Some("FREQ=WEEKLY;COUNT=2"),
        );
        let found = party
            .occurrences_between(utc(2026, 10, 1, 0, 0), utc(2026, 12, 1, 0, 0), 10)
            .unwrap();
        assert_eq!(
            found,
            vec![
                iv(utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 3, 0)),
                iv(utc(2026, 10, 31, 21, 0), utc(2026, 11, 1, 4, 0)),
            ]
        );
    }

    #[test]
    fn long_series_query_far_away_is_cheap_and_huge_expansions_fail() {
        let e = event(
            local(2000, 1, 1, 10, 0),
            local(2000, 1, 1, 11, 0),
            Some("FREQ=DAILY;INTERVAL=2"),
        );
        // 2090-01-01 is 32873 days after 2000-01-01, an odd number, so the
        // series falls on 2090-01-02 and 2090-01-04.
        let found = e
            .occurrences_between(utc(2090, 1, 1, 0, 0), utc(2090, 1, 5, 0, 0), 10)
            .unwrap();
        assert_eq!(starts(&found), vec![utc(2090, 1, 2, 9, 0), utc(2090, 1, 4, 9, 0)]);
        let everything =
            e.occurrences_between(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, usize::MAX);
        assert!(matches!(
            everything,
            Err(ScheduleError::TooManyOccurrences {
                limit: super::super::MAX_EXPANSION,
                ..
            })
        ));
        // ... but a limited query over the same window is fine.
        let first = e
            .occurrences_between(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, 1)
            .unwrap();
        assert_eq!(starts(&first), vec![utc(2000, 1, 1, 9, 0)]);
    }

    #[test]
    fn invalid_events_are_typed_errors() {
        let mut e = thursdays("FREQ=WEEKLY;BYDAY=TH");
        assert_eq!(e.validate(), Ok(()));

        e.time_zone = "Europe/Atlantis".to_owned();
        assert_eq!(
            e.validate(),
            Err(ScheduleError::UnknownTimeZone("Europe/Atlantis".to_owned()))
        );

        let mut reversed = thursdays("FREQ=WEEKLY");
        reversed.end = reversed.start;
        assert!(matches!(
            reversed.validate(),
            Err(ScheduleError::InvalidRange {
                what: "event start/end",
                ..
            })
        ));
        reversed.end = local(2026, 3, 5, 18, 0);
        assert!(matches!(
            reversed.occurrences_between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 10),
            Err(ScheduleError::InvalidRange { .. })
        ));
        // 02:10–02:50 on the spring-forward night is empty in Berlin.
        let in_gap = event(local(2026, 3, 29, 2, 10), local(2026, 3, 29, 2, 50), None);
        assert!(matches!(
            in_gap.validate(),
            Err(ScheduleError::InvalidRange { .. })
        ));

        for bad in [
            "FREQ=SOMETIMES",
            "",
            "BYDAY=XX",
            "FREQ=WEEKLY;INTERVAL=-1",
            "FREQ=HOURLY",
        ] {
            let e = thursdays(bad);
            assert!(
                matches!(e.validate(), Err(ScheduleError::InvalidRrule { ref rule, .. }) if rule == bad),
                "{bad:?}"
            );
            assert!(e.series_bounds().is_err());
        }
        let before = thursdays("FREQ=WEEKLY;UNTIL=20260301");
        assert!(matches!(
            before.validate(),
            Err(ScheduleError::InvalidRrule { .. })
        ));

        let ancient = event(local(0, 1, 1, 10, 0), local(0, 1, 1, 11, 0), None);
        assert!(matches!(
            ancient.validate(),
            Err(ScheduleError::OutOfSupportedRange {
                what: "event start",
                ..
            })
        ));

        let ok = thursdays("FREQ=WEEKLY");
        assert!(matches!(
            ok.occurrences_between(utc(2027, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0), 10),
            Err(ScheduleError::InvalidRange {
                what: "time window",
                ..
            })
        ));
    }

    #[test]
    fn serde_shape() {
        let json =
            r#"{"start":"2026-03-05T19:00:00","end":"2026-03-05T21:00:00","time_zone":"Europe/Berlin"}"#;
        let e: EventTiming = serde_json::from_str(json).unwrap();
        assert_eq!(e.rrule, None);
        assert!(e.exdates.is_empty());
        assert_eq!(e.validate(), Ok(()));
    }
}
