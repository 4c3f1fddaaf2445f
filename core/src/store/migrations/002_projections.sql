-- Projections: what the queries read. Written in the same transaction as the document change
-- that causes them; rebuildable from the documents.

CREATE TABLE spaces (
    space_id   TEXT PRIMARY KEY,
    time_zone  TEXT NOT NULL,
    json       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE items (
    id          INTEGER PRIMARY KEY,
    item_id     TEXT NOT NULL UNIQUE,
    space_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    author      TEXT NOT NULL,
    parent_id   TEXT,
    audience    TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    valid_until INTEGER,
    json        TEXT NOT NULL
);
-- Feed order: newest first within a space, id as tie-breaker for keyset pagination.
CREATE INDEX items_feed ON items(space_id, created_at DESC, id DESC);
CREATE INDEX items_kind ON items(space_id, kind, created_at DESC, id DESC);
CREATE INDEX items_author ON items(author, created_at DESC);
CREATE INDEX items_parent ON items(parent_id, created_at) WHERE parent_id IS NOT NULL;

CREATE TABLE item_tags (
    tag  TEXT NOT NULL,
    item INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    PRIMARY KEY (tag, item)
) WITHOUT ROWID;
CREATE INDEX item_tags_item ON item_tags(item);

-- Full text, folded by the core (case, diacritics, ä/ae, ß/ss) before it gets here; rowid =
-- items.id. secure-delete: erased text leaves the index at once, not at the next merge.
CREATE VIRTUAL TABLE items_fts USING fts5(title, body, extra, tokenize = 'unicode61 remove_diacritics 0');
INSERT INTO items_fts(items_fts, rank) VALUES ('secure-delete', 1);

-- Map: one point (min = max) per located item; id = items.id.
CREATE VIRTUAL TABLE items_geo USING rtree(id, min_lat, max_lat, min_lon, max_lon);

-- Offers' opening rules (JSON), evaluated in the space's time zone.
CREATE TABLE offer_hours (
    item  INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    rules TEXT NOT NULL
);

-- Events: series bounds for prefiltering, timing (JSON) for expansion.
CREATE TABLE event_series (
    item        INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    first_start INTEGER NOT NULL,
    last_end    INTEGER,
    timing      TEXT NOT NULL
);
CREATE INDEX event_series_start ON event_series(first_start);
