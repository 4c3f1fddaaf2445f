//! `.ics` → event items: each VEVENT with a UID becomes an [`ImportedItem`] keyed `ical:<UID>`;
//! everything else is listed as skipped with the reason.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;
use quartier_domain::model::{
    validate_language_tag, Event, ItemContent, ItemDetails, LocalizedText, Location, NewItem, PersonId,
    SpaceId, MAX_TAGS, MAX_TAG_CHARS,
};
use quartier_domain::schedule::{local_to_utc, parse_time_zone, EventTiming};

use super::content_line::{
    checked_text, parse_components, split_unescaped, unescape_text, Component, ContentLine, Limits,
};
use super::timezone::{lic_locations, resolve_tzid};
use super::values::{parse_date_value, parse_duration, DateValue};
use super::{
    DESCRIPTION_X, MAX_CONTENT_LINES, MAX_ICAL_COMPONENTS, MAX_ICAL_DEPTH, MAX_LISTED_PROBLEMS,
    MAX_PROPERTIES_PER_COMPONENT, SUMMARY_X,
};
use crate::import::{Import, ImportError, ImportedItem, Skipped};

/// Who the imported items belong to and how to read what the file leaves open.
#[derive(Clone, Debug, PartialEq)]
pub struct IcalImportOptions {
    space: SpaceId,
    author: PersonId,
    language: String,
    time_zone: Tz,
}

impl IcalImportOptions {
    /// `language` (BCP-47) is the language of texts without a LANGUAGE parameter; `time_zone`
    /// (IANA) is where floating times and all-day events are placed, normally the space's.
    pub fn new(
        space: SpaceId,
        author: PersonId,
        language: &str,
        time_zone: &str,
    ) -> Result<Self, quartier_domain::Error> {
        validate_language_tag(language).map_err(|reason| quartier_domain::Error::Invalid {
            field: "import language",
            reason,
        })?;
        let time_zone = parse_time_zone(time_zone)?;
        Ok(Self {
            space,
            author,
            language: language.to_owned(),
            time_zone,
        })
    }
}

/// Properties read into the item, or known to carry nothing a neighbourhood calendar keeps
/// (scheduling bookkeeping); any other property is reported as not taken.
const SILENT: [&str; 20] = [
    "UID",
    "DTSTAMP",
    "CREATED",
    "LAST-MODIFIED",
    "SEQUENCE",
    "TRANSP",
    "CLASS",
    "PRIORITY",
    "STATUS",
    "DTSTART",
    "DTEND",
    "DURATION",
    "RRULE",
    "EXDATE",
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "GEO",
    "CATEGORIES",
    "RECURRENCE-ID",
];

/// Reads an `.ics` file into event items.
///
/// The whole file is refused (an [`ImportError`]) only when it is too large, not UTF-8, has
/// no VCALENDAR, or nests components deeper than [`MAX_ICAL_DEPTH`]; every other problem
/// skips the one record concerned, with the reason. At most [`MAX_ICAL_COMPONENTS`] components
/// are read; an RRULE is checked by the domain (COUNT at most 10 000, no expansion at import).
pub fn import_ics(bytes: &[u8], options: &IcalImportOptions) -> Result<Import, ImportError> {
    let text = checked_text(bytes)?;
    let text: &str = &text;
    let limits = Limits {
        max_depth: MAX_ICAL_DEPTH,
        max_components: MAX_ICAL_COMPONENTS,
        max_reports: MAX_LISTED_PROBLEMS,
        max_properties: MAX_PROPERTIES_PER_COMPONENT,
        max_lines: MAX_CONTENT_LINES,
    };
    let parsed = parse_components(text, limits).map_err(|e| e.into_import_error("iCalendar", 0))?;
    if !parsed.components.iter().any(|c| c.name == "VCALENDAR") {
        return Err(ImportError::Malformed {
            format: "iCalendar",
            reason: "there is no BEGIN:VCALENDAR … END:VCALENDAR block".to_owned(),
        });
    }
    let mut import = Import {
        items: Vec::new(),
        skipped: parsed.problems,
    };
    let mut seen = BTreeSet::new();
    for top in &parsed.components {
        if top.name != "VCALENDAR" {
            import.skipped.push(Skipped {
                record: format!("line {}", top.line),
                reason: format!("a {} outside any VCALENDAR is not read", top.name),
            });
            continue;
        }
        let locations = lic_locations(top);
        let cancelled = cancelled_occurrences(top);
        let series: BTreeSet<String> = top
            .children
            .iter()
            .filter(|c| c.name == "VEVENT" && c.property("RECURRENCE-ID").is_none())
            .filter_map(|c| c.property("UID"))
            .map(|uid| unescape_text(&uid.value).trim().to_owned())
            .collect();
        for component in &top.children {
            read_component(
                component,
                &locations,
                &cancelled,
                &series,
                options,
                &mut seen,
                &mut import,
            );
        }
    }
    if parsed.dropped_components > 0 {
        import.skipped.push(Skipped {
            record: "file".to_owned(),
            reason: format!(
                "{} more components were not read: an import reads at most {MAX_ICAL_COMPONENTS}",
                parsed.dropped_components
            ),
        });
    }
    Ok(import)
}

