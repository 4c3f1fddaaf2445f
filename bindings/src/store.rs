//! [`QuartierStore`]: the local store — spaces, items, every query, live-query subscriptions.
//! Every method is synchronous, thread-safe and durable on return; call it off the UI thread.

use std::sync::{Arc, Mutex, RwLock};

use quartier_core::guide::{Guide, GuideSpec};
use quartier_core::help::{HelpStatus, PendingHelp};
use quartier_core::moderation::{
    ModerationAction, ModerationEntry, ModerationQueueEntry, PendingModeration, ReportReason,
};
use quartier_core::notifications::{CallBack, FollowTarget, Notification, NotificationKind};
use quartier_core::standards::{Exported, ExportedTables, ImportOutcome};
use quartier_core::{Store, StoreKey, StoreOptions};
use uuid::Uuid;

use crate::error::{guard, signed, FfiResult, QuartierError};
use crate::types::*;

/// A Quartier store (one SQLite file). Share one instance across threads; every method may be
/// called from any thread at once. `close()` checkpoints and releases the file; afterwards
/// every call fails with `QuartierError.Closed`. Releasing the object closes it too: Kotlin's
/// `close()`/`use {}`, Swift's last reference, Python's collection. A [`QuartierSync`] made
/// from it does not keep it open (its calls fail with `Closed` afterwards).
///
/// [`QuartierSync`]: crate::sync::QuartierSync
#[derive(uniffi::Object)]
pub struct QuartierStore {
    slot: Arc<StoreSlot>,
}

/// The open core store, or nothing once closed: shared by a [`QuartierStore`] and the
/// [`QuartierSync`](crate::sync::QuartierSync)s made from it, so that closing (or releasing)
/// the store closes it for all of them.
pub(crate) struct StoreSlot(RwLock<Option<Store>>);

impl StoreSlot {
    /// The open store, or `Closed`. A clone is cheap (an `Arc`) and lets calls run unlocked.
    pub(crate) fn core(&self) -> FfiResult<Store> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(QuartierError::closed)
    }

    /// Takes the store out and checkpoints it; calls already under way finish on their own
    /// clone, later ones fail with `Closed`. Idempotent.
    fn close(&self) -> Result<(), quartier_core::Error> {
        let taken = self.0.write().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(store) => store.close(),
            None => Ok(()),
        }
    }

    fn is_closed(&self) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }
}

impl QuartierStore {
    pub(crate) fn core(&self) -> FfiResult<Store> {
        self.slot.core()
    }

    pub(crate) fn slot(&self) -> Arc<StoreSlot> {
        Arc::clone(&self.slot)
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&Store) -> FfiResult<T>) -> FfiResult<T> {
        guard(|| f(&self.core()?))
    }
}

/// The last reference to the object is gone (Kotlin `close()`, Swift ARC, Python GC): close the
/// store, as `close()` would. Nobody is left to receive an error, so it is logged.
impl Drop for QuartierStore {
    fn drop(&mut self) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.slot.close()));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "closing a released store failed"),
            Err(_) => tracing::error!("closing a released store panicked"),
        }
    }
}

#[uniffi::export]
impl QuartierStore {
    /// Opens (or creates) the store at `path`, upgrading an older schema.
    #[uniffi::constructor]
    pub fn open(path: String) -> FfiResult<Arc<Self>> {
        guard(|| {
            let store = Store::open(&path, StoreOptions::default())?;
            Ok(Arc::new(QuartierStore {
                slot: Arc::new(StoreSlot(RwLock::new(Some(store)))),
            }))
        })
    }

    /// Opens (or creates) the store at `path` encrypted at rest with `store_key`: the raw 32
    /// bytes the app keeps in the Android Keystore / iOS Keychain (see docs/store.md,
    /// "Encryption at rest"). A plain store is encrypted during this call. Another key, or a
    /// store that is not encrypted with this one, fails with `WrongStoreKey` and nothing is
    /// changed; `open(path)` (no key) on an encrypted store fails the same way.
    #[uniffi::constructor]
    pub fn open_encrypted(path: String, store_key: Vec<u8>) -> FfiResult<Arc<Self>> {
        guard(|| {
            let options = StoreOptions {
                store_key: Some(StoreKey::from_vec(store_key)?),
                ..StoreOptions::default()
            };
            let store = Store::open(&path, options)?;
            Ok(Arc::new(QuartierStore {
                slot: Arc::new(StoreSlot(RwLock::new(Some(store)))),
            }))
        })
    }

