//! Device to device (issue 16): two phones on loopback over the local-network transport (mDNS
//! is not involved: the listener's address is handed over), one holding `--items` posts each with
//! a photo's thumbnail, the other a member that has not synced since they were written; and a
//! QR-code session (2 000-byte frames) for `--qr-posts` posts. Reports wall time, frames and
//! bytes. Both phones got their certificates from a real `quartier-server` process first.
//!
//! ```sh
//! cargo build -p quartier-server --bin quartier-server --example peer_bench
//! ./target/debug/examples/peer_bench            # --items 1000 --qr-posts 20
//! ```

use std::time::Instant;

use quartier_core::media::ImportOptions;
use quartier_core::model::*;
use quartier_core::peer::{PeerOptions, PeerRole, PeerSession, QR_FRAME_BYTES};
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};

mod support;

use support::{arg, scratch_dir, start_server, BoxError};

struct Phone {
    store: Store,
    client: SyncClient,
    person: PersonId,
}

async fn phone(url: &str, dir: &std::path::Path, name: &str) -> Result<Phone, BoxError> {
    let store = Store::open(dir.join(format!("{name}.db")), StoreOptions::default())?;
    let client = SyncClient::new(url)?;
    let account = client.register(&store, Some(name)).await?;
    Ok(Phone {
        store,
        client,
        person: account.person,
    })
}