/// The cancelled single occurrences of each series (a VEVENT with RECURRENCE-ID and
/// STATUS:CANCELLED, as Outlook and Exchange write a deleted occurrence), by UID: they become
/// EXDATEs of the series.
fn cancelled_occurrences(calendar: &Component) -> BTreeMap<String, Vec<&ContentLine>> {
    let mut cancelled: BTreeMap<String, Vec<&ContentLine>> = BTreeMap::new();
    for event in calendar.children.iter().filter(|c| c.name == "VEVENT") {
        let (Some(uid), Some(recurrence_id)) = (event.property("UID"), event.property("RECURRENCE-ID"))
        else {
            continue;
        };
        if event
            .property("STATUS")
            .is_some_and(|s| s.value.trim().eq_ignore_ascii_case("CANCELLED"))
        {
            let uid = unescape_text(&uid.value).trim().to_owned();
            cancelled.entry(uid).or_default().push(recurrence_id);
        }
    }
    cancelled
}

fn read_component(
    component: &Component,
    locations: &BTreeMap<String, String>,
    cancelled: &BTreeMap<String, Vec<&ContentLine>>,
    series: &BTreeSet<String>,
    options: &IcalImportOptions,
    seen: &mut BTreeSet<String>,
    import: &mut Import,
) {
    let uid = component
        .property("UID")
        .map(|p| unescape_text(&p.value).trim().to_owned())
        .filter(|uid| !uid.is_empty());
    let record = uid
        .as_ref()
        .map_or_else(|| format!("line {}", component.line), |uid| format!("ical:{uid}"));
    let skip = |import: &mut Import, reason: String| {
        import.skipped.push(Skipped {
            record: record.clone(),
            reason,
        })
    };
    match component.name.as_str() {
        "VEVENT" => {}
        "VTIMEZONE" => return,
        "VTODO" => {
            return skip(
                import,
                "a to-do (VTODO) is not an event; only events are imported".into(),
            )
        }
        "VJOURNAL" => {
            return skip(
                import,
                "a journal entry (VJOURNAL) is not an event; only events are imported".into(),
            )
        }
        "VFREEBUSY" => {
            return skip(
                import,
                "free/busy time (VFREEBUSY) is not an event; only events are imported".into(),
            )
        }
        other => {
            return skip(
                import,
                format!("a {other} component is not an event; only events are imported"),
            )
        }
    }
    let Some(uid) = uid else {
        return skip(
            import,
            "the event has no UID, so a later import could not update it".into(),
        );
    };
    if let Some(recurrence_id) = component.property("RECURRENCE-ID") {
        if cancelled
            .get(&uid)
            .is_some_and(|ids| ids.iter().any(|id| std::ptr::eq(*id, recurrence_id)))
        {
            // Taken as an EXDATE of its series, if the series is in the file.
            if series.contains(&uid) {
                return;
            }
            return skip(
                import,
                format!(
                    "cancels the occurrence {} of a series that is not in this file",
                    recurrence_id.value.trim()
                ),
            );
        }
        return skip(
            import,
            format!(
                "a change to the single occurrence {} of a series (RECURRENCE-ID): Quartier events \
                 have no per-occurrence changes; the series is imported as its rule says",
                recurrence_id.value.trim()
            ),
        );
    }
    if !seen.insert(uid.clone()) {
        return skip(
            import,
            "another event in the file has the same UID; the first one is imported".into(),
        );
    }
    let cancelled_here = cancelled.get(&uid).map(Vec::as_slice).unwrap_or_default();
    match read_event(component, locations, cancelled_here, options) {
        Ok((item, notes)) => {
            if !notes.is_empty() {
                skip(import, format!("imported without: {}", notes.join("; ")));
            }
            import.items.push(ImportedItem {
                source_key: record.clone(),
                item,
            });
        }
        Err(reason) => skip(import, reason),
    }
}

