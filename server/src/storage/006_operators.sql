-- quartier-server schema version 6: operator approval (docs/server.md, "Who may do what") and
-- a lookup of devices by public key (a key registers once).
ALTER TABLE persons ADD COLUMN approved_at INTEGER;
CREATE INDEX devices_by_public_key ON devices (public_key);
