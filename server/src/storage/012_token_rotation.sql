-- quartier-server schema version 12: a resident side can lock its other devices out of a
-- conversation (a lost phone) by replacing the access token (docs/counselling.md, "A lost
-- phone"). The replaced token's hash is kept, so a device still sending it is told it was
-- locked out (and deletes the conversation), and a repeated rotation is recognised as done.
ALTER TABLE conversations ADD COLUMN previous_token_hash BLOB;

-- Bytes of sealed records a conversation holds: bounded (MAX_CONVERSATION_SEALED_BYTES), so a
-- flood of records into one conversation cannot fill the server's disk.
ALTER TABLE conversations ADD COLUMN sealed_bytes INTEGER NOT NULL DEFAULT 0;
-- Attachments of erased conversations whose bytes may have to go (blobs::gc::drop_erased):
-- bounded work right after an erasure, instead of a scan of every blob.
CREATE TABLE erased_blobs (hash TEXT PRIMARY KEY) WITHOUT ROWID;

UPDATE conversations SET sealed_bytes =
    (SELECT coalesce(sum(length(ciphertext)), 0) FROM sealed s WHERE s.conversation_id = conversations.conversation_id);
