-- Device to device, the signatures of an initial sync in a stream of their own
-- (docs/protocol.md, "Device to device"): where this device stands in each space's stream, as
-- the server's last page gave it (NULL: no stream under way; '' asks for one over everything
-- held), and whether this device keeps others' signatures to show documents to peers at all.
ALTER TABLE sync_spaces ADD COLUMN signatures_next TEXT;
ALTER TABLE device ADD COLUMN peer_signatures INTEGER NOT NULL DEFAULT 1;