    /// Whether the store is encrypted at rest (opened with `open_encrypted`).
    pub fn is_encrypted(&self) -> FfiResult<bool> {
        self.with(|s| Ok(s.is_encrypted()))
    }

    /// Changes the store key (32 bytes); from then on only `new_key` opens the store. Keep the
    /// new key in the key store before calling, and the old one until this returns.
    pub fn rekey(&self, new_key: Vec<u8>) -> FfiResult<()> {
        self.with(|s| Ok(s.rekey(&StoreKey::from_vec(new_key)?)?))
    }

    /// Checkpoints and closes the store, as releasing the object does, but reports a failed
    /// checkpoint. Idempotent. Not in Kotlin, whose `close()` (`AutoCloseable`) releases the
    /// object and so closes the store (`bindings/uniffi.toml`). Live subscriptions stop once
    /// the last user of the store (a running sync) lets go of it.
    pub fn close(&self) -> FfiResult<()> {
        guard(|| Ok(self.slot.close()?))
    }

    /// Whether `close()` has been called.
    pub fn is_closed(&self) -> bool {
        self.slot.is_closed()
    }

    /// The database file.
    pub fn path(&self) -> FfiResult<String> {
        self.with(|s| Ok(s.path().display().to_string()))
    }

    /// This device's Ed25519 public key (32 bytes), its identity towards servers.
    pub fn device_public_key(&self) -> FfiResult<Vec<u8>> {
        self.with(|s| Ok(s.device_public_key().to_vec()))
    }

    /// This device's Automerge actor id, hex.
    pub fn device_actor(&self) -> FfiResult<String> {
        self.with(|s| Ok(s.device_actor()))
    }

    /// The registration with a server, once `QuartierSync.register` succeeded.
    pub fn account(&self) -> FfiResult<Option<Account>> {
        self.with(|s| Ok(s.account()?.as_ref().map(Into::into)))
    }

    /// The spaces this device's person belongs to, as the server last stated.
    pub fn memberships(&self) -> FfiResult<Vec<SpaceMembership>> {
        self.with(|s| Ok(s.memberships()?))
    }

    /// The members of a space as the server last stated them (each sync brings what changed):
    /// coordinators first, then caseworkers, volunteers and residents, by display name within
    /// a role, nameless members last. Read from this store: works offline; empty before the
    /// space's first sync. Show `display_name` (null: the person gave none), never the id.
    pub fn members(&self, space_id: SpaceId) -> FfiResult<Vec<Member>> {
        self.with(|s| Ok(s.members(space_id)?))
    }

    /// One member of a space (e.g. an item's author, to show their name), if this store knows
    /// them as a member.
    pub fn member(&self, space_id: SpaceId, person_id: PersonId) -> FfiResult<Option<Member>> {
        self.with(|s| Ok(s.member(space_id, person_id)?))
    }

    /// Per-space sync status (last success, last error, outbox size).
    pub fn sync_status(&self) -> FfiResult<Vec<SpaceSyncStatus>> {
        self.with(|s| Ok(s.sync_status()?))
    }

    /// Changes waiting for the server.
    pub fn outbox_len(&self) -> FfiResult<i64> {
        self.with(|s| Ok(signed(s.sync_outbox_len()?)))
    }

    /// Changes the server refused for good, newest first ("not delivered: reason").
    pub fn undelivered_changes(&self) -> FfiResult<Vec<UndeliveredChange>> {
        self.with(|s| Ok(s.undelivered_changes()?))
    }

    /// Forgets an undelivered change once the person has copied or dismissed it.
    pub fn discard_undelivered(&self, id: i64) -> FfiResult<()> {
        self.with(|s| Ok(s.discard_undelivered(id)?))
    }

    /// Runs SQLite's integrity check; `Corrupt` if the file is damaged.
    pub fn integrity_check(&self) -> FfiResult<()> {
        self.with(|s| Ok(s.integrity_check()?))
    }

    // -- spaces ---------------------------------------------------------------------------

    /// Creates a space on this device only. `QuartierSync.create_space` creates a space and
    /// shares it through the server in one call; `QuartierSync.register_space` shares one
    /// created here.
    pub fn create_space(&self, meta: SpaceMeta, by: PersonId) -> FfiResult<Space> {
        self.with(|s| Ok(s.create_space(meta, by)?))
    }

