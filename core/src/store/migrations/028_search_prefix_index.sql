-- A two-character prefix index in the search index (issue 14): a search for a short prefix
-- (`es`, `ka`, the first letters of a word being typed) read the lists of every indexed word
-- that begins with it and merged them before it could stop at the newest matches (`es` begins
-- words in 46 000 of the 100 000 bench items: 3.3 ms for the merge alone, and 15 ms for
-- `hier gibt es`); with `prefix = '2'` FTS5 keeps one list per two-character prefix and reads
-- it newest first. About 190 bytes more per item. The migration's step fills it again from the
-- items' rows (`search_index::rebuild`).
DROP TABLE items_fts;
CREATE VIRTUAL TABLE items_fts USING fts5(
    title, body, extra,
    content = '', contentless_delete = 1, prefix = '2',
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO items_fts(items_fts, rank) VALUES ('secure-delete', 1);
