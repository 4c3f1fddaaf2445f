//! Merging changes made elsewhere, through the same path as a local write: the changes are
//! stored with their document and the projections are rewritten from the merged document, in
//! one transaction. Also the projection rebuild that a schema upgrade asks for.

use std::collections::BTreeMap;

use automerge::Change;
use rusqlite::Connection;

use super::documents::{self, LoadedDoc};
use super::projection::{self, ItemRows};
use super::{Store, Touched};
use crate::document::{
    guarded, item_from_doc, item_from_json, space_from_doc, space_from_json, Creation, DocKind,
};
use crate::error::{Error, Result};
use crate::model::{Item, Space, SpaceId};

use super::IncomingChange;

/// What a merge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Changes new to this store and applied.
    pub applied: usize,
    /// Changes this store already had.
    pub duplicates: usize,
    /// Changes stored but waiting for changes they depend on.
    pub waiting: usize,
    /// Documents whose merged content this version cannot read (kept, not shown).
    pub unreadable: Vec<String>,
}

/// Changes grouped by document, decoded.
pub(crate) type DecodedChanges<'a> = BTreeMap<&'a str, (DocKind, Vec<Change>)>;

/// Decodes every change first: one malformed change refuses the whole batch.
pub(crate) fn decode_incoming(incoming: &[IncomingChange]) -> Result<DecodedChanges<'_>> {
    let mut by_doc: DecodedChanges<'_> = BTreeMap::new();
    for change in incoming {
        let malformed = |reason: String| Error::MalformedChange {
            doc: change.doc_id.chars().take(40).collect(),
            reason,
        };
        uuid::Uuid::parse_str(&change.doc_id)
            .map_err(|_| malformed("the document id is not a UUID".into()))?;
        let decoded = guarded::decode(change.bytes.clone()).map_err(|e| malformed(e.to_string()))?;
        if !crate::document::checksum_matches(&change.bytes, &decoded) {
            return Err(malformed(
                "the change's checksum does not match its contents".into(),
            ));
        }
        let entry = by_doc
            .entry(change.doc_id.as_str())
            .or_insert_with(|| (change.kind, Vec::new()));
        if entry.0 != change.kind {
            return Err(malformed(
                "the same document is sent as an item and as a space".into(),
            ));
        }
        entry.1.push(decoded);
    }
    Ok(by_doc)
}

impl Store {
    /// Applies changes from another store or the network. Every change is decoded first: if
    /// any is malformed, nothing is stored. Duplicates and any order are fine; a change whose
    /// dependencies are missing is kept and applied when they arrive.
    pub fn apply_changes(&self, incoming: &[IncomingChange]) -> Result<MergeReport> {
        let by_doc = decode_incoming(incoming)?;
        self.write(|tx, touched| self.merge_decoded(tx, by_doc, touched))
    }

    /// Merges decoded changes inside the caller's transaction (sync applies pages this way).
    pub(crate) fn merge_decoded(
        &self,
        tx: &Connection,
        by_doc: DecodedChanges<'_>,
        touched: &mut Touched,
    ) -> Result<MergeReport> {
        let mut report = MergeReport::default();
        for (doc_id, (kind, changes)) in by_doc {
            self.merge_document(tx, doc_id, kind, changes, &mut report, touched)?;
        }
        Ok(report)
    }

    fn merge_document(
        &self,
        tx: &Connection,
        doc_id: &str,
        kind: DocKind,
        changes: Vec<Change>,
        report: &mut MergeReport,
        touched: &mut Touched,
    ) -> Result<()> {
        let (loaded, distrusted) = match documents::load_checked(tx, doc_id, self.actor())? {
            Ok(loaded) => (loaded, None),
            Err(documents::UnbuildableCreation(reason)) => {
                let space = documents::distrust_creation(tx, doc_id, &reason, super::now_ms())?;
                (None, Some(space))
            }
        };
        let mut loaded = loaded.unwrap_or_else(|| LoadedDoc::new(kind, self.actor()));
        let waiting_before = report.waiting;
        self.merge_into(tx, doc_id, kind, &mut loaded, changes, report, touched)?;
        // A document set aside comes again with its space, unless what was merged (a snapshot)
        // already brought it back whole: refetching for every such document of a space would
        // start the space over once per page.
        if let Some(space) = distrusted.flatten() {
            if loaded.doc.get_heads().is_empty() || report.waiting > waiting_before {
                documents::refetch_space(tx, &space)?;
                touched.refetch.insert(space);
            }
        }
        Ok(())
    }

