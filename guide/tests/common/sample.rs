//! The sample guide: a neighbourhood in Dortmund's Nordstadt with offers in German, Turkish,
//! Ukrainian and Arabic, their opening hours in Europe/Berlin, a few events and important numbers.
//! Shared by the tests and `examples/sample_guide.rs` (which includes this file by path).
//!
//! Each offer's hours are given as a plain spec (weekdays, times, a closed day, every other week)
//! from which the opening rule is built, so the tests can work out the expected hours from the
//! spec with plain date arithmetic, independently of the recurrence engine.

#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use quartier_domain::model::{
    Address, Audience, Contact, Event, Item, ItemContent, ItemDetails, ItemId, LocalizedText, Offer,
    Organization, PersonId, ServiceLocation, SpaceId,
};
use quartier_domain::schedule::{EventTiming, OpeningRule};
use quartier_guide::{GuideOptions, GuideRequest, LinkScheme, PhoneNumber};
use uuid::Uuid;

/// The base of the QR links.
pub const LINK_BASE: &str = "https://quartier.example";

/// The guide's first day (a Monday) and last day.
pub fn from() -> NaiveDate {
    date(2026, 5, 4)
}
pub fn to() -> NaiveDate {
    date(2026, 5, 17)
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid sample date")
}

fn time((h, m): (u32, u32)) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("a valid sample time")
}

/// An offer with weekly hours.
pub struct OfferSpec {
    pub id: u128,
    /// (language tag, title); `de-x-easy` is the easy-language title.
    pub titles: &'static [(&'static str, &'static str)],
    pub bodies: &'static [(&'static str, &'static str)],
    pub organization: &'static str,
    pub place: &'static str,
    pub street: &'static str,
    pub days: &'static [Weekday],
    pub opens: (u32, u32),
    pub closes: (u32, u32),
    /// A holiday on which it does not open.
    pub closed_on: Option<(i32, u32, u32)>,
    /// Every other week, counted from this day (which opens).
    pub every_other_week_from: Option<(i32, u32, u32)>,
    pub phone: Option<&'static str>,
    pub languages: &'static [&'static str],
}

impl OfferSpec {
    pub fn item_id(&self) -> ItemId {
        ItemId::from(Uuid::from_u128(self.id))
    }

    pub fn link(&self) -> String {
        format!("{LINK_BASE}/i/{}", self.item_id())
    }

    pub fn title(&self, tag: &str) -> &'static str {
        self.titles
            .iter()
            .find(|(t, _)| *t == tag)
            // As `LocalizedText::best`: else the variant with the first tag.
            .or_else(|| self.titles.iter().min_by_key(|(t, _)| *t))
            .map(|(_, title)| *title)
            .unwrap_or("")
    }

    fn rule(&self) -> OpeningRule {
        let days: Vec<&str> = self
            .days
            .iter()
            .map(|d| match d {
                Weekday::Mon => "MO",
                Weekday::Tue => "TU",
                Weekday::Wed => "WE",
                Weekday::Thu => "TH",
                Weekday::Fri => "FR",
                Weekday::Sat => "SA",
                Weekday::Sun => "SU",
            })
            .collect();
        let interval = if self.every_other_week_from.is_some() {
            ";INTERVAL=2"
        } else {
            ""
        };
        OpeningRule {
            rrule: format!("FREQ=WEEKLY{interval};BYDAY={}", days.join(",")),
            opens: time(self.opens),
            closes: time(self.closes),
            valid_from: self.every_other_week_from.map(|(y, m, d)| date(y, m, d)),
            valid_until: None,
            closed_on: self
                .closed_on
                .map(|(y, m, d)| date(y, m, d))
                .into_iter()
                .collect(),
            description: None,
        }
    }

    pub fn item(&self) -> Item {
        let mut title = LocalizedText::new();
        for (tag, text) in self.titles {
            title.set(tag, *text);
        }
        let mut body = LocalizedText::new();
        for (tag, text) in self.bodies {
            body.set(tag, *text);
        }
        let offer = Offer {
            organization: Organization {
                name: self.organization.to_owned(),
                phone: self.phone.map(str::to_owned),
                ..Organization::default()
            },
            location: Some(ServiceLocation {
                name: self.place.to_owned(),
                address: Some(Address {
                    street: self.street.to_owned(),
                    postal_code: "44147".to_owned(),
                    city: "Dortmund".to_owned(),
                    country: "DE".to_owned(),
                }),
            }),
            schedules: vec![self.rule()],
            languages: self.languages.iter().map(|l| (*l).to_owned()).collect(),
            ..Offer::default()
        };
        let mut content = ItemContent::new(title, ItemDetails::Offer(offer));
        content.body = body;
        item(self.id, content)
    }
}

