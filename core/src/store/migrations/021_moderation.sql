-- Moderation (docs/neighbourhood.md). This device's reports and decisions until the server takes
-- them (or refuses them: `refused` holds the code and message until the app dismisses it).
CREATE TABLE moderation_outbox (
    id         TEXT PRIMARY KEY,
    space_id   TEXT NOT NULL,
    action     TEXT NOT NULL,
    item_id    TEXT,
    person_id  TEXT,
    reason     TEXT,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    refused    TEXT
);
CREATE INDEX moderation_outbox_item ON moderation_outbox(item_id) WHERE item_id IS NOT NULL;
-- The server's moderation log, as far as this person may see it, and where each space stands.
CREATE TABLE moderation_log (
    space_id  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    action    TEXT NOT NULL,
    item_id   TEXT,
    person_id TEXT,
    actor     TEXT,
    reason    TEXT,
    text      TEXT,
    at        INTEGER NOT NULL,
    PRIMARY KEY (space_id, seq)
) WITHOUT ROWID;
CREATE INDEX moderation_log_item ON moderation_log(item_id, seq) WHERE item_id IS NOT NULL;
CREATE TABLE moderation_cursors (
    space_id TEXT PRIMARY KEY,
    after    INTEGER NOT NULL
) WITHOUT ROWID;
-- What the decisions left standing: items hidden by the coordinators, spaces where this person
-- is blocked; and this person's mutes (with changes not yet sent).
CREATE TABLE hidden_items (item_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE blocked_spaces (space_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE muted_persons (person_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE mute_outbox (
    person_id TEXT PRIMARY KEY,
    muted     INTEGER NOT NULL,
    seq       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Bit 1: hidden by the coordinators; bit 2: its author muted by this person.
ALTER TABLE items ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
