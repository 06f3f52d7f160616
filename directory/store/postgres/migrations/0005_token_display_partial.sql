-- The :text modifier searches token displays by prefix; 84% of the token rows (identifiers, tags,
-- booleans, status codes) have no display, and an empty display never matches a non-empty prefix. The
-- partial index holds the other 16% (1.2 M of 7.1 M rows at full scale): building it after a bulk load
-- took 29 s for the whole table, and it is that much smaller to cache. The compiled prefix range
-- (display >= $1, a non-empty constant in the custom plan) implies the predicate.
DROP INDEX IF EXISTS idx_token_display;
CREATE INDEX idx_token_display ON idx_token (param, type, display, id) WHERE display > '';
