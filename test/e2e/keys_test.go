package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
)

// Configured keys of the managed-keys gateway: an operator with the admin scope and a client
// without it.
const (
	keysAdminKey  = "sk-e2e-keys-admin-0123456789"
	keysClientKey = "sk-e2e-keys-client-0123456789"
)

// keysGateway is a running Switchyard with managed keys in a SQLite file, plus its logs.
type keysGateway struct {
	*app.Instance
	up   *fakeOpenAI
	db   database.Config
	logs *syncBuffer
	keys pb.KeyServiceClient
	sess pb.SessionServiceClient
	chat pb.ChatServiceClient
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startKeysGateway starts Switchyard with managed keys in the database db; extraKeys is added to
// the keys section (indented flow-style fields, e.g. "  cache_ttl: -1s\n").
func startKeysGateway(t *testing.T, db database.Config, extraKeys ...string) *keysGateway {
	t.Helper()
	up := newFakeOpenAI(t)
	yaml := fmt.Sprintf(`
server:
  http_addr: 127.0.0.1:0
  grpc_addr: 127.0.0.1:0
  admin_addr: 127.0.0.1:0
  shutdown_timeout: 5s
auth:
  mode: api_key
  api_keys:
    - {name: ops, key: %q, tenant: ops, scopes: [admin]}
    - {name: client, key: %q, tenant: ops}
keys:
  enabled: true
  sql: {driver: %q, dsn: %q}
%sproviders:
  - {name: mock, type: mock, models: [echo]}
  - {name: up, type: openai, base_url: %q, api_key: %q}
aliases:
  chat: up/gpt-ok
`, keysAdminKey, keysClientKey, db.Driver, db.DSN, strings.Join(extraKeys, ""), up.URL+"/v1", upstreamKey)
	logs := &syncBuffer{}
	// Debug level: whatever any layer logs about a request is checked for secrets.
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	inst := startYAML(t, yaml, app.WithLogger(log))
	cc, err := grpc.NewClient(inst.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return &keysGateway{Instance: inst, up: up, db: db, logs: logs,
		keys: pb.NewKeyServiceClient(cc), sess: pb.NewSessionServiceClient(cc), chat: pb.NewChatServiceClient(cc)}
}

// rest sends a REST request with the bearer key and returns the status and body.
func (g *keysGateway) rest(t *testing.T, method, path, key string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+g.HTTPAddr()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// restInto is rest that wants 200 and decodes the body into m.
func (g *keysGateway) restInto(t *testing.T, method, path, key string, body any, m proto.Message) []byte {
	t.Helper()
	code, b := g.rest(t, method, path, key, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s = %d %s, want 200", method, path, code, b)
	}
	if err := protojson.Unmarshal(b, m); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
	}
	return b
}

// chatREST sends one chat completion for model with key and returns the status and body.
func (g *keysGateway) chatREST(t *testing.T, key, model string) (int, []byte) {
	t.Helper()
	return g.rest(t, http.MethodPost, "/v1/chat/completions", key,
		map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": "hello"}}})
}

func wantGRPCCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// TestManagedKeys runs the life of managed keys on each database.
func TestManagedKeys(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testManagedKeys(t, database.Config{Driver: database.SQLite, DSN: t.TempDir() + "/keys.db"})
	})
	t.Run("postgres", func(t *testing.T) {
		testManagedKeys(t, database.Config{Driver: database.Postgres, DSN: dbtest.PostgresDSN(t)})
	})
}

func testManagedKeys(t *testing.T, dbc database.Config) {
	g := startKeysGateway(t, dbc)
	ctx := t.Context()
	admin := withKey(ctx, keysAdminKey)
	var secrets []string // every secret created: none may show up anywhere after creation

	// Only admins manage keys.
	_, err := g.keys.CreateKey(withKey(ctx, keysClientKey), &pb.CreateKeyRequest{Name: "x", Tenant: "acme"})
	wantGRPCCode(t, err, codes.PermissionDenied)
	if code, _ := g.rest(t, http.MethodGet, "/admin/v1/keys", keysClientKey, nil); code != http.StatusForbidden {
		t.Fatalf("GET /admin/v1/keys without the admin scope = %d, want 403", code)
	}
	_, err = g.keys.CreateKey(admin, &pb.CreateKeyRequest{Tenant: "acme"})
	wantGRPCCode(t, err, codes.InvalidArgument)

	// Create one key over gRPC and one over REST.
	acme, err := g.keys.CreateKey(admin, &pb.CreateKeyRequest{Name: "acme-dify", Tenant: "acme", Models: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	var globex pb.CreateKeyResponse
	g.restInto(t, http.MethodPost, "/admin/v1/keys", keysAdminKey, map[string]any{"name": "globex-app", "tenant": "globex"}, &globex)
	for _, c := range []*pb.CreateKeyResponse{acme, &globex} {
		s := c.GetSecret()
		if !strings.HasPrefix(s, "sk-sy-") || len(s) != 70 || c.GetKey().GetLastFour() != s[len(s)-4:] || c.GetKey().GetRevoked() {
			t.Fatalf("CreateKey = %v; want an sk-sy- secret of 70 characters and its last four", c)
		}
		secrets = append(secrets, s)
	}
	if got := acme.GetKey(); got.GetTenant() != "acme" || len(got.GetModels()) != 1 || got.GetModels()[0] != "chat" || len(got.GetScopes()) == 0 {
		t.Fatalf("acme key = %v", got)
	}

	// The new keys work, within their models.
	if code, b := g.chatREST(t, acme.GetSecret(), "chat"); code != http.StatusOK {
		t.Fatalf("chat with the acme key = %d %s", code, b)
	}
	if code, b := g.chatREST(t, acme.GetSecret(), "mock/echo"); code != http.StatusForbidden {
		t.Fatalf("chat with the acme key on a model it may not use = %d %s, want 403", code, b)
	}
	if code, b := g.chatREST(t, globex.GetSecret(), "mock/echo"); code != http.StatusOK {
		t.Fatalf("chat with the globex key = %d %s", code, b)
	}

	// A key of one tenant cannot read another tenant's sessions.
	var sess pb.Session
	g.restInto(t, http.MethodPost, "/v1/sessions", acme.GetSecret(), map[string]any{"model": "chat"}, &sess)
	if code, b := g.rest(t, http.MethodGet, "/v1/sessions/"+sess.GetId(), globex.GetSecret(), nil); code != http.StatusNotFound {
		t.Fatalf("globex reading acme's session over REST = %d %s, want 404", code, b)
	}
	_, err = g.sess.GetSession(withKey(ctx, globex.GetSecret()), &pb.GetSessionRequest{Id: sess.GetId()})
	wantGRPCCode(t, err, codes.NotFound)
	if _, err := g.sess.GetSession(withKey(ctx, acme.GetSecret()), &pb.GetSessionRequest{Id: sess.GetId()}); err != nil {
		t.Fatalf("acme reading its own session: %v", err)
	}

	// List and get, over both transports, show the metadata and never the secret or its hash.
	var leaks [][]byte
	list, err := g.keys.ListKeys(admin, &pb.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Newest first; keys created in the same millisecond tie and come in id order.
	if ks := list.GetKeys(); len(ks) != 2 ||
		!((ks[0].GetId() == globex.GetKey().GetId() && ks[1].GetId() == acme.GetKey().GetId()) ||
			(ks[0].GetId() == acme.GetKey().GetId() && ks[1].GetId() == globex.GetKey().GetId())) ||
		ks[0].GetCreateTime().AsTime().Before(ks[1].GetCreateTime().AsTime()) {
		t.Fatalf("ListKeys = %v; want the two keys, newest first", list)
	}
	b, _ := proto.Marshal(list)
	leaks = append(leaks, b)
	var restList pb.ListKeysResponse
	leaks = append(leaks, g.restInto(t, http.MethodGet, "/admin/v1/keys?tenant=acme", keysAdminKey, nil, &restList))
	if len(restList.GetKeys()) != 1 || restList.GetKeys()[0].GetId() != acme.GetKey().GetId() || restList.GetKeys()[0].GetLastFour() != acme.GetKey().GetLastFour() {
		t.Fatalf("REST list for tenant acme = %v", &restList)
	}
	var one pb.ApiKey
	leaks = append(leaks, g.restInto(t, http.MethodGet, "/admin/v1/keys/"+acme.GetKey().GetId(), keysAdminKey, nil, &one))
	if one.GetName() != "acme-dify" || one.GetTenant() != "acme" {
		t.Fatalf("REST get = %v", &one)
	}
	got, err := g.keys.GetKey(admin, &pb.GetKeyRequest{Id: acme.GetKey().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = proto.Marshal(got)
	leaks = append(leaks, b)
	if code, _ := g.rest(t, http.MethodGet, "/admin/v1/keys/key_000000000000000000000000", keysAdminKey, nil); code != http.StatusNotFound {
		t.Fatalf("GET an unknown key = %d, want 404", code)
	}

	// Revoke the acme key over REST: refused at once, with no upstream call.
	var revoked pb.ApiKey
	leaks = append(leaks, g.restInto(t, http.MethodPost, "/admin/v1/keys/"+acme.GetKey().GetId()+":revoke", keysAdminKey, map[string]any{}, &revoked))
	if !revoked.GetRevoked() || revoked.GetRevokeTime() == nil {
		t.Fatalf("revoke = %v", &revoked)
	}
	calls := g.up.count()
	code, body := g.chatREST(t, acme.GetSecret(), "chat")
	if code != http.StatusUnauthorized || !strings.Contains(string(body), "revoked") {
		t.Fatalf("chat with the revoked key = %d %s, want 401 revoked", code, body)
	}
	_, err = g.chat.CreateChatCompletion(withKey(ctx, acme.GetSecret()), &pb.CreateChatCompletionRequest{
		Model: "chat", Messages: []*pb.ChatMessage{textMsg("user", "hello")}})
	wantGRPCCode(t, err, codes.Unauthenticated)
	if n := g.up.count(); n != calls {
		t.Errorf("upstream called %d times for the revoked key, want 0", n-calls)
	}
	if code, _ := g.rest(t, http.MethodPost, "/admin/v1/keys/key_000000000000000000000000:revoke", keysAdminKey, map[string]any{}); code != http.StatusNotFound {
		t.Errorf("revoking an unknown key = %d, want 404", code)
	}
	list, err = g.keys.ListKeys(admin, &pb.ListKeysRequest{})
	if err != nil || len(list.GetKeys()) != 1 {
		t.Fatalf("ListKeys after revoking = %v, %v; want only the live key", list, err)
	}
	if list, err = g.keys.ListKeys(admin, &pb.ListKeysRequest{ShowRevoked: true}); err != nil || len(list.GetKeys()) != 2 {
		t.Fatalf("ListKeys(show_revoked) = %v, %v; want both keys", list, err)
	}

	// An expired key is refused, with no upstream call. The key expires in the database
	// behind the gateway's back, before its first use.
	exp, err := g.keys.CreateKey(admin, &pb.CreateKeyRequest{Name: "short", Tenant: "acme", Ttl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, exp.GetSecret())
	if exp.GetKey().GetExpireTime() == nil {
		t.Fatalf("key created with a ttl has no expire_time: %v", exp.GetKey())
	}
	db, err := database.Open(ctx, g.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, db.Rebind("UPDATE api_keys SET expires_at = ? WHERE id = ?"), time.Now().Add(-time.Second).UnixMilli(), exp.GetKey().GetId()); err != nil {
		t.Fatal(err)
	}
	calls = g.up.count()
	if code, body := g.chatREST(t, exp.GetSecret(), "chat"); code != http.StatusUnauthorized || !strings.Contains(string(body), "expired") {
		t.Fatalf("chat with the expired key = %d %s, want 401 expired", code, body)
	}
	if n := g.up.count(); n != calls {
		t.Errorf("upstream called %d times for the expired key, want 0", n-calls)
	}
	if got, err := g.keys.GetKey(admin, &pb.GetKeyRequest{Id: exp.GetKey().GetId()}); err != nil || !got.GetKey().GetExpired() {
		t.Errorf("GetKey of the expired key = %v, %v; want expired", got, err)
	}

	// No response after creation and no log line holds a secret or its hash.
	logs := g.logs.String()
	if !strings.Contains(logs, `"grpc.method":"CreateKey"`) {
		t.Fatalf("the logs do not show the calls, so they prove nothing:\n%s", logs)
	}
	for _, s := range secrets {
		sum := sha256.Sum256([]byte(s))
		for _, needle := range []string{s, s[len("sk-sy-") : len(s)-4], hex.EncodeToString(sum[:])} {
			if strings.Contains(logs, needle) {
				t.Errorf("the logs hold %q", needle)
			}
			for i, b := range leaks {
				if bytes.Contains(b, []byte(needle)) {
					t.Errorf("response %d after creation holds %q", i, needle)
				}
			}
		}
	}
}

// TestKeysOff: without keys.enabled, KeyService is not served (UNIMPLEMENTED; REST 404), even to
// a caller holding every scope.
func TestKeysOff(t *testing.T) {
	inst := startYAML(t, `
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0}
auth: {mode: none}
providers:
  - {name: mock, type: mock, models: [echo]}
`)
	cc, err := grpc.NewClient(inst.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = pb.NewKeyServiceClient(cc).ListKeys(t.Context(), &pb.ListKeysRequest{})
	wantGRPCCode(t, err, codes.Unimplemented)
	resp, err := http.Get("http://" + inst.HTTPAddr() + "/admin/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /admin/v1/keys with keys off = %d, want 404", resp.StatusCode)
	}
}

// TestManagedKeysRequests checks KeyService's request handling: defaults, invalid requests and
// paging.
func TestManagedKeysRequests(t *testing.T) {
	g := startKeysGateway(t, database.Config{Driver: database.SQLite, DSN: t.TempDir() + "/keys.db"})
	admin := withKey(t.Context(), keysAdminKey)
	mine, err := g.keys.CreateKey(admin, &pb.CreateKeyRequest{Name: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if k := mine.GetKey(); k.GetTenant() != "ops" || k.GetExpireTime() != nil || slices.Contains(k.GetScopes(), "admin") || len(k.GetScopes()) == 0 {
		t.Fatalf("key created without tenant or scopes = %v; want the caller's tenant and the default scopes", k)
	}
	create := []struct {
		name string
		req  *pb.CreateKeyRequest
	}{
		{"no name", &pb.CreateKeyRequest{}},
		{"expire_time and ttl", &pb.CreateKeyRequest{Name: "k", ExpireTime: timestamppb.New(time.Now().Add(time.Hour)), Ttl: durationpb.New(time.Hour)}},
		{"negative ttl", &pb.CreateKeyRequest{Name: "k", Ttl: durationpb.New(-time.Hour)}},
		{"zero ttl", &pb.CreateKeyRequest{Name: "k", Ttl: durationpb.New(0)}},
		{"past expire_time", &pb.CreateKeyRequest{Name: "k", ExpireTime: timestamppb.New(time.Now().Add(-time.Hour))}},
		{"scope with a space", &pb.CreateKeyRequest{Name: "k", Scopes: []string{"chat write"}}},
		{"empty model", &pb.CreateKeyRequest{Name: "k", Models: []string{""}}},
	}
	for _, c := range create {
		t.Run(c.name, func(t *testing.T) {
			_, err := g.keys.CreateKey(admin, c.req)
			wantGRPCCode(t, err, codes.InvalidArgument)
		})
	}
	for _, req := range []*pb.ListKeysRequest{{PageSize: -1}, {PageSize: 1001}, {PageToken: "not-a-token"}} {
		_, err := g.keys.ListKeys(admin, req)
		wantGRPCCode(t, err, codes.InvalidArgument)
	}
	for range 2 {
		if _, err := g.keys.CreateKey(admin, &pb.CreateKeyRequest{Name: "more"}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	tok := ""
	for range 5 {
		page, err := g.keys.ListKeys(admin, &pb.ListKeysRequest{PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.GetKeys() {
			ids = append(ids, k.GetId())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(ids) != 3 || ids[2] != mine.GetKey().GetId() {
		t.Fatalf("paged through %q; want three keys ending with the first one created", ids)
	}
}

// TestManagedKeysRevokedAcrossInstances: two instances share the database; a key revoked through
// one is refused by the other. The other instance runs without the found-keys cache, so the
// revocation shows at its next request; with the cache it shows within keys.cache_ttl (the
// keystore tests check that bound with a fake clock).
func TestManagedKeysRevokedAcrossInstances(t *testing.T) {
	db := database.Config{Driver: database.SQLite, DSN: t.TempDir() + "/keys.db"}
	a := startKeysGateway(t, db)
	b := startKeysGateway(t, db, "  cache_ttl: -1s\n")
	admin := withKey(t.Context(), keysAdminKey)
	k, err := a.keys.CreateKey(admin, &pb.CreateKeyRequest{Name: "shared", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*keysGateway{a, b} {
		if code, body := g.chatREST(t, k.GetSecret(), "mock/echo"); code != http.StatusOK {
			t.Fatalf("chat before revocation = %d %s", code, body)
		}
	}
	if _, err := a.keys.RevokeKey(admin, &pb.RevokeKeyRequest{Id: k.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*keysGateway{"revoking instance": a, "other instance": b} {
		if code, body := g.chatREST(t, k.GetSecret(), "mock/echo"); code != http.StatusUnauthorized {
			t.Errorf("%s: chat after revocation = %d %s, want 401", name, code, body)
		}
	}
}
