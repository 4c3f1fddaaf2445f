-- Lighter rows for the hot paths (issue 14).
--
-- The item JSON (about 1 KB) leaves `items`: search and the map join every match or pin with its
-- `items` row for the viewer's filters, and with the JSON in the row each of them read a page of
-- its own. `item_json` holds it by the same row id; only the rows a query returns read it.
CREATE TABLE item_json (
    id   INTEGER PRIMARY KEY,
    json TEXT NOT NULL
);
INSERT INTO item_json (id, json) SELECT id, json FROM items;
ALTER TABLE items DROP COLUMN json;

-- The search index keeps no copy of the folded text (snippets are cut from the item's own text):
-- contentless, with deletes (an erased or edited item's terms leave the index at once, as the
-- secure-delete option made them do before). Filled again by the projection rebuild.
DROP TABLE items_fts;
CREATE VIRTUAL TABLE items_fts USING fts5(
    title, body, extra,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO items_fts(items_fts, rank) VALUES ('secure-delete', 1);
