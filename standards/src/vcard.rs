//! vCard 4.0 (RFC 6350): an offer's organization and contacts out as `.vcf` (one card each),
//! and `.vcf` files in as organizations and contacts.
//!
//! The cards are written and read with the content-line code of the iCalendar module (the
//! syntax is the same), so folding, escaping and parameters are done one way in this crate.
//! The mapping and its decisions are in `docs/standards.md`.

use std::collections::BTreeMap;

use quartier_domain::model::{validate_language_tag, Contact, Item, ItemDetails, Offer, Organization};

use crate::ical::content_line::{
    checked_text, escape_text, http_url, parse_components, split_unescaped, unescape_text, Component,
    ContentLine, Limits, TreeError, Writer,
};
use crate::ical::{address_line, not_a_url, pick};
use crate::import::{ImportError, Skipped};

/// Most cards one import reads; the rest are reported as one skipped entry.
pub const MAX_VCARDS: usize = 10_000;

/// Deepest nesting an import reads (vCard 4.0 has none; 2.1's AGENT nests one card).
const MAX_VCARD_DEPTH: usize = 4;

const PRODID: &str = "-//Quartier//Quartier standards//EN";

/// Why an item could not be written as vCards.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VcardExportError {
    #[error("only offers have contacts to write as vCards; this item is a {kind}")]
    NotAnOffer { kind: &'static str },
}

/// What a `.vcf` file held: organization cards (`KIND:org`), contact cards, and the cards or
/// properties that were not taken, with the reason.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VcardImport {
    pub organizations: Vec<Organization>,
    pub contacts: Vec<Contact>,
    pub skipped: Vec<Skipped>,
}

/// Writes an offer's organization (a `KIND:org` card) and each of its contacts (a
/// `KIND:individual` card) as vCard 4.0.
///
/// Every card carries what a reader needs to reach the service: the organization's name
/// (ORG), the service's address (ADR) and languages (LANG), and the service's title as NOTE
/// (the first of `languages` the offer has). UIDs are stable per item and position, so a
/// contacts program updates instead of duplicating when the cards are imported again.
pub fn export_vcards(item: &Item, languages: &[String]) -> Result<String, VcardExportError> {
    let ItemDetails::Offer(offer) = &item.content.details else {
        return Err(VcardExportError::NotAnOffer {
            kind: item.kind().as_str(),
        });
    };
    let mut writer = Writer::new();
    let organization = &offer.organization;
    let note = pick(&item.content.title, languages);
    let revision = item.updated_at.format("%Y%m%dT%H%M%SZ").to_string();

    begin_card(&mut writer, &format!("{}-organization@quartier", item.id), "org");
    writer.text("FN", &[], &organization.name);
    writer.text("ORG", &[], &organization.name);
    write_reach(
        &mut writer,
        organization.phone.as_deref(),
        organization.email.as_deref(),
    );
    // Only an http(s) URL is written; any other value (one with spaces or line breaks, a
    // `javascript:` link) is left out, as vCard export has no list of what it left out.
    if let Some(url) = organization.url.as_deref().and_then(http_url) {
        writer.property("URL", &[], url);
    }
    end_card(&mut writer, offer, note, &revision);

    for (index, contact) in offer.contacts.iter().enumerate() {
        begin_card(
            &mut writer,
            &format!("{}-contact-{}@quartier", item.id, index + 1),
            "individual",
        );
        let name = contact.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        let title = contact.title.as_deref().map(str::trim).filter(|t| !t.is_empty());
        // FN is required; a contact without a name is shown by its role, else by its
        // organization (and read back as nameless, see `import_vcards`).
        writer.text("FN", &[], name.or(title).unwrap_or(&organization.name));
        writer.text("ORG", &[], &organization.name);
        if let Some(title) = title {
            writer.text("TITLE", &[], title);
        }
        write_reach(&mut writer, contact.phone.as_deref(), contact.email.as_deref());
        end_card(&mut writer, offer, note, &revision);
    }
    Ok(writer.finish())
}

