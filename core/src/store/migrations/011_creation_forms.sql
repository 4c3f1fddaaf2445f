-- History on demand: a document received in its creation form (`docs/protocol.md`, "Creation
-- records") is kept in that form — the author's actor, the change's time and message, the JSON
-- it wrote and the check bytes of its hash, CBOR + zstd (`documents::StoredCreation`) — instead
-- of being rebuilt through Automerge on arrival. The Automerge change is rebuilt the first time
-- the document is loaded for an edit or a merge, stored in doc_changes, and this column cleared.
ALTER TABLE documents ADD COLUMN creation BLOB;
