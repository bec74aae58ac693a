package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchyard/switchyard/internal/auth"
)

// BenchmarkAuthenticate measures one authentication per credential type: an API key is a hash
// and a map lookup; a JWT is a signature verification ("uncached"), or a hash and a map lookup
// when the same token was verified recently ("cached").
func BenchmarkAuthenticate(b *testing.B) {
	for _, ttl := range []time.Duration{-1, 0} {
		name := "cached"
		if ttl < 0 {
			name = "uncached"
		}
		b.Run(name, func(b *testing.B) { benchmarkAuthenticate(b, ttl) })
	}
}

func benchmarkAuthenticate(b *testing.B, cacheTTL time.Duration) {
	t := b
	keysFile := writeFile(b, "keys.json", jwks(jwkOf("rsa", &rsaKey.PublicKey), jwkOf("ec", &ecKey.PublicKey), jwkOf("ed", edPub)))
	a, err := auth.New(auth.Config{Mode: "both",
		APIKeys: []auth.APIKey{{Name: "dify", Key: "sk-dify-0123456789", Tenant: "acme"}},
		JWT: auth.JWTConfig{VerifiedCacheTTL: cacheTTL, Issuers: []auth.Issuer{
			{Issuer: "asym", Audience: testAudience, Algorithms: []string{"RS256", "ES256", "EdDSA"}, KeysFile: keysFile},
			{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"HS256"}, HMACSecret: hmacSecret},
		}}}, auth.WithClock(clock))
	if err != nil {
		b.Fatal(err)
	}
	asym := func(c jwt.MapClaims) { c["iss"] = "asym" }
	tokens := []struct{ name, token string }{
		{"api_key", "sk-dify-0123456789"},
		{"HS256", sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", claims(nil))},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, "rsa", claims(asym))},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, "ec", claims(asym))},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, edKey, "ed", claims(asym))},
	}
	ctx := context.Background()
	for _, tk := range tokens {
		b.Run(tk.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, tk.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
