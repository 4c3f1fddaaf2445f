-- Changes a server refused for good: out of the outbox, the document returned to what the
-- server accepted, and kept here so the person sees "not delivered: reason" and can copy what
-- they wrote or discard it. Nothing a person wrote disappears silently.
CREATE TABLE undelivered (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id     TEXT NOT NULL,
    space_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    -- The protocol's reject code (snake_case, e.g. `forbidden`) and the server's message.
    code       TEXT NOT NULL,
    message    TEXT NOT NULL,
    refused_at INTEGER NOT NULL,
    -- JSON array of the fields the refused change (and edits that built on it) set.
    fields     TEXT NOT NULL,
    -- JSON of the document as the person last saw it, before it was returned.
    content    TEXT,
    -- The refused change itself.
    hash       BLOB NOT NULL,
    bytes      BLOB NOT NULL
);
CREATE INDEX undelivered_doc ON undelivered(doc_id);

-- Deferred pushes: when the server first said "later", and why (`missing_dependency`,
-- `server_fault`), so that a change deferred too long is reported instead of waiting silently.
ALTER TABLE outbox ADD COLUMN deferred_since INTEGER;
ALTER TABLE outbox ADD COLUMN defer_reason TEXT;

-- Set when a creation record from the server could not be rebuilt bit for bit (a server whose
-- rule differs from this core's): from then on this device asks for snapshots instead, so the
-- page is fetched again in the other form rather than failing the same way forever.
ALTER TABLE device ADD COLUMN creation_records_failed_at INTEGER;
