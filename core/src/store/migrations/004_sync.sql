-- Sync with a server: the device's signing key, its account, the server's read-only copy of
-- its memberships, and per-space cursors and status.

-- Ed25519 secret key of this device (32 bytes), created on open when missing.
ALTER TABLE device ADD COLUMN signing_key BLOB;

-- The server registration of this device; one row.
CREATE TABLE account (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    server        TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    person_id     TEXT NOT NULL,
    token         TEXT NOT NULL,
    registered_at INTEGER NOT NULL
);

-- Memberships as the server last stated them (read-only copy; the server decides).
CREATE TABLE memberships (
    space_id   TEXT PRIMARY KEY,
    person_id  TEXT NOT NULL,
    role       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Where each space's sync stands.
CREATE TABLE sync_spaces (
    space_id     TEXT PRIMARY KEY,
    cursor       TEXT,
    last_success INTEGER,
    last_attempt INTEGER,
    last_error   TEXT
);
