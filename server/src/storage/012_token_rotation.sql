-- quartier-server schema version 12: a resident side can lock its other devices out of a
-- conversation (a lost phone) by replacing the access token (docs/counselling.md, "A lost
-- phone"). The replaced token's hash is kept, so a device still sending it is told it was
-- locked out (and deletes the conversation), and a repeated rotation is recognised as done.
ALTER TABLE conversations ADD COLUMN previous_token_hash BLOB;
