-- The devices whose signatures this device keeps, by space: what a sync asks certificates for
-- (`credentials.signers`). Read before from every kept signature joined with its document, which
-- touched every page of `documents` (creation forms inline) at each sync: 13 MiB of mapped
-- pages and 10 000 lookups for a 10 000-item space.
CREATE TABLE signers (
    space_id TEXT NOT NULL,
    device   TEXT NOT NULL,
    PRIMARY KEY (space_id, device)
) WITHOUT ROWID;
INSERT OR IGNORE INTO signers (space_id, device)
    SELECT DISTINCT d.space_id, s.device FROM change_signatures s
    JOIN documents d ON d.doc_id = s.doc_id
    WHERE d.space_id IS NOT NULL;
