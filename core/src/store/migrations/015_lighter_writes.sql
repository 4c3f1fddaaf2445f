-- Lighter writes and a smaller store (docs/store.md).
--
-- An item created here is kept in creation form and its outbox entry waits without the change
-- (hash and bytes NULL) until the change is built and signed for a push, or the document is
-- first edited (`documents::seal`, `documents::settle`): Automerge leaves the write path.
-- SQLite cannot relax NOT NULL in place, so the table is rebuilt. Its AUTOINCREMENT counter is
-- carried over: outbox positions are never reused (an acknowledgement may arrive late).
CREATE TABLE outbox_new (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    space_id       TEXT NOT NULL,
    hash           BLOB,
    bytes          BLOB,
    created_at     INTEGER NOT NULL,
    deferred_since INTEGER,
    defer_reason   TEXT,
    CHECK ((hash IS NULL) = (bytes IS NULL))
);
INSERT INTO outbox_new (seq, doc_id, kind, space_id, hash, bytes, created_at, deferred_since, defer_reason)
    SELECT seq, doc_id, kind, space_id, hash, bytes, created_at, deferred_since, defer_reason FROM outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox_new';
UPDATE sqlite_sequence SET name = 'outbox_new' WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_doc ON outbox(doc_id);
-- Unique among the changes it holds; the entries that wait without one take no index space.
CREATE UNIQUE INDEX outbox_hash ON outbox(hash) WHERE hash IS NOT NULL;

-- A document kept in creation form gives its creation's history entry from the form itself
-- (`documents::creation_history`): `item_history` keeps rows for built changes only, which saves
-- a row and its index on every create and every document received in creation form. The
-- history is read per item (a handful of rows, sorted in memory), so its time index goes too.
DELETE FROM item_history WHERE length(hash) <> 64;
DROP INDEX item_history_time;

-- Purging a space (rare) scans `documents` instead of keeping an index entry per document.
DROP INDEX documents_space;

-- `item_json` keeps each item without the fields `items` has in columns, compressed
-- (query/item_row.rs): the projection rebuild this migration asks for rewrites every row.
-- The media an item references, one row per reference in the item's order: what media
-- collection and transfers scan, now that the JSON is compressed (and only items with media
-- have rows).
CREATE TABLE item_media (
    item      INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    reference TEXT NOT NULL,
    PRIMARY KEY (item, position)
) WITHOUT ROWID;
