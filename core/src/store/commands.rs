//! Local writes: every command validates, makes one Automerge change, and stores the change,
//! its outbox entry and the projection rows in one transaction.

use rusqlite::{params, Connection, OptionalExtension};

use super::{access, documents, now, projection, Store, Touched};
use crate::document::{
    guarded, item_from_doc, item_to_json, merge_patch, space_from_doc, space_to_json, write_change,
    write_edit, ChangeNote, Creation, DocKind,
};
use crate::error::{Error, Result};
use crate::model::{Audience, Item, ItemId, ItemPatch, NewItem, PersonId, Space, SpaceId, SpaceMeta, Status};

use documents::LoadedDoc;

/// What an edit kept as a patch reads of its document's row: kind, stored bytes, creation form,
/// whether the document is known not to read (`None`: not known).
type DocumentRow = (String, i64, Option<Vec<u8>>, Option<bool>);

/// Edits of one document kept as patches at most; the next is built at once with them (every
/// load of the document builds them all).
const MAX_PENDING_EDITS: i64 = 64;

/// A document loaded for a local edit, or set aside because its creation form does not rebuild
/// (the edit is then refused with the error, after the setting aside is committed).
enum ForEdit {
    Loaded(Box<LoadedDoc>),
    SetAside(Error),
}

impl Store {
    /// Creates a space; `by` becomes the author of its first change. The space stays on this
    /// device until it is registered with a server: `SyncClient::create_shared_space` does both
    /// in one call.
    pub fn create_space(&self, meta: SpaceMeta, by: PersonId) -> Result<Space> {
        self.create_space_with(meta, by, false)
    }

    /// Creates a space and, with `register`, marks it for registration with the server by the
    /// next sync (in the same transaction, so a space is never created without its mark).
    pub(crate) fn create_space_with(&self, meta: SpaceMeta, by: PersonId, register: bool) -> Result<Space> {
        meta.validate()?;
        let space = Space {
            id: SpaceId::new(),
            meta,
        };
        let json = space_to_json(space.id, &space.meta)?;
        let doc_id = space.id.to_string();
        self.write(|tx, touched| {
            let mut loaded = LoadedDoc::new(DocKind::Space, self.actor());
            loaded.space_id = Some(doc_id.clone());
            self.commit_change(
                tx,
                &doc_id,
                &mut loaded,
                None,
                &json,
                ChangeNote::new(by, ["created"]),
            )?;
            projection::project_space(tx, &space, super::now_ms())?;
            if register {
                tx.execute(
                    "INSERT INTO space_registrations (space_id, requested_at) VALUES (?1, ?2)",
                    params![doc_id, super::now_ms()],
                )?;
            }
            touched.spaces.insert(doc_id.clone());
            Ok(space)
        })
    }

