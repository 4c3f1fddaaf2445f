//! Opening hours, modelled on the Open Referral HSDS 3.0 `schedule` object.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::recur::{period_start, Budget, Recurrence};
use super::zone::{self, local_to_utc, utc_to_local};
use super::{Interval, ScheduleError, MAX_HORIZON_DAYS};

/// One HSDS-style opening rule, e.g. "every Monday and Wednesday 09:00–12:00
/// from 2026-01-01 until 2026-12-31, closed on 2026-04-06".
///
/// The RRULE picks the *dates* an opening starts on; `opens`/`closes` are
/// local wall-clock times in the zone the schedule is evaluated in. When
/// `valid_from` is set it is the series' first day (RFC 5545 DTSTART), which
/// `COUNT`, `INTERVAL` and day parts left out of the rule are counted from;
/// rules that need such an anchor are rejected without it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OpeningRule {
    /// RFC 5545 RRULE value without the "RRULE:" prefix, e.g.
    /// "FREQ=WEEKLY;BYDAY=MO,WE" or "FREQ=MONTHLY;BYDAY=1TU" (first
    /// Tuesday). No DTSTART inside; BYHOUR/BYMINUTE/BYSECOND are rejected.
    pub rrule: String,
    /// Local opening time (inclusive).
    pub opens: NaiveTime,
    /// Local closing time (exclusive). `closes <= opens` means the opening
    /// ends on the next day (overnight, e.g. 22:00–02:00); equal times mean
    /// 24 hours.
    pub closes: NaiveTime,
    /// First day the rule applies (inclusive); also the series' DTSTART.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub valid_from: Option<NaiveDate>,
    /// Last day an opening may *start* (inclusive); an overnight opening
    /// starting that day still runs to its close.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub valid_until: Option<NaiveDate>,
    /// Dates (local, in the schedule's zone) on which this rule does not
    /// open (holidays); an opening that started the evening before still
    /// counts until it closes.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub closed_on: Vec<NaiveDate>,
    /// Free text for people, e.g. "Sprechstunde".
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub description: Option<String>,
}

impl OpeningRule {
    /// Checks the rule without evaluating it: the RRULE parses and suits
    /// opening hours (FREQ is DAILY or coarser, no time-of-day parts, an
    /// anchor for COUNT/INTERVAL/implicit days), the dates lie in the
    /// supported years and `valid_from <= valid_until`.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.compile().map(|_| ())
    }

    fn compile(&self) -> Result<CompiledRule<'_>, ScheduleError> {
        let rec = Recurrence::parse(&self.rrule)?;
        let fail = |reason: &str| ScheduleError::InvalidRrule {
            rule: self.rrule.clone(),
            reason: reason.to_owned(),
        };
        if rec.has_time_parts() {
            return Err(fail(
                "BYHOUR, BYMINUTE and BYSECOND are not used for opening hours; \
                 set opens and closes instead",
            ));
        }
        if let Some(from) = self.valid_from {
            zone::check_year("valid_from", from)?;
        }
        if let Some(until) = self.valid_until {
            zone::check_year("valid_until", until)?;
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until) {
            if from > until {
                return Err(ScheduleError::InvalidRange {
                    what: "opening rule validity",
                    start: from.to_string(),
                    end: until.to_string(),
                    reason: "valid_until is before valid_from",
                });
            }
        }
        if self.valid_from.is_none() {
            if rec.count.is_some() {
                return Err(fail(
                    "COUNT counts from the first day of the series; set valid_from",
                ));
            }
            if rec.interval() > 1 {
                return Err(fail(
                    "INTERVAL above 1 counts from the first day of the series; set valid_from",
                ));
            }
            if rec.days_depend_on_start() {
                return Err(fail(
                    "without BYDAY, BYMONTHDAY, BYYEARDAY or BYWEEKNO the days are taken from \
                     the first day of the series; add e.g. BYDAY=MO or set valid_from",
                ));
            }
        }
        Ok(CompiledRule { rule: self, rec })
    }
}

struct CompiledRule<'a> {
    rule: &'a OpeningRule,
    rec: Recurrence,
}

