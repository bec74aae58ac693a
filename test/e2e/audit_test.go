package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
)

// auditYAML is the audit section of the tests' configs: bodies kept, encrypted, "pong" redacted.
func auditYAML(db database.Config) string {
	return fmt.Sprintf(`
audit:
  enabled: true
  sql: {driver: %s, dsn: %q}
  bodies:
    enabled: true
    redact_patterns: ["pong"]
    encryption:
      keys: [{id: k1, key: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", primary: true}]
`, db.Driver, db.DSN)
}

func eachAuditDB(t *testing.T, f func(t *testing.T, db database.Config)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, database.Config{Driver: database.SQLite, DSN: filepath.Join(t.TempDir(), "audit.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, database.Config{Driver: database.Postgres, DSN: dbtest.PostgresDSN(t)})
	})
}

// TestAuditLoad sends N requests through REST and gRPC (unary and streamed, some failing) and
// expects exactly N chained records, plus one per call refused for a bad key (in the
// unauthenticated chain); then one edited record makes `switchyard audit verify` fail at that
// record.
func TestAuditLoad(t *testing.T) {
	eachAuditDB(t, testAuditLoad)
}

func testAuditLoad(t *testing.T, dbc database.Config) {
	const n = 120
	g := startGateway(t, auditYAML(dbc))
	cc := g.grpcConn(t)
	chat := pb.NewChatServiceClient(cc)
	restChatKey := func(key, body string) error {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, g.restURL()+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	restChat := func(body string) error { return restChatKey(clientKey, body) }
	call := func(i int) error {
		model := "chat"
		if i%10 == 9 {
			model = "no-such-model" // failures are audited too
		}
		switch i % 4 {
		case 0:
			return restChat(fmt.Sprintf(`{"model":%q,"user":"u%d","messages":[{"role":"user","content":"hi %d"}]}`, model, i%3, i))
		case 1:
			return restChat(fmt.Sprintf(`{"model":%q,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi %d"}]}`, model, i))
		case 2:
			_, err := chat.CreateChatCompletion(authed(t.Context()), &pb.CreateChatCompletionRequest{Model: model,
				Messages: []*pb.ChatMessage{textMsg("user", fmt.Sprint("hi ", i))}})
			if status.Code(err) == codes.NotFound {
				err = nil
			}
			return err
		default:
			st, err := chat.StreamChatCompletion(authed(t.Context()), &pb.StreamChatCompletionRequest{Request: &pb.CreateChatCompletionRequest{
				Model: model, Messages: []*pb.ChatMessage{textMsg("user", fmt.Sprint("hi ", i))},
				StreamOptions: &pb.StreamOptions{IncludeUsage: true}}})
			if err != nil {
				return err
			}
			for {
				if _, err := st.Recv(); err == io.EOF || status.Code(err) == codes.NotFound {
					return nil
				} else if err != nil {
					return err
				}
			}
		}
	}
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if err := call(i); err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	// Refused calls are audited too: 2 without a valid key.
	const refused = 2
	if err := restChatKey("sk-wrong", `{"model":"chat","messages":[{"role":"user","content":"x"}]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.CreateChatCompletion(metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer sk-wrong"),
		&pb.CreateChatCompletionRequest{Model: "chat", Messages: []*pb.ChatMessage{textMsg("user", "x")}}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("bad key: %v", err)
	}
	// Shutting down writes every queued record.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	db, err := database.Open(ctx, dbc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := audit.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Count(ctx, ""); got != n+refused {
		t.Fatalf("%d audit records after %d requests, want exactly %d", got, n+refused, n+refused)
	}
	if got, _ := st.Count(ctx, audit.UnauthenticatedTenant); got != refused {
		t.Fatalf("%d records in the unauthenticated chain, want %d", got, refused)
	}
	recs, _, err := st.Query(ctx, audit.Filter{Tenant: "e2e", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.RequestID] = true
		count[r.Transport+" "+r.Class]++
		if r.Subject != "e2e" || r.KeyName != "e2e" || r.RequestID == "" || r.TraceID == "" || r.ClientAddr == "" {
			t.Errorf("record %d: missing identity fields: %+v", r.Seq, r)
		}
		if r.Class == audit.ClassOK {
			if r.Target != "up/gpt-ok" || r.Attempts != 1 || r.InputTokens != 10 || r.OutputTokens == 0 || r.Model != "chat" {
				t.Errorf("record %d: model %q target %q attempts %d tokens %d/%d", r.Seq, r.Model, r.Target, r.Attempts, r.InputTokens, r.OutputTokens)
			}
		} else if r.Class != audit.ClassParameter || r.Code != "NOT_FOUND" || r.Model != "no-such-model" {
			t.Errorf("record %d: class %q code %q model %q", r.Seq, r.Class, r.Code, r.Model)
		}
		if r.Transport == audit.TransportREST && r.ForwardedFor == "" {
			t.Errorf("REST record %d has no forwarded-for address", r.Seq)
		}
		if r.BodyKeyID != "k1" || len(r.Body) == 0 || bytes.Contains(r.Body, []byte("hi ")) {
			t.Errorf("record %d: body not sealed with k1 (key %q)", r.Seq, r.BodyKeyID)
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct request ids in %d records", len(ids), n)
	}
	// 0,1 mod 4 are REST, 2,3 gRPC; every tenth fails.
	want := map[string]int{"rest ok": 54, "rest parameter": 6, "grpc ok": 54, "grpc parameter": 6}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("%s records: %d, want %d (all: %v)", k, count[k], v, count)
		}
	}

	// The command verifies the chain; editing one record makes it fail at that record.
	cfgFile := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(cfgFile, []byte("providers:\n  - {name: mock, type: mock, models: [echo]}\n"+auditYAML(dbc)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	verify := func() error {
		out.Reset()
		return app.Run(ctx, []string{"audit", "verify", "--config", cfgFile}, func(string) string { return "" }, &out, io.Discard)
	}
	if err := verify(); err != nil || !strings.Contains(out.String(), fmt.Sprintf("OK: %d records verified", n+refused)) {
		t.Fatalf("audit verify = %v, output %q", err, out.String())
	}
	if _, err := db.ExecContext(ctx, db.Rebind("UPDATE audit_records SET input_tokens = 1 WHERE tenant = ? AND seq = ?"), "e2e", 42); err != nil {
		t.Fatal(err)
	}
	if err := verify(); err == nil || !strings.Contains(out.String(), `BROKEN tenant "e2e" record 42:`) {
		t.Fatalf("audit verify after editing record 42 = %v, output %q", err, out.String())
	}
}

// TestAuditService reads the log through AuditService over REST and gRPC: admins see their own
// tenant only, bodies decrypt and redact, and erasing a subject's bodies keeps the chain valid.
func TestAuditService(t *testing.T) {
	eachAuditDB(t, func(t *testing.T, dbc database.Config) {
		const adminA, adminB, userA = "sk-audit-admin-a-0123456789", "sk-audit-admin-b-0123456789", "sk-audit-user-a-0123456789"
		inst := startYAML(t, fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0}
auth:
  mode: api_key
  api_keys:
    - {name: admin-a, key: %q, tenant: a, scopes: [admin]}
    - {name: admin-b, key: %q, tenant: b, scopes: [admin]}
    - {name: user-a, key: %q, tenant: a}
providers:
  - {name: mock, type: mock, models: [echo]}
%s`, adminA, adminB, userA, auditYAML(dbc)))
		rest := func(method, path, key, body string) (int, []byte) {
			req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+inst.HTTPAddr()+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		for i := range 5 {
			if code, b := rest(http.MethodPost, "/v1/chat/completions", userA,
				fmt.Sprintf(`{"model":"mock/echo","user":"alice","messages":[{"role":"user","content":"secret %d pong"}]}`, i)); code != 200 {
				t.Fatalf("chat: %d %s", code, b)
			}
		}
		cc := (&gateway{Instance: inst}).grpcConn(t)
		client := pb.NewAuditServiceClient(cc)
		asA := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+adminA)
		// Records are written asynchronously: wait until the five chats are visible.
		var page *pb.ListAuditRecordsResponse
		for deadline := time.Now().Add(10 * time.Second); ; {
			var err error
			page, err = client.ListAuditRecords(asA, &pb.ListAuditRecordsRequest{Subject: "user-a", IncludeBodies: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Records) == 5 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // polling an eventually consistent read; no event to wait on
		}
		if len(page.Records) != 5 {
			t.Fatalf("%d records of user-a, want 5", len(page.Records))
		}
		r := page.Records[0]
		if !strings.Contains(r.Body, "secret 4") || strings.Contains(r.Body, "pong") || !strings.Contains(r.Body, audit.Redacted) {
			t.Errorf("newest body = %s; want the request, with pong redacted", r.Body)
		}
		if r.User != "alice" || r.Transport != "rest" || r.Target != "mock/echo" || r.Hash == "" {
			t.Errorf("record = %+v", r)
		}
		// Another tenant's admin sees none of it, and cannot ask for tenant a.
		asB := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+adminB)
		pb2, err := client.ListAuditRecords(asB, &pb.ListAuditRecordsRequest{Subject: "user-a"})
		if err != nil || len(pb2.Records) != 0 {
			t.Errorf("tenant b's admin listing user-a: %d records, %v", len(pb2.GetRecords()), err)
		}
		if _, err := client.ListAuditRecords(asB, &pb.ListAuditRecordsRequest{Tenant: "a"}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("tenant b's admin asking for tenant a: %v, want PERMISSION_DENIED", err)
		}
		if code, _ := rest(http.MethodGet, "/admin/v1/audit/records", userA, ""); code != http.StatusForbidden {
			t.Errorf("GET /admin/v1/audit/records without the admin scope = %d, want 403", code)
		}
		code, b := rest(http.MethodGet, "/admin/v1/audit/records?subject=user-a&page_size=2", adminA, "")
		var listed struct {
			Records []struct {
				Seq string `json:"seq"`
			} `json:"records"`
			Next string `json:"next_page_token"`
		}
		if err := json.Unmarshal(b, &listed); code != 200 || err != nil || len(listed.Records) != 2 || listed.Next == "" {
			t.Errorf("REST page of 2 = %d %s (%v)", code, b, err)
		}
		// Erase alice's bodies: metadata stays, bodies go, the chain still verifies.
		code, b = rest(http.MethodPost, "/admin/v1/audit:eraseBodies", adminA, `{"subject":"alice"}`)
		if code != 200 || !strings.Contains(string(b), `"erased":"5"`) {
			t.Fatalf("erase = %d %s", code, b)
		}
		// (user-a's refused admin call above is audited too, under its subject but without a user.)
		page, err = client.ListAuditRecords(asA, &pb.ListAuditRecordsRequest{User: "alice", IncludeBodies: true})
		if err != nil || len(page.Records) != 5 {
			t.Fatalf("after erasure: %d records, %v", len(page.GetRecords()), err)
		}
		for _, r := range page.Records {
			if r.Body != "" || r.BodyErasedTime == nil {
				t.Errorf("record %d kept its body after erasure", r.Seq)
			}
		}
		db, err := database.Open(t.Context(), dbc)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		st, err := audit.NewStore(t.Context(), db, nil)
		if err != nil {
			t.Fatal(err)
		}
		if problems, _, err := st.Verify(t.Context()); err != nil || len(problems) > 0 {
			t.Errorf("verify after erasure: %v, %v", problems, err)
		}
	})
}

