package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "switchyard"
	hmacSecret   = "0123456789abcdef0123456789abcdef" // 32 bytes
)

// now is the fixed clock of these tests.
var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

var quiet = slog.New(slog.DiscardHandler)

var (
	rsaKey          = mustRSA()
	ecKey           = mustEC()
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// claims returns valid claims for the test issuer; edit modifies them.
func claims(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":    testIssuer,
		"aud":    testAudience,
		"sub":    "svc-billing",
		"tenant": "acme",
		"scope":  "chat:write models:read",
		"iat":    now.Add(-time.Minute).Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"exp":    now.Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// sign signs c with method and key, setting kid when it is not empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf returns the public JWK of key with kid.
func jwkOf(kid string, key crypto.PublicKey) map[string]string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(k)}
	}
	panic("unsupported key")
}

func jwks(keys ...map[string]string) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

func pemPublic(t *testing.T, key crypto.PublicKey, kid string) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b := &pem.Block{Type: "PUBLIC KEY", Bytes: der}
	if kid != "" {
		b.Headers = map[string]string{"kid": kid}
	}
	return pem.EncodeToMemory(b)
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newAuth(t *testing.T, cfg auth.Config, opts ...auth.Option) auth.Authenticator {
	t.Helper()
	a, err := auth.New(cfg, append([]auth.Option{auth.WithClock(clock), auth.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c, ok := a.(interface{ Close() error }); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	return a
}

// wantCode checks that err is a KindUnauthenticated *llm.Error with code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var le *llm.Error
	if !errors.As(err, &le) || le.Kind != llm.KindUnauthenticated || le.Code != code {
		t.Fatalf("error = %#v; want KindUnauthenticated with code %q", err, code)
	}
}

// tamper replaces the payload of token with c, keeping header and signature.
func tamper(t *testing.T, token string, c jwt.MapClaims) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = b64(b)
	return strings.Join(parts, ".")
}

// signWithHeader is sign with extra header parameters.
func signWithHeader(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// TestJWTAttacks: every forged, stale or misdirected token is refused with a code saying why.
func TestJWTAttacks(t *testing.T) {
	rsaPEM := pemPublic(t, &rsaKey.PublicKey, "")
	rsAuth := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{Issuers: []auth.Issuer{{
		Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"},
		KeysFile: writeFile(t, "keys.pem", rsaPEM),
	}}}})
	hsAuth := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{Issuers: []auth.Issuer{{
		Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"HS256"}, HMACSecret: hmacSecret,
	}}}})
	otherRSA := mustRSA()
	good := sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(nil))
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil))

	cases := []struct {
		name  string
		a     auth.Authenticator
		token string
		code  string // "" means accepted
	}{
		{"valid RS256", rsAuth, good, ""},
		{"valid HS256", hsAuth, sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", claims(nil)), ""},
		{"alg none, empty signature", rsAuth, noneTok, "invalid_token"},
		{"alg none with a signature part", rsAuth, noneTok + "c2ln", "invalid_algorithm"},
		{"alg none to an HMAC issuer", hsAuth, noneTok + "c2ln", "invalid_algorithm"},
		{"HS256 signed with the RSA public key", rsAuth, sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims(nil)), "invalid_algorithm"},
		{"RS256 token to an HMAC issuer", hsAuth, good, "invalid_algorithm"},
		{"RS384 not pinned", rsAuth, sign(t, jwt.SigningMethodRS384, rsaKey, "", claims(nil)), "invalid_algorithm"},
		{"signed by another key", rsAuth, sign(t, jwt.SigningMethodRS256, otherRSA, "", claims(nil)), "invalid_signature"},
		{"tampered payload", rsAuth, tamper(t, good, claims(func(c jwt.MapClaims) { c["tenant"] = "globex" })), "invalid_signature"},
		{"tampered scopes", rsAuth, tamper(t, good, claims(func(c jwt.MapClaims) { c["scope"] = "admin" })), "invalid_signature"},
		{"expired", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), "token_expired"},
		{"expired within the skew", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })), ""},
		{"no exp", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { delete(c, "exp") })), "invalid_token"},
		{"not yet valid", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), "token_not_yet_valid"},
		{"issued in the future", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), "token_not_yet_valid"},
		{"wrong aud", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["aud"] = "other-service" })), "invalid_audience"},
		{"aud list with ours", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", testAudience} })), ""},
		{"no aud", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { delete(c, "aud") })), "invalid_token"},
		{"wrong iss", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })), "invalid_issuer"},
		{"no iss", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { delete(c, "iss") })), "invalid_issuer"},
		{"no tenant", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { delete(c, "tenant") })), "invalid_token"},
		{"no subject", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { delete(c, "sub") })), "invalid_token"},
		{"scope of the wrong type", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["scope"] = 7 })), "invalid_token"},
		{"not a JWT", rsAuth, "sk-some-api-key", "invalid_token"},
		{"crit names an unknown extension", rsAuth, signWithHeader(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"crit": []string{"exp-ext"}, "exp-ext": 1}, claims(nil)), "unsupported_crit"},
		{"crit b64 (RFC 7797, not understood)", rsAuth, signWithHeader(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"crit": []string{"b64"}, "b64": true}, claims(nil)), "unsupported_crit"},
		{"crit empty", rsAuth, signWithHeader(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"crit": []string{}}, claims(nil)), "unsupported_crit"},
		{"crit not an array", rsAuth, signWithHeader(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"crit": "exp-ext"}, claims(nil)), "unsupported_crit"},
		{"crit lists a registered header", rsAuth, signWithHeader(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"crit": []string{"kid"}, "kid": "k"}, claims(nil)), "unsupported_crit"},
		{"crit to an HMAC issuer", hsAuth, signWithHeader(t, jwt.SigningMethodHS256, []byte(hmacSecret), map[string]any{"crit": []string{"x"}, "x": 1}, claims(nil)), "unsupported_crit"},
		{"oversized token", rsAuth, sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", auth.DefaultMaxTokenBytes) })), "token_too_large"},
		{"oversized garbage", rsAuth, strings.Repeat("a", 1<<20) + ".b.c", "token_too_large"},
		{"garbage in three parts", rsAuth, "a.b.c", "invalid_token"},
		{"no token", rsAuth, "", "missing_token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.a.Authenticate(context.Background(), c.token)
			if c.code == "" {
				if err != nil || p.Tenant != "acme" || p.Subject != "svc-billing" || p.Method != "jwt" {
					t.Fatalf("Authenticate = %+v, %v; want tenant acme, subject svc-billing", p, err)
				}
				return
			}
			wantCode(t, err, c.code)
		})
	}
}

