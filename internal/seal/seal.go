// Package seal encrypts bytes at rest with AES-256-GCM under named keys, for every component that
// stores something private (the session tiers, the audit log's bodies).
//
// Each sealed value carries the id of the key that sealed it, so keys can rotate: new values are
// sealed with the primary key, older ones open with the key they name as long as it stays
// configured. Additional data given to Seal must be given again to Open, which binds a value to
// where it is stored (a tenant and record id, say): copied elsewhere, it does not open.
//
// With no keys a Keyring is plaintext (key id ""): Seal returns the bytes as they are. Values
// with key id "" open under any Keyring, so a deployment can turn encryption on without a
// migration. A nil *Keyring is the plaintext keyring.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrUnknownKey is wrapped when a value names a key id the Keyring does not hold.
var ErrUnknownKey = errors.New("unknown encryption key id")

// Key is one configured key.
type Key struct {
	ID      string `yaml:"id"`      // stored beside each value; at most 255 bytes, not ""
	Key     string `yaml:"key"`     // base64 (standard or URL alphabet) of 32 random bytes
	Primary bool   `yaml:"primary"` // seals new values; exactly one key is primary
}

// Config lists the keys. Retired keys stay listed until no stored value uses them.
type Config struct {
	Keys []Key `yaml:"keys"`
}

// Keyring seals and opens values with the configured keys. It is safe for concurrent use.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// New validates cfg and returns its Keyring. No keys means plaintext.
func New(cfg Config) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, key := range cfg.Keys {
		if key.ID == "" || len(key.ID) > 255 {
			return nil, fmt.Errorf("seal: key %d: id must be 1 to 255 bytes", i)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("seal: key id %q is listed twice", key.ID)
		}
		raw, err := base64.StdEncoding.DecodeString(key.Key)
		if err != nil {
			raw, err = base64.URLEncoding.DecodeString(key.Key)
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("seal: key %q: want base64 of 32 bytes", key.ID)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
		if key.Primary {
			if k.primary != "" {
				return nil, fmt.Errorf("seal: keys %q and %q are both primary", k.primary, key.ID)
			}
			k.primary = key.ID
		}
	}
	if len(cfg.Keys) > 0 && k.primary == "" {
		return nil, errors.New("seal: no key is marked primary")
	}
	return k, nil
}

// Encrypted reports whether Seal encrypts.
func (k *Keyring) Encrypted() bool { return k != nil && k.primary != "" }

// Seal encrypts plain with the primary key, binding ad (additional data, may be nil) to it. It
// returns the key id and the nonce followed by the ciphertext; a plaintext Keyring returns ""
// and plain itself.
func (k *Keyring) Seal(plain, ad []byte) (keyID string, data []byte, err error) {
	if !k.Encrypted() {
		return "", plain, nil
	}
	aead := k.aeads[k.primary]
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return "", nil, fmt.Errorf("seal.Seal: nonce: %w", err)
	}
	return k.primary, aead.Seal(out, out, plain, ad), nil
}

// Open reverses Seal: it decrypts data sealed under keyID with ad, which must be the additional
// data given to Seal. Key id "" returns data as it is. Errors wrap ErrUnknownKey for a key the
// Keyring does not hold; tampered data or other additional data fail to open.
func (k *Keyring) Open(keyID string, data, ad []byte) ([]byte, error) {
	if keyID == "" {
		return data, nil
	}
	var aead cipher.AEAD
	if k != nil {
		aead = k.aeads[keyID]
	}
	if aead == nil {
		return nil, fmt.Errorf("seal.Open: key id %q: %w", keyID, ErrUnknownKey)
	}
	if len(data) < aead.NonceSize() {
		return nil, errors.New("seal.Open: value too short")
	}
	plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], ad)
	if err != nil {
		return nil, fmt.Errorf("seal.Open: key %q: %w", keyID, err)
	}
	return plain, nil
}

// Frame packs a key id and sealed data into one self-describing value, for stores that keep a
// single value per record (Redis): a byte with the key id's length, the key id, then the data.
// keyID is at most 255 bytes (New enforces it).
func Frame(keyID string, data []byte) []byte {
	out := make([]byte, 0, 1+len(keyID)+len(data))
	out = append(out, byte(len(keyID)))
	out = append(out, keyID...)
	return append(out, data...)
}

// Unframe splits a value made by Frame; data aliases v.
func Unframe(v []byte) (keyID string, data []byte, err error) {
	if len(v) == 0 || len(v) < 1+int(v[0]) {
		return "", nil, errors.New("seal.Unframe: malformed value")
	}
	n := int(v[0])
	return string(v[1 : 1+n]), v[1+n:], nil
}