impl CompiledRule<'_> {
    /// Appends the openings starting on local dates `first..=last`.
    fn openings(
        &self,
        tz: Tz,
        first: NaiveDate,
        last: NaiveDate,
        budget: &mut Budget,
        out: &mut Vec<Interval>,
    ) -> Result<(), ScheduleError> {
        let rule = self.rule;
        let first = rule.valid_from.map_or(first, |from| first.max(from));
        let last = rule.valid_until.map_or(last, |until| last.min(until));
        if first > last {
            return Ok(());
        }
        let dtstart = rule
            .valid_from
            .unwrap_or_else(|| period_start(&self.rec, first))
            .and_time(NaiveTime::MIN);
        let occurrences = self.rec.occurrences(
            dtstart,
            Some(first.and_time(NaiveTime::MIN)),
            last.succ_opt().map(|next| next.and_time(NaiveTime::MIN)),
        )?;
        // `seen` numbers occurrences from 1; COUNT-rules start at dtstart.
        for (seen, occurrence) in (1_u32..).zip(occurrences) {
            budget.spend()?;
            let date = occurrence.date();
            if date > last {
                break;
            }
            if self.rec.count.is_some_and(|count| seen > count) {
                break;
            }
            let opens = date.and_time(rule.opens);
            let start = local_to_utc(tz, opens);
            if let Some(until) = self.rec.until {
                if !until.admits(opens, start) {
                    break;
                }
            }
            if date < first || rule.closed_on.contains(&date) {
                continue;
            }
            let close_date = if rule.closes <= rule.opens {
                date.succ_opt()
            } else {
                Some(date)
            };
            let Some(close_date) = close_date else {
                continue;
            };
            let end = local_to_utc(tz, close_date.and_time(rule.closes));
            // Empty when both ends fall into the same DST gap.
            if end > start {
                out.push(Interval { start, end });
            }
        }
        Ok(())
    }
}

