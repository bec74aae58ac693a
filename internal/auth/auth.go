// Package auth decides who a caller is. An Authenticator turns the bearer token of a request (or
// the verified client certificate of an mTLS connection) into a Principal (tenant, subject, scopes,
// allowed models); the gRPC auth interceptor puts that Principal in the request context, where the
// rest of the request finds it with FromContext.
//
// Modes: "none" admits every caller as the anonymous principal of tenant "default"; "api_key"
// admits callers presenting one of the configured keys (kept only as SHA-256 hashes); "jwt" admits
// callers presenting a JWT signed by a configured issuer; "both" sends a bearer token that looks like
// a JWT (three dot-separated parts) to the JWT verifier and any other token to the API keys.
// In every mode but "none", a caller that sends no token but whose verified client certificate
// matches one of client_certs is that certificate's principal.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

// Modes.
const (
	ModeNone   = "none"
	ModeAPIKey = "api_key"
	ModeJWT    = "jwt"
	ModeBoth   = "both" // API keys and JWTs
)

// MaxAPIKeyBytes is the longest API key accepted, in configs and in requests; a longer bearer
// token that is not a JWT is refused before it is hashed. Generated keys are far shorter (OpenAI's
// are under 200 bytes, managed keys under 100).
const MaxAPIKeyBytes = 512

// anonymous is the principal of every caller in mode "none".
var anonymous = Principal{Tenant: "default", Subject: "anonymous", Scopes: []string{ScopeAll}, Method: ModeNone}

// Principal is an authenticated caller. Principals are shared between requests: treat them as
// read-only.
type Principal struct {
	Tenant  string   // whose quota, sessions and audit trail the request belongs to
	Subject string   // who is calling (the key's name for API keys, the sub claim for JWTs)
	KeyName string   // the API key's configured name, "" for other credentials
	Scopes  []string // what the caller may do; ScopeAll grants everything
	// Models are the models and aliases the caller may use ("provider/*" allows every model of
	// a provider); empty allows every model.
	Models []string
	// Method is how the caller authenticated: "none", "api_key", "jwt" or "mtls".
	Method string
}

// HasScope reports whether p holds scope s (or ScopeAll).
func (p *Principal) HasScope(s string) bool {
	return slices.Contains(p.Scopes, s) || slices.Contains(p.Scopes, ScopeAll)
}

// AllowsModel reports whether p may use model (as the client named it: "provider/model" or an
// alias). An empty Models list allows every model; an entry "provider/*" allows every model of
// that provider.
func (p *Principal) AllowsModel(model string) bool {
	if len(p.Models) == 0 {
		return true
	}
	for _, m := range p.Models {
		if m == model {
			return true
		}
		if prefix, ok := strings.CutSuffix(m, "*"); ok && strings.HasSuffix(prefix, "/") && strings.HasPrefix(model, prefix) {
			return true
		}
	}
	return false
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

// Authenticator checks credentials. Implementations are safe for concurrent use. An
// Authenticator returned by New may also be an io.Closer (JWKS refreshers): close it when done.
type Authenticator interface {
	// Authenticate checks a bearer token ("" when the caller sent none or an empty header) and,
	// when there is no token, the client certificate in ctx (NewCertContext).
	// Errors are *llm.Error of KindUnauthenticated.
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// Config selects and configures the authenticator.
type Config struct {
	Mode    string    `yaml:"mode"` // "none", "api_key", "jwt" or "both"; "" means "none"
	APIKeys []APIKey  `yaml:"api_keys"`
	JWT     JWTConfig `yaml:"jwt"`
	// ClientCerts map verified mTLS client certificates to principals (server.tls.client_ca_file).
	ClientCerts []ClientCert `yaml:"client_certs,omitempty"`
}

// APIKey is one accepted API key. Exactly one of Key and SHA256 is set.
type APIKey struct {
	Name   string `yaml:"name"`
	Key    string `yaml:"key,omitempty"`    // plaintext (usually "${ENV}"); hashed at load and then dropped
	SHA256 string `yaml:"sha256,omitempty"` // hex sha256 of the key, so configs need not hold plaintext
	Tenant string `yaml:"tenant"`
	// Scopes the key grants; empty means DefaultScopes (everything but admin).
	Scopes []string `yaml:"scopes,omitempty"`
	// Models the key may use (models or aliases, "provider/*" for a whole provider); empty means all.
	Models []string `yaml:"models,omitempty"`
	// ExpiresAt, when set, is the instant from which the key is refused (RFC 3339 in YAML).
	ExpiresAt time.Time `yaml:"expires_at,omitempty"`
	// Revoked keys are refused with a message saying so (keep a leaked key listed as revoked
	// rather than deleting it, so its use shows up in logs as such).
	Revoked bool `yaml:"revoked,omitempty"`
}

// Option adjusts New.
type Option func(*options)

type options struct {
	now    func() time.Time
	client *http.Client
	log    *slog.Logger
}

// WithClock sets the clock used for key expiry and JWT time claims (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithHTTPClient sets the client that fetches JWKS documents. Without it a client with a 10 s
// timeout is used.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithLogger sets the logger for JWKS fetch failures; nil keeps slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// New returns the authenticator cfg describes. It fails on an unknown mode, on keys without a name,
// tenant or key material, on keys with both a plaintext key and a hash, on malformed hashes, on
// duplicate names or keys, and on invalid JWT issuers (see JWTConfig) or client
// certificate mappings. The returned authenticator keeps no plaintext key. New does no network
// I/O: JWKS documents are fetched on first use, and refreshed in the background from then on until
// the authenticator is closed.
func New(cfg Config, opts ...Option) (Authenticator, error) {
	o := options{now: time.Now, log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: 10 * time.Second}
	}
	switch cfg.Mode {
	case "", ModeNone:
		return noneAuth{}, nil
	case ModeAPIKey, ModeJWT, ModeBoth:
	default:
		return nil, fmt.Errorf("auth: unknown mode %q (want %q, %q, %q or %q)", cfg.Mode, ModeNone, ModeAPIKey, ModeJWT, ModeBoth)
	}
	a := &multiAuth{mode: cfg.Mode}
	var err error
	if cfg.Mode == ModeAPIKey || cfg.Mode == ModeBoth {
		if a.keys, err = newAPIKeyAuth(cfg.APIKeys, o.now); err != nil {
			return nil, err
		}
	} else if len(cfg.APIKeys) > 0 {
		return nil, fmt.Errorf("auth: api_keys are set but mode %q does not use them (use %q)", cfg.Mode, ModeBoth)
	}
	if cfg.Mode == ModeJWT || cfg.Mode == ModeBoth {
		if a.jwt, err = newJWTAuth(cfg.JWT, o); err != nil {
			return nil, err
		}
	} else if len(cfg.JWT.Issuers) > 0 {
		return nil, fmt.Errorf("auth: jwt.issuers are set but mode %q does not use them (use %q)", cfg.Mode, ModeBoth)
	}
	if a.certs, err = newCertAuth(cfg.ClientCerts); err != nil {
		return nil, err
	}
	return a, nil
}

// multiAuth dispatches a token to the API keys or the JWT verifier, and a missing token to the
// client certificate mapping.
type multiAuth struct {
	mode  string
	keys  *apiKeyAuth // nil unless mode api_key or both
	jwt   *jwtAuth    // nil unless mode jwt or both
	certs *certAuth   // nil without client_certs
}

func (a *multiAuth) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		if a.certs != nil {
			if p, ok := a.certs.principal(ctx); ok {
				return p, nil
			}
		}
		if a.keys == nil {
			return nil, &llm.Error{Kind: llm.KindUnauthenticated, Code: "missing_token",
				Message: "You didn't provide a token. Send it as 'Authorization: Bearer <token>'."}
		}
	}
	if a.jwt != nil && (a.keys == nil || LooksLikeJWT(token)) {
		return a.jwt.Authenticate(ctx, token)
	}
	return a.keys.Authenticate(ctx, token)
}