fn item(id: u128, content: ItemContent) -> Item {
    let at = Utc
        .with_ymd_and_hms(2026, 4, 1, 8, 0, 0)
        .single()
        .expect("a valid sample instant");
    Item {
        id: ItemId::from(Uuid::from_u128(id)),
        space: SpaceId::from(Uuid::from_u128(0x5ace)),
        author: PersonId::from(Uuid::from_u128(0xa17)),
        created_at: at,
        updated_at: at,
        content,
    }
}

use Weekday::*;

pub fn offer_specs() -> Vec<OfferSpec> {
    vec![
        OfferSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0001,
            titles: &[
                ("de", "Sozialberatung"),
                ("de-x-easy", "Hilfe bei Briefen vom Amt"),
                ("tr", "Sosyal danışmanlık"),
                ("uk", "Соціальна консультація"),
                ("ar", "استشارة اجتماعية"),
            ],
            bodies: &[
                ("de", "Beratung zu Bürgergeld, Wohngeld, Kindergeld und Schulden. Ohne Termin, kostenlos und vertraulich. Bringen Sie Ihre Briefe und Bescheide mit."),
                ("de-x-easy", "Sie haben einen Brief vom Amt. Sie verstehen den Brief nicht. Wir helfen Ihnen. Das kostet nichts."),
                ("tr", "Vatandaşlık parası, kira yardımı, çocuk parası ve borçlar hakkında ücretsiz danışmanlık."),
                ("uk", "Безкоштовні консультації щодо допомоги, житла та боргів. Без запису."),
                ("ar", "استشارات مجانية حول المساعدات والسكن والديون. بدون موعد."),
            ],
            organization: "Diakonie Nordstadt",
            place: "Stadtteilbüro",
            street: "Mallinckrodtstraße 12",
            days: &[Mon, Wed],
            opens: (9, 0),
            closes: (12, 0),
            closed_on: None,
            every_other_week_from: None,
            phone: Some("0231 123 45 67"),
            languages: &["de", "tr", "ar"],
        },
        OfferSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0002,
            titles: &[
                ("de", "Lebensmittelausgabe der Tafel"),
                ("de-x-easy", "Essen für wenig Geld"),
                ("tr", "Gıda bankası dağıtımı"),
                ("uk", "Видача продуктів"),
                ("ar", "توزيع المواد الغذائية"),
            ],
            bodies: &[
                ("de", "Lebensmittel für Menschen mit wenig Geld. Bitte Berechtigungsausweis und Tasche mitbringen."),
                ("ar", "مواد غذائية لمن لديهم دخل محدود. يرجى إحضار البطاقة وحقيبة."),
            ],
            organization: "Dortmunder Tafel e. V.",
            place: "Gemeindehaus St. Joseph",
            street: "Heroldstraße 13",
            days: &[Tue, Fri],
            opens: (10, 0),
            closes: (13, 30),
            // Friday of the sample week: closed.
            closed_on: Some((2026, 5, 8)),
            every_other_week_from: None,
            phone: Some("0231 987 65 43"),
            languages: &["de"],
        },
        OfferSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0003,
            titles: &[
                ("de", "Deutschkurs für Frauen mit Kinderbetreuung"),
                ("tr", "Çocuk bakımlı kadınlar için Almanca kursu"),
                ("uk", "Курс німецької для жінок з доглядом за дітьми"),
                ("ar", "دورة لغة ألمانية للنساء مع رعاية الأطفال"),
            ],
            bodies: &[("de", "Alle zwei Wochen, Anfängerinnen willkommen.")],
            organization: "Frauenzentrum Nordstadt",
            place: "Frauenzentrum",
            street: "Bornstraße 40",
            days: &[Thu],
            opens: (14, 0),
            closes: (16, 30),
            closed_on: None,
            // 2026-04-23, then 05-07 (in the sample week), 05-21, …
            every_other_week_from: Some((2026, 4, 23)),
            phone: None,
            languages: &["de", "ar", "uk"],
        },
        OfferSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0004,
            titles: &[("uk", "Українська громада: консультації та чай")],
            bodies: &[("uk", "Допомога з документами, перекладом та пошуком житла. Приходьте на чай!")],
            organization: "Ukrainischer Verein Dortmund",
            place: "Nachbarschaftstreff",
            street: "Schleswiger Straße 8",
            days: &[Wed, Sat],
            opens: (16, 0),
            closes: (19, 0),
            closed_on: None,
            every_other_week_from: None,
            phone: Some("0231 555 01 02"),
            languages: &["uk", "ru", "de"],
        },
        OfferSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0005,
            titles: &[("tr", "Türkçe aile danışmanlığı"), ("de", "Familienberatung auf Türkisch")],
            bodies: &[("tr", "Aile, okul ve eğitim konularında Türkçe danışmanlık. Randevu için arayın.")],
            organization: "Caritas Dortmund",
            place: "Beratungsstelle Nord",
            street: "Münsterstraße 61",
            days: &[Fri],
            opens: (15, 0),
            closes: (18, 0),
            closed_on: None,
            every_other_week_from: None,
            phone: Some("0231 444 33 22"),
            languages: &["tr", "de"],
        },
        OfferSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0006,
            titles: &[("ar", "مقهى اللغة العربية"), ("de", "Arabisches Sprachcafé")],
            bodies: &[("ar", "لقاء أسبوعي لتعلم اللغة وتبادل الخبرات مع الجيران.")],
            organization: "Planerladen e. V.",
            place: "Sprachcafé",
            street: "Mallinckrodtstraße 56",
            days: &[Sat],
            opens: (11, 0),
            closes: (13, 0),
            closed_on: None,
            every_other_week_from: None,
            phone: None,
            languages: &["ar", "de"],
        },
    ]
}

