package app

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/redisx"
)

func TestSessionsConfig(t *testing.T) {
	const key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // 32 zero bytes
	cases := []struct {
		name, yaml, wantErr string // wantErr "" means valid
	}{
		{"defaults", "", ""},
		{"memory", "sessions: {backend: memory, ttl: 1h, max_sessions: 10, max_history_tokens: -1}\n", ""},
		{"redis", "sessions: {backend: redis, redis: {addrs: ['127.0.0.1:6379'], db: 3}}\n", ""},
		{"redis with tls", "sessions: {backend: redis, redis: {addrs: ['r:6380'], tls: true, server_name: r, username: u, password: p, prefix: 'x:'}}\n", ""},
		{"sentinel", "sessions: {backend: redis, redis: {addrs: ['10.0.0.1:26379', '10.0.0.2:26379'], master_name: m}}\n", ""},
		{"sql", "sessions: {backend: sql, sql: {driver: sqlite, dsn: /tmp/x.db}}\n", ""},
		{"tiered", "sessions: {backend: tiered, strict_reads: true}\n", ""},
		{"encrypted", "sessions: {backend: sql, encryption: {keys: [{id: k1, key: " + key + ", primary: true}]}}\n", ""},
		{"unknown backend", "sessions: {backend: floppy}\n", `sessions.backend: unknown backend "floppy"`},
		{"redis without addresses", "sessions: {backend: redis}\n", "sessions.redis.addrs"},
		{"negative ttl", "sessions: {ttl: -1s}\n", "sessions.ttl"},
		{"negative max_sessions", "sessions: {max_sessions: -1}\n", "sessions.max_sessions"},
		{"history budget below -1", "sessions: {max_history_tokens: -2}\n", "sessions.max_history_tokens"},
		{"negative redis db", "sessions: {backend: redis, redis: {addrs: [a:1], db: -1}}\n", "sessions.redis.db"},
		{"short key", "sessions: {encryption: {keys: [{id: k1, key: AAAA, primary: true}]}}\n", "sessions.encryption"},
		{"unknown field", "sessions: {backnd: memory}\n", "backnd"},
		{"unknown redis field", "sessions: {redis: {adrs: [a:1]}}\n", "adrs"},
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
}

func TestSessionsDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(base), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sessions
	if s.Backend != SessionBackendMemory || s.TTL != 15*time.Minute || s.MaxSessions != DefaultSessionMaxSessions ||
		s.MaxHistoryTokens != 32768 || s.Redis.Prefix != "sy:sess:" {
		t.Errorf("defaults = %+v; want memory, 15m, %d sessions, 32768 tokens, prefix sy:sess:", s, DefaultSessionMaxSessions)
	}
}

func TestBuildSessionsFailsOnUnreachableRedis(t *testing.T) {
	c := SessionsConfig{Backend: SessionBackendRedis, Redis: RedisConfig{Config: redisx.Config{Addrs: []string{"127.0.0.1:1"}}}}
	c.applyDefaults()
	if _, _, err := buildSessions(t.Context(), c, nil); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("buildSessions with a dead Redis = %v; want an error naming the address", err)
	}
}

// TestSessionsStoreSettings: each backend enables its tiers, with the section's policies.
func TestSessionsStoreSettings(t *testing.T) {
	type tiers struct{ memory, redis, sql bool }
	cases := []struct {
		backend string
		addrs   []string
		want    tiers
	}{
		{SessionBackendMemory, []string{"r:1"}, tiers{memory: true}},
		{SessionBackendRedis, []string{"r:1"}, tiers{redis: true}},
		{SessionBackendSQL, []string{"r:1"}, tiers{sql: true}},
		{SessionBackendTiered, nil, tiers{memory: true, sql: true}},
		{SessionBackendTiered, []string{"r:1"}, tiers{memory: true, redis: true, sql: true}},
	}
	for _, c := range cases {
		sc := SessionsConfig{Backend: c.backend, TTL: time.Hour, MaxSessions: 7, StrictReads: true,
			Redis: RedisConfig{Config: redisx.Config{Addrs: c.addrs, TLS: true}, Prefix: "p:"}}
		s := sc.storeSettings(nil)
		if got := (tiers{s.Memory, s.Redis != nil, s.SQL != nil}); got != c.want {
			t.Errorf("%s with addrs %v: tiers %+v; want %+v", c.backend, c.addrs, got, c.want)
		}
		if s.Redis != nil && (!s.Redis.TLS || s.RedisPrefix != "p:") {
			t.Errorf("%s: redis %+v prefix %q; want TLS and prefix p:", c.backend, s.Redis, s.RedisPrefix)
		}
		if s.TTL != time.Hour || s.MaxSessions != 7 || !s.StrictReads {
			t.Errorf("%s: settings %+v; want the section's ttl, max_sessions and strict_reads", c.backend, s)
		}
	}
}
