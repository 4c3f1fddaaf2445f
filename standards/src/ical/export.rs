//! Items → `.ics`: events as VEVENTs (with their RRULE, EXDATEs and zone), offers' opening
//! rules as recurring VEVENTs, one VTIMEZONE per zone used.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use quartier_domain::model::{Address, Item, ItemDetails, LocalizedText, Offer, Space, Status};
use quartier_domain::schedule::{local_to_utc, opening_intervals, parse_time_zone, EventTiming, OpeningRule};

use super::content_line::{escape_text, http_url, Writer};
use super::timezone::{covered_range, write_vtimezone};
use super::values::{end_of_local_day, format_date, format_local, format_utc, rewrite_until, StartForm};
use super::{DESCRIPTION_X, PRODID, SUMMARY_X};
use crate::import::Skipped;

/// How far past the later of the export and a series' start a VTIMEZONE reaches for a series
/// without an end, in years.
const OPEN_SERIES_YEARS: i64 = 5;

/// What an export needs besides the items.
#[derive(Clone, Debug, PartialEq)]
pub struct IcalExportOptions {
    /// The moment of the export: every VEVENT's DTSTAMP, and the first day of opening hours
    /// that have no start date of their own. Passed in so that an export is a pure function.
    pub now: DateTime<Utc>,
    /// BCP-47 tags in the order the readers prefer them: the first one an item has becomes
    /// SUMMARY and DESCRIPTION; the other variants are kept in `X-QUARTIER-SUMMARY` and
    /// `X-QUARTIER-DESCRIPTION`, which only Quartier reads.
    pub languages: Vec<String>,
    /// Where an item can be opened on the web, e.g. `https://quartier.example/i/`: the item id
    /// is appended for each VEVENT's URL. `None` writes no URL for events (an offer's own
    /// service or organization URL is written either way).
    pub item_link_base: Option<String>,
}

/// An export: the `.ics` text and the items (or opening rules) that could not be written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IcalExport {
    pub ics: String,
    pub skipped: Vec<Skipped>,
}

/// One VEVENT to write.
struct Entry<'a> {
    item: &'a Item,
    uid: String,
    timing: EventTiming,
    tz: Tz,
    summary: LocalizedText,
    location: Option<String>,
    url: Option<String>,
    /// Opening hours do not make the reader busy.
    transparent: bool,
    /// First start and last end (or the end of the covered range) of the series.
    span: (DateTime<Utc>, DateTime<Utc>),
}