fn begin_card(writer: &mut Writer, uid: &str, kind: &str) {
    writer.begin("VCARD");
    writer.property("VERSION", &[], "4.0");
    writer.property("PRODID", &[], PRODID);
    writer.text("UID", &[], uid);
    writer.property("KIND", &[], kind);
}

fn write_reach(writer: &mut Writer, phone: Option<&str>, email: Option<&str>) {
    if let Some(phone) = phone.map(str::trim).filter(|p| !p.is_empty()) {
        // Free text (allowed by RFC 6350 for compatibility), so the number stays as written.
        writer.property_lists("TEL", &[("TYPE", &["work", "voice"])], &escape_text(phone));
    }
    if let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()) {
        writer.text("EMAIL", &[("TYPE", "work")], email);
    }
}

fn end_card(writer: &mut Writer, offer: &Offer, note: Option<(&str, &str)>, revision: &str) {
    if let Some(address) = offer.location.as_ref().and_then(|l| l.address.as_ref()) {
        // post office box; extended address; street; locality; region; postal code; country
        let parts = [
            "",
            "",
            &address.street,
            &address.city,
            "",
            &address.postal_code,
            &address.country,
        ];
        let value: Vec<String> = parts.iter().map(|p| escape_text(p.trim())).collect();
        writer.property(
            "ADR",
            &[("TYPE", "work"), ("LABEL", &address_line(address))],
            &value.join(";"),
        );
    }
    // LANG is a language tag (RFC 6350 §6.4.4); anything that is not one is left out.
    let languages = offer
        .languages
        .iter()
        .map(|l| l.trim())
        .filter(|l| validate_language_tag(l).is_ok());
    for (index, language) in languages.enumerate() {
        writer.property("LANG", &[("PREF", &(index + 1).min(100).to_string())], language);
    }
    if let Some((language, title)) = note {
        writer.text("NOTE", &[("LANGUAGE", language)], title);
    }
    writer.property("REV", &[], revision);
    writer.end("VCARD");
}

/// Properties a card may carry that say nothing a contact keeps (or that are read).
const READ_OR_SILENT: [&str; 12] = [
    "VERSION", "PRODID", "UID", "REV", "KIND", "FN", "N", "TITLE", "TEL", "EMAIL", "URL", "ORG",
];

