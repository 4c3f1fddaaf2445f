//! # quartier-guide
//!
//! The printable neighbourhood guide (`docs/standards.md`, "The printed guide"): for a space, a
//! date range and a language, the offers (what, where, when open this week, how to reach them),
//! the coming events and the important phone numbers, as print-ready PDF and as accessible HTML,
//! with a QR code beside each entry that leads back to it.
//!
//! Half the people a neighbourhood should reach read the notice board, not the app; this crate
//! turns the app's content into paper for them. It is pure rendering: model values in, bytes
//! out, no I/O, no clock (the caller names the dates), no system fonts (the fonts are compiled
//! in, so a phone renders the same guide as the server).
//!
//! ```no_run
//! # use quartier_guide::*;
//! # fn main() -> Result<(), GuideError> {
//! let request = GuideRequest::new(
//!     "Nordstadt",
//!     "de",
//!     chrono::NaiveDate::from_ymd_opt(2026, 5, 4).unwrap(),
//!     chrono::NaiveDate::from_ymd_opt(2026, 5, 17).unwrap(),
//!     "Europe/Berlin",
//!     LinkScheme::from_base("https://quartier.example")?,
//! );
//! let pdf = render_pdf(&request)?;
//! let html = render_html(&request)?;
//! # let _ = (pdf, html); Ok(()) }
//! ```

mod content;
mod fonts;
mod html;
mod labels;
mod layout;
mod pdf;
mod qr;

use chrono::NaiveDate;
use quartier_domain::model::{Item, ItemId, LocalizedText};
use quartier_domain::schedule::ScheduleError;

pub use content::GuideSummary;

/// Most offers printed in one guide; the rest are counted on the last page. A guide of 200
/// offers is a 30-page booklet already: past that, paper stops helping, and the bound keeps a
/// space of 10 000 offers from taking minutes and hundreds of megabytes on a phone.
pub const MAX_OFFERS: usize = 200;
/// Most events printed in one guide (each with at most [`MAX_DATES_PER_EVENT`] dates).
pub const MAX_EVENTS: usize = 150;
/// Most dates listed under one event; the rest are summed up as "and N more dates".
pub const MAX_DATES_PER_EVENT: usize = 8;
/// Most important phone numbers (the request's own first, then the offers').
pub const MAX_PHONE_NUMBERS: usize = 40;
/// Longest date range a guide covers, in days: a printed guide is out of date after a season.
pub const MAX_RANGE_DAYS: i64 = 186;
/// Most characters of an entry's description printed (the rest is cut at a word with "…"):
/// the guide points to the app for the whole text, and a bounded entry always fits a column.
pub const MAX_DESCRIPTION_CHARS: usize = 420;
/// Longest link template, in bytes: a QR code must stay small enough to scan from paper.
pub const MAX_LINK_TEMPLATE_BYTES: usize = 200;

/// Paper size and purpose of the PDF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaperFormat {
    /// A4 portrait pages, two columns (one in large print), page numbers: printed double-sided
    /// and stapled, or folded with the printer's own booklet setting.
    A4Booklet,
    /// A3 portrait pages for a notice board: three columns (two in large print), larger type
    /// and QR codes, to be read standing a step away.
    A3Poster,
}

/// How the guide is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuideOptions {
    pub paper: PaperFormat,
    /// Large print: about 16 pt body text (A4), one column, larger QR codes. For readers with
    /// low vision; also the HTML's `large-print` class.
    pub large_print: bool,
    /// Easy language: each text's easy-language variant (`de-x-easy`, see
    /// [`quartier_domain::model::EASY_LANGUAGE_SUBTAG`]) where the item has one, its ordinary
    /// text otherwise.
    pub easy_language: bool,
}

impl Default for GuideOptions {
    fn default() -> Self {
        Self {
            paper: PaperFormat::A4Booklet,
            large_print: false,
            easy_language: false,
        }
    }
}

/// An important phone number given with the request (emergency, the community centre, a
/// helpline), printed before the offers' own numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct PhoneNumber {
    /// What the number is for, in several languages (picked like item texts).
    pub label: LocalizedText,
    /// The number as it is dialled, e.g. `112` or `+49 30 1234567`.
    pub number: String,
}

/// Where each entry's QR code leads: a link template with `{item}` (the item id, a UUID) and
/// optionally `{space}` (the space name is not used, only what the caller puts in the
/// template), e.g. `https://quartier.example/i/{item}`. The app registers the host for its
/// links (Android App Links, iOS Universal Links) and opens the item; without the app the server
/// answers the same address with a plain web page of the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkScheme {
    template: String,
}

impl LinkScheme {
    /// A template with `{item}`; it must be an `https://` or `http://` link of printable ASCII
    /// (QR scanners and phone browsers handle nothing else reliably) and at most
    /// [`MAX_LINK_TEMPLATE_BYTES`] long.
    pub fn new(template: impl Into<String>) -> Result<Self, GuideError> {
        let template = template.into();
        let shown: String = template.chars().take(60).collect();
        let fail = |reason: &str| {
            Err(GuideError::InvalidLinkScheme {
                template: shown.clone(),
                reason: reason.to_owned(),
            })
        };
        if !(template.starts_with("https://") || template.starts_with("http://")) {
            return fail("the link must start with https:// or http://");
        }
        if !template.contains("{item}") {
            return fail("the link needs `{item}` where the item id goes");
        }
        if template.len() > MAX_LINK_TEMPLATE_BYTES {
            return fail("the link is longer than 200 bytes; a QR code of it is hard to scan");
        }
        if !template.bytes().all(|b| b.is_ascii_graphic()) {
            return fail("the link may hold printable ASCII only (no spaces)");
        }
        Ok(Self { template })
    }