/// All openings of `rules` starting on local dates `first..=last`, merged
/// where they overlap or touch, in order. Every rule is validated, even when
/// the window is empty.
fn merged_openings(
    rules: &[OpeningRule],
    tz: Tz,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<Interval>, ScheduleError> {
    let compiled = rules
        .iter()
        .map(OpeningRule::compile)
        .collect::<Result<Vec<_>, _>>()?;
    if first > zone::max_date() || last < zone::min_date() {
        return Ok(Vec::new());
    }
    let (first, last) = (zone::clamp_date(first), zone::clamp_date(last));
    let mut budget = Budget::new("opening hours");
    let mut openings = Vec::new();
    for rule in &compiled {
        rule.openings(tz, first, last, &mut budget, &mut openings)?;
    }
    openings.sort_unstable();
    let mut merged: Vec<Interval> = Vec::with_capacity(openings.len());
    for opening in openings {
        match merged.last_mut() {
            Some(previous) if opening.start <= previous.end => {
                previous.end = previous.end.max(opening.end);
            }
            _ => merged.push(opening),
        }
    }
    Ok(merged)
}

/// Local date of `at` in `tz`, moved by `days`; saturates at chrono's limits.
fn local_date(tz: Tz, at: DateTime<Utc>, days: i64) -> NaiveDate {
    let date = utc_to_local(tz, at).date();
    date.checked_add_signed(Duration::days(days))
        .unwrap_or(if days < 0 { NaiveDate::MIN } else { NaiveDate::MAX })
}

/// Whether any rule is open at `at`, evaluated in `tz`.
///
/// Times are local wall-clock times, DST-correct: 09:00 stays 09:00 local on
/// both sides of a change; an opening at a nonexistent local time (spring
/// forward) starts at the first instant after the gap; an ambiguous time
/// (fall back) is the earlier instant. Opening is inclusive, closing
/// exclusive. No rules means closed; any invalid rule is an error.
pub fn is_open_at(rules: &[OpeningRule], tz: Tz, at: DateTime<Utc>) -> Result<bool, ScheduleError> {
    let openings = merged_openings(rules, tz, local_date(tz, at, -1), local_date(tz, at, 0))?;
    Ok(openings.iter().any(|opening| opening.contains(at)))
}

/// The opening interval that contains `at`, or else the first one starting
/// within `horizon_days` days after `at` (for "opens again Tuesday 09:00").
///
/// Openings of all rules that overlap or touch are merged, so `end` is when
/// the place actually closes ("open until 18:00" across a 09–12 and a 12–18
/// rule); for a place that never closes `end` stops near the horizon.
/// `horizon_days = 0` only reports an interval containing `at`; values above
/// [`MAX_HORIZON_DAYS`] are capped.
pub fn next_opening(
    rules: &[OpeningRule],
    tz: Tz,
    at: DateTime<Utc>,
    horizon_days: u32,
) -> Result<Option<Interval>, ScheduleError> {
    let horizon = Duration::days(i64::from(horizon_days.min(MAX_HORIZON_DAYS)));
    let limit = at.checked_add_signed(horizon).unwrap_or(DateTime::<Utc>::MAX_UTC);
    // One extra day past the limit covers a fall-back that moves the local
    // date of later instants backwards.
    let openings = merged_openings(rules, tz, local_date(tz, at, -1), local_date(tz, limit, 1))?;
    Ok(openings
        .into_iter()
        .find(|opening| opening.end > at && (opening.start <= at || opening.start < limit)))
}

/// The openings of `rules` overlapping `[from, to)`, evaluated in `tz`, in
/// order, merged where they overlap or touch and not clipped to the window.
///
/// Fails with [`ScheduleError::InvalidRange`] if `to < from`, and with
/// [`ScheduleError::TooManyOccurrences`] if the window holds more than
/// [`super::MAX_EXPANSION`] openings.
pub fn opening_intervals(
    rules: &[OpeningRule],
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Interval>, ScheduleError> {
    if to < from {
        return Err(ScheduleError::InvalidRange {
            what: "time window",
            start: from.to_rfc3339(),
            end: to.to_rfc3339(),
            reason: "the end is before the start",
        });
    }
    let openings = merged_openings(rules, tz, local_date(tz, from, -1), local_date(tz, to, 1))?;
    Ok(openings
        .into_iter()
        .filter(|opening| opening.overlaps(from, to))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Berlin;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
    }

    fn rule(rrule: &str, opens: (u32, u32), closes: (u32, u32)) -> OpeningRule {
        OpeningRule {
            rrule: rrule.to_owned(),
            opens: time(opens.0, opens.1),
            closes: time(closes.0, closes.1),
            valid_from: None,
            valid_until: None,
            closed_on: Vec::new(),
            description: None,
        }
    }

    fn open(rules: &[OpeningRule], at: DateTime<Utc>) -> bool {
        is_open_at(rules, Berlin, at).unwrap()
    }

    fn invalid_reason(r: &OpeningRule) -> String {
        match r.validate() {
            Err(ScheduleError::InvalidRrule { reason, .. }) => reason,
            other => panic!("{r:?} should be invalid, got {other:?}"),
        }
    }

    #[test]
    fn weekly_rule_opens_inclusive_closes_exclusive() {
        let rules = [rule("FREQ=WEEKLY;BYDAY=MO,WE", (9, 0), (12, 0))];
        // Monday 2026-01-05, CET (UTC+1): 09:00 local = 08:00Z.
        assert!(!open(&rules, utc(2026, 1, 5, 7, 59, 59)));
        assert!(open(&rules, utc(2026, 1, 5, 8, 0, 0)));
        assert!(open(&rules, utc(2026, 1, 5, 10, 59, 59)));
        assert!(!open(&rules, utc(2026, 1, 5, 11, 0, 0)));
        // Tuesday closed, Wednesday open, Sunday closed.
        assert!(!open(&rules, utc(2026, 1, 6, 9, 0, 0)));
        assert!(open(&rules, utc(2026, 1, 7, 9, 0, 0)));
        assert!(!open(&rules, utc(2026, 1, 11, 9, 0, 0)));
        assert!(!is_open_at(&[], Berlin, utc(2026, 1, 5, 9, 0, 0)).unwrap());
    }

    #[test]
    fn monthly_first_tuesday() {
        let rules = [rule("FREQ=MONTHLY;BYDAY=1TU", (14, 0), (16, 0))];
        // First Tuesdays: 2026-02-03, 2026-03-03; 2026-02-10 is the second.
        assert!(open(&rules, utc(2026, 2, 3, 13, 30, 0)));
        assert!(!open(&rules, utc(2026, 2, 10, 13, 30, 0)));
        assert!(!open(&rules, utc(2026, 2, 24, 13, 30, 0)));
        assert!(open(&rules, utc(2026, 3, 3, 13, 30, 0)));
        let next = next_opening(&rules, Berlin, utc(2026, 2, 4, 0, 0, 0), 60).unwrap();
        assert_eq!(
            next,
            Some(Interval {
                start: utc(2026, 3, 3, 13, 0, 0),
                end: utc(2026, 3, 3, 15, 0, 0)
            })
        );
        // Last weekday of the month, via BYSETPOS: 2026-01-30 is a Friday.
        let last = [rule(
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            (9, 0),
            (10, 0),
        )];
        assert!(open(&last, utc(2026, 1, 30, 8, 30, 0)));
        assert!(!open(&last, utc(2026, 1, 29, 8, 30, 0)));
    }

    #[test]
    fn closed_on_skips_that_day_only() {
        let mut r = rule("FREQ=WEEKLY;BYDAY=MO", (9, 0), (12, 0));
        r.closed_on = vec![date(2026, 4, 6)]; // Easter Monday
        let rules = [r];
        assert!(open(&rules, utc(2026, 3, 30, 8, 0, 0)));
        assert!(!open(&rules, utc(2026, 4, 6, 8, 0, 0)));
        assert!(open(&rules, utc(2026, 4, 13, 8, 0, 0)));
        let next = next_opening(&rules, Berlin, utc(2026, 3, 31, 0, 0, 0), 30).unwrap();
        assert_eq!(next.map(|i| i.start), Some(utc(2026, 4, 13, 7, 0, 0)));
    }

    #[test]
    fn validity_range_is_inclusive() {
        let mut r = rule("FREQ=WEEKLY;BYDAY=MO", (9, 0), (12, 0));
        r.valid_from = Some(date(2026, 2, 1));
        r.valid_until = Some(date(2026, 2, 23)); // a Monday
        let rules = [r];
        assert!(!open(&rules, utc(2026, 1, 26, 9, 0, 0)));
        assert!(open(&rules, utc(2026, 2, 2, 9, 0, 0)));
        assert!(open(&rules, utc(2026, 2, 23, 10, 59, 59)));
        assert!(!open(&rules, utc(2026, 3, 2, 9, 0, 0)));
        assert_eq!(
            next_opening(&rules, Berlin, utc(2026, 2, 24, 0, 0, 0), 365),
            Ok(None)
        );

        let mut reversed = rules[0].clone();
        reversed.valid_from = Some(date(2026, 3, 1));
        assert!(matches!(
            reversed.validate(),
            Err(ScheduleError::InvalidRange {
                what: "opening rule validity",
                ..
            })
        ));
        let mut one_day = rules[0].clone();
        one_day.valid_from = Some(date(2026, 2, 23));
        assert_eq!(one_day.validate(), Ok(()));
        assert!(open(&[one_day], utc(2026, 2, 23, 9, 0, 0)));
    }

    #[test]
    fn overnight_rule_runs_into_next_day() {
        let mut r = rule("FREQ=WEEKLY;BYDAY=FR", (22, 0), (2, 0));
        let rules = [r.clone()];
        // Friday 2026-01-09 22:00 CET = 21:00Z, until Saturday 02:00 = 01:00Z.
        assert!(!open(&rules, utc(2026, 1, 9, 20, 59, 59)));
        assert!(open(&rules, utc(2026, 1, 9, 21, 0, 0)));
        assert!(open(&rules, utc(2026, 1, 10, 0, 30, 0)));
        assert!(!open(&rules, utc(2026, 1, 10, 1, 0, 0)));
        assert!(!open(&rules, utc(2026, 1, 10, 21, 30, 0)));
        // Closed on the Saturday: Friday night still runs until 02:00.
        r.closed_on = vec![date(2026, 1, 10)];
        assert!(open(&[r.clone()], utc(2026, 1, 10, 0, 30, 0)));
        // Closed on the Friday: no opening that night.
        r.closed_on = vec![date(2026, 1, 9)];
        assert!(!open(&[r.clone()], utc(2026, 1, 10, 0, 30, 0)));
        // valid_until on the Friday: that night still runs to its close.
        r.closed_on.clear();
        r.valid_until = Some(date(2026, 1, 9));
        assert!(open(&[r], utc(2026, 1, 10, 0, 30, 0)));
        // Equal times mean 24 hours.
        let all_day = [rule("FREQ=WEEKLY;BYDAY=MO", (6, 0), (6, 0))];
        assert!(open(&all_day, utc(2026, 1, 6, 4, 59, 59)));
        assert!(!open(&all_day, utc(2026, 1, 6, 5, 0, 0)));
    }

    #[test]
    fn dst_keeps_local_wall_clock_times() {
        let rules = [rule("FREQ=WEEKLY;BYDAY=MO", (9, 0), (12, 0))];
        // Spring: clocks go forward on 2026-03-29; Monday 03-30 is CEST (UTC+2).
        assert!(open(&rules, utc(2026, 3, 30, 7, 30, 0))); // 09:30 local
        assert!(!open(&rules, utc(2026, 3, 30, 6, 30, 0))); // 08:30 local
        assert!(open(&rules, utc(2026, 3, 30, 9, 59, 59)));
        assert!(!open(&rules, utc(2026, 3, 30, 10, 0, 0)));
        // The Monday before is still CET (UTC+1).
        assert!(open(&rules, utc(2026, 3, 23, 8, 30, 0)));
        assert!(!open(&rules, utc(2026, 3, 23, 7, 30, 0)));
        // Autumn: clocks go back on 2026-10-25; Monday 10-26 is CET (UTC+1).
        assert!(open(&rules, utc(2026, 10, 26, 8, 30, 0))); // 09:30 local
        assert!(!open(&rules, utc(2026, 10, 26, 7, 30, 0))); // 08:30 local
        assert!(!open(&rules, utc(2026, 10, 26, 11, 0, 0)));
    }

    #[test]
    fn dst_gap_and_overlap_openings() {
        // 02:30 does not exist on 2026-03-29: opening starts at 03:00 CEST.
        let night = [rule("FREQ=DAILY", (2, 30), (4, 0))];
        let gap = next_opening(&night, Berlin, utc(2026, 3, 28, 12, 0, 0), 2).unwrap();
        assert_eq!(
            gap,
            Some(Interval {
                start: utc(2026, 3, 29, 1, 0, 0),
                end: utc(2026, 3, 29, 2, 0, 0)
            })
        );
        assert!(!open(&night, utc(2026, 3, 29, 0, 59, 59)));
        // 02:30 exists twice on 2026-10-25: the earlier (CEST) instant counts,
        // and 04:00 CET closes it, 2.5 real hours later.
        let overlap = next_opening(&night, Berlin, utc(2026, 10, 24, 12, 0, 0), 2).unwrap();
        assert_eq!(
            overlap,
            Some(Interval {
                start: utc(2026, 10, 25, 0, 30, 0),
                end: utc(2026, 10, 25, 3, 0, 0)
            })
        );
        // Both ends inside the gap: no opening that night, none invented.
        let in_gap = [rule("FREQ=DAILY", (2, 10), (2, 50))];
        let got = opening_intervals(
            &in_gap,
            Berlin,
            utc(2026, 3, 28, 12, 0, 0),
            utc(2026, 3, 29, 12, 0, 0),
        )
        .unwrap();
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn next_opening_contains_follows_merges_and_respects_horizon() {
        let rules = [
            rule("FREQ=WEEKLY;BYDAY=MO,WE", (9, 0), (12, 0)),
            rule("FREQ=WEEKLY;BYDAY=WE", (12, 0), (18, 0)),
        ];
        // Tuesday 2026-01-06 10:00 local: next is Wednesday 09:00–18:00 merged.
        let tuesday = utc(2026, 1, 6, 9, 0, 0);
        let wednesday = Interval {
            start: utc(2026, 1, 7, 8, 0, 0),
            end: utc(2026, 1, 7, 17, 0, 0),
        };
        assert_eq!(next_opening(&rules, Berlin, tuesday, 7), Ok(Some(wednesday)));
        // Inside: the current (merged) interval.
        assert_eq!(
            next_opening(&rules, Berlin, utc(2026, 1, 7, 13, 0, 0), 0),
            Ok(Some(wednesday))
        );
        // Exactly at the opening with no horizon: it contains `at`.
        assert_eq!(
            next_opening(&rules, Berlin, wednesday.start, 0),
            Ok(Some(wednesday))
        );
        // Horizon too short, or zero while closed.
        assert_eq!(next_opening(&rules, Berlin, tuesday, 0), Ok(None));
        assert_eq!(
            next_opening(&rules, Berlin, utc(2026, 1, 7, 17, 0, 0), 0),
            Ok(None)
        );
        // Horizon ends before the opening starts: not reported.
        assert_eq!(
            next_opening(&rules, Berlin, utc(2026, 1, 6, 8, 0, 0), 1),
            Ok(None)
        );
        // Huge horizons are capped, not an error.
        assert_eq!(
            next_opening(&rules, Berlin, tuesday, u32::MAX),
            Ok(Some(wednesday))
        );
    }

    #[test]
    fn opening_intervals_lists_a_week() {
        let rules = [rule("FREQ=WEEKLY;BYDAY=MO,WE", (9, 0), (12, 0))];
        let week = opening_intervals(
            &rules,
            Berlin,
            utc(2026, 1, 5, 0, 0, 0),
            utc(2026, 1, 12, 0, 0, 0),
        )
        .unwrap();
        assert_eq!(
            week,
            vec![
                Interval {
                    start: utc(2026, 1, 5, 8, 0, 0),
                    end: utc(2026, 1, 5, 11, 0, 0)
                },
                Interval {
                    start: utc(2026, 1, 7, 8, 0, 0),
                    end: utc(2026, 1, 7, 11, 0, 0)
                },
            ]
        );
        assert!(matches!(
            opening_intervals(
                &rules,
                Berlin,
                utc(2026, 1, 12, 0, 0, 0),
                utc(2026, 1, 5, 0, 0, 0)
            ),
            Err(ScheduleError::InvalidRange {
                what: "time window",
                ..
            })
        ));
        // A decade of a daily rule is fine; millennia are refused, not slow.
        let daily = [rule("FREQ=DAILY", (9, 0), (10, 0))];
        let decade =
            opening_intervals(&daily, Berlin, utc(2026, 1, 1, 0, 0, 0), utc(2036, 1, 1, 0, 0, 0)).unwrap();
        assert_eq!(decade.len(), 3652);
        assert!(matches!(
            opening_intervals(&daily, Berlin, utc(2026, 1, 1, 0, 0, 0), utc(3026, 1, 1, 0, 0, 0)),
            Err(ScheduleError::TooManyOccurrences { .. })
        ));
    }

    #[test]
    fn anchored_rules_count_from_valid_from() {
        // Every other week, from Monday 2026-01-05.
        let mut biweekly = rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", (9, 0), (12, 0));
        biweekly.valid_from = Some(date(2026, 1, 5));
        let rules = [biweekly];
        assert!(open(&rules, utc(2026, 1, 5, 9, 0, 0)));
        assert!(!open(&rules, utc(2026, 1, 12, 9, 0, 0)));
        assert!(open(&rules, utc(2026, 1, 19, 9, 0, 0)));
        // Far later, the phase is kept: 2030-01-14 is 210 weeks later,
        // 2030-01-07 209.
        assert!(open(&rules, utc(2030, 1, 14, 9, 0, 0)));
        assert!(!open(&rules, utc(2030, 1, 7, 9, 0, 0)));

        // Weekday taken from valid_from (Thursday 2026-01-01).
        let mut implicit = rule("FREQ=WEEKLY", (9, 0), (12, 0));
        implicit.valid_from = Some(date(2026, 1, 1));
        assert!(open(&[implicit.clone()], utc(2026, 1, 8, 9, 0, 0)));
        assert!(!open(&[implicit], utc(2026, 1, 9, 9, 0, 0)));

        // COUNT: three Mondays from 2026-01-01.
        let mut counted = rule("FREQ=WEEKLY;BYDAY=MO;COUNT=3", (9, 0), (12, 0));
        counted.valid_from = Some(date(2026, 1, 1));
        let counted = [counted];
        assert!(open(&counted, utc(2026, 1, 19, 9, 0, 0)));
        assert!(!open(&counted, utc(2026, 1, 26, 9, 0, 0)));

        // UNTIL (date form) is inclusive.
        let until = [rule("FREQ=WEEKLY;BYDAY=MO;UNTIL=20260112", (9, 0), (12, 0))];
        assert!(open(&until, utc(2026, 1, 12, 9, 0, 0)));
        assert!(!open(&until, utc(2026, 1, 19, 9, 0, 0)));
        // UNTIL in UTC compares with the opening instant (09:00 CET = 08:00Z).
        let until_utc = [rule(
            "FREQ=WEEKLY;BYDAY=MO;UNTIL=20260112T075959Z",
            (9, 0),
            (12, 0),
        )];
        assert!(open(&until_utc, utc(2026, 1, 5, 9, 0, 0)));
        assert!(!open(&until_utc, utc(2026, 1, 12, 9, 0, 0)));
    }

    #[test]
    fn old_series_are_evaluated_near_the_query() {
        let mut r = rule("FREQ=DAILY;INTERVAL=3", (9, 0), (12, 0));
        r.valid_from = Some(date(1900, 1, 2));
        let rules = [r];
        // 2026-01-01 is 46020 days after 1900-01-02, a multiple of 3.
        assert!(open(&rules, utc(2026, 1, 1, 9, 0, 0)));
        assert!(!open(&rules, utc(2026, 1, 2, 9, 0, 0)));
        assert!(!open(&rules, utc(2026, 1, 3, 9, 0, 0)));
        assert!(open(&rules, utc(2026, 1, 4, 9, 0, 0)));
    }

    #[test]
    fn validate_rejects_rules_unfit_for_opening_hours() {
        assert_eq!(rule("FREQ=WEEKLY;BYDAY=MO", (9, 0), (12, 0)).validate(), Ok(()));
        assert!(invalid_reason(&rule("FREQ=DAILY;BYHOUR=9", (9, 0), (12, 0))).contains("BYHOUR"));
        assert!(invalid_reason(&rule("FREQ=HOURLY", (9, 0), (12, 0))).contains("finer"));
        assert!(
            invalid_reason(&rule("FREQ=WEEKLY;BYDAY=MO;COUNT=3", (9, 0), (12, 0))).contains("valid_from")
        );
        assert!(
            invalid_reason(&rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", (9, 0), (12, 0))).contains("valid_from")
        );
        assert!(invalid_reason(&rule("FREQ=WEEKLY", (9, 0), (12, 0))).contains("BYDAY"));
        assert!(invalid_reason(&rule("FREQ=MONTHLY", (9, 0), (12, 0))).contains("BYDAY"));
        let mut ancient = rule("FREQ=DAILY", (9, 0), (12, 0));
        ancient.valid_from = Some(NaiveDate::MIN);
        assert!(matches!(
            ancient.validate(),
            Err(ScheduleError::OutOfSupportedRange {
                what: "valid_from",
                ..
            })
        ));
        // Evaluation reports an invalid rule instead of skipping it.
        let rules = [
            rule("FREQ=DAILY", (9, 0), (12, 0)),
            rule("FREQ=SOMETIMES", (9, 0), (12, 0)),
        ];
        assert!(matches!(
            is_open_at(&rules, Berlin, utc(2026, 1, 5, 9, 0, 0)),
            Err(ScheduleError::InvalidRrule { .. })
        ));
    }

    #[test]
    fn instants_beyond_supported_years_are_closed() {
        let rules = [rule("FREQ=DAILY", (0, 0), (0, 0))];
        assert_eq!(is_open_at(&rules, Berlin, DateTime::<Utc>::MAX_UTC), Ok(false));
        assert_eq!(is_open_at(&rules, Berlin, DateTime::<Utc>::MIN_UTC), Ok(false));
        assert_eq!(
            next_opening(&rules, Berlin, DateTime::<Utc>::MAX_UTC, 10),
            Ok(None)
        );
        assert!(is_open_at(&rules, Berlin, utc(9999, 12, 31, 12, 0, 0)).unwrap());
    }

    #[test]
    fn serde_shape() {
        let json = r#"{"rrule":"FREQ=WEEKLY;BYDAY=MO","opens":"09:00","closes":"12:30:00"}"#;
        let r: OpeningRule = serde_json::from_str(json).unwrap();
        assert_eq!(r.opens, time(9, 0));
        assert_eq!(r.closes, time(12, 30));
        assert_eq!((r.valid_from, r.valid_until, &r.description), (None, None, &None));
        assert!(r.closed_on.is_empty());
        let back: OpeningRule = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
