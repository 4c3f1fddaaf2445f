-- Local media store (docs/media.md): one row per content-addressed file, original or derived.
-- The bytes live in `<database>.media/<hash>`; a row outlives its bytes (present = 0 after
-- eviction) so that the file can be fetched again.
CREATE TABLE media (
    hash           TEXT PRIMARY KEY,          -- BLAKE3, 64 lowercase hex digits
    mime_type      TEXT NOT NULL,
    size           INTEGER NOT NULL,
    variant        TEXT NOT NULL CHECK (variant IN ('original', 'preview', 'thumbnail')),
    of_hash        TEXT,                      -- the original's hash, for previews and thumbnails
    width          INTEGER,
    height         INTEGER,
    duration_ms    INTEGER,
    on_server      INTEGER NOT NULL DEFAULT 0,
    pinned         INTEGER NOT NULL DEFAULT 0,
    present        INTEGER NOT NULL DEFAULT 1,
    created_ms     INTEGER NOT NULL,
    last_access_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Eviction walks evictable files from the least recently used.
CREATE INDEX media_evictable ON media (last_access_ms)
    WHERE present = 1 AND on_server = 1 AND pinned = 0;
-- The upload queue.
CREATE INDEX media_unsynced ON media (created_ms) WHERE present = 1 AND on_server = 0;
CREATE INDEX media_of ON media (of_hash) WHERE of_hash IS NOT NULL;

-- Store-wide media settings; one row.
CREATE TABLE media_settings (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    budget_bytes INTEGER NOT NULL
);
