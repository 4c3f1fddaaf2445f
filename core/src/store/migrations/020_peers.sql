-- Device to device (docs/protocol.md, "Device to device").
-- The server's key, pinned with its first credentials: certificates are checked against it.
ALTER TABLE account ADD COLUMN server_key BLOB;
-- Signatures of changes other devices made, as they arrived (from a server or a peer), so that
-- this device can show them to a peer; its own changes it signs when it shows them.
CREATE TABLE change_signatures (
    hash      BLOB PRIMARY KEY,
    doc_id    TEXT NOT NULL,
    device    TEXT NOT NULL,
    signature BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX change_signatures_doc ON change_signatures(doc_id);
-- Membership certificates, this device's own and those of devices whose changes it holds.
CREATE TABLE certificates (
    device     TEXT NOT NULL,
    space_id   TEXT NOT NULL,
    person_id  TEXT NOT NULL,
    role       TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    body       BLOB NOT NULL,
    signature  BLOB NOT NULL,
    PRIMARY KEY (device, space_id)
) WITHOUT ROWID;
-- The newest revocation list of each space.
CREATE TABLE revocation_lists (
    space_id  TEXT PRIMARY KEY,
    issued_at INTEGER NOT NULL,
    body      BLOB NOT NULL,
    signature BLOB NOT NULL
);
-- A change carried for another device (store-and-forward): its author's device and signature,
-- pushed as they are. NULL for this device's own changes.
ALTER TABLE outbox ADD COLUMN signer TEXT;
ALTER TABLE outbox ADD COLUMN signature BLOB;
-- What this device carries for others at most (bytes of changes, age in ms).
ALTER TABLE device ADD COLUMN relay_max_bytes INTEGER NOT NULL DEFAULT 33554432;
ALTER TABLE device ADD COLUMN relay_max_age_ms INTEGER NOT NULL DEFAULT 1209600000;
-- Spaces this device meets other devices in on a local network (opt-in per space).
CREATE TABLE nearby_spaces (
    space_id TEXT PRIMARY KEY
);
-- Offline invites this device was given face to face (joining offline): the invite as shown,
-- until the server confirms it at the first connection.
CREATE TABLE guest_invites (
    space_id   TEXT PRIMARY KEY,
    invite     BLOB NOT NULL,
    secret     BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    confirmed  INTEGER NOT NULL DEFAULT 0
);
-- The person id this device writes under before it registers (a new member joining offline);
-- proposed to the server at registration.
ALTER TABLE device ADD COLUMN provisional_person TEXT;
