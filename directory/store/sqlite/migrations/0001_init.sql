-- Directory store schema, SQLite. Text compares bytewise (BINARY collation), so prefix ranges and ORDER BY id
-- agree with the PostgreSQL schema (COLLATE "C").
CREATE TABLE resources (
	type         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	version_id   INTEGER NOT NULL,
	last_updated INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
	json         BLOB    NOT NULL,
	PRIMARY KEY (type, id)
);

-- One index table per parameter type. Lookup indexes lead with the equality columns (param, type), then the
-- compared value, and end with id so they cover the "id IN (SELECT id …)" subqueries the compiler emits.
CREATE TABLE idx_token (
	type    TEXT NOT NULL,
	id      TEXT NOT NULL,
	param   TEXT NOT NULL,
	system  TEXT NOT NULL DEFAULT '',
	code    TEXT NOT NULL DEFAULT '',
	display TEXT NOT NULL DEFAULT ''
);
CREATE INDEX idx_token_system_code ON idx_token (param, type, system, code, id);
CREATE INDEX idx_token_code ON idx_token (param, type, code, id);
CREATE INDEX idx_token_display ON idx_token (param, type, display, id);
CREATE INDEX idx_token_resource ON idx_token (type, id);

CREATE TABLE idx_string (
	type  TEXT NOT NULL,
	id    TEXT NOT NULL,
	param TEXT NOT NULL,
	value TEXT NOT NULL
);
CREATE INDEX idx_string_value ON idx_string (param, type, value, id);
CREATE INDEX idx_string_resource ON idx_string (type, id);

CREATE TABLE idx_reference (
	type     TEXT NOT NULL,
	id       TEXT NOT NULL,
	param    TEXT NOT NULL,
	ref_type TEXT NOT NULL,
	ref_id   TEXT NOT NULL
);
-- reverse lookups (reference search, chains, _has, _revinclude) start from the target
CREATE INDEX idx_reference_target ON idx_reference (ref_id, ref_type, param, type, id);
-- forward lookups (_include, replace/delete) start from the source
CREATE INDEX idx_reference_source ON idx_reference (type, id, param, ref_type, ref_id);

CREATE TABLE idx_date (
	type  TEXT    NOT NULL,
	id    TEXT    NOT NULL,
	param TEXT    NOT NULL,
	low   INTEGER NOT NULL, -- microseconds since the Unix epoch; open ends are the int64 extremes
	high  INTEGER NOT NULL
);
CREATE INDEX idx_date_range ON idx_date (param, type, low, high, id);
CREATE INDEX idx_date_resource ON idx_date (type, id);

CREATE TABLE idx_number (
	type  TEXT NOT NULL,
	id    TEXT NOT NULL,
	param TEXT NOT NULL,
	value REAL NOT NULL
);
CREATE INDEX idx_number_value ON idx_number (param, type, value, id);
CREATE INDEX idx_number_resource ON idx_number (type, id);

CREATE TABLE idx_geo (
	type  TEXT NOT NULL,
	id    TEXT NOT NULL,
	param TEXT NOT NULL,
	lat   REAL NOT NULL,
	lon   REAL NOT NULL
);
CREATE INDEX idx_geo_position ON idx_geo (param, type, lat, lon, id);
CREATE INDEX idx_geo_resource ON idx_geo (type, id);

CREATE TABLE idx_text (
	type TEXT NOT NULL,
	id   TEXT NOT NULL,
	word TEXT NOT NULL
);
CREATE INDEX idx_text_word ON idx_text (type, word, id);
CREATE INDEX idx_text_resource ON idx_text (type, id);

CREATE TABLE kv (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
