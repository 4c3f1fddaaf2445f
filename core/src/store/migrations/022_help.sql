-- The help board (docs/neighbourhood.md): this device's steps until the server takes them (or
-- refuses them: `refused` holds the code and message until the app dismisses it), the help log
-- as far as this person may see it, and where each space stands in it.
CREATE TABLE help_outbox (
    id         TEXT PRIMARY KEY,
    space_id   TEXT NOT NULL,
    request_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    person_id  TEXT,
    note       TEXT NOT NULL,
    contact    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    refused    TEXT
);
CREATE INDEX help_outbox_request ON help_outbox(request_id);
CREATE TABLE help_log (
    space_id   TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    actor      TEXT,
    person_id  TEXT,
    note       TEXT,
    contact    TEXT,
    at         INTEGER NOT NULL,
    PRIMARY KEY (space_id, seq)
) WITHOUT ROWID;
CREATE INDEX help_log_request ON help_log(request_id, seq);
CREATE TABLE help_cursors (
    space_id TEXT PRIMARY KEY,
    after    INTEGER NOT NULL
) WITHOUT ROWID;
