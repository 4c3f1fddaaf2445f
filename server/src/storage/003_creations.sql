-- quartier-server schema version 3: the creation form of documents (docs/protocol.md,
-- "Creation records"), worked out once when a document's first change is stored, so that a new
-- member's initial sync reads rows instead of loading and rebuilding every document. A row
-- exists only while the document's whole history is that one change: the next change deletes
-- it. Documents stored before version 3 have no row and are worked out when pulled, as before.
-- A rowid table: rows of about 1 KB would spill out of a WITHOUT ROWID b-tree's pages (2.5 KB
-- of file per row there, against about 1.1 KB here).
CREATE TABLE doc_creations (
    doc_id      TEXT PRIMARY KEY,
    actor       BLOB NOT NULL,
    time_ms     INTEGER NOT NULL,
    message     TEXT,
    state       TEXT NOT NULL,
    hash_prefix BLOB NOT NULL
);