/// The events: (id, titles, first start, first end, rrule, venue).
pub struct EventSpec {
    pub id: u128,
    pub titles: &'static [(&'static str, &'static str)],
    pub start: (i32, u32, u32, u32, u32),
    pub end: (i32, u32, u32, u32, u32),
    pub rrule: Option<&'static str>,
    pub venue: &'static str,
}

impl EventSpec {
    pub fn item_id(&self) -> ItemId {
        ItemId::from(Uuid::from_u128(self.id))
    }

    pub fn link(&self) -> String {
        format!("{LINK_BASE}/i/{}", self.item_id())
    }

    pub fn title(&self, tag: &str) -> &'static str {
        self.titles
            .iter()
            .find(|(t, _)| *t == tag)
            // As `LocalizedText::best`: else the variant with the first tag.
            .or_else(|| self.titles.iter().min_by_key(|(t, _)| *t))
            .map(|(_, title)| *title)
            .unwrap_or("")
    }

    pub fn item(&self) -> Item {
        let local = |(y, mo, d, h, mi): (i32, u32, u32, u32, u32)| -> NaiveDateTime {
            date(y, mo, d).and_time(time((h, mi)))
        };
        let mut title = LocalizedText::new();
        for (tag, text) in self.titles {
            title.set(tag, *text);
        }
        let event = Event {
            timing: EventTiming {
                start: local(self.start),
                end: local(self.end),
                time_zone: "Europe/Berlin".to_owned(),
                rrule: self.rrule.map(str::to_owned),
                exdates: Vec::new(),
            },
            venue: Some(self.venue.to_owned()),
        };
        item(self.id, ItemContent::new(title, ItemDetails::Event(event)))
    }
}

