//! From the request to what is printed: checks the request, keeps the items that may be printed
//! (published, for everyone), picks each text's variant, computes this week's opening hours and
//! the events' dates with the domain's schedule functions, and applies the caps. Both the PDF
//! and the HTML writer lay out this one result, so they never disagree on what a guide holds.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use quartier_domain::model::{
    validate_language_tag, Audience, Item, ItemDetails, ItemId, LocalizedText, Offer, Status,
};
use quartier_domain::schedule::{local_to_utc, opening_intervals, parse_time_zone, Interval};

use crate::labels::Labels;
use crate::qr::QrMatrix;
use crate::{
    is_right_to_left, GuideError, GuideOptions, GuideRequest, MAX_DATES_PER_EVENT, MAX_DESCRIPTION_CHARS,
    MAX_EVENTS, MAX_OFFERS, MAX_PHONE_NUMBERS, MAX_RANGE_DAYS,
};

/// What went into a guide and what did not, for the caller to show ("12 offers printed, 3 left
/// out") and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuideSummary {
    pub offers_printed: usize,
    pub events_printed: usize,
    pub numbers_printed: usize,
    /// Offers and events that would have been printed but are past the caps ([`crate::MAX_OFFERS`],
    /// [`crate::MAX_EVENTS`]); the guide's last entry says how many.
    pub offers_left_out: usize,
    pub events_left_out: usize,
    /// Items not printed because they are not published for everyone (a guide is public
    /// paper), or expired before the guide's first day.
    pub not_public: usize,
    /// Items of another kind than the list they came in (an event among the offers).
    pub wrong_kind: usize,
    /// Items printed without part of their content, and why (an opening rule that does not
    /// parse: the entry says "No fixed opening hours" rather than wrong ones).
    pub problems: Vec<(ItemId, String)>,
}

/// What a paragraph of an entry is, for its style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// Who runs it, where it takes place.
    Meta,
    /// A small heading inside an entry ("Open this week").
    Label,
    /// Opening hours and dates.
    Times,
    Body,
    Contact,
}

#[derive(Clone, Debug)]
pub(crate) struct Paragraph {
    pub style: Style,
    pub text: String,
}

/// One offer or event as printed.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub title: String,
    /// The language tag of the title's variant (the guide's, or another one as a fallback);
    /// the HTML marks entries in another language with it.
    pub lang: String,
    pub paragraphs: Vec<Paragraph>,
    pub link: String,
    pub qr: QrMatrix,
    pub qr_alt: String,
}

#[derive(Clone, Debug)]
pub(crate) struct NumberLine {
    pub label: String,
    pub number: String,
}

/// The guide, ready to lay out.
pub(crate) struct GuideContent {
    pub language: String,
    pub rtl: bool,
    pub labels: &'static Labels,
    pub options: GuideOptions,
    pub space_name: String,
    /// "04.05.2026 – 17.05.2026".
    pub dates: String,
    pub numbers: Vec<NumberLine>,
    pub offers: Vec<Entry>,
    pub events: Vec<Entry>,
    /// The note on what did not fit, if anything.
    pub left_out: Option<String>,
    pub summary: GuideSummary,
}

