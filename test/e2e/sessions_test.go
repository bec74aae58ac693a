package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/app"
)

// Two API keys of different tenants.
const (
	acmeKey   = "sk-sessions-acme-0123456789"
	globexKey = "sk-sessions-globex-0123456789"
)

// sessionGateway is a running Switchyard with sessions, the fake upstream, and gRPC clients.
type sessionGateway struct {
	*app.Instance
	up       *fakeOpenAI
	chat     pb.ChatServiceClient
	sessions pb.SessionServiceClient
}

// sessionsYAML is a config with the two tenants' keys and an OpenAI-compatible provider "up" at
// upURL; extra is appended.
func sessionsYAML(upURL, extra string) string {
	return fmt.Sprintf(`
server:
  http_addr: 127.0.0.1:0
  grpc_addr: 127.0.0.1:0
  admin_addr: 127.0.0.1:0
  shutdown_timeout: 5s
auth:
  mode: api_key
  api_keys:
    - {name: alice, key: %q, tenant: acme}
    - {name: mallory, key: %q, tenant: globex}
providers:
  - {name: up, type: openai, base_url: %q, api_key: %q}
%s`, acmeKey, globexKey, upURL+"/v1", upstreamKey, extra)
}

func startSessionGateway(t *testing.T, extra string) *sessionGateway {
	t.Helper()
	up := newFakeOpenAI(t)
	return connectSessions(t, startYAML(t, sessionsYAML(up.URL, extra)), up)
}

