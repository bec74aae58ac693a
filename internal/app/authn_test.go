package app

import (
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/auth"
)

// TestRedactedHidesJWTSecrets: the effective config never shows an issuer's HMAC secret.
func TestRedactedHidesJWTSecrets(t *testing.T) {
	const secret = "jwt-hmac-secret-0123456789abcdef-xyz"
	cfg := DefaultConfig()
	cfg.Auth = auth.Config{Mode: auth.ModeJWT, JWT: auth.JWTConfig{Issuers: []auth.Issuer{{
		Issuer: "batch", Audience: "switchyard", Algorithms: []string{"HS256"}, HMACSecret: secret,
	}}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := cfg.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), secret) || !strings.Contains(string(out), "hmac_secret: REDACTED") {
		t.Errorf("Redacted shows the HMAC secret or lost the field:\n%s", out)
	}
}

// TestBuildAuthCloses: the authenticator's background work is stopped by the returned function,
// which is safe to call more than once (Start's cleanup and the shutdown path may both call it).
func TestBuildAuthCloses(t *testing.T) {
	a, stop, err := buildAuth(auth.Config{Mode: auth.ModeJWT, JWT: auth.JWTConfig{Issuers: []auth.Issuer{{
		Issuer: "idp", Audience: "switchyard", Algorithms: []string{"RS256"}, JWKSURL: "http://127.0.0.1:1/jwks",
	}}}}, nil)
	if err != nil || a == nil {
		t.Fatalf("buildAuth = %v, %v", a, err)
	}
	stop()
	stop()
}
