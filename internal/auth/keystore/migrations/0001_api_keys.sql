CREATE TABLE api_keys (
	id         TEXT   NOT NULL PRIMARY KEY,
	key_hash   TEXT   NOT NULL UNIQUE, -- hex SHA-256 of the secret; the secret itself is never stored
	name       TEXT   NOT NULL,
	tenant     TEXT   NOT NULL,
	scopes     TEXT   NOT NULL, -- JSON array of strings
	models     TEXT   NOT NULL, -- JSON array of strings; [] means every model
	last_four  TEXT   NOT NULL,
	created_at BIGINT NOT NULL, -- Unix milliseconds
	expires_at BIGINT NOT NULL, -- Unix milliseconds; 0 means never
	revoked_at BIGINT NOT NULL  -- Unix milliseconds; 0 means not revoked
);
CREATE INDEX api_keys_created ON api_keys (created_at DESC, id DESC);
CREATE INDEX api_keys_tenant_created ON api_keys (tenant, created_at DESC, id DESC);