    pub fn update_space(&self, space_id: SpaceId, meta: SpaceMeta, by: PersonId) -> FfiResult<Space> {
        self.with(|s| Ok(s.update_space(space_id, meta, by)?))
    }

    pub fn space(&self, space_id: SpaceId) -> FfiResult<Space> {
        self.with(|s| Ok(s.space(space_id)?))
    }

    pub fn spaces(&self) -> FfiResult<Vec<Space>> {
        self.with(|s| Ok(s.spaces()?))
    }

    // -- items ----------------------------------------------------------------------------

    /// Creates an item of any kind; durable on return.
    pub fn create_item(&self, item: NewItem) -> FfiResult<Item> {
        self.with(|s| Ok(s.create_item(item)?))
    }

    /// Creates an item from the core's JSON form (imports, tooling), e.g.
    /// `{"space": …, "author": …, "title": {"de": …}, "audience": "everyone",
    /// "status": "published", "details": {"kind": "post", "post_type": "news"}}`.
    pub fn create_item_json(&self, json: String) -> FfiResult<Item> {
        self.with(|s| Ok(s.create_item(NewItem::from_json(&json)?)?))
    }

    /// Edits the fields set in `patch`; a patch that changes nothing writes nothing.
    pub fn update_item(&self, item_id: ItemId, patch: ItemPatch, by: PersonId) -> FfiResult<Item> {
        self.with(|s| Ok(s.update_item(item_id, &patch, by)?))
    }

    /// Deletes an item (a tombstone, hidden from every query).
    pub fn delete_item(&self, item_id: ItemId, by: PersonId) -> FfiResult<()> {
        self.with(|s| Ok(s.delete_item(item_id, by)?))
    }

    /// What `by` may do with an item (edit, delete), from the memberships this store holds:
    /// grey out what would be refused with `NotPermitted`. Everything is allowed in a space the
    /// store holds no membership for (never synced).
    pub fn allowed_actions(&self, item_id: ItemId, by: PersonId) -> FfiResult<AllowedActions> {
        self.with(|s| s.allowed_actions(item_id, by).map_err(Into::into))
    }

    /// Whether `by` may create an item of `kind` for `audience` in a space.
    pub fn may_create(
        &self,
        space_id: SpaceId,
        kind: ItemKind,
        audience: Audience,
        by: PersonId,
    ) -> FfiResult<bool> {
        self.with(|s| Ok(s.may_create(space_id, kind, audience, by)?))
    }

    /// Erases an item and its comments from the file (data-protection requests); returns how
    /// many items were erased.
    pub fn erase_item(&self, item_id: ItemId) -> FfiResult<i64> {
        self.with(|s| Ok(signed(s.erase_item(item_id)?)))
    }

    // -- moderation (docs/neighbourhood.md) ----------------------------------------------

