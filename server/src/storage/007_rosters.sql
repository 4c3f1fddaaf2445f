-- quartier-server schema version 7: member lists (docs/protocol.md, "Members and names").
-- `roster_seq` orders a space's member changes — joined, role changed, display name changed,
-- left — so that a device fetches only what changed since its last page. One sequence over the
-- whole table: each change takes the largest plus one. Members of before this version are one
-- change, 1, which a device new to the list (`members_after` 0) receives.
ALTER TABLE members ADD COLUMN roster_seq INTEGER NOT NULL DEFAULT 0;
UPDATE members SET roster_seq = 1;
CREATE INDEX members_roster ON members (space_id, roster_seq);
CREATE INDEX members_by_roster_seq ON members (roster_seq);
