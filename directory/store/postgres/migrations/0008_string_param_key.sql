-- The string value index leads with one integer for (param, type), param_key, instead of the two text
-- columns: (param_key, value, id) instead of (param, type, value, id). Building that index after a bulk
-- load sorts every string row (14.5 M at full scale), and with two variable-length columns in front each
-- comparison walked the index tuple to find the value and the id: 65 s single-core at full scale, 32 s
-- with the integer. Searches ask for param_key = the key of their (param, type) and read the same range
-- as before (the keys of the known pairs are distinct, see core.ParamKey). The writer computes the key;
-- this fills it for rows written before, with the same function in SQL. ADD COLUMN … GENERATED rewrites
-- the table once, and DROP EXPRESSION leaves an ordinary column behind.
ALTER TABLE idx_string ADD COLUMN param_key INTEGER NOT NULL
	GENERATED ALWAYS AS (('x' || left(md5(param || '|' || type), 8))::bit(32)::integer) STORED;
ALTER TABLE idx_string ALTER COLUMN param_key DROP EXPRESSION;
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_class WHERE relname = 'idx_string_value' AND relnamespace = current_schema()::regnamespace) THEN
		DROP INDEX idx_string_value;
		CREATE INDEX idx_string_value ON idx_string (param_key, value, id);
	ELSE
		-- A bulk load in progress dropped it and recreates it from its recorded definition.
		UPDATE kv SET value = convert_to(replace(convert_from(value, 'UTF8'), 'idx_string USING btree (param, type, value, id)', 'idx_string USING btree (param_key, value, id)'), 'UTF8')
		WHERE key = 'store.postgres.bulk-load';
	END IF;
END
$$;
