CREATE TABLE sessions (
	tenant     TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	created_at INTEGER NOT NULL, -- Unix milliseconds
	updated_at INTEGER NOT NULL, -- Unix milliseconds
	key_id     TEXT    NOT NULL, -- "" when data is plaintext JSON
	data       BLOB    NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX sessions_tenant_user_updated ON sessions (tenant, user_id, updated_at DESC, id DESC);
CREATE INDEX sessions_tenant_updated ON sessions (tenant, updated_at DESC, id DESC);
