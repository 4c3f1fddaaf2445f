//! Schema upgrades: a store holding data is taken back to every earlier schema version (by
//! dropping what later migrations added), opened, and must come back with everything the
//! original shows: feed, search, map, opening hours, events, details with history, outbox,
//! documents (changes waiting for their dependencies included). Also: a store from a newer core
//! is refused without being changed, a file that is not a store gives a typed error, and a
//! current store reopens without any change.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use quartier_core::model::*;
use quartier_core::query::{
    EventsQuery, FeedQuery, HistoryEntry, OpenOffersQuery, RadiusQuery, SearchRequest, ViewportQuery,
};
use quartier_core::store::{APPLICATION_ID, SCHEMA_VERSION};
use quartier_core::{Error, IncomingChange, OutgoingChange, Store, StoreOptions};
use rusqlite::{Connection, OpenFlags};

/// What one migration added: tables (their indexes and shadow tables go with them) and
/// columns of earlier tables.
struct Added {
    version: i64,
    tables: &'static [&'static str],
    columns: &'static [(&'static str, &'static str)],
    /// SQL that takes back what the migration moved rather than added, run first.
    undo: &'static str,
}

/// What each migration added, to take a store back to an earlier version.
const ADDED_BY: &[Added] = &[
    Added {
        version: 1,
        tables: &["device", "documents", "doc_changes", "outbox"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 2,
        tables: &[
            "spaces",
            "items",
            "item_tags",
            "items_fts",
            "items_geo",
            "offer_hours",
            "event_series",
        ],
        columns: &[],
        undo: "",
    },
    Added {
        version: 3,
        tables: &["item_history"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 4,
        tables: &["account", "memberships", "sync_spaces"],
        columns: &[("device", "signing_key")],
        undo: "",
    },
    Added {
        version: 5,
        tables: &["media", "media_settings"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 6,
        tables: &["undelivered"],
        columns: &[
            ("outbox", "deferred_since"),
            ("outbox", "defer_reason"),
            ("device", "creation_records_failed_at"),
        ],
        undo: "",
    },
    Added {
        version: 7,
        tables: &["space_registrations"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 8,
        tables: &["media_spaces"],
        columns: &[("media", "imported")],
        undo: "",
    },
    Added {
        version: 9,
        tables: &["space_members"],
        columns: &[("sync_spaces", "members_after")],
        undo: "",
    },
    Added {
        version: 10,
        tables: &[],
        columns: &[],
        undo: "",
    },
    Added {
        version: 11,
        tables: &[],
        columns: &[("documents", "creation")],
        // Documents kept in creation form get their change back (`creation_changes`, filled
        // by `downgraded_copy` from the original through the public API) and its history row,
        // as settling does.
        undo: "INSERT INTO doc_changes (doc_id, hash, bytes)
                   SELECT c.doc_id, c.hash, c.bytes FROM creation_changes c
                   JOIN documents d ON d.doc_id = c.doc_id WHERE d.creation IS NOT NULL;
               DELETE FROM item_history WHERE length(hash) <> 64;
               INSERT OR IGNORE INTO item_history (item_id, hash, actor, person, at, fields)
                   SELECT c.doc_id, lower(hex(c.hash)), c.actor, c.person, c.at, c.fields
                   FROM creation_changes c JOIN documents d ON d.doc_id = c.doc_id
                   WHERE d.creation IS NOT NULL AND d.kind = 'item';
               UPDATE documents SET snapshot_bytes = 0,
                   change_bytes = change_bytes + (SELECT length(c.bytes) FROM creation_changes c WHERE c.doc_id = documents.doc_id),
                   change_count = change_count + 1
                   WHERE creation IS NOT NULL;
               UPDATE documents SET creation = NULL;",
    },
    Added {
        version: 12,
        tables: &["item_json"],
        columns: &[],
        // The JSON back into `items`, the search index with its content again (empty: every
        // earlier version's upgrade rebuilds the projections).
        undo: "ALTER TABLE items ADD COLUMN json TEXT NOT NULL DEFAULT '';
               UPDATE items SET json = (SELECT j.json FROM item_json j WHERE j.id = items.id);
               DROP TABLE items_fts;
               CREATE VIRTUAL TABLE items_fts USING fts5(title, body, extra, tokenize = 'unicode61 remove_diacritics 0');
               INSERT INTO items_fts(items_fts, rank) VALUES ('secure-delete', 1);",
    },
    Added {
        version: 13,
        tables: &[],
        columns: &[("items", "title"), ("items", "lat"), ("items", "lon")],
        undo: "",
    },
    Added {
        version: 14,
        tables: &["projection_rebuild"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 15,
        tables: &["item_media"],
        columns: &[],
        // The outbox with its change columns NOT NULL again (the data has no entry waiting
        // without its change: `build` seals them), its AUTOINCREMENT counter carried over; the
        // history's time index and the rows it kept for creations in form, keyed by their
        // check bytes (the v11 undo keys them by the full hash when it takes the forms away).
        undo: "CREATE TABLE outbox_old (
                   seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, kind TEXT NOT NULL,
                   space_id TEXT NOT NULL, hash BLOB NOT NULL UNIQUE, bytes BLOB NOT NULL,
                   created_at INTEGER NOT NULL, deferred_since INTEGER, defer_reason TEXT);
               INSERT INTO outbox_old SELECT seq, doc_id, kind, space_id, hash, bytes, created_at,
                   deferred_since, defer_reason FROM outbox;
               DELETE FROM sqlite_sequence WHERE name = 'outbox_old';
               UPDATE sqlite_sequence SET name = 'outbox_old' WHERE name = 'outbox';
               DROP TABLE outbox;
               ALTER TABLE outbox_old RENAME TO outbox;
               CREATE INDEX outbox_doc ON outbox(doc_id);
               CREATE INDEX item_history_time ON item_history(item_id, at);
               CREATE INDEX documents_space ON documents(space_id);
               INSERT INTO item_history (item_id, hash, actor, person, at, fields)
                   SELECT c.doc_id, substr(lower(hex(c.hash)), 1, 8), c.actor, c.person, c.at, c.fields
                   FROM creation_changes c JOIN documents d ON d.doc_id = c.doc_id
                   WHERE d.creation IS NOT NULL AND d.kind = 'item';",
    },
    Added {
        version: 16,
        tables: &[
            "counselling_device",
            "counselling_identities",
            "counselling_channels",
            "counselling_records",
            "counselling_outbox",
            "counselling_claimed",
            "counselling_pending_keys",
        ],
        columns: &[],
        undo: "",
    },
    Added {
        version: 17,
        tables: &["media_key"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 18,
        tables: &["counselling_files"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 19,
        tables: &[],
        columns: &[("counselling_channels", "rotate_to")],
        undo: "",
    },
    Added {
        version: 20,
        tables: &[
            "change_signatures",
            "certificates",
            "revocation_lists",
            "nearby_spaces",
            "guest_invites",
        ],
        columns: &[
            ("account", "server_key"),
            ("outbox", "signer"),
            ("outbox", "signature"),
            ("device", "relay_max_bytes"),
            ("device", "relay_max_age_ms"),
            ("device", "provisional_person"),
        ],
        undo: "",
    },
    Added {
        version: 21,
        tables: &[
            "moderation_outbox",
            "moderation_log",
            "moderation_cursors",
            "hidden_items",
            "blocked_spaces",
            "muted_persons",
            "mute_outbox",
        ],
        columns: &[("items", "hidden")],
        undo: "",
    },
    Added {
        version: 22,
        tables: &["help_outbox", "help_log", "help_cursors"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 23,
        tables: &["notifications", "follows", "notification_settings", "settings_outbox"],
        columns: &[("device", "notifications_since")],
        undo: "",
    },
    Added {
        version: 24,
        tables: &["imported_items"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 25,
        tables: &[],
        columns: &[],
        undo: "DROP INDEX items_feed; DROP INDEX items_kind; DROP INDEX items_author;
               CREATE INDEX items_feed ON items(space_id, created_at DESC, id DESC);
               CREATE INDEX items_kind ON items(space_id, kind, created_at DESC, id DESC);
               CREATE INDEX items_author ON items(author, created_at DESC);",
    },
    Added {
        version: 26,
        tables: &["search_pending"],
        columns: &[],
        // Before it, every item was indexed by its own write.
        undo: "INSERT INTO items_fts (rowid, title, body, extra) SELECT id, title, body, extra FROM search_pending;",
    },
    Added {
        version: 27,
        tables: &[],
        columns: &[("search_pending", "replaces")],
        // Before it, an edit took the item's index row out at once.
        undo: "DELETE FROM items_fts WHERE rowid IN (SELECT id FROM search_pending WHERE replaces = 1);",
    },
    Added {
        version: 28,
        tables: &[],
        columns: &[],
        // Before it, the index had no prefix index: the same rows, copied word by word.
        undo: "CREATE VIRTUAL TABLE temp.fts_words USING fts5vocab(main, items_fts, 'instance');
               CREATE VIRTUAL TABLE items_fts_before USING fts5(
                   title, body, extra, content = '', contentless_delete = 1,
                   tokenize = 'unicode61 remove_diacritics 0');
               INSERT INTO items_fts_before (rowid, title, body, extra)
                   SELECT doc,
                          coalesce(group_concat(CASE WHEN col = 'title' THEN term END, ' ' ORDER BY offset), ''),
                          coalesce(group_concat(CASE WHEN col = 'body' THEN term END, ' ' ORDER BY offset), ''),
                          coalesce(group_concat(CASE WHEN col = 'extra' THEN term END, ' ' ORDER BY offset), '')
                   FROM temp.fts_words GROUP BY doc;
               DROP TABLE temp.fts_words;
               DROP TABLE items_fts;
               ALTER TABLE items_fts_before RENAME TO items_fts;
               INSERT INTO items_fts(items_fts, rank) VALUES ('secure-delete', 1);",
    },
    Added {
        version: 29,
        tables: &[],
        columns: &[("outbox", "edit"), ("documents", "unreadable")],
        // Before it, an edit was built at once: the edits kept as patches get their changes
        // (`edit_changes`, filled by `downgraded_copy` from the original through the public
        // API), history rows and outbox bytes, after their document's creation form is settled
        // as the first edit settled it then.
        undo: "INSERT INTO doc_changes (doc_id, hash, bytes)
                   SELECT c.doc_id, c.hash, c.bytes FROM creation_changes c
                   JOIN documents d ON d.doc_id = c.doc_id
                   WHERE d.creation IS NOT NULL AND c.doc_id IN (SELECT doc_id FROM edit_changes);
               INSERT OR IGNORE INTO item_history (item_id, hash, actor, person, at, fields)
                   SELECT c.doc_id, lower(hex(c.hash)), c.actor, c.person, c.at, c.fields
                   FROM creation_changes c JOIN documents d ON d.doc_id = c.doc_id
                   WHERE d.creation IS NOT NULL AND c.doc_id IN (SELECT doc_id FROM edit_changes);
               UPDATE outbox SET hash = (SELECT c.hash FROM creation_changes c WHERE c.doc_id = outbox.doc_id),
                                 bytes = (SELECT c.bytes FROM creation_changes c WHERE c.doc_id = outbox.doc_id)
                   WHERE bytes IS NULL AND edit IS NULL AND doc_id IN (SELECT doc_id FROM edit_changes);
               UPDATE documents SET snapshot_bytes = 0, creation = NULL,
                   change_bytes = change_bytes + (SELECT length(c.bytes) FROM creation_changes c WHERE c.doc_id = documents.doc_id),
                   change_count = change_count + 1
                   WHERE creation IS NOT NULL AND doc_id IN (SELECT doc_id FROM edit_changes);
               INSERT INTO doc_changes (doc_id, hash, bytes) SELECT doc_id, hash, bytes FROM edit_changes ORDER BY seq;
               INSERT OR IGNORE INTO item_history (item_id, hash, actor, person, at, fields)
                   SELECT doc_id, lower(hex(hash)), actor, person, at, fields FROM edit_changes;
               UPDATE documents SET
                   change_bytes = change_bytes + (SELECT sum(length(e.bytes)) FROM edit_changes e WHERE e.doc_id = documents.doc_id),
                   change_count = change_count + (SELECT count(*) FROM edit_changes e WHERE e.doc_id = documents.doc_id)
                   WHERE doc_id IN (SELECT doc_id FROM edit_changes);
               UPDATE outbox SET hash = (SELECT e.hash FROM edit_changes e WHERE e.seq = outbox.seq),
                                 bytes = (SELECT e.bytes FROM edit_changes e WHERE e.seq = outbox.seq)
                   WHERE edit IS NOT NULL;",
    },
    Added {
        version: 30,
        tables: &[],
        columns: &[("item_history", "seq")],
        undo: "",
    },
    Added {
        version: 31,
        tables: &[],
        columns: &[],
        // Before it, the search index merged segments a tenth deleted.
        undo: "DELETE FROM items_fts_config WHERE k = 'deletemerge';",
    },
    Added {
        version: 32,
        tables: &[],
        columns: &[("sync_spaces", "signatures_next"), ("device", "peer_signatures")],
        undo: "",
    },
    Added {
        version: 33,
        tables: &["signers"],
        columns: &[],
        undo: "",
    },
    Added {
        version: 34,
        tables: &[],
        columns: &[],
        // Before it, keyed by the hash, with an index on the document.
        undo: "CREATE TABLE signatures_by_hash (hash BLOB PRIMARY KEY, doc_id TEXT NOT NULL,
                   device TEXT NOT NULL, signature BLOB NOT NULL) WITHOUT ROWID;
               INSERT INTO signatures_by_hash SELECT hash, doc_id, device, signature FROM change_signatures;
               DROP TABLE change_signatures;
               ALTER TABLE signatures_by_hash RENAME TO change_signatures;
               CREATE INDEX change_signatures_doc ON change_signatures(doc_id);",
    },
];

/// Tables of the schema at `version`.
fn tables_at(version: i64) -> BTreeSet<String> {
    ADDED_BY
        .iter()
        .filter(|a| a.version <= version)
        .flat_map(|a| a.tables.iter().map(|t| (*t).to_owned()))
        .collect()
}

const SEARCH_WORDS: &[&str] = &["flohmarkt", "hof", "kuchen", "baeckerei", "food", "caritas"];

// ---------------------------------------------------------------------------------------------
// Raw database access

fn read_only(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open read-only")
}

fn user_version(path: &Path) -> i64 {
    read_only(path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version")
}

/// Ordinary tables of the database (no SQLite internals, no shadow tables of virtual tables).
fn tables(path: &Path) -> BTreeSet<String> {
    let conn = read_only(path);
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name NOT LIKE 'items_fts_%' AND name NOT LIKE 'items_geo_%'",
        )
        .expect("prepare");
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    names
}

/// Every row of every table (shadow tables included) and the user version, as text: two equal
/// dumps mean nothing in the file changed that a query could see.
fn dump(path: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = read_only(path);
    let mut out = BTreeMap::new();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    out.insert("(user_version)".to_owned(), vec![version.to_string()]);
    let names: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("schema");
        rows
    };
    out.insert(
        "(schema)".to_owned(),
        names.iter().map(|(n, sql)| format!("{n}: {sql}")).collect(),
    );
    let table_names: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("tables");
        rows
    };
    for table in table_names {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut row = Vec::with_capacity(columns);
                for i in 0..columns {
                    row.push(format!("{:?}", r.get::<_, rusqlite::types::Value>(i)?));
                }
                Ok(row.join(" | "))
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("row");
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// A change not built yet in the store, as it builds, with its history row:
/// `(doc_id, hash, bytes, actor, person, at, fields)`.
type UnbuiltChange = (String, Vec<u8>, Vec<u8>, String, Option<String>, i64, String);

/// The changes an earlier schema keeps built that the current one may not have built yet.
#[derive(Default)]
struct CreationChanges {
    /// The creation of each document kept in creation form.
    creations: Vec<UnbuiltChange>,
    /// Each edit kept as a patch, with its outbox position.
    edits: Vec<(i64, UnbuiltChange)>,
}

fn unbuilt(doc: &str, bytes: &[u8]) -> UnbuiltChange {
    let change = automerge::Change::from_bytes(bytes.to_vec()).expect("change");
    let note = quartier_core::document::ChangeNote::decode(change.message());
    (
        doc.to_owned(),
        change.hash().0.to_vec(),
        bytes.to_vec(),
        change.actor_id().to_hex_string(),
        note.as_ref().map(|n| n.by.to_string()),
        change.timestamp(),
        note.map(|n| n.fields.join(",")).unwrap_or_default(),
    )
}

/// The changes of `store`'s documents kept in creation form, and of its edits kept as patches,
/// through the public API (which builds them without storing them).
fn creation_changes(store: &Store) -> CreationChanges {
    let conn = read_only(store.path());
    let mut edits = Vec::new();
    let waiting: Vec<(i64, String)> = conn
        .prepare("SELECT seq, doc_id FROM outbox WHERE edit IS NOT NULL ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("edits");
    let docs: BTreeSet<&String> = waiting.iter().map(|(_, doc)| doc).collect();
    for doc in docs {
        let stored: BTreeSet<Vec<u8>> = conn
            .prepare("SELECT hash FROM doc_changes WHERE doc_id = ?1")
            .expect("prepare")
            .query_map([doc], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("hashes");
        // Not stored and not the creation: the edits, in the order this device made them.
        let mut built: Vec<automerge::Change> = store
            .document_changes(doc)
            .expect("changes")
            .into_iter()
            .map(|c| automerge::Change::from_bytes(c.bytes).expect("change"))
            .filter(|c| !c.deps().is_empty() && !stored.contains(c.hash().0.as_slice()))
            .collect();
        built.sort_by_key(|c| c.seq());
        let seqs: Vec<i64> = waiting
            .iter()
            .filter(|(_, d)| d == doc)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(built.len(), seqs.len(), "one change per edit kept as a patch");
        edits.extend(
            seqs.into_iter()
                .zip(built)
                .map(|(seq, c)| (seq, unbuilt(doc, c.raw_bytes()))),
        );
    }
    CreationChanges {
        creations: creation_forms(store),
        edits,
    }
}

/// The creation changes of `store`'s documents kept in creation form.
fn creation_forms(store: &Store) -> Vec<UnbuiltChange> {
    let in_form: Vec<String> = {
        let conn = read_only(store.path());
        let mut stmt = conn
            .prepare("SELECT doc_id FROM documents WHERE creation IS NOT NULL")
            .expect("prepare");
        let ids = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("ids");
        ids
    };
    in_form
        .into_iter()
        .map(|doc| {
            let changes = store.document_changes(&doc).expect("changes");
            // Its creation, and the changes of edits kept as patches built on it.
            let creations: Vec<_> = changes
                .iter()
                .filter(|c| {
                    automerge::Change::from_bytes(c.bytes.clone())
                        .expect("change")
                        .deps()
                        .is_empty()
                })
                .collect();
            let [creation] = creations.as_slice() else {
                panic!("a document in creation form has one creation")
            };
            unbuilt(&doc, &creation.bytes)
        })
        .collect()
}

/// The hash (hex) a history key of a change not built yet builds to; other keys as they are.
fn resolved_key(unbuilt: &CreationChanges, item: ItemId, key: String) -> String {
    let hex = |hash: &[u8]| hash.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let doc = item.to_string();
    if key.is_empty() {
        if let Some(creation) = unbuilt.creations.iter().find(|c| c.0 == doc) {
            return hex(&creation.1);
        }
    }
    if let Some(seq) = key.strip_prefix("pending-").and_then(|s| s.parse::<i64>().ok()) {
        if let Some((_, edit)) = unbuilt.edits.iter().find(|(s, _)| *s == seq) {
            return hex(&edit.1);
        }
    }
    key
}

/// Copies a closed store and takes the copy back to schema `version`.
fn downgraded_copy(original: &Path, dir: &Path, version: i64, creations: &CreationChanges) -> PathBuf {
    let copy = dir.join(format!("v{version}.db"));
    std::fs::copy(original, &copy).expect("copy the store");
    let conn = Connection::open(&copy).expect("open the copy");
    conn.execute_batch(
        "CREATE TABLE creation_changes (doc_id TEXT, hash BLOB, bytes BLOB, actor TEXT, person TEXT, at INTEGER, fields TEXT);
         CREATE TABLE edit_changes (seq INTEGER, doc_id TEXT, hash BLOB, bytes BLOB, actor TEXT, person TEXT, at INTEGER, fields TEXT);",
    )
    .expect("unbuilt changes");
    for (doc, hash, bytes, actor, person, at, fields) in &creations.creations {
        conn.execute(
            "INSERT INTO creation_changes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![doc, hash, bytes, actor, person, at, fields],
        )
        .expect("creation change");
    }
    for (seq, (doc, hash, bytes, actor, person, at, fields)) in &creations.edits {
        conn.execute(
            "INSERT INTO edit_changes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![seq, doc, hash, bytes, actor, person, at, fields],
        )
        .expect("edit change");
    }
    for added in ADDED_BY.iter().rev().filter(|a| a.version > version) {
        conn.execute_batch(added.undo).expect("undo a later migration");
        for table in added.tables.iter().rev() {
            conn.execute_batch(&format!("DROP TABLE {table}"))
                .expect("drop a later table");
        }
        for (table, column) in added.columns {
            conn.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {column}"))
                .expect("drop a later column");
        }
    }
    conn.execute_batch("DROP TABLE creation_changes; DROP TABLE edit_changes")
        .expect("drop unbuilt changes");
    conn.pragma_update(None, "user_version", version)
        .expect("set user_version");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    drop(conn);
    assert_eq!(tables(&copy), tables_at(version), "copy at version {version}");
    assert_eq!(user_version(&copy), version);
    copy
}

/// Closes a store and makes sure its file alone holds everything (no WAL left to copy).
fn close(store: Store) {
    let path = store.path().to_path_buf();
    store.close().expect("close");
    let conn = Connection::open(&path).expect("reopen raw");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

// ---------------------------------------------------------------------------------------------
// A store with data in it, and what it shows

struct Data {
    space: SpaceId,
    other_space: SpaceId,
    author: PersonId,
    items: Vec<ItemId>,
    /// A change stored in the original that waits for `missing`.
    missing: IncomingChange,
    /// The heads of that document once `missing` has arrived.
    heads_after_missing: Vec<String>,
}

fn build(fx: &Fixture) -> Data {
    let store = &fx.store;
    let author = fx.author;
    let mut items = Vec::new();
    let mut flohmarkt = post("Flohmarkt im Hof", "Am Samstag gibt es Kuchen und Trödel.");
    flohmarkt.tags = ["fest", "kinder"].iter().map(|t| (*t).to_owned()).collect();
    flohmarkt.location = Some(Location::new(50.956, 6.944));
    let flohmarkt = fx.create(flohmarkt);
    items.push(flohmarkt.id);
    let updated = store
        .update_item(
            flohmarkt.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Großer Flohmarkt im Hof")),
                tags: Some(
                    ["fest", "kinder", "trödel"]
                        .iter()
                        .map(|t| (*t).to_owned())
                        .collect(),
                ),
                ..Default::default()
            },
            PersonId::new(),
        )
        .expect("update");
    assert_eq!(updated.content.tags.len(), 3);
    items.push(fx.create(comment(flohmarkt.id, "Ich bringe Kuchen mit")).id);
    items.push(fx.create(place("Bäckerei Schmitz", 50.958, 6.941)).id);
    let mut tafel = request("Wer fährt mich zur Tafel?", "food");
    tafel.location = Some(Location::new(50.951, 6.95));
    items.push(fx.create(tafel).id);
    let mut beratung = offer(
        "Sozialberatung",
        vec![opening(
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            hm(9, 0),
            hm(17, 0),
            None,
        )],
    );
    beratung.location = Some(Location::new(50.953, 6.947));
    items.push(fx.create(beratung).id);
    items.push(
        fx.create(event(
            "Repair-Café",
            local(2025, 3, 8, 15, 0),
            local(2025, 3, 8, 18, 0),
            Some("FREQ=WEEKLY;COUNT=4"),
            vec![local(2025, 3, 15, 15, 0)],
        ))
        .id,
    );
    let mut zaehlung = ItemContent::new(
        LocalizedText::single("de", "Baumzählung"),
        ItemDetails::Observation(Observation {
            preset: "tree".into(),
            category: Some("linde".into()),
            fields: [("height_m".to_owned(), FieldValue::Number(12.5))]
                .into_iter()
                .collect(),
        }),
    );
    zaehlung.location = Some(Location::gps(50.955, 6.946, 4.0));
    items.push(fx.create(zaehlung).id);
    let mut draft = post("Entwurf", "Noch nicht fertig");
    draft.status = Status::Draft;
    let draft = fx.create(draft);
    // Edited: a draft never leaves the device, and an item created here waits in the outbox
    // without its change until it is pushed or edited, which earlier schemas cannot hold.
    store
        .update_item(
            draft.id,
            &ItemPatch {
                body: Some(LocalizedText::single("de", "Fast fertig")),
                ..Default::default()
            },
            author,
        )
        .expect("edit the draft");
    items.push(draft.id);
    let gone = fx.post("Verschenke Sofa", "Abzuholen im Hof");
    store.delete_item(gone.id, author).expect("delete");
    items.push(gone.id);
    let other_space = fx.other_space("Ehrenfeld");
    items.push(
        store
            .create_item(NewItem::new(other_space, author, post("Hofkonzert", "Im Hof")))
            .expect("item in the other space")
            .id,
    );
    // Every change that may leave is built (as for a push), the server acknowledged the first.
    store.pending_changes(1000).expect("pending");
    let acked: Vec<i64> = store
        .pending_changes(2)
        .expect("pending")
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(store.acknowledge(&acked).expect("acknowledge"), 2);

    // A change that waits for its dependency: another device edits the Flohmarkt twice, and
    // only its second change arrives here.
    let dir = tempfile::tempdir().expect("temp dir");
    let other = Store::open(dir.path().join("other.db"), StoreOptions::default()).expect("open");
    for (doc, _) in store.document_ids().expect("ids") {
        other
            .apply_changes(&store.document_changes(&doc).expect("changes"))
            .expect("apply");
    }
    for text in [
        "Am Samstag gibt es Kuchen, Kaffee und Trödel.",
        "Am Samstag: Kuchen, Kaffee, Trödel.",
    ] {
        other
            .update_item(
                flohmarkt.id,
                &ItemPatch {
                    body: Some(LocalizedText::single("de", text)),
                    ..Default::default()
                },
                author,
            )
            .expect("edit elsewhere");
    }
    let doc = flohmarkt.id.to_string();
    let here: BTreeSet<Vec<u8>> = store
        .document_changes(&doc)
        .expect("changes")
        .into_iter()
        .map(|c| c.bytes)
        .collect();
    let mut new: Vec<IncomingChange> = other
        .document_changes(&doc)
        .expect("changes")
        .into_iter()
        .filter(|c| !here.contains(&c.bytes))
        .collect();
    assert_eq!(new.len(), 2);
    let second = new.pop().expect("second change");
    let first = new.pop().expect("first change");
    let report = store.apply_changes(&[second]).expect("apply the second change");
    assert_eq!(report.waiting, 1, "{report:?}");
    Data {
        space: fx.space,
        other_space,
        author,
        items,
        missing: first,
        heads_after_missing: other.document_heads(&doc).expect("heads"),
    }
}

#[derive(Debug, PartialEq)]
struct Detail {
    item: Item,
    history: Vec<HistoryEntry>,
    comments: Vec<Item>,
}

/// A search hit: the item, its title and body snippets with the matches marked.
type Hit = (ItemId, String, String);

/// Everything the store shows, through its public API.
#[derive(Debug, PartialEq)]
struct Shown {
    device: String,
    documents: Vec<(String, Vec<String>)>,
    spaces: Vec<Space>,
    feed: Vec<Item>,
    other_feed: Vec<Item>,
    public_feed: Vec<Item>,
    details: Vec<(ItemId, Result<Detail, String>)>,
    search: Vec<(&'static str, Vec<Hit>)>,
    viewport: Vec<Item>,
    near: Vec<(ItemId, i64)>,
    open_offers: Vec<Item>,
    events: Vec<(ItemId, chrono::DateTime<chrono::Utc>)>,
    pending: Vec<OutgoingChange>,
    outbox_len: usize,
}

fn shown(store: &Store, data: &Data) -> Shown {
    let coordinator = Viewer::new(data.author, Role::Coordinator);
    let resident = Viewer::new(
        "0190f5a0-0000-7000-8000-0000000000bb".parse().expect("person"),
        Role::Resident,
    );
    let at = utc(2025, 3, 4, 10, 0); // a Tuesday, 11:00 in Berlin
    let feed = |space: SpaceId, viewer: Viewer, all: bool| {
        let mut q = FeedQuery::new(space, viewer);
        if all {
            q.statuses = Status::ALL.to_vec();
        }
        q.limit = 1000.into();
        store.feed(&q).expect("feed").items
    };
    let documents = store
        .document_ids()
        .expect("ids")
        .into_iter()
        .map(|(doc, _)| {
            let heads = store.document_heads(&doc).expect("heads");
            (doc, heads)
        })
        .collect();
    let unbuilt = creation_changes(store);
    let details = data
        .items
        .iter()
        .map(|id| {
            let detail = match store.item_detail(*id, &coordinator) {
                Ok(d) => Ok(Detail {
                    item: d.item,
                    // A creation kept in creation form is named by its hash's first 8 hex
                    // digits (or nothing, made here and not built), an edit kept as a patch by
                    // its outbox position, as earlier schemas could not keep them: the keys
                    // not built are resolved to the hashes they build to, then all compared by
                    // that prefix.
                    history: d
                        .history
                        .into_iter()
                        .map(|mut h| {
                            h.change = resolved_key(&unbuilt, *id, h.change);
                            h.change.truncate(8);
                            h
                        })
                        .collect(),
                    comments: d.comments,
                }),
                Err(Error::NotFound { .. }) => Err("not found".to_owned()),
                Err(e) => panic!("item_detail: {e}"),
            };
            (*id, detail)
        })
        .collect();
    let search = SEARCH_WORDS
        .iter()
        .map(|word| {
            let mut q = SearchRequest::new(data.space, coordinator, *word);
            q.space = None;
            q.limit = 1000.into();
            let hits = store
                .search(&q)
                .expect("search")
                .into_iter()
                .map(|h| (h.item.id, h.title.marked("[", "]"), h.body.marked("[", "]")))
                .collect();
            (*word, hits)
        })
        .collect();
    let viewport = store
        .viewport(&ViewportQuery {
            space: data.space,
            viewer: coordinator,
            south: 50.9,
            west: 6.9,
            north: 51.0,
            east: 7.0,
            kinds: Vec::new(),
            limit: 1000.into(),
            at: None,
        })
        .expect("viewport");
    let near = store
        .near(&RadiusQuery {
            space: data.space,
            viewer: coordinator,
            center: Location::new(50.955, 6.945),
            radius_m: 2_000.0,
            kinds: Vec::new(),
            limit: 1000.into(),
            at: None,
        })
        .expect("near")
        .into_iter()
        .map(|n| (n.item.id, n.distance_m.round() as i64))
        .collect();
    let open_offers = store
        .open_offers(&OpenOffersQuery {
            space: data.space,
            viewer: coordinator,
            at: Some(at),
        })
        .expect("open offers");
    let events = store
        .events_between(&EventsQuery {
            space: data.space,
            viewer: coordinator,
            from: utc(2025, 3, 1, 0, 0),
            to: utc(2025, 4, 1, 0, 0),
            limit: 100.into(),
        })
        .expect("events")
        .into_iter()
        .map(|o| (o.item.id, o.start))
        .collect();
    Shown {
        device: store.device_actor(),
        documents,
        spaces: store.spaces().expect("spaces"),
        feed: feed(data.space, coordinator, true),
        other_feed: feed(data.other_space, coordinator, true),
        public_feed: feed(data.space, resident, false),
        details,
        search,
        viewport,
        near,
        open_offers,
        events,
        pending: store.pending_changes(1000).expect("pending"),
        outbox_len: store.outbox_len().expect("outbox"),
    }
}

/// Compares part by part, so that a failure names what differs.
fn assert_same(expected: &Shown, got: &Shown, what: &str) {
    assert_eq!(expected.device, got.device, "{what}: device actor");
    assert_eq!(expected.documents, got.documents, "{what}: documents and heads");
    assert_eq!(expected.spaces, got.spaces, "{what}: spaces");
    assert_eq!(expected.feed, got.feed, "{what}: feed");
    assert_eq!(
        expected.other_feed, got.other_feed,
        "{what}: feed of the other space"
    );
    assert_eq!(expected.public_feed, got.public_feed, "{what}: public feed");
    for ((id, e), (_, g)) in expected.details.iter().zip(&got.details) {
        assert_eq!(e, g, "{what}: detail of {id}");
    }
    assert_eq!(expected.search, got.search, "{what}: search");
    assert_eq!(expected.viewport, got.viewport, "{what}: viewport");
    assert_eq!(expected.near, got.near, "{what}: near");
    assert_eq!(expected.open_offers, got.open_offers, "{what}: open offers");
    assert_eq!(expected.events, got.events, "{what}: events");
    assert_eq!(expected.pending, got.pending, "{what}: pending outbox");
    assert_eq!(expected.outbox_len, got.outbox_len, "{what}: outbox length");
    assert_eq!(expected, got, "{what}");
}

/// The original store must show what was put in: guards the test against comparing empties.
fn assert_meaningful(s: &Shown, data: &Data) {
    assert_eq!(
        s.feed.len(),
        7,
        "feed: every kind but comments, the deleted item left out"
    );
    assert_eq!(s.other_feed.len(), 1);
    assert_eq!(s.public_feed.len(), 6, "public feed: no draft");
    assert_eq!(s.details.iter().filter(|(_, d)| d.is_err()).count(), 1);
    let (_, flohmarkt) = &s.details[0];
    let flohmarkt = flohmarkt.as_ref().expect("flohmarkt");
    assert_eq!(flohmarkt.history.len(), 2);
    assert_eq!(flohmarkt.history[1].fields, ["title", "tags"]);
    assert_eq!(flohmarkt.comments.len(), 1);
    assert!(
        s.search.iter().all(|(_, hits)| !hits.is_empty()),
        "{:?}",
        s.search
    );
    assert_eq!(s.viewport.len(), 5, "{:?}", s.viewport);
    assert_eq!(s.near.len(), 5);
    assert_eq!(s.open_offers.len(), 1);
    assert_eq!(s.events.len(), 3);
    // One creation per item, two spaces, two updates and a delete, less the two acknowledged.
    assert_eq!(s.outbox_len, data.items.len() + 2 + 1 + 1 + 1 - 2);
    assert_eq!(
        s.pending.len(),
        s.outbox_len - 2,
        "the draft (created, edited) stays on the device"
    );
}

#[test]
fn stores_of_every_earlier_version_upgrade_with_their_data() {
    let fx = Fixture::new();
    let data = build(&fx);
    let expected = shown(&fx.store, &data);
    assert_meaningful(&expected, &data);
    let original = fx.store.path().to_path_buf();
    let creations = creation_changes(&fx.store);
    assert!(
        creations.creations.len() >= 5 && !creations.edits.is_empty(),
        "items kept in creation form: {}, edits kept as patches: {}",
        creations.creations.len(),
        creations.edits.len()
    );
    let Fixture { dir, store, .. } = fx;
    close(store);
    assert_eq!(user_version(&original), SCHEMA_VERSION);
    assert_eq!(
        ADDED_BY.last().map(|a| a.version),
        Some(SCHEMA_VERSION),
        "a new migration: say in ADDED_BY what it adds"
    );
    assert_eq!(
        tables(&original),
        tables_at(SCHEMA_VERSION),
        "a migration added tables this test does not know: extend ADDED_BY"
    );

    for version in 1..SCHEMA_VERSION {
        let copy = downgraded_copy(&original, dir.path(), version, &creations);
        let store = Store::open(&copy, StoreOptions::default()).expect("open an older store");
        let what = format!("upgraded from version {version}");
        assert_eq!(user_version(&copy), SCHEMA_VERSION, "{what}");
        store.integrity_check().expect("integrity");
        assert_same(&expected, &shown(&store, &data), &what);
        // Sync state starts empty; the device has a signing key (new if the version had none).
        assert!(store.account().expect("account").is_none(), "{what}");
        assert!(store.memberships().expect("memberships").is_empty(), "{what}");
        let key = store.device_public_key();
        assert_ne!(key, [0; 32], "{what}");
        close(store);

        // Upgraded once, it reopens without any change.
        let before = dump(&copy);
        let store = Store::open(&copy, StoreOptions::default()).expect("reopen");
        assert_same(&expected, &shown(&store, &data), &what);
        assert_eq!(store.device_public_key(), key, "{what}: the signing key changed");
        close(store);
        assert_eq!(before, dump(&copy), "{what}: reopening changed the file");

        // The change that was waiting still waits, and is applied when its dependency comes.
        let store = Store::open(&copy, StoreOptions::default()).expect("reopen");
        let report = store
            .apply_changes(std::slice::from_ref(&data.missing))
            .expect("apply");
        assert_eq!(report.applied, 1, "{what}: {report:?}");
        let doc = data.items[0].to_string();
        assert_eq!(
            store.document_heads(&doc).expect("heads"),
            data.heads_after_missing,
            "{what}"
        );
        let detail = store
            .item_detail(data.items[0], &Viewer::new(data.author, Role::Coordinator))
            .expect("detail");
        assert_eq!(
            detail.item.content.body.get("de"),
            Some("Am Samstag: Kuchen, Kaffee, Trödel.")
        );
        assert_eq!(detail.history.len(), 4, "{what}");
        store.integrity_check().expect("integrity");
    }
}

/// A store holding one post, closed (its file alone holds everything), for tests that change
/// the file before opening it again.
struct ClosedPost {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    space: SpaceId,
    item: Item,
    viewer: Viewer,
    /// For [`downgraded_copy`].
    creations: CreationChanges,
}

impl ClosedPost {
    /// The post's change is built (as for a push), as every earlier schema keeps it.
    fn new(title: &str, body: &str) -> Self {
        let fx = Fixture::new();
        let item = fx.post(title, body);
        fx.store.pending_changes(10).expect("build the change");
        let creations = creation_changes(&fx.store);
        let viewer = fx.viewer(Role::Resident);
        let path = fx.store.path().to_path_buf();
        let Fixture {
            dir, store, space, ..
        } = fx;
        close(store);
        Self {
            dir,
            path,
            space,
            item,
            viewer,
            creations,
        }
    }
}

/// Version 10 changed only the search terms (Arabic stems, emoji): a version 9 store whose
/// index was written without them gets them when it is upgraded.
#[test]
fn an_index_written_before_version_10_gets_the_new_search_terms() {
    let closed = ClosedPost::new("لقاء بالجيران", "Kuchen 🎂 heute");
    let (item, viewer, space) = (&closed.item, closed.viewer, closed.space);
    let copy = downgraded_copy(&closed.path, closed.dir.path(), 9, &closed.creations);
    {
        // The index as version 9 wrote it: folded words, no stems, emoji dropped.
        let conn = Connection::open(&copy).expect("open raw");
        conn.execute(
            "INSERT INTO items_fts (rowid, title, body, extra) SELECT id, 'لقاء بالجيران', 'kuchen heute', '' FROM items",
            [],
        )
        .expect("old index");
        let old_terms: i64 = conn
            .query_row(
                "SELECT count(*) FROM items_fts WHERE items_fts MATCH 'جيران'",
                [],
                |r| r.get(0),
            )
            .expect("old search");
        assert_eq!(old_terms, 0, "the old index has no stems");
    }
    let store = Store::open(&copy, StoreOptions::default()).expect("upgrade");
    for text in ["جيران", "🎂"] {
        let hits = store
            .search(&SearchRequest::new(space, viewer, text))
            .expect("search");
        assert_eq!(
            hits.iter().map(|h| h.item.id).collect::<Vec<_>>(),
            [item.id],
            "{text}"
        );
    }
}

/// Version 27 lets an edit leave the item's index row for the next batch to replace: a store
/// written with such an edit waiting, taken back to each schema before it, upgrades to one
/// that finds the new words only, with one index row for the item.
#[test]
fn an_edit_waiting_for_the_search_index_upgrades_from_the_schemas_before_it() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let item = fx.post("Laternenumzug", "mit Kindern");
    let found = |store: &Store, space: SpaceId, text: &str| -> Vec<ItemId> {
        store
            .search(&SearchRequest::new(space, resident, text))
            .expect("search")
            .into_iter()
            .map(|h| h.item.id)
            .collect()
    };
    assert_eq!(found(&fx.store, fx.space, "laternenumzug"), [item.id]);
    fx.retitle(item.id, "Martinsfeuer");
    let creations = creation_changes(&fx.store);
    let original = fx.store.path().to_path_buf();
    let replaces: i64 = read_only(&original)
        .query_row(
            "SELECT count(*) FROM search_pending WHERE replaces = 1",
            [],
            |r| r.get(0),
        )
        .expect("pending rows");
    assert_eq!(replaces, 1, "the edit waits to replace the item's index row");
    let Fixture {
        dir, store, space, ..
    } = fx;
    close(store);
    for version in [25, 26] {
        let copy = downgraded_copy(&original, dir.path(), version, &creations);
        let store = Store::open(&copy, StoreOptions::default()).expect("upgrade");
        let what = format!("upgraded from version {version}");
        assert_eq!(found(&store, space, "martinsfeuer"), [item.id], "{what}");
        assert!(found(&store, space, "laternenumzug").is_empty(), "{what}");
        close(store);
        let rows: i64 = read_only(&copy)
            .query_row("SELECT count(*) FROM items_fts_docsize", [], |r| r.get(0))
            .expect("index rows");
        assert_eq!(rows, 1, "{what}");
    }
}

#[test]
fn a_current_store_reopens_without_changes() {
    let fx = Fixture::new();
    let data = build(&fx);
    let expected = shown(&fx.store, &data);
    let path = fx.store.path().to_path_buf();
    let Fixture { dir: _dir, store, .. } = fx;
    close(store);
    let before = dump(&path);
    let store = Store::open(&path, StoreOptions::default()).expect("reopen");
    assert_same(&expected, &shown(&store, &data), "reopened");
    store.integrity_check().expect("integrity");
    close(store);
    assert_eq!(before, dump(&path), "reopening a current store changed it");
}

#[test]
fn a_store_from_a_newer_core_is_refused_and_left_alone() {
    let fx = Fixture::new();
    fx.post("Aus der Zukunft", "Text");
    let path = fx.store.path().to_path_buf();
    let Fixture { dir: _dir, store, .. } = fx;
    close(store);
    let conn = Connection::open(&path).expect("open raw");
    conn.pragma_update(None, "user_version", 99)
        .expect("user_version");
    drop(conn);
    let before = dump(&path);
    match Store::open(&path, StoreOptions::default()) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!(found, 99);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("a store from a newer core was opened"),
    }
    assert_eq!(before, dump(&path), "the refused store was changed");
}

#[test]
fn a_file_that_is_not_a_store_gives_a_typed_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let random: Vec<u8> = (0..8192)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let cases: [(&str, &[u8]); 3] = [
        ("random.db", &random),
        ("text.db", b"this is a shopping list, not a database\n"),
        ("short.db", b"SQLite"),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        match Store::open(&path, StoreOptions::default()) {
            Err(Error::Corrupt(_)) => {}
            // Random bytes in whole pages look exactly like an encrypted store: opened without
            // a key, that is what they are taken for (still refused, still unchanged).
            Err(Error::WrongStoreKey { key_given: false }) if name == "random.db" => {}
            Err(other) => panic!("{name}: expected Corrupt, got {other:?}"),
            Ok(_) => panic!("{name}: a file that is not a store was opened"),
        }
        assert_eq!(std::fs::read(&path).expect("read"), bytes, "{name} was changed");
    }
}

/// The main file and any journal beside it, byte for byte.
fn files_of(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(bytes) = std::fs::read(&file) {
            out.insert(suffix.to_owned(), bytes);
        }
    }
    out
}

#[test]
fn a_newer_store_in_rollback_journal_mode_is_not_switched_to_wal() {
    // A newer core may have left WAL (or a future one may never use it): the refusal must not
    // switch the file's journal mode, which rewrites its header.
    let fx = Fixture::new();
    fx.post("Aus der Zukunft", "Text");
    let path = fx.store.path().to_path_buf();
    let Fixture { dir: _dir, store, .. } = fx;
    close(store);
    let conn = Connection::open(&path).expect("open raw");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "delete");
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .expect("user_version");
    drop(conn);
    let before = files_of(&path);
    assert_eq!(before.len(), 1, "only the database file: {:?}", before.keys());
    match Store::open(&path, StoreOptions::default()) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("a store from a newer core was opened"),
    }
    assert!(before == files_of(&path), "the refused store's files changed");
}

#[test]
fn another_applications_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    // (file, user_version, application_id, journal mode): an app that leaves user_version at
    // 0, one that versions its schema like we do, one that sets its own application_id, and
    // one in WAL mode already.
    let cases: [(&str, i64, i32, &str); 4] = [
        ("notes.db", 0, 0, "delete"),
        ("versioned.db", 3, 0, "delete"),
        ("fossil.db", 1, 0x0f05_5112, "delete"),
        ("wal.db", 2, 0, "wal"),
    ];
    for (name, version, application, journal) in cases {
        let path = dir.path().join(name);
        {
            let conn = Connection::open(&path).expect("create");
            let _: String = conn
                .query_row(&format!("PRAGMA journal_mode = {journal}"), [], |r| r.get(0))
                .expect("journal mode");
            conn.execute_batch(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
                 INSERT INTO notes (text) VALUES ('Milch'), ('Brot');",
            )
            .expect("tables");
            conn.pragma_update(None, "user_version", version)
                .expect("user_version");
            conn.pragma_update(None, "application_id", application)
                .expect("application_id");
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .expect("checkpoint");
        }
        let before = files_of(&path);
        match Store::open(&path, StoreOptions::default()) {
            Err(Error::Corrupt(message)) => {
                assert!(message.contains("another application"), "{name}: {message}")
            }
            Err(other) => panic!("{name}: expected Corrupt, got {other:?}"),
            Ok(_) => panic!("{name}: another application's database was opened as a store"),
        }
        assert!(before == files_of(&path), "{name}: the file was changed");
        let tables: Vec<String> = read_only(&path)
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("tables");
        assert_eq!(tables, ["notes"], "{name}");
    }
}

#[test]
fn a_store_carries_the_quartier_application_id_and_an_empty_database_becomes_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.db");
    // An empty SQLite database (no tables, no versions) has nothing to lose: it is taken.
    Connection::open(&path)
        .expect("create")
        .execute_batch("VACUUM")
        .expect("vacuum");
    let store = Store::open(&path, StoreOptions::default()).expect("an empty database opens");
    close(store);
    let id: i32 = read_only(&path)
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .expect("application_id");
    assert_eq!(id, APPLICATION_ID);
    assert_eq!(user_version(&path), SCHEMA_VERSION);
}

#[test]
fn media_from_before_version_8_is_told_apart_as_imported_or_downloaded() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    close(Store::open(&path, StoreOptions::default()).expect("store"));
    {
        let conn = Connection::open(&path).expect("raw");
        // Imported and not yet uploaded; imported photo and audio already uploaded (the importer
        // records dimensions or a duration); a download (neither).
        conn.execute_batch(&format!(
            "INSERT INTO media (hash, mime_type, size, variant, on_server, created_ms, last_access_ms, width, height, duration_ms)
             VALUES ('{a}', 'image/jpeg', 1, 'original', 0, 1, 1, 10, 10, NULL),
                    ('{b}', 'image/jpeg', 1, 'original', 1, 1, 1, 10, 10, NULL),
                    ('{c}', 'audio/mpeg', 1, 'original', 1, 1, 1, NULL, NULL, 500),
                    ('{d}', 'image/jpeg', 1, 'original', 1, 1, 1, NULL, NULL, NULL)",
            a = "a".repeat(64),
            b = "b".repeat(64),
            c = "c".repeat(64),
            d = "d".repeat(64),
        ))
        .expect("media rows");
    }
    let copy = downgraded_copy(&path, dir.path(), 7, &CreationChanges::default());
    close(Store::open(&copy, StoreOptions::default()).expect("upgrade"));
    let imported: Vec<(String, bool)> = read_only(&copy)
        .prepare("SELECT substr(hash, 1, 1), imported FROM media ORDER BY hash")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<rusqlite::Result<_>>()
        .expect("media");
    assert_eq!(
        imported,
        vec![
            ("a".to_owned(), true),
            ("b".to_owned(), true),
            ("c".to_owned(), true),
            ("d".to_owned(), false),
        ]
    );
}

/// A projection rebuild that an upgrade owed and that did not finish (the app killed during a
/// long one) is done at the next open: the owed rebuild is recorded with the migration and
/// cleared by the rebuild's own transaction.
#[test]
fn a_rebuild_cut_short_is_done_at_the_next_open() {
    let closed = ClosedPost::new("Kastanienfest", "im Hof");
    let (item, viewer, space, path) = (&closed.item, closed.viewer, closed.space, closed.path.clone());
    {
        // What a migration that emptied the index leaves when its rebuild never ran.
        let conn = Connection::open(&path).expect("open raw");
        conn.execute("DELETE FROM items_fts", []).expect("empty index");
        conn.execute(
            "INSERT INTO projection_rebuild (singleton, owed_since) VALUES (1, 0)",
            [],
        )
        .expect("owed rebuild");
    }
    let store = Store::open(&path, StoreOptions::default()).expect("open");
    let hits = store
        .search(&SearchRequest::new(space, viewer, "kastanienfest"))
        .expect("search");
    assert_eq!(hits.iter().map(|h| h.item.id).collect::<Vec<_>>(), [item.id]);
    close(store);
    let owed: i64 = read_only(&path)
        .query_row("SELECT count(*) FROM projection_rebuild", [], |r| r.get(0))
        .expect("marker");
    assert_eq!(owed, 0, "the rebuild cleared its marker");
}

/// Version 15 rebuilt the outbox table: its positions go on from where they were, so a late
/// acknowledgement of an entry taken before the upgrade can never remove a newer one.
#[test]
fn outbox_positions_are_not_reused_across_the_outbox_rebuild() {
    let fx = Fixture::new();
    fx.post("Erste", "eins");
    fx.post("Zweite", "zwei");
    let pending = fx.store.pending_changes(10).expect("pending");
    let last = pending.last().expect("an entry").seq;
    assert_eq!(fx.store.acknowledge(&[last]).expect("ack"), 1);
    let creations = creation_changes(&fx.store);
    let (space, author) = (fx.space, fx.author);
    let Fixture { dir, store, .. } = fx;
    let path = store.path().to_path_buf();
    close(store);
    let copy = downgraded_copy(&path, dir.path(), 14, &creations);
    let store = Store::open(&copy, StoreOptions::default()).expect("upgrade");
    store
        .create_item(NewItem::new(space, author, post("Dritte", "drei")))
        .expect("create after the upgrade");
    let newest = store
        .pending_changes(10)
        .expect("pending")
        .last()
        .expect("entry")
        .seq;
    assert!(newest > last, "position {newest} reused (last taken: {last})");
}

/// Every word of the search index, by item row, column and position.
fn index_postings(path: &Path) -> BTreeSet<(i64, String, String, i64)> {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, items_fts, 'instance');")
        .expect("vocabulary");
    let mut stmt = conn
        .prepare("SELECT doc, col, term, offset FROM temp.words")
        .expect("prepare");
    let postings = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("postings");
    postings
}

