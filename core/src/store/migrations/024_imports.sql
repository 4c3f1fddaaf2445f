-- Imports of the standards (docs/standards.md): which item each imported record became, keyed
-- by the record's source key (`hsds:service:…`, `ical:UID`, `geojson:…`), so that importing an
-- updated file updates the same items instead of adding new ones.
CREATE TABLE imported_items (
    space_id   TEXT NOT NULL,
    source_key TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    PRIMARY KEY (space_id, source_key)
) WITHOUT ROWID;
CREATE INDEX imported_items_item ON imported_items(item_id);
