//! Time rules: opening hours of offers and the timing of events.
//!
//! This module holds two ideas and the small amount of machinery they share:
//!
//! * **Opening hours** ([`OpeningRule`], [`is_open_at`], [`next_opening`],
//!   [`opening_intervals`]), modelled on the Open Referral HSDS 3.0
//!   `schedule` object: an RFC 5545 `RRULE` picks the *days*, `opens` /
//!   `closes` give the local wall-clock times, `valid_from` / `valid_until`
//!   bound the validity and `closed_on` lists holidays.
//! * **Event timing** ([`EventTiming`]): a local start/end in the event's own
//!   IANA time zone, optionally repeated by an `RRULE` with `EXDATE`s.
//!
//! Everything is pure computation on values: nothing here touches storage,
//! the network or the system clock (callers pass "now" in).
//!
//! # Time zones and daylight saving
//!
//! Recurrences are expanded on *local wall-clock* time ("09:00 every Monday"
//! stays 09:00 local on both sides of a DST change) and only then mapped to
//! UTC instants with one rule, used everywhere ([`local_to_utc`]):
//!
//! * a local time that does not exist (spring-forward gap) maps to the first
//!   instant after the gap, e.g. 02:30 on the Berlin spring-forward night is
//!   03:00 CEST;
//! * a local time that exists twice (fall-back overlap) maps to the earlier
//!   instant.
//!
//! # RRULE dialect
//!
//! Rules are bare RFC 5545 `RRULE` values such as `FREQ=WEEKLY;BYDAY=MO,WE`
//! (no `RRULE:` prefix, no `DTSTART`, ASCII only). `FREQ` must be `DAILY`,
//! `WEEKLY`, `MONTHLY` or `YEARLY`; finer frequencies make no sense for
//! opening hours or neighbourhood events and could expand without bound.
//! `COUNT` is limited to [`MAX_COUNT`]. `UNTIL` may be written in any of the
//! three RFC 5545 forms and is normalised instead of rejected:
//!
//! * `UNTIL=20261231` (date): inclusive, the last local *date* on which an
//!   occurrence may start;
//! * `UNTIL=20261231T180000` (floating): a local date-time in the schedule's
//!   zone, compared with each occurrence's local start;
//! * `UNTIL=20261231T170000Z` (UTC): compared with each occurrence's start
//!   instant.
//!
//! `COUNT` and `UNTIL` together are rejected, as RFC 5545 requires.
//!
//! # Bounded work
//!
//! No call loops without bound: a single call examines at most
//! [`MAX_EXPANSION`] recurrence instances and otherwise fails with
//! [`ScheduleError::TooManyOccurrences`]; a series without `COUNT` is
//! expanded from the period just before the requested window rather than
//! from its start; a rule that never matches (`BYMONTH=2;BYMONTHDAY=30`) is
//! searched at most a few hundred years past the window; look-ahead windows
//! are capped at [`MAX_HORIZON_DAYS`]; supported dates are the years 1 to
//! 9999 (instants outside them are simply never open).

mod event;
mod opening;
mod recur;
#[cfg(test)]
mod tests;
mod zone;

pub use event::EventTiming;
pub use opening::{is_open_at, next_opening, opening_intervals, OpeningRule};
pub use zone::{local_to_utc, parse_time_zone};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// Local dates and times are chrono's, so they are remote custom types: across the FFI they are
// ISO strings as in documents (`YYYY-MM-DD`; `HH:MM[:SS]`, read back as `HH:MM:SS`;
// `YYYY-MM-DDTHH:MM[:SS]`, read back with seconds). Crates that pass them across name them with
// `uniffi::use_remote_type!(quartier_domain::NaiveDate)` etc. A malformed string is refused
// while crossing, as `QuartierError::Invalid` (the exported error type), never as a crash.
#[cfg(feature = "uniffi")]
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

#[cfg(feature = "uniffi")]
uniffi::custom_type!(NaiveDate, String, {
    remote,
    lower: |date| date.format("%Y-%m-%d").to_string(),
    try_lift: |text| Ok(NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|e| {
        crate::QuartierError::invalid("date", format!("`{text}` is not a date YYYY-MM-DD ({e})"))
    })?),
});

#[cfg(feature = "uniffi")]
uniffi::custom_type!(NaiveTime, String, {
    remote,
    lower: |time| time.format("%H:%M:%S").to_string(),
    try_lift: |text| Ok(NaiveTime::parse_from_str(&text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(&text, "%H:%M"))
        .map_err(|e| crate::QuartierError::invalid("time", format!("`{text}` is not a time HH:MM[:SS] ({e})")))?),
});

#[cfg(feature = "uniffi")]
uniffi::custom_type!(NaiveDateTime, String, {
    remote,
    lower: |time| time.format("%Y-%m-%dT%H:%M:%S").to_string(),
    try_lift: |text| Ok(NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M"))
        .map_err(|e| {
            crate::QuartierError::invalid(
                "local date-time",
                format!("`{text}` is not a local date-time YYYY-MM-DDTHH:MM[:SS] ({e})"),
            )
        })?),
});

/// Most recurrence instances a single call will examine before giving up
/// with [`ScheduleError::TooManyOccurrences`].
pub const MAX_EXPANSION: usize = 100_000;

/// Largest `COUNT` accepted in an `RRULE`.
pub const MAX_COUNT: u32 = 10_000;

/// Longest look-ahead of [`next_opening`], in days; larger values are capped.
pub const MAX_HORIZON_DAYS: u32 = 3_660;

/// First and last calendar year this module computes with.
pub const SUPPORTED_YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// Why a schedule value was rejected or could not be evaluated.
///
/// Every variant names the offending value; no input makes this module panic.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ScheduleError {
    /// The `RRULE` text is malformed or uses something this module does not
    /// support.
    #[error("invalid recurrence rule {rule:?}: {reason}")]
    InvalidRrule {
        /// The rule as given.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The time zone name is not a known IANA zone.
    #[error("unknown time zone {0:?}: expected an IANA name such as \"Europe/Berlin\"")]
    UnknownTimeZone(String),
    /// A start/end pair is empty or reversed.
    #[error("invalid {what}: {start} .. {end}: {reason}")]
    InvalidRange {
        /// Which pair, e.g. `"event start/end"`.
        what: &'static str,
        /// The start value as given.
        start: String,
        /// The end value as given.
        end: String,
        /// What is wrong with the pair.
        reason: &'static str,
    },
    /// A date lies outside [`SUPPORTED_YEARS`].
    #[error("{what} {value} is outside the supported years 1 to 9999")]
    OutOfSupportedRange {
        /// Which field.
        what: &'static str,
        /// The value as given.
        value: String,
    },
    /// Answering would need more than [`MAX_EXPANSION`] recurrence instances.
    #[error(
        "{what} would expand more than {limit} occurrences; \
         narrow the time window, lower the limit or simplify the rule"
    )]
    TooManyOccurrences {
        /// What was being expanded.
        what: &'static str,
        /// The limit that was hit ([`MAX_EXPANSION`]).
        limit: usize,
    },
}

/// A half-open span of time `[start, end)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interval {
    /// First instant inside the interval.
    pub start: DateTime<Utc>,
    /// First instant after the interval.
    pub end: DateTime<Utc>,
}

impl Interval {
    /// Whether `at` lies in `[start, end)`.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    /// Whether this interval shares at least one instant with `[from, to)`.
    pub fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.start < to && self.end > from
    }
}
