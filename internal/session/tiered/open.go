package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/redisx"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/sqlstore"
)

// Settings configure the session tiers from the gateway's configuration. The zero value is the
// embedded default: memory only, 15-minute sliding TTL, no encryption.
type Settings struct {
	Memory struct {
		Disabled    bool          `yaml:"disabled"`     // no per-instance cache (Redis or SQL required)
		MaxSessions int           `yaml:"max_sessions"` // 0: memstore.DefaultMaxSessions
		TTL         time.Duration `yaml:"ttl"`          // sliding expiry of sessions without a TTL; 0: 15 min
	} `yaml:"memory"`
	// Redis enables the shared tier when Addrs is set.
	Redis struct {
		redisx.Config `yaml:",inline"`
		Prefix        string        `yaml:"prefix"` // key prefix; "": redisstore.DefaultPrefix
		TTL           time.Duration `yaml:"ttl"`    // expiry of sessions without a TTL; 0: 15 min
	} `yaml:"redis"`
	// SQL enables the archive when Driver is set ("sqlite" or "postgres").
	SQL database.Config `yaml:"sql"`
	// ArchiveAll writes every session to SQL, not only those with Archive set.
	ArchiveAll bool `yaml:"archive_all"`
	// StrictReads checks memory hits against Redis (see Config.StrictReads).
	StrictReads bool `yaml:"strict_reads"`
	// Encryption keys for Redis and SQL records; none: plaintext.
	Encryption seal.Config `yaml:"encryption"`
}

// Open builds the tiers s enables and the tiered store over them. close stops the store and
// closes the Redis client and database it opened.
func Open(ctx context.Context, s Settings, mp metric.MeterProvider, log *slog.Logger) (st *Store, close func() error, err error) {
	keys, err := seal.New(s.Encryption)
	if err != nil {
		return nil, nil, fmt.Errorf("tiered.Open: %w", err)
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
	cfg := Config{StrictReads: s.StrictReads, MeterProvider: mp, Logger: log}
	if s.ArchiveAll {
		cfg.Archive = func(*session.Session) bool { return true }
	}
	if !s.Memory.Disabled {
		cfg.Memory = memstore.New(memstore.WithMaxSessions(s.Memory.MaxSessions), memstore.WithTTL(s.Memory.TTL))
	}
	if len(s.Redis.Addrs) > 0 {
		rdb, err := redisx.NewClient(s.Redis.Config)
		if err != nil {
			return nil, nil, fmt.Errorf("tiered.Open: %w", err)
		}
		closers = append(closers, rdb.Close)
		if err := redisx.Ping(ctx, rdb); err != nil {
			return nil, nil, fmt.Errorf("tiered.Open: %w", err)
		}
		opts := []redisstore.Option{redisstore.WithTTL(s.Redis.TTL)}
		if s.Redis.Prefix != "" {
			opts = append(opts, redisstore.WithPrefix(s.Redis.Prefix))
		}
		cfg.Redis = redisstore.New(rdb, keys, opts...)
	}
	if s.SQL.Driver != "" {
		db, err := database.Open(ctx, s.SQL)
		if err != nil {
			return nil, nil, fmt.Errorf("tiered.Open: %w", err)
		}
		closers = append(closers, db.Close)
		if cfg.SQL, err = sqlstore.New(ctx, db, keys); err != nil {
			return nil, nil, fmt.Errorf("tiered.Open: %w", err)
		}
	}
	if st, err = New(ctx, cfg); err != nil {
		return nil, nil, fmt.Errorf("tiered.Open: %w", err)
	}
	closers = append(closers, st.Close)
	return st, closeAll, nil
}
