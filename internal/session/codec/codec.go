// Package codec serialises sessions for the Redis and SQL tiers and encrypts them at rest with
// AES-256-GCM. Each record carries the id of the key that sealed it, so keys can rotate: new
// writes use the primary key, older records open with the key they name. With no keys configured
// the codec stores plain JSON (key id ""): the embedded default, meant for development.
//
// The tenant and session id are bound to each ciphertext as additional data, so a record copied
// under another tenant or id does not open.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchyard/switchyard/internal/session"
)

// ErrUnknownKey is wrapped when a record names a key id the codec does not hold.
var ErrUnknownKey = errors.New("unknown encryption key id")

// Key is one configured key.
type Key struct {
	ID      string `yaml:"id"`      // stored beside each record; at most 255 bytes, not ""
	Key     string `yaml:"key"`     // base64 (standard or URL alphabet) of 32 random bytes
	Primary bool   `yaml:"primary"` // seals new writes; exactly one key is primary
}

// Config lists the keys. Retired keys stay listed until no record uses them.
type Config struct {
	Keys []Key `yaml:"keys"`
}

// Codec encodes and decodes sessions. It is safe for concurrent use.
type Codec struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// New validates cfg and returns its codec. No keys means plaintext.
func New(cfg Config) (*Codec, error) {
	c := &Codec{aeads: map[string]cipher.AEAD{}}
	for i, k := range cfg.Keys {
		if k.ID == "" || len(k.ID) > 255 {
			return nil, fmt.Errorf("codec: key %d: id must be 1 to 255 bytes", i)
		}
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("codec: key id %q is listed twice", k.ID)
		}
		raw, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			raw, err = base64.URLEncoding.DecodeString(k.Key)
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("codec: key %q: want base64 of 32 bytes", k.ID)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
		if k.Primary {
			if c.primary != "" {
				return nil, fmt.Errorf("codec: keys %q and %q are both primary", c.primary, k.ID)
			}
			c.primary = k.ID
		}
	}
	if len(cfg.Keys) > 0 && c.primary == "" {
		return nil, errors.New("codec: no key is marked primary")
	}
	return c, nil
}

// Plaintext returns a codec that stores JSON without encryption.
func Plaintext() *Codec { return &Codec{aeads: map[string]cipher.AEAD{}} }

// Encrypted reports whether new writes are encrypted.
func (c *Codec) Encrypted() bool { return c.primary != "" }

func aad(tenant, id string) []byte { return []byte(tenant + "\x00" + id) }

// Seal serialises s and encrypts it with the primary key. It returns the key id ("" for
// plaintext) and the bytes to store beside it.
func (c *Codec) Seal(s *session.Session) (keyID string, data []byte, err error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", nil, fmt.Errorf("codec.Seal %s: %w", s.ID, err)
	}
	return c.SealBytes(plain, aad(s.Tenant, s.ID))
}

// SealBytes encrypts plain with the primary key, binding ad (additional data) to it, for other
// components that store sealed bytes (the audit log's bodies). It returns the key id ("" and
// plain itself when the codec is plaintext) and the nonce followed by the ciphertext.
func (c *Codec) SealBytes(plain, ad []byte) (keyID string, data []byte, err error) {
	if c.primary == "" {
		return "", plain, nil
	}
	aead := c.aeads[c.primary]
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return "", nil, fmt.Errorf("codec.Seal: nonce: %w", err)
	}
	return c.primary, aead.Seal(out, out, plain, ad), nil
}

// OpenBytes reverses SealBytes: it decrypts data sealed with keyID and ad ("" returns data as
// is). Errors wrap ErrUnknownKey for a key the codec does not hold.
func (c *Codec) OpenBytes(keyID string, data, ad []byte) ([]byte, error) {
	if keyID == "" {
		return data, nil
	}
	aead, ok := c.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("codec.Open: key id %q: %w", keyID, ErrUnknownKey)
	}
	if len(data) < aead.NonceSize() {
		return nil, errors.New("codec.Open: record too short")
	}
	plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], ad)
	if err != nil {
		return nil, fmt.Errorf("codec.Open: key %q: %w", keyID, err)
	}
	return plain, nil
}

// Open decrypts and decodes a record sealed for (tenant, id). Plaintext records (key id "") are
// accepted even when keys are configured, so a deployment can turn encryption on without a
// migration. A record of another tenant or id fails to open.
func (c *Codec) Open(tenant, id, keyID string, data []byte) (*session.Session, error) {
	plain, err := c.OpenBytes(keyID, data, aad(tenant, id))
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", id, err)
	}
	s := new(session.Session)
	if err := json.Unmarshal(plain, s); err != nil {
		return nil, fmt.Errorf("codec.Open %s: %w", id, err)
	}
	if s.Tenant != tenant || s.ID != id {
		return nil, fmt.Errorf("codec.Open %s: record belongs to another session", id)
	}
	return s, nil
}

// Encode seals s into one self-describing value: a byte with the key id's length, the key id,
// then the sealed data (for stores with a single value per record, such as Redis).
func (c *Codec) Encode(s *session.Session) ([]byte, error) {
	keyID, data, err := c.Seal(s)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(keyID)+len(data))
	out = append(out, byte(len(keyID)))
	out = append(out, keyID...)
	return append(out, data...), nil
}

// Decode opens a value made by Encode.
func (c *Codec) Decode(tenant, id string, v []byte) (*session.Session, error) {
	if len(v) == 0 || len(v) < 1+int(v[0]) {
		return nil, fmt.Errorf("codec.Decode %s: malformed record", id)
	}
	n := int(v[0])
	return c.Open(tenant, id, string(v[1:1+n]), v[1+n:])
}
