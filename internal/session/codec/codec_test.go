package codec_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/codec"
)

func newKey(t *testing.T) string {
	t.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func TestRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	old, err := codec.New(codec.Config{Keys: []codec.Key{{ID: "k1", Key: k1, Primary: true}}})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := codec.New(codec.Config{Keys: []codec.Key{{ID: "k1", Key: k1}, {ID: "k2", Key: k2, Primary: true}}})
	if err != nil {
		t.Fatal(err)
	}
	only2, err := codec.New(codec.Config{Keys: []codec.Key{{ID: "k2", Key: k2, Primary: true}}})
	if err != nil {
		t.Fatal(err)
	}
	s := &session.Session{ID: "id1", Tenant: "t1", User: "u", SystemPrompt: "secret prompt", Version: 3}

	v1, err := old.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(v1, []byte("secret prompt")) {
		t.Fatal("the sealed record holds the plaintext")
	}
	got, err := rotated.Decode("t1", "id1", v1)
	if err != nil || got.SystemPrompt != "secret prompt" || got.Version != 3 {
		t.Fatalf("rotated codec reading an old record: %+v, %v", got, err)
	}
	keyID, _, err := rotated.Seal(s)
	if err != nil || keyID != "k2" {
		t.Errorf("new writes use key %q (%v), want k2", keyID, err)
	}
	if _, err := only2.Decode("t1", "id1", v1); !errors.Is(err, codec.ErrUnknownKey) {
		t.Errorf("record of a dropped key: err = %v, want ErrUnknownKey", err)
	}
	for _, c := range []struct{ tenant, id string }{{"t2", "id1"}, {"t1", "id2"}} {
		if _, err := rotated.Decode(c.tenant, c.id, v1); err == nil {
			t.Errorf("record of t1/id1 opened as %s/%s", c.tenant, c.id)
		}
	}
	tampered := bytes.Clone(v1)
	tampered[len(tampered)-1] ^= 1
	if _, err := rotated.Decode("t1", "id1", tampered); err == nil {
		t.Error("a tampered record opened")
	}
}

func TestPlaintext(t *testing.T) {
	c, err := codec.New(codec.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Encrypted() {
		t.Error("a codec without keys claims to encrypt")
	}
	s := &session.Session{ID: "a", Tenant: "t", SystemPrompt: "hello"}
	v, err := c.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := codec.New(codec.Config{Keys: []codec.Key{{ID: "k", Key: newKey(t), Primary: true}}})
	got, err := enc.Decode("t", "a", v)
	if err != nil || got.SystemPrompt != "hello" {
		t.Errorf("encrypting codec reading a plaintext record: %+v, %v", got, err)
	}
	if _, err := c.Decode("other", "a", v); err == nil {
		t.Error("a plaintext record opened under another tenant")
	}
}

func TestNewRejects(t *testing.T) {
	k := newKey(t)
	cases := map[string]codec.Config{
		"no primary":  {Keys: []codec.Key{{ID: "a", Key: k}}},
		"two primary": {Keys: []codec.Key{{ID: "a", Key: k, Primary: true}, {ID: "b", Key: k, Primary: true}}},
		"duplicate":   {Keys: []codec.Key{{ID: "a", Key: k, Primary: true}, {ID: "a", Key: k}}},
		"short key":   {Keys: []codec.Key{{ID: "a", Key: base64.StdEncoding.EncodeToString([]byte("short")), Primary: true}}},
		"not base64":  {Keys: []codec.Key{{ID: "a", Key: "!!!", Primary: true}}},
		"empty id":    {Keys: []codec.Key{{Key: k, Primary: true}}},
	}
	for name, cfg := range cases {
		if _, err := codec.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
