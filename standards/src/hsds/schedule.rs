//! HSDS 3.0 `schedule` objects ↔ our [`OpeningRule`]s. HSDS spreads an RFC 5545 RRULE over
//! columns (`freq`, `byday`, …) and adds `opens_at`/`closes_at`; we keep the RRULE as one value.
//! The domain validates the result ([`OpeningRule::validate`]); nothing here re-implements
//! recurrence.

use chrono::{NaiveDate, NaiveTime};
use quartier_domain::schedule::OpeningRule;
use serde_json::{Map, Value};

/// Prefix of the `notes` line that carries closure dates: HSDS 3.0 has no field for exceptions,
/// so they travel as text a person can read and we can read back.
pub(crate) const CLOSED_ON_PREFIX: &str = "Closed on: ";

/// The RRULE parts that have an HSDS column, in the order we write them.
const RRULE_COLUMNS: [(&str, &str); 7] = [
    ("INTERVAL", "interval"),
    ("COUNT", "count"),
    ("WKST", "wkst"),
    ("BYDAY", "byday"),
    ("BYWEEKNO", "byweekno"),
    ("BYMONTHDAY", "bymonthday"),
    ("BYYEARDAY", "byyearday"),
];

/// Writes one rule as an HSDS schedule (without `id` and links, which the caller adds). Parts
/// HSDS cannot hold are returned as reasons, so the export reports them.
pub(crate) fn to_hsds(rule: &OpeningRule) -> (Map<String, Value>, Vec<String>) {
    let mut out = Map::new();
    let mut lost = Vec::new();
    let mut parts: Vec<(String, String)> = rule
        .rrule
        .split(';')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim().to_owned()))
        .collect();
    let get =
        |parts: &[(String, String)], key: &str| parts.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let freq = get(&parts, "FREQ").unwrap_or_default();
    match freq.as_str() {
        "WEEKLY" | "MONTHLY" => {
            out.insert("freq".into(), freq.clone().into());
        }
        // Every day is every weekday of every week, when nothing counts occurrences.
        "DAILY"
            if get(&parts, "INTERVAL").is_none_or(|i| i == "1")
                && get(&parts, "COUNT").is_none()
                && get(&parts, "BYDAY").is_none() =>
        {
            out.insert("freq".into(), "WEEKLY".into());
            parts.push(("BYDAY".into(), "MO,TU,WE,TH,FR,SA,SU".into()));
        }
        other => lost.push(format!(
            "FREQ={other} has no HSDS 3.0 form (freq is WEEKLY or MONTHLY); the schedule is \
             written without its recurrence"
        )),
    }
    if out.contains_key("freq") {
        for (key, column) in RRULE_COLUMNS {
            if let Some(value) = get(&parts, key) {
                let value = match key {
                    "INTERVAL" | "COUNT" => match value.parse::<u32>() {
                        Ok(n) => Value::from(n),
                        Err(_) => continue,
                    },
                    _ => Value::from(value),
                };
                out.insert(column.into(), value);
            }
        }
        if let Some(until) = get(&parts, "UNTIL") {
            match until
                .get(..8)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            {
                Some(date) => {
                    if until.len() > 8 {
                        lost.push(format!(
                            "UNTIL={until}: HSDS `until` is a date; the time of day is dropped"
                        ));
                    }
                    out.insert("until".into(), date.to_string().into());
                }
                None => lost.push(format!("UNTIL={until} is not a date")),
            }
        }
        for (key, _) in &parts {
            let known = key == "FREQ" || key == "UNTIL" || RRULE_COLUMNS.iter().any(|(k, _)| k == key);
            if !known {
                lost.push(format!("{key} has no HSDS 3.0 column and is not written"));
            }
        }
    }
    out.insert(
        "opens_at".into(),
        rule.opens.format("%H:%M:%S").to_string().into(),
    );
    out.insert(
        "closes_at".into(),
        rule.closes.format("%H:%M:%S").to_string().into(),
    );
    if let Some(from) = rule.valid_from {
        out.insert("valid_from".into(), from.to_string().into());
        out.insert("dtstart".into(), from.to_string().into());
    }
    if let Some(until) = rule.valid_until {
        out.insert("valid_to".into(), until.to_string().into());
    }
    if let Some(description) = &rule.description {
        out.insert("description".into(), description.as_str().into());
    }
    if !rule.closed_on.is_empty() {
        let dates: Vec<String> = rule.closed_on.iter().map(NaiveDate::to_string).collect();
        out.insert(
            "notes".into(),
            format!("{CLOSED_ON_PREFIX}{}", dates.join(", ")).into(),
        );
    }
    (out, lost)
}

