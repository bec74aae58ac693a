package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

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
	}
	for _, c := range cases {
		t.Run(c.token, func(t *testing.T) {
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
