-- A projection rebuild owed by a migration is recorded here in the migration's transaction and
-- cleared by the rebuild's, so that a rebuild cut short (the app killed during a long one) is
-- done again at the next open instead of leaving search and maps empty.
CREATE TABLE projection_rebuild (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    owed_since INTEGER NOT NULL
);
