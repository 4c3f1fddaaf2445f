-- The help board (docs/neighbourhood.md): each step of a request's flow (respond, agree, done,
-- withdraw) in one log per space, and where each request stands.
CREATE TABLE help_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id   TEXT NOT NULL UNIQUE,
    space_id   TEXT NOT NULL,
    request_id TEXT NOT NULL,
    author     TEXT NOT NULL,
    -- The request's audience when the step was taken: who of the members receives the row.
    item_audience TEXT,
    action     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    person_id  TEXT,
    note       TEXT NOT NULL,
    contact    TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX help_log_space ON help_log(space_id, seq);
CREATE INDEX help_log_request ON help_log(request_id, action, actor);
-- Where each request stands. It could be derived from the log (its last agree/done/withdraw),
-- but every step is judged against it under the writer's lock, so it is kept as one row read
-- by primary key instead of a scan of the request's log entries.
CREATE TABLE help_state (
    request_id  TEXT PRIMARY KEY,
    space_id    TEXT NOT NULL,
    state       TEXT NOT NULL,
    agreed_with TEXT
) WITHOUT ROWID;
