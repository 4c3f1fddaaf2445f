-- quartier-server schema version 5: a member removed from a space (or who left it) may come back
-- only through an invite made after the removal. `invites_before` is the highest invite rowid
-- when the member was removed: invites up to it are spent for them. Members removed before
-- this version have none recorded; every invite made until now counts as made before.
ALTER TABLE members ADD COLUMN invites_before INTEGER;
UPDATE members SET invites_before = (SELECT coalesce(max(rowid), 0) FROM invites) WHERE revoked_at IS NOT NULL;
