//! The seeded content generator: the same seed gives the same items, byte for byte (apart from
//! the ids and times the store assigns).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use quartier_core::model::{
    Address, Audience, Comment, ConsentMethod, Contact, Event, FieldValue, ItemContent, ItemDetails, ItemId,
    ItemKind, LocalizedText, Location, MediaRef, NewItem, Observation, Offer, OnBehalfOf, Organization,
    PersonId, Place, Post, PostType, Request, RequestDirection, RequestState, ServiceLocation, SpaceId,
    SpaceMeta, Status,
};
use quartier_core::schedule::{EventTiming, OpeningRule};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::geo::{self, District};
use crate::words::{self, Topic, EASY_TAG, LANGS, TOPICS};

/// What kinds of item a data set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Every kind, in the proportions of a lively neighbourhood space; comments included, and
    /// only some posts and requests have a position.
    Mixed,
    /// Only items on the map (places mostly, then offers, events, observations, located
    /// requests and posts), every one with a position: for map queries.
    Located,
}

impl Mix {
    pub fn name(&self) -> &'static str {
        match self {
            Mix::Mixed => "mixed",
            Mix::Located => "map",
        }
    }

    /// Percent of items per kind, in [`ItemKind::ALL`] order.
    fn weights(&self) -> [u32; 7] {
        // post, place, offer, event, request, observation, comment
        match self {
            Mix::Mixed => [24, 14, 10, 14, 12, 8, 18],
            Mix::Located => [5, 45, 15, 13, 7, 15, 0],
        }
    }
}

/// Number of distinct authors content is spread over.
pub const AUTHORS: usize = 2_000;

/// The generator. Not thread-safe by design: one sequence per seed.
pub struct Generator {
    rng: ChaCha8Rng,
    mix: Mix,
    authors: Vec<PersonId>,
}

/// What one item is about, shared by all its language variants.
struct Ctx {
    topic: &'static Topic,
    district: &'static District,
    street: &'static str,
    weekday: usize,
    hour: u32,
}

