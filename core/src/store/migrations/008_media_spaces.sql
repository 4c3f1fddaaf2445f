-- A file this device imported must reach every space whose items use it (docs/blobs.md, "A file
-- in several spaces"): the server lets a space's members fetch a file only if its bytes were
-- uploaded into that space.
--
-- `imported`: the file came from this device's person, so uploading it is this device's job
-- (downloads are someone else's). Rows from before this version carry no such mark: files no
-- server has yet are imports, and so are files with the dimensions or duration only the importer
-- records (a download stores neither).
ALTER TABLE media ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
UPDATE media SET imported = 1 WHERE on_server = 0 OR width IS NOT NULL OR duration_ms IS NOT NULL;

-- The spaces each imported file has been uploaded into (or claimed in, for bytes this person
-- uploaded before).
CREATE TABLE media_spaces (
    hash     TEXT NOT NULL,
    space_id TEXT NOT NULL,
    PRIMARY KEY (hash, space_id)
) WITHOUT ROWID;
