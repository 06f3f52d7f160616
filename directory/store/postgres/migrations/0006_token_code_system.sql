-- One token lookup index instead of two: (param, type, code, system, id) answers `code` (any system) by a
-- range on its first three columns and `system|code` and `|code` by equality on four, as the two indexes
-- (param, type, code, id) and (param, type, system, code, id) did. Only `system|` (every code of a system)
-- now reads the parameter's whole range instead of one system's. The token table is the largest index
-- table but one (7.1 M rows at full scale): its second copy was a fifth of the index builds after a bulk
-- load, and of every write.
DROP INDEX IF EXISTS idx_token_system_code;
DROP INDEX IF EXISTS idx_token_code;
CREATE INDEX idx_token_code ON idx_token (param, type, code, system, id);
