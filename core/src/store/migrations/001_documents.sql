-- Documents and sync bookkeeping: the source of truth. Everything in the projection tables
-- (migrations 002+) can be rebuilt from these.

-- This device's Automerge actor id; one row.
CREATE TABLE device (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    actor      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row per Automerge document (an item or a space). `snapshot` is the compacted state
-- (NULL until the first compaction); later changes live in doc_changes.
CREATE TABLE documents (
    doc_id         TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('item', 'space')),
    space_id       TEXT,
    snapshot       BLOB,
    snapshot_bytes INTEGER NOT NULL DEFAULT 0,
    change_bytes   INTEGER NOT NULL DEFAULT 0,
    change_count   INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX documents_space ON documents(space_id);

-- Incremental changes since the snapshot, including changes whose dependencies have not
-- arrived yet (they are re-queued when the document is loaded).
CREATE TABLE doc_changes (
    id     INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    hash   BLOB NOT NULL,
    bytes  BLOB NOT NULL,
    UNIQUE (doc_id, hash)
);

-- Local (and relayed) changes not yet acknowledged by a server.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    space_id   TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    bytes      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_doc ON outbox(doc_id);
