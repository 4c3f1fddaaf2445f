//! The printed neighbourhood guide made on the device (`docs/standards.md`, "The printed
//! guide"): the space's public offers and events read from the store and handed to
//! `quartier-guide`, which lays them out as PDF and HTML. Only what everyone in the space may
//! read is printed: paper leaves the app's access control.

use chrono::NaiveDate;
use quartier_guide::{GuideOptions, GuideRequest, LinkScheme, PaperFormat, PhoneNumber};

use crate::error::{Error, Result};
use crate::model::{ItemKind, LocalizedText, SpaceId};
use crate::store::Store;

/// The paper a guide is printed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum GuidePaper {
    /// A4 pages, two columns (one in large print), page numbers.
    A4Booklet,
    /// A3 pages for a notice board: three columns, larger type and QR codes.
    A3Poster,
}

/// An important phone number printed before the offers' own (emergency, the community centre).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GuidePhoneNumber {
    pub label: LocalizedText,
    pub number: String,
}

/// What guide to make.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GuideSpec {
    /// The guide's language (BCP 47); Arabic is laid out right to left.
    pub language: String,
    /// First and last day the guide covers (at most about six months; "open this week" is the
    /// week from the first day).
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Where each entry's QR code leads, with `{item}` for the item id, e.g.
    /// `https://quartier.example/i/{item}` (the server answers that with the item's page).
    pub link_template: String,
    pub paper: GuidePaper,
    pub large_print: bool,
    /// Each text's easy-language variant where the item has one.
    pub easy_language: bool,
    pub phone_numbers: Vec<GuidePhoneNumber>,
}

/// A made guide: the PDF, the same content as one accessible HTML page, and what it holds.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Guide {
    pub pdf: Vec<u8>,
    pub html: String,
    pub pages: i32,
    pub offers_printed: i32,
    pub events_printed: i32,
    /// Offers and events past the guide's caps (its last entry says how many).
    pub left_out: i32,
    /// Entries printed without part of their content, and why.
    pub problems: Vec<String>,
}

/// Counts cross the FFI signed (Java has no unsigned types); no guide comes near the bound.
fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl From<quartier_guide::GuideError> for Error {
    fn from(e: quartier_guide::GuideError) -> Self {
        Error::Invalid {
            field: "guide",
            reason: e.to_string(),
        }
    }
}

impl Store {
    /// Makes the printed guide of `space` as `spec` asks, from the offers and events everyone
    /// there may read.
    pub fn make_guide(&self, space: SpaceId, spec: &GuideSpec) -> Result<Guide> {
        let meta = self.space(space)?.meta;
        let (offers, _) = self.exportable_items(space, &[ItemKind::Offer])?;
        let (events, _) = self.exportable_items(space, &[ItemKind::Event])?;
        let name = meta
            .name
            .best(&[&spec.language, &meta.default_language])
            .unwrap_or_default()
            .to_owned();
        let mut request = GuideRequest::new(
            name,
            spec.language.clone(),
            spec.first_day,
            spec.last_day,
            meta.time_zone.clone(),
            LinkScheme::new(spec.link_template.clone())?,
        );
        request.offers = offers;
        request.events = events;
        request.phone_numbers = spec
            .phone_numbers
            .iter()
            .map(|p| PhoneNumber {
                label: p.label.clone(),
                number: p.number.clone(),
            })
            .collect();
        request.options = GuideOptions {
            paper: match spec.paper {
                GuidePaper::A4Booklet => PaperFormat::A4Booklet,
                GuidePaper::A3Poster => PaperFormat::A3Poster,
            },
            large_print: spec.large_print,
            easy_language: spec.easy_language,
        };
        let pdf = quartier_guide::render_pdf(&request)?;
        let html = quartier_guide::render_html(&request)?;
        let summary = pdf.summary;
        Ok(Guide {
            pdf: pdf.bytes,
            html: html.html,
            pages: count(pdf.pages),
            offers_printed: count(summary.offers_printed),
            events_printed: count(summary.events_printed),
            left_out: count(summary.offers_left_out + summary.events_left_out),
            problems: summary
                .problems
                .into_iter()
                .map(|(item, why)| format!("{item}: {why}"))
                .collect(),
        })
    }
}
