package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/sqlstore"
	"github.com/switchyard/switchyard/internal/session/tiered"
	"github.com/switchyard/switchyard/server"
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

// RedisConfig is a go-redis UniversalClient: one address is a single node, several are a
// cluster, and master_name selects Sentinel (addrs are then the sentinels).
type RedisConfig struct {
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"`
	// Cluster forces cluster mode with a single address (a cluster's configuration endpoint).
	Cluster bool `yaml:"cluster"`
	// Prefix starts every key (default "sy:sess:"); instances sharing a prefix share sessions.
	Prefix string `yaml:"prefix"`
}

func (c *SessionsConfig) applyDefaults() {
	setDefault(&c.Backend, SessionBackendMemory)
	setDefault(&c.TTL, session.DefaultTTL)
	setDefault(&c.MaxSessions, DefaultSessionMaxSessions)
	setDefault(&c.MaxHistoryTokens, server.DefaultMaxHistoryTokens)
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

// buildSessions opens the configured store and returns the session state over it, and a
// function releasing the store's connections (call it once the servers have stopped). A Redis
// that does not answer or a database that cannot be opened fails it. log (slog.Default() when
// nil) receives errors closing the store.
func buildSessions(ctx context.Context, c SessionsConfig, log *slog.Logger) (*server.Sessions, func(), error) {
	if log == nil {
		log = slog.Default()
	}
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				log.Warn("closing the session store", "err", err)
			}
		}
	}
	fail := func(err error) (*server.Sessions, func(), error) {
		closeAll()
		return nil, nil, fmt.Errorf("sessions: %w", err)
	}
	keys, err := seal.New(c.Encryption)
	if err != nil {
		return fail(err)
	}
	mem := func() *memstore.Store {
		return memstore.New(memstore.WithMaxSessions(c.MaxSessions), memstore.WithTTL(c.TTL))
	}
	openRedis := func() (*redisstore.Store, error) {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs:         c.Redis.Addrs,
			MasterName:    c.Redis.MasterName,
			Username:      c.Redis.Username,
			Password:      c.Redis.Password,
			DB:            c.Redis.DB,
			IsClusterMode: c.Redis.Cluster,
		})
		closers = append(closers, rdb.Close)
		if err := rdb.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("redis %s: %w", strings.Join(c.Redis.Addrs, ","), err)
		}
		return redisstore.New(rdb, keys, redisstore.WithPrefix(c.Redis.Prefix), redisstore.WithTTL(c.TTL)), nil
	}
	openSQL := func() (*sqlstore.Store, error) {
		db, err := database.Open(ctx, c.SQL)
		if err != nil {
			return nil, err
		}
		closers = append(closers, db.Close)
		return sqlstore.New(ctx, db, keys)
	}

	var store session.Store
	switch c.Backend {
	case SessionBackendMemory:
		store = mem()
	case SessionBackendRedis:
		rs, err := openRedis()
		if err != nil {
			return fail(err)
		}
		store = rs
	case SessionBackendSQL:
		ss, err := openSQL()
		if err != nil {
			return fail(err)
		}
		store = ss
	case SessionBackendTiered:
		tc := tiered.Config{Memory: mem(), StrictReads: c.StrictReads, Logger: log}
		if len(c.Redis.Addrs) > 0 {
			rs, err := openRedis()
			if err != nil {
				return fail(err)
			}
			tc.Redis = rs
		}
		ss, err := openSQL()
		if err != nil {
			return fail(err)
		}
		tc.SQL = ss
		ts, err := tiered.New(context.WithoutCancel(ctx), tc)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, ts.Close)
		store = ts
	default:
		return fail(errors.New("unknown backend " + c.Backend))
	}
	cfg := server.SessionConfig{DefaultTTL: c.TTL, MaxHistoryTokens: c.MaxHistoryTokens}
	return server.NewSessions(store, cfg), closeAll, nil
}
