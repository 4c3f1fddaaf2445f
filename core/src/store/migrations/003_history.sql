-- Who changed what, when: one row per change of an item document, from the change's note
-- (person and fields), actor (device) and time. Keyed by item id so history of a document
-- whose content is not readable yet is kept too.
CREATE TABLE item_history (
    item_id TEXT NOT NULL,
    hash    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    person  TEXT,
    at      INTEGER NOT NULL,
    fields  TEXT NOT NULL,
    PRIMARY KEY (item_id, hash)
) WITHOUT ROWID;
CREATE INDEX item_history_time ON item_history(item_id, at);