    /// Applies `changes` to a loaded document, stores them and rewrites its projection.
    #[allow(clippy::too_many_arguments)]
    fn merge_into(
        &self,
        tx: &Connection,
        doc_id: &str,
        kind: DocKind,
        loaded: &mut LoadedDoc,
        changes: Vec<Change>,
        report: &mut MergeReport,
        touched: &mut Touched,
    ) -> Result<()> {
        if loaded.kind != kind {
            return Err(Error::MalformedChange {
                doc: doc_id.to_owned(),
                reason: format!("the store holds this document as a {}", loaded.kind.as_str()),
            });
        }
        let before = loaded.doc.get_heads();
        let mut fresh = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for change in changes {
            // The same change twice in one batch counts (and is stored) once.
            if loaded.doc.get_change_meta_by_hash(&change.hash()).is_some() || !seen.insert(change.hash()) {
                report.duplicates += 1;
            } else {
                fresh.push(change);
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        // On an error the transaction rolls back and the document is thrown away with it.
        guarded::apply(&mut loaded.doc, fresh.clone()).map_err(|e| Error::MalformedChange {
            doc: doc_id.to_owned(),
            reason: e.to_string(),
        })?;
        for change in &fresh {
            if loaded.doc.get_change_meta_by_hash(&change.hash()).is_some() {
                report.applied += 1;
            } else {
                report.waiting += 1;
            }
            documents::store_change(tx, doc_id, loaded, change, super::now_ms())?;
        }
        if loaded.doc.get_heads() != before {
            self.reproject(tx, doc_id, loaded, &before, report, touched)?;
        }
        documents::compact_if_due(tx, doc_id, loaded)?;
        Ok(())
    }

    /// Applies documents in their creation form, in one transaction: the bulk path that the
    /// initial sync, imports and the bench generator share. Documents new to the store are kept
    /// in their form (`store_creations`); a creation of a document the store has is
    /// rebuilt and merged as a change, and if it does not rebuild nothing is stored
    /// ([`Error::MalformedChange`]).
    ///
    /// For documents a server holds (what an initial sync brings, or bench data): a stored form
    /// that later fails to rebuild is set aside and fetched again from the server. Content made
    /// on this device (an import of a file) must be written as local changes instead, which the
    /// outbox keeps until a server has them.
    ///
    /// Every form is checked ([`IncomingCreation::validate`], on the threads that read the forms):
    /// a malformed one refuses the whole call and nothing is stored.
    pub fn apply_creations(&self, creations: Vec<IncomingCreation>) -> Result<MergeReport> {
        self.write(|tx, touched| {
            let mut report = MergeReport::default();
            if let CreationsApplied::Unbuildable(e) =
                self.merge_creations(tx, creations, &mut report, touched)?
            {
                return Err(e);
            }
            Ok(report)
        })
    }

    /// [`Store::apply_creations`] inside the caller's transaction; a malformed form, or a
    /// creation of a known document that does not rebuild, stops it (what was applied before
    /// stays in `tx`).
    pub(crate) fn merge_creations(
        &self,
        tx: &Connection,
        creations: Vec<IncomingCreation>,
        report: &mut MergeReport,
        touched: &mut Touched,
    ) -> Result<CreationsApplied> {
        let known = self.store_creations(tx, creations, report, touched)?;
        let mut rebuilt = Vec::new();
        for creation in known {
            match crate::document::rebuild_creation(&creation.creation, &creation.doc_id, creation.kind) {
                Ok(change) => rebuilt.push(IncomingChange {
                    doc_id: creation.doc_id,
                    kind: creation.kind,
                    bytes: change.raw_bytes().to_vec(),
                }),
                Err(e) => return Ok(CreationsApplied::Unbuildable(e.into())),
            }
        }
        let merged = self.merge_decoded(tx, decode_incoming(&rebuilt)?, touched)?;
        report.applied += merged.applied;
        report.duplicates += merged.duplicates;
        report.waiting += merged.waiting;
        report.unreadable.extend(merged.unreadable);
        Ok(CreationsApplied::Done)
    }

    /// Stores documents received in their creation form that are new to this store, without
    /// building them (history on demand, `documents::store_creation`), and projects each from
    /// the JSON it carries. Returns the ones the store already has, to be merged as changes.
    ///
    /// Each form is read and encoded on other threads ([`PreparedCreation`]) while this one
    /// stores the forms before it: the writer is left with the SQL.
    fn store_creations(
        &self,
        tx: &Connection,
        creations: Vec<IncomingCreation>,
        report: &mut MergeReport,
        touched: &mut Touched,
    ) -> Result<Vec<IncomingCreation>> {
        let mut known = Vec::new();
        let now = super::now_ms();
        super::parallel::map_in_order(creations, PreparedCreation::checked, |prepared| {
            let prepared = prepared?;
            let space = prepared.space();
            let incoming = &prepared.incoming;
            if !documents::store_creation(
                tx,
                &incoming.doc_id,
                incoming.kind,
                space.as_deref(),
                &prepared.stored,
                now,
            )? {
                known.push(prepared.incoming);
                return Ok(());
            }
            report.applied += 1;
            project_creation(tx, &prepared.incoming, prepared.read, report, touched, now)
        })?;
        Ok(known)
    }

    /// Rewrites the projection of a document from its content, and records the history of the
    /// changes applied since `since`.
    pub(super) fn reproject(
        &self,
        tx: &Connection,
        doc_id: &str,
        loaded: &mut LoadedDoc,
        since: &[automerge::ChangeHash],
        report: &mut MergeReport,
        touched: &mut Touched,
    ) -> Result<()> {
        match loaded.kind {
            DocKind::Item => {
                let history = guarded::changes_since(&loaded.doc, since)
                    .map_err(|e| Error::Corrupt(format!("history of {doc_id}: {e}")))?;
                for change in history {
                    projection::record_history(tx, doc_id, &change)?;
                }
                match item_from_doc(&loaded.doc, doc_id) {
                    Ok(item) if item.id.to_string() == doc_id => {
                        let space = item.space.to_string();
                        tx.execute(
                            "UPDATE documents SET space_id = ?2, unreadable = 0 WHERE doc_id = ?1",
                            [doc_id, &space],
                        )?;
                        loaded.space_id = Some(space.clone());
                        projection::project_item(tx, &item)?;
                        crate::notifications::item_arrived(tx, &item, touched)?;
                        touched.spaces.insert(space);
                        touched.items.insert(doc_id.to_owned());
                    }
                    Ok(_) => {
                        mark_unreadable(tx, doc_id)?;
                        report.unreadable.push(doc_id.to_owned());
                    }
                    Err(e) => {
                        tracing::debug!(doc = doc_id, error = %e, "merged item not readable yet");
                        mark_unreadable(tx, doc_id)?;
                        report.unreadable.push(doc_id.to_owned());
                    }
                }
            }
            DocKind::Space => match space_from_doc(&loaded.doc, doc_id) {
                Ok(space) if space.id.to_string() == doc_id && space.meta.validate().is_ok() => {
                    tx.execute("UPDATE documents SET space_id = ?1 WHERE doc_id = ?1", [doc_id])?;
                    projection::project_space(tx, &space, super::now_ms())?;
                    touched.spaces.insert(doc_id.to_owned());
                }
                _ => report.unreadable.push(doc_id.to_owned()),
            },
        }
        Ok(())
    }

    /// Rebuilds every projection from the documents (after a schema upgrade, or on request).
    pub fn rebuild_projections(&self) -> Result<()> {
        self.write(|tx, touched| {
            tx.execute("DELETE FROM projection_rebuild", [])?;
            // Entries whose change could not be built are tried again with what the rebuild
            // brings back.
            tx.execute(
                "UPDATE outbox SET deferred_since = NULL, defer_reason = NULL WHERE defer_reason = ?1",
                [super::outbox::CANNOT_BUILD],
            )?;
            tx.execute(
                "UPDATE outbox SET deferred_since = NULL, defer_reason = NULL WHERE defer_reason = ?1",
                [super::outbox::EDIT_CANNOT_BUILD],
            )?;
            documents::keep_creation_states(tx)?;
            super::search_index::clear(tx)?;
            for table in [
                "item_tags",
                "item_media",
                "item_json",
                "items_geo",
                "offer_hours",
                "event_series",
                "items",
                "spaces",
                "item_history",
            ] {
                tx.execute(&format!("DELETE FROM {table}"), [])?;
            }
            let mut ids = Vec::new();
            {
                let mut stmt = tx.prepare("SELECT doc_id FROM documents ORDER BY kind DESC, doc_id")?;
                for id in stmt.query_map([], |r| r.get::<_, String>(0))? {
                    ids.push(id?);
                }
            }
            let mut report = MergeReport::default();
            for doc_id in ids {
                // A form with edits kept as patches is built with them, below.
                let edited = documents::pending_edits(tx, &doc_id)?.0 > 0;
                if let Some(incoming) = documents::stored_creation(tx, &doc_id)?.filter(|_| !edited) {
                    let prepared = PreparedCreation::of(incoming)?;
                    project_creation(
                        tx,
                        &prepared.incoming,
                        prepared.read,
                        &mut report,
                        touched,
                        super::now_ms(),
                    )?;
                    documents::write_stored_creation(tx, &doc_id, &prepared.stored)?;
                    continue;
                }
                let loaded = match documents::load_checked(tx, &doc_id, self.actor()) {
                    Ok(Ok(loaded)) => loaded,
                    // A document that cannot be read but waits in the outbox (its content is
                    // nowhere else) stays as it is, unprojected: a rebuild never fails the
                    // store's opening over one document.
                    Err(Error::Corrupt(reason)) => {
                        tracing::error!(doc = %doc_id, %reason, "a document is not readable during rebuild");
                        report.unreadable.push(doc_id.clone());
                        None
                    }
                    Err(e) => return Err(e),
                    Ok(Err(documents::UnbuildableCreation(reason))) => {
                        if let Some(space) =
                            documents::distrust_creation(tx, &doc_id, &reason, super::now_ms())?
                        {
                            documents::refetch_space(tx, &space)?;
                        }
                        None
                    }
                };
                if let Some(mut loaded) = loaded {
                    // Edits kept as patches get their history rows with their hashes.
                    documents::settle(tx, &doc_id, &mut loaded)?;
                    self.reproject(tx, &doc_id, &mut loaded, &[], &mut report, touched)?;
                }
            }
            if !report.unreadable.is_empty() {
                tracing::warn!(
                    count = report.unreadable.len(),
                    "documents not readable during rebuild"
                );
            }
            Ok(())
        })
    }

    /// The heads of a document, hex, sorted: equal heads mean equal documents.
    pub fn document_heads(&self, doc_id: &str) -> Result<Vec<String>> {
        self.read(|conn| {
            let loaded = documents::load(conn, doc_id, self.actor())?.ok_or_else(|| Error::NotFound {
                what: "document",
                id: doc_id.to_owned(),
            })?;
            let mut heads: Vec<String> = loaded.doc.get_heads().iter().map(|h| h.to_string()).collect();
            heads.sort();
            Ok(heads)
        })
    }

    /// Ids of every document in the store with its kind, sorted.
    pub fn document_ids(&self) -> Result<Vec<(String, DocKind)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT doc_id, kind FROM documents ORDER BY doc_id")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, kind) = row?;
                if let Some(kind) = DocKind::parse(&kind) {
                    out.push((id, kind));
                }
            }
            Ok(out)
        })
    }

    /// Every change of a document, for handing to another store (tests, device-to-device).
    pub fn document_changes(&self, doc_id: &str) -> Result<Vec<IncomingChange>> {
        self.read(|conn| {
            let loaded = documents::load(conn, doc_id, self.actor())?.ok_or_else(|| Error::NotFound {
                what: "document",
                id: doc_id.to_owned(),
            })?;
            Ok(guarded::changes_since(&loaded.doc, &[])
                .map_err(|e| Error::Corrupt(format!("history of {doc_id}: {e}")))?
                .into_iter()
                .map(|c| IncomingChange {
                    doc_id: doc_id.to_owned(),
                    kind: loaded.kind,
                    bytes: c.raw_bytes().to_vec(),
                })
                .collect())
        })
    }
}

