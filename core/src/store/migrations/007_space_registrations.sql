-- Spaces created on this device to be shared: registered with the server by the next sync
-- that reaches it (`SyncClient::create_shared_space`), then removed from here.
CREATE TABLE space_registrations (
    space_id     TEXT PRIMARY KEY,
    requested_at INTEGER NOT NULL
);
