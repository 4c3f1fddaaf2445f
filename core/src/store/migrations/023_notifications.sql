-- Notifications (docs/neighbourhood.md): what is new for this device's person, each event once
-- (`key`), with its read state; what the person follows; the kinds they turned off; and since
-- when notifications are made (nothing from before the feature, nor from a rebuild).
CREATE TABLE notifications (
    id       INTEGER PRIMARY KEY,
    key      TEXT NOT NULL UNIQUE,
    kind     TEXT NOT NULL,
    space_id TEXT NOT NULL,
    item_id  TEXT,
    person_id TEXT,
    detail   TEXT,
    at       INTEGER NOT NULL,
    read_at  INTEGER
);
CREATE INDEX notifications_unread ON notifications(id) WHERE read_at IS NULL;
CREATE TABLE follows (
    kind  TEXT NOT NULL,
    value TEXT NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE TABLE notification_settings (
    kind    TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL
) WITHOUT ROWID;
-- Changes to follows and turned-off kinds not yet sent: the server keeps them for all the
-- person's devices.
CREATE TABLE settings_outbox (
    kind  TEXT NOT NULL,
    value TEXT NOT NULL,
    "on"  INTEGER NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
ALTER TABLE device ADD COLUMN notifications_since INTEGER;
UPDATE device SET notifications_since = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
