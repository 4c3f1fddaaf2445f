//! Blobs against a real `quartier-server` process (`docs/blobs.md`): uploads in chunks verified
//! by BLAKE3, ranged downloads, quotas and size limits, malformed requests, who may fetch what,
//! and the core's transfer queue resuming through a proxy that cuts connections at random byte
//! offsets. Randomness is seeded; the seed is printed, `QUARTIER_FAULT_SEED=<n>` replays a run.

use crate::common;

use std::sync::Mutex;

use common::proxy::Proxy;
use common::*;
use quartier_bench::audio::wav_bytes;
use quartier_core::media::ImportOptions;
use quartier_core::model::*;
use quartier_core::sync::{
    SyncClient, TransferDirection, TransferEvent, TransferPolicy, TransferQueue, TransferReport,
};
use quartier_protocol::blobs::{
    AnnounceBlob, BlobVariant, UploadState, BLOB_CHUNK_BYTES, MAX_PREVIEW_BYTES, MAX_THUMBNAIL_BYTES,
};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use reqwest::Method;

const CHUNK: usize = BLOB_CHUNK_BYTES as usize;

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn hash_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn token_of(device: &Device) -> String {
    device
        .store
        .account()
        .expect("account")
        .expect("registered")
        .token()
        .to_owned()
}

async fn announce(url: &str, token: &str, space: SpaceId, hash: &str, size: u64) -> RawAnswer {
    post_msg(
        url,
        &format!("/v1/spaces/{space}/blobs"),
        Some(token),
        &AnnounceBlob {
            hash: hash.into(),
            size,
            mime_type: "image/jpeg".into(),
            chunk_size: BLOB_CHUNK_BYTES,
            variant: None,
        },
    )
    .await
}

async fn put_chunk(url: &str, token: &str, hash: &str, index: &str, bytes: Vec<u8>) -> RawAnswer {
    send_raw(
        &http(),
        Method::PUT,
        &format!("{url}/v1/blobs/{hash}/chunks/{index}"),
        Some(&format!("Bearer {token}")),
        bytes,
    )
    .await
}

async fn complete(url: &str, token: &str, hash: &str) -> RawAnswer {
    post_raw(url, &format!("/v1/blobs/{hash}/complete"), Some(token), vec![]).await
}

/// A download: status, `Content-Range` and body.
async fn get(url: &str, token: &str, hash: &str, range: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut request = http().get(format!("{url}/v1/blobs/{hash}")).bearer_auth(token);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let content_range = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        content_range,
        response.bytes().await.expect("body").to_vec(),
    )
}

/// Announces, sends every chunk and completes; panics on any refusal.
async fn upload(url: &str, token: &str, space: SpaceId, bytes: &[u8]) -> String {
    let hash = hash_of(bytes);
    let answer = announce(url, token, space, &hash, bytes.len() as u64).await;
    assert_eq!(answer.status, 200, "announce: {:?}", answer.error_body());
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        let answer = put_chunk(url, token, &hash, &i.to_string(), chunk.to_vec()).await;
        assert_eq!(answer.status, 200, "chunk {i}: {:?}", answer.error_body());
    }
    let answer = complete(url, token, &hash).await;
    assert_eq!(answer.status, 200, "complete: {:?}", answer.error_body());
    assert!(answer.decode::<UploadState>().complete);
    hash
}

/// Asserts a refusal: status, code, and a message that says something.
fn refused(answer: &RawAnswer, status: u16, code: &str) -> String {
    let body = answer.error_body().unwrap_or_else(|| {
        panic!(
            "HTTP {} without an ErrorBody (expected {status} {code})",
            answer.status
        )
    });
    assert_eq!(
        (answer.status, body.code.as_str()),
        (status, code),
        "{}",
        body.message
    );
    assert!(!body.message.trim().is_empty(), "{code} without a message");
    body.message
}

fn post_with_media(
    device: &Device,
    space: SpaceId,
    title: &str,
    audience: Audience,
    media: Vec<MediaRef>,
) -> Item {
    let content = ItemContent {
        audience,
        media,
        ..ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        )
    };
    device
        .store
        .create_item(NewItem::new(space, device.person, content))
        .expect("create post")
}

