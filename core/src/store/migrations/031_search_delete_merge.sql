-- FTS5 merges a segment of the contentless-delete search index as soon as a tenth of its rows
-- are deleted (`deletemerge`, default 10). An edit of an item replaces its index row (a delete
-- and an insert, `search_index`), so edits spread deletions over every segment and the batch
-- that indexes them merged some segment nearly every time: that batch, one write in sixteen,
-- was a quarter of all the time edits took. 0 leaves tombstoned rows to the ordinary merges
-- (`automerge`), which drop them as they merge levels; the words an erasure removes are still
-- dropped at once by the erasure's own `optimize` (`search_index::drop_removed_words`). A
-- migration that creates the index again must set this again.
INSERT INTO items_fts(items_fts, rank) VALUES ('deletemerge', 0);