pub(crate) fn prepare(request: &GuideRequest) -> Result<GuideContent, GuideError> {
    validate_language_tag(&request.language).map_err(GuideError::InvalidLanguage)?;
    let tz = parse_time_zone(&request.time_zone).map_err(GuideError::TimeZone)?;
    let (from, to) = (request.from, request.to);
    let range_error = |reason: &str| GuideError::InvalidDateRange {
        from,
        to,
        reason: reason.to_owned(),
    };
    if to < from {
        return Err(range_error("the last day is before the first"));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(range_error(&format!(
            "a guide covers at most {MAX_RANGE_DAYS} days"
        )));
    }
    let start = local_midnight(tz, from).ok_or_else(|| range_error("outside the supported years"))?;
    let end = to
        .succ_opt()
        .and_then(|next| local_midnight(tz, next))
        .ok_or_else(|| range_error("outside the supported years"))?;
    let week_end = from
        .checked_add_signed(Duration::days(7))
        .and_then(|next| local_midnight(tz, next))
        .ok_or_else(|| range_error("outside the supported years"))?;

    let labels = Labels::for_language(&request.language);
    let ctx = Ctx {
        request,
        tz,
        labels,
        start,
        primary: request
            .language
            .split('-')
            .next()
            .unwrap_or(&request.language)
            .to_ascii_lowercase(),
    };
    let mut summary = GuideSummary::default();

    // Offers, in the caller's order, up to the cap; the rest only counted.
    let mut offers = Vec::new();
    for item in &request.offers {
        let ItemDetails::Offer(offer) = &item.content.details else {
            summary.wrong_kind += 1;
            continue;
        };
        if !is_public(item, start) {
            summary.not_public += 1;
            continue;
        }
        if offers.len() >= MAX_OFFERS {
            summary.offers_left_out += 1;
            continue;
        }
        offers.push(ctx.offer_entry(item, offer, start, week_end, &mut summary)?);
    }

    // Events: those with a date in the range, by their first date.
    let mut events: Vec<(DateTime<Utc>, Entry)> = Vec::new();
    for item in &request.events {
        let ItemDetails::Event(event) = &item.content.details else {
            summary.wrong_kind += 1;
            continue;
        };
        if !is_public(item, start) {
            summary.not_public += 1;
            continue;
        }
        if events.len() >= MAX_EVENTS {
            // Counted only when it has a date in the range, without listing its dates.
            match event.timing.occurrences_between(start, end, 1) {
                Ok(found) if !found.is_empty() => summary.events_left_out += 1,
                _ => {}
            }
            continue;
        }
        let occurrences = match event
            .timing
            .occurrences_between(start, end, MAX_DATES_PER_EVENT + 1)
        {
            Ok(found) => found,
            Err(e) => {
                summary.problems.push((item.id, e.to_string()));
                continue;
            }
        };
        let Some(first) = occurrences.first().map(|o| o.start) else {
            continue;
        };
        // How many more dates there are: counted with a bounded second look.
        let more = if occurrences.len() > MAX_DATES_PER_EVENT {
            event
                .timing
                .occurrences_between(start, end, 1000)
                .map(|all| all.len().saturating_sub(MAX_DATES_PER_EVENT))
                .unwrap_or(1)
        } else {
            0
        };
        let venue = event.venue.clone();
        events.push((first, ctx.event_entry(item, venue, &occurrences, more)?));
    }
    events.sort_by_key(|(first, _)| *first);
    let events: Vec<Entry> = events.into_iter().map(|(_, entry)| entry).collect();

    let numbers = ctx.numbers(&request.offers);

    summary.offers_printed = offers.len();
    summary.events_printed = events.len();
    summary.numbers_printed = numbers.len();
    let left_out = (summary.offers_left_out > 0 || summary.events_left_out > 0)
        .then(|| labels.left_out(summary.offers_left_out, summary.events_left_out));

    Ok(GuideContent {
        language: request.language.clone(),
        rtl: is_right_to_left(&request.language),
        labels,
        options: request.options,
        space_name: one_line(&request.space_name, 120),
        dates: format!("{} – {}", from.format("%d.%m.%Y"), to.format("%d.%m.%Y")),
        numbers,
        offers,
        events,
        left_out,
        summary,
    })
}

struct Ctx<'a> {
    request: &'a GuideRequest,
    tz: Tz,
    labels: &'static Labels,
    /// The guide's first instant: what has expired by then is not printed.
    start: DateTime<Utc>,
    primary: String,
}

