package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/switchyard/switchyard/internal/llm"
)

// JWT defaults.
const (
	DefaultClockSkew        = 30 * time.Second
	MaxClockSkew            = 5 * time.Minute
	DefaultJWKSRefresh      = 15 * time.Minute
	DefaultJWKSMinRefresh   = 30 * time.Second
	DefaultTenantClaim      = "tenant"
	DefaultSubjectClaim     = "sub"
	DefaultScopeClaim       = "scope"
	DefaultVerifiedCacheTTL = time.Minute
	verifiedCacheMax        = 10000 // entries; a full cache drops the least recently used
	minHMACSecretBytes      = 32    // RFC 7518 §3.2: at least the hash size; HS256 is the smallest
	maxJWKSBytes            = 1 << 20
	// DefaultMaxTokenBytes bounds a bearer JWT before any parsing or signature work. Identity
	// providers' access tokens are 1-2 KiB (a few KiB with many groups); 16 KiB leaves room
	// for large claim sets while keeping a flood of near-1 MB headers from costing base64,
	// JSON and hashing work.
	DefaultMaxTokenBytes = 16 << 10
)

// JWTConfig configures JWT verification (modes "jwt" and "both").
type JWTConfig struct {
	Issuers []Issuer `yaml:"issuers"`
	// ClockSkew is the leeway for exp, nbf and iat; default DefaultClockSkew, at most MaxClockSkew.
	ClockSkew time.Duration `yaml:"clock_skew,omitempty"`
	// JWKSRefresh is how often JWKS documents are re-fetched in the background; default
	// DefaultJWKSRefresh.
	JWKSRefresh time.Duration `yaml:"jwks_refresh_interval,omitempty"`
	// JWKSMinRefresh is the least time between two fetches of one JWKS document triggered by
	// tokens with an unknown kid (so forged kids cannot make the gateway hammer the issuer);
	// default DefaultJWKSMinRefresh.
	JWKSMinRefresh time.Duration `yaml:"jwks_min_refresh_interval,omitempty"`
	// VerifiedCacheTTL is how long a verified token's principal is remembered, so that a service
	// reusing its token pays for one signature verification instead of one per request (tens of
	// microseconds for RS256/ES256). An entry never outlives the token's exp; once the gateway
	// has refetched a JWKS without a key, tokens signed by that key stop being accepted within
	// this time. Default
	// DefaultVerifiedCacheTTL; negative disables the cache.
	VerifiedCacheTTL time.Duration `yaml:"verified_cache_ttl,omitempty"`
	// MaxTokenBytes is the largest bearer JWT verified, for every issuer (the issuer is not
	// known before the token is parsed). A longer token is refused with code token_too_large
	// before it is decoded, hashed or verified. Default DefaultMaxTokenBytes; must not be
	// negative.
	MaxTokenBytes int `yaml:"max_token_bytes,omitempty"`
}

// Issuer is one trusted token issuer. Exactly one of JWKSURL, KeysFile and HMACSecret is set, and
// Algorithms must fit it: HS256/HS384/HS512 with HMACSecret only; RS*, PS*, ES* and EdDSA with
// JWKSURL or KeysFile only. A token is verified only with its issuer's keys, only with an
// algorithm listed here, and only with a key of the type that algorithm needs.
type Issuer struct {
	Issuer     string   `yaml:"issuer"`     // the exact iss claim
	Audience   string   `yaml:"audience"`   // required in the token's aud claim
	Algorithms []string `yaml:"algorithms"` // accepted alg header values; "none" is never accepted
	JWKSURL    string   `yaml:"jwks_url,omitempty"`
	KeysFile   string   `yaml:"keys_file,omitempty"`   // PEM public keys/certificates or a JWK set
	HMACSecret string   `yaml:"hmac_secret,omitempty"` // at least 32 bytes, usually "${ENV}"
	// Claims the principal is read from. A dotted name reads a nested claim ("ext.tenant").
	TenantClaim  string `yaml:"tenant_claim,omitempty"`  // default "tenant"; required in tokens
	SubjectClaim string `yaml:"subject_claim,omitempty"` // default "sub"; required in tokens
	ScopeClaim   string `yaml:"scope_claim,omitempty"`   // default "scope": a space-separated string or an array
	ModelsClaim  string `yaml:"models_claim,omitempty"`  // optional: allowed models, string or array; absent allows all
}

