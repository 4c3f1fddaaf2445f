-- Schema 17. The media key of an encrypted store (docs/store.md, "Encryption at rest"): the bodies of its
-- media files are sealed with it (media/sealed.rs). It lives inside the encrypted database, so
-- that the store key protects it and a rekey of the store never has to rewrite the media. A
-- plain store has no row.
CREATE TABLE media_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL,
    -- 1 while media files written before the store was encrypted may still be plain: the next
    -- open seals them, one file at a time, and then sets it to 0.
    plain_files_left INTEGER NOT NULL DEFAULT 1
);
