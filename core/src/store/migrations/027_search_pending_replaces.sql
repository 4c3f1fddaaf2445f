-- An edit leaves the item's row in `items_fts` for the next batch to replace
-- (store/search_index.rs): `replaces` = 1 when the batch deletes the item's index row before it
-- inserts the pending texts. Rows pending before this schema are items without an index row.
ALTER TABLE search_pending ADD COLUMN replaces INTEGER NOT NULL DEFAULT 0;