// TestJWTMaxTokenBytes: auth.jwt.max_token_bytes is the longest token verified, checked before
// anything else.
func TestJWTMaxTokenBytes(t *testing.T) {
	good := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", claims(nil))
	for _, c := range []struct {
		max  int
		code string
	}{{len(good), ""}, {len(good) - 1, "token_too_large"}} {
		a := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{MaxTokenBytes: c.max, Issuers: []auth.Issuer{{
			Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"HS256"}, HMACSecret: hmacSecret,
		}}}})
		_, err := a.Authenticate(context.Background(), good)
		if c.code == "" {
			if err != nil {
				t.Errorf("max %d: %v; want accepted", c.max, err)
			}
			continue
		}
		wantCode(t, err, c.code)
		if !strings.Contains(err.Error(), fmt.Sprint(c.max)) {
			t.Errorf("max %d: %v; want the limit in the message", c.max, err)
		}
	}
}

// TestJWTAlgorithmsMatchKeySource: an issuer cannot mix HMAC and public-key algorithms, and none
// is never an algorithm.
func TestJWTConfigValidation(t *testing.T) {
	pemFile := writeFile(t, "k.pem", pemPublic(t, &rsaKey.PublicKey, ""))
	base := auth.Issuer{Issuer: testIssuer, Audience: testAudience}
	with := func(edit func(*auth.Issuer)) auth.Config {
		is := base
		edit(&is)
		return auth.Config{Mode: "jwt", JWT: auth.JWTConfig{Issuers: []auth.Issuer{is}}}
	}
	cases := []struct {
		name    string
		cfg     auth.Config
		wantErr string
	}{
		{"HS with a keys file", with(func(i *auth.Issuer) { i.Algorithms = []string{"HS256"}; i.KeysFile = pemFile }), `"HS256" cannot be used`},
		{"RS with a secret", with(func(i *auth.Issuer) { i.Algorithms = []string{"RS256"}; i.HMACSecret = hmacSecret }), `"RS256" cannot be used`},
		{"none", with(func(i *auth.Issuer) { i.Algorithms = []string{"none"}; i.KeysFile = pemFile }), `"none" cannot be used`},
		{"no algorithms", with(func(i *auth.Issuer) { i.KeysFile = pemFile }), "algorithms is required"},
		{"short secret", with(func(i *auth.Issuer) { i.Algorithms = []string{"HS256"}; i.HMACSecret = "short" }), "at least 32 bytes"},
		{"two key sources", with(func(i *auth.Issuer) {
			i.Algorithms = []string{"RS256"}
			i.KeysFile = pemFile
			i.JWKSURL = "https://issuer.test/jwks"
		}), "exactly one of"},
		{"no audience", with(func(i *auth.Issuer) { i.Audience = ""; i.Algorithms = []string{"RS256"}; i.KeysFile = pemFile }), "audience is required"},
		{"bad jwks url", with(func(i *auth.Issuer) { i.Algorithms = []string{"RS256"}; i.JWKSURL = "file:///etc/keys" }), "not an http(s) URL"},
		{"missing keys file", with(func(i *auth.Issuer) { i.Algorithms = []string{"RS256"}; i.KeysFile = "/nonexistent/keys.pem" }), "keys_file"},
		{"small RSA key", with(func(i *auth.Issuer) {
			small, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			i.Algorithms = []string{"RS256"}
			i.KeysFile = writeFile(t, "small.pem", pemPublic(t, &small.PublicKey, ""))
		}), "at least 2048"},
		{"skew too large", auth.Config{Mode: "jwt", JWT: auth.JWTConfig{ClockSkew: time.Hour, Issuers: []auth.Issuer{
			{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"}, KeysFile: pemFile}}}}, "clock_skew"},
		{"duplicate issuer", auth.Config{Mode: "jwt", JWT: auth.JWTConfig{Issuers: []auth.Issuer{
			{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"}, KeysFile: pemFile},
			{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"HS256"}, HMACSecret: hmacSecret}}}}, "duplicate issuer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("New error = %v; want one containing %q", err, c.wantErr)
			}
		})
	}
}

// TestJWTKeysAndClaims: each algorithm family verifies with keys from a PEM file or a JWK set
// (selected by kid), and the principal comes from the configured claims.
func TestJWTKeysAndClaims(t *testing.T) {
	pemKeys := append(pemPublic(t, &rsaKey.PublicKey, "rsa-1"), pemPublic(t, edPub, "ed-1")...)
	jwkFile := writeFile(t, "keys.json", jwks(jwkOf("ec-1", &ecKey.PublicKey), jwkOf("ed-2", edPub),
		map[string]string{"kty": "oct", "kid": "sym", "k": b64([]byte(hmacSecret))}))
	a := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{Issuers: []auth.Issuer{
		{Issuer: "pem", Audience: testAudience, Algorithms: []string{"RS256", "PS256", "EdDSA"}, KeysFile: writeFile(t, "k.pem", pemKeys)},
		{Issuer: "jwk", Audience: testAudience, Algorithms: []string{"ES256", "EdDSA", "RS256"}, KeysFile: jwkFile,
			TenantClaim: "org.id", SubjectClaim: "client_id", ScopeClaim: "scp", ModelsClaim: "models"},
	}}})
	iss := func(name string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c["iss"] = name } }
	custom := func(c jwt.MapClaims) {
		c["iss"] = "jwk"
		c["org"] = map[string]any{"id": "globex"}
		c["client_id"] = "etl"
		c["scp"] = []string{"embeddings:write", "sessions:read"}
		c["models"] = "mock/embed openai/*"
	}
	cases := []struct {
		name   string
		token  string
		code   string
		tenant string
		scopes []string
	}{
		{"RS256 by kid", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims(iss("pem"))), "", "acme", []string{"chat:write", "models:read"}},
		{"PS256 same key", sign(t, jwt.SigningMethodPS256, rsaKey, "rsa-1", claims(iss("pem"))), "", "acme", nil},
		{"EdDSA by kid", sign(t, jwt.SigningMethodEdDSA, edKey, "ed-1", claims(iss("pem"))), "", "acme", nil},
		{"EdDSA without kid", sign(t, jwt.SigningMethodEdDSA, edKey, "", claims(iss("pem"))), "", "acme", nil},
		{"EdDSA naming the RSA kid", sign(t, jwt.SigningMethodEdDSA, edKey, "rsa-1", claims(iss("pem"))), "unknown_kid", "", nil},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-9", claims(iss("pem"))), "unknown_kid", "", nil},
		{"ES256 from a JWK set, custom claims", sign(t, jwt.SigningMethodES256, ecKey, "ec-1", claims(custom)), "", "globex", []string{"embeddings:write", "sessions:read"}},
		{"EdDSA from a JWK set", sign(t, jwt.SigningMethodEdDSA, edKey, "ed-2", claims(custom)), "", "globex", nil},
		{"symmetric JWK is never used", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "sym", claims(custom)), "invalid_algorithm", "", nil},
		{"RS256 pinned but no RSA key in the set", sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(custom)), "unknown_kid", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), c.token)
			if c.code != "" {
				wantCode(t, err, c.code)
				return
			}
			if err != nil || p.Tenant != c.tenant {
				t.Fatalf("Authenticate = %+v, %v; want tenant %q", p, err, c.tenant)
			}
			if c.scopes != nil && !slices.Equal(p.Scopes, c.scopes) {
				t.Errorf("scopes = %q; want %q", p.Scopes, c.scopes)
			}
		})
	}
	p, err := a.Authenticate(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, "ec-1", claims(custom)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "etl" || !p.AllowsModel("mock/embed") || !p.AllowsModel("openai/gpt-4o") || p.AllowsModel("mock/echo") {
		t.Errorf("principal = %+v; want subject etl allowed mock/embed and openai/* only", p)
	}
}

