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
-- The operator's imports (`quartier-server import …`): which item each imported record became,
-- by source key, so that importing an updated file updates the same items; and the device each
-- importing person's changes are signed with (its key never leaves the data folder).
CREATE TABLE imported_items (
    space_id   TEXT NOT NULL,
    source_key TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    PRIMARY KEY (space_id, source_key)
) WITHOUT ROWID;
CREATE TABLE import_devices (
    person_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    secret    BLOB NOT NULL
) WITHOUT ROWID;
