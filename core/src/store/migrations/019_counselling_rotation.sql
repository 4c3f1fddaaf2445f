-- Schema 19: a resident side locking its other devices out of a conversation (a lost phone,
-- docs/counselling.md): the new access token, until the server has taken it (then it becomes
-- `token`).
ALTER TABLE counselling_channels ADD COLUMN rotate_to TEXT;
