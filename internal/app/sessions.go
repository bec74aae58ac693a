package app

import (
	"context"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/server"
)

// Session backends (SessionsConfig.Backend).
const (
	SessionBackendMemory = "memory"
)

// Defaults of the sessions section.
const (
	DefaultSessionMaxSessions = 100_000
)

// SessionsConfig is the sessions section: where server-side sessions live and the policies chat
// applies to them (docs/sessions.md).
type SessionsConfig struct {
	// Backend is the store: "memory" (default; per instance, bounded, sliding TTL).
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
}

func (c *SessionsConfig) applyDefaults() {
	setDefault(&c.Backend, SessionBackendMemory)
	setDefault(&c.TTL, session.DefaultTTL)
	setDefault(&c.MaxSessions, DefaultSessionMaxSessions)
	setDefault(&c.MaxHistoryTokens, server.DefaultMaxHistoryTokens)
}

// validate reports the section's errors through add.
func (c *SessionsConfig) validate(add func(format string, args ...any)) {
	switch c.Backend {
	case SessionBackendMemory:
	default:
		add("sessions.backend: unknown backend %q (known: %s)", c.Backend, SessionBackendMemory)
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
}

// buildSessions returns the session state over the configured store and a function releasing
// the store's resources.
func buildSessions(_ context.Context, c SessionsConfig) (*server.Sessions, func(), error) {
	var store session.Store
	closeStore := func() {}
	switch c.Backend {
	case SessionBackendMemory:
		store = memstore.New(memstore.WithMaxSessions(c.MaxSessions), memstore.WithTTL(c.TTL))
	default:
		return nil, nil, fmt.Errorf("sessions: unknown backend %q", c.Backend)
	}
	return server.NewSessions(store, server.SessionConfig{DefaultTTL: c.TTL, MaxHistoryTokens: c.MaxHistoryTokens}), closeStore, nil
}
