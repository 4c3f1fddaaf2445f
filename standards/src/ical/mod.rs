//! iCalendar (RFC 5545): events and offers' opening hours out as `.ics`, events in from `.ics`.
//!
//! * [`export_ics`]: a space's events (DTSTART/DTEND with TZID, RRULE, EXDATE) and every
//!   opening rule of its offers (a recurring, transparent VEVENT each), with one VTIMEZONE per
//!   zone used, written from chrono-tz's rules.
//! * [`import_ics`]: VEVENTs into event items keyed `ical:<UID>`; to-dos, journal entries,
//!   overrides of single occurrences and properties Quartier has no field for are listed as
//!   skipped, with the reason.
//!
//! Recurrence stays the domain's: RRULE text goes into [`EventTiming`] as it is and is
//! checked there (and expanded there, boundedly, when an export needs a series' end); this
//! module only rewrites UNTIL into the form RFC 5545 wants for the DTSTART it goes with.
//! Content lines (folding, escaping, parameters) live in `content_line`, shared with vCard.
//! The field-by-field mapping and the decisions are in `docs/standards.md`.
//!
//! [`EventTiming`]: quartier_domain::schedule::EventTiming

pub(crate) mod content_line;
mod export;
mod import;
mod timezone;
mod values;

pub use export::{export_ics, IcalExport, IcalExportOptions};
pub use import::{import_ics, IcalImportOptions};

pub(crate) use export::{address_line, not_a_url, pick};

/// Deepest nesting an import reads (`VCALENDAR` > `VEVENT` > `VALARM` is 3); deeper files are
/// refused whole.
pub const MAX_ICAL_DEPTH: usize = 8;

/// Most components (events, to-dos, time zones) one import reads; the rest are reported as
/// one skipped entry.
pub const MAX_ICAL_COMPONENTS: usize = 20_000;

/// Most line problems listed one by one; the others are counted in one entry.
pub const MAX_LISTED_PROBLEMS: usize = 1_000;

/// Most properties one component may have (an event, a card, an alarm); one with more is
/// skipped with the reason (a calendar's own properties beyond it are dropped and counted).
/// Shared with vCard.
pub const MAX_PROPERTIES_PER_COMPONENT: usize = 1_000;

/// Most content lines (after unfolding) one import keeps: the lines of the components it reads
/// (those beyond [`MAX_ICAL_COMPONENTS`] are only counted). A file that would need more is
/// refused whole. 20 000 events of 15 lines fit. Shared with vCard.
pub const MAX_CONTENT_LINES: usize = 300_000;

/// Our product identifier.
const PRODID: &str = "-//Quartier//Quartier standards//EN";

/// Variants of a title in languages other than the one written as SUMMARY (`LANGUAGE=` says
/// which); calendar programs ignore them, a Quartier import reads them back.
const SUMMARY_X: &str = "X-QUARTIER-SUMMARY";
/// The same for DESCRIPTION.
const DESCRIPTION_X: &str = "X-QUARTIER-DESCRIPTION";
