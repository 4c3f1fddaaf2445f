-- quartier-server schema version 10: counselling (docs/counselling.md). The server relays
-- end-to-end encrypted records and keeps only what routing needs. No table names the person
-- behind a conversation's resident side: a conversation is reached with an access token whose
-- hash is all that is kept here.

-- Counselling teams of a space, named and routed by its coordinators.
CREATE TABLE teams (
    team_id        TEXT PRIMARY KEY,
    space_id       TEXT NOT NULL REFERENCES spaces(space_id),
    name           TEXT NOT NULL,
    topic          TEXT NOT NULL,
    -- JSON array of postcodes (or their leading digits); empty: the whole space.
    postcodes      TEXT NOT NULL DEFAULT '[]',
    retention_days INTEGER,
    created_at     INTEGER NOT NULL
);
CREATE INDEX teams_space ON teams(space_id);

-- Caseworkers of a team (persons holding the caseworker role in the team's space).
CREATE TABLE team_members (
    team_id   TEXT NOT NULL REFERENCES teams(team_id),
    person_id TEXT NOT NULL REFERENCES persons(person_id),
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (team_id, person_id)
) WITHOUT ROWID;
CREATE INDEX team_members_person ON team_members(person_id);

-- Conversations between a resident side and a team. Who opened one is not recorded.
CREATE TABLE conversations (
    conversation_id TEXT PRIMARY KEY,
    team_id         TEXT NOT NULL REFERENCES teams(team_id),
    token_hash      BLOB NOT NULL,
    opened_at       INTEGER NOT NULL,
    closed_at       INTEGER
);
CREATE INDEX conversations_team ON conversations(team_id);

-- Published identity keys (one Olm account each): a caseworker device's (device_id) or a
-- resident side's, made for one conversation (conversation_id), never both.
CREATE TABLE counselling_keys (
    curve25519      TEXT PRIMARY KEY,
    ed25519         TEXT NOT NULL,
    device_id       TEXT REFERENCES devices(device_id),
    conversation_id TEXT REFERENCES conversations(conversation_id),
    fallback_key    TEXT,
    published_at    INTEGER NOT NULL,
    CHECK ((device_id IS NULL) <> (conversation_id IS NULL))
);
CREATE INDEX counselling_keys_device ON counselling_keys(device_id);
CREATE INDEX counselling_keys_conversation ON counselling_keys(conversation_id);

-- Unclaimed one-time keys; a claim deletes the one it hands out.
CREATE TABLE one_time_keys (
    curve25519 TEXT NOT NULL REFERENCES counselling_keys(curve25519) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    PRIMARY KEY (curve25519, key)
) WITHOUT ROWID;

-- Encrypted records of conversations and of teams' notes channels (conversation_id = the
-- team's id), in the order the server took them.
CREATE TABLE sealed (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    record_id       TEXT NOT NULL UNIQUE,
    sender          TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    ciphertext      BLOB NOT NULL,
    stored_at       INTEGER NOT NULL
);
CREATE INDEX sealed_conversation ON sealed(conversation_id, seq);

-- Olm messages waiting for their recipient; deleted once it has them.
CREATE TABLE to_device (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  TEXT NOT NULL,
    sender     TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    stored_at  INTEGER NOT NULL
);
CREATE INDEX to_device_recipient ON to_device(recipient, seq);

-- Passphrase-sealed key backups, found by a random id the resident keeps (the recovery
-- code), replaced only with the secret that made them (its hash here).
CREATE TABLE key_backups (
    backup_id   TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    sealed      BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- That an erasure happened: who asked (resident side or a caseworker), when, which
-- conversation. Never any content.
CREATE TABLE erasures (
    conversation_id TEXT PRIMARY KEY,
    team_id         TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    reason          TEXT NOT NULL,
    erased_at       INTEGER NOT NULL
);
