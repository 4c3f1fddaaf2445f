-- quartier-server schema version 4: blobs are readable through a space only if their bytes were
-- uploaded into it, and uploads under way belong to their uploader (docs/blobs.md).

-- One upload under way per blob and uploader: another person announcing the same hash (with
-- any size) has an upload of their own and never touches this one. touched_at moves with every
-- announcement and chunk; abandoned uploads are collected after a grace period.
CREATE TABLE blob_uploads (
    hash        TEXT NOT NULL,
    person_id   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mime_type   TEXT NOT NULL,
    chunk_size  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    touched_at  INTEGER NOT NULL,
    PRIMARY KEY (hash, person_id)
) WITHOUT ROWID;
CREATE INDEX blob_uploads_touched ON blob_uploads(touched_at);

-- Chunks of an upload under way that are durably written in the blob store's partial area.
CREATE TABLE blob_upload_chunks (
    hash        TEXT NOT NULL,
    person_id   TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    PRIMARY KEY (hash, person_id, idx)
) WITHOUT ROWID;

-- Claims are now per space, blob and uploader. uploaded_at is set when this uploader's bytes
-- were verified: only then may the blob be fetched through this space. A pending claim
-- (uploaded_at NULL) only reserves quota. unreferenced_since is the garbage collector's mark:
-- the first run that found no item of the space referencing the blob.
CREATE TABLE blob_claims_v4 (
    space_id            TEXT NOT NULL,
    hash                TEXT NOT NULL,
    person_id           TEXT NOT NULL,
    size                INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    uploaded_at         INTEGER,
    unreferenced_since  INTEGER,
    PRIMARY KEY (space_id, hash, person_id)
) WITHOUT ROWID;
-- Before version 4 announcing a stored blob answered "complete" without any bytes. A claim
-- counts as an upload only if it was made before the blob was stored (its uploader was sending
-- chunks then); later ones were such answers and are dropped, as are uploads under way (their
-- chunks were shared by everyone who announced the hash): devices announce them again.
INSERT INTO blob_claims_v4 (space_id, hash, person_id, size, created_at, uploaded_at)
    SELECT c.space_id, c.hash, c.person_id, c.size, c.created_at, b.stored_at
    FROM blob_claims c JOIN blobs b ON b.hash = c.hash
    WHERE b.stored_at IS NOT NULL AND c.created_at <= b.stored_at;
DROP TABLE blob_claims;
ALTER TABLE blob_claims_v4 RENAME TO blob_claims;
CREATE INDEX blob_claims_hash ON blob_claims(hash, person_id);
DROP TABLE blob_chunks;
DELETE FROM blobs WHERE stored_at IS NULL;
