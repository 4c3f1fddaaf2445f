-- Member lists of the spaces this device belongs to, as the server last stated them (a
-- read-only copy, like `memberships`): who else is in a space, by the name they chose and their
-- role, to show offline. Filled by sync (`SpacePage::roster`); purged with the space.
CREATE TABLE space_members (
    space_id     TEXT NOT NULL,
    person_id    TEXT NOT NULL,
    display_name TEXT,
    role         TEXT NOT NULL,
    PRIMARY KEY (space_id, person_id)
) WITHOUT ROWID;

-- How far each space's member list is: the roster's `next` of the last page applied.
ALTER TABLE sync_spaces ADD COLUMN members_after INTEGER;