    /// Spaces created here for sharing that the server has not confirmed yet.
    pub(crate) fn spaces_to_register(&self) -> Result<Vec<SpaceId>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.space_id FROM space_registrations r
                 WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.space_id = r.space_id)
                 ORDER BY r.requested_at",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row?.parse()?);
            }
            Ok(out)
        })
    }

    /// Replaces a space's metadata (only fields that differ are written).
    pub fn update_space(&self, id: SpaceId, meta: SpaceMeta, by: PersonId) -> Result<Space> {
        meta.validate()?;
        let doc_id = id.to_string();
        self.write(|tx, touched| {
            let mut loaded = match self.load_doc(tx, &doc_id, DocKind::Space, "space", touched)? {
                ForEdit::Loaded(loaded) => loaded,
                ForEdit::SetAside(refused) => return Ok(Err(refused)),
            };
            access::check_space_edit(self, tx, by, id)?;
            let space = Space { id, meta };
            let json = space_to_json(id, &space.meta)?;
            // Only what differs is written, as for items; a document that does not read as a
            // space is written whole.
            let before = match space_from_doc(&loaded.doc, &doc_id) {
                Ok(current) => Some(space_to_json(id, &current.meta)?),
                Err(_) => None,
            };
            self.commit_change(
                tx,
                &doc_id,
                &mut loaded,
                before.as_ref(),
                &json,
                ChangeNote::new(by, ["meta"]),
            )?;
            projection::project_space(tx, &space, super::now_ms())?;
            touched.spaces.insert(doc_id.clone());
            Ok(Ok(space))
        })?
    }

    /// Creates an item; durable when this returns. The item is kept in creation form
    /// (`documents::store_local_creation`): its Automerge change is built when it is first
    /// pushed or edited, from what this call stored, so no Automerge work happens here.
    pub fn create_item(&self, new: NewItem) -> Result<Item> {
        self.write(|tx, touched| self.create_item_in(tx, touched, new))
    }

    /// [`Store::create_item`] inside the caller's write transaction (imports create many in one).
    pub(crate) fn create_item_in(
        &self,
        tx: &Connection,
        touched: &mut Touched,
        new: NewItem,
    ) -> Result<Item> {
        new.content.validate()?;
        let item = new.into_item(now());
        let doc_id = item.id.to_string();
        let state = documents::creation_state_of(&item, &doc_id)?;
        // The change is about as large as the JSON it writes; a snapshot is never larger.
        let (size, budget) = (state.len(), self.options().document_budget);
        if size > budget {
            return Err(Error::DocumentTooLarge { size, budget });
        }
        let space_id = item.space.to_string();
        let creation = Creation {
            actor: self.actor().to_bytes().to_vec(),
            time_ms: item.created_at.timestamp_millis(),
            message: Some(ChangeNote::new(item.author, ["created"]).encode()),
            state,
            check: Vec::new(),
        };
        require_space(tx, &space_id)?;
        if let Some(parent) = item.content.details.parent() {
            require_item(tx, &parent.to_string())?;
        }
        access::check_item_write(self, tx, item.author, None, &item)?;
        documents::store_local_creation(tx, &doc_id, DocKind::Item, &space_id, &creation, super::now_ms())?;
        projection::project_item(tx, &item)?;
        touched.spaces.insert(space_id);
        touched.items.insert(doc_id);
        Ok(item)
    }

    /// Edits an item: the fields set in `patch` change, the rest stays (and merges with
    /// concurrent edits of other fields). A patch that changes nothing writes nothing.
    pub fn update_item(&self, id: ItemId, patch: &ItemPatch, by: PersonId) -> Result<Item> {
        patch.validate()?;
        self.change_item(id, by, patch.fields(), |current| {
            let content = patch.apply_to(current)?;
            content.validate()?;
            Ok(content)
        })
    }

    /// Deletes an item (a tombstone: it disappears from every query, its history remains until
    /// [`Store::erase_item`]).
    pub fn delete_item(&self, id: ItemId, by: PersonId) -> Result<()> {
        self.change_item(id, by, vec!["status"], |current| {
            let mut content = current.clone();
            content.status = Status::Deleted;
            Ok(content)
        })?;
        Ok(())
    }

    fn change_item(
        &self,
        id: ItemId,
        by: PersonId,
        fields: Vec<&'static str>,
        edit: impl Fn(&crate::model::ItemContent) -> Result<crate::model::ItemContent>,
    ) -> Result<Item> {
        self.write(|tx, touched| self.change_item_in(tx, touched, id, by, fields, edit))?
    }

    /// [`Store::update_item`]'s work inside the caller's write transaction. The outer error
    /// rolls the transaction back; the inner one (an edit of a document set aside) keeps what
    /// setting it aside wrote. An edit is kept as a patch when it can be ([`Self::edit_as_patch`]),
    /// and built at once otherwise.
    pub(crate) fn change_item_in(
        &self,
        tx: &Connection,
        touched: &mut Touched,
        id: ItemId,
        by: PersonId,
        fields: Vec<&'static str>,
        edit: impl Fn(&crate::model::ItemContent) -> Result<crate::model::ItemContent>,
    ) -> Result<Result<Item>> {
        let doc_id = id.to_string();
        if let Some(item) = self.edit_as_patch(tx, touched, &doc_id, by, &fields, &edit)? {
            return Ok(Ok(item));
        }
        {
            let mut loaded = match self.load_doc(tx, &doc_id, DocKind::Item, "item", touched)? {
                ForEdit::Loaded(loaded) => loaded,
                ForEdit::SetAside(refused) => return Ok(Err(refused)),
            };
            let current = item_from_doc(&loaded.doc, &doc_id)?;
            // Read: its later edits may be kept as patches.
            tx.prepare_cached(
                "UPDATE documents SET unreadable = 0 WHERE doc_id = ?1 AND unreadable IS NOT 0",
            )?
            .execute([&doc_id])?;
            let content = edit(&current.content)?;
            if content == current.content {
                return Ok(Ok(current));
            }
            let item = Item {
                updated_at: now(),
                content,
                ..current.clone()
            };
            access::check_item_write(self, tx, by, Some(&current), &item)?;
            let json = item_to_json(&item)?;
            let change = if leaves_its_author_for_the_first_time(tx, &doc_id, &loaded, &current, &item)? {
                // Its private history goes: the server judges every change, and refuses the
                // ones that made or edited an author-only item. It is created afresh, as it is.
                documents::erase(tx, &doc_id, documents::Records::Erase, touched)?;
                tx.execute("DELETE FROM item_history WHERE item_id = ?1", [&doc_id])?;
                let mut fresh = LoadedDoc::new(DocKind::Item, self.actor());
                fresh.space_id = loaded.space_id.clone();
                self.commit_change(
                    tx,
                    &doc_id,
                    &mut fresh,
                    None,
                    &json,
                    ChangeNote::new(by, ["created"]),
                )?
            } else {
                {
                    // Only the fields that differ are read and written in the document.
                    let before = item_to_json(&current)?;
                    self.commit_change(
                        tx,
                        &doc_id,
                        &mut loaded,
                        Some(&before),
                        &json,
                        ChangeNote::new(by, fields),
                    )?
                }
            };
            projection::project_item(tx, &item)?;
            if let Some(change) = change {
                projection::record_history(tx, &doc_id, &change)?;
            }
            touched.spaces.insert(item.space.to_string());
            touched.items.insert(doc_id.clone());
            Ok(Ok(item))
        }
    }

    /// Makes an edit without loading the item's document: the item is read from its
    /// projection, the edit is stored as the merge patch it makes to the item's JSON in a new
    /// outbox entry (`documents::PendingEdit`), and its change is built when the document is
    /// next loaded (a push, a merge, an edit built at once). `None` when the edit must be built
    /// at once (`docs/store.md`, "Edits kept as patches"): the item has no readable projection,
    /// or its document is not known to read; the edit makes an author-only item shareable (which
    /// replaces its history, [`leaves_its_author_for_the_first_time`]); the document may be near
    /// its budget or has [`MAX_PENDING_EDITS`] waiting; or it is kept in a creation form with a
    /// check, which its first build must check.
    fn edit_as_patch(
        &self,
        tx: &Connection,
        touched: &mut Touched,
        doc_id: &str,
        by: PersonId,
        fields: &[&'static str],
        edit: &impl Fn(&crate::model::ItemContent) -> Result<crate::model::ItemContent>,
    ) -> Result<Option<Item>> {
        let row: Option<DocumentRow> = tx
            .prepare_cached(
                "SELECT kind, snapshot_bytes + change_bytes, creation, unreadable FROM documents WHERE doc_id = ?1",
            )?
            .query_row([doc_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((kind, stored_bytes, creation, unreadable)) = row else {
            return Ok(None);
        };
        // A document merged into a form this core does not read (a newer core's) keeps its last
        // readable projection: an edit is built at once, which refuses it, rather than written
        // over what the person never saw. Not known (`None`) for a document stored before
        // schema 29: its first edit is built at once, which reads it.
        if kind != DocKind::Item.as_str() || unreadable != Some(false) {
            return Ok(None);
        }
        let current = match crate::query::item_by_id(tx, doc_id) {
            Ok(Some(item)) if item.id.to_string() == doc_id => item,
            Ok(_) | Err(Error::Corrupt(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let content = edit(&current.content)?;
        if content == current.content {
            return Ok(Some(current));
        }
        if current.content.audience == Audience::AuthorOnly && content.audience != Audience::AuthorOnly {
            return Ok(None);
        }
        let item = Item {
            updated_at: now(),
            content,
            ..current.clone()
        };
        access::check_item_write(self, tx, by, Some(&current), &item)?;
        let before = item_to_json(&current)?;
        let Some(patch) = merge_patch::diff_document(DocKind::Item, &before, &item_to_json(&item)?) else {
            return Ok(None);
        };
        let patch = patch.to_string();
        // Only a built document tells its size: past a generous estimate, or past a number of
        // edits every load would build again, the edit is built at once (with the ones waiting)
        // and measured. A change is about as large as the JSON it writes; a stored patch is
        // compressed; a creation form's stored bytes leave out the state its projection gives.
        let (waiting, waiting_bytes) = documents::pending_edits(tx, doc_id)?;
        let state = match creation {
            Some(_) => serde_json::to_string(&before).map_or(usize::MAX, |json| json.len()),
            None => 0,
        };
        let estimate = usize::try_from(stored_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(state)
            .saturating_add(
                usize::try_from(waiting_bytes)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(10),
            )
            .saturating_add(patch.len().saturating_mul(2));
        if waiting >= MAX_PENDING_EDITS || estimate > self.options().document_budget {
            return Ok(None);
        }
        if creation.is_some_and(|stored| !documents::form_takes_patches(doc_id, &stored)) {
            return Ok(None);
        }
        let space_id = item.space.to_string();
        let pending = documents::PendingEdit {
            actor: self.actor().to_bytes().to_vec(),
            time_ms: super::now_ms(),
            note: ChangeNote::new(by, fields.iter().copied()),
            patch,
        };
        documents::store_local_edit(tx, doc_id, &space_id, &pending, super::now_ms())?;
        projection::project_item_over(tx, Some(&current), &item)?;
        touched.spaces.insert(space_id);
        touched.items.insert(doc_id.to_owned());
        Ok(Some(item))
    }

    /// Erases an item for a data-protection request: its document, every change, its outbox
    /// entries, its projections and history, and the same for its comments, are removed from
    /// the database file (secure delete) and the WAL is checkpointed.
    pub fn erase_item(&self, id: ItemId) -> Result<usize> {
        let doc_id = id.to_string();
        let erased = self.write(|tx, touched| {
            erase_in(tx, &doc_id, touched)?.ok_or_else(|| Error::NotFound {
                what: "item",
                id: doc_id.clone(),
            })
        })?;
        // A reader holding an old snapshot can hold the truncation back: the checkpoint is then
        // owed and tried again after the next sync.
        self.checkpoint_after_erasure();
        Ok(erased)
    }

    /// Loads a document for a local edit. A stored creation form that does not rebuild is set
    /// aside as a merge sets it aside (`documents::distrust_creation`: the document leaves the
    /// device and comes again with its space at the next sync), and the edit is refused as
    /// `NotFound`: the caller commits the setting aside and returns that error, so that the next
    /// edit does not meet the same form again.
    fn load_doc(
        &self,
        tx: &Connection,
        doc_id: &str,
        kind: DocKind,
        what: &'static str,
        touched: &mut super::Touched,
    ) -> Result<ForEdit> {
        let not_found = || Error::NotFound {
            what,
            id: doc_id.to_owned(),
        };
        match documents::load_checked(tx, doc_id, self.actor())? {
            Ok(Some(loaded)) if loaded.kind == kind => Ok(ForEdit::Loaded(Box::new(loaded))),
            Ok(_) => Err(not_found()),
            Err(documents::UnbuildableCreation(reason)) => {
                if let Some(space) = documents::distrust_creation(tx, doc_id, &reason, super::now_ms())? {
                    documents::refetch_space(tx, &space)?;
                    touched.spaces.insert(space);
                }
                touched.items.insert(doc_id.to_owned());
                Ok(ForEdit::SetAside(not_found()))
            }
        }
    }

    /// Makes the change, enforces the document budget, stores change and outbox entry, and
    /// compacts when due. Returns the change, or `None` if the document was already `target`.
    /// With `before` (what the document reads back as now), only what differs from it is read
    /// and written (`write_edit`).
    fn commit_change(
        &self,
        tx: &Connection,
        doc_id: &str,
        loaded: &mut LoadedDoc,
        before: Option<&serde_json::Value>,
        target: &serde_json::Value,
        note: ChangeNote,
    ) -> Result<Option<automerge::Change>> {
        let (doc, kind, now) = (&mut loaded.doc, loaded.kind, super::now_ms());
        let written = match before {
            Some(before) => write_edit(doc, doc_id, kind, before, target, &note, now)?,
            None => write_change(doc, doc_id, kind, target, &note, now)?,
        };
        let Some(change) = written else {
            return Ok(None);
        };
        let budget = self.options().document_budget;
        let estimate = loaded.stored_bytes() as usize + loaded.unsettled_bytes() + change.raw_bytes().len();
        if estimate > budget {
            // Incremental changes overstate the size; only a real snapshot decides.
            let size = guarded::save(&loaded.doc)
                .map_err(|e| Error::Corrupt(format!("saving {doc_id}: {e}")))?
                .len();
            if size > budget {
                return Err(Error::DocumentTooLarge { size, budget });
            }
        }
        documents::store_change(tx, doc_id, loaded, &change, super::now_ms())?;
        documents::compact_if_due(tx, doc_id, loaded)?;
        let space = loaded.space_id.clone().unwrap_or_default();
        documents::enqueue(tx, doc_id, loaded.kind, &space, &change, super::now_ms())?;
        Ok(Some(change))
    }
}

/// Whether an edit makes an author-only item shareable while none of its changes has ever left
/// the device (all of them still wait in the outbox, held back as author-only).
fn leaves_its_author_for_the_first_time(
    tx: &Connection,
    doc_id: &str,
    loaded: &LoadedDoc,
    current: &Item,
    new: &Item,
) -> Result<bool> {
    if current.content.audience != Audience::AuthorOnly || new.content.audience == Audience::AuthorOnly {
        return Ok(false);
    }
    let history = guarded::changes_since(&loaded.doc, &[])
        .map_err(|e| Error::Corrupt(format!("history of {doc_id}: {e}")))?
        .len();
    // Edits kept as patches count once built; one that does not build is in neither.
    Ok(documents::waiting_built(tx, doc_id, loaded)? == history)
}

fn require_space(conn: &Connection, space_id: &str) -> Result<()> {
    // Cached: every create asks.
    let known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM spaces WHERE space_id = ?1")?
        .query_row([space_id], |r| r.get(0))
        .optional()?;
    known.map(|_| ()).ok_or_else(|| Error::NotFound {
        what: "space",
        id: space_id.to_owned(),
    })
}

fn require_item(conn: &Connection, item_id: &str) -> Result<()> {
    // Cached: every create asks.
    let known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM items WHERE item_id = ?1 AND status != 'deleted'")?
        .query_row([item_id], |r| r.get(0))
        .optional()?;
    known.map(|_| ()).ok_or_else(|| Error::NotFound {
        what: "item",
        id: item_id.to_owned(),
    })
}

/// Erases an item and its comments inside a write (see [`Store::erase_item`]); how many
/// documents went, or `None` when the store does not hold the item.
pub(crate) fn erase_in(tx: &Connection, doc_id: &str, touched: &mut super::Touched) -> Result<Option<usize>> {
    let space: Option<String> = tx
        .query_row(
            "SELECT space_id FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let Some(space) = space else {
        return Ok(None);
    };
    let mut doomed = vec![doc_id.to_owned()];
    let mut stmt = tx.prepare("SELECT item_id FROM items WHERE parent_id = ?1")?;
    for child in stmt.query_map([doc_id], |r| r.get::<_, String>(0))? {
        doomed.push(child?);
    }
    for doc in &doomed {
        documents::erase(tx, doc, documents::Records::Erase, touched)?;
        projection::remove_item(tx, doc)?;
        // The source key stays, without the item: the same record is not imported again.
        tx.prepare_cached("UPDATE imported_items SET item_id = '' WHERE item_id = ?1")?
            .execute([doc])?;
        touched.items.insert(doc.clone());
    }
    touched.words_removed = true;
    touched.spaces.insert(space);
    Ok(Some(doomed.len()))
}
