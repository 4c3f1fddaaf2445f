//! Fixtures shared by the integration tests: a store in a temporary folder, a Berlin-time
//! space, viewers of each role and item builders.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use quartier_core::document::creation_of;
use quartier_core::model::*;
use quartier_core::{IncomingChange, IncomingCreation, Store, StoreOptions};
use tempfile::TempDir;

pub struct Fixture {
    pub dir: TempDir,
    pub store: Store,
    pub space: SpaceId,
    pub author: PersonId,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_options(StoreOptions::default())
    }

    pub fn with_options(options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("store.db"), options).expect("open store");
        let author = PersonId::new();
        let space = store
            .create_space(space_meta("Nippes"), author)
            .expect("create space")
            .id;
        Self {
            dir,
            store,
            space,
            author,
        }
    }

    pub fn viewer(&self, role: Role) -> Viewer {
        Viewer::new(PersonId::new(), role)
    }

    pub fn author_viewer(&self) -> Viewer {
        Viewer::new(self.author, Role::Resident)
    }

    pub fn create(&self, content: ItemContent) -> Item {
        self.store
            .create_item(NewItem::new(self.space, self.author, content))
            .expect("create item")
    }

    pub fn post(&self, title: &str, body: &str) -> Item {
        self.create(post(title, body))
    }

    /// Gives item `id` a new (German) title, as its author.
    pub fn retitle(&self, id: ItemId, title: &str) -> Item {
        self.store
            .update_item(
                id,
                &ItemPatch {
                    title: Some(LocalizedText::single("de", title)),
                    ..Default::default()
                },
                self.author,
            )
            .expect("retitle")
    }

    /// A second store holding every document of this one (as a device that took every change).
    pub fn replica(&self) -> (TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(dir.path().join("replica.db"), StoreOptions::default()).expect("open replica");
        for (doc, _) in self.store.document_ids().expect("documents") {
            store
                .apply_changes(&self.store.document_changes(&doc).expect("changes"))
                .expect("apply");
        }
        (dir, store)
    }
}

pub fn space_meta(name: &str) -> SpaceMeta {
    SpaceMeta {
        name: LocalizedText::single("de", name),
        description: LocalizedText::single("de", "Unser Veedel"),
        time_zone: "Europe/Berlin".into(),
        default_language: "de".into(),
        categories: Default::default(),
        layers: Default::default(),
    }
}

pub fn post(title: &str, body: &str) -> ItemContent {
    ItemContent {
        body: LocalizedText::single("de", body),
        ..ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        )
    }
}

pub fn place(title: &str, lat: f64, lon: f64) -> ItemContent {
    ItemContent {
        location: Some(Location::new(lat, lon)),
        ..ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Place(Place::default()),
        )
    }
}

pub fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("valid date")
}

// ---- Helpers for the query and live-query tests (queries.rs, live.rs). ----

/// A local (wall-clock) date-time.
pub fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_opt(h, min, 0))
        .expect("valid local date-time")
}

/// A calendar date.
pub fn date(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// A local time of day.
pub fn hm(h: u32, min: u32) -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(h, min, 0).expect("valid time")
}

/// An opening rule `rrule` from `opens` to `closes`, valid from `valid_from`.
pub fn opening(
    rrule: &str,
    opens: chrono::NaiveTime,
    closes: chrono::NaiveTime,
    valid_from: Option<chrono::NaiveDate>,
) -> quartier_core::schedule::OpeningRule {
    quartier_core::schedule::OpeningRule {
        rrule: rrule.into(),
        opens,
        closes,
        valid_from,
        valid_until: None,
        closed_on: Vec::new(),
        description: None,
    }
}

/// An offer (HSDS service) with opening rules.
pub fn offer(title: &str, schedules: Vec<quartier_core::schedule::OpeningRule>) -> ItemContent {
    ItemContent::new(
        LocalizedText::single("de", title),
        ItemDetails::Offer(Offer {
            organization: Organization {
                name: "Caritas Köln".into(),
                ..Default::default()
            },
            schedules,
            ..Default::default()
        }),
    )
}

/// An event in Berlin time from `start` to `end`, repeated by `rrule`, with `exdates` cancelled.
pub fn event(
    title: &str,
    start: chrono::NaiveDateTime,
    end: chrono::NaiveDateTime,
    rrule: Option<&str>,
    exdates: Vec<chrono::NaiveDateTime>,
) -> ItemContent {
    ItemContent::new(
        LocalizedText::single("de", title),
        ItemDetails::Event(Event {
            timing: quartier_core::schedule::EventTiming {
                start,
                end,
                time_zone: "Europe/Berlin".into(),
                rrule: rrule.map(str::to_owned),
                exdates,
            },
            venue: None,
        }),
    )
}

/// A neighbourly help request (Suche) in `category`.
pub fn request(title: &str, category: &str) -> ItemContent {
    ItemContent::new(
        LocalizedText::single("de", title),
        ItemDetails::Request(Request {
            direction: RequestDirection::Need,
            category: category.into(),
            state: RequestState::Open,
        }),
    )
}

/// A comment on `parent`.
pub fn comment(parent: ItemId, text: &str) -> ItemContent {
    ItemContent::new(
        LocalizedText::single("de", text),
        ItemDetails::Comment(Comment { parent }),
    )
}

impl Fixture {
    /// Creates an item in the fixture's space written by `author`.
    pub fn create_by(&self, author: PersonId, content: ItemContent) -> Item {
        self.store
            .create_item(NewItem::new(self.space, author, content))
            .expect("create item")
    }

    /// Creates a second space in the same store.
    pub fn other_space(&self, name: &str) -> SpaceId {
        self.store
            .create_space(space_meta(name), self.author)
            .expect("create space")
            .id
    }
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether the store's database file holds `needle`, after folding the WAL in.
pub fn store_file_holds(store: &Store, needle: &[u8]) -> bool {
    store.checkpoint().expect("checkpoint");
    contains(&std::fs::read(store.path()).expect("read the store file"), needle)
}

/// Every document of `store` whose history is one change that the creation rule rebuilds, in
/// creation form, and every change of the others.
pub fn creation_forms(store: &Store) -> (Vec<IncomingCreation>, Vec<IncomingChange>) {
    let mut forms = Vec::new();
    let mut rest = Vec::new();
    for (doc_id, kind) in store.document_ids().expect("document ids") {
        let changes = store.document_changes(&doc_id).expect("document changes");
        if let [only] = changes.as_slice() {
            let mut doc = automerge::Automerge::new();
            doc.apply_changes([automerge::Change::from_bytes(only.bytes.clone()).expect("change")])
                .expect("apply");
            if let Some(creation) = creation_of(&doc, &doc_id, kind).expect("creation_of") {
                forms.push(IncomingCreation {
                    doc_id,
                    kind,
                    space: None,
                    creation,
                });
                continue;
            }
        }
        rest.extend(changes);
    }
    (forms, rest)
}
