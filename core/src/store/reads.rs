//! The read side of the store: every query of [`crate::query`] on a pooled reader.

use super::Store;
use crate::error::Result;
use crate::model::{Item, ItemId, Space, SpaceId, Viewer};
use crate::query::{
    self, EventOccurrence, EventsQuery, FeedPage, FeedQuery, ItemDetail, MapPin, NearbyItem, OpenOffersQuery,
    RadiusQuery, SearchHit, SearchRequest, ViewportQuery,
};

impl Store {
    /// A space's metadata.
    pub fn space(&self, id: SpaceId) -> Result<Space> {
        self.read(|c| query::space(c, id))
    }

    /// Every space this store holds.
    pub fn spaces(&self) -> Result<Vec<Space>> {
        self.read(query::spaces)
    }

    /// A page of a space's feed, newest first.
    pub fn feed(&self, q: &FeedQuery) -> Result<FeedPage> {
        self.read(|c| query::feed(c, q))
    }

    /// Full-text search, best matches first.
    pub fn search(&self, q: &SearchRequest) -> Result<Vec<SearchHit>> {
        // One snapshot in which nothing waits for the search index, or else the search runs
        // inside the write that indexes what waits (`store::search_index`): either way every
        // write committed before the search is found, an item being edited meanwhile too.
        match self.read(|c| super::search_index::search_if_settled(c, q))? {
            Some(hits) => Ok(hits),
            None => self.write(|tx, touched| {
                super::search_index::index_pending(tx, 1, touched)?;
                query::search(tx, q)
            }),
        }
    }

    /// Items in a map viewport.
    pub fn viewport(&self, q: &ViewportQuery) -> Result<Vec<Item>> {
        self.read(|c| query::viewport(c, q))
    }

    /// The same items as [`Store::viewport`], as light pins (id, kind, title, position): what a
    /// map draws, without reading whole items.
    pub fn map_pins(&self, q: &ViewportQuery) -> Result<Vec<MapPin>> {
        self.read(|c| query::pins(c, q))
    }

    /// Items within a radius, nearest first.
    pub fn near(&self, q: &RadiusQuery) -> Result<Vec<NearbyItem>> {
        self.read(|c| query::near(c, q))
    }

    /// Offers open at a moment.
    pub fn open_offers(&self, q: &OpenOffersQuery) -> Result<Vec<Item>> {
        self.read(|c| query::open_offers(c, q))
    }

    /// Event occurrences in a range, recurrences expanded.
    pub fn events_between(&self, q: &EventsQuery) -> Result<Vec<EventOccurrence>> {
        self.read(|c| query::events_between(c, q))
    }

    /// An item with its history and comments.
    pub fn item_detail(&self, id: ItemId, viewer: &Viewer) -> Result<ItemDetail> {
        self.read(|c| query::item_detail(c, id, viewer))
    }
}