/// Marks an item's document as merged into a form this core does not read (see
/// `documents.unreadable`).
fn mark_unreadable(tx: &Connection, doc_id: &str) -> Result<()> {
    tx.prepare_cached("UPDATE documents SET unreadable = 1 WHERE doc_id = ?1")?
        .execute([doc_id])?;
    Ok(())
}

/// A document arriving in its creation form (`Record::Created`, an import, the bench generator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingCreation {
    pub doc_id: String,
    pub kind: DocKind,
    /// The space the record came in (a page's space); an item's own JSON names its space when
    /// this core can read it, this one counts for a document it cannot (so that it can be fetched
    /// again with its space).
    pub space: Option<SpaceId>,
    pub creation: Creation,
}

impl IncomingCreation {
    /// The checks that need no building: a UUID document id, actor and check of the right
    /// lengths, a state that is a JSON map. A form that passes them and still does not rebuild
    /// is found when the document is first built.
    pub fn validate(&self) -> Result<()> {
        self.checked_state().map(drop)
    }

    /// The checks of [`IncomingCreation::validate`], giving back the state they parsed.
    fn checked_state(&self) -> Result<serde_json::Value> {
        let malformed = |reason: &str| Error::MalformedChange {
            doc: self.doc_id.chars().take(40).collect(),
            reason: format!("creation: {reason}"),
        };
        if uuid::Uuid::parse_str(&self.doc_id).is_err() {
            return Err(malformed("the document id is not a UUID"));
        }
        if self.creation.actor.is_empty() || self.creation.actor.len() > 64 {
            return Err(malformed("actor id of a wrong length"));
        }
        if self.creation.check.len() != crate::document::CREATION_CHECK_LEN {
            return Err(malformed("check of a wrong length"));
        }
        match serde_json::from_str::<serde_json::Value>(&self.creation.state) {
            Ok(state @ serde_json::Value::Object(_)) => Ok(state),
            _ => Err(malformed("the state is not a JSON map")),
        }
    }
}

