//! Counselling (`docs/counselling.md`): end-to-end encrypted conversations between a resident
//! and a counselling team, case notes, appointments, closing, erasure ([`QuartierStore`], all
//! local and durable on return, offline too); teams, team members, key backups and device
//! links ([`QuartierSync`], async, each with an optional [`CancelToken`]); routing by topic and
//! postcode ([`route_counselling`], no I/O); encrypted attachments (sent and opened on the
//! store, fetched through the sync) and locking a lost phone out of a conversation.
//! Conversions only: the types are the core's (derived there) and the protocol's and
//! counselling crate's (mirrored in the core), ids are UUID strings; the behaviour is the
//! core's.

use std::sync::Arc;

use quartier_core::counselling::{Body, FileKey, NewAttachment, TeamInfo};
use quartier_protocol::counselling::{TeamMembers, TeamSettings};
use quartier_protocol::DeviceLink;
use uuid::Uuid;

use crate::error::{signed, FfiResult};
use crate::store::QuartierStore;
use crate::sync::{on_runtime, CancelToken, QuartierSync};
use crate::types::*;

// Mirrored in quartier-core (`core/src/remote.rs`) for its own tag; named here for ours.
uniffi::use_remote_type!(quartier_core::Uuid);
uniffi::use_remote_type!(quartier_core::TeamInfo);
uniffi::use_remote_type!(quartier_core::TeamSettings);
uniffi::use_remote_type!(quartier_core::TeamMembers);
uniffi::use_remote_type!(quartier_core::Body);
uniffi::use_remote_type!(quartier_core::DeviceLink);
uniffi::use_remote_type!(quartier_core::FileKey);

/// The team a resident's conversation on `topic` goes to: among `teams` (from
/// `QuartierSync.counselling_teams`) the one of that topic whose postcodes match `postcode`
/// best (longest matching leading digits), else the topic's team for the whole space, else
/// null. No I/O.
#[uniffi::export(default(postcode = None))]
pub fn route_counselling(teams: Vec<TeamInfo>, topic: String, postcode: Option<String>) -> Option<TeamInfo> {
    quartier_core::counselling::route(&teams, &topic, postcode.as_deref()).cloned()
}

#[uniffi::export]
impl QuartierStore {
    /// Opens a conversation with `team` of `space_id` as its resident side, with an identity
    /// and access token made for it alone. Works offline; the server learns of it at the next
    /// sync. Returns the conversation's id.
    pub fn open_conversation(&self, space_id: SpaceId, team: Uuid) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.open_conversation(space_id, team)?))
    }

    /// Writes a record into a channel (a message, an appointment proposed or changed, a
    /// closing): encrypted for the channel's devices, stored and queued for the next sync in one
    /// transaction. Returns the record's id. `Invalid` for an empty message or an appointment
    /// of less than a minute; `NotFound` for a channel this device does not hold.
    pub fn send_counselling(&self, channel: Uuid, body: Body) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.send_counselling(channel, body)?))
    }

    /// A text message in a conversation; returns the record's id.
    pub fn send_counselling_message(&self, channel: Uuid, text: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.send_counselling_message(channel, &text)?))
    }

    /// A caseworker's note about conversation `about`, in the team's notes channel (read by the
    /// team's devices only, never the resident). The device must have synced since its person
    /// joined the team (`NotFound` otherwise).
    pub fn write_case_note(&self, team: Uuid, about: Uuid, text: String) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.write_case_note(team, about, &text)?))
    }

    /// Closes a conversation (either side): a closing record is sent and the team's retention
    /// starts counting. Returns the closing record's id.
    pub fn close_conversation(&self, channel: Uuid) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.close_conversation(channel)?))
    }

    /// Erases a conversation from this device at once, and from the server and every other
    /// device at the next sync. Its live query then reports no records.
    pub fn erase_conversation(&self, channel: Uuid) -> FfiResult<()> {
        self.with(|s| Ok(s.erase_conversation(channel)?))
    }

    /// The conversations and team notes channels this device takes part in, oldest first.
    pub fn counselling_channels(&self) -> FfiResult<Vec<CounsellingChannel>> {
        self.with(|s| Ok(s.counselling_channels()?))
    }

    /// A channel's records in order (the server's, then this device's queued ones).
    /// `NotFound` for a channel this device does not hold.
    pub fn counselling_records(&self, channel: Uuid) -> FfiResult<Vec<CounsellingRecord>> {
        self.with(|s| Ok(s.counselling_records(channel)?))
    }

    /// The recovery code of this device's key backup, if it made or restored one.
    pub fn key_backup_id(&self) -> FfiResult<Option<String>> {
        self.with(|s| Ok(s.key_backup_id()?.map(|(id, _secret)| id)))
    }

    /// Watches a channel's records (`LiveQuery.Counselling`): called soon with the current
    /// list and again after every send, every sync that changed its records and its erasure
    /// (then with an empty list, as for a channel not received yet).
    pub fn subscribe_counselling(
        &self,
        channel: Uuid,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(LiveQuery::Counselling { channel }, listener)
    }

    /// Watches the channels this device takes part in (`LiveQuery.CounsellingChannels`).
    pub fn subscribe_counselling_channels(
        &self,
        listener: Arc<dyn crate::live::LiveQueryListener>,
    ) -> FfiResult<Arc<crate::live::LiveSubscription>> {
        self.subscribe(LiveQuery::CounsellingChannels, listener)
    }
}

