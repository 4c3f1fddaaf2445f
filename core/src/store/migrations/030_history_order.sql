-- The sequence number of a change among its device's changes of the document
-- (`Change::seq`): an item's history orders the changes one device made within the same
-- millisecond by it, in the order they were made (query/detail.rs). NULL for the rows stored
-- before this schema, which keep the order they had: by time, then hash.
ALTER TABLE item_history ADD COLUMN seq INTEGER;
