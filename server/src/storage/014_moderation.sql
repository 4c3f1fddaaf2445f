-- Moderation (docs/neighbourhood.md): reports and coordinators' decisions in one log per space,
-- what they left standing (items hidden, persons blocked, items erased: no change of theirs is
-- taken again), each person's mutes, and each comment's item (erased with it).
CREATE TABLE moderation_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id   TEXT NOT NULL UNIQUE,
    space_id   TEXT NOT NULL,
    action     TEXT NOT NULL,
    item_id    TEXT,
    person_id  TEXT,
    actor      TEXT NOT NULL,
    -- Who receives the entry: 'coordinators' (reports, dismissals), 'members' (decisions
    -- about items, to those who may read the item: `item_audience`), 'person' (a block, to
    -- the person blocked).
    audience   TEXT NOT NULL,
    item_audience TEXT,
    reason     TEXT,
    text       TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX moderation_log_space ON moderation_log(space_id, seq);
CREATE INDEX moderation_log_item ON moderation_log(item_id, action, actor);
CREATE TABLE hidden_items (
    item_id  TEXT PRIMARY KEY,
    space_id TEXT NOT NULL,
    since    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE blocked_members (
    space_id  TEXT NOT NULL,
    person_id TEXT NOT NULL,
    since     INTEGER NOT NULL,
    PRIMARY KEY (space_id, person_id)
) WITHOUT ROWID;
CREATE TABLE erased_items (
    item_id  TEXT PRIMARY KEY,
    space_id TEXT NOT NULL,
    at       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE mutes (
    person_id TEXT NOT NULL,
    muted_id  TEXT NOT NULL,
    PRIMARY KEY (person_id, muted_id)
) WITHOUT ROWID;
ALTER TABLE docs ADD COLUMN parent_id TEXT;
CREATE INDEX docs_parent ON docs(parent_id) WHERE parent_id IS NOT NULL;
-- Each person's follows and notification kinds turned off, for all their devices.
CREATE TABLE person_settings (
    person_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (person_id, kind, value)
) WITHOUT ROWID;
