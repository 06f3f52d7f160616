-- Registration service schema, version 1. Times are Unix seconds (UTC).
CREATE TABLE organisations (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	name_key   TEXT NOT NULL, -- lower-cased, trimmed name: duplicate organisation detection
	created_at INTEGER NOT NULL
);
CREATE INDEX organisations_name_key ON organisations(name_key);

CREATE TABLE telematik_ids (
	telematik_id   TEXT PRIMARY KEY,
	org_id         INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
	profession_oid TEXT NOT NULL,
	linked_at      INTEGER NOT NULL,
	seq            INTEGER NOT NULL -- link order inside the organisation
);
CREATE INDEX telematik_ids_org ON telematik_ids(org_id);

CREATE TABLE org_admins (
	id             INTEGER PRIMARY KEY,
	org_id         INTEGER NOT NULL UNIQUE REFERENCES organisations(id) ON DELETE CASCADE,
	totp_secret    BLOB NOT NULL,
	totp_confirmed INTEGER NOT NULL DEFAULT 0,
	totp_last_step INTEGER NOT NULL DEFAULT 0,
	mxid           TEXT UNIQUE,
	created_at     INTEGER NOT NULL
);

CREATE TABLE messenger_services (
	domain           TEXT PRIMARY KEY,
	org_id           INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
	telematik_id     TEXT NOT NULL,
	is_insurance     INTEGER NOT NULL,
	ik               TEXT NOT NULL, -- JSON array
	redirect_domains TEXT NOT NULL, -- JSON array
	state            TEXT NOT NULL,
	state_since      INTEGER NOT NULL,
	created_at       INTEGER NOT NULL
);
CREATE INDEX messenger_services_org ON messenger_services(org_id);

CREATE TABLE federation_list (
	id               INTEGER PRIMARY KEY CHECK (id = 1),
	jws              BLOB NOT NULL,
	version          INTEGER NOT NULL,
	verified_contact INTEGER NOT NULL
);

CREATE TABLE sessions (
	token_hash BLOB PRIMARY KEY,
	admin_id   INTEGER NOT NULL REFERENCES org_admins(id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL
);