#[uniffi::export]
impl QuartierSync {
    /// The counselling teams of a space (members): what `route_counselling` picks from.
    #[uniffi::method(default(cancel = None))]
    pub async fn counselling_teams(
        &self,
        space_id: SpaceId,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Vec<TeamInfo>> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(
            cancel,
            async move { client.counselling_teams(&store, space_id).await },
        )
        .await
    }

    /// Names a counselling team (coordinators): name, topic (`a-z0-9-`), postcodes (none: the
    /// whole space), retention in days after closing (1–3650, or null). The server refuses
    /// anything else (`Server`, status 400).
    #[uniffi::method(default(cancel = None))]
    pub async fn create_counselling_team(
        &self,
        space_id: SpaceId,
        settings: TeamSettings,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<TeamInfo> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(cancel, async move {
            client.create_counselling_team(&store, space_id, &settings).await
        })
        .await
    }

    /// Renames, re-routes or sets the retention of a team (coordinators).
    #[uniffi::method(default(cancel = None))]
    pub async fn update_counselling_team(
        &self,
        space_id: SpaceId,
        team: Uuid,
        settings: TeamSettings,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<TeamInfo> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(cancel, async move {
            client
                .update_counselling_team(&store, space_id, team, &settings)
                .await
        })
        .await
    }

    /// Puts a caseworker of the space into a team (coordinators, organisation admins); returns
    /// the team's caseworkers.
    #[uniffi::method(default(cancel = None))]
    pub async fn add_team_member(
        &self,
        space_id: SpaceId,
        team: Uuid,
        person_id: PersonId,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<TeamMembers> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(cancel, async move {
            client.add_team_member(&store, space_id, team, person_id).await
        })
        .await
    }

    /// Takes a caseworker out of a team (or, for oneself, leaves it): their devices read
    /// nothing new of it.
    #[uniffi::method(default(cancel = None))]
    pub async fn remove_team_member(
        &self,
        space_id: SpaceId,
        team: Uuid,
        person_id: PersonId,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<()> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(cancel, async move {
            client.remove_team_member(&store, space_id, team, person_id).await
        })
        .await
    }

    /// Seals this device's resident-side counselling keys under `passphrase` (Argon2id, about a
    /// second on a phone) and keeps the backup on the server. Its `backup_id` is the recovery
    /// code the resident writes down with the passphrase.
    #[uniffi::method(default(cancel = None))]
    pub async fn upload_key_backup(
        &self,
        passphrase: String,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<KeyBackup> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(cancel, async move {
            client.upload_key_backup(&store, &passphrase).await
        })
        .await
    }

