-- An edit made on this device is stored as a patch in its outbox entry (`edit`, with `bytes`
-- and `hash` NULL) and its Automerge change is built when the document is next loaded: for a
-- push, a merge, or another edit that needs the document (store/documents.rs, `PendingEdit`).
-- Entries from before this schema all carry their change.
ALTER TABLE outbox ADD COLUMN edit BLOB;
-- 1 when the last merge left an item's document in a form this core does not read (a newer
-- core's): its projection is the last readable state, and an edit is then built at once (which
-- refuses it) instead of being kept as a patch against that state. 0 once the document was read
-- (a projection, an edit built at once) or stored new; NULL, not known, for every document
-- stored before this schema: its first edit is built at once.
ALTER TABLE documents ADD COLUMN unreadable INTEGER;
