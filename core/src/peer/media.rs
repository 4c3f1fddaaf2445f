//! Thumbnails device to device: after a session over the local network, each device asks the
//! other for the thumbnails of the items it holds and lacks (or the file itself where it is
//! small and has none), within the spaces the session shared. A device sends only files that
//! items the asker may read reference; a file is kept only if its content has the hash asked
//! for. Full-size media stays with the server's transfer queue.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::error::Result;
use crate::media::{LocalMedia, MediaVariant};
use crate::model::{permits, Action, Audience, ItemKind, MediaRef, Role};
use crate::store::Store;

/// Largest file that travels device to device (one local-network frame holds it).
pub const MAX_PEER_FILE_BYTES: i64 = 56 * 1024;
/// Most files a device asks for in one session.
pub const MAX_WANTS: usize = 5_000;

/// Who reads, for the permission check: a person (`None`: a guest) and a role per space.
pub(crate) struct Reader {
    pub person: Option<Uuid>,
    pub roles: HashMap<Uuid, Role>,
}

/// The small files that items `reader` may read reference in the spaces it has a role in.
pub(crate) fn shareable(store: &Store, reader: &Reader) -> Result<Vec<LocalMedia>> {
    store.read(|conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT i.space_id, i.kind, i.audience, i.author, m.reference FROM item_media m
             JOIN items i ON i.id = m.item
             WHERE i.status NOT IN ('deleted', 'draft') AND i.audience != 'author_only'
             ORDER BY i.created_at DESC, i.id, m.position",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for row in rows {
            let (space, kind, audience, author, reference) = row?;
            let Ok(space) = Uuid::parse_str(&space) else {
                continue;
            };
            let Some(role) = reader.roles.get(&space) else {
                continue;
            };
            let (Ok(kind), Ok(audience)) = (ItemKind::parse(&kind), audience.parse::<Audience>()) else {
                continue;
            };
            let is_author = reader.person.is_some_and(|p| p.to_string() == author);
            if !permits(*role, Action::Read, kind, audience, is_author) {
                continue;
            }
            let Ok(reference) = serde_json::from_str::<MediaRef>(&reference) else {
                continue;
            };
            let file = match &reference.thumbnail {
                Some(thumbnail) => LocalMedia {
                    hash: thumbnail.hash.clone(),
                    mime_type: thumbnail.mime_type.clone(),
                    size: thumbnail.size,
                    variant: MediaVariant::Thumbnail,
                    of: Some(reference.hash.clone()),
                    on_server: false,
                    pinned: false,
                    present: false,
                },
                None => LocalMedia {
                    hash: reference.hash.clone(),
                    mime_type: reference.mime_type.clone(),
                    size: reference.size,
                    variant: MediaVariant::Original,
                    of: None,
                    on_server: false,
                    pinned: false,
                    present: false,
                },
            };
            if (0..=MAX_PEER_FILE_BYTES).contains(&file.size) && seen.insert(file.hash.clone()) {
                out.push(file);
            }
        }
        Ok(out)
    })
}

/// The files this device lacks of those it may read.
pub(crate) fn wanted(store: &Store, me: &Reader) -> Result<Vec<LocalMedia>> {
    let mut out = Vec::new();
    for file in shareable(store, me)? {
        if out.len() >= MAX_WANTS {
            break;
        }
        if !store.media_info(&file.hash)?.is_some_and(|m| m.present) {
            out.push(file);
        }
    }
    Ok(out)
}

/// A file's bytes for `asker`, if an item it may read references it and it is here.
pub(crate) fn serve(store: &Store, shareable: &HashSet<String>, hash: &str) -> Result<Option<Vec<u8>>> {
    if !shareable.contains(hash) || !store.media_info(hash)?.is_some_and(|m| m.present) {
        return Ok(None);
    }
    Ok(Some(store.read_media(hash)?))
}

/// Keeps a received file if its content has the hash asked for (else `MediaHashMismatch`).
/// With `carry` (store-and-forward), the file is this device's to upload until a server has it,
/// like a file it imported: its transfer queue puts it into the spaces whose items use it (the
/// server, which may have it already from its author, then only records the claim).
pub(crate) fn adopt(store: &Store, expected: &LocalMedia, bytes: &[u8], carry: bool) -> Result<()> {
    let tmp = store.media_temp_dir();
    std::fs::create_dir_all(&tmp).map_err(|e| crate::Error::media_io("creating the temporary folder", e))?;
    let file =
        tempfile::NamedTempFile::new_in(&tmp).map_err(|e| crate::Error::media_io("a temporary file", e))?;
    std::fs::write(file.path(), bytes).map_err(|e| crate::Error::media_io("writing a received file", e))?;
    let (_, path) = file
        .keep()
        .map_err(|e| crate::Error::media_io("keeping a received file", e.error))?;
    let result = store.adopt_downloaded_media(&path, expected);
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result?;
    if carry {
        store.carry_media(&expected.hash)?;
    }
    Ok(())
}
