-- quartier-server schema version 11: a person's further devices. A device makes a one-use
-- code (kept as its BLAKE3 hash, valid for minutes); a new device that registers with it
-- becomes a device of the same person (a caseworker's second phone reads the team's
-- conversations too) instead of a new person.
CREATE TABLE device_links (
    code_hash  BLOB PRIMARY KEY,
    person_id  TEXT NOT NULL REFERENCES persons(person_id),
    expires_at INTEGER NOT NULL
);
