-- quartier-server schema version 8: every member change of a space has a number of its own.
-- Version 7 gave every member of before it the same `roster_seq` (1). A member list is paged by
-- that number, so a page could end inside such a group and the members after it in the group
-- were never sent. Members who share a number with another member of their space get new ones,
-- above every number given so far (devices receive them again, which changes nothing).
UPDATE members SET roster_seq = numbered.seq
FROM (
    SELECT space_id, person_id,
           (SELECT coalesce(max(roster_seq), 0) FROM members)
               + row_number() OVER (ORDER BY space_id, person_id) AS seq
    FROM members
    WHERE (space_id, roster_seq) IN (
        SELECT space_id, roster_seq FROM members GROUP BY space_id, roster_seq HAVING count(*) > 1
    )
) AS numbered
WHERE members.space_id = numbered.space_id AND members.person_id = numbered.person_id;
