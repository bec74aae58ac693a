package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/redisx"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/stores"
)

// Session backends (SessionsConfig.Backend).
const (
	SessionBackendMemory = "memory" // per instance only
	SessionBackendRedis  = "redis"  // Redis only, shared by instances
	SessionBackendSQL    = "sql"    // the SQL database only (SQLite by default)
	SessionBackendTiered = "tiered" // memory → Redis (when configured) → SQL
)

var sessionBackends = []string{SessionBackendMemory, SessionBackendRedis, SessionBackendSQL, SessionBackendTiered}

// Defaults of the sessions section.
const (
	DefaultSessionMaxSessions = 100_000
)

// SessionsConfig is the sessions section: where server-side sessions live and the policies chat
// applies to them (docs/sessions.md).
type SessionsConfig struct {
	// Backend is the store: "memory" (default; per instance, bounded, sliding TTL), "redis"
	// (shared by instances), "sql" (the database only), or "tiered" (memory, then Redis when
	// redis.addrs is set, then SQL, which keeps archived sessions).
	Backend string `yaml:"backend"`
	// TTL is the sliding expiry of sessions created without one (default 15m).
	TTL time.Duration `yaml:"ttl"`
	// MaxSessions bounds the memory tier; the least recently used session is evicted beyond it
	// (default 100000).
	MaxSessions int `yaml:"max_sessions"`
	// MaxHistoryTokens bounds the history sent upstream with each turn, estimated as characters
	// / 4; the system prompt and the newest whole turns are kept (default 32768, -1 for no
	// limit).
	MaxHistoryTokens int `yaml:"max_history_tokens"`
	// StrictReads makes the tiered backend check each memory hit's version in Redis.
	StrictReads bool `yaml:"strict_reads"`
	// Redis is the shared tier (backends redis and tiered).
	Redis RedisConfig `yaml:"redis"`
	// SQL is the archive (backends sql and tiered): embedded SQLite by default.
	SQL database.Config `yaml:"sql"`
	// Encryption seals sessions at rest in Redis and SQL (AES-256-GCM; no keys: plaintext).
	Encryption seal.Config `yaml:"encryption"`
}

// RedisConfig is the shared tier's Redis (redisx.Config: one address is a single node,
// several are a cluster, master_name selects Sentinel; TLS with tls: true) and its key prefix.
type RedisConfig struct {
	redisx.Config `yaml:",inline"`
	// Prefix starts every key (default "sy:sess:"); instances sharing a prefix share sessions.
	Prefix string `yaml:"prefix"`
}

func (c *SessionsConfig) applyDefaults() {
	setDefault(&c.Backend, SessionBackendMemory)
	setDefault(&c.TTL, session.DefaultTTL)
	setDefault(&c.MaxSessions, DefaultSessionMaxSessions)
	setDefault(&c.MaxHistoryTokens, session.DefaultMaxHistoryTokens)
	setDefault(&c.Redis.Prefix, redisstore.DefaultPrefix)
}

// validate reports the section's errors through add.
func (c *SessionsConfig) validate(add func(format string, args ...any)) {
	switch c.Backend {
	case SessionBackendMemory, SessionBackendSQL, SessionBackendTiered:
	case SessionBackendRedis:
		if len(c.Redis.Addrs) == 0 {
			add("sessions.redis.addrs: required by backend %q", c.Backend)
		}
	default:
		add("sessions.backend: unknown backend %q (known: %s)", c.Backend, strings.Join(sessionBackends, ", "))
	}
	if c.TTL < 0 {
		add("sessions.ttl must not be negative")
	}
	if c.MaxSessions < 0 {
		add("sessions.max_sessions must not be negative")
	}
	if c.MaxHistoryTokens < -1 {
		add("sessions.max_history_tokens must be -1 (no limit) or more")
	}
	if c.Redis.DB < 0 {
		add("sessions.redis.db must not be negative")
	}
	if len(c.Encryption.Keys) > 0 {
		if _, err := seal.New(c.Encryption); err != nil {
			add("sessions.encryption: %v", err)
		}
	}
}

// buildSessions opens the configured store (stores.Open) and returns the session manager over
// it, and a function releasing the store's connections (call it once the servers have stopped).
// A Redis that does not answer or a database that cannot be opened fails it. log
// (slog.Default() when nil) receives errors closing the store.
func buildSessions(ctx context.Context, c SessionsConfig, log *slog.Logger) (*session.Manager, func(), error) {
	if log == nil {
		log = slog.Default()
	}
	st, closeStore, err := stores.Open(ctx, c.storeSettings(log))
	if err != nil {
		return nil, nil, fmt.Errorf("sessions: %w", err)
	}
	closeFn := func() {
		if err := closeStore(); err != nil {
			log.Warn("closing the session store", "err", err)
		}
	}
	return session.NewManager(st, session.Config{DefaultTTL: c.TTL, MaxHistoryTokens: c.MaxHistoryTokens}), closeFn, nil
}

// storeSettings maps the backend onto the tiers it enables.
func (c *SessionsConfig) storeSettings(log *slog.Logger) stores.Settings {
	s := stores.Settings{MaxSessions: c.MaxSessions, RedisPrefix: c.Redis.Prefix, TTL: c.TTL,
		StrictReads: c.StrictReads, Encryption: c.Encryption, Logger: log}
	redis, sql := &c.Redis.Config, &c.SQL
	switch c.Backend {
	case SessionBackendMemory:
		s.Memory = true
	case SessionBackendRedis:
		s.Redis = redis
	case SessionBackendSQL:
		s.SQL = sql
	case SessionBackendTiered:
		s.Memory, s.SQL = true, sql
		if len(c.Redis.Addrs) > 0 {
			s.Redis = redis
		}
	}
	return s
}
