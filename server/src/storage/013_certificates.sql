-- Device to device (docs/protocol.md, "Certificates"): the key the server signs membership
-- certificates and revocation lists with, made once and kept with the data it vouches for (a
-- restored backup keeps the key devices pinned); and when each member's role last changed, so
-- that certificates of an earlier role are revoked.
CREATE TABLE server_identity (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    signing_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
ALTER TABLE members ADD COLUMN role_since INTEGER;
-- Offline invites (joining offline) redeemed: each once, by one person.
CREATE TABLE offline_invite_uses (
    invite_id TEXT PRIMARY KEY,
    space_id  TEXT NOT NULL,
    person_id TEXT NOT NULL,
    used_at   INTEGER NOT NULL
);
