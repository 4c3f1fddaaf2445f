-- Schema 16: counselling (docs/counselling.md). End-to-end encrypted conversations between a
-- resident side and a counselling team, and the team's case notes. What is decrypted here is
-- kept here (protected at rest by the store key when the app gives one); what leaves the
-- device is ciphertext.

-- The key that encrypts the Olm/Megolm state below (vodozemac pickles), and this device's key
-- backup id and its replacement secret.
CREATE TABLE counselling_device (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    pickle_key    BLOB NOT NULL,
    backup_id     TEXT,
    backup_secret TEXT
);

-- Olm accounts: one per conversation of the resident side (so that no two of a resident's
-- conversations share a key), and one caseworker identity (conversation_id NULL).
CREATE TABLE counselling_identities (
    curve25519      TEXT PRIMARY KEY,
    ed25519         TEXT NOT NULL,
    conversation_id TEXT UNIQUE,
    pickle          TEXT NOT NULL,
    -- 0: the server has not taken the identity yet; 1: published; one-time keys are topped up
    -- when the server reports few left (needs_keys).
    published       INTEGER NOT NULL DEFAULT 0,
    needs_keys      INTEGER NOT NULL DEFAULT 1,
    -- JSON: the keys made for the next request to publish (kept until a response arrives).
    to_publish      TEXT,
    inbox_after     INTEGER NOT NULL DEFAULT 0
);

-- Conversations and teams' notes channels this device takes part in.
CREATE TABLE counselling_channels (
    channel_id   TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('conversation', 'team_notes')),
    side         TEXT NOT NULL CHECK (side IN ('resident', 'team')),
    space_id     TEXT NOT NULL,
    team_id      TEXT NOT NULL,
    -- The resident side's access token (base64); NULL on the team side.
    token        TEXT,
    -- 1 once the server has the conversation (the resident side opened it).
    opened       INTEGER NOT NULL DEFAULT 0,
    after        INTEGER NOT NULL DEFAULT 0,
    -- JSON: the participants the server last listed.
    participants TEXT NOT NULL DEFAULT '[]',
    -- JSON list of this device's sending sessions (pickles), the current one last; earlier
    -- ones stay until every reader has their key.
    outbound     TEXT,
    inbound      TEXT,
    opened_at    INTEGER NOT NULL,
    closed_at    INTEGER,
    close_sent   INTEGER NOT NULL DEFAULT 1,
    erase_sent   INTEGER NOT NULL DEFAULT 1,
    -- Why the server refused this device (e.g. a wrong token), for the app.
    problem      TEXT
);

-- Records of a channel, decrypted (body) or waiting for their key (ciphertext).
CREATE TABLE counselling_records (
    record_id   TEXT PRIMARY KEY,
    channel_id  TEXT NOT NULL REFERENCES counselling_channels(channel_id) ON DELETE CASCADE,
    seq         INTEGER,
    local_order INTEGER NOT NULL,
    sender      TEXT NOT NULL,
    mine        INTEGER NOT NULL,
    session_id  TEXT NOT NULL,
    msg_index   INTEGER,
    written_at  INTEGER,
    body        TEXT,
    ciphertext  BLOB,
    -- Why the server refused it (this device's own records only).
    refused     TEXT
);
CREATE INDEX counselling_records_channel ON counselling_records(channel_id, local_order);
CREATE UNIQUE INDEX counselling_records_position
    ON counselling_records(session_id, msg_index) WHERE msg_index IS NOT NULL;

-- What waits to be pushed, in order.
CREATE TABLE counselling_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('sealed', 'to_device')),
    channel_id TEXT,
    record_id  TEXT,
    sender     TEXT NOT NULL,
    recipient  TEXT,
    session_id TEXT,
    ciphertext BLOB NOT NULL
);

-- Conversation keys that arrived before this device knew their conversation or their sender
-- as a participant: taken when it does.
CREATE TABLE counselling_pending_keys (
    conversation_id TEXT NOT NULL,
    sender          TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    session_key     TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (sender, session_id)
);

-- One-time keys claimed from the server, for the next key share to that device.
CREATE TABLE counselling_claimed (
    own          TEXT NOT NULL,
    identity     TEXT NOT NULL,
    one_time_key TEXT NOT NULL,
    PRIMARY KEY (own, identity)
);