    /// On a new phone (registered as any device): fetches the backup of `recovery_code` and
    /// restores its conversations with `passphrase`; the phone reads their history and takes
    /// part from its next sync. Returns how many conversations were added. A wrong passphrase is
    /// `Counselling` with code `wrong_passphrase`, and nothing is stored; a recovery code that
    /// is not 32 hex characters is `Invalid`.
    #[uniffi::method(default(cancel = None))]
    pub async fn restore_key_backup(
        &self,
        recovery_code: String,
        passphrase: String,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<i64> {
        let (store, client) = (self.core()?, self.client().clone());
        let added = on_runtime(cancel, async move {
            client
                .restore_key_backup(&store, &recovery_code, &passphrase)
                .await
        })
        .await?;
        Ok(signed(added))
    }

    /// A one-use code (valid ten minutes, at most five open) with which another device — a
    /// caseworker's tablet — registers as this device's person (`register_linked`); show it as
    /// a QR code.
    #[uniffi::method(default(cancel = None))]
    pub async fn create_device_link(&self, cancel: Option<Arc<CancelToken>>) -> FfiResult<DeviceLink> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(cancel, async move { client.create_device_link(&store).await }).await
    }

    /// Registers this device as a further device of the person whose device made `code`
    /// (`create_device_link`): it gets their spaces, roles and counselling teams at its first
    /// sync. Instead of `register`.
    #[uniffi::method(default(cancel = None))]
    pub async fn register_linked(
        &self,
        code: String,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Account> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(cancel, async move {
            let account = client.register_linked(&store, &code).await?;
            Ok(Account::from(&account))
        })
        .await
    }
}

/// Attachments and a lost phone: files sent encrypted with a message, opened from this device
/// or fetched; locking a lost phone out of a conversation.
#[uniffi::export]
impl QuartierStore {
    /// A message with files (at most 10 of at most 32 MiB each) in a conversation: each file
    /// encrypted under a key of its own and kept here as ciphertext, the message queued; the
    /// next sync uploads the files, then the message. Returns the record's id.
    pub fn send_counselling_files(
        &self,
        channel: Uuid,
        text: String,
        files: Vec<NewAttachment>,
    ) -> FfiResult<Uuid> {
        self.with(|s| Ok(s.send_counselling_files(channel, &text, files)?))
    }

    /// A file of a message (`Body.Message.attachments`), opened, if this device holds it (it
    /// sent or fetched it); null when it must be fetched first (`QuartierSync.fetch_counselling_attachment`).
    /// The bytes are never written to disk by the library. A file that does not open is
    /// `Counselling` with code `tampered`.
    pub fn counselling_attachment(&self, channel: Uuid, file: FileKey) -> FfiResult<Option<Vec<u8>>> {
        self.with(|s| Ok(s.counselling_attachment(channel, &file)?))
    }

    /// Locks every other device of the resident side out of a conversation (a lost phone), at
    /// the next sync; upload a new key backup afterwards (the old one holds the old token).
    pub fn lock_out_other_devices(&self, channel: Uuid) -> FfiResult<()> {
        self.with(|s| Ok(s.lock_out_other_devices(channel)?))
    }
}

#[uniffi::export]
impl QuartierSync {
    /// A file of a message, opened: from this device if it holds it, else fetched from the
    /// server (ciphertext, hash checked), kept here and opened with the message's key.
    #[uniffi::method(default(cancel = None))]
    pub async fn fetch_counselling_attachment(
        &self,
        channel: Uuid,
        file: FileKey,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Vec<u8>> {
        let (store, client) = (self.core()?, self.client().clone());
        on_runtime(cancel, async move {
            client.fetch_counselling_attachment(&store, channel, &file).await
        })
        .await
    }
}