fn row_ids(path: &Path, sql: &str) -> Vec<i64> {
    let conn = read_only(path);
    let mut stmt = conn.prepare(sql).expect("prepare");
    let ids = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("ids");
    ids
}

/// Schema 28 builds the search index again from the items' rows instead of a projection
/// rebuild: it must hold exactly what the projection wrote, word for word, for deleted, erased,
/// hidden and muted items and comments too (no erased word comes back).
#[test]
fn the_search_index_rebuilt_by_schema_28_holds_what_the_projection_wrote() {
    use quartier_core::moderation::ModerationAction;
    let fx = Fixture::new();
    let data = build(&fx);
    let erased = fx.post("Zaunkoenig geheim", "privat");
    fx.create(comment(erased.id, "Kommentar Zaunkoenig"));
    fx.store.erase_item(erased.id).expect("erase");
    let hidden = fx.post("Versteckt Blaumeise", "x");
    // Hiding may be refused to this device's role; either way the item's rows stay as written.
    let _ = fx.store.moderate_item(hidden.id, ModerationAction::Hide, "note");
    let muted = PersonId::new();
    fx.create_by(muted, post("Stumm Rotkehlchen", "y"));
    fx.store.set_muted(muted, true).expect("mute");
    let _ = shown(&fx.store, &data); // a search indexes what waits
    let creations = creation_changes(&fx.store);
    let original = fx.store.path().to_path_buf();
    let Fixture { dir, store, .. } = fx;
    close(store);
    let postings = index_postings(&original);
    let indexed = row_ids(&original, "SELECT id FROM items_fts_docsize ORDER BY id");
    let live = row_ids(
        &original,
        "SELECT id FROM items WHERE status != 'deleted' ORDER BY id",
    );
    let all = row_ids(&original, "SELECT id FROM items ORDER BY id");
    assert_eq!(indexed, live, "the projection indexes the items not deleted");
    assert!(all.len() > live.len(), "a deleted item is in the data");
    assert!(!postings.iter().any(|(_, _, term, _)| term == "zaunkoenig"));
    for version in [23, 25, 26, 27] {
        let copy = downgraded_copy(&original, dir.path(), version, &creations);
        close(Store::open(&copy, StoreOptions::default()).expect("upgrade"));
        assert_eq!(
            row_ids(&copy, "SELECT id FROM items_fts_docsize ORDER BY id"),
            indexed,
            "from {version}: rows"
        );
        assert_eq!(index_postings(&copy), postings, "from {version}: words");
    }
}

