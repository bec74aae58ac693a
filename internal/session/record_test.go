package session_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/sessiontest"
)

func keyring(t *testing.T, keys ...seal.Key) *seal.Keyring {
	t.Helper()
	k, err := seal.New(seal.Config{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRecordRotation(t *testing.T) {
	k1, k2 := sessiontest.Key("k1", true), sessiontest.Key("k2", true)
	old := keyring(t, k1)
	k1.Primary = false
	rotated, only2 := keyring(t, k1, k2), keyring(t, k2)
	s := &session.Session{ID: "id1", Tenant: "t1", User: "u", SystemPrompt: "secret prompt", Version: 3}

	keyID, data, err := session.SealRecord(old, s)
	if err != nil || keyID != "k1" {
		t.Fatalf("SealRecord = %q, %v; want key k1", keyID, err)
	}
	if bytes.Contains(data, []byte("secret prompt")) {
		t.Fatal("the sealed record holds the plaintext")
	}
	got, err := session.OpenRecord(rotated, "t1", "id1", keyID, data)
	if err != nil || got.SystemPrompt != "secret prompt" || got.Version != 3 {
		t.Fatalf("rotated keys reading an old record: %+v, %v", got, err)
	}
	if keyID, _, err := session.SealRecord(rotated, s); err != nil || keyID != "k2" {
		t.Errorf("new writes use key %q (%v), want k2", keyID, err)
	}
	if _, err := session.OpenRecord(only2, "t1", "id1", keyID, data); !errors.Is(err, seal.ErrUnknownKey) {
		t.Errorf("record of a dropped key: err = %v, want ErrUnknownKey", err)
	}
	for _, c := range []struct{ tenant, id string }{{"t2", "id1"}, {"t1", "id2"}} {
		if _, err := session.OpenRecord(rotated, c.tenant, c.id, keyID, data); err == nil {
			t.Errorf("record of t1/id1 opened as %s/%s", c.tenant, c.id)
		}
	}
	tampered := bytes.Clone(data)
	tampered[len(tampered)-1] ^= 1
	if _, err := session.OpenRecord(rotated, "t1", "id1", keyID, tampered); err == nil {
		t.Error("a tampered record opened")
	}
}

func TestRecordPlaintext(t *testing.T) {
	s := &session.Session{ID: "a", Tenant: "t", SystemPrompt: "hello"}
	keyID, data, err := session.SealRecord(nil, s)
	if err != nil || keyID != "" {
		t.Fatalf("SealRecord without keys = %q, %v; want key id \"\"", keyID, err)
	}
	got, err := session.OpenRecord(keyring(t, sessiontest.Key("k", true)), "t", "a", keyID, data)
	if err != nil || got.SystemPrompt != "hello" {
		t.Errorf("encrypting keys reading a plaintext record: %+v, %v", got, err)
	}
	if _, err := session.OpenRecord(nil, "other", "a", keyID, data); err == nil {
		t.Error("a plaintext record opened under another tenant")
	}
}

// TestRecordStoredFormat opens records written by an earlier release, encrypted (as Redis keeps
// it, seal.Frame) and plaintext, so a change of the format cannot go unnoticed: sessions already
// in Redis and SQL must keep opening.
func TestRecordStoredFormat(t *testing.T) {
	var raw [32]byte
	for i := range raw {
		raw[i] = byte(i + 1)
	}
	keys := keyring(t, seal.Key{ID: "k1", Key: base64.StdEncoding.EncodeToString(raw[:]), Primary: true})
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000000, time.UTC)
	want := &session.Session{ID: "0190d8f2-7a4b-7c3d-8e5f-0123456789ab", Tenant: "acme", User: "alice", Model: "up/m1",
		Params: session.Params{Temperature: llm.Ptr(0.2)}, SystemPrompt: "be brief", TTL: time.Minute,
		History: []session.Entry{{Message: llm.TextMessage("user", "hi"), Turn: 1, At: at}}, Turns: 1, Version: 2, CreatedAt: at, UpdatedAt: at}
	encrypted, _ := hex.DecodeString("026b312913fb9f86b371323b4d65166bf6fcb3086c8dfe178abbd14509d6e5752a097b4722dcb27ff2c36916e4feefc8d31efbe926d48a4ea055e363ffc89866c4dee4a2f358fd719e884d1ba69aab9c5c37798ff867094b411064f37df91d1bf22b0be37c44294c13ca8ffa5874ae358d74a03be382bcbd13517298a8e8ed63a40d805675a22d0e486134bf069835a85bd69df4ee874ca33cf0215482dd80c79fa541074611262e3b9d610b0fb048386dc99b0141c59c42ec41f662d81b973bcb8f2a620657f75b2552b613762047b94619462573d0dc7b2df0c2f04f226ec190a929e2e3e42e24da546a00708778d3300c065e0e3491e38a41405f21ed1263da192fff33dc4d71f91ba946913a836ad0f43a92ba4a202a45c0aeb26b7906c2c5ef3c0400360698dcaf58b8db4122ef6d5c37d17830783b3af243bc0407ff21da69b77b5d8ba70198173e5ca5312578ce2dddd8f30e88d431a4d1d35e59d62584e2b5b0b5a4b198d2d50c4549a346b901c67712e635171f8fc9e82909cc4825aba8e976a41c672478815ad278a0430fa4afb381d083f7f134441697ee18343fb6890995853df337758b0a9cb6fca91dfe959b5f0446926a2f3308cb96128047afa672047b649a660a5370eb13484bd53d5b5fbdce25bec4209cc68ec47f1b93ec874f63347c2483926c0aecbac2532acf8bd6e935227beb6166aedf2182f6df99d085507b9925466e618d9977734d6e9c4c9dae5d3a82840d9cf092329eb3b099e33e8a4648173ea02dea04ce0757ff5e17c72aa146c442f0553e91cc05538d5d2d3124da305dafe014a9ff45d2e70809c091e9b724d117930e8cb1f17632d9e59a6d397f4e00eea33ff7937597be643ef410405542e1cd5442dfa7a50199e3602207d982a1287f76e49d")
	plain := []byte(`{"id":"0190d8f2-7a4b-7c3d-8e5f-0123456789ab","tenant":"acme","user":"alice","model":"up/m1",` +
		`"params":{"temperature":0.2},"system_prompt":"be brief","archive":false,"ttl":60000000000,"history":[{"message":` +
		`{"Role":"user","Content":[{"Type":"text","Text":"hi","ImageURL":"","ImageDetail":"","AudioData":"","AudioFormat":"",` +
		`"FileData":"","FileID":"","FileName":""}],"ContentIsParts":false,"Name":"","ToolCalls":null,"ToolCallID":"",` +
		`"ReasoningContent":"","ReasoningSignature":""},"turn":1,"at":"2026-01-02T03:04:05.006Z"}],"turns":1,"version":2,` +
		`"created_at":"2026-01-02T03:04:05.006Z","updated_at":"2026-01-02T03:04:05.006Z"}`)
	for name, v := range map[string][]byte{"encrypted": encrypted, "plaintext": seal.Frame("", plain)} {
		keyID, data, err := seal.Unframe(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := session.OpenRecord(keys, want.Tenant, want.ID, keyID, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s record (-want +got):\n%s", name, diff)
		}
	}
	if _, data, _ := session.SealRecord(nil, want); !bytes.Equal(data, plain) {
		t.Errorf("plaintext record = %s\nwant %s", data, plain)
	}
}
