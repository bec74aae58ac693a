package session

import (
	"encoding/json"
	"fmt"

	"github.com/switchyard/switchyard/internal/seal"
)

// How the Redis and SQL tiers keep a session at rest: its JSON, sealed by a seal.Keyring (nil:
// plaintext) with the tenant and id as additional data, so a record copied under another tenant
// or id does not open. The key id is stored beside the data (seal.Frame packs both into one
// value for Redis).

func recordAD(tenant, id string) []byte { return []byte(tenant + "\x00" + id) }

// SealRecord serialises s and seals it with keys' primary key. It returns the key id ("" for
// plaintext) and the bytes to store beside it.
func SealRecord(keys *seal.Keyring, s *Session) (keyID string, data []byte, err error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", nil, fmt.Errorf("session.SealRecord %s: %w", s.ID, err)
	}
	return keys.Seal(plain, recordAD(s.Tenant, s.ID))
}

// OpenRecord opens and decodes a record sealed for (tenant, id). Plaintext records (key id "")
// are accepted even when keys are configured. A record of another tenant or id fails to open;
// one naming a key keys does not hold fails with an error wrapping seal.ErrUnknownKey.
func OpenRecord(keys *seal.Keyring, tenant, id, keyID string, data []byte) (*Session, error) {
	plain, err := keys.Open(keyID, data, recordAD(tenant, id))
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", id, err)
	}
	s := new(Session)
	if err := json.Unmarshal(plain, s); err != nil {
		return nil, fmt.Errorf("session.OpenRecord %s: %w", id, err)
	}
	if s.Tenant != tenant || s.ID != id {
		return nil, fmt.Errorf("session.OpenRecord %s: record belongs to another session", id)
	}
	return s, nil
}
