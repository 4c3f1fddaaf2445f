-- Calendar feeds (docs/standards.md): one secret feed address per member and space, kept as a
-- hash of its token. Asking for a new one replaces it (the old address stops working); leaving
-- the space or revoking ends it.
CREATE TABLE calendar_feeds (
    person_id  TEXT NOT NULL,
    space_id   TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (person_id, space_id)
) WITHOUT ROWID;