/// A damaged item row does not keep a schema-27 store from opening: the upgrade owes the full
/// projection rebuild instead, which rebuilds from the documents.
#[test]
fn a_damaged_item_row_does_not_stop_the_upgrade_to_schema_28() {
    let closed = ClosedPost::new("Hofflohmarkt", "Kuchen");
    let copy = downgraded_copy(&closed.path, closed.dir.path(), 27, &closed.creations);
    {
        let conn = Connection::open(&copy).expect("open");
        conn.execute("UPDATE item_json SET json = x'28b52ffd'", [])
            .expect("damage the row");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
    }
    let store = Store::open(&copy, StoreOptions::default()).expect("the upgrade opens the store");
    assert_eq!(user_version(&copy), SCHEMA_VERSION);
    let hits = store
        .search(&SearchRequest::new(closed.space, closed.viewer, "hofflohmarkt"))
        .expect("search");
    assert_eq!(
        hits.iter().map(|h| h.item.id).collect::<Vec<_>>(),
        vec![closed.item.id]
    );
}

/// A document stored before schema 29 is not known to read as an item (a merge may have left
/// it in a newer core's form, its projection the last readable state): its first edit is built
/// at once, which reads it, and the edits after that are kept as patches.
/// The devices whose signatures a store kept before schema 33 are its first `signers`, by the
/// space of the signed document: the next sync asks for their certificates as before. The
/// signatures themselves are kept by document from schema 34.
#[test]
fn signers_of_signatures_kept_before_schema_33_are_listed() {
    let closed = ClosedPost::new("Hofflohmarkt", "Kuchen");
    let signer = uuid::Uuid::from_u128(7);
    {
        let conn = Connection::open(&closed.path).expect("open");
        conn.execute(
            "INSERT INTO change_signatures (hash, doc_id, device, signature) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                vec![1u8; 32],
                closed.item.id.to_string(),
                signer.to_string(),
                vec![2u8; 64]
            ],
        )
        .expect("a kept signature");
    }
    let copy = downgraded_copy(&closed.path, closed.dir.path(), 32, &closed.creations);
    let store = Store::open(&copy, StoreOptions::default()).expect("upgrade");
    close(store);
    let conn = Connection::open(&copy).expect("open");
    let signers: Vec<(String, String)> = conn
        .prepare("SELECT space_id, device FROM signers")
        .expect("signers")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("read");
    assert_eq!(signers, vec![(closed.space.to_string(), signer.to_string())]);
    // Schema 34: the signature itself is kept, by document and hash, without the index.
    let kept: (Vec<u8>, String) = conn
        .query_row(
            "SELECT signature, device FROM change_signatures WHERE doc_id = ?1 AND hash = ?2",
            rusqlite::params![closed.item.id.to_string(), vec![1u8; 32]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("kept");
    assert_eq!(kept, (vec![2u8; 64], signer.to_string()));
    let index: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'change_signatures_doc'",
            [],
            |r| r.get(0),
        )
        .expect("schema");
    assert_eq!(index, 0);
}

#[test]
fn the_first_edit_of_an_item_stored_before_schema_29_is_built_at_once() {
    let closed = ClosedPost::new("Hofflohmarkt", "Kuchen");
    let copy = downgraded_copy(&closed.path, closed.dir.path(), 28, &closed.creations);
    let store = Store::open(&copy, StoreOptions::default()).expect("upgrade");
    let retitle = |title: &str| {
        store
            .update_item(
                closed.item.id,
                &ItemPatch {
                    title: Some(LocalizedText::single("de", title)),
                    ..Default::default()
                },
                closed.item.author,
            )
            .expect("edit");
        store
            .item_detail(closed.item.id, &closed.viewer)
            .expect("detail")
            .history
            .last()
            .expect("an entry")
            .change
            .clone()
    };
    assert_eq!(retitle("Hofflohmarkt am Samstag").len(), 64, "built at once");
    assert!(retitle("Hofflohmarkt am Sonntag").starts_with("pending-"));
}
