//! Upkeep of the offers directory (`docs/neighbourhood.md`, "Offers upkeep"): an offer carries
//! the day its information was last checked and who checked it (HSDS `assured_date`);
//! coordinators get the offers due for a check, residents see how recent an offer is.

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::model::{Item, ItemDetails, ItemId, ItemKind, ItemPatch, PersonId, SpaceId, Viewer};
use crate::store::Store;

/// How long an offer's information counts as recent unless the app says otherwise (days).
pub const DEFAULT_REVIEW_AFTER_DAYS: u32 = 180;

impl Store {
    /// Records that `by` checked an offer's information on `on` (an edit of the offer, so
    /// whoever may edit it may do this; it syncs like any edit).
    pub fn confirm_offer(&self, item: ItemId, by: PersonId, on: NaiveDate) -> Result<Item> {
        let current = self
            .read(|conn| crate::query::item_by_id(conn, &item.to_string()))?
            .ok_or_else(|| Error::NotFound {
                what: "item",
                id: item.to_string(),
            })?;
        let ItemDetails::Offer(mut offer) = current.content.details else {
            return Err(Error::invalid("item", "only offers are checked"));
        };
        offer.assured_date = Some(on);
        offer.assured_by = Some(by);
        let patch = ItemPatch {
            details: Some(ItemDetails::Offer(offer)),
            ..Default::default()
        };
        self.update_item(item, &patch, by)
    }

    /// The offers of a space `viewer` may see whose information was not checked within
    /// `max_age_days` before `today`: never-checked ones first, then the oldest check first
    /// (at most 500 offers are looked at).
    pub fn offers_to_review(
        &self,
        space: SpaceId,
        viewer: Viewer,
        today: NaiveDate,
        max_age_days: u32,
    ) -> Result<Vec<Item>> {
        let due = today - chrono::Duration::days(i64::from(max_age_days));
        let mut q = crate::query::FeedQuery::new(space, viewer);
        q.kinds = vec![ItemKind::Offer];
        q.limit = crate::query::Limit(500);
        let page = self.feed(&q)?;
        let mut out: Vec<(Option<NaiveDate>, Item)> = page
            .items
            .into_iter()
            .filter_map(|item| match &item.content.details {
                ItemDetails::Offer(o) if o.assured_date.is_none_or(|d| d < due) => {
                    Some((o.assured_date, item))
                }
                _ => None,
            })
            .collect();
        out.sort_by_key(|(date, _)| *date);
        Ok(out.into_iter().map(|(_, item)| item).collect())
    }
}