// Algorithm families.
var (
	hmacAlgs       = []string{"HS256", "HS384", "HS512"}
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// jwtAuth verifies JWTs of the configured issuers.
type jwtAuth struct {
	issuers  map[string]*issuer
	now      func() time.Time
	cache    *verifiedCache // nil when disabled
	maxBytes int            // longest token verified
}

type issuer struct {
	cfg    Issuer
	parser *jwt.Parser
	keys   keySource
}

// keySource finds the keys that may verify a token with key id kid ("" when the token has none)
// and algorithm alg. Errors are *llm.Error.
type keySource interface {
	keys(ctx context.Context, kid, alg string) ([]any, error)
}

func newJWTAuth(cfg JWTConfig, o options) (*jwtAuth, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("auth: jwt.issuers: at least one issuer is required")
	}
	skew := cfg.ClockSkew
	if skew == 0 {
		skew = DefaultClockSkew
	}
	if skew < 0 || skew > MaxClockSkew {
		return nil, fmt.Errorf("auth: jwt.clock_skew: must be between 0 and %v, got %v", MaxClockSkew, skew)
	}
	refresh, minRefresh := cfg.JWKSRefresh, cfg.JWKSMinRefresh
	if refresh == 0 {
		refresh = DefaultJWKSRefresh
	}
	if minRefresh == 0 {
		minRefresh = DefaultJWKSMinRefresh
	}
	if refresh < 0 || minRefresh < 0 {
		return nil, errors.New("auth: jwt: refresh intervals must not be negative")
	}
	maxBytes := cfg.MaxTokenBytes
	switch {
	case maxBytes == 0:
		maxBytes = DefaultMaxTokenBytes
	case maxBytes < 0:
		return nil, fmt.Errorf("auth: jwt.max_token_bytes: must not be negative, got %d", maxBytes)
	}
	a := &jwtAuth{issuers: map[string]*issuer{}, now: o.now, maxBytes: maxBytes}
	switch ttl := cfg.VerifiedCacheTTL; {
	case ttl == 0:
		a.cache = newVerifiedCache(DefaultVerifiedCacheTTL)
	case ttl > 0:
		a.cache = newVerifiedCache(ttl)
	}
	for i, ic := range cfg.Issuers {
		where := fmt.Sprintf("auth: jwt.issuers[%d]", i)
		if ic.Issuer != "" {
			where += " (" + ic.Issuer + ")"
		}
		is, err := newIssuer(ic, skew, refresh, minRefresh, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if _, dup := a.issuers[ic.Issuer]; dup {
			return nil, fmt.Errorf("%s: duplicate issuer", where)
		}
		a.issuers[ic.Issuer] = is
	}
	return a, nil
}

func newIssuer(ic Issuer, skew, refresh, minRefresh time.Duration, o options) (*issuer, error) {
	if ic.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	if ic.Audience == "" {
		return nil, errors.New("audience is required")
	}
	if len(ic.Algorithms) == 0 {
		return nil, errors.New("algorithms is required (pin the algorithms this issuer signs with)")
	}
	sources := 0
	for _, s := range []string{ic.JWKSURL, ic.KeysFile, ic.HMACSecret} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return nil, errors.New("set exactly one of jwks_url, keys_file and hmac_secret")
	}
	allowed := asymmetricAlgs
	if ic.HMACSecret != "" {
		allowed = hmacAlgs
	}
	for _, alg := range ic.Algorithms {
		if !slices.Contains(allowed, alg) {
			return nil, fmt.Errorf("algorithm %q cannot be used with this issuer's key source (allowed: %s)", alg, strings.Join(allowed, ", "))
		}
	}
	is := &issuer{cfg: ic}
	switch {
	case ic.HMACSecret != "":
		if len(ic.HMACSecret) < minHMACSecretBytes {
			return nil, fmt.Errorf("hmac_secret must be at least %d bytes", minHMACSecretBytes)
		}
		is.keys = &staticKeys{set: &keySet{noKid: []jwkKey{{key: []byte(ic.HMACSecret)}}}}
	case ic.KeysFile != "":
		data, err := os.ReadFile(ic.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("keys_file: %w", err)
		}
		set, err := parseKeys(data)
		if err != nil {
			return nil, fmt.Errorf("keys_file %s: %w", ic.KeysFile, err)
		}
		is.keys = &staticKeys{set: set}
	default:
		u, err := url.Parse(ic.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("jwks_url %q is not an http(s) URL", ic.JWKSURL)
		}
		is.keys = newRemoteKeys(ic.JWKSURL, refresh, minRefresh, o)
	}
	if ic.TenantClaim == "" {
		is.cfg.TenantClaim = DefaultTenantClaim
	}
	if ic.SubjectClaim == "" {
		is.cfg.SubjectClaim = DefaultSubjectClaim
	}
	if ic.ScopeClaim == "" {
		is.cfg.ScopeClaim = DefaultScopeClaim
	}
	is.parser = jwt.NewParser(
		jwt.WithValidMethods(slices.Clone(ic.Algorithms)),
		jwt.WithIssuer(ic.Issuer),
		jwt.WithAudience(ic.Audience),
		jwt.WithLeeway(skew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(o.now),
	)
	return is, nil
}

// close stops the background refreshes of every JWKS issuer.
func (a *jwtAuth) close() {
	for _, is := range a.issuers {
		if r, ok := is.keys.(*remoteKeys); ok {
			r.close()
		}
	}
}

func unauthenticated(code, format string, args ...any) *llm.Error {
	return &llm.Error{Kind: llm.KindUnauthenticated, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Authenticate verifies token: it must be at most the configured size, the issuer it names must
// be configured, its alg header must be one of that issuer's algorithms, its header must not name
// critical extensions (crit), its signature must verify with one of that issuer's keys of the
// right type (selected by kid), and exp (required), nbf, iat, iss and aud must hold, allowing for
// the clock skew. The principal is read from the issuer's claims; tenant and subject are required.
func (a *jwtAuth) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, unauthenticated("missing_token", "You didn't provide a token. Send it as 'Authorization: Bearer <token>'.")
	}
	if len(token) > a.maxBytes {
		return nil, tooLarge("token", len(token), a.maxBytes)
	}
	if !LooksLikeJWT(token) {
		return nil, unauthenticated("invalid_token", "The bearer token is not a JWT.")
	}
	var sum [sha256.Size]byte
	if a.cache != nil {
		sum = sha256.Sum256([]byte(token))
		if p := a.cache.get(sum, a.now()); p != nil {
			return p, nil
		}
	}
	// Read iss and alg without trusting them, to pick the issuer whose keys and algorithms apply.
	var unverified jwt.MapClaims
	tok, _, err := jwt.NewParser().ParseUnverified(token, &unverified)
	if err != nil {
		return nil, unauthenticated("invalid_token", "The token is malformed.")
	}
	iss, _ := unverified["iss"].(string)
	is, ok := a.issuers[iss]
	if !ok {
		return nil, unauthenticated("invalid_issuer", "The token's issuer is not trusted.")
	}
	if alg, _ := tok.Header["alg"].(string); !slices.Contains(is.cfg.Algorithms, alg) {
		return nil, unauthenticated("invalid_algorithm", "The token's algorithm %q is not accepted for its issuer.", alg)
	}
	if err := checkCrit(tok.Header); err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	_, err = is.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		keys, err := is.keys.keys(ctx, kid, t.Method.Alg())
		if err != nil {
			return nil, err
		}
		vs := jwt.VerificationKeySet{}
		for _, k := range keys {
			vs.Keys = append(vs.Keys, k)
		}
		return vs, nil
	})
	if err != nil {
		return nil, jwtError(err)
	}
	p := &Principal{Method: ModeJWT}
	if p.Tenant, _ = claim(claims, is.cfg.TenantClaim).(string); p.Tenant == "" {
		return nil, unauthenticated("invalid_token", "The token has no %q claim naming the tenant.", is.cfg.TenantClaim)
	}
	if p.Subject, _ = claim(claims, is.cfg.SubjectClaim).(string); p.Subject == "" {
		return nil, unauthenticated("invalid_token", "The token has no %q claim naming the subject.", is.cfg.SubjectClaim)
	}
	if p.Scopes, ok = stringList(claim(claims, is.cfg.ScopeClaim)); !ok {
		return nil, unauthenticated("invalid_token", "The token's %q claim is not a string or an array of strings.", is.cfg.ScopeClaim)
	}
	if is.cfg.ModelsClaim != "" {
		if p.Models, ok = stringList(claim(claims, is.cfg.ModelsClaim)); !ok {
			return nil, unauthenticated("invalid_token", "The token's %q claim is not a string or an array of strings.", is.cfg.ModelsClaim)
		}
	}
	if a.cache != nil {
		if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
			a.cache.put(sum, p, exp.Time, a.now())
		}
	}
	return p, nil
}