    /// Reports an item or comment to the space's coordinators (sent with the next sync; the
    /// reporter is shown to coordinators only). `Other` needs a text. Returns the report's id.
    pub fn report_item(&self, item_id: ItemId, reason: ReportReason, text: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.report_item(item_id, reason, &text)?))
    }

    /// A coordinator's decision about an item: `Hide`, `Restore` (shown here at once), `Erase`
    /// (once the server has carried it out), `Dismiss`. Sent with the next sync.
    pub fn moderate_item(&self, item_id: ItemId, action: ModerationAction, note: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.moderate_item(item_id, action, &note)?))
    }

    /// A coordinator's decision about a member: `Block` (the server takes no change of theirs
    /// any more) or `Unblock`. Sent with the next sync.
    pub fn moderate_member(
        &self,
        space_id: SpaceId,
        person: PersonId,
        action: ModerationAction,
        note: String,
    ) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.moderate_member(space_id, person, action, &note)?))
    }

    /// Mutes or unmutes a person: their content is hidden on this person's devices only.
    pub fn set_muted(&self, person: PersonId, muted: bool) -> FfiResult<()> {
        self.with(|s| Ok(s.set_muted(person, muted)?))
    }

    pub fn muted_persons(&self) -> FfiResult<Vec<PersonId>> {
        self.with(|s| Ok(s.muted_persons()?))
    }

    /// Whether this person is blocked in a space (as the last sync said).
    pub fn is_blocked(&self, space_id: SpaceId) -> FfiResult<bool> {
        self.with(|s| Ok(s.is_blocked(space_id)?))
    }

    /// Reports and decisions not yet taken by the server, and those it refused.
    pub fn pending_moderation(&self) -> FfiResult<Vec<PendingModeration>> {
        self.with(|s| Ok(s.pending_moderation()?))
    }

    /// Forgets a refused report or decision.
    pub fn dismiss_pending_moderation(&self, id: Uuid) -> FfiResult<()> {
        self.with(|s| Ok(s.dismiss_pending_moderation(id)?))
    }

    /// The space's moderation log as this person may see it, newest first.
    pub fn moderation_log(&self, space_id: SpaceId, limit: i32) -> FfiResult<Vec<ModerationEntry>> {
        self.with(|s| Ok(s.moderation_log(space_id, limit.max(0) as u32)?))
    }

    /// Items of a space with open reports (coordinators; empty for others).
    pub fn moderation_queue(&self, space_id: SpaceId) -> FfiResult<Vec<ModerationQueueEntry>> {
        self.with(|s| Ok(s.moderation_queue(space_id)?))
    }

    // -- the help board (docs/neighbourhood.md) --------------------------------------------

    /// Responds to someone's request or offer of help (`contact` is shown to the author only
    /// once they choose this person). Sent with the next sync; returns the step's id.
    pub fn respond_to_request(&self, request: ItemId, note: String, contact: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.respond_to_request(request, &note, &contact)?))
    }

    /// The author chooses one responder (`contact` is shown to that person only).
    pub fn agree_to_help(&self, request: ItemId, responder: PersonId, contact: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.agree_to_help(request, responder, &contact)?))
    }

    /// The author or the chosen helper closes an agreed request.
    pub fn close_request(&self, request: ItemId, note: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.close_request(request, &note)?))
    }

    /// The author takes a request back.
    pub fn withdraw_request(&self, request: ItemId, note: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.withdraw_request(request, &note)?))
    }

    /// Where a request stands for this person (responses, whom the author chose, the other
    /// person's contact once agreed).
    pub fn help_status(&self, request: ItemId) -> FfiResult<HelpStatus> {
        self.with(|s| Ok(s.help_status(request)?))
    }

    /// The open requests and offers of help of a space; live as `LiveQuery.HelpBoard`.
    pub fn help_board(&self, space_id: SpaceId, viewer: Viewer) -> FfiResult<Vec<Item>> {
        self.with(|s| Ok(s.help_board(space_id, viewer)?))
    }

    /// Help steps not taken by the server yet, and refused ones.
    pub fn pending_help(&self) -> FfiResult<Vec<PendingHelp>> {
        self.with(|s| Ok(s.pending_help()?))
    }

    /// Forgets a refused help step.
    pub fn dismiss_pending_help(&self, id: Uuid) -> FfiResult<()> {
        self.with(|s| Ok(s.dismiss_pending_help(id)?))
    }

    // -- notifications (docs/neighbourhood.md) ---------------------------------------------

    /// The person's notifications, newest first (only the unread with `unread_only`); live as
    /// `LiveQuery.Notifications`.
    pub fn notifications(&self, unread_only: bool, limit: i32) -> FfiResult<Vec<Notification>> {
        self.with(|s| Ok(s.notifications(unread_only, limit.max(0) as u32)?))
    }

    pub fn unread_notifications(&self) -> FfiResult<i32> {
        self.with(|s| Ok(s.unread_notifications()?.min(i32::MAX as u32) as i32))
    }

    /// Marks notifications read: those of `ids`, or all (`ids` empty).
    pub fn mark_notifications_read(&self, ids: Vec<i64>) -> FfiResult<()> {
        self.with(|s| Ok(s.mark_notifications_read(&ids)?))
    }

    /// Follows a category, a tag or an item (its comments; an event's reminders; new items near
    /// a place).
    pub fn follow(&self, target: FollowTarget) -> FfiResult<()> {
        self.with(|s| Ok(s.follow(target)?))
    }

    pub fn unfollow(&self, target: FollowTarget) -> FfiResult<()> {
        self.with(|s| Ok(s.unfollow(target)?))
    }

    pub fn follows(&self) -> FfiResult<Vec<FollowTarget>> {
        self.with(|s| Ok(s.follows()?))
    }

    /// Turns a kind of notification on or off.
    pub fn set_notifications_enabled(&self, kind: NotificationKind, enabled: bool) -> FfiResult<()> {
        self.with(|s| Ok(s.set_notifications_enabled(kind, enabled)?))
    }

    pub fn disabled_notifications(&self) -> FfiResult<Vec<NotificationKind>> {
        self.with(|s| Ok(s.disabled_notifications()?))
    }

    /// Makes the reminders of followed events starting within the hour (each once); also done
    /// after every sync. Returns how many were made.
    pub fn check_reminders(&self) -> FfiResult<i32> {
        self.with(|s| Ok(s.check_reminders(chrono::Utc::now())?.min(i32::MAX as usize) as i32))
    }

    // -- proxies and offers upkeep (docs/neighbourhood.md) ---------------------------------

    /// The call-back list: replies and responses to items this person recorded for
    /// neighbours reached through them (only those not passed on yet, unless `all`); mark one
    /// passed on with `markNotificationsRead`.
    pub fn call_backs(&self, all: bool) -> FfiResult<Vec<CallBack>> {
        self.with(|s| Ok(s.call_backs(all)?))
    }

    /// The neighbour an item was recorded for withdrew consent: erased everywhere (by the
    /// person who recorded it; sent with the next sync).
    pub fn withdraw_consent(&self, item_id: ItemId, note: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.withdraw_consent(item_id, &note)?))
    }

    /// Records that `by` checked an offer's information today.
    pub fn confirm_offer(&self, item_id: ItemId, by: PersonId) -> FfiResult<Item> {
        self.with(|s| Ok(s.confirm_offer(item_id, by, chrono::Utc::now().date_naive())?))
    }

    /// The offers of a space not checked within `max_age_days` (never-checked first, then the
    /// oldest check).
    pub fn offers_to_review(
        &self,
        space_id: SpaceId,
        viewer: Viewer,
        max_age_days: i32,
    ) -> FfiResult<Vec<Item>> {
        let days = u32::try_from(max_age_days)
            .map_err(|_| QuartierError::invalid("max age days", "not negative"))?;
        self.with(|s| Ok(s.offers_to_review(space_id, viewer, chrono::Utc::now().date_naive(), days)?))
    }

    // -- standards and the printed guide (docs/standards.md) ------------------------------

    /// Places and observations everyone in the space may read, as GeoJSON (RFC 7946). Exports
    /// hold only what everyone in the space may read, whoever makes them.
    pub fn export_geojson(&self, space_id: SpaceId) -> FfiResult<Exported> {
        self.with(|s| Ok(s.export_geojson(space_id)?))
    }

    /// Reads a GeoJSON file into places and observations of the space (texts without a
    /// language in `language`); importing an updated file updates what the last import made.
    pub fn import_geojson(
        &self,
        space_id: SpaceId,
        by: PersonId,
        bytes: Vec<u8>,
        language: String,
    ) -> FfiResult<ImportOutcome> {
        self.with(|s| Ok(s.import_geojson(space_id, by, &bytes, &language)?))
    }

    /// Public events and offers' opening hours as iCalendar (RFC 5545); `item_link_base`
    /// (e.g. `https://server.example/i/`) gives each event a link.
    #[uniffi::method(default(item_link_base = None))]
    pub fn export_icalendar(&self, space_id: SpaceId, item_link_base: Option<String>) -> FfiResult<Exported> {
        self.with(|s| Ok(s.export_icalendar(space_id, item_link_base)?))
    }

    /// Reads an `.ics` file into events of the space.
    pub fn import_icalendar(
        &self,
        space_id: SpaceId,
        by: PersonId,
        bytes: Vec<u8>,
        language: String,
    ) -> FfiResult<ImportOutcome> {
        self.with(|s| Ok(s.import_icalendar(space_id, by, &bytes, &language)?))
    }

    /// Public offers as Open Referral HSDS 3.0 JSON, texts in `language`.
    pub fn export_hsds(&self, space_id: SpaceId, language: String) -> FfiResult<Exported> {
        self.with(|s| Ok(s.export_hsds(space_id, &language)?))
    }

    /// Public offers as the HSDS 3.0 tables: file name → CSV bytes, and `datapackage.json`.
    pub fn export_hsds_tables(&self, space_id: SpaceId, language: String) -> FfiResult<ExportedTables> {
        self.with(|s| Ok(s.export_hsds_tables(space_id, &language)?))
    }

    /// Reads HSDS 3.0 JSON into offers of the space.
    pub fn import_hsds(
        &self,
        space_id: SpaceId,
        by: PersonId,
        bytes: Vec<u8>,
        language: String,
    ) -> FfiResult<ImportOutcome> {
        self.with(|s| Ok(s.import_hsds(space_id, by, &bytes, &language)?))
    }

    /// Reads the HSDS 3.0 tables (file name → CSV bytes) into offers of the space.
    pub fn import_hsds_tables(
        &self,
        space_id: SpaceId,
        by: PersonId,
        files: std::collections::HashMap<String, Vec<u8>>,
        language: String,
    ) -> FfiResult<ImportOutcome> {
        self.with(|s| Ok(s.import_hsds_tables(space_id, by, files, &language)?))
    }

    /// An offer's organization and contacts as vCard 4.0 text (to share or save).
    pub fn offer_vcards(&self, item_id: ItemId, viewer: Viewer) -> FfiResult<String> {
        self.with(|s| Ok(s.offer_vcards(item_id, viewer)?))
    }

    /// The printed neighbourhood guide of the space: PDF and HTML, public entries only.
    pub fn make_guide(&self, space_id: SpaceId, spec: GuideSpec) -> FfiResult<Guide> {
        self.with(|s| Ok(s.make_guide(space_id, &spec)?))
    }

    // -- queries --------------------------------------------------------------------------

    pub fn feed(&self, query: FeedQuery) -> FfiResult<FeedPage> {
        self.with(|s| Ok(s.feed(&query)?))
    }

    pub fn search(&self, query: SearchRequest) -> FfiResult<Vec<SearchHit>> {
        self.with(|s| Ok(s.search(&query)?.iter().map(Into::into).collect()))
    }

    pub fn viewport(&self, query: ViewportQuery) -> FfiResult<Vec<Item>> {
        self.with(|s| Ok(s.viewport(&query)?))
    }

    /// The viewport's items as light pins (id, kind, title, position): what a map draws.
    pub fn map_pins(&self, query: ViewportQuery) -> FfiResult<Vec<MapPin>> {
        self.with(|s| Ok(s.map_pins(&query)?))
    }

    pub fn near(&self, query: RadiusQuery) -> FfiResult<Vec<NearbyItem>> {
        self.with(|s| Ok(s.near(&query)?))
    }

    pub fn open_offers(&self, query: OpenOffersQuery) -> FfiResult<Vec<Item>> {
        self.with(|s| Ok(s.open_offers(&query)?))
    }

    pub fn events_between(&self, query: EventsQuery) -> FfiResult<Vec<EventOccurrence>> {
        self.with(|s| Ok(s.events_between(&query)?))
    }

    pub fn item_detail(&self, item_id: ItemId, viewer: Viewer) -> FfiResult<ItemDetail> {
        self.with(|s| Ok(s.item_detail(item_id, &viewer)?))
    }

    // -- live queries ---------------------------------------------------------------------

    /// Watches `query`: `listener` is called soon with the current result and again after
    /// every commit that can change it, on the store's notifier thread (never the caller's).
    /// Keep the returned subscription; `cancel()` or dropping it stops the calls.
    pub fn subscribe(
        &self,
        query: LiveQuery,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.with(|s| crate::live::subscribe(s, query, listener))
    }

    pub fn subscribe_feed(
        &self,
        query: FeedQuery,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(LiveQuery::Feed(query), listener)
    }

    pub fn subscribe_search(
        &self,
        query: SearchRequest,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(LiveQuery::Search(query), listener)
    }

    pub fn subscribe_viewport(
        &self,
        query: ViewportQuery,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(LiveQuery::Viewport(query), listener)
    }

    pub fn subscribe_near(
        &self,
        query: RadiusQuery,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(LiveQuery::Near(query), listener)
    }

    pub fn subscribe_open_offers(
        &self,
        query: OpenOffersQuery,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(LiveQuery::OpenOffers(query), listener)
    }

    pub fn subscribe_events(
        &self,
        query: EventsQuery,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(LiveQuery::Events(query), listener)
    }

    pub fn subscribe_detail(
        &self,
        item_id: ItemId,
        viewer: Viewer,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(
            LiveQuery::Detail {
                item: item_id,
                viewer,
            },
            listener,
        )
    }

    /// Diagnostics for binding tests: panics inside a guarded store call, after a real read of
    /// the store, while holding a lock of the facade. The panic must arrive as
    /// `QuartierError.Internal` and the store must stay usable. Harmless in apps; never needed.
    pub fn diagnostic_panic(&self, message: String) -> FfiResult<()> {
        self.with(|s| {
            let _spaces = s.spaces()?;
            let lock = Mutex::new(());
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            panic!("diagnostic panic: {message}");
        })
    }
}
