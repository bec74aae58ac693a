package seal_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/switchyard/switchyard/internal/seal"
)

func newKey(t *testing.T) string {
	t.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func mustNew(t *testing.T, keys ...seal.Key) *seal.Keyring {
	t.Helper()
	k, err := seal.New(seal.Config{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	old := mustNew(t, seal.Key{ID: "k1", Key: k1, Primary: true})
	rotated := mustNew(t, seal.Key{ID: "k1", Key: k1}, seal.Key{ID: "k2", Key: k2, Primary: true})
	only2 := mustNew(t, seal.Key{ID: "k2", Key: k2, Primary: true})
	ad := []byte("t1\x00id1")

	keyID, data, err := old.Seal([]byte("secret prompt"), ad)
	if err != nil || keyID != "k1" {
		t.Fatalf("Seal = %q, %v; want key k1", keyID, err)
	}
	if bytes.Contains(data, []byte("secret prompt")) {
		t.Fatal("the sealed value holds the plaintext")
	}
	if got, err := rotated.Open(keyID, data, ad); err != nil || string(got) != "secret prompt" {
		t.Fatalf("rotated keyring opening an old value: %q, %v", got, err)
	}
	if keyID, _, err := rotated.Seal([]byte("x"), ad); err != nil || keyID != "k2" {
		t.Errorf("new values use key %q (%v), want k2", keyID, err)
	}
	if _, err := only2.Open(keyID, data, ad); !errors.Is(err, seal.ErrUnknownKey) {
		t.Errorf("value of a dropped key: err = %v, want ErrUnknownKey", err)
	}
	for _, other := range [][]byte{[]byte("t2\x00id1"), []byte("t1\x00id2"), nil} {
		if _, err := rotated.Open(keyID, data, other); err == nil {
			t.Errorf("value sealed with additional data %q opened with %q", ad, other)
		}
	}
	tampered := bytes.Clone(data)
	tampered[len(tampered)-1] ^= 1
	if _, err := rotated.Open(keyID, tampered, ad); err == nil {
		t.Error("a tampered value opened")
	}
	if _, err := rotated.Open(keyID, data[:5], ad); err == nil {
		t.Error("a truncated value opened")
	}
}

func TestPlaintext(t *testing.T) {
	for name, k := range map[string]*seal.Keyring{"no keys": mustNew(t), "nil": nil} {
		if k.Encrypted() {
			t.Errorf("%s: a keyring without keys claims to encrypt", name)
		}
		keyID, data, err := k.Seal([]byte("hello"), []byte("ad"))
		if err != nil || keyID != "" || string(data) != "hello" {
			t.Errorf("%s: Seal = %q, %q, %v; want the plaintext under key id \"\"", name, keyID, data, err)
		}
		if _, err := k.Open("k", data, nil); !errors.Is(err, seal.ErrUnknownKey) {
			t.Errorf("%s: opening a sealed value: %v, want ErrUnknownKey", name, err)
		}
	}
	enc := mustNew(t, seal.Key{ID: "k", Key: newKey(t), Primary: true})
	if got, err := enc.Open("", []byte("hello"), []byte("ad")); err != nil || string(got) != "hello" {
		t.Errorf("encrypting keyring opening a plaintext value: %q, %v", got, err)
	}
}

func TestNewRejects(t *testing.T) {
	k := newKey(t)
	cases := map[string]seal.Config{
		"no primary":  {Keys: []seal.Key{{ID: "a", Key: k}}},
		"two primary": {Keys: []seal.Key{{ID: "a", Key: k, Primary: true}, {ID: "b", Key: k, Primary: true}}},
		"duplicate":   {Keys: []seal.Key{{ID: "a", Key: k, Primary: true}, {ID: "a", Key: k}}},
		"short key":   {Keys: []seal.Key{{ID: "a", Key: base64.StdEncoding.EncodeToString([]byte("short")), Primary: true}}},
		"not base64":  {Keys: []seal.Key{{ID: "a", Key: "!!!", Primary: true}}},
		"empty id":    {Keys: []seal.Key{{Key: k, Primary: true}}},
		"long id":     {Keys: []seal.Key{{ID: string(make([]byte, 256)), Key: k, Primary: true}}},
	}
	for name, cfg := range cases {
		if _, err := seal.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	url := base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)) // URL alphabet only
	if _, err := seal.New(seal.Config{Keys: []seal.Key{{ID: "u", Key: url, Primary: true}}}); err != nil {
		t.Errorf("a key in the URL alphabet: %v", err)
	}
}

func TestFrame(t *testing.T) {
	for _, c := range []struct{ keyID, data string }{{"", "{}"}, {"k1", "sealed"}, {"k", ""}} {
		keyID, data, err := seal.Unframe(seal.Frame(c.keyID, []byte(c.data)))
		if err != nil || keyID != c.keyID || string(data) != c.data {
			t.Errorf("Unframe(Frame(%q, %q)) = %q, %q, %v", c.keyID, c.data, keyID, data, err)
		}
	}
	for _, bad := range [][]byte{nil, {3, 'a', 'b'}} {
		if _, _, err := seal.Unframe(bad); err == nil {
			t.Errorf("Unframe(%q) accepted a malformed value", bad)
		}
	}
}

// TestStoredFormat opens a value sealed by an earlier release (key bytes 1..32, id "k1"), so a
// change of the format cannot go unnoticed: stored audit bodies and sessions must keep opening.
func TestStoredFormat(t *testing.T) {
	var raw [32]byte
	for i := range raw {
		raw[i] = byte(i + 1)
	}
	k := mustNew(t, seal.Key{ID: "k1", Key: base64.StdEncoding.EncodeToString(raw[:]), Primary: true})
	data, _ := hex.DecodeString("ad3ecd0e8a911225c123a5c60a26d3bd313fb9d616f57674bafb61db3ae0f9fc49309406e0b2")
	got, err := k.Open("k1", data, []byte("audit\x00acme\x00r1\x00123"))
	if err != nil || string(got) != "audit body" {
		t.Errorf("Open of a stored value = %q, %v; want \"audit body\"", got, err)
	}
}
