-- No schema change. The search index now also holds the stems of Arabic words with attached
-- proclitics (`بالجيران` is indexed with `الجيران` and `جيران`) and folds emoji to `u<hex>`
-- tokens; `items_fts` is a projection, so marking this migration as rebuilding projections
-- gives existing stores the new terms.
SELECT 1;
