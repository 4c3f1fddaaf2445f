-- The search index in batches (store/search_index.rs): the folded texts of items written since
-- the last batch, moved into `items_fts` sixteen at a time or before a search. An item has a row
-- here or in `items_fts`, never both.
CREATE TABLE search_pending (
    id    INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body  TEXT NOT NULL,
    extra TEXT NOT NULL
);