/// Reads a `.vcf` file (vCard 4.0 or 3.0) into organizations and contacts.
///
/// The whole file is refused only when it is too large, not UTF-8, has no VCARD, or nests
/// deeper than a vCard can; every other problem skips one card (or notes the properties of a
/// card that were not taken), with the reason.
pub fn import_vcards(bytes: &[u8]) -> Result<VcardImport, ImportError> {
    let text = checked_text(bytes)?;
    let text: &str = &text;
    let limits = Limits {
        max_depth: MAX_VCARD_DEPTH,
        max_components: MAX_VCARDS,
        max_reports: crate::ical::MAX_LISTED_PROBLEMS,
        max_properties: crate::ical::MAX_PROPERTIES_PER_COMPONENT,
        // The wrapper adds two lines.
        max_lines: crate::ical::MAX_CONTENT_LINES + 2,
    };
    // Cards are top-level components; wrapping them makes the component limit count cards.
    let wrapped = format!("BEGIN:X-FILE\r\n{text}\r\nEND:X-FILE\r\n");
    let parsed = parse_components(&wrapped, limits).map_err(|e| match e {
        TreeError::TooManyLines { .. } => TreeError::TooManyLines {
            max: crate::ical::MAX_CONTENT_LINES,
        }
        .into_import_error("vCard", 0),
        deep => deep.into_import_error("vCard", 1),
    })?;
    let cards: Vec<&Component> = parsed
        .components
        .iter()
        .flat_map(|file| file.children.iter())
        .collect();
    if !cards.iter().any(|c| c.name == "VCARD") {
        return Err(ImportError::Malformed {
            format: "vCard",
            reason: "there is no BEGIN:VCARD … END:VCARD block".to_owned(),
        });
    }
    let mut import = VcardImport {
        skipped: parsed
            .problems
            .into_iter()
            .map(|p| Skipped {
                record: shift_line(&p.record),
                reason: p.reason,
            })
            .collect(),
        ..VcardImport::default()
    };
    for stray in parsed.components.iter().flat_map(|file| file.properties.iter()) {
        import.skipped.push(Skipped {
            record: format!("line {}", stray.line.saturating_sub(1).max(1)),
            reason: format!("{} stands outside any BEGIN:VCARD … END:VCARD block", stray.name),
        });
    }
    for card in cards {
        let record = card
            .property("UID")
            .map(|uid| format!("vcard:{}", unescape_text(&uid.value).trim()))
            .unwrap_or_else(|| format!("line {}", card.line - 1));
        if card.name != "VCARD" {
            import.skipped.push(Skipped {
                record,
                reason: format!("a {} is not a vCard", card.name),
            });
            continue;
        }
        match read_card(card, &mut import) {
            Ok(notes) if notes.is_empty() => {}
            Ok(notes) => import.skipped.push(Skipped {
                record,
                reason: format!("imported without: {}", notes.join("; ")),
            }),
            Err(reason) => import.skipped.push(Skipped { record, reason }),
        }
    }
    if parsed.dropped_components > 0 {
        import.skipped.push(Skipped {
            record: "file".to_owned(),
            reason: format!(
                "{} more cards were not read: an import reads at most {MAX_VCARDS}",
                parsed.dropped_components
            ),
        });
    }
    Ok(import)
}

/// `line N` of the wrapped text is line N-1 of the file.
fn shift_line(record: &str) -> String {
    match record.strip_prefix("line ").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => format!("line {}", n.saturating_sub(1).max(1)),
        None => record.to_owned(),
    }
}

