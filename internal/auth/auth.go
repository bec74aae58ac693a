// Package auth decides who a caller is. An Authenticator turns the bearer token of a request into a
// Principal (tenant, subject, scopes); the gRPC auth interceptor puts that Principal in the request
// context, where the rest of the request finds it with FromContext.
//
// Modes: "none" admits every caller as the anonymous principal of tenant "default"; "api_key"
// admits callers presenting one of the configured keys. Keys are kept only as SHA-256 hashes.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/switchyard/switchyard/internal/llm"
)

// Modes.
const (
	ModeNone   = "none"
	ModeAPIKey = "api_key"
)

// ScopeAll is the scope that grants every scope (see Principal.HasScope).
const ScopeAll = "*"

// anonymous is the principal of every caller in mode "none".
var anonymous = Principal{Tenant: "default", Subject: "anonymous", Scopes: []string{ScopeAll}}

// Principal is an authenticated caller. Principals are shared between requests: treat them as
// read-only.
type Principal struct {
	Tenant  string   // whose quota, sessions and audit trail the request belongs to
	Subject string   // who is calling (the key's name for API keys)
	KeyName string   // the API key's configured name, "" for other credentials
	Scopes  []string // what the caller may do; ScopeAll grants everything
}

// HasScope reports whether p holds scope s (or ScopeAll).
func (p *Principal) HasScope(s string) bool {
	return slices.Contains(p.Scopes, s) || slices.Contains(p.Scopes, ScopeAll)
}

type principalKey struct{}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal stored in ctx by NewContext, if any.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Authenticator checks credentials. Implementations are safe for concurrent use.
type Authenticator interface {
	// Authenticate checks a bearer token ("" when the caller sent none or an empty header).
	// Errors are *llm.Error of KindUnauthenticated.
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// Config selects and configures the authenticator.
type Config struct {
	Mode    string   `yaml:"mode"` // "none" or "api_key"; "" means "none"
	APIKeys []APIKey `yaml:"api_keys"`
}

// APIKey is one accepted API key. Exactly one of Key and SHA256 is set.
type APIKey struct {
	Name   string   `yaml:"name"`
	Key    string   `yaml:"key,omitempty"`    // plaintext (usually "${ENV}"); hashed at load and then dropped
	SHA256 string   `yaml:"sha256,omitempty"` // hex sha256 of the key, so configs need not hold plaintext
	Tenant string   `yaml:"tenant"`
	Scopes []string `yaml:"scopes,omitempty"`
}

// New returns the authenticator cfg describes. It fails on an unknown mode, on keys without a name,
// tenant or key material, on keys with both a plaintext key and a hash, on malformed hashes, and on
// duplicate names or keys. The returned authenticator keeps no plaintext key.
func New(cfg Config) (Authenticator, error) {
	switch cfg.Mode {
	case "", ModeNone:
		return noneAuth{}, nil
	case ModeAPIKey:
		return newAPIKeyAuth(cfg.APIKeys)
	}
	return nil, fmt.Errorf("auth: unknown mode %q (want %q or %q)", cfg.Mode, ModeNone, ModeAPIKey)
}

type noneAuth struct{}

func (noneAuth) Authenticate(context.Context, string) (*Principal, error) {
	return &anonymous, nil
}

// apiKeyAuth maps the SHA-256 of each key to its principal. Looking up a hash leaks nothing useful
// through timing: learning a hash prefix does not help to find a key.
type apiKeyAuth struct {
	keys map[[sha256.Size]byte]*Principal
}

func newAPIKeyAuth(keys []APIKey) (*apiKeyAuth, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: mode %q needs at least one entry in api_keys", ModeAPIKey)
	}
	a := &apiKeyAuth{keys: make(map[[sha256.Size]byte]*Principal, len(keys))}
	names := make(map[string]bool, len(keys))
	for i, k := range keys {
		where := fmt.Sprintf("auth: api_keys[%d]", i)
		if k.Name == "" {
			return nil, fmt.Errorf("%s: name is required", where)
		}
		where += " (" + k.Name + ")"
		if names[k.Name] {
			return nil, fmt.Errorf("%s: duplicate name", where)
		}
		names[k.Name] = true
		if k.Tenant == "" {
			return nil, fmt.Errorf("%s: tenant is required", where)
		}
		var sum [sha256.Size]byte
		switch {
		case k.Key != "" && k.SHA256 != "":
			return nil, fmt.Errorf("%s: set key or sha256, not both", where)
		case k.Key != "":
			sum = sha256.Sum256([]byte(k.Key))
		case k.SHA256 != "":
			b, err := hex.DecodeString(k.SHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: sha256 must be %d hex digits", where, 2*sha256.Size)
			}
			copy(sum[:], b)
		default:
			return nil, fmt.Errorf("%s: key is empty (is its environment variable set?)", where)
		}
		if prev, dup := a.keys[sum]; dup {
			return nil, fmt.Errorf("%s: same key as %q", where, prev.KeyName)
		}
		a.keys[sum] = &Principal{Tenant: k.Tenant, Subject: k.Name, KeyName: k.Name, Scopes: slices.Clone(k.Scopes)}
	}
	return a, nil
}

func (a *apiKeyAuth) Authenticate(_ context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, &llm.Error{Kind: llm.KindUnauthenticated, Message: "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", Code: "missing_api_key"}
	}
	p, ok := a.keys[sha256.Sum256([]byte(token))]
	if !ok {
		return nil, &llm.Error{Kind: llm.KindUnauthenticated, Message: "Incorrect API key provided.", Code: "invalid_api_key"}
	}
	return p, nil
}