    /// `<base>/i/{item}`: the scheme the server serves (`base` without a trailing slash is
    /// fine either way).
    pub fn from_base(base: &str) -> Result<Self, GuideError> {
        Self::new(format!("{}/i/{{item}}", base.trim_end_matches('/')))
    }

    /// The link for one item.
    pub fn link(&self, item: ItemId) -> String {
        self.template.replace("{item}", &item.to_string())
    }

    /// The template as given.
    pub fn template(&self) -> &str {
        &self.template
    }
}

/// Everything a guide is made of. The caller (the core on a device, the server for a space)
/// reads the items; this crate picks what may be printed and lays it out.
#[derive(Clone, Debug)]
pub struct GuideRequest {
    /// The space's name, printed as the guide's title.
    pub space_name: String,
    /// BCP-47 tag of the guide's language (`de`, `tr`, `uk`, `ar`, `en-GB`). Labels exist for
    /// `de`, `en`, `tr`, `uk` and `ar` (others get English labels); texts are each item's
    /// variant for this language, else another one. `ar`, `fa`, `he` and `ur` lay out right to
    /// left.
    pub language: String,
    /// First day of the guide (local date in `time_zone`); the opening hours shown are those of
    /// the week that starts on this day (pass a Monday for a calendar week).
    pub from: NaiveDate,
    /// Last day of the guide, inclusive: events up to the end of this day are listed.
    pub to: NaiveDate,
    /// IANA time zone the hours and dates are printed in, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// The space's offers (items with `ItemDetails::Offer`), in the order they should be
    /// printed (sort them by category or distance first). Items of other kinds, and items not
    /// published for everyone, are skipped.
    pub offers: Vec<Item>,
    /// The space's events (items with `ItemDetails::Event`); those with a date in the range are
    /// printed, by their first date.
    pub events: Vec<Item>,
    /// Important phone numbers, printed before the offers' own.
    pub phone_numbers: Vec<PhoneNumber>,
    /// Where the QR codes lead.
    pub links: LinkScheme,
    pub options: GuideOptions,
}

impl GuideRequest {
    /// A request with no items yet and the default options (A4, normal print).
    pub fn new(
        space_name: impl Into<String>,
        language: impl Into<String>,
        from: NaiveDate,
        to: NaiveDate,
        time_zone: impl Into<String>,
        links: LinkScheme,
    ) -> Self {
        Self {
            space_name: space_name.into(),
            language: language.into(),
            from,
            to,
            time_zone: time_zone.into(),
            offers: Vec::new(),
            events: Vec::new(),
            phone_numbers: Vec::new(),
            links,
            options: GuideOptions::default(),
        }
    }
}

/// Why a guide could not be made. Problems of single items (an opening rule that does not
/// parse) do not fail the guide: they are listed in [`GuideSummary::problems`].
#[derive(Debug, thiserror::Error)]
pub enum GuideError {
    #[error("the guide's language: {0}")]
    InvalidLanguage(String),
    #[error("the guide's time zone: {0}")]
    TimeZone(#[source] ScheduleError),
    #[error("the guide's dates {from} to {to}: {reason}")]
    InvalidDateRange {
        from: NaiveDate,
        to: NaiveDate,
        reason: String,
    },
    #[error("the link scheme `{template}`: {reason}")]
    InvalidLinkScheme { template: String, reason: String },
    #[error("no QR code for the link `{link}`: {reason}")]
    QrCode { link: String, reason: String },
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

/// A rendered PDF guide.
#[derive(Clone, Debug)]
pub struct PdfGuide {
    pub bytes: Vec<u8>,
    pub pages: usize,
    pub summary: GuideSummary,
}

/// A rendered HTML guide: one self-contained page (inline CSS, inline SVG QR codes).
#[derive(Clone, Debug)]
pub struct HtmlGuide {
    pub html: String,
    pub summary: GuideSummary,
}

/// The guide as a PDF: A4 booklet or A3 poster, normal or large print, per `request.options`.
pub fn render_pdf(request: &GuideRequest) -> Result<PdfGuide, GuideError> {
    let content = content::prepare(request)?;
    let (bytes, pages) = pdf::render(&content)?;
    Ok(PdfGuide {
        bytes,
        pages,
        summary: content.summary,
    })
}

/// The guide as one accessible HTML page: semantic headings, `lang` and `dir`, alt texts for the
/// QR codes, print CSS for the paper size and a large-print variant.
pub fn render_html(request: &GuideRequest) -> Result<HtmlGuide, GuideError> {
    let content = content::prepare(request)?;
    let html = html::render(&content)?;
    Ok(HtmlGuide {
        html,
        summary: content.summary,
    })
}

/// Whether text in this language is laid out right to left.
pub fn is_right_to_left(language: &str) -> bool {
    let primary = language.split('-').next().unwrap_or(language);
    matches!(
        primary.to_ascii_lowercase().as_str(),
        "ar" | "fa" | "he" | "ur" | "ps" | "yi" | "ckb"
    )
}