impl Ctx<'_> {
    /// The variant of `text` to print, and its language tag: the easy-language variant when
    /// asked for and present, else the best for the guide's language
    /// ([`LocalizedText::best`]), which falls back to any variant.
    fn pick<'t>(&self, text: &'t LocalizedText) -> Option<(&'t str, String)> {
        if self.request.options.easy_language {
            if let Some(easy) = text.easy(&self.primary) {
                return Some((easy, self.primary.clone()));
            }
        }
        let chosen = text.best(&[self.request.language.as_str()])?;
        // `best` hands back one of the text's own variants: find its tag by identity.
        let tag = text
            .iter()
            .find(|(_, variant)| std::ptr::eq(*variant, chosen))
            .map(|(tag, _)| tag.to_owned())
            .unwrap_or_else(|| self.request.language.clone());
        Some((chosen, tag))
    }

    fn title(&self, item: &Item) -> (String, String) {
        match self.pick(&item.content.title) {
            Some((text, tag)) => (one_line(text, 200), tag),
            None => ("–".to_owned(), self.request.language.clone()),
        }
    }

    fn body(&self, item: &Item) -> Option<Paragraph> {
        let (text, _) = self.pick(&item.content.body)?;
        let text = shorten(text, MAX_DESCRIPTION_CHARS);
        (!text.is_empty()).then_some(Paragraph {
            style: Style::Body,
            text,
        })
    }

    fn entry(&self, item: &Item, paragraphs: Vec<Paragraph>) -> Result<Entry, GuideError> {
        let (title, lang) = self.title(item);
        let link = self.request.links.link(item.id);
        let qr = QrMatrix::encode(&link)?;
        Ok(Entry {
            qr_alt: self.labels.qr_alt(&title),
            title,
            lang,
            paragraphs,
            link,
            qr,
        })
    }

    fn offer_entry(
        &self,
        item: &Item,
        offer: &Offer,
        week_start: DateTime<Utc>,
        week_end: DateTime<Utc>,
        summary: &mut GuideSummary,
    ) -> Result<Entry, GuideError> {
        let mut paragraphs = Vec::new();
        let organization = one_line(&offer.organization.name, 200);
        if !organization.is_empty() {
            paragraphs.push(meta(organization));
        }
        if let Some(location) = &offer.location {
            let mut place = one_line(&location.name, 200);
            if let Some(address) = &location.address {
                let city = one_line(&format!("{} {}", address.postal_code, address.city), 120);
                for part in [one_line(&address.street, 120), city] {
                    if !part.is_empty() {
                        if !place.is_empty() {
                            place.push_str(", ");
                        }
                        place.push_str(&part);
                    }
                }
            }
            if !place.is_empty() {
                paragraphs.push(meta(place));
            }
        }
        if offer.schedules.is_empty() {
            paragraphs.push(Paragraph {
                style: Style::Label,
                text: self.labels.no_fixed_hours.to_owned(),
            });
        } else {
            match opening_intervals(&offer.schedules, self.tz, week_start, week_end) {
                Ok(intervals) => {
                    let days = self.week_lines(&intervals, week_start, week_end);
                    if days.is_empty() {
                        paragraphs.push(Paragraph {
                            style: Style::Label,
                            text: self.labels.closed_this_week.to_owned(),
                        });
                    } else {
                        paragraphs.push(Paragraph {
                            style: Style::Label,
                            text: self.labels.open_this_week.to_owned(),
                        });
                        paragraphs.extend(days.into_iter().map(|text| Paragraph {
                            style: Style::Times,
                            text,
                        }));
                    }
                }
                Err(e) => {
                    summary.problems.push((item.id, e.to_string()));
                    paragraphs.push(Paragraph {
                        style: Style::Label,
                        text: self.labels.no_fixed_hours.to_owned(),
                    });
                }
            }
        }
        paragraphs.extend(self.body(item));
        for phone in offer_phones(offer).into_iter().take(3) {
            paragraphs.push(Paragraph {
                style: Style::Contact,
                text: format!("{}: {}", self.labels.phone, isolate(&phone)),
            });
        }
        if let Some(email) = &offer.organization.email {
            paragraphs.push(Paragraph {
                style: Style::Contact,
                text: format!("{}: {}", self.labels.email, one_line(email, 120)),
            });
        }
        if !offer.languages.is_empty() {
            let languages: Vec<String> = offer.languages.iter().take(12).map(|l| one_line(l, 20)).collect();
            paragraphs.push(Paragraph {
                style: Style::Contact,
                text: format!("{}: {}", self.labels.languages, languages.join(", ")),
            });
        }
        self.entry(item, paragraphs)
    }

    /// One line per local day of the week that has openings: "Mo 09:00–12:00, 14:00–16:00".
    /// An opening is shown on the day it starts (an overnight one as "22:00–02:00"); one that
    /// runs longer than a day (merged round-the-clock rules) is split at midnights, and one that
    /// started the week before is shown from the week's first midnight.
    fn week_lines(
        &self,
        intervals: &[Interval],
        week_start: DateTime<Utc>,
        week_end: DateTime<Utc>,
    ) -> Vec<String> {
        let first_day = week_start.with_timezone(&self.tz).date_naive();
        let mut days: Vec<(NaiveDate, Vec<String>)> = Vec::new();
        let mut add = |day: NaiveDate, span: String| match days.iter_mut().find(|(d, _)| *d == day) {
            Some((_, spans)) => spans.push(span),
            None => days.push((day, vec![span])),
        };
        for interval in intervals {
            let start = interval.start.max(week_start);
            if start >= week_end {
                continue;
            }
            if interval.end - start <= Duration::hours(24) {
                let local = start.with_timezone(&self.tz);
                add(
                    local.date_naive(),
                    format!("{}–{}", hhmm(local.time()), self.end_time(interval.end, None)),
                );
                continue;
            }
            // Longer than a day: a piece per local day.
            let mut piece_start = start;
            let mut guard = 0;
            while piece_start < interval.end.min(week_end) && guard < 8 {
                guard += 1;
                let local = piece_start.with_timezone(&self.tz);
                let next_midnight = local
                    .date_naive()
                    .succ_opt()
                    .and_then(|next| local_midnight(self.tz, next));
                let Some(next_midnight) = next_midnight else {
                    break;
                };
                let piece_end = interval.end.min(next_midnight);
                add(
                    local.date_naive(),
                    format!(
                        "{}–{}",
                        hhmm(local.time()),
                        self.end_time(piece_end, Some(next_midnight))
                    ),
                );
                piece_start = piece_end;
            }
        }
        days.sort_by_key(|(day, _)| *day);
        days.into_iter()
            .filter(|(day, _)| *day >= first_day)
            .map(|(day, spans)| format!("{} {}", self.weekday(day), spans.join(", ")))
            .collect()
    }

    /// A closing time; midnight at the end of a day piece is "24:00".
    fn end_time(&self, end: DateTime<Utc>, midnight: Option<DateTime<Utc>>) -> String {
        if midnight == Some(end) {
            return "24:00".to_owned();
        }
        hhmm(end.with_timezone(&self.tz).time())
    }

    fn weekday(&self, day: NaiveDate) -> &'static str {
        self.labels.weekdays[day.weekday().num_days_from_monday() as usize]
    }

    fn event_entry(
        &self,
        item: &Item,
        venue: Option<String>,
        occurrences: &[Interval],
        more: usize,
    ) -> Result<Entry, GuideError> {
        let mut paragraphs = Vec::new();
        if let Some(venue) = venue.map(|v| one_line(&v, 200)).filter(|v| !v.is_empty()) {
            paragraphs.push(meta(venue));
        }
        for occurrence in occurrences.iter().take(MAX_DATES_PER_EVENT) {
            let start = occurrence.start.with_timezone(&self.tz);
            let end = occurrence.end.with_timezone(&self.tz);
            let day = start.date_naive();
            let text = if end.date_naive() == day
                || (end.date_naive() == day.succ_opt().unwrap_or(day) && end.time() == NaiveTime::MIN)
            {
                format!(
                    "{} {} {}–{}",
                    self.weekday(day),
                    day.format("%d.%m."),
                    hhmm(start.time()),
                    if end.date_naive() == day {
                        hhmm(end.time())
                    } else {
                        "24:00".to_owned()
                    }
                )
            } else {
                format!(
                    "{} {} {} – {} {} {}",
                    self.weekday(day),
                    day.format("%d.%m."),
                    hhmm(start.time()),
                    self.weekday(end.date_naive()),
                    end.date_naive().format("%d.%m."),
                    hhmm(end.time())
                )
            };
            paragraphs.push(Paragraph {
                style: Style::Times,
                text,
            });
        }
        if more > 0 {
            paragraphs.push(Paragraph {
                style: Style::Times,
                text: self.labels.more_dates(more),
            });
        }
        paragraphs.extend(self.body(item));
        self.entry(item, paragraphs)
    }

    /// The request's numbers, then each printable offer's (organisation and contacts), without
    /// repeats (compared by their digits), up to the cap.
    fn numbers(&self, offers: &[Item]) -> Vec<NumberLine> {
        let mut lines: Vec<NumberLine> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut push = |label: String, number: &str| {
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() || seen.contains(&digits) || lines.len() >= MAX_PHONE_NUMBERS {
                return;
            }
            seen.push(digits);
            lines.push(NumberLine {
                label,
                number: one_line(number, 40),
            });
        };
        for given in &self.request.phone_numbers {
            let label = self
                .pick(&given.label)
                .map(|(text, _)| one_line(text, 120))
                .unwrap_or_default();
            push(label, &given.number);
        }
        for item in offers.iter().take(MAX_OFFERS * 2) {
            let ItemDetails::Offer(offer) = &item.content.details else {
                continue;
            };
            if !is_public(item, self.start) {
                continue;
            }
            let organization = one_line(&offer.organization.name, 120);
            if let Some(phone) = &offer.organization.phone {
                push(organization.clone(), phone);
            }
            for contact in &offer.contacts {
                if let Some(phone) = &contact.phone {
                    let who = [contact.name.as_deref(), contact.title.as_deref()]
                        .into_iter()
                        .flatten()
                        .map(|s| one_line(s, 60))
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let label = if who.is_empty() {
                        organization.clone()
                    } else {
                        format!("{organization} ({who})")
                    };
                    push(label, phone);
                }
            }
        }
        lines
    }
}

