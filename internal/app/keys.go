package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/auth/keystore"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/server"
)

// KeysConfig is the keys section: managed API keys, created, listed and revoked through
// KeyService (/admin/v1/keys) and kept hashed in the SQL database. Off by default, so the
// embedded default config touches no file.
type KeysConfig struct {
	// Enabled turns managed keys on: KeyService is served and, in every auth mode but "none",
	// bearer tokens the configured credentials refuse are checked against the stored keys.
	Enabled bool `yaml:"enabled"`
	// SQL is the database holding the keys: embedded SQLite (data_dir/switchyard.db) by default.
	SQL database.Config `yaml:"sql"`
	// CacheTTL is how long an instance trusts a key it found without asking the database again:
	// a key revoked on another instance is refused here at most this long after (the revoking
	// instance refuses it at once). Default 5s; negative disables the cache.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// NegativeCacheTTL is how long an unknown or revoked token is refused without asking the
	// database again. Default 1m; negative disables it.
	NegativeCacheTTL time.Duration `yaml:"negative_cache_ttl"`
}

func (c *KeysConfig) applyDefaults() {
	setDefault(&c.CacheTTL, keystore.DefaultCacheTTL)
	setDefault(&c.NegativeCacheTTL, keystore.DefaultNegativeTTL)
}

// validate reports the section's errors through add.
func (c *KeysConfig) validate(add func(format string, args ...any)) {
	if !c.Enabled {
		return
	}
	switch c.SQL.Driver {
	case "", database.SQLite, database.Postgres, "postgresql", "pgx":
	default:
		add("keys.sql.driver: unknown driver %q (want sqlite or postgres)", c.SQL.Driver)
	}
	if (c.SQL.Driver == database.Postgres || c.SQL.Driver == "postgresql" || c.SQL.Driver == "pgx") && c.SQL.DSN == "" {
		add("keys.sql.dsn: required by driver %q", c.SQL.Driver)
	}
}

// managedKeys is what buildKeys set up; a nil *managedKeys (keys off) registers nothing and
// closes nothing.
type managedKeys struct {
	store     *keystore.Store
	authn     *keystore.Authenticator
	closeOnce sync.Once
	db        *database.DB
	log       *slog.Logger
}

// buildKeys opens the key store when c.Enabled and returns the authenticator requests go through
// (authn, then the store, unless the auth mode is "none", which admits everyone anyway) and the
// managed keys to register and close. With keys off it returns authn and nil.
func buildKeys(ctx context.Context, c KeysConfig, authMode string, authn auth.Authenticator, log *slog.Logger) (auth.Authenticator, *managedKeys, error) {
	if !c.Enabled {
		return authn, nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	db, err := database.Open(ctx, c.SQL)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: %w", err)
	}
	st, err := keystore.New(ctx, db)
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("keys: %w", err)
	}
	m := &managedKeys{store: st, db: db, log: log,
		authn: keystore.NewAuthenticator(st, keystore.WithCacheTTL(c.CacheTTL), keystore.WithNegativeTTL(c.NegativeCacheTTL))}
	if authMode == "" || authMode == auth.ModeNone {
		return authn, m, nil
	}
	// The configured credentials first: they need no I/O and keep working when the database
	// does not answer.
	return keystore.Chain(authn, m.authn), m, nil
}

// register registers KeyService on s.
func (m *managedKeys) register(s grpc.ServiceRegistrar) {
	if m == nil {
		return
	}
	server.RegisterKeys(s, m.store, server.WithRevokeHook(m.authn.Invalidate))
}

// close releases the database; later calls do nothing.
func (m *managedKeys) close() {
	if m == nil {
		return
	}
	m.closeOnce.Do(func() {
		if err := m.db.Close(); err != nil {
			m.log.Warn("closing the key store", "err", err)
		}
	})
}
