package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/auth/keystore"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/llm"
)

func TestKeysConfig(t *testing.T) {
	cases := []struct {
		name, yaml, wantErr string // wantErr "" means valid
	}{
		{"defaults", "", ""},
		{"sqlite in the data dir", "keys: {enabled: true, sql: {data_dir: /tmp/sy}}\n", ""},
		{"postgres", "keys: {enabled: true, sql: {driver: postgres, dsn: 'postgres://u@h/db'}, cache_ttl: 1s, negative_cache_ttl: -1s}\n", ""},
		{"postgres without dsn", "keys: {enabled: true, sql: {driver: postgres}}\n", "keys.sql.dsn"},
		{"unknown driver", "keys: {enabled: true, sql: {driver: mysql}}\n", `keys.sql.driver: unknown driver "mysql"`},
		{"off is not checked", "keys: {sql: {driver: mysql}}\n", ""},
		{"unknown field", "keys: {enabld: true}\n", "enabld"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(base+c.yaml), env(nil))
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("error %v; want valid", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v; want one containing %q", err, c.wantErr)
			}
		})
	}
	cfg, err := ParseConfig([]byte(base), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Keys; k.Enabled || k.CacheTTL != 5*time.Second || k.NegativeCacheTTL != time.Minute {
		t.Errorf("defaults = %+v; want off, cache 5s, negative cache 1m", k)
	}
}

func TestBuildKeys(t *testing.T) {
	ctx := context.Background()
	const configKey = "sk-configured-0123456789"
	configured, err := auth.New(auth.Config{Mode: auth.ModeAPIKey, APIKeys: []auth.APIKey{{Name: "ops", Key: configKey, Tenant: "ops"}}})
	if err != nil {
		t.Fatal(err)
	}

	off, m, err := buildKeys(ctx, KeysConfig{}, auth.ModeAPIKey, configured, nil)
	if err != nil || off != configured || m != nil {
		t.Fatalf("keys off: %v, %v, %v; want the configured authenticator alone", off, m, err)
	}
	m.register(nil) // a nil *managedKeys does nothing
	m.close()

	c := KeysConfig{Enabled: true, SQL: database.Config{DSN: t.TempDir() + "/keys.db"}}
	c.applyDefaults()
	none, _ := auth.New(auth.Config{Mode: auth.ModeNone})
	got, m, err := buildKeys(ctx, c, auth.ModeNone, none, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != none {
		t.Errorf("mode none: authenticator %v, want the anonymous one unchanged", got)
	}
	m.close()

	a, m, err := buildKeys(ctx, c, auth.ModeAPIKey, configured, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	_, secret, err := m.store.Create(ctx, keystore.Spec{Name: "managed", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for token, tenant := range map[string]string{configKey: "ops", secret: "acme"} {
		p, err := a.Authenticate(ctx, token)
		if err != nil || p.Tenant != tenant {
			t.Errorf("Authenticate = %+v, %v; want tenant %s", p, err, tenant)
		}
	}
	if _, err := a.Authenticate(ctx, keystore.SecretPrefix+strings.Repeat("0", 64)); !isCode(err, keystore.CodeInvalid) {
		t.Errorf("unknown managed key: %v; want invalid_api_key", err)
	}

	c.SQL = database.Config{Driver: database.Postgres, DSN: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}
	if _, _, err := buildKeys(ctx, c, auth.ModeAPIKey, configured, nil); err == nil || !strings.Contains(err.Error(), "keys:") {
		t.Errorf("unreachable database: %v; want a keys: error", err)
	}
}

func isCode(err error, code string) bool {
	e, ok := errors.AsType[*llm.Error](err)
	return ok && e.Code == code
}
