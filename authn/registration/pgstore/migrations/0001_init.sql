-- Registration service schema, version 1 (PostgreSQL). Tables carry the reg_ prefix so the service can
-- share a database (and its search_path) with the directory.
CREATE TABLE reg_organisations (
	id         BIGSERIAL PRIMARY KEY,
	name       TEXT NOT NULL,
	name_key   TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX reg_organisations_name_key ON reg_organisations(name_key);

CREATE TABLE reg_telematik_ids (
	telematik_id   TEXT PRIMARY KEY,
	org_id         BIGINT NOT NULL REFERENCES reg_organisations(id) ON DELETE CASCADE,
	profession_oid TEXT NOT NULL,
	linked_at      TIMESTAMPTZ NOT NULL,
	seq            INTEGER NOT NULL
);
CREATE INDEX reg_telematik_ids_org ON reg_telematik_ids(org_id);

CREATE TABLE reg_org_admins (
	id             BIGSERIAL PRIMARY KEY,
	org_id         BIGINT NOT NULL UNIQUE REFERENCES reg_organisations(id) ON DELETE CASCADE,
	totp_secret    BYTEA NOT NULL,
	totp_confirmed BOOLEAN NOT NULL DEFAULT false,
	totp_last_step BIGINT NOT NULL DEFAULT 0,
	mxid           TEXT UNIQUE,
	created_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE reg_messenger_services (
	domain           TEXT PRIMARY KEY,
	org_id           BIGINT NOT NULL REFERENCES reg_organisations(id) ON DELETE CASCADE,
	telematik_id     TEXT NOT NULL,
	is_insurance     BOOLEAN NOT NULL,
	ik               TEXT[] NOT NULL,
	redirect_domains TEXT[] NOT NULL,
	state            TEXT NOT NULL,
	state_since      TIMESTAMPTZ NOT NULL,
	created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX reg_messenger_services_org ON reg_messenger_services(org_id);

CREATE TABLE reg_federation_list (
	id               INTEGER PRIMARY KEY CHECK (id = 1),
	jws              BYTEA NOT NULL,
	version          BIGINT NOT NULL,
	verified_contact TIMESTAMPTZ NOT NULL
);

CREATE TABLE reg_sessions (
	token_hash BYTEA PRIMARY KEY,
	admin_id   BIGINT NOT NULL REFERENCES reg_org_admins(id) ON DELETE CASCADE,
	expires_at TIMESTAMPTZ NOT NULL
);
