//! Cross-cutting tests: hostile input never panics, results keep their
//! invariants.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

use super::*;

const HOSTILE: &[&str] = &[
    "",
    " ",
    ";",
    "=",
    "==",
    "FREQ",
    "FREQ=",
    "FREQ==DAILY",
    "FREQ=DAILY=WEEKLY",
    "FREQ=DAILY;;;",
    "freq=daily;byday=mo",
    "FREQ=SOMETIMES",
    "BYDAY=XX",
    "FREQ=WEEKLY;INTERVAL=-1",
    "FREQ=WEEKLY;INTERVAL=65535",
    "FREQ=WEEKLY;INTERVAL=65536",
    "FREQ=WEEKLY;BYDAY=",
    "FREQ=WEEKLY;BYDAY=,",
    "FREQ=WEEKLY;BYDAY=1",
    "FREQ=WEEKLY;BYDAY=+MO",
    "FREQ=WEEKLY;BYDAY=-0MO",
    "FREQ=MONTHLY;BYDAY=99999MO",
    "FREQ=MONTHLY;BYDAY=-99999MO",
    "FREQ=MONTHLY;BYDAY=5FR;BYSETPOS=-1",
    "FREQ=MONTHLY;BYMONTHDAY=0",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=YEARLY;BYSETPOS=0;BYMONTH=1",
    "FREQ=YEARLY;BYSETPOS=400;BYMONTH=1",
    "FREQ=YEARLY;BYSETPOS=1",
    "FREQ=YEARLY;BYWEEKNO=54",
    "FREQ=YEARLY;BYWEEKNO=-53;BYDAY=SU",
    "FREQ=YEARLY;BYYEARDAY=-367",
    "FREQ=YEARLY;BYYEARDAY=366",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=5",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31",
    "FREQ=DAILY;WKST=XX",
    "FREQ=DAILY;UNTIL=99991231T235959Z",
    "FREQ=DAILY;UNTIL=20260101T000000+01",
    "FREQ=DAILY;UNTIL=2026010",
    "FREQ=DAILY;UNTIL=2026010AT000000Z",
    "FREQ=DAILY;COUNT=-1",
    "FREQ=DAILY;COUNT=10000",
    "FREQ=DAILY;BYHOUR=25",
    "FREQ=WEEKLY;BYEASTER=1",
    "FREQ=SECONDLY",
    "RRULE:FREQ=DAILY",
    "DTSTART;TZID=Europe/Berlin:20260101T090000\nRRULE:FREQ=DAILY",
    "FREQ=WEEKLY;BYDAY=MO\u{0}",
    "FREQ=WEEKLY;BYDAY=ＭＯ",
    "FREQ=WEEKLY;BYDAY=éMO",
    "\u{202e}FREQ=DAILY",
    "🦀🦀🦀",
    "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR,SA,SU,MO,TU,WE,TH,FR,SA,SU",
];

const ZONES: &[&str] = &[
    "Europe/Berlin",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Asia/Kathmandu",
    "UTC",
];

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// Deterministic xorshift, enough to vary generated rules.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

fn generated_rules(n: usize) -> Vec<String> {
    let mut rng = Rng(0x5eed_cafe_f00d);
    let days = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
    (0..n)
        .map(|_| {
            let mut parts = vec![format!(
                "FREQ={}",
                rng.pick(&["DAILY", "WEEKLY", "MONTHLY", "YEARLY"])
            )];
            for _ in 0..rng.int(0, 3) {
                let part = match rng.int(0, 10) {
                    0 => format!("INTERVAL={}", rng.int(0, 60)),
                    1 => format!("COUNT={}", rng.int(0, 40)),
                    2 => format!("UNTIL=20{:02}0{}15", rng.int(20, 40), rng.int(1, 9)),
                    3 => format!("BYDAY={}{}", rng.int(-6, 6), rng.pick(&days)),
                    4 => format!("BYDAY={},{}", rng.pick(&days), rng.pick(&days)),
                    5 => format!("BYMONTHDAY={}", rng.int(-32, 32)),
                    6 => format!("BYMONTH={}", rng.int(0, 13)),
                    7 => format!("BYSETPOS={}", rng.int(-8, 8)),
                    8 => format!("BYYEARDAY={}", rng.int(-370, 370)),
                    9 => format!("BYWEEKNO={}", rng.int(-54, 54)),
                    _ => format!("WKST={}", rng.pick(&days)),
                };
                parts.push(part);
            }
            parts.join(";")
        })
        .collect()
}