// tooLarge is the refusal of a credential (what: "token", "API key") of n bytes, over limit.
func tooLarge(what string, n, limit int) *llm.Error {
	return unauthenticated("token_too_large", "The %s is %d bytes; this gateway accepts at most %d.", what, n, limit)
}

// registeredHeaders are the header parameters RFC 7515 §4.1 defines; a crit list must not name
// them (§4.1.11).
var registeredHeaders = []string{"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit"}

// checkCrit refuses a header with a crit parameter. RFC 7515 §4.1.11: a recipient must refuse a
// JWS whose crit lists an extension it does not understand, and crit must be a non-empty array
// of names not defined by the specification. Switchyard understands no extension (not even b64,
// RFC 7797), so every crit is refused; the message says which rule the header broke.
func checkCrit(h map[string]any) *llm.Error {
	v, ok := h["crit"]
	if !ok {
		return nil
	}
	names, ok := v.([]any)
	if !ok || len(names) == 0 {
		return unauthenticated("unsupported_crit", "The token's crit header must be a non-empty array.")
	}
	for _, n := range names {
		name, ok := n.(string)
		switch {
		case !ok || name == "":
			return unauthenticated("unsupported_crit", "The token's crit header must list extension names.")
		case slices.Contains(registeredHeaders, name):
			return unauthenticated("unsupported_crit", "The token's crit header lists %q, a header parameter of the JWS specification.", name)
		}
	}
	return unauthenticated("unsupported_crit", "The token's crit header names extensions this gateway does not understand: %v.", names)
}