async fn sync_clean(device: &Device) {
    let report = device.sync().await;
    assert!(report.rejected.is_empty(), "refused: {:?}", report.rejected);
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_in_any_order_download_byte_identical_whole_and_by_range() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let token = token_of(&coordinator);
    let mut rng = StdRng::seed_from_u64(seed("upload_download"));
    let bytes = random_bytes(&mut rng, 2 * CHUNK + 123_457);
    let hash = hash_of(&bytes);

    let answer = announce(url, &token, space, &hash, bytes.len() as u64).await;
    assert_eq!(answer.status, 200, "{:?}", answer.error_body());
    let state: UploadState = answer.decode();
    assert_eq!((state.received.len(), state.complete), (0, false));
    // Out of order, and chunk 1 twice (idempotent).
    for i in [2usize, 1, 0, 1] {
        let chunk = bytes.chunks(CHUNK).nth(i).expect("chunk").to_vec();
        let answer = put_chunk(url, &token, &hash, &i.to_string(), chunk).await;
        assert_eq!(answer.status, 200, "{:?}", answer.error_body());
    }
    let state: UploadState = announce(url, &token, space, &hash, bytes.len() as u64)
        .await
        .decode();
    assert_eq!(
        state.received,
        vec![0, 1, 2],
        "a resumed upload learns what is there"
    );
    let answer = complete(url, &token, &hash).await;
    assert_eq!(answer.status, 200, "{:?}", answer.error_body());
    assert!(answer.decode::<UploadState>().complete);

    let (status, _, whole) = get(url, &token, &hash, None).await;
    assert_eq!(status, 200);
    assert!(whole == bytes, "the download is byte-identical");
    let (status, content_range, part) = get(url, &token, &hash, Some("bytes=300000-400000")).await;
    assert_eq!(status, 206);
    assert_eq!(
        content_range.as_deref(),
        Some(format!("bytes 300000-400000/{}", bytes.len()).as_str())
    );
    assert!(part == bytes[300_000..=400_000]);
    let (status, _, tail) = get(url, &token, &hash, Some("bytes=-1000")).await;
    assert_eq!(status, 206);
    assert!(tail == bytes[bytes.len() - 1000..]);
    let (status, _, rest) = get(url, &token, &hash, Some(&format!("bytes={}-", CHUNK + 5))).await;
    assert_eq!(status, 206);
    assert!(rest == bytes[CHUNK + 5..]);
    let (status, content_range, _) = get(url, &token, &hash, Some(&format!("bytes={}-", bytes.len()))).await;
    assert_eq!(status, 416);
    assert_eq!(content_range, Some(format!("bytes */{}", bytes.len())));

    // Announcing a stored blob again: nothing to send. A chunk sent anyway changes nothing.
    let state: UploadState = announce(url, &token, space, &hash, bytes.len() as u64)
        .await
        .decode();
    assert!(state.complete);
    let answer = put_chunk(url, &token, &hash, "0", vec![0u8; CHUNK]).await;
    assert_eq!(answer.status, 200);
    let (_, _, again) = get(url, &token, &hash, None).await;
    assert!(again == bytes, "a stored blob cannot be overwritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_whose_bytes_do_not_match_its_hash_is_rejected_and_discarded() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let token = token_of(&coordinator);
    let mut rng = StdRng::seed_from_u64(seed("mismatch"));
    let genuine = random_bytes(&mut rng, CHUNK + 1000);
    let mut forged = genuine.clone();
    let at = rng.random_range(0..forged.len());
    forged[at] ^= 0x01;
    let hash = hash_of(&genuine);

    let answer = announce(url, &token, space, &hash, genuine.len() as u64).await;
    assert_eq!(answer.status, 200);
    for (i, chunk) in forged.chunks(CHUNK).enumerate() {
        assert_eq!(
            put_chunk(url, &token, &hash, &i.to_string(), chunk.to_vec())
                .await
                .status,
            200
        );
    }
    let message = refused(&complete(url, &token, &hash).await, 422, "hash_mismatch");
    assert!(message.contains("BLAKE3"), "{message}");
    let (status, _, _) = get(url, &token, &hash, None).await;
    assert_eq!(status, 404, "nothing was stored");
    // The partial data is gone: a new upload starts from nothing, and then succeeds.
    let state: UploadState = announce(url, &token, space, &hash, genuine.len() as u64)
        .await
        .decode();
    assert!(state.received.is_empty() && !state.complete);
    for (i, chunk) in genuine.chunks(CHUNK).enumerate() {
        assert_eq!(
            put_chunk(url, &token, &hash, &i.to_string(), chunk.to_vec())
                .await
                .status,
            200
        );
    }
    assert_eq!(complete(url, &token, &hash).await.status, 200);
    let (status, _, body) = get(url, &token, &hash, None).await;
    assert!(status == 200 && body == genuine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_and_space_quotas_refuse_with_clear_errors() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(
        data,
        &[
            ("QUARTIER_MAX_BLOB_BYTES", "600000"),
            ("QUARTIER_SPACE_QUOTA_BYTES", "1000000"),
        ],
    );
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let token = token_of(&coordinator);
    let mut rng = StdRng::seed_from_u64(seed("quota"));

    let message = refused(
        &announce(url, &token, space, &hash_of(b"big"), 600_001).await,
        413,
        "too_large",
    );
    assert!(message.contains("600000"), "{message}");
    let first = random_bytes(&mut rng, 500_000);
    let first_hash = upload(url, &token, space, &first).await;
    // Pending uploads count too: this one reserves 400 000 of the remaining 500 000.
    let pending = random_bytes(&mut rng, 400_000);
    assert_eq!(
        announce(url, &token, space, &hash_of(&pending), 400_000)
            .await
            .status,
        200
    );
    let message = refused(
        &announce(url, &token, space, &hash_of(b"third"), 100_001).await,
        413,
        "quota_exceeded",
    );
    assert!(
        message.contains("1000000") && message.contains("900000"),
        "{message}"
    );
    // The same blob again is not charged twice.
    let state: UploadState = announce(url, &token, space, &first_hash, 500_000).await.decode();
    assert!(state.complete);
    // Another space has its own quota.
    let other = coordinator
        .store
        .create_space(space_meta("Ehrenfeld"), coordinator.person)
        .expect("space")
        .id;
    coordinator
        .client
        .create_space(&coordinator.store, other)
        .await
        .expect("register space");
    assert_eq!(
        announce(url, &token, other, &hash_of(b"third"), 100_001)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_forbidden_blob_requests_get_4xx_with_a_message() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let outsider = Device::register(url, "Fremd").await;
    let token = token_of(&coordinator);
    let bytes = vec![7u8; CHUNK + 10];
    let hash = hash_of(&bytes);

    // Announcements.
    refused(&announce(url, &token, space, "ABC", 10).await, 400, "bad_request");
    refused(
        &announce(url, &token_of(&outsider), space, &hash, 10).await,
        403,
        "forbidden",
    );
    let odd_chunks = AnnounceBlob {
        hash: hash.clone(),
        size: 10,
        mime_type: "image/jpeg".into(),
        chunk_size: 1000,
        variant: None,
    };
    let path = format!("/v1/spaces/{space}/blobs");
    refused(
        &post_msg(url, &path, Some(&token), &odd_chunks).await,
        400,
        "bad_request",
    );
    let bad_mime = AnnounceBlob {
        mime_type: "jpeg".into(),
        chunk_size: BLOB_CHUNK_BYTES,
        ..odd_chunks
    };
    refused(
        &post_msg(url, &path, Some(&token), &bad_mime).await,
        400,
        "bad_request",
    );
    refused(
        &post_raw(url, &path, Some(&token), b"not cbor".to_vec()).await,
        400,
        "malformed",
    );
    let unauthenticated = post_msg(url, &path, None, &bad_mime).await;
    assert_eq!(unauthenticated.status, 401);

    // Chunks.
    refused(
        &put_chunk(url, &token, &hash, "0", vec![1; 10]).await,
        404,
        "unknown_upload",
    );
    assert_eq!(
        announce(url, &token, space, &hash, bytes.len() as u64)
            .await
            .status,
        200
    );
    refused(
        &put_chunk(url, &token, &hash, "x", vec![1; 10]).await,
        400,
        "bad_request",
    );
    refused(
        &put_chunk(url, &token, &hash, "-1", vec![1; 10]).await,
        400,
        "bad_request",
    );
    refused(
        &put_chunk(url, &token, "nothex", "0", vec![1; 10]).await,
        400,
        "bad_request",
    );
    let message = refused(
        &put_chunk(url, &token, &hash, "2", vec![1; 10]).await,
        400,
        "bad_chunk",
    );
    assert!(message.contains("2 chunks"), "{message}");
    let message = refused(
        &put_chunk(url, &token, &hash, "1", vec![1; 9]).await,
        400,
        "bad_chunk",
    );
    assert!(message.contains("10 bytes"), "{message}");
    refused(
        &put_chunk(url, &token, &hash, "0", vec![1; CHUNK - 1]).await,
        400,
        "bad_chunk",
    );
    refused(
        &put_chunk(url, &token, &hash, "0", vec![1; CHUNK + 1]).await,
        400,
        "bad_chunk",
    );
    refused(
        &put_chunk(url, &token, &hash, "0", vec![1; 3 * CHUNK]).await,
        400,
        "bad_request",
    );
    // Someone who did not announce it may not add chunks to it.
    refused(
        &put_chunk(url, &token_of(&outsider), &hash, "1", bytes[CHUNK..].to_vec()).await,
        404,
        "unknown_upload",
    );
    assert_eq!(
        put_chunk(url, &token, &hash, "1", bytes[CHUNK..].to_vec())
            .await
            .status,
        200
    );
    let message = refused(&complete(url, &token, &hash).await, 409, "missing_chunks");
    assert!(message.contains('0'), "{message}");
    refused(
        &complete(url, &token, &hash_of(b"never")).await,
        404,
        "unknown_upload",
    );

    // Downloads.
    assert_eq!(
        put_chunk(url, &token, &hash, "0", bytes[..CHUNK].to_vec())
            .await
            .status,
        200
    );
    assert_eq!(complete(url, &token, &hash).await.status, 200);
    for range in ["bytes=5-1", "items=0-1", "bytes=0-1,5-6", "bytes=a-", "bytes=-"] {
        let answer = send_raw(
            &http(),
            Method::GET,
            &format!("{url}/v1/blobs/{hash}"),
            None,
            vec![],
        )
        .await;
        assert_eq!(answer.status, 401);
        let response = http()
            .get(format!("{url}/v1/blobs/{hash}"))
            .bearer_auth(&token)
            .header("range", range)
            .send()
            .await
            .expect("answer");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body").to_vec();
        refused(&RawAnswer { status, body }, 400, "bad_request");
    }
    let (status, _, _) = get(url, &token, "0123", None).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_device_fetches_a_blob_referenced_only_by_items_it_may_not_see() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let caseworker = join(url, &coordinator, space, Role::Caseworker, "Beratung").await;
    let resident = join(url, &coordinator, space, Role::Resident, "Nachbarin").await;
    let outsider = Device::register(url, "Fremd").await;
    for d in [&coordinator, &caseworker, &resident] {
        sync_clean(d).await;
    }
    let mut rng = StdRng::seed_from_u64(seed("blob_permissions"));
    let secret = random_bytes(&mut rng, 40_000);
    let public = random_bytes(&mut rng, 50_000);
    let loose = random_bytes(&mut rng, 30_000);
    let secret_hash = upload(url, &token_of(&caseworker), space, &secret).await;
    let public_hash = upload(url, &token_of(&coordinator), space, &public).await;
    let loose_hash = upload(url, &token_of(&coordinator), space, &loose).await;
    let case = post_with_media(
        &caseworker,
        space,
        "Fallnotiz",
        Audience::Caseworkers,
        vec![MediaRef::new(&secret_hash, "image/jpeg", 40_000)],
    );
    sync_clean(&caseworker).await;
    let news = post_with_media(
        &coordinator,
        space,
        "Straßenfest",
        Audience::Everyone,
        vec![MediaRef::new(&public_hash, "image/jpeg", 50_000)],
    );
    sync_clean(&coordinator).await;

    let may = |device: &Device, hash: &str| {
        let (url, token, hash) = (url.to_owned(), token_of(device), hash.to_owned());
        async move { get(&url, &token, &hash, None).await.0 }
    };
    // Only caseworkers see the caseworker item (not coordinators: professional secrecy).
    assert_eq!(may(&caseworker, &secret_hash).await, 200);
    assert_eq!(may(&resident, &secret_hash).await, 404);
    assert_eq!(may(&coordinator, &secret_hash).await, 404);
    assert_eq!(may(&outsider, &secret_hash).await, 404);
    // Everyone in the space sees the public item; nobody outside.
    assert_eq!(may(&resident, &public_hash).await, 200);
    assert_eq!(may(&caseworker, &public_hash).await, 200);
    assert_eq!(may(&outsider, &public_hash).await, 404);
    // Referenced by nothing: only its uploader.
    assert_eq!(may(&coordinator, &loose_hash).await, 200);
    assert_eq!(may(&resident, &loose_hash).await, 404);
    assert_eq!(may(&caseworker, &loose_hash).await, 404);

    // The caseworker item opened to everyone: the resident may fetch its photo now.
    caseworker
        .store
        .update_item(
            case.id,
            &ItemPatch {
                audience: Some(Audience::Everyone),
                ..Default::default()
            },
            caseworker.person,
        )
        .expect("widen");
    sync_clean(&caseworker).await;
    assert_eq!(may(&resident, &secret_hash).await, 200);
    // The public item deleted: its photo is no longer referenced by anything the resident sees.
    coordinator
        .store
        .delete_item(news.id, coordinator.person)
        .expect("delete");
    sync_clean(&coordinator).await;
    assert_eq!(may(&resident, &public_hash).await, 404);
    assert_eq!(may(&coordinator, &public_hash).await, 200, "still its uploader");
    // A removed member fetches nothing.
    coordinator
        .client
        .remove_member(&coordinator.store, space, resident.person)
        .await
        .expect("remove");
    assert_eq!(may(&resident, &secret_hash).await, 404);
}

/// A space of `device`'s own, registered with the server.
async fn own_space(device: &Device, name: &str) -> SpaceId {
    let space = device
        .store
        .create_space(space_meta(name), device.person)
        .expect("space")
        .id;
    device
        .client
        .create_space(&device.store, space)
        .await
        .expect("register space");
    space
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_left_fetches_nothing_not_even_through_a_space_of_their_own_that_references_the_hash() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let caseworker = join(url, &coordinator, space, Role::Caseworker, "Beratung").await;
    let resident = join(url, &coordinator, space, Role::Resident, "Nachbarin").await;
    let stranger = Device::register(url, "Fremd").await;
    for d in [&coordinator, &caseworker, &resident] {
        sync_clean(d).await;
    }
    let mut rng = StdRng::seed_from_u64(seed("who_left"));
    let photo = random_bytes(&mut rng, CHUNK + 5_000);
    let secret = random_bytes(&mut rng, 20_000);
    let photo_hash = upload(url, &token_of(&coordinator), space, &photo).await;
    let secret_hash = upload(url, &token_of(&caseworker), space, &secret).await;
    post_with_media(
        &coordinator,
        space,
        "Straßenfest",
        Audience::Everyone,
        vec![MediaRef::new(&photo_hash, "image/jpeg", photo.len() as i64)],
    );
    sync_clean(&coordinator).await;
    post_with_media(
        &caseworker,
        space,
        "Fallnotiz",
        Audience::Caseworkers,
        vec![MediaRef::new(&secret_hash, "image/jpeg", secret.len() as i64)],
    );
    sync_clean(&caseworker).await;
    sync_clean(&resident).await;
    let fetch = |device: &Device, hash: &str| {
        let (url, token, hash) = (url.to_owned(), token_of(device), hash.to_owned());
        async move { get(&url, &token, &hash, None).await.0 }
    };
    assert_eq!(
        fetch(&resident, &photo_hash).await,
        200,
        "a member reads the photo"
    );

    // Announcing a hash one has not uploaded reveals nothing: the answer is the one for a hash
    // the server has never seen (send everything), inside the space and outside it.
    let unheard = hash_of(b"a blob nobody ever uploaded");
    let blank = |hash: &str, size: u64| UploadState {
        hash: hash.into(),
        size,
        chunk_size: BLOB_CHUNK_BYTES,
        received: vec![],
        complete: false,
    };
    let answer = announce(
        url,
        &token_of(&resident),
        space,
        &secret_hash,
        secret.len() as u64,
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.error_body());
    assert_eq!(
        answer.decode::<UploadState>(),
        blank(&secret_hash, secret.len() as u64),
        "a stored blob looks like an unknown one"
    );
    let answer = announce(url, &token_of(&resident), space, &unheard, secret.len() as u64).await;
    assert_eq!(
        answer.decode::<UploadState>(),
        blank(&unheard, secret.len() as u64)
    );
    // ... and the announcement grants nothing: the resident may still not read the case photo.
    assert_eq!(fetch(&resident, &secret_hash).await, 404);
    refused(
        &complete(url, &token_of(&resident), &secret_hash).await,
        409,
        "missing_chunks",
    );
    assert_eq!(fetch(&resident, &secret_hash).await, 404);

    // The resident is removed and remembers the photo's hash.
    coordinator
        .client
        .remove_member(&coordinator.store, space, resident.person)
        .await
        .expect("remove");
    assert_eq!(fetch(&resident, &photo_hash).await, 404);
    // A space of their own, an item there that references the hash: nothing.
    let elsewhere = own_space(&resident, "Anderswo").await;
    post_with_media(
        &resident,
        elsewhere,
        "Erinnerung",
        Audience::Everyone,
        vec![
            MediaRef::new(&photo_hash, "image/jpeg", photo.len() as i64),
            MediaRef::new(&secret_hash, "image/jpeg", secret.len() as i64),
        ],
    );
    sync_clean(&resident).await;
    assert_eq!(
        fetch(&resident, &photo_hash).await,
        404,
        "a reference alone grants nothing"
    );
    assert_eq!(fetch(&resident, &secret_hash).await, 404);
    // Announcing it there: the same blank answer, and still nothing to fetch.
    let answer = announce(
        url,
        &token_of(&resident),
        elsewhere,
        &photo_hash,
        photo.len() as u64,
    )
    .await;
    assert_eq!(
        answer.decode::<UploadState>(),
        blank(&photo_hash, photo.len() as u64)
    );
    refused(
        &complete(url, &token_of(&resident), &photo_hash).await,
        409,
        "missing_chunks",
    );
    assert_eq!(fetch(&resident, &photo_hash).await, 404);
    // A stranger who learned the hash fares no better.
    let theirs = own_space(&stranger, "Fremdraum").await;
    post_with_media(
        &stranger,
        theirs,
        "Geklaut",
        Audience::Everyone,
        vec![MediaRef::new(&photo_hash, "image/jpeg", photo.len() as i64)],
    );
    sync_clean(&stranger).await;
    let answer = announce(url, &token_of(&stranger), theirs, &photo_hash, photo.len() as u64).await;
    assert_eq!(
        answer.decode::<UploadState>(),
        blank(&photo_hash, photo.len() as u64)
    );
    assert_eq!(fetch(&stranger, &photo_hash).await, 404);

    // Whoever has the bytes may upload them into their space and fetch them through it: the
    // resident kept a copy of the photo (they were allowed to see it).
    let again = upload(url, &token_of(&resident), elsewhere, &photo).await;
    assert_eq!(again, photo_hash);
    assert_eq!(fetch(&resident, &photo_hash).await, 200);
    // That opens nothing else: the stranger's reference still grants nothing, and the members
    // of the first space still read it through theirs.
    assert_eq!(fetch(&stranger, &photo_hash).await, 404);
    assert_eq!(fetch(&caseworker, &photo_hash).await, 200);
    assert_eq!(fetch(&resident, &secret_hash).await, 404);

    // A revoked device (a lost phone) fetches nothing with the token it still holds, not even
    // what its person uploaded: the server answers `revoked` before looking at the hash.
    let lost_token = token_of(&caseworker);
    let own_device = caseworker
        .store
        .account()
        .expect("account")
        .expect("registered")
        .device;
    caseworker
        .client
        .revoke_device(&caseworker.store, own_device)
        .await
        .expect("revoke");
    for hash in [&photo_hash, &secret_hash] {
        let (status, _, body) = get(url, &lost_token, hash, None).await;
        assert_eq!(status, 403, "a revoked device fetched {hash}");
        assert!(body.len() < 1_000, "the answer carries no blob");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_used_in_two_spaces_is_fetchable_through_each_its_bytes_sent_once_and_kept_while_either_uses_it(
) {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(
        data,
        &[
            ("QUARTIER_BLOB_GC_INTERVAL_SECS", "1"),
            ("QUARTIER_BLOB_GC_GRACE_SECS", "1"),
        ],
    );
    let url = server.url.as_str();
    let (coordinator, first) = space_with_coordinator(url).await;
    let second = own_space(&coordinator, "Seniorengruppe").await;
    // Members of one space each.
    let in_first = join(url, &coordinator, first, Role::Resident, "Nachbarin").await;
    let in_second = join(url, &coordinator, second, Role::Resident, "Nachbar").await;
    let mut rng = StdRng::seed_from_u64(seed("two_spaces"));
    let imported = coordinator
        .store
        .import_media_bytes(&photo(&mut rng), &ImportOptions::default())
        .expect("import");
    let reference = imported.reference.clone();
    let files: Vec<String> = reference.hashes().into_iter().map(str::to_owned).collect();
    let total: i64 = imported.stored.iter().map(|f| f.size).sum();
    let older = post_with_media(
        &coordinator,
        first,
        "Sommerfest",
        Audience::Everyone,
        vec![reference.clone()],
    );
    post_with_media(
        &coordinator,
        second,
        "Sommerfest (Senioren)",
        Audience::Everyone,
        vec![reference.clone()],
    );
    sync_clean(&coordinator).await;

    let queue = TransferQueue::new(&coordinator.client).expect("queue");
    let (plan, _) = queue.plan(&coordinator.store).expect("plan");
    let mut planned: Vec<(String, String)> = plan
        .iter()
        .map(|t| (t.media.hash.clone(), t.space.clone().expect("a space")))
        .collect();
    planned.sort();
    let mut expected: Vec<(String, String)> = files
        .iter()
        .flat_map(|h| [first, second].map(|s| (h.clone(), s.to_string())))
        .collect();
    expected.sort();
    assert_eq!(planned, expected, "every file into both spaces");
    let report = queue.run(&coordinator.store, |_| {}).await.expect("run");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.uploaded.len(), 2 * files.len());
    // The second space's claims are made with the bytes already sent: nothing goes up twice.
    assert!(
        report.bytes_sent < total as u64 + 8_192,
        "{} bytes sent for {total} bytes of files",
        report.bytes_sent
    );
    assert!(queue.plan(&coordinator.store).expect("plan").0.is_empty());

    for member in [&in_first, &in_second] {
        sync_clean(member).await;
        for hash in &files {
            let (status, _, body) = get(url, &token_of(member), hash, None).await;
            assert_eq!(status, 200, "{hash} through the member's own space");
            assert_eq!(hash_of(&body), *hash);
        }
    }

    // The first space stops using it; after the grace period its claim is released, and the
    // second space's claim keeps the files.
    coordinator
        .store
        .delete_item(older.id, coordinator.person)
        .expect("delete");
    sync_clean(&coordinator).await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    for hash in &files {
        assert_eq!(
            get(url, &token_of(&in_second), hash, None).await.0,
            200,
            "{hash} kept"
        );
        assert_eq!(
            get(url, &token_of(&in_first), hash, None).await.0,
            404,
            "{hash} no longer through the first space"
        );
    }
    assert_eq!(stored_files(server.data.path()).len(), files.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcing_someone_elses_pending_upload_with_another_size_leaves_it_intact() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let resident = join(url, &coordinator, space, Role::Resident, "Nachbarin").await;
    let stranger = Device::register(url, "Fremd").await;
    let theirs = own_space(&stranger, "Fremdraum").await;
    let mut rng = StdRng::seed_from_u64(seed("pending_interference"));
    let bytes = random_bytes(&mut rng, 2 * CHUNK + 77);
    let hash = hash_of(&bytes);
    let owner = token_of(&coordinator);

    assert_eq!(
        announce(url, &owner, space, &hash, bytes.len() as u64)
            .await
            .status,
        200
    );
    for i in [0usize, 1] {
        let chunk = bytes.chunks(CHUNK).nth(i).expect("chunk").to_vec();
        assert_eq!(
            put_chunk(url, &owner, &hash, &i.to_string(), chunk).await.status,
            200
        );
    }
    // Others announce the same hash with other sizes, in the same space and in another one.
    for (token, in_space) in [(token_of(&resident), space), (token_of(&stranger), theirs)] {
        let state: UploadState = announce(url, &token, in_space, &hash, 5).await.decode();
        assert!(
            state.received.is_empty() && !state.complete && state.size == 5,
            "nothing of the owner's upload shows: {state:?}"
        );
        // Their chunks go into their own upload, not the owner's.
        assert_eq!(put_chunk(url, &token, &hash, "0", vec![9; 5]).await.status, 200);
    }
    let state: UploadState = announce(url, &owner, space, &hash, bytes.len() as u64)
        .await
        .decode();
    assert_eq!(state.received, vec![0, 1], "the owner's chunks are still there");
    let last = bytes.chunks(CHUNK).nth(2).expect("chunk").to_vec();
    assert_eq!(put_chunk(url, &owner, &hash, "2", last).await.status, 200);
    let answer = complete(url, &owner, &hash).await;
    assert_eq!(answer.status, 200, "{:?}", answer.error_body());
    let (status, _, body) = get(url, &owner, &hash, None).await;
    assert!(
        status == 200 && body == bytes,
        "the owner's upload arrived intact"
    );
    // The five-byte uploads do not hash to the name: refused and discarded, the stored blob untouched.
    refused(
        &complete(url, &token_of(&stranger), &hash).await,
        422,
        "hash_mismatch",
    );
    let (_, _, body) = get(url, &owner, &hash, None).await;
    assert!(body == bytes);
}

// ---------------------------------------------------------------------------------------------
// The core's transfer queue.

/// Runs the queue until a run finishes without a dropped link; panics on any other error.
async fn run_until_done(
    queue: &TransferQueue,
    store: &quartier_core::Store,
    events: &Mutex<Vec<TransferEvent>>,
) -> (TransferReport, usize) {
    for attempt in 1..=60 {
        match queue
            .run(store, |e| events.lock().expect("events").push(e.clone()))
            .await
        {
            Ok(report) => return (report, attempt),
            Err(quartier_core::Error::Offline(_)) => continue,
            Err(e) => panic!("transfer failed: {e}"),
        }
    }
    panic!("the queue never finished");
}

/// A WAV file of about `size` bytes of noise, which the media store takes as it is.
fn audio_bytes(rng: &mut StdRng, size: usize) -> Vec<u8> {
    wav_bytes(size, |data| rng.fill_bytes(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_uploads_and_downloads_resume_without_resending_finished_chunks_and_arrive_byte_identical() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let resident = join(url, &coordinator, space, Role::Resident, "Nachbarin").await;
    let mut rng = StdRng::seed_from_u64(seed("queue_cuts"));
    let about = 12 * CHUNK + rng.random_range(1..CHUNK);
    let audio = audio_bytes(&mut rng, about);
    // Not a whole number of chunks: the last chunk is short.
    let size = audio.len();
    let imported = coordinator
        .store
        .import_media_bytes(&audio, &ImportOptions::default())
        .expect("import");
    let hash = imported.reference.hash.clone();
    assert_eq!(hash, hash_of(&audio), "audio is stored as is");
    post_with_media(
        &coordinator,
        space,
        "Mitschnitt",
        Audience::Everyone,
        vec![imported.reference],
    );
    sync_clean(&coordinator).await;

    // Upload through a link cut at random offsets (all within the first upload's bytes).
    let proxy = Proxy::start(url).await;
    let client = SyncClient::new(&proxy.url).expect("client");
    let uploader = TransferQueue::new(&client).expect("queue");
    let gaps: Vec<u64> = (0..8).map(|_| rng.random_range(20_000..350_000)).collect();
    proxy.plan_cuts(&[], &gaps);
    let events = Mutex::new(Vec::new());
    let (report, attempts) = run_until_done(&uploader, &coordinator.store, &events).await;
    assert_eq!(report.uploaded, vec![hash.clone()]);
    assert_eq!(proxy.cuts(), gaps.len(), "every planned cut happened");
    let chunks = size.div_ceil(CHUNK) as u64;
    let traffic = uploader.traffic();
    // Each cut loses at most the one chunk in flight; finished chunks are never sent again.
    assert!(
        traffic.chunks_sent <= chunks + gaps.len() as u64,
        "{} chunk requests for {chunks} chunks and {} cuts",
        traffic.chunks_sent,
        gaps.len()
    );
    let overhead = (traffic.chunks_sent + 3 * attempts as u64) * 1024;
    assert!(
        proxy.up() <= size as u64 + gaps.len() as u64 * CHUNK as u64 + overhead,
        "{} bytes up for a {size}-byte file",
        proxy.up()
    );
    assert!(
        coordinator
            .store
            .media_info(&hash)
            .expect("info")
            .expect("known")
            .on_server
    );
    let last = events
        .lock()
        .expect("events")
        .last()
        .cloned()
        .expect("progress events");
    assert!(last.finished && last.done_bytes == size as i64 && last.direction == TransferDirection::Upload);

    // Download through a link cut at random offsets.
    sync_clean(&resident).await;
    let (up_before, down_before) = (proxy.up(), proxy.down());
    let client = SyncClient::new(&proxy.url).expect("client");
    let downloader = TransferQueue::new(&client).expect("queue");
    let gaps: Vec<u64> = (0..8).map(|_| rng.random_range(20_000..350_000)).collect();
    proxy.plan_cuts(&gaps, &[]);
    let events = Mutex::new(Vec::new());
    let (report, attempts) = run_until_done(&downloader, &resident.store, &events).await;
    assert_eq!(report.downloaded, vec![hash.clone()]);
    assert_eq!(proxy.cuts(), 16, "every planned cut happened");
    let path = resident.store.media_file(&hash).expect("downloaded file");
    let downloaded = std::fs::read(path).expect("read the file");
    assert!(downloaded == audio, "the download is byte-identical");
    // Downloads resume at the byte where they stopped: only headers are repeated.
    let down = proxy.down() - down_before;
    assert!(
        down <= size as u64 + attempts as u64 * 1024,
        "{down} bytes down for a {size}-byte file in {attempts} attempts"
    );
    assert!(
        proxy.up() - up_before <= attempts as u64 * 1024,
        "a download sends no body"
    );
    let done: Vec<i64> = events
        .lock()
        .expect("events")
        .iter()
        .map(|e| e.done_bytes)
        .collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "progress only grows");
    // Nothing left to do.
    assert!(downloader.plan(&resident.store).expect("plan").0.is_empty());
}

/// Phones with encrypted stores (docs/store.md, "Encryption at rest"): the transfer queue uploads
/// the plaintext of a sealed file chunk by chunk (the server checks it against its hash), and a
/// download is sealed on arrival. On both phones the file at rest is sealed and shows none of
/// the recording's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_of_encrypted_phones_go_up_and_down_whole_with_no_plaintext_at_rest_on_either() {
    let server = Server::start();
    let url = server.url.as_str();
    let coordinator =
        Device::register_encrypted(url, "Koordination", quartier_core::StoreKey::new([1; 32])).await;
    let space = coordinator
        .store
        .create_space(space_meta("Nippes"), coordinator.person)
        .expect("space")
        .id;
    coordinator
        .client
        .create_space(&coordinator.store, space)
        .await
        .expect("register space");
    let code = coordinator.invite(space, Role::Resident).await;
    let resident = Device::register_encrypted(url, "Nachbarin", quartier_core::StoreKey::new([2; 32])).await;
    resident
        .client
        .redeem_invite(&resident.store, &code)
        .await
        .expect("redeem");
    let mut rng = StdRng::seed_from_u64(seed("encrypted_media"));
    let audio = audio_bytes(&mut rng, 3 * CHUNK + 1234);
    let imported = coordinator
        .store
        .import_media_bytes(&audio, &ImportOptions::default())
        .expect("import");
    let hash = imported.reference.hash.clone();
    assert_eq!(hash, hash_of(&audio), "named by the plaintext's hash");
    post_with_media(
        &coordinator,
        space,
        "Mitschnitt",
        Audience::Everyone,
        vec![imported.reference],
    );
    sync_clean(&coordinator).await;
    let events = Mutex::new(Vec::new());
    let uploader = TransferQueue::new(&coordinator.client).expect("queue");
    let (report, _) = run_until_done(&uploader, &coordinator.store, &events).await;
    assert_eq!(report.uploaded, vec![hash.clone()]);

    sync_clean(&resident).await;
    let downloader = TransferQueue::new(&resident.client).expect("queue");
    let (report, _) = run_until_done(&downloader, &resident.store, &events).await;
    assert_eq!(report.downloaded, vec![hash.clone()]);
    assert!(
        resident.store.read_media(&hash).expect("read") == audio,
        "byte-identical"
    );
    let sample = &audio[audio.len() / 2..audio.len() / 2 + 64];
    for device in [&coordinator, &resident] {
        let at_rest = std::fs::read(device.store.media_file(&hash).expect("file")).expect("read");
        assert!(at_rest.starts_with(b"QRTRMED1"), "sealed");
        assert!(
            !at_rest.windows(sample.len()).any(|w| w == sample),
            "no plaintext of the recording at rest"
        );
    }
}

/// A photo big enough for a preview and a thumbnail: PNG noise, 1400×900.
fn photo(rng: &mut StdRng) -> Vec<u8> {
    let mut pixels = image::RgbImage::new(1400, 900);
    for p in pixels.pixels_mut() {
        *p = image::Rgb([rng.random(), rng.random(), rng.random()]);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    pixels
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_then_previews_then_originals_and_on_metered_links_originals_only_on_demand() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let resident = join(url, &coordinator, space, Role::Resident, "Nachbarin").await;
    let mut rng = StdRng::seed_from_u64(seed("queue_order"));
    let imported = coordinator
        .store
        .import_media_bytes(&photo(&mut rng), &ImportOptions::default())
        .expect("import");
    let reference = imported.reference.clone();
    let (thumb, preview) = (
        reference.thumbnail.clone().expect("a thumbnail").hash,
        reference.preview.clone().expect("a preview").hash,
    );
    let original = reference.hash.clone();
    post_with_media(
        &coordinator,
        space,
        "Fassade",
        Audience::Everyone,
        vec![reference],
    );
    sync_clean(&coordinator).await;

    // A file on an author-only item never leaves the device.
    let private = coordinator
        .store
        .import_media_bytes(&audio_bytes(&mut rng, 1000), &ImportOptions::default())
        .expect("import");
    post_with_media(
        &coordinator,
        space,
        "Notiz",
        Audience::AuthorOnly,
        vec![private.reference.clone()],
    );

    let queue = TransferQueue::new(&coordinator.client).expect("queue");
    queue.set_policy(TransferPolicy { metered: true });
    let (plan, deferred) = queue.plan(&coordinator.store).expect("plan");
    let planned: Vec<&str> = plan.iter().map(|t| t.media.hash.as_str()).collect();
    assert_eq!((planned, deferred), (vec![thumb.as_str(), preview.as_str()], 1));
    let report = queue.run(&coordinator.store, |_| {}).await.expect("metered run");
    assert_eq!(report.uploaded, vec![thumb.clone(), preview.clone()]);
    assert_eq!(report.deferred, 1);
    assert!(
        !coordinator
            .store
            .media_info(&original)
            .expect("info")
            .expect("known")
            .on_server
    );
    queue.set_policy(TransferPolicy { metered: false });
    let report = queue
        .run(&coordinator.store, |_| {})
        .await
        .expect("unmetered run");
    assert_eq!(report.uploaded, vec![original.clone()]);
    assert!(
        !coordinator
            .store
            .media_info(&private.reference.hash)
            .expect("info")
            .expect("known")
            .on_server
    );

    sync_clean(&resident).await;
    let queue = TransferQueue::new(&resident.client).expect("queue");
    queue.set_policy(TransferPolicy { metered: true });
    let finished = Mutex::new(Vec::new());
    let report = queue
        .run(&resident.store, |e| {
            if e.finished {
                finished.lock().expect("events").push(e.hash.clone());
            }
        })
        .await
        .expect("metered download");
    assert_eq!(report.downloaded, vec![thumb.clone(), preview.clone()]);
    assert_eq!(
        *finished.lock().expect("events"),
        vec![thumb.clone(), preview.clone()]
    );
    assert!(resident
        .store
        .media_info(&original)
        .expect("info")
        .is_none_or(|m| !m.present));
    // The app shows the photo full size: fetched now, whatever the policy.
    let path = queue
        .fetch_now(&resident.store, &original, |_| {})
        .await
        .expect("fetch on demand");
    let mine = std::fs::read(coordinator.store.media_file(&original).expect("file")).expect("read");
    assert!(std::fs::read(path).expect("read") == mine);
    // Asking for a hash no item references is a clear error, not a request.
    let unknown = hash_of(b"nobody uses this");
    assert!(matches!(
        queue.fetch_now(&resident.store, &unknown, |_| {}).await,
        Err(quartier_core::Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_metered_links_thumbnails_and_previews_move_only_within_their_bound_as_the_server_has_them() {
    let server = Server::start();
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let resident = join(url, &coordinator, space, Role::Resident, "Nachbarin").await;
    sync_clean(&resident).await;
    let token = token_of(&coordinator);
    let announce_as = |variant: BlobVariant, size: u64| {
        let (url, token) = (url.to_owned(), token.clone());
        async move {
            post_msg(
                &url,
                &format!("/v1/spaces/{space}/blobs"),
                Some(&token),
                &AnnounceBlob {
                    hash: hash_of(&size.to_le_bytes()),
                    size,
                    mime_type: "image/jpeg".into(),
                    chunk_size: BLOB_CHUNK_BYTES,
                    variant: Some(variant),
                },
            )
            .await
        }
    };
    // The server bounds what may be uploaded as a thumbnail or a preview.
    let message = refused(
        &announce_as(BlobVariant::Thumbnail, MAX_THUMBNAIL_BYTES + 1).await,
        413,
        "too_large",
    );
    assert!(
        message.contains("thumbnail") && message.contains(&MAX_THUMBNAIL_BYTES.to_string()),
        "{message}"
    );
    let message = refused(
        &announce_as(BlobVariant::Preview, MAX_PREVIEW_BYTES + 1).await,
        413,
        "too_large",
    );
    assert!(message.contains("preview"), "{message}");
    assert_eq!(
        announce_as(BlobVariant::Thumbnail, MAX_THUMBNAIL_BYTES)
            .await
            .status,
        200
    );
    assert_eq!(
        announce_as(BlobVariant::Preview, MAX_PREVIEW_BYTES).await.status,
        200
    );
    assert_eq!(
        announce_as(BlobVariant::Original, MAX_PREVIEW_BYTES + 1)
            .await
            .status,
        200
    );

    // A member's items call big files thumbnails: one declares its real size, one lies.
    let mut rng = StdRng::seed_from_u64(seed("metered_variants"));
    let big = 2 * CHUNK + 1_000;
    let (honest, liar) = (random_bytes(&mut rng, big), random_bytes(&mut rng, big));
    let (photo_a, photo_b) = (random_bytes(&mut rng, 9_000), random_bytes(&mut rng, 8_000));
    let mut refs = Vec::new();
    for (original, thumbnail, declared) in [(&photo_a, &honest, big as i64), (&photo_b, &liar, 20_000)] {
        let original_hash = upload(url, &token, space, original).await;
        let thumbnail_hash = upload(url, &token, space, thumbnail).await;
        let mut reference = MediaRef::new(original_hash, "image/jpeg", original.len() as i64);
        reference.thumbnail = Some(MediaVariantRef {
            hash: thumbnail_hash,
            mime_type: "image/jpeg".into(),
            size: declared,
            width: 256,
            height: 256,
        });
        refs.push(reference);
    }
    post_with_media(&coordinator, space, "Riesig", Audience::Everyone, refs);
    sync_clean(&coordinator).await;
    sync_clean(&resident).await;

    let queue = TransferQueue::new(&resident.client).expect("queue");
    queue.set_policy(TransferPolicy { metered: true });
    let report = queue.run(&resident.store, |_| {}).await.expect("metered run");
    assert!(
        report.downloaded.is_empty(),
        "nothing moves: {:?}",
        report.downloaded
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        report.deferred, 4,
        "two originals and two oversized thumbnails wait"
    );
    assert_eq!(
        queue.traffic().bytes_received,
        0,
        "not a byte of the big files over the metered link"
    );
    // On an unmetered link the honest one arrives; the lie is caught by its size.
    queue.set_policy(TransferPolicy { metered: false });
    let report = queue.run(&resident.store, |_| {}).await.expect("unmetered run");
    assert!(report.downloaded.contains(&hash_of(&honest)), "{report:?}");
    assert_eq!(
        report.failed.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
        vec![hash_of(&liar).as_str()]
    );
}

/// Stored blob files under a server's data folder.
fn stored_files(data: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(data.join("blobs/stored"))
        .expect("stored folder")
        .flatten()
    {
        for file in std::fs::read_dir(fan.path()).expect("fan-out folder").flatten() {
            out.push(file.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn partial_uploads(data: &std::path::Path) -> usize {
    std::fs::read_dir(data.join("blobs/partial")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_blobs_and_abandoned_uploads_are_collected_after_the_grace_period() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(
        data,
        &[
            ("QUARTIER_SPACE_QUOTA_BYTES", "1000000"),
            ("QUARTIER_BLOB_GC_INTERVAL_SECS", "1"),
            ("QUARTIER_BLOB_GC_GRACE_SECS", "3"),
        ],
    );
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let resident = join(url, &coordinator, space, Role::Resident, "Nachbarin").await;
    sync_clean(&resident).await;
    let token = token_of(&coordinator);
    let mut rng = StdRng::seed_from_u64(seed("gc"));
    let [kept, dropped, loose] = [0; 3].map(|_| random_bytes(&mut rng, 200_000));
    let (kept_hash, dropped_hash, loose_hash) = (
        upload(url, &token, space, &kept).await,
        upload(url, &token, space, &dropped).await,
        upload(url, &token, space, &loose).await,
    );
    post_with_media(
        &coordinator,
        space,
        "Bleibt",
        Audience::Everyone,
        vec![MediaRef::new(&kept_hash, "image/jpeg", 200_000)],
    );
    let gone = post_with_media(
        &coordinator,
        space,
        "Geht",
        Audience::Everyone,
        vec![MediaRef::new(&dropped_hash, "image/jpeg", 200_000)],
    );
    sync_clean(&coordinator).await;
    // An upload that stops after its first chunk, holding 300 000 bytes of quota.
    let abandoned = random_bytes(&mut rng, 300_000);
    let abandoned_hash = hash_of(&abandoned);
    assert_eq!(
        announce(url, &token, space, &abandoned_hash, 300_000)
            .await
            .status,
        200
    );
    assert_eq!(
        put_chunk(url, &token, &abandoned_hash, "0", abandoned[..CHUNK].to_vec())
            .await
            .status,
        200
    );
    let later = random_bytes(&mut rng, 300_000);
    refused(
        &announce(url, &token, space, &hash_of(&later), 300_000).await,
        413,
        "quota_exceeded",
    );
    coordinator
        .store
        .delete_item(gone.id, coordinator.person)
        .expect("delete");
    sync_clean(&coordinator).await;
    // Within the grace period nothing is gone.
    assert_eq!(get(url, &token, &dropped_hash, None).await.0, 200);
    assert_eq!(get(url, &token, &loose_hash, None).await.0, 200);
    assert_eq!(stored_files(server.data.path()).len(), 3);

    let collected = wait_until(std::time::Duration::from_secs(30), || {
        stored_files(server.data.path()) == vec![kept_hash.clone()]
            && partial_uploads(server.data.path()) == 0
    });
    assert!(collected, "left: {:?}", stored_files(server.data.path()));
    assert_eq!(get(url, &token, &dropped_hash, None).await.0, 404);
    assert_eq!(get(url, &token, &loose_hash, None).await.0, 404);
    assert_eq!(
        get(url, &token_of(&resident), &kept_hash, None).await.0,
        200,
        "what items use stays"
    );
    // The abandoned upload starts from nothing, and its quota is free again.
    let state: UploadState = announce(url, &token, space, &abandoned_hash, 300_000)
        .await
        .decode();
    assert!(state.received.is_empty() && !state.complete, "{state:?}");
    assert_eq!(
        announce(url, &token, space, &hash_of(&later), 300_000)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_gc_collects_now_with_the_grace_period_it_is_given() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(data, &[("QUARTIER_BLOB_GC_INTERVAL_SECS", "0")]);
    let url = server.url.as_str();
    let (coordinator, space) = space_with_coordinator(url).await;
    let token = token_of(&coordinator);
    let mut rng = StdRng::seed_from_u64(seed("admin_gc"));
    let (used, unused) = (random_bytes(&mut rng, 10_000), random_bytes(&mut rng, 20_000));
    let used_hash = upload(url, &token, space, &used).await;
    let unused_hash = upload(url, &token, space, &unused).await;
    post_with_media(
        &coordinator,
        space,
        "Foto",
        Audience::Everyone,
        vec![MediaRef::new(&used_hash, "image/jpeg", 10_000)],
    );
    sync_clean(&coordinator).await;
    let data = server.kill();
    // Chunks of an upload the database does not know (written as it was dropped) go too.
    let stray = data.path().join("blobs/partial").join(format!(
        "{}.{}",
        hash_of(b"stray"),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&stray).expect("stray folder");
    std::fs::write(stray.join("0"), b"chunk").expect("stray chunk");
    let gc = |grace: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_quartier-server"))
            .args(["admin", "--data"])
            .arg(data.path())
            .args(["gc", "--grace-secs", grace])
            .env("QUARTIER_LOG", "warn")
            .output()
            .expect("run admin gc");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A day of grace: the unreferenced blob was uploaded just now, it stays.
    let out = gc("86400");
    assert!(out.contains("deleted_blobs: 0"), "{out}");
    assert_eq!(stored_files(data.path()).len(), 2);
    assert!(!stray.exists(), "the stray chunks are gone");
    let out = gc("0");
    assert!(
        out.contains("deleted_blobs: 1") && out.contains("freed_bytes: 20000"),
        "{out}"
    );
    assert_eq!(stored_files(data.path()), vec![used_hash.clone()]);
    let server = Server::start_in(data);
    assert_eq!(get(&server.url, &token, &unused_hash, None).await.0, 404);
    assert_eq!(get(&server.url, &token, &used_hash, None).await.0, 200);
}
