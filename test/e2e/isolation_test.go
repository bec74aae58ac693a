package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/database"
)

// Admin keys of the two tenants of TestIsolation (the non-admin keys are acmeKey and globexKey).
const (
	acmeAdminKey   = "sk-isolation-acme-admin-0123456789"
	globexAdminKey = "sk-isolation-globex-admin-0123456789"
)

// acmeSecret is in every message acme sends; it must never reach the upstream in globex's requests.
const acmeSecret = "acme-secret-7f3a"

// isolationGateway is a sessions gateway with the audit log on and an AuditService client.
type isolationGateway struct {
	*sessionGateway
	audit pb.AuditServiceClient
}

// TestIsolation makes 10,000 random cross-tenant attempts as tenant globex (REST and gRPC, with
// its admin and its non-admin key) against tenant acme's sessions and audit log: session reads,
// updates, deletes, continues (body and header) and lists (the session probes of
// TestSessionsCrossTenant), audit queries naming acme's tenant, request ids and subjects, and
// erasing acme's subject's audit bodies. None may succeed: every one is refused or answers with
// none of acme's data (erasing may erase globex's own records only); between them globex's own chats run normally and none of them carries
// acme's history upstream; at the end acme's sessions and audit records are as they were.
//
// KeyService is not probed: its admins manage the keys of every tenant by design (docs/keys.md),
// so listing another tenant's keys is not a breach of isolation.
func TestIsolation(t *testing.T) {
	const total, workers = 10_000, 8
	g := startIsolationGateway(t)
	acme := withKey(t.Context(), acmeKey)
	acmeAdmin := withKey(t.Context(), acmeAdminKey)

	// acme's state: five sessions, the first with one turn, and audited requests with known ids.
	var ids []string
	for range 5 {
		cr, err := g.sessions.CreateSession(acme, &pb.CreateSessionRequest{Model: "up/gpt-ok"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cr.GetSession().GetId())
	}
	var reqIDs []string
	for i := range 4 {
		id := fmt.Sprintf("acme-req-%d", i)
		reqIDs = append(reqIDs, id)
		ctx := metadata.AppendToOutgoingContext(acme, "x-request-id", id)
		in := &pb.CreateChatCompletionRequest{Model: "up/gpt-ok", Messages: []*pb.ChatMessage{textMsg("user", acmeSecret)}}
		if i == 0 {
			in.SessionId = ids[0]
		}
		if _, err := g.chat.CreateChatCompletion(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	acmeRecords := g.waitAuditRecords(t, acmeAdmin, len(reqIDs)+len(ids))
	if page, err := g.audit.ListAuditRecords(acmeAdmin, &pb.ListAuditRecordsRequest{RequestId: reqIDs[1]}); err != nil || len(page.GetRecords()) != 1 {
		t.Fatalf("acme's admin reading its request %s: %v, %v; want its one record", reqIDs[1], page, err)
	}

	// globex's own session, continued by its legitimate chats during the probes.
	globex, globexAdmin := withKey(t.Context(), globexKey), withKey(t.Context(), globexAdminKey)
	cr, err := g.sessions.CreateSession(globex, &pb.CreateSessionRequest{Model: "up/gpt-ok"})
	if err != nil {
		t.Fatal(err)
	}
	own := cr.GetSession().GetId()
	upBefore := g.up.count()

	var legit atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 6))
			for i := w; i < total; i += workers {
				var err error
				switch r := rng.IntN(20); {
				case r < 11:
					ctx := globex
					if rng.IntN(2) == 0 {
						ctx = globexAdmin
					}
					err = probe(t, g.sessionGateway, ctx, rng, ids)
				case r < 19:
					err = g.auditProbe(t, rng, globex, globexAdmin, reqIDs)
				default:
					legit.Add(1)
					_, err = g.chat.CreateChatCompletion(globex, &pb.CreateChatCompletionRequest{Model: "up/gpt-ok", SessionId: own,
						Messages: []*pb.ChatMessage{textMsg("user", "globex's own")}})
				}
				if err != nil {
					errs <- fmt.Errorf("attempt %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Only globex's own chats reached the upstream, and none carried acme's history.
	g.up.mu.Lock()
	sent := g.up.requests[upBefore:]
	g.up.mu.Unlock()
	if int64(len(sent)) != legit.Load() {
		t.Errorf("the upstream got %d calls during the probes; want globex's %d own chats", len(sent), legit.Load())
	}
	for _, r := range sent {
		if b, _ := json.Marshal(r.Body); strings.Contains(string(b), acmeSecret) {
			t.Fatalf("an upstream request during the probes carried acme's history: %s", b)
		}
	}
	// acme's audit records and sessions are as they were. The records are listed first: reading
	// the sessions back is audited too (asynchronously), and would add acme's own records.
	after, err := g.audit.ListAuditRecords(acmeAdmin, &pb.ListAuditRecordsRequest{Subject: "alice", IncludeBodies: true, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(auditSummary(after.GetRecords())) != fmt.Sprint(acmeRecords) {
		t.Errorf("acme's audit records after the probes = %q; want %q", auditSummary(after.GetRecords()), acmeRecords)
	}
	for _, id := range ids {
		got, err := g.sessions.GetSession(acme, &pb.GetSessionRequest{Id: id})
		if err != nil {
			t.Fatalf("acme's session %s after the probes: %v", id, err)
		}
		if wantTurns := map[bool]int64{true: 1}[id == ids[0]]; got.GetSession().GetTurns() != wantTurns || got.GetSession().GetVersion() != wantTurns+1 ||
			got.GetSession().GetArchive() || got.GetSession().GetSystemPrompt() != "" {
			t.Errorf("acme's session %s = %v; want untouched", id, got.GetSession())
		}
	}
}

func startIsolationGateway(t *testing.T) *isolationGateway {
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
    - {name: alice, key: %q, tenant: acme}
    - {name: acme-admin, key: %q, tenant: acme, scopes: ["*"]}
    - {name: mallory, key: %q, tenant: globex}
    - {name: globex-admin, key: %q, tenant: globex, scopes: ["*"]}
providers:
  - {name: up, type: openai, base_url: %q, api_key: %q}
sessions: {backend: memory}
%s`, acmeKey, acmeAdminKey, globexKey, globexAdminKey, up.URL+"/v1", upstreamKey,
		auditYAML(database.Config{Driver: database.SQLite, DSN: filepath.Join(t.TempDir(), "a.db")}))
	inst := startYAML(t, yaml)
	return &isolationGateway{
		sessionGateway: connectSessions(t, inst, up),
		audit:          pb.NewAuditServiceClient((&gateway{Instance: inst}).grpcConn(t)),
	}
}

// waitAuditRecords waits until the caller's tenant has n records of subject alice and returns
// their summary.
func (g *isolationGateway) waitAuditRecords(t *testing.T, ctx context.Context, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		page, err := g.audit.ListAuditRecords(ctx, &pb.ListAuditRecordsRequest{Subject: "alice", IncludeBodies: true, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.GetRecords()) == n {
			s := auditSummary(page.GetRecords())
			if !strings.Contains(fmt.Sprint(s), acmeSecret) {
				t.Fatalf("acme's records %q hold no body with the secret", s)
			}
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme has %d audit records of alice; want %d", len(page.GetRecords()), n)
		}
		time.Sleep(20 * time.Millisecond) // polling an eventually consistent read; no event to wait on
	}
}

// auditSummary is what TestIsolation compares of records: tenant, sequence, request id, hash, body.
func auditSummary(rs []*pb.AuditRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s/%d/%s/%s/%s", r.GetTenant(), r.GetSeq(), r.GetRequestId(), r.GetHash(), r.GetBody())
	}
	return out
}

// auditProbe makes one random attempt on acme's audit log as globex (admin or not, REST or
// gRPC) and reports an error unless it was refused or answered with none of acme's records.
func (g *isolationGateway) auditProbe(t *testing.T, rng *rand.Rand, user, admin context.Context, reqIDs []string) error {
	reqID := reqIDs[rng.IntN(len(reqIDs))]
	subject := []string{"alice", "acme-admin"}[rng.IntN(2)]
	if rng.IntN(3) == 0 { // REST
		key := globexAdminKey
		if rng.IntN(4) == 0 {
			key = globexKey
		}
		var path string
		switch rng.IntN(4) {
		case 0:
			path = "/admin/v1/audit/records?tenant=acme&include_bodies=true"
		case 1:
			path = "/admin/v1/audit/records?include_bodies=true&request_id=" + reqID
		case 2:
			path = "/admin/v1/audit/records?include_bodies=true&page_size=100&subject=" + subject
		default:
			path = "/admin/v1/audit/records?include_bodies=true&page_size=100"
		}
		code, body := g.rest(t, http.MethodGet, path, key, nil, nil)
		switch {
		case key == globexKey || strings.Contains(path, "tenant=acme"):
			if code != http.StatusForbidden {
				return fmt.Errorf("REST %s with key %s: %d %s; want 403", path, key[:16], code, body)
			}
		case code != http.StatusOK:
			return fmt.Errorf("REST %s: %d %s; want 200", path, code, body)
		default:
			var page struct {
				Records []struct {
					Tenant    string `json:"tenant"`
					RequestID string `json:"request_id"`
					Body      string `json:"body"`
				} `json:"records"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				return fmt.Errorf("REST %s: decode %s: %w", path, body, err)
			}
			for _, r := range page.Records {
				if !ownRecord(r.Tenant, r.RequestID, r.Body) {
					return fmt.Errorf("REST %s returned acme's record %+v", path, r)
				}
			}
		}
		return nil
	}
	ctx := admin
	if rng.IntN(4) == 0 {
		ctx = user
	}
	var in *pb.ListAuditRecordsRequest
	switch op := rng.IntN(5); op {
	case 0:
		in = &pb.ListAuditRecordsRequest{Tenant: "acme", IncludeBodies: true}
	case 1:
		in = &pb.ListAuditRecordsRequest{RequestId: reqID, IncludeBodies: true}
	case 2:
		in = &pb.ListAuditRecordsRequest{Subject: subject, IncludeBodies: true, PageSize: 100}
	case 3:
		in = &pb.ListAuditRecordsRequest{IncludeBodies: true, PageSize: 100}
	default:
		n, err := g.audit.EraseAuditBodies(ctx, &pb.EraseAuditBodiesRequest{Subject: subject})
		if ctx == user {
			if status.Code(err) != codes.PermissionDenied {
				return fmt.Errorf("gRPC erase %s without admin: %v, %v; want PERMISSION_DENIED", subject, n, err)
			}
			return nil
		}
		// It may erase globex's own records naming the subject as their end user (the session
		// probes list sessions of user alice); acme's bodies are checked at the end.
		if err != nil {
			return fmt.Errorf("gRPC erase %s: %w", subject, err)
		}
		return nil
	}
	page, err := g.audit.ListAuditRecords(ctx, in)
	if ctx == user || in.Tenant == "acme" {
		if status.Code(err) != codes.PermissionDenied {
			return fmt.Errorf("gRPC list %v: %d records, %v; want PERMISSION_DENIED", in, len(page.GetRecords()), err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("gRPC list %v: %w", in, err)
	}
	for _, r := range page.GetRecords() {
		if !ownRecord(r.GetTenant(), r.GetRequestId(), r.GetBody()) {
			return fmt.Errorf("gRPC list %v returned acme's record %v", in, r)
		}
	}
	return nil
}

// ownRecord reports whether an audit record read by globex is globex's own: its tenant, not one
// of acme's request ids, and no acme message in its body (globex's own records may name acme's
// request ids in the queries they record).
func ownRecord(tenant, requestID, body string) bool {
	return tenant == "globex" && !strings.HasPrefix(requestID, "acme-req-") && !strings.Contains(body, acmeSecret)
}
