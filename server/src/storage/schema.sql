-- quartier-server embedded database (SQLite). Version 1.

CREATE TABLE persons (
    person_id    TEXT PRIMARY KEY,
    display_name TEXT,
    created_at   INTEGER NOT NULL
);

-- token_hash: BLAKE3 of the bearer token; the token itself is never stored.
CREATE TABLE devices (
    device_id  TEXT PRIMARY KEY,
    person_id  TEXT NOT NULL REFERENCES persons(person_id),
    public_key BLOB NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE spaces (
    space_id   TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE members (
    space_id   TEXT NOT NULL REFERENCES spaces(space_id),
    person_id  TEXT NOT NULL REFERENCES persons(person_id),
    role       TEXT NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (space_id, person_id)
) WITHOUT ROWID;

-- code_hash: BLAKE3 of the invite code.
CREATE TABLE invites (
    code_hash  BLOB PRIMARY KEY,
    space_id   TEXT NOT NULL REFERENCES spaces(space_id),
    role       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    max_uses   INTEGER NOT NULL,
    uses       INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL
);

-- What the permission checks and pull filters need of each document, kept current on every
-- stored change; plus a compacted snapshot for new members.
CREATE TABLE docs (
    doc_id        TEXT PRIMARY KEY,
    space_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    author        TEXT,
    item_kind     TEXT,
    audience      TEXT,
    snapshot      BLOB,
    snapshot_seq  INTEGER NOT NULL DEFAULT 0,
    changes_since INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX docs_space ON docs(space_id, doc_id);

-- The log every pull reads: one row per stored change, plus `reveal` rows when a document
-- becomes visible to more people (they then receive its snapshot).
CREATE TABLE log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id   TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    record     TEXT NOT NULL CHECK (record IN ('change', 'reveal')),
    hash       BLOB UNIQUE,
    bytes      BLOB,
    device_id  TEXT,
    signature  BLOB,
    received_at INTEGER NOT NULL
);
CREATE INDEX log_space ON log(space_id, seq);
CREATE INDEX log_doc ON log(doc_id, seq);