/// How [`Store::merge_creations`] ended.
pub(crate) enum CreationsApplied {
    Done,
    /// A creation of a document the store has did not rebuild.
    Unbuildable(Error),
}

/// What a creation form's JSON reads as, when this core can read it.
enum Readable {
    Item(Box<Item>, ItemRows),
    Space(Space),
}

/// A creation form read, compared with what its projection would give back, and encoded for
/// `documents.creation`: everything of storing it that needs no connection, made on other
/// threads by the bulk path (`parallel`).
struct PreparedCreation {
    incoming: IncomingCreation,
    /// `None` when this core cannot read it (kept, not shown, as for merged documents).
    read: Option<Readable>,
    /// The form as stored: without its state when the projection gives that back exactly
    /// (`documents::state_from_projection` reads it back).
    stored: Vec<u8>,
}

impl PreparedCreation {
    /// A form received: checked first ([`IncomingCreation::validate`], which parses the state
    /// once for both).
    fn checked(incoming: IncomingCreation) -> Result<Self> {
        let state = incoming.checked_state()?;
        Self::with_state(incoming, Some(state))
    }

    /// A form stored here (it may be one made here, without a check, or one whose state does
    /// not parse: it is then kept, not shown).
    fn of(incoming: IncomingCreation) -> Result<Self> {
        let state = serde_json::from_str(&incoming.creation.state).ok();
        Self::with_state(incoming, state)
    }