func connectSessions(t *testing.T, inst *app.Instance, up *fakeOpenAI) *sessionGateway {
	t.Helper()
	cc, err := grpc.NewClient(inst.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return &sessionGateway{Instance: inst, up: up, chat: pb.NewChatServiceClient(cc), sessions: pb.NewSessionServiceClient(cc)}
}

func withKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// rest sends a REST request with key and extra headers; body is marshalled as JSON unless nil.
func (g *sessionGateway) rest(t *testing.T, method, path, key string, header map[string]string, body any) (int, []byte) {
	t.Helper()
	code, _, b := g.restHeader(t, method, path, key, header, body)
	return code, b
}

// restHeader is rest that also returns the response headers.
func (g *sessionGateway) restHeader(t *testing.T, method, path, key string, header map[string]string, body any) (int, http.Header, []byte) {
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
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// restInto is rest that expects 200 and decodes the JSON answer into m.
func (g *sessionGateway) restInto(t *testing.T, method, path, key string, header map[string]string, body any, m proto.Message) {
	t.Helper()
	code, b := g.rest(t, method, path, key, header, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	if m != nil {
		if err := protojson.Unmarshal(b, m); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func chatBody(model, text string, stream bool) map[string]any {
	return map[string]any{"model": model, "stream": stream, "messages": []map[string]any{{"role": "user", "content": text}}}
}

// restHistory returns a session's history as "turn:role:text" lines, read over REST.
func (g *sessionGateway) restHistory(t *testing.T, key, id string) []string {
	t.Helper()
	var h pb.GetSessionHistoryResponse
	g.restInto(t, http.MethodGet, "/v1/sessions/"+id+"/history", key, nil, nil, &h)
	return lines(h.GetEntries())
}

func lines(entries []*pb.SessionEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = fmt.Sprintf("%d:%s:%s", e.GetTurn(), e.GetMessage().GetRole(), e.GetMessage().GetContent().GetText())
	}
	return out
}

// TestSessionsREST creates a session over REST and continues it twice with the header (once
// blocking, once streamed); the history then holds both turns, and the second request carried
// the first turn and the system prompt upstream.
func TestSessionsREST(t *testing.T) {
	g := startSessionGateway(t, "")
	var s pb.Session
	g.restInto(t, http.MethodPost, "/v1/sessions", acmeKey, nil,
		map[string]any{"model": "up/gpt-ok", "system_prompt": "be brief", "parameters": map[string]any{"temperature": 0.3}}, &s)
	if _, err := uuid.Parse(s.GetId()); err != nil || s.GetUser() != "alice" || s.GetTtl().AsDuration().Minutes() != 15 {
		t.Fatalf("created %v; want a UUID id, user alice, TTL 15m", &s)
	}
	// The first turn names the session in the body, the second (streamed) with the header; both
	// answers echo the header.
	first := chatBody("up/gpt-ok", "first", false)
	first["session_id"] = s.GetId()
	hdr := map[string]string{"X-Switchyard-Session-Id": s.GetId()}
	for _, turn := range []struct {
		body   map[string]any
		header map[string]string
		want   string
	}{
		{first, nil, "pong: first"},
		{chatBody("up/gpt-ok", "second", true), hdr, "data: [DONE]"},
	} {
		code, h, b := g.restHeader(t, http.MethodPost, "/v1/chat/completions", acmeKey, turn.header, turn.body)
		if code != http.StatusOK || !strings.Contains(string(b), turn.want) || h.Get("X-Switchyard-Session-Id") != s.GetId() {
			t.Fatalf("turn: %d %v %s; want 200 with %q and the session header", code, h, b, turn.want)
		}
	}
	sent := g.up.last().Body
	msgs, _ := sent["messages"].([]any)
	if len(msgs) != 4 || sent["temperature"] != 0.3 {
		t.Errorf("second upstream request = %v; want system, user, assistant, user and the session's temperature", sent)
	}
	// A third turn leaves the model out: the session's model serves it.
	noModel := chatBody("", "third", false)
	delete(noModel, "model")
	if code, _, b := g.restHeader(t, http.MethodPost, "/v1/chat/completions", acmeKey, hdr, noModel); code != http.StatusOK || !strings.Contains(string(b), "pong: third") {
		t.Fatalf("turn without a model: %d %s; want 200 from the session's model", code, b)
	}
	want := []string{"1:user:first", "1:assistant:pong: first", "2:user:second", "2:assistant:pong: second", "3:user:third", "3:assistant:pong: third"}
	if got := g.restHistory(t, acmeKey, s.GetId()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %q; want %q", got, want)
	}

	var list pb.ListSessionsResponse
	g.restInto(t, http.MethodGet, "/v1/sessions?page_size=10", acmeKey, nil, nil, &list)
	if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetTurns() != 3 {
		t.Errorf("list = %v; want the one session with 3 turns", &list)
	}
	var up pb.Session
	g.restInto(t, http.MethodPatch, "/v1/sessions/"+s.GetId(), acmeKey, nil, map[string]any{"archive": true, "metadata": map[string]string{"k": "v"}}, &up)
	if !up.GetArchive() || up.GetMetadata()["k"] != "v" || up.GetSystemPrompt() != "be brief" {
		t.Errorf("patched %v; want archived, metadata k=v, the system prompt kept", &up)
	}
	g.restInto(t, http.MethodDelete, "/v1/sessions/"+s.GetId(), acmeKey, nil, nil, nil)
	if code, b := g.rest(t, http.MethodGet, "/v1/sessions/"+s.GetId(), acmeKey, nil, nil); code != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d %s; want 404", code, b)
	}
}

// TestSessionsGRPC does the same through the generated client with the body field.
func TestSessionsGRPC(t *testing.T) {
	g := startSessionGateway(t, "")
	ctx := withKey(t.Context(), acmeKey)
	cr, err := g.sessions.CreateSession(ctx, &pb.CreateSessionRequest{Model: "up/gpt-ok", SystemPrompt: "be brief"})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.GetSession().GetId()
	for _, q := range []string{"first", "second"} {
		if _, err := g.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/gpt-ok", SessionId: id, Messages: []*pb.ChatMessage{textMsg("user", q)}}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := g.sessions.GetSessionHistory(ctx, &pb.GetSessionHistoryRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1:user:first", "1:assistant:pong: first", "2:user:second", "2:assistant:pong: second"}
	if got := lines(h.GetEntries()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %q; want %q", got, want)
	}
}

// TestSessionsConcurrentTurns sends 20 turns on one session at once (REST and gRPC mixed): the
// history holds exactly 20 questions, each followed by its own answer, numbered 1..20.
func TestSessionsConcurrentTurns(t *testing.T) {
	const n = 20
	g := startSessionGateway(t, "")
	ctx := withKey(t.Context(), acmeKey)
	cr, err := g.sessions.CreateSession(ctx, &pb.CreateSessionRequest{Model: "up/gpt-ok"})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.GetSession().GetId()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			q := fmt.Sprint("question ", i)
			if i%2 == 0 {
				_, err := g.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/gpt-ok", SessionId: id, Messages: []*pb.ChatMessage{textMsg("user", q)}})
				errs <- err
				return
			}
			body, _ := json.Marshal(chatBody("up/gpt-ok", q, false))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.HTTPAddr()+"/v1/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+acmeKey)
			req.Header.Set("X-Switchyard-Session-Id", id)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("REST turn %d: status %d", i, resp.StatusCode)
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	h, err := g.sessions.GetSessionHistory(ctx, &pb.GetSessionHistoryRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	e := h.GetEntries()
	if len(e) != 2*n {
		t.Fatalf("history has %d entries; want %d", len(e), 2*n)
	}
	seen := map[string]bool{}
	for i := 0; i < len(e); i += 2 {
		q := e[i].GetMessage().GetContent().GetText()
		ok := e[i].GetTurn() == int64(i/2+1) && e[i+1].GetTurn() == e[i].GetTurn() &&
			e[i].GetMessage().GetRole() == "user" && e[i+1].GetMessage().GetRole() == "assistant" &&
			e[i+1].GetMessage().GetContent().GetText() == "pong: "+q && !seen[q]
		if !ok {
			t.Fatalf("entries %d-%d = %q; want turn %d: a new question and its own answer", i, i+1, lines(e[i:i+2]), i/2+1)
		}
		seen[q] = true
	}
}

// TestSessionsCrossTenant makes 10,000 random reads, lists, updates, deletes and continues
// (REST and gRPC) as tenant globex with acme's session ids, random ids and malformed ids. Every
// one is refused exactly like a missing session, nothing reaches the upstream, and acme's
// sessions are untouched.
func TestSessionsCrossTenant(t *testing.T) {
	const total, workers = 10_000, 8
	g := startSessionGateway(t, "")
	acme := withKey(t.Context(), acmeKey)
	var ids []string
	for range 5 {
		cr, err := g.sessions.CreateSession(acme, &pb.CreateSessionRequest{Model: "up/gpt-ok"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cr.GetSession().GetId())
	}
	if _, err := g.chat.CreateChatCompletion(acme, &pb.CreateChatCompletionRequest{Model: "up/gpt-ok", SessionId: ids[0], Messages: []*pb.ChatMessage{textMsg("user", "secret")}}); err != nil {
		t.Fatal(err)
	}
	upCalls := g.up.count()

	mallory := withKey(t.Context(), globexKey)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := w; i < total; i += workers {
				if err := probe(t, g, mallory, rng, ids); err != nil {
					errs <- fmt.Errorf("probe %d: %w", i, err)
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
	if n := g.up.count(); n != upCalls {
		t.Errorf("the upstream got %d calls during the probes; want none", n-upCalls)
	}
	for _, id := range ids {
		got, err := g.sessions.GetSession(acme, &pb.GetSessionRequest{Id: id})
		if err != nil {
			t.Fatalf("acme's session %s after the probes: %v", id, err)
		}
		if wantTurns := map[bool]int64{true: 1}[id == ids[0]]; got.GetSession().GetTurns() != wantTurns || got.GetSession().GetVersion() != wantTurns+1 {
			t.Errorf("acme's session %s = %v; want untouched", id, got.GetSession())
		}
	}
}

// probe makes one random cross-tenant attempt and reports an error unless it was refused like a
// missing session (lists: answered with none of the other tenant's sessions).
func probe(t *testing.T, g *sessionGateway, ctx context.Context, rng *rand.Rand, ids []string) error {
	var id string
	switch r := rng.IntN(10); {
	case r < 7:
		id = ids[rng.IntN(len(ids))]
	case r < 9:
		id = uuid.Must(uuid.NewV7()).String()
	default:
		id = fmt.Sprintf("x%d-not-a-uuid", rng.IntN(1000))
	}
	wantMsg := fmt.Sprintf("session %q not found", id)
	if rng.IntN(4) == 0 { // REST
		var code int
		var body []byte
		switch op := rng.IntN(6); op {
		case 0:
			code, body = g.rest(t, http.MethodGet, "/v1/sessions/"+id, globexKey, nil, nil)
		case 1:
			code, body = g.rest(t, http.MethodGet, "/v1/sessions/"+id+"/history", globexKey, nil, nil)
		case 2:
			code, body = g.rest(t, http.MethodPatch, "/v1/sessions/"+id, globexKey, nil, map[string]any{"system_prompt": "pwned"})
		case 3:
			code, body = g.rest(t, http.MethodDelete, "/v1/sessions/"+id, globexKey, nil, nil)
		case 4:
			code, body = g.rest(t, http.MethodPost, "/v1/chat/completions", globexKey, map[string]string{"X-Switchyard-Session-Id": id}, chatBody("up/gpt-ok", "hi", rng.IntN(2) == 0))
		case 5:
			code, body = g.rest(t, http.MethodGet, "/v1/sessions?user=alice&page_size=1000", globexKey, nil, nil)
			if code != http.StatusOK || strings.Contains(string(body), ids[0][:13]) {
				return fmt.Errorf("REST list: %d %s; want 200 without acme's sessions", code, body)
			}
			return nil
		}
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if err := json.Unmarshal(body, &e); code != http.StatusNotFound || err != nil || e.Error.Message != wantMsg {
			return fmt.Errorf("REST %s: %d %s; want 404 %q", id, code, body, wantMsg)
		}
		return nil
	}
	var err error
	switch op := rng.IntN(7); op {
	case 0:
		_, err = g.sessions.GetSession(ctx, &pb.GetSessionRequest{Id: id})
	case 1:
		_, err = g.sessions.GetSessionHistory(ctx, &pb.GetSessionHistoryRequest{Id: id})
	case 2:
		_, err = g.sessions.UpdateSession(ctx, &pb.UpdateSessionRequest{Id: id, Archive: proto.Bool(true)})
	case 3:
		_, err = g.sessions.DeleteSession(ctx, &pb.DeleteSessionRequest{Id: id})
	case 4:
		_, err = g.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/gpt-ok", SessionId: id, Messages: []*pb.ChatMessage{textMsg("user", "hi")}})
	case 5:
		var st grpc.ServerStreamingClient[pb.StreamChatCompletionResponse]
		st, err = g.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: &pb.CreateChatCompletionRequest{Model: "up/gpt-ok", SessionId: id, Messages: []*pb.ChatMessage{textMsg("user", "hi")}}})
		if err == nil {
			_, err = st.Recv()
			if errors.Is(err, io.EOF) {
				err = errors.New("stream ended cleanly")
			}
		}
	case 6:
		l, lerr := g.sessions.ListSessions(ctx, &pb.ListSessionsRequest{User: "alice", PageSize: 1000})
		if lerr != nil || len(l.GetSessions()) != 0 {
			return fmt.Errorf("gRPC list: %v, %v; want no sessions", l, lerr)
		}
		return nil
	}
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != wantMsg {
		return fmt.Errorf("gRPC %s: %v; want NOT_FOUND %q", id, err, wantMsg)
	}
	return nil
}

// TestSessionsFailedTurnAppendsNothing: a turn whose upstream call fails (blocking, before the
// stream, or in the middle of the stream) leaves the history as it was.
func TestSessionsFailedTurnAppendsNothing(t *testing.T) {
	var routes strings.Builder
	routes.WriteString("routes:\n")
	for _, name := range []string{"err-500", "err-429", "reset-mid"} {
		fmt.Fprintf(&routes, `  - name: fast-%s
    targets: [{model: up/%s}]
    retry: {max_retries: 1, initial_backoff: 1ms, max_backoff: 2ms, retry_after_cap: 5ms}
    breaker: {consecutive_failures: -1, error_rate: -1}
`, name, name)
	}
	g := startSessionGateway(t, routes.String())
	ctx := withKey(t.Context(), acmeKey)
	cr, err := g.sessions.CreateSession(ctx, &pb.CreateSessionRequest{Model: "up/gpt-ok"})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.GetSession().GetId()
	hdr := map[string]string{"X-Switchyard-Session-Id": id}
	if code, _ := g.rest(t, http.MethodPost, "/v1/chat/completions", acmeKey, hdr, chatBody("up/gpt-ok", "kept", false)); code != http.StatusOK {
		t.Fatalf("good turn: %d", code)
	}
	for _, c := range []struct {
		model  string
		stream bool
	}{{"fast-err-500", false}, {"fast-err-429", false}, {"fast-err-500", true}, {"fast-reset-mid", true}} {
		code, b := g.rest(t, http.MethodPost, "/v1/chat/completions", acmeKey, hdr, chatBody(c.model, "lost", c.stream))
		if code == http.StatusOK && !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s (stream %v): %d %s; want an error", c.model, c.stream, code, b)
		}
	}
	want := []string{"1:user:kept", "1:assistant:pong: kept"}
	if got := g.restHistory(t, acmeKey, id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %q; want only the good turn %q", got, want)
	}
}

// redisForTest returns a client of the Redis at 127.0.0.1:6379 and a key prefix of this test
// alone, and deletes the prefix's keys (only those) when the test ends. It skips the test when
// no Redis answers.
func redisForTest(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Skipf("no Redis at 127.0.0.1:6379: %v", err)
	}
	prefix := "sy-e2e-" + uuid.NewString()[:8] + ":"
	t.Cleanup(func() { deletePrefix(t, rdb, prefix) })
	return rdb, prefix
}

// deletePrefix deletes every key starting with prefix, and nothing else.
func deletePrefix(t *testing.T, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan %s*: %v", prefix, err)
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			t.Errorf("delete %s*: %v", prefix, err)
		}
	}
}

// tieredYAML is the sessions section of instances sharing Redis (under prefix) and one SQLite
// archive file. strict_reads makes a memory hit check its version in Redis, so an instance never
// serves a copy another instance has made stale.
func tieredYAML(prefix, sqlite string) string {
	return fmt.Sprintf(`sessions:
  backend: tiered
  strict_reads: true
  redis: {addrs: [127.0.0.1:6379], prefix: %q}
  sql: {driver: sqlite, dsn: %q}
`, prefix, sqlite)
}

func grpcTurn(t *testing.T, g *sessionGateway, ctx context.Context, id, q string) {
	t.Helper()
	if _, err := g.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/gpt-ok", SessionId: id, Messages: []*pb.ChatMessage{textMsg("user", q)}}); err != nil {
		t.Fatalf("turn %q: %v", q, err)
	}
}