fn meta(text: String) -> Paragraph {
    Paragraph {
        style: Style::Meta,
        text,
    }
}

/// Published, for everyone, and not expired at `at`: a printed guide hangs in a stairwell, so
/// nothing meant for members, volunteers or caseworkers only is ever printed.
fn is_public(item: &Item, at: DateTime<Utc>) -> bool {
    item.content.audience == Audience::Everyone && item.effective_status(at) == Status::Published
}

/// The organisation's phone and the contacts' phones, without repeats.
fn offer_phones(offer: &Offer) -> Vec<String> {
    let mut phones: Vec<String> = Vec::new();
    let all = offer
        .organization
        .phone
        .iter()
        .chain(offer.contacts.iter().filter_map(|c| c.phone.as_ref()));
    for phone in all {
        let phone = one_line(phone, 40);
        if !phone.is_empty() && !phones.contains(&phone) {
            phones.push(phone);
        }
    }
    phones
}

/// A phone number as a left-to-right isolate (U+2066 … U+2069): in a right-to-left line the
/// spaces between its digit groups would otherwise reverse the groups ("67 45 123 0231"). Its
/// spaces become no-break spaces: a number split over two lines gets misdialled.
pub(crate) fn isolate(number: &str) -> String {
    format!("\u{2066}{}\u{2069}", number.replace(' ', "\u{a0}"))
}

fn local_midnight(tz: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
    (quartier_domain::schedule::SUPPORTED_YEARS.contains(&day.year()))
        .then(|| local_to_utc(tz, day.and_time(NaiveTime::MIN)))
}

fn hhmm(time: NaiveTime) -> String {
    format!("{:02}:{:02}", time.hour(), time.minute())
}

/// Whitespace (newlines included) collapsed to single spaces, control characters dropped, and at
/// most `max_chars` characters.
pub(crate) fn one_line(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    shorten(&cleaned, max_chars)
}

/// At most `max_chars` characters, cut after the last whole word with "…" when longer.
fn shorten(text: &str, max_chars: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max_chars {
        return text;
    }
    let cut: String = text.chars().take(max_chars).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > cut.len() / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end_matches([',', ';', ':', '.', ' ']))
}
