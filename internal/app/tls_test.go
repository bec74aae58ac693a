package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/auth"
)

// TestTLSConfigValidation: server.tls settings that cannot work, or that would silently trust
// unverified certificates, are config errors.
func TestTLSConfigValidation(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*Config)
		wantErr string // "" means valid
	}{
		{"off", func(*Config) {}, ""},
		{"on", func(c *Config) { c.Server.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem"} }, ""},
		{"mTLS request", func(c *Config) {
			c.Server.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem"}
		}, ""},
		{"cert without key", func(c *Config) { c.Server.TLS = TLSConfig{CertFile: "c.pem"} }, "set both cert_file and key_file"},
		{"bad client_auth", func(c *Config) {
			c.Server.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem", ClientAuth: "always"}
		}, `"always" is not`},
		{"client CA without TLS", func(c *Config) { c.Server.TLS = TLSConfig{ClientCAFile: "ca.pem"} }, "need cert_file and key_file"},
		{"client_auth without CA", func(c *Config) {
			c.Server.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientAuth: ClientAuthRequire}
		}, "needs client_ca_file"},
		{"cert mappings without CA", func(c *Config) {
			c.Auth = auth.Config{Mode: auth.ModeAPIKey, APIKeys: []auth.APIKey{{Name: "a", Key: "sk-a", Tenant: "t"}},
				ClientCerts: []auth.ClientCert{{Subject: "svc", Tenant: "t"}}}
		}, "auth.client_certs: needs server.tls.client_ca_file"},
		{"require with the loopback gateway", func(c *Config) {
			c.Server.GatewayTransport = TransportLoopback
			c.Server.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem", ClientAuth: ClientAuthRequire}
		}, "gateway_transport: inproc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.edit(cfg)
			err := cfg.Validate()
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Validate error = %v; want one containing %q", err, c.wantErr)
			}
		})
	}
}

// TestBuildTLS: unreadable files are errors; off is nil (plaintext, insecure loopback creds).
func TestBuildTLS(t *testing.T) {
	s, err := buildTLS(TLSConfig{})
	if s != nil || err != nil {
		t.Fatalf("buildTLS(off) = %v, %v; want nil, nil", s, err)
	}
	if got := s.loopbackCreds().Info().SecurityProtocol; got != "insecure" {
		t.Errorf("loopback creds with TLS off: %q; want insecure", got)
	}
	if _, err := buildTLS(TLSConfig{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}); err == nil {
		t.Error("buildTLS with missing files succeeded")
	}
	junk := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := buildTLS(TLSConfig{CertFile: junk, KeyFile: junk}); err == nil {
		t.Error("buildTLS with junk files succeeded")
	}
}