func grpcHistory(t *testing.T, g *sessionGateway, ctx context.Context, id string) []string {
	t.Helper()
	h, err := g.sessions.GetSessionHistory(ctx, &pb.GetSessionHistoryRequest{Id: id})
	if err != nil {
		t.Fatalf("history of %s: %v", id, err)
	}
	return lines(h.GetEntries())
}

// TestSessionsTwoInstances: two instances share Redis. A session created on A is continued on B
// (over REST with the header), and A, which holds the session in its memory tier, sees B's turn
// on its next read and continues after it.
func TestSessionsTwoInstances(t *testing.T) {
	_, prefix := redisForTest(t)
	extra := tieredYAML(prefix, t.TempDir()+"/archive.db")
	up := newFakeOpenAI(t)
	a := connectSessions(t, startYAML(t, sessionsYAML(up.URL, extra)), up)
	b := connectSessions(t, startYAML(t, sessionsYAML(up.URL, extra)), up)
	ctx := withKey(t.Context(), acmeKey)

	cr, err := a.sessions.CreateSession(ctx, &pb.CreateSessionRequest{Model: "up/gpt-ok"})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.GetSession().GetId()
	grpcTurn(t, a, ctx, id, "on A")
	if got := grpcHistory(t, a, ctx, id); len(got) != 2 {
		t.Fatalf("A's history = %q; want its own turn", got)
	}
	if code, body := b.rest(t, http.MethodPost, "/v1/chat/completions", acmeKey, map[string]string{"X-Switchyard-Session-Id": id}, chatBody("up/gpt-ok", "on B", false)); code != http.StatusOK {
		t.Fatalf("turn on B: %d %s", code, body)
	}
	want := []string{"1:user:on A", "1:assistant:pong: on A", "2:user:on B", "2:assistant:pong: on B"}
	if got := grpcHistory(t, a, ctx, id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("A's history after B's turn = %q; want %q", got, want)
	}
	grpcTurn(t, a, ctx, id, "on A again")
	if got := grpcHistory(t, b, ctx, id); len(got) != 6 || got[4] != "3:user:on A again" {
		t.Errorf("B's history = %q; want three turns, the third A's", got)
	}
	// Another tenant sees nothing on either instance.
	for _, g := range []*sessionGateway{a, b} {
		if _, err := g.sessions.GetSession(withKey(t.Context(), globexKey), &pb.GetSessionRequest{Id: id}); status.Code(err) != codes.NotFound {
			t.Errorf("another tenant's read = %v; want NOT_FOUND", err)
		}
	}
}

