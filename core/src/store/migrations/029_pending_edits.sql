-- An edit made on this device is stored as a patch in its outbox entry (`edit`, with `bytes`
-- and `hash` NULL) and its Automerge change is built when the document is next loaded: for a
-- push, a merge, or another edit that needs the document (store/documents.rs, `PendingEdit`).
-- Entries from before this schema all carry their change.
ALTER TABLE outbox ADD COLUMN edit BLOB;