impl Generator {
    pub fn new(seed: u64, mix: Mix) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let authors = (0..AUTHORS)
            .map(|_| PersonId::from(uuid::Uuid::from_u128(rng.random())))
            .collect();
        Self { rng, mix, authors }
    }

    /// The people who write the content.
    pub fn authors(&self) -> &[PersonId] {
        &self.authors
    }

    /// Metadata of the space everything is created in.
    pub fn space_meta() -> SpaceMeta {
        SpaceMeta {
            name: LocalizedText::single("de", "Köln – Nachbarschaft im Veedel")
                .with("en", "Cologne – neighbourhoods")
                .with("tr", "Köln – mahalleler")
                .with("ar", "كولونيا – الأحياء")
                .with("uk", "Кельн – сусідство"),
            description: LocalizedText::single(
                "de",
                "Angebote, Orte, Termine und Nachbarschaftshilfe in den Kölner Veedeln.",
            ),
            time_zone: "Europe/Berlin".into(),
            default_language: "de".into(),
            categories: Default::default(),
            layers: Default::default(),
        }
    }

    /// The next item. `parents` are items that comments may answer; with none, no comment is
    /// made.
    pub fn next_item(&mut self, space: SpaceId, parents: &[ItemId]) -> NewItem {
        let kind = self.pick_kind(!parents.is_empty());
        let parent = (kind == ItemKind::Comment).then(|| *parents.choose(&mut self.rng).expect("parents"));
        let author = *self.authors.choose(&mut self.rng).expect("authors");
        NewItem::new(space, author, self.content(kind, parent))
    }

    fn pick_kind(&mut self, comments_possible: bool) -> ItemKind {
        let mut weights = self.mix.weights();
        if !comments_possible {
            weights[6] = 0;
        }
        let total: u32 = weights.iter().sum();
        let mut n = self.rng.random_range(0..total);
        for (kind, w) in ItemKind::ALL.iter().zip(weights) {
            if n < w {
                return *kind;
            }
            n -= w;
        }
        ItemKind::Post
    }

    /// Content of one item of `kind`; a comment needs its `parent`.
    pub fn content(&mut self, kind: ItemKind, parent: Option<ItemId>) -> ItemContent {
        let topics = match kind {
            ItemKind::Place => words::PLACE_TOPICS,
            ItemKind::Offer => words::OFFER_TOPICS,
            ItemKind::Event => words::EVENT_TOPICS,
            ItemKind::Request => words::REQUEST_TOPICS,
            ItemKind::Observation => words::OBSERVATION_TOPICS,
            ItemKind::Post | ItemKind::Comment => &[],
        };
        let topic = match topics.choose(&mut self.rng) {
            Some(i) => &TOPICS[*i],
            None => TOPICS.choose(&mut self.rng).expect("topics"),
        };
        let district = geo::pick_district(&mut self.rng);
        let ctx = Ctx {
            topic,
            district,
            street: district.streets.choose(&mut self.rng).expect("streets"),
            weekday: self.rng.random_range(0..7),
            hour: self.rng.random_range(9..20),
        };
        let need = self.rng.random_bool(0.65);
        let (title, body) = self.texts(kind, &ctx, need);
        let details = match kind {
            ItemKind::Post => ItemDetails::Post(Post {
                post_type: if self.rng.random_bool(0.6) {
                    PostType::News
                } else {
                    PostType::Notice
                },
            }),
            ItemKind::Place => ItemDetails::Place(self.place(&ctx)),
            ItemKind::Offer => ItemDetails::Offer(self.offer(&ctx)),
            ItemKind::Event => ItemDetails::Event(self.event(&ctx)),
            ItemKind::Request => ItemDetails::Request(Request {
                direction: if need {
                    RequestDirection::Need
                } else {
                    RequestDirection::Offer
                },
                category: words::REQUEST_CATEGORIES
                    .choose(&mut self.rng)
                    .expect("categories")
                    .to_string(),
                state: match self.rng.random_range(0..100) {
                    0..80 => RequestState::Open,
                    80..92 => RequestState::Taken,
                    _ => RequestState::Done,
                },
            }),
            ItemKind::Observation => ItemDetails::Observation(self.observation()),
            ItemKind::Comment => ItemDetails::Comment(Comment {
                parent: parent.expect("a comment needs a parent"),
            }),
        };
        let mut content = ItemContent::new(title, details);
        content.body = body;
        content.tags = self.tags(kind, &ctx);
        content.location = self.location(kind, ctx.district);
        if kind != ItemKind::Comment && self.rng.random_range(0..100) < 8 {
            content.media = vec![self.photo(&ctx)];
        }
        content.audience = match self.rng.random_range(0..100) {
            0..85 => Audience::Everyone,
            85..95 => Audience::Volunteers,
            95..98 => Audience::Caseworkers,
            _ => Audience::AuthorOnly,
        };
        content.status = match self.rng.random_range(0..100) {
            0..94 => Status::Published,
            94..97 => Status::Draft,
            _ => Status::Hidden,
        };
        if matches!(kind, ItemKind::Post | ItemKind::Request) && self.rng.random_range(0..100) < 25 {
            // Fixed dates, not "now": half of these are past (expired), half in the future.
            let year = if self.rng.random_bool(0.5) { 2025 } else { 2027 };
            content.valid_until = Some(self.date_time(year));
        }
        if matches!(kind, ItemKind::Post | ItemKind::Request) && self.rng.random_range(0..100) < 3 {
            content.on_behalf_of = Some(OnBehalfOf {
                name: words::NEIGHBOUR_NAMES
                    .choose(&mut self.rng)
                    .expect("names")
                    .to_string(),
                consent: ConsentMethod::Verbal,
                consent_given_at: self.date_time(2026),
                witnessed_by: None,
                reach: None,
            });
        }
        content
    }

    /// Title and body, in the item's language(s).
    fn texts(&mut self, kind: ItemKind, ctx: &Ctx, need: bool) -> (LocalizedText, LocalizedText) {
        let primary = self.pick_language();
        let mut langs = vec![primary];
        if self.rng.random_range(0..100) < 30 {
            // A translation: German for content written in another language, else another one.
            let second = if primary != 0 {
                0
            } else {
                self.rng.random_range(1..LANGS.len())
            };
            langs.push(second);
        }
        let mut title = LocalizedText::new();
        let mut body = LocalizedText::new();
        for &l in &langs {
            let (t, b) = match kind {
                ItemKind::Comment => {
                    let text = fill(
                        words::COMMENTS[l].choose(&mut self.rng).expect("comments"),
                        l,
                        ctx,
                    );
                    let body = if self.rng.random_bool(0.4) {
                        self.sentences(l, ctx, 1, 2)
                    } else {
                        String::new()
                    };
                    (text, body)
                }
                ItemKind::Request => {
                    let (n, o) = words::REQUEST_TITLES[l];
                    (
                        fill(if need { n } else { o }, l, ctx),
                        self.sentences(l, ctx, 2, 4),
                    )
                }
                _ => {
                    let template = words::TITLES[l].choose(&mut self.rng).expect("titles");
                    (fill(template, l, ctx), self.sentences(l, ctx, 2, 7))
                }
            };
            title.set(LANGS[l], t);
            if !b.is_empty() {
                body.set(LANGS[l], b);
            }
        }
        if langs.contains(&0) && kind != ItemKind::Comment && self.rng.random_range(0..100) < 25 {
            let template = words::EASY_TITLES.choose(&mut self.rng).expect("easy titles");
            title.set(EASY_TAG, fill_easy(template, ctx));
            let n = self.rng.random_range(3..7);
            let easy: Vec<String> = words::EASY_SENTENCES
                .choose_multiple(&mut self.rng, n)
                .map(|s| fill_easy(s, ctx))
                .collect();
            body.set(EASY_TAG, easy.join("\n"));
        }
        (title, body)
    }

    fn pick_language(&mut self) -> usize {
        let total: u32 = words::LANG_WEIGHTS.iter().sum();
        let mut n = self.rng.random_range(0..total);
        for (i, w) in words::LANG_WEIGHTS.iter().enumerate() {
            if n < *w {
                return i;
            }
            n -= w;
        }
        0
    }

    /// `min..=max` distinct sentences in language `l`, sometimes with a contact line.
    fn sentences(&mut self, l: usize, ctx: &Ctx, min: usize, max: usize) -> String {
        let n = self.rng.random_range(min..=max);
        let mut out: Vec<String> = words::SENTENCES[l]
            .choose_multiple(&mut self.rng, n)
            .map(|s| fill(s, l, ctx))
            .collect();
        if self.rng.random_range(0..100) < 20 {
            let phone = format!("0221 {}", self.rng.random_range(1_000_000..9_999_999));
            out.push(match l {
                0 => format!("Kontakt: {phone}, {} {}", ctx.street, self.house_number()),
                1 => format!("Contact: {phone}, {} {}", ctx.street, self.house_number()),
                2 => format!("İletişim: {phone}"),
                3 => format!("للتواصل: {phone}"),
                _ => format!("Контакт: {phone}"),
            });
        }
        out.join(" ")
    }

    fn house_number(&mut self) -> u32 {
        self.rng.random_range(1..180)
    }

    fn tags(&mut self, kind: ItemKind, ctx: &Ctx) -> BTreeSet<String> {
        let mut tags = BTreeSet::new();
        if kind == ItemKind::Comment {
            return tags;
        }
        tags.insert(ctx.topic.tag.to_owned());
        for _ in 0..self.rng.random_range(0..3) {
            tags.insert(words::EXTRA_TAGS.choose(&mut self.rng).expect("tags").to_string());
        }
        if self.rng.random_bool(0.3) {
            tags.insert(ctx.district.name.to_lowercase());
        }
        tags
    }

    fn location(&mut self, kind: ItemKind, district: &District) -> Option<Location> {
        let percent = match (self.mix, kind) {
            (_, ItemKind::Comment) => 0,
            (Mix::Located, _) | (_, ItemKind::Place | ItemKind::Observation) => 100,
            (Mix::Mixed, ItemKind::Offer) => 90,
            (Mix::Mixed, ItemKind::Event) => 80,
            (Mix::Mixed, ItemKind::Request) => 50,
            (Mix::Mixed, ItemKind::Post) => 35,
        };
        if self.rng.random_range(0..100) >= percent {
            return None;
        }
        let (lat, lon) = geo::position(&mut self.rng, district);
        Some(if kind == ItemKind::Observation {
            Location::gps(lat, lon, f64::from(self.rng.random_range(3..25)))
        } else {
            Location::new(lat, lon)
        })
    }

    fn address(&mut self, ctx: &Ctx) -> Address {
        Address {
            street: format!("{} {}", ctx.street, self.house_number()),
            postal_code: ctx.district.postal_code.into(),
            city: "Köln".into(),
            country: "DE".into(),
        }
    }

    fn place(&mut self, ctx: &Ctx) -> Place {
        let mut accessibility = BTreeMap::new();
        if self.rng.random_bool(0.5) {
            let v = *["yes", "no", "limited"].choose(&mut self.rng).expect("values");
            accessibility.insert("step_free_entrance".to_owned(), v.to_owned());
            let v = *["yes", "no"].choose(&mut self.rng).expect("values");
            accessibility.insert("toilet".to_owned(), v.to_owned());
        }
        Place {
            category: Some(
                words::PLACE_CATEGORIES
                    .choose(&mut self.rng)
                    .expect("categories")
                    .to_string(),
            ),
            address: self.rng.random_bool(0.8).then(|| self.address(ctx)),
            accessibility,
        }
    }

    fn offer(&mut self, ctx: &Ctx) -> Offer {
        let (org, domain) = *words::ORGANIZATIONS.choose(&mut self.rng).expect("organisations");
        let phone = format!("0221 {}", self.rng.random_range(1_000_000..9_999_999));
        let n_rules = self.rng.random_range(1..=3);
        let schedules = (0..n_rules).map(|_| self.opening_rule()).collect();
        let mut languages = vec!["de".to_owned()];
        for l in &LANGS[1..] {
            if self.rng.random_bool(0.35) {
                languages.push((*l).to_owned());
            }
        }
        Offer {
            organization: Organization {
                name: org.into(),
                url: Some(format!("https://{domain}")),
                email: Some(format!("info@{domain}")),
                phone: Some(phone.clone()),
            },
            category: Some(
                words::OFFER_CATEGORIES
                    .choose(&mut self.rng)
                    .expect("categories")
                    .to_string(),
            ),
            service_url: self
                .rng
                .random_bool(0.5)
                .then(|| format!("https://{domain}/angebote/{}", ctx.topic.tag)),
            fees: match self.rng.random_range(0..3) {
                0 => Some("kostenlos".into()),
                1 => Some("3 € pro Termin, ermäßigt frei".into()),
                _ => None,
            },
            eligibility: self
                .rng
                .random_bool(0.4)
                .then(|| format!("Für alle Menschen aus {} und Umgebung", ctx.district.name)),
            location: Some(ServiceLocation {
                name: if self.rng.random_bool(0.5) {
                    format!("Bürgerzentrum {}", ctx.district.name)
                } else {
                    org.into()
                },
                address: Some(self.address(ctx)),
            }),
            schedules,
            contacts: vec![Contact {
                name: Some("Beratungsteam".into()),
                title: None,
                phone: Some(phone),
                email: Some(format!("beratung@{domain}")),
            }],
            languages,
            accessibility: if self.rng.random_bool(0.5) {
                vec!["rollstuhlgerecht".into(), "Gebärdensprache auf Anfrage".into()]
            } else {
                Vec::new()
            },
            assured_date: None,
            assured_by: None,
        }
    }

    /// A weekly or monthly opening rule (HSDS schedule).
    fn opening_rule(&mut self) -> OpeningRule {
        const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
        let rrule = if self.rng.random_range(0..100) < 75 {
            let n = self.rng.random_range(1..=3);
            let days: Vec<&str> = DAYS[..5].choose_multiple(&mut self.rng, n).copied().collect();
            format!("FREQ=WEEKLY;BYDAY={}", days.join(","))
        } else {
            let nth = *["1", "2", "3", "-1"].choose(&mut self.rng).expect("nth");
            let day = DAYS.choose(&mut self.rng).expect("days");
            format!("FREQ=MONTHLY;BYDAY={nth}{day}")
        };
        let open_h = self.rng.random_range(8..17);
        let close_h = open_h + self.rng.random_range(2..5);
        let bounded = self.rng.random_bool(0.3);
        OpeningRule {
            rrule,
            opens: NaiveTime::from_hms_opt(open_h, if self.rng.random_bool(0.3) { 30 } else { 0 }, 0)
                .expect("time"),
            closes: NaiveTime::from_hms_opt(close_h, 0, 0).expect("time"),
            valid_from: bounded.then(|| date(2026, 1, 1)),
            valid_until: bounded.then(|| date(2026, 12, 31)),
            closed_on: if self.rng.random_bool(0.4) {
                // Rosenmontag, Christmas, New Year's Eve.
                vec![date(2026, 2, 16), date(2026, 12, 24), date(2026, 12, 31)]
            } else {
                Vec::new()
            },
            description: self
                .rng
                .random_bool(0.3)
                .then(|| "Offene Sprechstunde, ohne Termin".to_owned()),
        }
    }

    fn event(&mut self, ctx: &Ctx) -> Event {
        const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
        let day = date(2026, 1, 1) + Duration::days(self.rng.random_range(0..365));
        let start = day
            .and_hms_opt(
                ctx.hour.min(20),
                if self.rng.random_bool(0.3) { 30 } else { 0 },
                0,
            )
            .expect("start");
        let end = start + Duration::minutes(self.rng.random_range(1..=6) * 30);
        let weekday = DAYS[day.weekday().num_days_from_monday() as usize];
        let rrule = match self.rng.random_range(0..100) {
            0..40 => None,
            40..70 => Some(format!(
                "FREQ=WEEKLY;BYDAY={weekday};COUNT={}",
                self.rng.random_range(4..=20)
            )),
            70..85 => Some(format!("FREQ=MONTHLY;BYDAY=2{weekday}")),
            _ => Some(format!("FREQ=WEEKLY;BYDAY={weekday}")),
        };
        let exdates = if rrule.is_some() && self.rng.random_range(0..100) < 10 {
            vec![start + Duration::weeks(self.rng.random_range(1..4))]
        } else {
            Vec::new()
        };
        Event {
            timing: EventTiming {
                start,
                end,
                time_zone: "Europe/Berlin".into(),
                rrule,
                exdates,
            },
            venue: Some(match self.rng.random_range(0..3) {
                0 => format!("Bürgerzentrum {}", ctx.district.name),
                1 => format!("{} {}", ctx.street, self.house_number()),
                _ => format!("Gemeindesaal {}", ctx.district.name),
            }),
        }
    }

    fn observation(&mut self) -> Observation {
        let (preset, category) = *words::OBSERVATION_PRESETS.choose(&mut self.rng).expect("presets");
        let mut fields = BTreeMap::new();
        match preset {
            "barrier" => {
                fields.insert(
                    "step_height_cm".into(),
                    FieldValue::Number(f64::from(self.rng.random_range(2..30))),
                );
                fields.insert("ramp".into(), FieldValue::Bool(self.rng.random_bool(0.3)));
            }
            "bench" => {
                let v = *["gut", "beschädigt", "fehlt"]
                    .choose(&mut self.rng)
                    .expect("values");
                fields.insert("condition".into(), FieldValue::Text(v.into()));
                fields.insert(
                    "seats".into(),
                    FieldValue::Number(f64::from(self.rng.random_range(2..6))),
                );
            }
            "tree" => {
                let v = *["Linde", "Kastanie", "Platane", "Ahorn"]
                    .choose(&mut self.rng)
                    .expect("values");
                fields.insert("species".into(), FieldValue::Text(v.into()));
                fields.insert("needs_water".into(), FieldValue::Bool(self.rng.random_bool(0.5)));
            }
            _ => {
                fields.insert("urgent".into(), FieldValue::Bool(self.rng.random_bool(0.2)));
            }
        }
        if self.rng.random_bool(0.3) {
            fields.insert("note".into(), FieldValue::Text("Bitte bald ansehen.".into()));
        }
        Observation {
            preset: preset.into(),
            category: Some(category.into()),
            fields,
        }
    }

    fn photo(&mut self, ctx: &Ctx) -> MediaRef {
        let hash: String = (0..4)
            .map(|_| format!("{:016x}", self.rng.random::<u64>()))
            .collect();
        MediaRef {
            alt_text: LocalizedText::single(
                "de",
                format!("Foto: {} in {}", ctx.topic.names[0], ctx.district.name),
            ),
            ..MediaRef::new(hash, "image/jpeg", self.rng.random_range(40_000..3_000_000))
        }
    }

    fn date_time(&mut self, year: i32) -> DateTime<Utc> {
        let day = date(year, 1, 1) + Duration::days(self.rng.random_range(0..365));
        Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).expect("noon"))
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// Fills a template's placeholders in language `l`; the first letter is capitalised.
fn fill(template: &str, l: usize, ctx: &Ctx) -> String {
    let text = template
        .replace("{T}", ctx.topic.names[l])
        .replace("{D}", ctx.district.name)
        .replace("{S}", ctx.street)
        .replace("{W}", words::WEEKDAYS[l][ctx.weekday])
        .replace("{H}", &ctx.hour.to_string());
    capitalise(&text)
}

fn fill_easy(template: &str, ctx: &Ctx) -> String {
    template
        .replace("{T}", ctx.topic.easy)
        .replace("{D}", ctx.district.name)
        .replace("{S}", ctx.street)
        .replace("{W}", words::WEEKDAYS[0][ctx.weekday])
        .replace("{H}", &ctx.hour.to_string())
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => text.to_owned(),
    }
}
