-- Light map pins (issue 14): a map needs each item's id, kind, title and exact position, not
-- the whole item. `items` carries the title (JSON of its languages) and the position, so a
-- viewport of pins reads the R*Tree and the light rows only (`Store::map_pins`). Filled by the
-- projection rebuild.
ALTER TABLE items ADD COLUMN title TEXT NOT NULL DEFAULT '{}';
ALTER TABLE items ADD COLUMN lat REAL;
ALTER TABLE items ADD COLUMN lon REAL;