/// A time property's value in the event's frame: its zone, local time, and whether it was a
/// DATE.
struct When {
    tz: Tz,
    local: NaiveDateTime,
    date: bool,
}

/// Reads one DTSTART/DTEND/EXDATE value; `tz_default` places floating times and dates.
fn read_when(
    property: &ContentLine,
    value: &str,
    locations: &BTreeMap<String, String>,
    tz_default: Tz,
) -> Result<When, String> {
    let parsed = parse_date_value(value).map_err(|e| format!("{}: {e}", property.name))?;
    if property
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
        && !matches!(parsed, DateValue::Date(_))
    {
        return Err(format!(
            "{} says VALUE=DATE but holds `{}`",
            property.name,
            value.trim()
        ));
    }
    Ok(match parsed {
        DateValue::Date(date) => When {
            tz: tz_default,
            local: date.and_time(NaiveTime::MIN),
            date: true,
        },
        DateValue::Utc(instant) => When {
            tz: chrono_tz::UTC,
            local: instant.naive_utc(),
            date: false,
        },
        DateValue::Local(local) => match property.param("TZID") {
            Some(tzid) => When {
                tz: resolve_tzid(tzid, locations)?,
                local,
                date: false,
            },
            None => When {
                tz: tz_default,
                local,
                date: false,
            },
        },
    })
}

/// `when` as local time in `tz`.
fn in_zone(when: &When, tz: Tz) -> NaiveDateTime {
    if when.tz == tz {
        when.local
    } else {
        local_to_utc(when.tz, when.local).with_timezone(&tz).naive_local()
    }
}

fn localized(component: &Component, name: &str, x_name: &str, default_language: &str) -> LocalizedText {
    let mut text = LocalizedText::new();
    let language_of = |p: &ContentLine| {
        p.param("LANGUAGE")
            .filter(|l| validate_language_tag(l).is_ok())
            .unwrap_or(default_language)
            .to_owned()
    };
    for p in component.properties_named(x_name) {
        text.set(&language_of(p), unescape_text(&p.value));
    }
    if let Some(p) = component.property(name) {
        let value = unescape_text(&p.value);
        if !value.trim().is_empty() {
            text.set(&language_of(p), value);
        }
    }
    text
}

