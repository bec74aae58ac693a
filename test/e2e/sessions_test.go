package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
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
	return resp.StatusCode, b
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
	hdr := map[string]string{"X-Switchyard-Session-Id": s.GetId()}
	code, b := g.rest(t, http.MethodPost, "/v1/chat/completions", acmeKey, hdr, chatBody("up/gpt-ok", "first", false))
	if code != http.StatusOK || !strings.Contains(string(b), "pong: first") {
		t.Fatalf("first turn: %d %s", code, b)
	}
	code, b = g.rest(t, http.MethodPost, "/v1/chat/completions", acmeKey, hdr, chatBody("up/gpt-ok", "second", true))
	if code != http.StatusOK || !strings.Contains(string(b), "data: [DONE]") {
		t.Fatalf("second turn (streamed): %d %s", code, b)
	}
	sent := g.up.last().Body
	msgs, _ := sent["messages"].([]any)
	if len(msgs) != 4 || sent["temperature"] != 0.3 {
		t.Errorf("second upstream request = %v; want system, user, assistant, user and the session's temperature", sent)
	}
	want := []string{"1:user:first", "1:assistant:pong: first", "2:user:second", "2:assistant:pong: second"}
	if got := g.restHistory(t, acmeKey, s.GetId()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %q; want %q", got, want)
	}

	var list pb.ListSessionsResponse
	g.restInto(t, http.MethodGet, "/v1/sessions?page_size=10", acmeKey, nil, nil, &list)
	if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetTurns() != 2 {
		t.Errorf("list = %v; want the one session with 2 turns", &list)
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
