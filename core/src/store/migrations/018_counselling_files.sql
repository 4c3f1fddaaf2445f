-- Schema 18: counselling attachments (docs/counselling.md, "Attachments"). Their ciphertext is
-- kept in the media folder's `counselling/` subfolder, named by its BLAKE3 hash (the name the
-- server knows it by); the key to open it travels only inside the message that carries it.
-- This table says which conversation each file belongs to, which of this device's messages
-- carries it (NULL for a copy fetched from the server) and whether the server has it.
CREATE TABLE counselling_files (
    channel_id TEXT NOT NULL,
    hash       TEXT NOT NULL,
    record_id  TEXT,
    -- Bytes of ciphertext.
    size       INTEGER NOT NULL,
    -- 0: waiting for upload; 1: the server has it; -1: the server refused it (its message
    -- shows why and is not sent).
    uploaded   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, hash)
);
CREATE INDEX counselling_files_record ON counselling_files(record_id);