/// Writes the events and offers of `items` as one calendar of `space`.
///
/// Events become one VEVENT each; every opening rule of an offer becomes a recurring VEVENT
/// (`docs/standards.md` has the mapping). Items of other kinds, drafts, hidden and deleted
/// items are left out: a calendar is for others to read. An event or rule that cannot be
/// written (its timing does not validate, a rule has no opening left) is listed in
/// [`IcalExport::skipped`] and the rest is still written.
pub fn export_ics(space: &Space, items: &[Item], options: &IcalExportOptions) -> IcalExport {
    let mut skipped = Vec::new();
    let mut entries = Vec::new();
    let space_tz = parse_time_zone(&space.meta.time_zone);
    if let Some(base) = &options.item_link_base {
        if http_url(&format!("{base}x")).is_none() {
            skipped.push(Skipped {
                record: "item link base".to_owned(),
                reason: format!("events are written without URL: {}", not_a_url(base)),
            });
        }
    }
    for item in items {
        if matches!(
            item.content.status,
            Status::Draft | Status::Hidden | Status::Deleted
        ) {
            continue;
        }
        match &item.content.details {
            ItemDetails::Event(event) => {
                let built = event_entry(item, &event.timing, options).map(|mut entry| {
                    entry.location = event.venue.clone().filter(|v| !v.trim().is_empty());
                    entry
                });
                match built {
                    Ok(entry) => entries.push(entry),
                    Err(reason) => skipped.push(Skipped {
                        record: format!("event {}", item.id),
                        reason,
                    }),
                }
            }
            ItemDetails::Offer(offer) => {
                let tz = match &space_tz {
                    Ok(tz) => *tz,
                    Err(e) => {
                        skipped.push(Skipped {
                            record: format!("offer {}", item.id),
                            reason: format!("the space's time zone is not usable: {e}"),
                        });
                        continue;
                    }
                };
                let urls = [
                    ("service URL", &offer.service_url),
                    ("organization URL", &offer.organization.url),
                ];
                for (what, url) in urls {
                    let url = url.as_deref().filter(|u| !u.trim().is_empty());
                    if let Some(url) = url.filter(|u| http_url(u).is_none() && !offer.schedules.is_empty()) {
                        skipped.push(Skipped {
                            record: format!("offer {}", item.id),
                            reason: format!("the {what} is not written: {}", not_a_url(url)),
                        });
                    }
                }
                for (index, rule) in offer.schedules.iter().enumerate() {
                    match offer_entry(item, offer, index, rule, tz, options) {
                        Ok(entry) => entries.push(entry),
                        Err(reason) => skipped.push(Skipped {
                            record: format!("offer {} opening rule {}", item.id, index + 1),
                            reason,
                        }),
                    }
                }
            }
            _ => {}
        }
    }

    let mut writer = Writer::new();
    writer.begin("VCALENDAR");
    writer.property("VERSION", &[], "2.0");
    writer.property("PRODID", &[], PRODID);
    writer.property("CALSCALE", &[], "GREGORIAN");
    writer.property("METHOD", &[], "PUBLISH");
    if let Some((language, name)) = pick(&space.meta.name, &options.languages) {
        writer.text("NAME", &[("LANGUAGE", language)], name);
        writer.text("X-WR-CALNAME", &[], name);
    }
    writer.text("X-WR-TIMEZONE", &[], &space.meta.time_zone);

    // One VTIMEZONE per zone, covering every series written in it.
    let mut zones: BTreeMap<&str, (Tz, DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for entry in entries
        .iter()
        .filter(|e| matches!(start_form(e), StartForm::Zoned(_)))
    {
        let (first, last) = entry.span;
        zones
            .entry(entry.tz.name())
            .and_modify(|(_, from, to)| {
                *from = (*from).min(first);
                *to = (*to).max(last);
            })
            .or_insert((entry.tz, first, last));
    }
    for (tz, first, last) in zones.values() {
        let (from, to) = covered_range(*first, *last);
        write_vtimezone(&mut writer, *tz, from, to);
    }
    for entry in &entries {
        write_vevent(&mut writer, entry, options);
    }
    writer.end("VCALENDAR");
    IcalExport {
        ics: writer.finish(),
        skipped,
    }
}

/// All day: from midnight to a later midnight, written as DATE values (no zone: calendar
/// programs show it on those days wherever the reader is).
fn is_all_day(timing: &EventTiming) -> bool {
    timing.start.time() == NaiveTime::MIN && timing.end.time() == NaiveTime::MIN && timing.end > timing.start
}

fn start_form(entry: &Entry<'_>) -> StartForm {
    if is_all_day(&entry.timing) {
        StartForm::Date
    } else if is_utc(entry.tz) {
        StartForm::Utc
    } else {
        StartForm::Zoned(entry.tz)
    }
}

fn is_utc(tz: Tz) -> bool {
    matches!(
        tz,
        Tz::UTC | Tz::Etc__UTC | Tz::Etc__Universal | Tz::Etc__Zulu | Tz::Universal | Tz::Zulu
    )
}

/// The span a series covers, for its zone's VTIMEZONE.
fn series_span(timing: &EventTiming, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let (first, last) = timing.series_bounds().map_err(|e| e.to_string())?;
    let last = last.unwrap_or_else(|| first.max(now) + Duration::days(366 * OPEN_SERIES_YEARS));
    Ok((first, last))
}

fn event_entry<'a>(
    item: &'a Item,
    timing: &EventTiming,
    options: &IcalExportOptions,
) -> Result<Entry<'a>, String> {
    timing.validate().map_err(|e| e.to_string())?;
    let tz = parse_time_zone(&timing.time_zone).map_err(|e| e.to_string())?;
    Ok(Entry {
        item,
        uid: format!("{}@quartier", item.id),
        timing: timing.clone(),
        tz,
        summary: item.content.title.clone(),
        location: None,
        url: options
            .item_link_base
            .as_ref()
            .map(|base| format!("{base}{}", item.id))
            .filter(|url| http_url(url).is_some()),
        transparent: false,
        span: series_span(timing, options.now)?,
    })
}