fn read_event(
    event: &Component,
    locations: &BTreeMap<String, String>,
    cancelled: &[&ContentLine],
    options: &IcalImportOptions,
) -> Result<(NewItem, Vec<String>), String> {
    let mut notes = Vec::new();
    if event
        .property("STATUS")
        .is_some_and(|s| s.value.trim().eq_ignore_ascii_case("CANCELLED"))
    {
        return Err("the event is cancelled (STATUS:CANCELLED)".into());
    }
    let start_property = event.property("DTSTART").ok_or("the event has no DTSTART")?;
    let start = read_when(
        start_property,
        &start_property.value,
        locations,
        options.time_zone,
    )?;
    let tz = start.tz;
    let end_property = event.property("DTEND");
    let duration_property = event.property("DURATION");
    let end = match (end_property, duration_property) {
        (Some(end_property), other) => {
            if other.is_some() {
                notes.push(
                    "DURATION (the event also has DTEND, which RFC 5545 forbids; DTEND was used)".to_owned(),
                );
            }
            let end = read_when(end_property, &end_property.value, locations, options.time_zone)?;
            if end.date != start.date {
                return Err("DTSTART and DTEND must both be dates or both date-times".into());
            }
            in_zone(&end, tz)
        }
        (None, Some(duration_property)) => {
            let duration = parse_duration(&duration_property.value)?;
            if start.date && duration.seconds != 0 {
                return Err("an all-day event's DURATION must be whole days or weeks".into());
            }
            let local = start
                .local
                .checked_add_signed(Duration::days(duration.days))
                .ok_or("DURATION reaches past the supported dates")?;
            let instant = local_to_utc(tz, local) + Duration::seconds(duration.seconds);
            instant.with_timezone(&tz).naive_local()
        }
        // RFC 5545: a date alone is one day; a date-time alone ends when it starts, which a
        // Quartier event cannot, so it gets an hour.
        (None, None) if start.date => start.local + Duration::days(1),
        (None, None) => {
            notes.push("an end (none given; the event was given one hour)".to_owned());
            start.local + Duration::hours(1)
        }
    };
    let rrules: Vec<&ContentLine> = event.properties_named("RRULE").collect();
    if rrules.len() > 1 {
        return Err("the event has more than one RRULE, which RFC 5545 no longer allows".into());
    }
    if event.property("EXRULE").is_some() {
        return Err("EXRULE (removed from iCalendar by RFC 5545) is not supported; the event's occurrences cannot be computed".into());
    }
    let mut exdates = Vec::new();
    for property in event.properties_named("EXDATE").chain(cancelled.iter().copied()) {
        for value in property.value.split(',').filter(|v| !v.trim().is_empty()) {
            let when = read_when(property, value, locations, options.time_zone)?;
            exdates.push(if when.date && !start.date {
                // A date excludes the occurrence on that day.
                when.local.date().and_time(start.local.time())
            } else {
                in_zone(&when, tz)
            });
        }
    }
    let timing = EventTiming {
        start: start.local,
        end,
        time_zone: tz.name().to_owned(),
        rrule: rrules.first().map(|r| r.value.trim().to_owned()),
        exdates,
    };
    timing.validate().map_err(|e| e.to_string())?;

    let title = localized(event, "SUMMARY", SUMMARY_X, &options.language);
    if title.iter().all(|(_, t)| t.trim().is_empty()) {
        return Err("the event has no SUMMARY (title)".into());
    }
    let body = localized(event, "DESCRIPTION", DESCRIPTION_X, &options.language);
    let venue = event
        .property("LOCATION")
        .map(|p| unescape_text(&p.value).trim().to_owned())
        .filter(|v| !v.is_empty());
    let mut content = ItemContent::new(title, ItemDetails::Event(Event { timing, venue }));
    content.body = body;
    if let Some(geo) = event.property("GEO") {
        match read_geo(&geo.value) {
            Some(location) => content.location = Some(location),
            None => notes.push(format!(
                "GEO `{}` (not a latitude;longitude pair)",
                geo.value.trim()
            )),
        }
    }
    for property in event.properties_named("CATEGORIES") {
        for raw in split_unescaped(&property.value, ',') {
            let tag = unescape_text(raw).trim().to_owned();
            let chars = tag.chars().count();
            if tag.is_empty() {
                continue;
            }
            if chars > MAX_TAG_CHARS || tag.chars().any(char::is_control) {
                notes.push(format!(
                    "the category `{}…` (a tag has at most {MAX_TAG_CHARS} characters)",
                    tag.chars().take(20).collect::<String>()
                ));
            } else if content.tags.len() >= MAX_TAGS && !content.tags.contains(&tag) {
                notes.push(format!(
                    "the category `{tag}` (an item has at most {MAX_TAGS} tags)"
                ));
            } else {
                content.tags.insert(tag);
            }
        }
    }
    if event.property("RDATE").is_some() {
        notes.push("RDATE (Quartier events have no extra dates outside their rule)".to_owned());
    }
    let mut other: BTreeMap<&str, usize> = BTreeMap::new();
    for property in &event.properties {
        let name = property.name.as_str();
        if SILENT.contains(&name) || name.starts_with("X-") || name == "RDATE" {
            continue;
        }
        *other.entry(name).or_default() += 1;
    }
    for (name, count) in other {
        let why = match name {
            "ATTENDEE" | "ORGANIZER" | "CONTACT" => "people's addresses are not taken into a space",
            "URL" => "an event item has no link field",
            "ATTACH" | "IMAGE" => "attachments are not fetched",
            _ => "Quartier has no field for it",
        };
        let times = if count > 1 {
            format!(" ×{count}")
        } else {
            String::new()
        };
        notes.push(format!("{name}{times} ({why})"));
    }
    for child in event.children.iter().filter(|c| c.name != "VALARM") {
        notes.push(format!("the {} inside the event (not read)", child.name));
    }
    content.validate().map_err(|e| e.to_string())?;
    Ok((NewItem::new(options.space, options.author, content), notes))
}

fn read_geo(value: &str) -> Option<Location> {
    let (lat, lon) = value.trim().split_once([';', ','])?;
    let location = Location::new(lat.trim().parse().ok()?, lon.trim().parse().ok()?);
    location.validate().ok()?;
    Some(location)
}
