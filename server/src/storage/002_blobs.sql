-- quartier-server schema version 2: blobs (media). See docs/blobs.md.

-- One row per blob the server holds or is receiving, by BLAKE3 hash (hex).
-- stored_at is NULL while the upload is under way (chunks in the blob store's partial area).
CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    mime_type   TEXT NOT NULL,
    chunk_size  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    stored_at   INTEGER
);

-- Chunks of uploads under way that are durably written in the partial area.
CREATE TABLE blob_chunks (
    hash   TEXT NOT NULL,
    idx    INTEGER NOT NULL,
    PRIMARY KEY (hash, idx)
) WITHOUT ROWID;

-- Which space a blob is charged to, and who announced it there: the quota counts these rows
-- (pending uploads included, so concurrent uploads cannot overrun it), and an uploader may fetch
-- what it uploaded before any item references it.
CREATE TABLE blob_claims (
    space_id    TEXT NOT NULL,
    hash        TEXT NOT NULL,
    person_id   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (space_id, hash)
) WITHOUT ROWID;
CREATE INDEX blob_claims_hash ON blob_claims(hash);

-- Which stored item document references which blob (current state of the document, kept on
-- every stored change; a deleted item references nothing). Downloads are allowed to a person
-- who may read at least one of these documents.
CREATE TABLE blob_refs (
    doc_id  TEXT NOT NULL,
    hash    TEXT NOT NULL,
    PRIMARY KEY (doc_id, hash)
) WITHOUT ROWID;
CREATE INDEX blob_refs_hash ON blob_refs(hash, doc_id);