// jwksServer serves a JWK set that the test can replace, counting fetches on hits.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	doc  []byte
	hits chan struct{}
	n    atomic.Int64
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	s := &jwksServer{doc: doc, hits: make(chan struct{}, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		doc := s.doc
		s.mu.Unlock()
		s.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
		select {
		case s.hits <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte) {
	s.mu.Lock()
	s.doc = doc
	s.mu.Unlock()
}

// TestJWKSRotation: a new kid triggers one refetch; a flood of unknown kids does not hammer the
// issuer (one fetch per min refresh interval); a removed key stops verifying once refetched.
func TestJWKSRotation(t *testing.T) {
	key1, key2 := mustRSA(), mustRSA()
	srv := newJWKSServer(t, jwks(jwkOf("k1", &key1.PublicKey)))
	var mu sync.Mutex
	clk := now
	tick := func(d time.Duration) { mu.Lock(); clk = clk.Add(d); mu.Unlock() }
	a, err := auth.New(auth.Config{Mode: "jwt", JWT: auth.JWTConfig{
		JWKSMinRefresh: time.Minute, JWKSRefresh: time.Hour, VerifiedCacheTTL: -1, // every token verified
		Issuers: []auth.Issuer{{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"}, JWKSURL: srv.URL}},
	}}, auth.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clk }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.(interface{ Close() error }).Close() })
	ctx := context.Background()
	tok1 := sign(t, jwt.SigningMethodRS256, key1, "k1", claims(nil))
	tok2 := sign(t, jwt.SigningMethodRS256, key2, "k2", claims(nil))

	if srv.n.Load() != 0 {
		t.Fatal("New fetched the JWK set; want a fetch on first use")
	}
	if _, err := a.Authenticate(ctx, tok1); err != nil {
		t.Fatalf("k1 before rotation: %v", err)
	}
	if _, err := a.Authenticate(ctx, tok1); err != nil || srv.n.Load() != 1 {
		t.Fatalf("k1 again: %v, fetches %d; want 1 (cached)", err, srv.n.Load())
	}

	// Forged kids within the min refresh interval: no more fetches.
	for range 20 {
		_, err := a.Authenticate(ctx, sign(t, jwt.SigningMethodRS256, key2, "forged", claims(nil)))
		wantCode(t, err, "unknown_kid")
	}
	if n := srv.n.Load(); n != 1 {
		t.Fatalf("fetches after 20 forged kids = %d; want 1 (rate-limited)", n)
	}

	// The issuer rotates to k2. After the min interval the first k2 token refetches.
	srv.set(jwks(jwkOf("k2", &key2.PublicKey)))
	tick(time.Minute)
	if _, err := a.Authenticate(ctx, tok2); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if n := srv.n.Load(); n != 2 {
		t.Fatalf("fetches = %d; want 2", n)
	}
	_, err = a.Authenticate(ctx, tok1)
	wantCode(t, err, "unknown_kid")
}

// TestJWKSBackgroundRefresh: the set is refetched every refresh interval after first use, and
// Close stops that.
func TestJWKSBackgroundRefresh(t *testing.T) {
	srv := newJWKSServer(t, jwks(jwkOf("k1", &rsaKey.PublicKey)))
	a, err := auth.New(auth.Config{Mode: "jwt", JWT: auth.JWTConfig{
		JWKSRefresh: 5 * time.Millisecond,
		Issuers:     []auth.Issuer{{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"}, JWKSURL: srv.URL}},
	}}, auth.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey, "k1", claims(nil))); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for seen := 0; seen < 3; seen++ { // the first use, then two background refreshes
		select {
		case <-srv.hits:
		case <-timeout:
			t.Fatalf("saw %d fetches; want 3", seen)
		}
	}
	if err := a.(interface{ Close() error }).Close(); err != nil {
		t.Fatal(err)
	}
	after := srv.n.Load()
	// Close waited for the loop to end: a fetch in flight was counted before it returned.
	srv.Close() // any later fetch would fail, and could not be counted
	if got := srv.n.Load(); got != after {
		t.Errorf("fetches grew from %d to %d after Close", after, got)
	}
}

// TestJWKSUnreachable: an issuer whose JWKS cannot be fetched refuses tokens (UNAUTHENTICATED,
// not an internal error), and a failed fetch is not retried for every request.
func TestJWKSUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	var n atomic.Int64
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); http.NotFound(w, r) })
	t.Cleanup(srv.Close)
	a := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{
		Issuers: []auth.Issuer{{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"}, JWKSURL: srv.URL}},
	}})
	tok := sign(t, jwt.SigningMethodRS256, rsaKey, "k1", claims(nil))
	for range 5 {
		_, err := a.Authenticate(context.Background(), tok)
		wantCode(t, err, "keys_unavailable")
	}
	if n.Load() != 1 {
		t.Errorf("fetches = %d; want 1", n.Load())
	}
}

