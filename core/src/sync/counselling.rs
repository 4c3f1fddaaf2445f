//! The counselling calls outside the batched sync: teams (listed by members, named by
//! coordinators, staffed by coordinators and organisation admins) and passphrase-sealed key
//! backups. Conversations themselves move in the sync (`crate::counselling`).

use quartier_protocol::counselling::{
    BackupDownload, BackupUpload, TeamInfo, TeamList, TeamMembers, TeamSettings,
};

use super::client::{blocking, SyncClient};
use super::http::{decode_answer, HttpMethod, HttpRequest};
use crate::counselling::KeyBackup;
use crate::error::Result;
use crate::model::{PersonId, SpaceId};
use crate::store::Store;

impl SyncClient {
    /// The counselling teams of a space (members): what a resident picks from, by topic and
    /// postcode ([`crate::counselling::route`]).
    pub async fn counselling_teams(&self, store: &Store, space: SpaceId) -> Result<Vec<TeamInfo>> {
        let account = self.account(store).await?;
        let request = HttpRequest::bare(
            HttpMethod::Get,
            format!("/v1/spaces/{space}/teams"),
            Some(&account.token),
        );
        let list: TeamList = decode_answer(&self.send(request).await?)?;
        Ok(list.teams)
    }

    /// Names a counselling team (coordinators).
    pub async fn create_counselling_team(
        &self,
        store: &Store,
        space: SpaceId,
        settings: &TeamSettings,
    ) -> Result<TeamInfo> {
        let account = self.account(store).await?;
        self.call(
            HttpMethod::Post,
            &format!("/v1/spaces/{space}/teams"),
            Some(&account.token),
            settings,
        )
        .await
    }

    /// Renames, re-routes or sets the retention of a team (coordinators).
    pub async fn update_counselling_team(
        &self,
        store: &Store,
        space: SpaceId,
        team: uuid::Uuid,
        settings: &TeamSettings,
    ) -> Result<TeamInfo> {
        let account = self.account(store).await?;
        self.call(
            HttpMethod::Put,
            &format!("/v1/spaces/{space}/teams/{team}"),
            Some(&account.token),
            settings,
        )
        .await
    }

    /// Puts a caseworker of the space into a team (coordinators, organisation admins).
    pub async fn add_team_member(
        &self,
        store: &Store,
        space: SpaceId,
        team: uuid::Uuid,
        person: PersonId,
    ) -> Result<TeamMembers> {
        let account = self.account(store).await?;
        let request = HttpRequest::bare(
            HttpMethod::Put,
            format!("/v1/spaces/{space}/teams/{team}/members/{person}"),
            Some(&account.token),
        );
        decode_answer(&self.send(request).await?)
    }

    /// Takes a caseworker out of a team (or leaves it): their devices read nothing new of it.
    pub async fn remove_team_member(
        &self,
        store: &Store,
        space: SpaceId,
        team: uuid::Uuid,
        person: PersonId,
    ) -> Result<()> {
        let account = self.account(store).await?;
        self.call_empty(
            HttpMethod::Delete,
            &format!("/v1/spaces/{space}/teams/{team}/members/{person}"),
            &account.token,
        )
        .await
    }

    /// Seals this device's counselling keys under `passphrase` and keeps the backup on the
    /// server; returns it (its `backup_id` is the recovery code to write down).
    pub async fn upload_key_backup(&self, store: &Store, passphrase: &str) -> Result<KeyBackup> {
        let account = self.account(store).await?;
        let passphrase = passphrase.to_owned();
        let backup = blocking(store, move |s| s.export_key_backup(&passphrase)).await?;
        let upload = BackupUpload {
            secret: backup.secret.clone(),
            sealed: backup.sealed.clone(),
        };
        let request = HttpRequest::wire(
            HttpMethod::Put,
            format!("/v1/counselling/backups/{}", backup.backup_id),
            Some(&account.token),
            super::http::encode(&upload)?,
        );
        let response = self.send(request).await?;
        if !response.is_success() {
            return Err(super::http::refusal(&response));
        }
        Ok(backup)
    }

    /// Fetches the backup `backup_id` (the recovery code) and restores its conversations with
    /// `passphrase`; returns how many conversations were added.
    pub async fn restore_key_backup(
        &self,
        store: &Store,
        backup_id: &str,
        passphrase: &str,
    ) -> Result<usize> {
        let account = self.account(store).await?;
        let id = backup_id.trim().to_ascii_lowercase();
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(crate::error::Error::invalid(
                "recovery code",
                "32 hex characters are expected",
            ));
        }
        let request = HttpRequest::bare(
            HttpMethod::Get,
            format!("/v1/counselling/backups/{id}"),
            Some(&account.token),
        );
        let download: BackupDownload = decode_answer(&self.send(request).await?)?;
        let passphrase = passphrase.to_owned();
        blocking(store, move |s| {
            s.restore_key_backup(&passphrase, &download.sealed)
        })
        .await
    }
}