fn offer_entry<'a>(
    item: &'a Item,
    offer: &Offer,
    index: usize,
    rule: &OpeningRule,
    tz: Tz,
    options: &IcalExportOptions,
) -> Result<Entry<'a>, String> {
    let today = options.now.with_timezone(&tz).date_naive();
    let timing = opening_timing(rule, tz, today)?;
    let mut summary = LocalizedText::new();
    for (language, title) in item.content.title.iter() {
        match rule
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            Some(description) => summary.set(language, format!("{title} ({description})")),
            None => summary.set(language, title),
        }
    }
    let location = offer.location.as_ref().map(|place| {
        let mut parts = vec![place.name.clone()];
        if let Some(address) = &place.address {
            parts.push(address_line(address));
        }
        parts.retain(|p| !p.trim().is_empty());
        parts.join(", ")
    });
    Ok(Entry {
        item,
        uid: format!("{}-opening-{}@quartier", item.id, index + 1),
        span: series_span(&timing, options.now)?,
        timing,
        tz,
        summary,
        location: location.filter(|l| !l.is_empty()),
        url: offer
            .service_url
            .as_deref()
            .and_then(http_url)
            .or_else(|| offer.organization.url.as_deref().and_then(http_url))
            .map(str::to_owned),
        transparent: true,
    })
}

/// Why `url` is not written, showing its start with control characters escaped.
pub(crate) fn not_a_url(url: &str) -> String {
    let shown: String = url.chars().take(60).collect();
    format!(
        "`{}` is not an http(s) URL of printable characters without spaces",
        shown.escape_debug()
    )
}

/// An address on one line: `Street 1, 12345 City, DE`.
pub(crate) fn address_line(address: &Address) -> String {
    let city = format!("{} {}", address.postal_code.trim(), address.city.trim());
    [address.street.trim(), city.trim(), address.country.trim()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An opening rule as an event series: DTSTART is its first opening on or after its start date
/// (or `today`, for a rule without one), `valid_until` becomes UNTIL, closed days EXDATEs.
///
/// The first opening is found with the domain's own expansion (`opening_intervals`), so the
/// series starts exactly where Quartier's opening hours do; from there on RFC 5545 and the
/// domain count COUNT and INTERVAL the same way.
pub(crate) fn opening_timing(rule: &OpeningRule, tz: Tz, today: NaiveDate) -> Result<EventTiming, String> {
    rule.validate().map_err(|e| e.to_string())?;
    let from_day = rule.valid_from.unwrap_or(today);
    // A rule without valid_from cannot depend on its start (the domain refuses COUNT, INTERVAL
    // and implicit days without one), so anchoring it at `from_day` changes nothing.
    let probe = OpeningRule {
        valid_from: Some(from_day),
        closed_on: Vec::new(),
        ..rule.clone()
    };
    let from = local_to_utc(tz, from_day.and_time(NaiveTime::MIN));
    let mut first = None;
    for days in [62, 800, 4000] {
        let to = from + Duration::days(days);
        let openings =
            opening_intervals(std::slice::from_ref(&probe), tz, from, to).map_err(|e| e.to_string())?;
        if let Some(opening) = openings.into_iter().find(|o| o.start >= from) {
            first = Some(opening.start);
            break;
        }
    }
    let Some(first) = first else {
        return Err(format!(
            "the rule `{}` has no opening from {from_day} on (it has ended or never matches)",
            rule.rrule
        ));
    };
    let day = first.with_timezone(&tz).date_naive();
    let start = day.and_time(rule.opens);
    let close_day = if rule.closes <= rule.opens {
        day.succ_opt()
            .ok_or("the opening ends after the supported years")?
    } else {
        day
    };
    let end = close_day.and_time(rule.closes);
    let mut rrule = rule.rrule.clone();
    if let Some(until) = rule.valid_until {
        let limit = end_of_local_day(tz, until);
        let has_count = rrule.split(';').any(|part| {
            part.split('=')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case("COUNT"))
        });
        let needs_limit = if has_count {
            // Keep COUNT when its series ends by valid_until; otherwise UNTIL replaces it
            // (RFC 5545 allows only one of them) and gives the same openings.
            let counted = EventTiming {
                start,
                end,
                time_zone: tz.name().to_owned(),
                rrule: Some(rrule.clone()),
                exdates: Vec::new(),
            };
            let (_, last_end) = counted.series_bounds().map_err(|e| e.to_string())?;
            let length = local_to_utc(tz, end) - local_to_utc(tz, start);
            last_end.is_some_and(|last| last - length > limit)
        } else {
            true
        };
        if needs_limit {
            let without_count: Vec<&str> = rrule
                .split(';')
                .filter(|part| {
                    !part
                        .split('=')
                        .next()
                        .is_some_and(|n| n.eq_ignore_ascii_case("COUNT"))
                })
                .collect();
            rrule = rewrite_until(&without_count.join(";"), StartForm::Zoned(tz), Some(limit))?;
        }
    }
    let timing = EventTiming {
        start,
        end,
        time_zone: tz.name().to_owned(),
        rrule: Some(rrule),
        exdates: rule
            .closed_on
            .iter()
            .filter(|closed| **closed >= day)
            .map(|closed| closed.and_time(rule.opens))
            .collect(),
    };
    timing.validate().map_err(|e| e.to_string())?;
    Ok(timing)
}

/// The variant for the first preferred language (exact tag, then primary language), else the
/// first variant: its tag and text.
pub(crate) fn pick<'t>(text: &'t LocalizedText, languages: &[String]) -> Option<(&'t str, &'t str)> {
    for wanted in languages {
        let primary = wanted.split('-').next().unwrap_or(wanted);
        for candidate in [wanted.as_str(), primary] {
            if let Some(found) = text.iter().find(|(tag, _)| *tag == candidate) {
                return Some(found);
            }
        }
    }
    text.iter().next()
}