// TestModeBoth: JWT-shaped tokens go to the JWT verifier, others to the API keys.
func TestModeBoth(t *testing.T) {
	a := newAuth(t, auth.Config{Mode: "both",
		APIKeys: []auth.APIKey{{Name: "dify", Key: "sk-dify", Tenant: "acme"}},
		JWT: auth.JWTConfig{Issuers: []auth.Issuer{{Issuer: testIssuer, Audience: testAudience,
			Algorithms: []string{"HS256"}, HMACSecret: hmacSecret}}},
	})
	cases := []struct {
		token, method, code string
	}{
		{"sk-dify", "api_key", ""},
		{sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", claims(nil)), "jwt", ""},
		{"sk-other", "", "invalid_api_key"},
		{"x.y.z", "", "invalid_token"},
		{"", "", "missing_api_key"},
	}
	for _, c := range cases {
		p, err := a.Authenticate(context.Background(), c.token)
		if c.code != "" {
			wantCode(t, err, c.code)
			continue
		}
		if err != nil || p.Method != c.method {
			t.Errorf("Authenticate(%.10q) = %+v, %v; want method %s", c.token, p, err, c.method)
		}
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for tok, want := range map[string]bool{
		"a.b.c": true, "eyJ.eyJ.sig": true, "a.b.": false, "a..c": false, ".b.c": false,
		"a.b.c.d": false, "sk-abc": false, "a.b": false, "": false,
	} {
		if got := auth.LooksLikeJWT(tok); got != want {
			t.Errorf("LooksLikeJWT(%q) = %v; want %v", tok, got, want)
		}
	}
}

// TestVerifiedCache: a verified token is not verified again within the cache TTL (so a key the
// issuer removed keeps honouring it until then), and is verified afresh after it.
func TestVerifiedCache(t *testing.T) {
	key1, key2 := mustRSA(), mustRSA()
	srv := newJWKSServer(t, jwks(jwkOf("k1", &key1.PublicKey)))
	var mu sync.Mutex
	clk := now
	tick := func(d time.Duration) { mu.Lock(); clk = clk.Add(d); mu.Unlock() }
	a := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{
		JWKSMinRefresh: time.Millisecond, VerifiedCacheTTL: time.Minute,
		Issuers: []auth.Issuer{{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"}, JWKSURL: srv.URL}},
	}}, auth.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clk }))
	ctx := context.Background()
	tok1 := sign(t, jwt.SigningMethodRS256, key1, "k1", claims(nil))
	if _, err := a.Authenticate(ctx, tok1); err != nil {
		t.Fatal(err)
	}
	// The issuer rotates to k2, and the gateway learns it from the first k2 token.
	srv.set(jwks(jwkOf("k2", &key2.PublicKey)))
	tick(30 * time.Second)
	if _, err := a.Authenticate(ctx, sign(t, jwt.SigningMethodRS256, key2, "k2", claims(nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, tok1); err != nil {
		t.Fatalf("within the cache TTL: %v; want the cached principal", err)
	}
	// A tampered copy is another token: verified, refused.
	_, err := a.Authenticate(ctx, tamper(t, tok1, claims(func(c jwt.MapClaims) { c["tenant"] = "globex" })))
	if err == nil {
		t.Fatal("tampered token accepted")
	}
	tick(31 * time.Second)
	_, err = a.Authenticate(ctx, tok1)
	wantCode(t, err, "unknown_kid")
}

// TestJWKSetKeys: a JWK set loads its signing keys and skips keys for other uses, symmetric keys,
// keys that cannot sign and key types it does not know; a weak or malformed signing key, or a set
// with nothing to verify with, is refused.
func TestJWKSetKeys(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := jwkOf("enc", &rsaKey.PublicKey)
	enc["use"] = "enc"
	ecPrivate := jwkOf("ec", &ecKey.PublicKey)
	ecPrivate["d"] = b64(ecKey.D.FillBytes(make([]byte, 32)))
	offCurve := jwkOf("bad", &ecKey.PublicKey)
	offCurve["y"] = offCurve["x"]
	oct := map[string]string{"kty": "oct", "kid": "sym", "k": b64([]byte(hmacSecret))}
	x25519 := map[string]string{"kty": "OKP", "kid": "x", "crv": "X25519", "x": b64(x.PublicKey().Bytes())}
	unknown := map[string]string{"kty": "XYZ", "kid": "u"}

	cases := []struct {
		name    string
		keys    []map[string]string
		wantErr string // "" means the set loads, with kid "ec" as its only key
	}{
		{"signing key among others", []map[string]string{enc, oct, x25519, unknown, jwkOf("ec", &ecKey.PublicKey)}, ""},
		{"private members are dropped", []map[string]string{ecPrivate}, ""},
		{"RSA key under 2048 bits", []map[string]string{jwkOf("small", &small.PublicKey)}, "at least 2048"},
		{"point not on the curve", []map[string]string{offCurve}, `"bad"`},
		{"nothing to verify with", []map[string]string{enc, oct, x25519}, "no usable signing keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := auth.Config{Mode: "jwt", JWT: auth.JWTConfig{Issuers: []auth.Issuer{{Issuer: testIssuer, Audience: testAudience,
				Algorithms: []string{"ES256", "RS256"}, KeysFile: writeFile(t, "keys.json", jwks(c.keys...))}}}}
			if c.wantErr != "" {
				if _, err := auth.New(cfg); err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("New error = %v; want one containing %q", err, c.wantErr)
				}
				return
			}
			a := newAuth(t, cfg)
			if _, err := a.Authenticate(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, "ec", claims(nil))); err != nil {
				t.Fatalf("ES256 with kid ec: %v", err)
			}
			_, err := a.Authenticate(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey, "enc", claims(nil)))
			wantCode(t, err, "unknown_kid")
		})
	}
}

