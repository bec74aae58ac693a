// Package stores builds the session store a configuration selects: each tier it enables
// (memstore, redisstore, sqlstore), with their Redis client (redisx.NewClient), database
// (database.Open) and encryption keys (seal.New), and, when more than one tier is on, the tiered
// store over them. It is the one way the gateway and the tests open session stores.
package stores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/redisx"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/sqlstore"
	"github.com/switchyard/switchyard/internal/session/tiered"
)

// Settings select the tiers (at least one) and their policies.
type Settings struct {
	// Memory enables the per-instance tier, bounded to MaxSessions (0:
	// memstore.DefaultMaxSessions).
	Memory      bool
	MaxSessions int
	// Redis enables the shared tier; its keys start with RedisPrefix ("":
	// redisstore.DefaultPrefix).
	Redis       *redisx.Config
	RedisPrefix string
	// SQL enables the archive (SQLite or PostgreSQL).
	SQL *database.Config
	// TTL is the sliding expiry, in memory and Redis, of sessions created without one (0:
	// session.DefaultTTL).
	TTL time.Duration
	// ArchiveAll writes every session to SQL, not only those with Archive set (tiered only).
	ArchiveAll bool
	// StrictReads checks memory hits against Redis (tiered.Config.StrictReads).
	StrictReads bool
	// Encryption seals sessions in Redis and SQL; no keys: plaintext.
	Encryption seal.Config
	// MeterProvider records the tiered store's metrics (otel.GetMeterProvider() when nil).
	MeterProvider metric.MeterProvider
	// Logger receives the tiered store's write-through failures (slog.Default() when nil).
	Logger *slog.Logger
}

// Open builds the tiers s enables. With one tier it returns that tier's store; with more, the
// tiered store over them (memory → Redis → SQL). A Redis that does not answer, a database that
// cannot be opened or migrated, or invalid keys fail it. ctx bounds those checks only; close
// stops the store and closes the Redis client and database Open made (call it once the store
// is no longer used).
func Open(ctx context.Context, s Settings) (st session.Store, close func() error, err error) {
	keys, err := seal.New(s.Encryption)
	if err != nil {
		return nil, nil, fmt.Errorf("stores.Open: %w", err)
	}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = closeAll()
		}
	}()
	cfg := tiered.Config{StrictReads: s.StrictReads, MeterProvider: s.MeterProvider, Logger: s.Logger}
	var tiers []session.Store
	if s.Memory {
		cfg.Memory = memstore.New(memstore.WithMaxSessions(s.MaxSessions), memstore.WithTTL(s.TTL))
		tiers = append(tiers, cfg.Memory)
	}
	if s.Redis != nil {
		rdb, err := redisx.NewClient(*s.Redis)
		if err != nil {
			return nil, nil, fmt.Errorf("stores.Open: %w", err)
		}
		closers = append(closers, rdb.Close)
		if err := redisx.Ping(ctx, rdb); err != nil {
			return nil, nil, fmt.Errorf("stores.Open: redis %s: %w", strings.Join(s.Redis.Addrs, ","), err)
		}
		opts := []redisstore.Option{redisstore.WithTTL(s.TTL)}
		if s.RedisPrefix != "" {
			opts = append(opts, redisstore.WithPrefix(s.RedisPrefix))
		}
		cfg.Redis = redisstore.New(rdb, keys, opts...)
		tiers = append(tiers, cfg.Redis)
	}
	if s.SQL != nil {
		db, err := database.Open(ctx, *s.SQL)
		if err != nil {
			return nil, nil, fmt.Errorf("stores.Open: %w", err)
		}
		closers = append(closers, db.Close)
		if cfg.SQL, err = sqlstore.New(ctx, db, keys); err != nil {
			return nil, nil, fmt.Errorf("stores.Open: %w", err)
		}
		tiers = append(tiers, cfg.SQL)
	}
	switch len(tiers) {
	case 0:
		return nil, nil, errors.New("stores.Open: no tier enabled")
	case 1:
		return tiers[0], closeAll, nil
	}
	if s.ArchiveAll {
		cfg.Archive = func(*session.Session) bool { return true }
	}
	// The store outlives ctx: its invalidation subscription ends with close.
	ts, err := tiered.New(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("stores.Open: %w", err)
	}
	closers = append(closers, ts.Close)
	return ts, closeAll, nil
}