// TestSessionsRestart: an archived session survives its instance stopping and Redis losing
// every session key (the prefix is deleted); a session that was not archived does not.
func TestSessionsRestart(t *testing.T) {
	rdb, prefix := redisForTest(t)
	ctx := withKey(t.Context(), acmeKey)
	up := newFakeOpenAI(t)
	yaml := sessionsYAML(up.URL, tieredYAML(prefix, t.TempDir()+"/archive.db"))
	cfg, err := app.ParseConfig([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDataDir(t.TempDir())
	first, err := app.Start(t.Context(), cfg, app.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	g := connectSessions(t, first, up)
	archived, err := g.sessions.CreateSession(ctx, &pb.CreateSessionRequest{Model: "up/gpt-ok", Archive: true, SystemPrompt: "keep me"})
	if err != nil {
		t.Fatal(err)
	}
	transient, err := g.sessions.CreateSession(ctx, &pb.CreateSessionRequest{Model: "up/gpt-ok"})
	if err != nil {
		t.Fatal(err)
	}
	keep, lose := archived.GetSession().GetId(), transient.GetSession().GetId()
	grpcTurn(t, g, ctx, keep, "remember this")
	grpcTurn(t, g, ctx, lose, "forget this")
	stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Shutdown(stop); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	deletePrefix(t, rdb, prefix)

	g = connectSessions(t, startYAML(t, yaml), up)
	want := []string{"1:user:remember this", "1:assistant:pong: remember this"}
	if got := grpcHistory(t, g, ctx, keep); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("archived session after restart = %q; want %q", got, want)
	}
	grpcTurn(t, g, ctx, keep, "and this")
	if got := grpcHistory(t, g, ctx, keep); len(got) != 4 {
		t.Errorf("archived session after a new turn = %q; want two turns", got)
	}
	if _, err := g.sessions.GetSession(ctx, &pb.GetSessionRequest{Id: lose}); status.Code(err) != codes.NotFound {
		t.Errorf("unarchived session after restart and flush = %v; want NOT_FOUND", err)
	}
}