/// Writes `main` (the preferred variant) as `name` and every other variant as `x_name`.
fn write_localized(
    writer: &mut Writer,
    name: &str,
    x_name: &str,
    text: &LocalizedText,
    languages: &[String],
) {
    let Some((main_language, main)) = pick(text, languages) else {
        return;
    };
    if !main.is_empty() {
        writer.text(name, &[("LANGUAGE", main_language)], main);
    }
    for (language, variant) in text.iter().filter(|(l, _)| *l != main_language) {
        writer.text(x_name, &[("LANGUAGE", language)], variant);
    }
}

fn write_vevent(writer: &mut Writer, entry: &Entry<'_>, options: &IcalExportOptions) {
    let item = entry.item;
    let timing = &entry.timing;
    let form = start_form(entry);
    writer.begin("VEVENT");
    writer.text("UID", &[], &entry.uid);
    writer.property("DTSTAMP", &[], &format_utc(options.now));
    writer.property("CREATED", &[], &format_utc(item.created_at));
    writer.property("LAST-MODIFIED", &[], &format_utc(item.updated_at));
    let tzid = entry.tz.name();
    let write_time = |writer: &mut Writer, name: &str, values: &[chrono::NaiveDateTime]| {
        if values.is_empty() {
            return;
        }
        match form {
            StartForm::Date => {
                let list: Vec<String> = values.iter().map(|v| format_date(v.date())).collect();
                writer.property(name, &[("VALUE", "DATE")], &list.join(","));
            }
            StartForm::Utc => {
                let list: Vec<String> = values.iter().map(|v| format!("{}Z", format_local(*v))).collect();
                writer.property(name, &[], &list.join(","));
            }
            StartForm::Zoned(_) => {
                let list: Vec<String> = values.iter().map(|v| format_local(*v)).collect();
                writer.property(name, &[("TZID", tzid)], &list.join(","));
            }
        }
    };
    write_time(writer, "DTSTART", &[timing.start]);
    write_time(writer, "DTEND", &[timing.end]);
    if let Some(rrule) = &timing.rrule {
        // The timing validated, so its UNTIL parses; a failure would only keep the rule as is.
        let written = rewrite_until(rrule, form, None).unwrap_or_else(|_| rrule.clone());
        writer.property("RRULE", &[], &written);
    }
    write_time(writer, "EXDATE", &timing.exdates);
    write_localized(writer, "SUMMARY", SUMMARY_X, &entry.summary, &options.languages);
    write_localized(
        writer,
        "DESCRIPTION",
        DESCRIPTION_X,
        &item.content.body,
        &options.languages,
    );
    if let Some(location) = &entry.location {
        writer.text("LOCATION", &[], location);
    }
    if let Some(position) = &item.content.location {
        writer.property("GEO", &[], &format!("{:.6};{:.6}", position.lat, position.lon));
    }
    if let Some(url) = &entry.url {
        writer.property("URL", &[], url);
    }
    if !item.content.tags.is_empty() {
        let tags: Vec<String> = item.content.tags.iter().map(|t| escape_text(t)).collect();
        writer.property("CATEGORIES", &[], &tags.join(","));
    }
    writer.property(
        "TRANSP",
        &[],
        if entry.transparent {
            "TRANSPARENT"
        } else {
            "OPAQUE"
        },
    );
    writer.end("VEVENT");
}
