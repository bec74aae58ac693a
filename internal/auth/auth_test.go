package auth_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name    string
		cfg     auth.Config
		wantErr string // "" means success
	}{
		{"empty mode is none", auth.Config{}, ""},
		{"none", auth.Config{Mode: "none"}, ""},
		{"unknown mode", auth.Config{Mode: "oauth"}, `unknown mode "oauth"`},
		{"jwt without issuers", auth.Config{Mode: "jwt"}, "at least one issuer"},
		{"api keys in jwt mode", auth.Config{Mode: "jwt", APIKeys: []auth.APIKey{{Name: "a", Key: "sk-1", Tenant: "t"}}}, `use "both"`},
		{"cert mapping without tenant", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "a", Key: "sk-1", Tenant: "t"}},
			ClientCerts: []auth.ClientCert{{Subject: "svc"}}}, "tenant is required"},
		{"cert mapping with subject and san", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "a", Key: "sk-1", Tenant: "t"}},
			ClientCerts: []auth.ClientCert{{Subject: "svc", SAN: "svc.example", Tenant: "t"}}}, "exactly one of subject and san"},
		{"api_key without keys", auth.Config{Mode: "api_key"}, "at least one"},
		{"plaintext key", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "dify", Key: "sk-1", Tenant: "t"}}}, ""},
		{"hashed key", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "dify", SHA256: sum("sk-1"), Tenant: "t"}}}, ""},
		{"uppercase hash", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "dify", SHA256: strings.ToUpper(sum("sk-1")), Tenant: "t"}}}, ""},
		{"empty key", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "dify", Tenant: "t"}}}, "key is empty"},
		{"no name", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Key: "sk-1", Tenant: "t"}}}, "name is required"},
		{"no tenant", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "a", Key: "sk-1"}}}, "tenant is required"},
		{"both key and hash", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "a", Key: "sk-1", SHA256: sum("sk-1"), Tenant: "t"}}}, "not both"},
		{"bad hash", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "a", SHA256: "abc", Tenant: "t"}}}, "64 hex digits"},
		{"key too long", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "a", Key: strings.Repeat("k", auth.MaxAPIKeyBytes+1), Tenant: "t"}}}, "longer than 512 bytes"},
		{"longest key", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "a", Key: strings.Repeat("k", auth.MaxAPIKeyBytes), Tenant: "t"}}}, ""},
		{"negative max_token_bytes", auth.Config{Mode: "jwt", JWT: auth.JWTConfig{MaxTokenBytes: -1, Issuers: []auth.Issuer{
			{Issuer: "https://i.test", Audience: "a", Algorithms: []string{"HS256"}, HMACSecret: "0123456789abcdef0123456789abcdef"}}}}, "max_token_bytes"},
		{"duplicate name", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{
			{Name: "a", Key: "sk-1", Tenant: "t"}, {Name: "a", Key: "sk-2", Tenant: "t"},
		}}, "duplicate name"},
		{"duplicate key across plaintext and hash", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{
			{Name: "a", Key: "sk-1", Tenant: "t"}, {Name: "b", SHA256: sum("sk-1"), Tenant: "u"},
		}}, `same key as "a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := auth.New(c.cfg)
			if c.wantErr == "" {
				if err != nil || a == nil {
					t.Fatalf("New() = %v, %v; want an authenticator", a, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("New() error = %v; want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestAPIKeyAuthenticate(t *testing.T) {
	a, err := auth.New(auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{
		{Name: "dify", Key: "sk-plain", Tenant: "acme", Scopes: []string{"chat"}},
		{Name: "batch", SHA256: sum("sk-hashed"), Tenant: "globex"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		token      string
		wantTenant string // "" means an UNAUTHENTICATED error
		wantCode   string
	}{
		{"sk-plain", "acme", ""},
		{"sk-hashed", "globex", ""},
		{"", "", "missing_api_key"},
		{"sk-wrong", "", "invalid_api_key"},
		{"SK-PLAIN", "", "invalid_api_key"},
		{strings.Repeat("k", auth.MaxAPIKeyBytes+1), "", "token_too_large"},
	}
	for _, c := range cases {
		t.Run(c.token[:min(len(c.token), 20)], func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), c.token)
			if c.wantTenant != "" {
				if err != nil || p.Tenant != c.wantTenant {
					t.Fatalf("Authenticate(%q) = %+v, %v; want tenant %q", c.token, p, err, c.wantTenant)
				}
				return
			}
			e, ok := err.(*llm.Error)
			if !ok || e.Kind != llm.KindUnauthenticated || e.Code != c.wantCode {
				t.Fatalf("Authenticate(%q) error = %#v; want KindUnauthenticated with code %q", c.token, err, c.wantCode)
			}
		})
	}
	p, _ := a.Authenticate(context.Background(), "sk-plain")
	if p.KeyName != "dify" || p.Subject != "dify" || !p.HasScope("chat") || p.HasScope("admin") {
		t.Errorf("principal = %+v; want key dify with scope chat only", p)
	}
}

func TestNoneAuthenticatesEveryone(t *testing.T) {
	a, err := auth.New(auth.Config{Mode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", "anything"} {
		p, err := a.Authenticate(context.Background(), tok)
		if err != nil || p.Tenant != "default" || !p.HasScope("admin") {
			t.Errorf("Authenticate(%q) = %+v, %v; want the anonymous default-tenant principal with every scope", tok, p, err)
		}
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := auth.FromContext(ctx); ok {
		t.Fatal("FromContext on an empty context reported a principal")
	}
	want := &auth.Principal{Tenant: "acme"}
	got, ok := auth.FromContext(auth.NewContext(ctx, want))
	if !ok || got != want {
		t.Fatalf("FromContext = %v, %v; want %v", got, ok, want)
	}
	if _, ok := auth.FromContext(auth.NewContext(ctx, nil)); ok {
		t.Fatal("FromContext reported a nil principal as present")
	}
}

// TestAPIKeyLifecycle: expired and revoked keys are refused with codes saying so; keys without
// scopes get DefaultScopes (never admin); allowed models are carried on the principal.
func TestAPIKeyLifecycle(t *testing.T) {
	a, err := auth.New(auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{
		{Name: "fresh", Key: "sk-fresh", Tenant: "acme", ExpiresAt: now.Add(time.Second)},
		{Name: "stale", Key: "sk-stale", Tenant: "acme", ExpiresAt: now},
		{Name: "leaked", Key: "sk-leaked", Tenant: "acme", Revoked: true},
		{Name: "narrow", Key: "sk-narrow", Tenant: "acme", Models: []string{"chat", "mock/*"}},
	}}, auth.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct{ token, code string }{
		{"sk-fresh", ""},
		{"sk-stale", "expired_api_key"},
		{"sk-leaked", "revoked_api_key"},
		{"sk-narrow", ""},
	}
	for _, c := range cases {
		p, err := a.Authenticate(ctx, c.token)
		if c.code != "" {
			wantCode(t, err, c.code)
			continue
		}
		if err != nil {
			t.Fatalf("Authenticate(%q): %v", c.token, err)
		}
		if !slices.Equal(p.Scopes, auth.DefaultScopes) || p.HasScope(auth.ScopeAdmin) || p.Method != "api_key" {
			t.Errorf("principal %+v; want DefaultScopes without admin", p)
		}
	}
	p, _ := a.Authenticate(ctx, "sk-narrow")
	for model, want := range map[string]bool{"chat": true, "mock/echo": true, "up/gpt": false, "chatty": false, "mock": false} {
		if got := p.AllowsModel(model); got != want {
			t.Errorf("AllowsModel(%q) = %v; want %v", model, got, want)
		}
	}
	p, _ = a.Authenticate(ctx, "sk-fresh")
	if !p.AllowsModel("anything/at-all") {
		t.Error("a key without models must allow every model")
	}
}

// TestClientCertPrincipal: with no bearer token, a verified client certificate matching a
// mapping by subject or SAN is that mapping's principal; a token still wins over a certificate.
func TestClientCertPrincipal(t *testing.T) {
	spiffe, _ := url.Parse("spiffe://acme.test/billing")
	certs := map[string]*x509.Certificate{
		"by CN":        {Subject: pkix.Name{CommonName: "billing", Organization: []string{"Acme"}}},
		"by full DN":   {Subject: pkix.Name{CommonName: "etl", Organization: []string{"Globex"}}},
		"by URI SAN":   {Subject: pkix.Name{CommonName: "x"}, URIs: []*url.URL{spiffe}},
		"by DNS SAN":   {Subject: pkix.Name{CommonName: "y"}, DNSNames: []string{"batch.internal"}},
		"not mapped":   {Subject: pkix.Name{CommonName: "intruder"}},
		"no cert sent": nil,
	}
	a, err := auth.New(auth.Config{Mode: "api_key",
		APIKeys: []auth.APIKey{{Name: "dify", Key: "sk-dify", Tenant: "dify"}},
		ClientCerts: []auth.ClientCert{
			{Subject: "billing", Tenant: "acme", Scopes: []string{"chat:write"}},
			{Subject: "CN=etl,O=Globex", Tenant: "globex", Name: "etl-job"},
			{SAN: "spiffe://acme.test/billing", Tenant: "acme-spiffe"},
			{SAN: "batch.internal", Tenant: "batch"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"by CN": "acme", "by full DN": "globex", "by URI SAN": "acme-spiffe", "by DNS SAN": "batch"}
	for name, cert := range certs {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if cert != nil {
				ctx = auth.NewCertContext(ctx, cert)
			}
			p, err := a.Authenticate(ctx, "")
			if want[name] == "" {
				wantCode(t, err, "missing_api_key")
				return
			}
			if err != nil || p.Tenant != want[name] || p.Method != "mtls" {
				t.Fatalf("Authenticate = %+v, %v; want tenant %q by mtls", p, err, want[name])
			}
			if p, err := a.Authenticate(ctx, "sk-dify"); err != nil || p.Tenant != "dify" {
				t.Errorf("with a token too: %+v, %v; want the token's principal", p, err)
			}
		})
	}
	p, _ := a.Authenticate(auth.NewCertContext(context.Background(), certs["by full DN"]), "")
	if p.Subject != "etl-job" || !slices.Equal(p.Scopes, auth.DefaultScopes) {
		t.Errorf("principal %+v; want subject etl-job with DefaultScopes", p)
	}
}