fn check_opening(text: &str, valid_from: Option<NaiveDate>, zone: &str) {
    let tz = parse_time_zone(zone).unwrap();
    let rule = OpeningRule {
        rrule: text.to_owned(),
        opens: NaiveTime::from_hms_opt(22, 30, 0).unwrap(),
        closes: NaiveTime::from_hms_opt(2, 15, 0).unwrap(),
        valid_from,
        valid_until: None,
        closed_on: vec![NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()],
        description: None,
    };
    let valid = rule.validate();
    let rules = [rule];
    let (from, to) = (utc(2026, 1, 1), utc(2026, 7, 1));
    match opening_intervals(&rules, tz, from, to) {
        Ok(intervals) => {
            assert_eq!(valid, Ok(()), "{text:?}");
            for pair in intervals.windows(2) {
                assert!(pair[0].end < pair[1].start, "{text:?} {pair:?}");
            }
            for (i, interval) in intervals.iter().enumerate() {
                assert!(interval.start < interval.end && interval.overlaps(from, to));
                if i < 4 && interval.start >= from {
                    assert_eq!(is_open_at(&rules, tz, interval.start), Ok(true), "{text:?}");
                    let before = interval.start - Duration::seconds(1);
                    assert_eq!(is_open_at(&rules, tz, before), Ok(false), "{text:?}");
                }
            }
            let next = next_opening(&rules, tz, from, 181).unwrap();
            assert_eq!(next, intervals.first().copied(), "{text:?} in {zone}");
        }
        Err(e) => {
            assert!(valid.is_err() || matches!(e, ScheduleError::TooManyOccurrences { .. }));
            assert!(!e.to_string().is_empty());
        }
    }
}

fn check_event(text: &str, zone: &str) {
    let start = NaiveDate::from_ymd_opt(2026, 1, 31)
        .unwrap()
        .and_hms_opt(23, 30, 0)
        .unwrap();
    let event = EventTiming {
        start,
        end: start + Duration::hours(3),
        time_zone: zone.to_owned(),
        rrule: Some(text.to_owned()),
        exdates: vec![start + Duration::days(7)],
    };
    let valid = event.validate();
    let (from, to) = (utc(2026, 6, 1), utc(2027, 6, 1));
    match event.occurrences_between(from, to, 50) {
        Ok(found) => {
            assert_eq!(valid, Ok(()), "{text:?}");
            assert!(found.len() <= 50);
            for pair in found.windows(2) {
                assert!(pair[0].start <= pair[1].start, "{text:?}");
            }
            assert!(found.iter().all(|o| o.overlaps(from, to) && o.start < o.end));
            let (first, last) = event.series_bounds().unwrap();
            for o in &found {
                assert!(
                    first <= o.start && last.is_none_or(|last| o.end <= last),
                    "{text:?}"
                );
            }
        }
        Err(e) => {
            assert!(valid.is_err() || matches!(e, ScheduleError::TooManyOccurrences { .. }));
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn hostile_rule_strings_never_panic() {
    let long_garbage = "X;=".repeat(5000);
    let mut rng = Rng(42);
    let random: Vec<String> = (0..40)
        .map(|_| {
            (0..rng.int(1, 40))
                .map(|_| char::from_u32(rng.int(0, 0x2FF) as u32).unwrap_or('?'))
                .collect()
        })
        .collect();
    let texts = HOSTILE
        .iter()
        .map(|s| s.to_string())
        .chain([long_garbage])
        .chain(random);
    for text in texts {
        for zone in ["Europe/Berlin", "Pacific/Apia", "Australia/Lord_Howe"] {
            check_opening(&text, None, zone);
            check_opening(&text, NaiveDate::from_ymd_opt(2025, 12, 24), zone);
            check_event(&text, zone);
        }
    }
}

#[test]
fn generated_rules_keep_invariants() {
    for (i, text) in generated_rules(200).iter().enumerate() {
        let zone = ZONES[i % ZONES.len()];
        check_opening(text, NaiveDate::from_ymd_opt(2025, 11, 30), zone);
        check_event(text, zone);
    }
}

#[test]
fn hostile_zone_names_are_typed_errors() {
    for name in [
        "",
        "Europe/Berlin\n",
        "../../etc/passwd",
        "🦀",
        &"A/".repeat(4000),
    ] {
        assert_eq!(
            parse_time_zone(name),
            Err(ScheduleError::UnknownTimeZone(name.to_owned()))
        );
        let event = EventTiming {
            start: NaiveDate::from_ymd_opt(2026, 1, 1)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 1, 1)
                .unwrap()
                .and_hms_opt(10, 0, 0)
                .unwrap(),
            time_zone: name.to_owned(),
            rrule: None,
            exdates: vec![],
        };
        assert!(matches!(event.validate(), Err(ScheduleError::UnknownTimeZone(_))));
    }
}

#[test]
fn error_messages_name_the_value() {
    let e = OpeningRule {
        rrule: "FREQ=SOMETIMES".into(),
        opens: NaiveTime::MIN,
        closes: NaiveTime::MIN,
        valid_from: None,
        valid_until: None,
        closed_on: vec![],
        description: None,
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("FREQ=SOMETIMES"), "{e}");
    let tz = parse_time_zone("Mars/Olympus").unwrap_err();
    assert!(tz.to_string().contains("Mars/Olympus"), "{tz}");
}