/// Reads an HSDS schedule into a rule. `Err` says why the schedule cannot be taken; the notes
/// in `Ok` say what of it was dropped.
pub(crate) fn from_hsds(schedule: &Map<String, Value>) -> Result<(OpeningRule, Vec<String>), String> {
    let mut notes = Vec::new();
    let text = |key: &str| -> Result<Option<String>, String> {
        match schedule.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(format!("`{key}` must be text")),
        }
    };
    let freq = text("freq")?
        .ok_or("no `freq`: a schedule without a recurrence cannot be an opening rule")?
        .to_ascii_uppercase();
    if !matches!(freq.as_str(), "DAILY" | "WEEKLY" | "MONTHLY" | "YEARLY") {
        return Err(format!("`freq` is `{freq}`; expected WEEKLY or MONTHLY"));
    }
    let mut rrule = format!("FREQ={freq}");
    for (key, column) in RRULE_COLUMNS {
        if let Some(value) = text(column)? {
            let value = match key {
                // Numbers may arrive as 2 or 2.0 (JSON) or "2" (CSV).
                "INTERVAL" | "COUNT" => match value.parse::<f64>() {
                    Ok(n) if n >= 1.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => {
                        format!("{}", n as u32)
                    }
                    _ => {
                        return Err(format!(
                            "`{column}` is `{value}`; expected a whole number of 1 or more"
                        ))
                    }
                },
                _ => value.to_ascii_uppercase().replace(' ', ""),
            };
            rrule.push_str(&format!(";{key}={value}"));
        }
    }
    if let Some(until) = text("until")? {
        let date = date(&until).ok_or_else(|| format!("`until` is `{until}`; expected YYYY-MM-DD"))?;
        rrule.push_str(&format!(";UNTIL={}", date.format("%Y%m%d")));
    }
    let opens_at = text("opens_at")?.ok_or("no `opens_at`: opening hours need the time they open")?;
    let closes_at = text("closes_at")?.ok_or("no `closes_at`: opening hours need the time they close")?;
    let opens = time(&opens_at, &mut notes)
        .ok_or_else(|| format!("`opens_at` is `{opens_at}`; expected HH:MM[:SS]"))?;
    let closes = time(&closes_at, &mut notes)
        .ok_or_else(|| format!("`closes_at` is `{closes_at}`; expected HH:MM[:SS]"))?;
    let optional_date = |key: &str| -> Result<Option<NaiveDate>, String> {
        match text(key)? {
            None => Ok(None),
            Some(t) => date(&t)
                .map(Some)
                .ok_or_else(|| format!("`{key}` is `{t}`; expected YYYY-MM-DD")),
        }
    };
    let dtstart = optional_date("dtstart")?;
    let valid_from = optional_date("valid_from")?;
    if let (Some(start), Some(from)) = (dtstart, valid_from) {
        if start != from {
            notes.push(format!(
                "`dtstart` {start} and `valid_from` {from} differ; Quartier keeps one first day ({start})"
            ));
        }
    }
    let mut closed_on = Vec::new();
    let mut description = text("description")?;
    if let Some(notes_text) = text("notes")? {
        match notes_text.strip_prefix(CLOSED_ON_PREFIX) {
            Some(list) => {
                for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match date(part) {
                        Some(d) => closed_on.push(d),
                        None => notes.push(format!("closure `{part}` is not a date YYYY-MM-DD")),
                    }
                }
            }
            // Free notes are for people: kept with the description rather than lost.
            None => {
                description = Some(match description {
                    Some(d) => format!("{d}\n{notes_text}"),
                    None => notes_text,
                })
            }
        }
    }
    if text("timezone")?.is_some() {
        notes.push(
            "`timezone` (a fixed UTC offset) is not taken: opening hours are local times in the \
             space's time zone"
                .into(),
        );
    }
    for key in ["schedule_link", "attending_type"] {
        if text(key)?.is_some() {
            notes.push(format!("`{key}` has no place in Quartier's opening rules"));
        }
    }
    let rule = OpeningRule {
        rrule,
        opens,
        closes,
        valid_from: dtstart.or(valid_from),
        valid_until: optional_date("valid_to")?,
        closed_on,
        description,
    };
    rule.validate().map_err(|e| e.to_string())?;
    Ok((rule, notes))
}

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d").ok()
}

/// `HH:MM[:SS]` with an optional `Z` or `±HH:MM` suffix, which is dropped with a note: our
/// opening hours are wall-clock times in the space's zone, which a fixed offset cannot say.
fn time(text: &str, notes: &mut Vec<String>) -> Option<NaiveTime> {
    let (clock, zone) = match text.find(['Z', 'z', '+', '-']) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    if !zone.is_empty() {
        notes.push(format!(
            "the offset `{zone}` of `{text}` is dropped: opening hours are local times in the space's time zone"
        ));
    }
    NaiveTime::parse_from_str(clock, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M"))
        .ok()
}