    fn with_state(incoming: IncomingCreation, state: Option<serde_json::Value>) -> Result<Self> {
        let (read, in_projection) = read_creation_state(&incoming, state)?;
        // A form made here and not sent keeps its state: it is the only copy.
        let keep_state = incoming.creation.check.is_empty() || !in_projection;
        let stored = documents::encode_creation(&incoming.doc_id, &incoming.creation, keep_state)?;
        Ok(Self {
            incoming,
            read,
            stored,
        })
    }

    /// The space its document is stored with: an item's own, a space itself, or else the one it
    /// came in (so that a document this core cannot read is fetched again with its space).
    fn space(&self) -> Option<String> {
        match &self.read {
            Some(Readable::Item(item, _)) => Some(item.space.to_string()),
            Some(Readable::Space(_)) => Some(self.incoming.doc_id.clone()),
            None => self.incoming.space.map(|s| s.to_string()),
        }
    }
}

/// The item or space a creation form describes, read from its JSON as `reproject` reads a built
/// document (the form's state is that document's JSON without its id), and whether the item's
/// projection gives that JSON back: key order and spacing aside, what
/// `documents::creation_state_of` makes of the item read is the same JSON.
fn read_creation_state(
    incoming: &IncomingCreation,
    state: Option<serde_json::Value>,
) -> Result<(Option<Readable>, bool)> {
    let doc_id = incoming.doc_id.as_str();
    let Some(state) = state else {
        return Ok((None, false));
    };
    let mut json = state.clone();
    if let serde_json::Value::Object(root) = &mut json {
        root.entry("id")
            .or_insert_with(|| serde_json::Value::String(doc_id.to_owned()));
    }
    Ok(match incoming.kind {
        DocKind::Item => match item_from_json(json, doc_id) {
            Ok(item) if item.id.to_string() == doc_id => {
                let in_projection = documents::creation_value_of(&item)? == state;
                let rows = ItemRows::of(&item)?;
                (Some(Readable::Item(Box::new(item), rows)), in_projection)
            }
            _ => (None, false),
        },
        DocKind::Space => match space_from_json(json, doc_id) {
            Ok(space) if space.id.to_string() == doc_id && space.meta.validate().is_ok() => {
                (Some(Readable::Space(space)), false)
            }
            _ => (None, false),
        },
    })
}

/// Projects a document kept in creation form (its form is its history entry until
/// `documents::settle` writes the row).
fn project_creation(
    tx: &Connection,
    incoming: &IncomingCreation,
    read: Option<Readable>,
    report: &mut MergeReport,
    touched: &mut Touched,
    now_ms: i64,
) -> Result<()> {
    let doc_id = incoming.doc_id.as_str();
    match read {
        Some(Readable::Item(item, rows)) => {
            projection::project_item_rows(tx, &item, rows)?;
            crate::notifications::item_arrived(tx, &item, touched)?;
            touched.spaces.insert(item.space.to_string());
            touched.items.insert(doc_id.to_owned());
        }
        Some(Readable::Space(space)) => {
            projection::project_space(tx, &space, now_ms)?;
            touched.spaces.insert(doc_id.to_owned());
        }
        None => {
            report.unreadable.push(doc_id.to_owned());
        }
    }
    Ok(())
}
