//! The counselling calls outside the batched sync: teams (listed by members, named by
//! coordinators, staffed by coordinators and organisation admins), passphrase-sealed key
//! backups, and the upload and fetch of encrypted attachments. Conversations themselves move in the sync (`crate::counselling`).

use quartier_protocol::blobs::{
    chunk_range, is_blob_hash, missing_chunks, AnnounceBlob, UploadState, BLOB_CHUNK_BYTES, BLOB_CONTENT_TYPE,
};
use quartier_protocol::counselling::{
    BackupDownload, BackupUpload, TeamInfo, TeamList, TeamMembers, TeamSettings,
    MAX_ATTACHMENT_CIPHERTEXT_BYTES,
};
use uuid::Uuid;

use super::client::{blocking, SyncClient};
use super::http::{decode_answer, encode, refusal, HttpMethod, HttpRequest};
use crate::counselling::{FileKey, KeyBackup, PendingUpload};
use crate::error::{Error, Result};
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

    /// Uploads the attachments waiting on this device, each resumed where an earlier try
    /// stopped (announce, the chunks the server lacks, complete). Run by `sync_now` before and
    /// after its exchange (a conversation opened in that exchange takes uploads only then).
    /// Returns how many the server took now. A refusal for good (too large, over the
    /// conversation's quota) refuses the message that carries the file; being offline stops
    /// here with the error, and the next sync goes on.
    pub(crate) async fn upload_counselling_files(&self, store: &Store) -> Result<usize> {
        let pending = blocking(store, |s| s.attachments_to_upload()).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let token = self.account(store).await?.token;
        let mut uploaded = 0;
        for upload in pending {
            let (channel, hash) = (upload.channel, upload.hash.clone());
            // A file gone or changed on this device can never be sent: its message is refused
            // (and shows why) instead of holding the conversation's outbox for good.
            let bytes = match std::fs::read(&upload.path) {
                Ok(bytes) if bytes.len() as u64 == upload.size => bytes,
                _ => {
                    blocking(store, move |s| {
                        s.refuse_attachment(channel, &hash, "the file is missing or changed on this device")
                    })
                    .await?;
                    continue;
                }
            };
            match self.upload_attachment(&token, upload, bytes).await {
                Ok(()) => {
                    blocking(store, move |s| s.mark_attachment_uploaded(channel, &hash)).await?;
                    uploaded += 1;
                }
                Err(Error::Server { status, message, .. })
                    if (400..500).contains(&status) && ![404, 408, 409].contains(&status) =>
                {
                    blocking(store, move |s| s.refuse_attachment(channel, &hash, &message)).await?;
                }
                // Unknown to the server (the conversation is not open there yet, or this device
                // lost access: the exchange reports that): tried again at the next sync.
                Err(Error::Server { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(uploaded)
    }

    async fn upload_attachment(&self, token: &str, upload: PendingUpload, bytes: Vec<u8>) -> Result<()> {
        let base = format!("/v1/counselling/{}/attachments", upload.channel);
        let with_access = |mut request: HttpRequest| {
            request.access = upload.token.clone();
            request
        };
        let announced = AnnounceBlob {
            hash: upload.hash.clone(),
            size: upload.size,
            mime_type: BLOB_CONTENT_TYPE.into(),
            chunk_size: BLOB_CHUNK_BYTES,
            variant: None,
        };
        let request = with_access(HttpRequest::wire(
            HttpMethod::Post,
            &base,
            Some(token),
            encode(&announced)?,
        ));
        let state: UploadState = decode_answer(&self.send(request).await?)?;
        // The server's word on what it holds is checked before anything is built from it.
        state
            .check_answers(&announced)
            .map_err(Error::MalformedResponse)?;
        if state.complete {
            return Ok(());
        }
        for index in missing_chunks(&state) {
            let (start, end) = chunk_range(upload.size, BLOB_CHUNK_BYTES, index)
                .ok_or_else(|| Error::MalformedResponse(format!("chunk {index} is past the end")))?;
            let request = with_access(HttpRequest {
                content_type: Some(BLOB_CONTENT_TYPE),
                body: bytes[start as usize..end as usize].to_vec(),
                ..HttpRequest::bare(
                    HttpMethod::Put,
                    format!("{base}/{}/chunks/{index}", upload.hash),
                    Some(token),
                )
            });
            let _: UploadState = decode_answer(&self.send(request).await?)?;
        }
        let request = with_access(HttpRequest::wire(
            HttpMethod::Post,
            format!("{base}/{}/complete", upload.hash),
            Some(token),
            encode(&())?,
        ));
        let state: UploadState = decode_answer(&self.send(request).await?)?;
        if !state.complete || state.hash != announced.hash {
            return Err(Error::MalformedResponse(
                "the server did not take the attachment".into(),
            ));
        }
        Ok(())
    }

    /// An attachment of a counselling message, opened: from this device if it holds the file,
    /// else fetched from the server (ciphertext; its hash checked), kept here and opened with
    /// the key the message carried. A file that does not open (tampered) is a `Counselling`
    /// error with code `tampered`; one the server does not have (yet) is `Server` 404.
    pub async fn fetch_counselling_attachment(
        &self,
        store: &Store,
        channel: Uuid,
        file: &FileKey,
    ) -> Result<Vec<u8>> {
        if !is_blob_hash(&file.hash) {
            return Err(Error::invalid(
                "attachment",
                "an attachment is named by its BLAKE3 hash",
            ));
        }
        let local = {
            let file = file.clone();
            blocking(store, move |s| s.counselling_attachment(channel, &file)).await?
        };
        if let Some(plain) = local {
            return Ok(plain);
        }
        let access = blocking(store, move |s| s.counselling_access(channel)).await?;
        let token = self.account(store).await?.token;
        let mut request = HttpRequest::bare(
            HttpMethod::Get,
            format!("/v1/counselling/{channel}/attachments/{}", file.hash),
            Some(&token),
        );
        request.access = access;
        // Read in pieces and bounded: a server cannot make the device buffer more than an
        // attachment can be.
        let response = self
            .send_bounded(request, MAX_ATTACHMENT_CIPHERTEXT_BYTES)
            .await?;
        if !response.is_success() {
            return Err(refusal(&response));
        }
        let ciphertext = response.body;
        if blake3::hash(&ciphertext).to_hex().as_str() != file.hash {
            return Err(Error::MalformedResponse(
                "the attachment's bytes do not hash to its name".into(),
            ));
        }
        let plain = quartier_counselling::attachment::decrypt(&ciphertext, file)?;
        let hash = file.hash.clone();
        blocking(store, move |s| {
            s.keep_fetched_attachment(channel, &hash, &ciphertext)
        })
        .await?;
        Ok(plain)
    }
}