// verifiedCache remembers the principals of verified tokens by the SHA-256 of the token, until
// the token's exp or the TTL, whichever is first, measured on the authenticator's clock. A token
// that differs in one byte (tampered) has another hash and is verified afresh. At most
// verifiedCacheMax tokens are kept; the least recently used one makes room for a new one.
type verifiedCache struct {
	ttl time.Duration
	lru *lru.Cache[[sha256.Size]byte, verifiedEntry]
}

type verifiedEntry struct {
	p     *Principal
	until time.Time
}

func newVerifiedCache(ttl time.Duration) *verifiedCache {
	c, err := lru.New[[sha256.Size]byte, verifiedEntry](verifiedCacheMax)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &verifiedCache{ttl: ttl, lru: c}
}

// get returns the principal remembered for sum, or nil. An entry past its deadline is removed.
func (c *verifiedCache) get(sum [sha256.Size]byte, now time.Time) *Principal {
	e, ok := c.lru.Get(sum)
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		c.lru.Remove(sum)
		return nil
	}
	return e.p
}

func (c *verifiedCache) put(sum [sha256.Size]byte, p *Principal, exp, now time.Time) {
	until := now.Add(c.ttl)
	if exp.Before(until) {
		until = exp
	}
	c.lru.Add(sum, verifiedEntry{p: p, until: until})
}

// jwtError turns a parser error into the client's error: *llm.Error from key lookup as is,
// otherwise a KindUnauthenticated error saying which check failed.
func jwtError(err error) *llm.Error {
	var le *llm.Error
	if errors.As(err, &le) {
		return le
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthenticated("token_expired", "The token has expired.")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthenticated("token_not_yet_valid", "The token is not valid yet.")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthenticated("token_not_yet_valid", "The token was issued in the future.")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthenticated("invalid_audience", "The token is not meant for this gateway (aud).")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return unauthenticated("invalid_token", "The token lacks a required claim (exp and aud are required).")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthenticated("invalid_issuer", "The token's issuer is not trusted.")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthenticated("invalid_signature", "The token's signature does not verify.")
	}
	return unauthenticated("invalid_token", "The token is invalid.")
}

// claim returns the value at the dotted path name in c, or nil.
func claim(c jwt.MapClaims, name string) any {
	var v any = map[string]any(c)
	for part := range strings.SplitSeq(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// stringList reads a space-separated string or an array of strings; nil is an empty list.
func stringList(v any) ([]string, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		return strings.Fields(v), true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}