// TestJWKSFetchFailures: a JWKS document over 1 MiB is refused, and a refetch that fails (too
// large, not JSON, no signing key) keeps the set fetched before.
func TestJWKSFetchFailures(t *testing.T) {
	padded := func(n int) []byte { // the k1 set, padded to n bytes
		doc := jwks(jwkOf("k1", &rsaKey.PublicKey))
		doc = append(doc[:len(doc)-1], `,"pad":"`...)
		return append(append(doc, strings.Repeat("x", n-len(doc)-2)...), `"}`...)
	}
	const maxDoc = 1 << 20
	huge := newJWKSServer(t, padded(maxDoc+1))
	_, err := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{Issuers: []auth.Issuer{
		{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"}, JWKSURL: huge.URL}}}}).
		Authenticate(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey, "k1", claims(nil)))
	wantCode(t, err, "keys_unavailable")

	srv := newJWKSServer(t, padded(maxDoc))
	var mu sync.Mutex
	clk := now
	tick := func(d time.Duration) { mu.Lock(); clk = clk.Add(d); mu.Unlock() }
	a := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{
		JWKSMinRefresh: time.Minute, JWKSRefresh: time.Hour, VerifiedCacheTTL: -1,
		Issuers: []auth.Issuer{{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"RS256"}, JWKSURL: srv.URL}},
	}}, auth.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clk }))
	ctx := context.Background()
	tok1 := sign(t, jwt.SigningMethodRS256, rsaKey, "k1", claims(nil))
	if _, err := a.Authenticate(ctx, tok1); err != nil {
		t.Fatalf("a set of exactly 1 MiB: %v", err)
	}
	for _, bad := range []struct {
		name string
		doc  []byte
	}{
		{"over 1 MiB", padded(maxDoc + 1)},
		{"not JSON", []byte("<html>maintenance</html>")},
		{"no signing key", jwks(map[string]string{"kty": "oct", "kid": "k2", "k": b64([]byte(hmacSecret))})},
	} {
		srv.set(bad.doc)
		tick(time.Minute)
		before := srv.n.Load()
		_, err := a.Authenticate(ctx, sign(t, jwt.SigningMethodRS256, rsaKey, "k2", claims(nil)))
		wantCode(t, err, "unknown_kid")
		if n := srv.n.Load(); n != before+1 {
			t.Errorf("%s: %d fetches for an unknown kid; want 1", bad.name, n-before)
		}
		if _, err := a.Authenticate(ctx, tok1); err != nil {
			t.Errorf("%s: k1 after the failed refetch: %v; want the previous set kept", bad.name, err)
		}
	}
}

// TestVerifiedCacheEndsAtExp: a remembered principal is not returned past its token's exp, even
// within the cache TTL.
func TestVerifiedCacheEndsAtExp(t *testing.T) {
	var mu sync.Mutex
	clk := now
	tick := func(d time.Duration) { mu.Lock(); clk = clk.Add(d); mu.Unlock() }
	a := newAuth(t, auth.Config{Mode: "jwt", JWT: auth.JWTConfig{VerifiedCacheTTL: time.Hour, Issuers: []auth.Issuer{
		{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"HS256"}, HMACSecret: hmacSecret}}}},
		auth.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clk }))
	tok := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(10 * time.Second).Unix() }))
	if _, err := a.Authenticate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	tick(10*time.Second + auth.DefaultClockSkew + time.Second)
	_, err := a.Authenticate(context.Background(), tok)
	wantCode(t, err, "token_expired")
}