// Close stops background JWKS refreshes. It is safe to call more than once.
func (a *multiAuth) Close() error {
	if a.jwt != nil {
		a.jwt.close()
	}
	return nil
}

// LooksLikeJWT reports whether token has the shape of a compact JWS: three non-empty
// dot-separated parts (the signature part may not be empty either).
func LooksLikeJWT(token string) bool {
	h, rest, ok := strings.Cut(token, ".")
	if !ok || h == "" {
		return false
	}
	p, sig, ok := strings.Cut(rest, ".")
	return ok && p != "" && sig != "" && !strings.Contains(sig, ".")
}

type noneAuth struct{}

func (noneAuth) Authenticate(context.Context, string) (*Principal, error) {
	return &anonymous, nil
}

// apiKeyAuth maps the SHA-256 of each key to its principal. Looking up a hash leaks nothing useful
// through timing: learning a hash prefix does not help to find a key.
type apiKeyAuth struct {
	keys map[[sha256.Size]byte]*apiKey
	now  func() time.Time
}

type apiKey struct {
	p         *Principal
	expiresAt time.Time // zero: never
	revoked   bool
}

func newAPIKeyAuth(keys []APIKey, now func() time.Time) (*apiKeyAuth, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: mode %q needs at least one entry in api_keys", ModeAPIKey)
	}
	a := &apiKeyAuth{keys: make(map[[sha256.Size]byte]*apiKey, len(keys)), now: now}
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
		case len(k.Key) > MaxAPIKeyBytes:
			return nil, fmt.Errorf("%s: key is longer than %d bytes", where, MaxAPIKeyBytes)
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
			return nil, fmt.Errorf("%s: same key as %q", where, prev.p.KeyName)
		}
		scopes := slices.Clone(k.Scopes)
		if len(scopes) == 0 {
			scopes = slices.Clone(DefaultScopes)
		}
		a.keys[sum] = &apiKey{
			p: &Principal{Tenant: k.Tenant, Subject: k.Name, KeyName: k.Name, Scopes: scopes,
				Models: slices.Clone(k.Models), Method: ModeAPIKey},
			expiresAt: k.ExpiresAt,
			revoked:   k.Revoked,
		}
	}
	return a, nil
}

func (a *apiKeyAuth) Authenticate(_ context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, &llm.Error{Kind: llm.KindUnauthenticated, Message: "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", Code: "missing_api_key"}
	}
	if len(token) > MaxAPIKeyBytes {
		return nil, tooLarge("API key", len(token), MaxAPIKeyBytes)
	}
	k, ok := a.keys[sha256.Sum256([]byte(token))]
	switch {
	case !ok:
		return nil, &llm.Error{Kind: llm.KindUnauthenticated, Message: "Incorrect API key provided.", Code: "invalid_api_key"}
	case k.revoked:
		return nil, &llm.Error{Kind: llm.KindUnauthenticated, Message: "This API key has been revoked.", Code: "revoked_api_key"}
	case !k.expiresAt.IsZero() && !a.now().Before(k.expiresAt):
		return nil, &llm.Error{Kind: llm.KindUnauthenticated, Message: "This API key has expired.", Code: "expired_api_key"}
	}
	return k.p, nil
}
