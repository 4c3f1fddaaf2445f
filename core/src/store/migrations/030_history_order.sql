-- The sequence number of a change among its device's changes of the document
-- (`Change::seq`): an item's history orders the changes one device made within the same
-- millisecond by it, in the order they were made (query/detail.rs). The step after this SQL
-- (`projection::fill_history_seq`) fills it in from the documents for the rows stored before
-- that share an item, a device and a millisecond; the other old rows keep NULL, which their
-- order does not need.
ALTER TABLE item_history ADD COLUMN seq INTEGER;