fn text_of(card: &Component, name: &str) -> Option<String> {
    card.property(name)
        .map(|p| unescape_text(&p.value).trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether a TEL or EMAIL is marked preferred (4.0 `PREF=1`, 3.0 `TYPE=pref`).
fn preference(property: &ContentLine) -> u32 {
    if property
        .param_values("TYPE")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("pref"))
    {
        return 0;
    }
    property.param("PREF").and_then(|p| p.parse().ok()).unwrap_or(101)
}

/// The preferred value of `name` and how many others there were; `accept` drops values
/// that are not what Quartier keeps (a fax number).
fn preferred(card: &Component, name: &str, accept: impl Fn(&ContentLine) -> bool) -> (Option<String>, usize) {
    let mut candidates: Vec<&ContentLine> = card.properties_named(name).filter(|p| accept(p)).collect();
    candidates.sort_by_key(|p| preference(p));
    let value = candidates.first().map(|p| {
        let text = unescape_text(&p.value);
        let text = text.trim();
        // A `tel:` URI (the 4.0 form) keeps the number, without parameters such as `;ext=`.
        let text = text
            .strip_prefix("tel:")
            .map_or(text, |n| n.split(';').next().unwrap_or(n));
        let text = text.strip_prefix("mailto:").unwrap_or(text);
        text.to_owned()
    });
    (
        value.filter(|v| !v.is_empty()),
        candidates.len().saturating_sub(1),
    )
}

fn read_card(card: &Component, import: &mut VcardImport) -> Result<Vec<String>, String> {
    let version = card.property("VERSION").map(|v| v.value.trim().to_owned());
    match version.as_deref() {
        None | Some("4.0") | Some("3.0") => {}
        Some(other) => {
            return Err(format!(
                "vCard {other} is not read (only 4.0 and 3.0: 2.1 has other encodings)"
            ))
        }
    }
    let mut notes = Vec::new();
    let fn_or_n = text_of(card, "FN").or_else(|| {
        // 3.0 cards may leave FN empty: `N` is family;given;additional;prefix;suffix.
        let n = card.property("N")?;
        let parts: Vec<String> = split_unescaped(&n.value, ';')
            .iter()
            .map(|p| unescape_text(p).trim().to_owned())
            .collect();
        let given = parts.get(1).cloned().unwrap_or_default();
        let family = parts.first().cloned().unwrap_or_default();
        Some(format!("{given} {family}").trim().to_owned()).filter(|s| !s.is_empty())
    });
    let Some(full_name) = fn_or_n else {
        return Err("the card has no name (FN)".to_owned());
    };
    let organization_name = card
        .property("ORG")
        .and_then(|o| {
            split_unescaped(&o.value, ';')
                .first()
                .map(|first| unescape_text(first).trim().to_owned())
        })
        .filter(|o| !o.is_empty());
    let not_fax = |p: &ContentLine| {
        let types = p.param_values("TYPE");
        // A fax-only number is no phone number; a combined one is.
        !types.iter().any(|t| t.eq_ignore_ascii_case("fax"))
            || types.iter().any(|t| t.eq_ignore_ascii_case("voice"))
    };
    let faxes = card.properties_named("TEL").filter(|p| !not_fax(p)).count();
    let (phone, more_phones) = preferred(card, "TEL", not_fax);
    let (email, more_emails) = preferred(card, "EMAIL", |_| true);
    if faxes > 0 {
        notes.push(format!("{faxes} fax number(s) (Quartier keeps one phone number)"));
    }
    if more_phones > 0 {
        notes.push(format!(
            "{more_phones} more phone number(s) (Quartier keeps the preferred one)"
        ));
    }
    if more_emails > 0 {
        notes.push(format!(
            "{more_emails} more email address(es) (Quartier keeps the preferred one)"
        ));
    }
    let is_org = card
        .property("KIND")
        .is_some_and(|k| k.value.trim().eq_ignore_ascii_case("org"));
    let title = text_of(card, "TITLE");
    if is_org {
        let url = text_of(card, "URL");
        if let Some(bad) = url.as_deref().filter(|u| http_url(u).is_none()) {
            notes.push(format!("URL ({})", not_a_url(bad)));
        }
        import.organizations.push(Organization {
            name: organization_name.clone().unwrap_or(full_name),
            url: url.as_deref().and_then(http_url).map(str::to_owned),
            email,
            phone,
        });
        if title.is_some() {
            notes.push("TITLE (an organization has no title)".to_owned());
        }
    } else {
        // A card whose FN only repeats its role or organization names no person.
        let name =
            Some(full_name).filter(|n| Some(n) != title.as_ref() && Some(n) != organization_name.as_ref());
        import.contacts.push(Contact {
            name,
            title,
            phone,
            email,
        });
        if card.property("URL").is_some() {
            notes.push("URL (a contact has no web address in Quartier)".to_owned());
        }
        if organization_name.is_some() {
            notes.push("ORG (a contact belongs to the offer it is imported into)".to_owned());
        }
    }
    let mut other: BTreeMap<&str, usize> = BTreeMap::new();
    for property in &card.properties {
        let name = property.name.as_str();
        if READ_OR_SILENT.contains(&name) || name.starts_with("X-") {
            continue;
        }
        *other.entry(name).or_default() += 1;
    }
    for (name, count) in other {
        let why = match name {
            "ADR" => "the address belongs to the offer's location, not to a contact",
            "LANG" => "languages belong to the offer",
            "NOTE" => "a contact has no note",
            _ => "Quartier has no field for it",
        };
        let times = if count > 1 {
            format!(" ×{count}")
        } else {
            String::new()
        };
        notes.push(format!("{name}{times} ({why})"));
    }
    Ok(notes)
}
