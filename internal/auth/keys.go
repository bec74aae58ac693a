package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// minRSABits is the smallest RSA key accepted for verification.
const minRSABits = 2048

// jwkKey is one verification key: a []byte (HMAC), *rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey, with the alg its JWK pinned it to ("" for any algorithm of its type).
type jwkKey struct {
	key any
	alg string
}

// keySet is a set of verification keys, by key id.
type keySet struct {
	byKid map[string][]jwkKey
	noKid []jwkKey // keys without a kid (PEM blocks without a kid header, the HMAC secret)
}

func (s *keySet) add(kid string, k jwkKey) {
	if kid == "" {
		s.noKid = append(s.noKid, k)
		return
	}
	if s.byKid == nil {
		s.byKid = map[string][]jwkKey{}
	}
	s.byKid[kid] = append(s.byKid[kid], k)
}

// errUnknownKid is returned by lookup when no key has the token's kid.
var errUnknownKid = errors.New("unknown kid")

// lookup returns the keys that may verify a token with key id kid and algorithm alg: the keys
// with that kid, or every key when the token has no kid; keys without a kid are candidates for
// every token. Only keys whose type fits alg (and whose own alg, if any, is alg) are returned: an
// HMAC secret never verifies an RS-declared token, nor an RSA key an HS-declared one. It returns
// errUnknownKid when kid matches no key and there are no kid-less keys.
func (s *keySet) lookup(kid, alg string) ([]any, error) {
	var cands []jwkKey
	if kid == "" {
		for _, ks := range s.byKid {
			cands = append(cands, ks...)
		}
	} else {
		cands = s.byKid[kid]
		if len(cands) == 0 && len(s.noKid) == 0 {
			return nil, errUnknownKid
		}
	}
	cands = append(cands, s.noKid...)
	var out []any
	for _, k := range cands {
		if (k.alg == "" || k.alg == alg) && keyFits(k.key, alg) {
			out = append(out, k.key)
		}
	}
	return out, nil
}

// keyFits reports whether key has the type (and, for ECDSA, the curve) algorithm alg needs.
func keyFits(key any, alg string) bool {
	switch k := key.(type) {
	case []byte:
		return strings.HasPrefix(alg, "HS")
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		return want != nil && k.Curve == want
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// parseKeys reads a JWK set (JSON) or PEM blocks (PUBLIC KEY, RSA PUBLIC KEY, CERTIFICATE; an
// optional "kid" PEM header names the key). Private and symmetric keys are refused: HMAC secrets
// come only from hmac_secret.
func parseKeys(data []byte) (*keySet, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return parseJWKS(t)
	}
	set := &keySet{}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var key any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				key = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %q: %w", b.Type, err)
		}
		if err := checkPublicKey(key); err != nil {
			return nil, err
		}
		set.add(b.Headers["kid"], jwkKey{key: key})
	}
	if len(set.byKid) == 0 && len(set.noKid) == 0 {
		return nil, errors.New("no keys found (want a JWK set or PEM public keys)")
	}
	return set, nil
}

func checkPublicKey(key any) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits: at least %d are required", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}

// jwk is the subset of RFC 7517/7518/8037 members used to read public signing keys.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a JWK set. Keys for encryption (use "enc"), symmetric keys and key types it
// does not know are skipped, so a set shared with other uses still loads; a malformed signing key
// is an error. A set without a single usable key is an error.
func parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("JWK set: %w", err)
	}
	set := &keySet{}
	for i, raw := range doc.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("JWK set: keys[%d]: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		key, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWK set: keys[%d] (kid %q): %w", i, k.Kid, err)
		}
		if key == nil {
			continue
		}
		if err := checkPublicKey(key); err != nil {
			return nil, fmt.Errorf("JWK set: keys[%d] (kid %q): %w", i, k.Kid, err)
		}
		set.add(k.Kid, jwkKey{key: key, alg: k.Alg})
	}
	if len(set.byKid) == 0 && len(set.noKid) == 0 {
		return nil, errors.New("JWK set has no usable signing keys")
	}
	return set, nil
}

// publicKey returns the key k describes, or nil for a key type that is skipped.
func (k *jwk) publicKey() (any, error) {
	b64 := func(field, s string) ([]byte, error) {
		if s == "" {
			return nil, fmt.Errorf("%s is missing", field)
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return b, nil
	}
	switch k.Kty {
	case "RSA":
		n, err := b64("n", k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64("e", k.E)
		if err != nil {
			return nil, err
		}
		ei := new(big.Int).SetBytes(e)
		if !ei.IsInt64() || ei.Int64() < 3 || ei.Int64() > 1<<31-1 {
			return nil, errors.New("e is out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ei.Int64())}, nil
	case "EC":
		curves := map[string]struct {
			c    elliptic.Curve
			size int
		}{"P-256": {elliptic.P256(), 32}, "P-384": {elliptic.P384(), 48}, "P-521": {elliptic.P521(), 66}}
		c, ok := curves[k.Crv]
		if !ok {
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := b64("x", k.X)
		if err != nil {
			return nil, err
		}
		y, err := b64("y", k.Y)
		if err != nil {
			return nil, err
		}
		if len(x) != c.size || len(y) != c.size {
			return nil, fmt.Errorf("x and y must be %d bytes for %s", c.size, k.Crv)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(c.c, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, err
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, nil // X25519 and others do not sign
		}
		x, err := b64("x", k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("x must be %d bytes", ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil // "oct" (symmetric) and unknown types are never used for verification
}

// staticKeys is a key set fixed at load (keys_file, hmac_secret).
type staticKeys struct{ set *keySet }

func (s *staticKeys) keys(_ context.Context, kid, alg string) ([]any, error) {
	ks, err := s.set.lookup(kid, alg)
	if errors.Is(err, errUnknownKid) {
		return nil, unauthenticated("unknown_kid", "The token's key id %q is not known.", kid)
	}
	if len(ks) == 0 {
		return nil, unauthenticated("unknown_kid", "No key of this issuer fits the token's algorithm %q.", alg)
	}
	return ks, nil
}