pub fn event_specs() -> Vec<EventSpec> {
    vec![
        EventSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0101,
            titles: &[
                ("de", "Repair-Café"),
                ("tr", "Tamir kafe"),
                ("uk", "Ремонтне кафе"),
                ("ar", "مقهى التصليح"),
            ],
            start: (2026, 4, 2, 18, 0),
            end: (2026, 4, 2, 20, 0),
            rrule: Some("FREQ=WEEKLY;BYDAY=TH"),
            venue: "Nachbarschaftstreff, Schleswiger Straße 8",
        },
        EventSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0102,
            titles: &[
                ("de", "Straßenfest Nordstadt"),
                ("tr", "Nordstadt sokak şenliği"),
                ("uk", "Вуличне свято Нордштадт"),
                ("ar", "مهرجان شارع نوردشتات"),
            ],
            start: (2026, 5, 16, 14, 0),
            end: (2026, 5, 16, 22, 0),
            rrule: None,
            venue: "Nordmarkt",
        },
        EventSpec {
            id: 0x0196_0000_0000_7000_8000_0000_0000_0103,
            titles: &[("ar", "فطور الجيران"), ("de", "Nachbarschaftsfrühstück")],
            start: (2026, 5, 10, 10, 0),
            end: (2026, 5, 10, 12, 0),
            rrule: None,
            venue: "Nordmarkt",
        },
    ]
}

pub fn phone_numbers() -> Vec<PhoneNumber> {
    vec![
        PhoneNumber {
            label: LocalizedText::from([
                ("de", "Notruf, Feuerwehr, Rettungsdienst"),
                ("en", "Emergency, fire, ambulance"),
                ("tr", "Acil durum, itfaiye, ambulans"),
                ("uk", "Екстрений виклик, пожежна, швидка"),
                ("ar", "الطوارئ والإطفاء والإسعاف"),
            ]),
            number: "112".to_owned(),
        },
        PhoneNumber {
            label: LocalizedText::from([
                ("de", "Polizei"),
                ("tr", "Polis"),
                ("uk", "Поліція"),
                ("ar", "الشرطة"),
            ]),
            number: "110".to_owned(),
        },
        PhoneNumber {
            label: LocalizedText::from([
                ("de", "Telefonseelsorge (rund um die Uhr, kostenlos)"),
                ("tr", "Telefon danışma hattı (7/24, ücretsiz)"),
                ("uk", "Телефон довіри (цілодобово, безкоштовно)"),
                ("ar", "خط الدعم النفسي (على مدار الساعة، مجاني)"),
            ]),
            number: "0800 111 0 111".to_owned(),
        },
    ]
}

/// The sample request in `language` with `options`.
pub fn request(language: &str, options: GuideOptions) -> GuideRequest {
    let links = LinkScheme::from_base(LINK_BASE).expect("the sample link base is valid");
    let mut request = GuideRequest::new("Nordstadt", language, from(), to(), "Europe/Berlin", links);
    request.offers = offer_specs().iter().map(OfferSpec::item).collect();
    request.events = event_specs().iter().map(EventSpec::item).collect();
    request.phone_numbers = phone_numbers();
    request.options = options;
    request
}

/// An offer for members only: never printed.
pub fn members_only_offer() -> Item {
    let mut item = offer_specs()[0].item();
    item.id = ItemId::from(Uuid::from_u128(0x0196_0000_0000_7000_8000_0000_0000_0999));
    item.content.title = LocalizedText::single("de", "Interne Teamsitzung");
    item.content.audience = Audience::Volunteers;
    if let ItemDetails::Offer(offer) = &mut item.content.details {
        offer.contacts.push(Contact {
            name: Some("Intern".to_owned()),
            phone: Some("0231 000 00 01".to_owned()),
            ..Contact::default()
        });
    }
    item
}

/// `n` plain offers, for the bound on big spaces.
pub fn many_offers(n: usize) -> Vec<Item> {
    let template = offer_specs()[0].item();
    (0..n)
        .map(|i| {
            let mut item = template.clone();
            item.id = ItemId::from(Uuid::from_u128(
                0x0197_0000_0000_7000_8000_0000_0000_0000 + i as u128,
            ));
            item.content.title = LocalizedText::single("de", format!("Angebot Nummer {i}"));
            item
        })
        .collect()
}

/// The UTC instant of a local time in Berlin, for expectations.
pub fn berlin(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    chrono_tz::Europe::Berlin
        .with_ymd_and_hms(y, m, d, h, mi, 0)
        .single()
        .expect("an unambiguous sample time")
        .with_timezone(&Utc)
}