// TestEraseUserCoversAudit: EraseUserSessions deletes the user's sessions and erases the bodies of
// the user's audit records; the metadata stays and the chain still verifies.
func TestEraseUserCoversAudit(t *testing.T) {
	dbc := database.Config{Driver: database.SQLite, DSN: filepath.Join(t.TempDir(), "audit.db")}
	g := startSessionGateway(t, auditYAML(dbc))
	ctx := withKey(t.Context(), acmeKey)
	cr, err := g.sessions.CreateSession(ctx, &pb.CreateSessionRequest{Model: "up/gpt-ok"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/gpt-ok",
		SessionId: cr.GetSession().GetId(), Messages: []*pb.ChatMessage{textMsg("user", "my secret")}}); err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(t.Context(), dbc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := audit.NewStore(t.Context(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Records are written asynchronously: wait until both calls are stored.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if n, err := st.Count(t.Context(), "acme"); err != nil || n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two audit records were not written within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling an eventually consistent read; no event to wait on
	}
	before, _, err := st.Query(t.Context(), audit.Filter{Tenant: "acme", Subject: "alice"})
	if err != nil || len(before) != 2 || len(before[0].Body) == 0 || len(before[1].Body) == 0 {
		t.Fatalf("before erasure: %d records (%v), want 2 with bodies", len(before), err)
	}

	er, err := g.sessions.EraseUserSessions(ctx, &pb.EraseUserSessionsRequest{})
	if err != nil || er.GetErased() != 1 {
		t.Fatalf("EraseUserSessions = %v, %v; want 1 erased", er, err)
	}
	if l, err := g.sessions.ListSessions(ctx, &pb.ListSessionsRequest{}); err != nil || len(l.GetSessions()) != 0 {
		t.Errorf("after erasure: %d sessions, %v", len(l.GetSessions()), err)
	}
	for _, want := range before {
		got, _, err := st.Query(t.Context(), audit.Filter{Tenant: "acme", RequestID: want.RequestID})
		if err != nil || len(got) != 1 {
			t.Fatalf("record %d: %d found, %v", want.Seq, len(got), err)
		}
		r := got[0]
		if len(r.Body) != 0 || r.ErasedAt.IsZero() || r.RPC != want.RPC || !bytes.Equal(r.BodyDigest, want.BodyDigest) {
			t.Errorf("record %d after erasure: body %d bytes, erased at %v, rpc %q", r.Seq, len(r.Body), r.ErasedAt, r.RPC)
		}
	}
	if problems, _, err := st.Verify(t.Context()); err != nil || len(problems) != 0 {
		t.Errorf("verify after erasure: %v %v", problems, err)
	}
}
