-- quartier-server schema version 9: who may appoint caseworkers. Caseworkers read what is meant
-- for caseworkers only (professional secrecy, §203 StGB): not even a space's coordinators may.
-- So the welfare organisation running the server decides who becomes one, through persons its
-- operator names organisation admins (`admin grant-org-admin`); a coordinator can no longer
-- make a second account of their own a caseworker. Open caseworker invites were made by
-- coordinators under the old rule: they redeem nothing any more. Caseworkers already appointed
-- stay (the operator reviews them with `admin persons`).
CREATE TABLE org_admins (
    person_id  TEXT PRIMARY KEY REFERENCES persons(person_id),
    granted_at INTEGER NOT NULL
);
DELETE FROM invites WHERE role = 'caseworker';