/// A small photo, different for each `seed`.
fn photo(seed: u32) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(480, 320, |x, y| {
        image::Rgb([
            ((x + seed) % 256) as u8,
            ((y * 3 + seed / 256 * 41) % 256) as u8,
            ((x ^ y ^ (seed * 7)) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    pixels
        .write_to(&mut out, image::ImageFormat::Png)
        .map(|_| out.into_inner())
        .unwrap_or_default()
}

fn post(phone: &Phone, space: SpaceId, title: String, media: Vec<MediaRef>) -> Result<Item, BoxError> {
    Ok(phone.store.create_item(NewItem::new(
        space,
        phone.person,
        ItemContent {
            body: LocalizedText::single("de", format!("{title}: Treffen im Hof, bitte Kuchen mitbringen")),
            media,
            ..ItemContent::new(
                LocalizedText::single("de", title),
                ItemDetails::Post(Post {
                    post_type: PostType::News,
                }),
            )
        },
    ))?)
}

/// A new phone of `role` in `space`, synced (it holds its certificate).
async fn member(
    url: &str,
    dir: &std::path::Path,
    name: &str,
    coordinator: &Phone,
    space: SpaceId,
) -> Result<Phone, BoxError> {
    let joining = phone(url, dir, name).await?;
    let code = coordinator
        .client
        .create_invite(
            &coordinator.store,
            space,
            Role::Volunteer,
            quartier_server::storage::now_ms() + 24 * 60 * 60 * 1000,
            1,
        )
        .await?;
    joining.client.redeem_invite(&joining.store, &code).await?;
    joining.client.sync_now(&joining.store, |_| {}).await?;
    Ok(joining)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let items: usize = arg("--items", 1000);
    let qr_posts: usize = arg("--qr-posts", 20);
    let data = tempfile::tempdir()?;
    let server = start_server(data.path())?;
    let url = server.url.clone();
    let dir = scratch_dir()?;
    let coordinator = phone(&url, dir.path(), "coordinator").await?;
    let space = coordinator
        .store
        .create_space(
            SpaceMeta {
                name: LocalizedText::single("de", "Nippes"),
                description: LocalizedText::single("de", "Veedel"),
                time_zone: "Europe/Berlin".into(),
                default_language: "de".into(),
                categories: Default::default(),
                layers: Default::default(),
            },
            coordinator.person,
        )?
        .id;
    coordinator.client.create_space(&coordinator.store, space).await?;
    coordinator.client.sync_now(&coordinator.store, |_| {}).await?;
    let lan_peer = member(&url, dir.path(), "lan", &coordinator, space).await?;
    let qr_peer = member(&url, dir.path(), "qr", &coordinator, space).await?;

    // The coordinator writes, offline from here on.
    let seeded = Instant::now();
    let mut thumbnail_bytes = 0i64;
    for i in 0..items {
        let imported = coordinator
            .store
            .import_media_bytes(&photo(i as u32), &ImportOptions::default())?;
        thumbnail_bytes += imported.reference.thumbnail.as_ref().map_or(0, |t| t.size);
        post(
            &coordinator,
            space,
            format!("Aushang {i}"),
            vec![imported.reference],
        )?;
    }
    println!(
        "seeded {items} posts with photos in {:.1} s ({} KiB of thumbnails)",
        seeded.elapsed().as_secs_f64(),
        thumbnail_bytes / 1024
    );

    // Local network, loopback: one session, then the thumbnails.
    for store in [&coordinator.store, &lan_peer.store] {
        store.set_nearby(space, true)?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let started = Instant::now();
    let (served, met) = tokio::join!(
        quartier_core::peer::meet_next(&coordinator.store, &listener, true, &|_| {}),
        quartier_core::peer::meet_at(&lan_peer.store, address, true, &|_| {}),
    );
    let wall = started.elapsed();
    let (served, met) = (served?, met?);
    println!(
        "LAN, {items} items + thumbnails: {:.2} s wall; {} changes and {} thumbnails received; \
         session {} frames, {} KiB sent + {} KiB received by the new side; thumbnails {} KiB",
        wall.as_secs_f64(),
        met.changes_received,
        met.media_received,
        met.frames_sent + met.frames_received,
        met.bytes_sent / 1024,
        met.bytes_received / 1024,
        thumbnail_bytes / 1024,
    );
    let _ = served;

    // QR codes, frames of 2 000 bytes shown in turn: a small space of `qr_posts` posts to a
    // member that has none of them; then `qr_posts` new posts in the large space to a member up
    // to date with the rest (taken first, not counted, as an earlier meeting or sync would).
    let small = coordinator
        .store
        .create_space(
            SpaceMeta {
                name: LocalizedText::single("de", "Hausgemeinschaft"),
                description: LocalizedText::single("de", "Haus 12"),
                time_zone: "Europe/Berlin".into(),
                default_language: "de".into(),
                categories: Default::default(),
                layers: Default::default(),
            },
            coordinator.person,
        )?
        .id;
    coordinator.client.create_space(&coordinator.store, small).await?;
    coordinator.client.sync_now(&coordinator.store, |_| {}).await?;
    let code = coordinator
        .client
        .create_invite(
            &coordinator.store,
            small,
            Role::Resident,
            quartier_server::storage::now_ms() + 24 * 60 * 60 * 1000,
            1,
        )
        .await?;
    qr_peer.client.redeem_invite(&qr_peer.store, &code).await?;
    qr_peer.client.sync_now(&qr_peer.store, |_| {}).await?;
    for i in 0..qr_posts {
        post(&coordinator, small, format!("Zettel {i}"), vec![])?;
    }
    let qr = session(&qr_peer.store, &coordinator.store, QR_FRAME_BYTES, Some(small))?;
    println!(
        "QR, a space of {qr_posts} posts: {} changes received, {} codes in all ({} shown by each \
         side), largest {} bytes, {} KiB",
        qr.0,
        qr.1,
        qr.1.div_ceil(2),
        qr.2,
        qr.3 / 1024
    );
    session(&qr_peer.store, &coordinator.store, 1024 * 1024, Some(space))?;
    for i in 0..qr_posts {
        post(&coordinator, space, format!("Zettel {i}"), vec![])?;
    }
    let qr = session(&qr_peer.store, &coordinator.store, QR_FRAME_BYTES, Some(space))?;
    println!(
        "QR, {qr_posts} new posts in the space of {items}: {} changes received, {} codes in all \
         ({} shown by each side), largest {} bytes, {} KiB",
        qr.0,
        qr.1,
        qr.1.div_ceil(2),
        qr.2,
        qr.3 / 1024
    );
    drop(server);
    Ok(())
}

/// A session in frames of `frame_bytes`: (changes received by `a`, frames, largest, bytes).
fn session(
    a: &Store,
    b: &Store,
    frame_bytes: usize,
    only: Option<SpaceId>,
) -> Result<(usize, usize, usize, usize), BoxError> {
    let options = PeerOptions {
        frame_bytes,
        carry: false,
        only_spaces: only.map(|s| vec![s.as_uuid()]),
        ..PeerOptions::default()
    };
    let (mut left, first) = PeerSession::start(a, PeerRole::Initiator, options.clone())?;
    let (mut right, _) = PeerSession::start(b, PeerRole::Responder, options)?;
    let mut frame = first.ok_or("no first frame")?;
    let (mut frames, mut largest, mut bytes) = (0, 0, 0);
    let mut to_right = true;
    loop {
        frames += 1;
        largest = largest.max(frame.len());
        bytes += frame.len();
        let next = if to_right {
            right.receive(b, &frame)?
        } else {
            left.receive(a, &frame)?
        };
        match next {
            Some(f) => frame = f,
            None => break,
        }
        to_right = !to_right;
    }
    Ok((left.report().changes_received, frames, largest, bytes))
}
