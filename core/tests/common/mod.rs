//! Fixtures shared by the integration tests: a store in a temporary folder, a Berlin-time
//! space, viewers of each role and item builders.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use quartier_core::model::*;
use quartier_core::{Store, StoreOptions};
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
