-- The feed's indexes in ascending order. Descending on `created_at`, every new item went to the
-- left edge of its space's range, where SQLite's b-tree balancing rewrote three sibling leaves
-- and their parent on each overflow: about two pages per index per create, six of the 22 pages a
-- create wrote. Ascending, a new item is appended at the right of its range (one page). The
-- queries' `ORDER BY created_at DESC, id DESC` scan the same indexes backwards.
DROP INDEX items_feed;
DROP INDEX items_kind;
DROP INDEX items_author;
CREATE INDEX items_feed ON items(space_id, created_at, id);
CREATE INDEX items_kind ON items(space_id, kind, created_at, id);
CREATE INDEX items_author ON items(author, created_at);
