package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/MicahParks/jwkset"
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

// parseKeys reads a JWK set (JSON, see parseJWKS) or PEM blocks (PUBLIC KEY, RSA PUBLIC KEY,
// CERTIFICATE; an optional "kid" PEM header names the key). PEM private keys are refused; HMAC
// secrets come only from hmac_secret.
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

// jwkOptions are the options jwkset reads every JWK with, from a keys_file or a JWKS URL alike
// (its HTTP storage hard-codes Private: true). Private members are read only to be dropped:
// signingKey keeps the public half.
var jwkOptions = jwkset.JWKMarshalOptions{Private: true}

// parseJWKS reads a JWK set document the way jwkset reads one fetched over HTTP: keys of a type
// or curve jwkset does not support are skipped, any other malformed key is an error. keySetOf
// then picks the signing keys.
func parseJWKS(data []byte) (*keySet, error) {
	var doc jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("JWK set: %w", err)
	}
	jwks := make([]jwkset.JWK, 0, len(doc.Keys))
	for i, m := range doc.Keys {
		j, err := jwkset.NewJWKFromMarshal(m, jwkOptions, jwkset.JWKValidateOptions{})
		switch {
		case errors.Is(err, jwkset.ErrUnsupportedKey):
			continue
		case err != nil:
			return nil, fmt.Errorf("JWK set: keys[%d] (kid %q): %w", i, m.KID, err)
		}
		jwks = append(jwks, j)
	}
	return keySetOf(jwks)
}

// keySetOf returns the signing keys among jwks. Keys for encryption (use "enc"), symmetric keys
// and keys that cannot sign (X25519) are skipped, so a set shared with other uses still loads; an
// RSA key under minRSABits is an error, and so is a set without a single usable key.
func keySetOf(jwks []jwkset.JWK) (*keySet, error) {
	set := &keySet{}
	for _, j := range jwks {
		m := j.Marshal()
		key, err := signingKey(j)
		if err != nil {
			return nil, fmt.Errorf("JWK set: kid %q: %w", m.KID, err)
		}
		if key != nil {
			set.add(m.KID, jwkKey{key: key, alg: m.ALG.String()})
		}
	}
	if len(set.byKid) == 0 && len(set.noKid) == 0 {
		return nil, errors.New("JWK set has no usable signing keys")
	}
	return set, nil
}

// signingKey returns the public key j holds for verifying signatures, or nil when j is not
// such a key. A symmetric ("oct") key is never returned: HMAC secrets come only from hmac_secret.
func signingKey(j jwkset.JWK) (any, error) {
	m := j.Marshal()
	if (m.USE != "" && m.USE != jwkset.UseSig) || m.KTY == jwkset.KtyOct {
		return nil, nil
	}
	key := j.Key()
	if priv, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = priv.Public()
	}
	switch key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return key, checkPublicKey(key)
	}
	return nil, nil // X25519 and other keys that do not sign
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
