CREATE TABLE audit_records (
	tenant        TEXT    NOT NULL,
	seq           BIGINT  NOT NULL,
	ts_us         BIGINT  NOT NULL,
	request_id    TEXT    NOT NULL,
	trace_id      TEXT    NOT NULL,
	subject       TEXT    NOT NULL,
	key_name      TEXT    NOT NULL,
	end_user      TEXT    NOT NULL,
	transport     TEXT    NOT NULL,
	rpc           TEXT    NOT NULL,
	model         TEXT    NOT NULL,
	target        TEXT    NOT NULL,
	attempts      INTEGER NOT NULL,
	class         TEXT    NOT NULL,
	code          TEXT    NOT NULL,
	input_tokens  BIGINT  NOT NULL,
	output_tokens BIGINT  NOT NULL,
	latency_us    BIGINT  NOT NULL,
	client_addr   TEXT    NOT NULL,
	forwarded_for TEXT    NOT NULL,
	body_key_id   TEXT    NOT NULL,
	body_digest   BYTEA,
	prev_hash     BYTEA   NOT NULL,
	hash          BYTEA   NOT NULL,
	body          BYTEA,
	erased_at_us  BIGINT,
	PRIMARY KEY (tenant, seq)
);
CREATE INDEX audit_records_time ON audit_records (tenant, ts_us);
CREATE INDEX audit_records_subject ON audit_records (tenant, subject, seq);
CREATE INDEX audit_records_user ON audit_records (tenant, end_user, seq);
CREATE INDEX audit_records_request ON audit_records (tenant, request_id, seq);
CREATE TABLE audit_heads (
	tenant TEXT   NOT NULL PRIMARY KEY,
	seq    BIGINT NOT NULL,
	hash   BYTEA  NOT NULL
);
CREATE TABLE audit_checkpoints (
	tenant       TEXT   NOT NULL PRIMARY KEY,
	seq          BIGINT NOT NULL,
	hash         BYTEA  NOT NULL,
	pruned_at_us BIGINT NOT NULL
);
