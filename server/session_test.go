package server_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/sqlstore"
	"github.com/switchyard/switchyard/server"
)

// echoProvider answers "re: <last user text>" (streamed in two pieces), records every request,
// and fails when the last user text is "fail".
type echoProvider struct {
	mu   sync.Mutex
	reqs []*llm.ChatRequest
}

var errUpstream = llm.Errorf(llm.KindUpstream, "upstream broke")

func (p *echoProvider) record(req *llm.ChatRequest) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, req)
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == llm.RoleUser {
			return req.Messages[i].Text()
		}
	}
	return ""
}

func (p *echoProvider) last() *llm.ChatRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqs[len(p.reqs)-1]
}

func (p *echoProvider) Chat(_ context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	text := p.record(req)
	switch text {
	case "fail":
		return nil, errUpstream
	case "tool":
		return &llm.ChatResponse{Choices: []llm.Choice{{FinishReason: "tool_calls",
			ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "weather", Arguments: `{"city":"Paris"}`}}}}}, nil
	}
	return &llm.ChatResponse{Choices: []llm.Choice{{Content: llm.Ptr("re: " + text), FinishReason: "stop"}}}, nil
}

func (p *echoProvider) ChatStream(_ context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	text := p.record(req)
	fp := &fakeProvider{chunks: []*llm.Chunk{
		{Choices: []llm.ChunkChoice{{Role: llm.RoleAssistant, Content: llm.Ptr("re: ")}}},
		{Choices: []llm.ChunkChoice{{Content: llm.Ptr(text)}}},
		{Choices: []llm.ChunkChoice{{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "call_s", Name: "lookup"}}}}},
		{Choices: []llm.ChunkChoice{{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `{"q":`}}}}},
		{Choices: []llm.ChunkChoice{{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `1}`}}, FinishReason: "stop"}}},
	}}
	if text == "fail" {
		fp.midErr = errUpstream
	}
	return &sliceStream{p: fp, chunks: fp.chunks}, nil
}

type sessionClients struct {
	chat     pb.ChatServiceClient
	sessions pb.SessionServiceClient
	store    session.Store
	up       *echoProvider
}

// testPrincipal authenticates from the x-test-tenant, x-test-subject and x-test-scopes metadata.
func testPrincipal(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	p := &auth.Principal{Tenant: first("x-test-tenant"), Subject: first("x-test-subject")}
	if s := first("x-test-scopes"); s != "" {
		p.Scopes = strings.Split(s, ",")
	}
	if m := first("x-test-models"); m != "" {
		p.Models = strings.Split(m, ",")
	}
	return auth.NewContext(ctx, p)
}

// as returns a context calling as subject of tenant, with scopes.
func as(tenant, subject string, scopes ...string) context.Context {
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(
		"x-test-tenant", tenant, "x-test-subject", subject, "x-test-scopes", strings.Join(scopes, ",")))
}

// startSessions serves Register with sessions over a memstore and an echoProvider "up", with a
// fake authenticator and error mapping.
func startSessions(t testing.TB, cfg session.Config) sessionClients {
	t.Helper()
	return startSessionsWith(t, cfg, memstore.New())
}

// startSessionsWith is startSessions over store.
func startSessionsWith(t testing.TB, cfg session.Config, store session.Store) sessionClients {
	t.Helper()
	return startSessionsOn(t, session.NewManager(store, cfg), store)
}

// startSessionsOn is startSessions over m, whose store is store.
func startSessionsOn(t testing.TB, m *session.Manager, store session.Store) sessionClients {
	t.Helper()
	up := &echoProvider{}
	rt, err := router.Build(map[string]router.Backend{"up": {Provider: up}}, router.Config{ // short backoffs: a fast suite
		ProviderRetry: map[string]router.RetryConfig{"up": {InitialBackoff: time.Millisecond, RetryAfterCap: time.Millisecond}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	toStatus := func(err error) error {
		if err == nil {
			return nil
		}
		return errmap.ToStatus(err).Err()
	}
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(testPrincipal(ctx), req)
			return resp, toStatus(err)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return toStatus(h(srv, &principalStream{ss}))
		}),
	)
	server.Register(s, func() *router.Router { return rt }, server.WithSessions(m))
	lis := bufconn.Listen(1 << 20)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sessionClients{pb.NewChatServiceClient(conn), pb.NewSessionServiceClient(conn), store, up}
}

type principalStream struct{ grpc.ServerStream }

func (s *principalStream) Context() context.Context { return testPrincipal(s.ServerStream.Context()) }

func createSession(t testing.TB, c sessionClients, ctx context.Context, req *pb.CreateSessionRequest) string {
	t.Helper()
	resp, err := c.sessions.CreateSession(ctx, req)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return resp.GetSession().GetId()
}

func history(t *testing.T, c sessionClients, ctx context.Context, id string) []*pb.SessionEntry {
	t.Helper()
	h, err := c.sessions.GetSessionHistory(ctx, &pb.GetSessionHistoryRequest{Id: id})
	if err != nil {
		t.Fatalf("GetSessionHistory: %v", err)
	}
	return h.GetEntries()
}

// summary renders entries as "turn:role:text" lines, tool calls as "call name(args)".
func summary(entries []*pb.SessionEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		m := e.GetMessage()
		s := fmt.Sprintf("%d:%s:%s", e.GetTurn(), m.GetRole(), m.GetContent().GetText())
		for _, tc := range m.GetToolCalls() {
			s += fmt.Sprintf(" call %s(%s)", tc.GetFunction().GetName(), tc.GetFunction().GetArguments())
		}
		out[i] = s
	}
	return out
}

func TestSessionChatMergesAndAppends(t *testing.T) {
	c := startSessions(t, session.Config{})
	ctx := as("acme", "alice")
	id := createSession(t, c, ctx, &pb.CreateSessionRequest{Model: "up/m1", SystemPrompt: "be brief",
		Parameters: &pb.SessionParameters{Temperature: llm.Ptr(0.2), MaxTokens: llm.Ptr[int32](50), Stop: []string{"END"}}})

	var hdr metadata.MD
	resp, err := c.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("one"), SessionId: id}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetChoices()[0].GetMessage().GetContent(); got != "re: one" {
		t.Errorf("answer = %q; want re: one", got)
	}
	if got := hdr.Get(mdkey.SessionID); !slices.Equal(got, []string{id}) {
		t.Errorf("%s header = %v; want [%s]", mdkey.SessionID, got, id)
	}
	// The second turn names the session by header, and overrides the temperature.
	hctx := metadata.AppendToOutgoingContext(ctx, mdkey.SessionID, id)
	if _, err := c.chat.CreateChatCompletion(hctx, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("two"), Temperature: llm.Ptr(0.9)}); err != nil {
		t.Fatal(err)
	}
	req := c.up.last()
	var sent []string
	for _, m := range req.Messages {
		sent = append(sent, m.Role+":"+m.Text())
	}
	if want := []string{"system:be brief", "user:one", "assistant:re: one", "user:two"}; !slices.Equal(sent, want) {
		t.Errorf("sent upstream %q; want %q", sent, want)
	}
	if *req.Temperature != 0.9 || *req.MaxTokens != 50 || !slices.Equal(req.Stop, []string{"END"}) {
		t.Errorf("parameters temperature %v max_tokens %v stop %v; want 0.9 (request wins), 50, [END] (session)", *req.Temperature, *req.MaxTokens, req.Stop)
	}
	want := []string{"1:user:one", "1:assistant:re: one", "2:user:two", "2:assistant:re: two"}
	if got := summary(history(t, c, ctx, id)); !slices.Equal(got, want) {
		t.Errorf("history %q; want %q", got, want)
	}
	got, err := c.sessions.GetSession(ctx, &pb.GetSessionRequest{Id: id})
	if err != nil || got.GetSession().GetTurns() != 2 || got.GetSession().GetVersion() != 3 {
		t.Errorf("GetSession = %v, %v; want turns 2, version 3", got, err)
	}
}

func TestSessionChatOwnSystemMessageWins(t *testing.T) {
	c := startSessions(t, session.Config{})
	ctx := as("acme", "alice")
	id := createSession(t, c, ctx, &pb.CreateSessionRequest{Model: "up/m1", SystemPrompt: "session prompt"})
	msgs := append([]*pb.ChatMessage{{Role: "system", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: "mine"}}}}, userMsg("hi")...)
	if _, err := c.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: msgs, SessionId: id}); err != nil {
		t.Fatal(err)
	}
	if m := c.up.last().Messages; len(m) != 2 || m[0].Text() != "mine" {
		t.Errorf("sent %d messages, first %q; want the request's own system message only", len(m), m[0].Text())
	}
}

func TestSessionChatToolCallsAndStreams(t *testing.T) {
	c := startSessions(t, session.Config{})
	ctx := as("acme", "alice")
	id := createSession(t, c, ctx, &pb.CreateSessionRequest{Model: "up/m1"})
	if _, err := c.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("tool"), SessionId: id}); err != nil {
		t.Fatal(err)
	}
	st, err := c.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("streamed"), SessionId: id}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream: %v", err)
			}
			break
		}
	}
	want := []string{
		"1:user:tool", `1:assistant: call weather({"city":"Paris"})`,
		"2:user:streamed", `2:assistant:re: streamed call lookup({"q":1})`,
	}
	if got := summary(history(t, c, ctx, id)); !slices.Equal(got, want) {
		t.Errorf("history %q; want %q", got, want)
	}
}

// A failed call, blocking or streamed (before or after chunks were sent), appends nothing.
func TestSessionChatFailureAppendsNothing(t *testing.T) {
	c := startSessions(t, session.Config{})
	ctx := as("acme", "alice")
	id := createSession(t, c, ctx, &pb.CreateSessionRequest{Model: "up/m1"})
	if _, err := c.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("fail"), SessionId: id}); status.Code(err) != codes.Unavailable {
		t.Errorf("blocking call error = %v; want UNAVAILABLE", err)
	}
	st, err := c.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("fail"), SessionId: id}})
	if err != nil {
		t.Fatal(err)
	}
	var streamErr error
	for streamErr == nil {
		_, streamErr = st.Recv()
	}
	if status.Code(streamErr) != codes.Unavailable {
		t.Errorf("stream error = %v; want UNAVAILABLE", streamErr)
	}
	if h := history(t, c, ctx, id); len(h) != 0 {
		t.Errorf("history after failures = %q; want empty", summary(h))
	}
	if _, err := c.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("ok"), SessionId: id}); err != nil {
		t.Fatal(err)
	}
	if got := summary(history(t, c, ctx, id)); !slices.Equal(got, []string{"1:user:ok", "1:assistant:re: ok"}) {
		t.Errorf("history %q; want the one good turn as turn 1", got)
	}
}

func TestSessionConcurrentTurns(t *testing.T) {
	const n = 20
	c := startSessions(t, session.Config{})
	ctx := as("acme", "alice")
	id := createSession(t, c, ctx, &pb.CreateSessionRequest{Model: "up/m1"})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := c.chat.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg(fmt.Sprint("q", i)), SessionId: id})
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
	checkTurns(t, history(t, c, ctx, id), n)
}

// checkTurns checks that h holds exactly n turns, numbered 1..n in order, each a user message
// followed by the answer to that very message, and every question exactly once.
func checkTurns(t *testing.T, h []*pb.SessionEntry, n int) {
	t.Helper()
	if len(h) != 2*n {
		t.Fatalf("history has %d entries; want %d", len(h), 2*n)
	}
	seen := make(map[string]bool)
	for i := 0; i < len(h); i += 2 {
		u, a := h[i], h[i+1]
		q := u.GetMessage().GetContent().GetText()
		if u.GetTurn() != int64(i/2+1) || a.GetTurn() != u.GetTurn() || u.GetMessage().GetRole() != "user" ||
			a.GetMessage().GetRole() != "assistant" || a.GetMessage().GetContent().GetText() != "re: "+q || seen[q] {
			t.Fatalf("entries %d, %d = %q; want turn %d: a new question and its answer", i, i+1, summary(h[i:i+2]), i/2+1)
		}
		seen[q] = true
	}
}

func TestSessionTenantIsolation(t *testing.T) {
	c := startSessions(t, session.Config{})
	owner, other := as("acme", "alice"), as("globex", "alice")
	id := createSession(t, c, owner, &pb.CreateSessionRequest{Model: "up/m1"})
	missing := "0190d8f2-7a4b-7c3d-8e5f-0123456789ab"
	for _, probe := range []string{id, missing, "not-a-uuid"} {
		calls := map[string]func() error{
			"get": func() error { _, err := c.sessions.GetSession(other, &pb.GetSessionRequest{Id: probe}); return err },
			"history": func() error {
				_, err := c.sessions.GetSessionHistory(other, &pb.GetSessionHistoryRequest{Id: probe})
				return err
			},
			"update": func() error {
				_, err := c.sessions.UpdateSession(other, &pb.UpdateSessionRequest{Id: probe, SystemPrompt: llm.Ptr("x")})
				return err
			},
			"delete": func() error {
				_, err := c.sessions.DeleteSession(other, &pb.DeleteSessionRequest{Id: probe})
				return err
			},
			"chat": func() error {
				_, err := c.chat.CreateChatCompletion(other, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("x"), SessionId: probe})
				return err
			},
		}
		for name, call := range calls {
			err := call()
			want := fmt.Sprintf("session %q not found", probe)
			if status.Code(err) != codes.NotFound || status.Convert(err).Message() != want {
				t.Errorf("%s(%s) as another tenant = %v; want NOT_FOUND %q", name, probe, err, want)
			}
		}
	}
	if l, err := c.sessions.ListSessions(other, &pb.ListSessionsRequest{}); err != nil || len(l.GetSessions()) != 0 {
		t.Errorf("ListSessions as another tenant = %v, %v; want none", l, err)
	}
	if h := history(t, c, owner, id); len(h) != 0 {
		t.Errorf("owner's history = %q; want untouched", summary(h))
	}
}

func TestSessionServiceCRUD(t *testing.T) {
	c := startSessions(t, session.Config{})
	ctx := as("acme", "alice")
	var ids []string
	for i := range 3 {
		ids = append(ids, createSession(t, c, ctx, &pb.CreateSessionRequest{Model: "up/m1", Metadata: map[string]string{"n": fmt.Sprint(i), "keep": "k"}}))
	}
	createSession(t, c, ctx, &pb.CreateSessionRequest{Model: "up/m1", User: "bob"})

	got, err := c.sessions.GetSession(ctx, &pb.GetSessionRequest{Id: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.GetSession(); s.GetUser() != "alice" || s.GetTtl().AsDuration() != session.DefaultTTL || s.GetVersion() != 1 {
		t.Errorf("session = %v; want user alice, the default TTL, version 1", s)
	}

	var listed []string
	token := ""
	for {
		page, err := c.sessions.ListSessions(ctx, &pb.ListSessionsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.GetSessions() {
			listed = append(listed, s.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if want := []string{ids[2], ids[1], ids[0]}; !slices.Equal(listed, want) {
		t.Errorf("listed %v; want alice's sessions newest first %v", listed, want)
	}

	up, err := c.sessions.UpdateSession(ctx, &pb.UpdateSessionRequest{Id: ids[0], Model: llm.Ptr("up/m2"), Archive: llm.Ptr(true),
		Metadata: map[string]string{"n": "", "new": "v"}, Ttl: durationpb.New(3600e9)})
	if err != nil {
		t.Fatal(err)
	}
	s := up.GetSession()
	if s.GetModel() != "up/m2" || !s.GetArchive() || s.GetTtl().AsDuration().Hours() != 1 || s.GetVersion() != 2 ||
		len(s.GetMetadata()) != 2 || s.GetMetadata()["keep"] != "k" || s.GetMetadata()["new"] != "v" {
		t.Errorf("updated session = %v; want model up/m2, archived, 1h, version 2, metadata {keep:k new:v}", s)
	}

	if _, err := c.sessions.DeleteSession(ctx, &pb.DeleteSessionRequest{Id: ids[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sessions.GetSession(ctx, &pb.GetSessionRequest{Id: ids[0]}); status.Code(err) != codes.NotFound {
		t.Errorf("GetSession after delete = %v; want NOT_FOUND", err)
	}
}

func TestSessionServiceInvalid(t *testing.T) {
	c := startSessions(t, session.Config{})
	ctx := as("acme", "alice")
	for name, req := range map[string]*pb.CreateSessionRequest{
		"no model":     {},
		"temperature":  {Model: "up/m1", Parameters: &pb.SessionParameters{Temperature: llm.Ptr(3.0)}},
		"negative ttl": {Model: "up/m1", Ttl: durationpb.New(-1)},
		"five stops":   {Model: "up/m1", Parameters: &pb.SessionParameters{Stop: []string{"a", "b", "c", "d", "e"}}},
	} {
		if _, err := c.sessions.CreateSession(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: CreateSession = %v; want INVALID_ARGUMENT", name, err)
		}
	}
}

func TestSessionExportErase(t *testing.T) {
	c := startSessions(t, session.Config{})
	alice, admin, carol := as("acme", "alice"), as("acme", "ops", "admin"), as("acme", "carol")
	id := createSession(t, c, alice, &pb.CreateSessionRequest{Model: "up/m1"})
	createSession(t, c, alice, &pb.CreateSessionRequest{Model: "up/m1"})
	createSession(t, c, as("globex", "alice"), &pb.CreateSessionRequest{Model: "up/m1"})
	if _, err := c.chat.CreateChatCompletion(alice, &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("hi"), SessionId: id}); err != nil {
		t.Fatal(err)
	}

	exp, err := c.sessions.ExportUserSessions(alice, &pb.ExportUserSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var turns []int
	for _, e := range exp.GetSessions() {
		if e.GetSession().GetId() == id {
			turns = append(turns, len(e.GetHistory()))
		} else {
			turns = append(turns, -len(e.GetHistory()))
		}
	}
	if slices.Sort(turns); !slices.Equal(turns, []int{0, 2}) {
		t.Errorf("export = %v; want alice's 2 sessions of acme, the one she chatted in with 2 messages", exp)
	}
	if _, err := c.sessions.ExportUserSessions(carol, &pb.ExportUserSessionsRequest{User: "alice"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("export of another user without admin = %v; want PERMISSION_DENIED", err)
	}
	if _, err := c.sessions.EraseUserSessions(carol, &pb.EraseUserSessionsRequest{User: "alice"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("erase of another user without admin = %v; want PERMISSION_DENIED", err)
	}
	er, err := c.sessions.EraseUserSessions(admin, &pb.EraseUserSessionsRequest{User: "alice"})
	if err != nil || er.GetErased() != 2 {
		t.Errorf("erase by admin = %v, %v; want 2 erased", er, err)
	}
	if l, err := c.sessions.ListSessions(as("globex", "alice"), &pb.ListSessionsRequest{}); err != nil || len(l.GetSessions()) != 1 {
		t.Errorf("globex's alice after acme's erase = %v, %v; want her one session kept", l, err)
	}
}

// TestEraseUserSessionsCallsUserEraser: the user eraser runs after the sessions are deleted, for
// the caller's tenant and the named user; when it fails the call fails (UNAVAILABLE) and a retry
// completes the erasure.
func TestEraseUserSessionsCallsUserEraser(t *testing.T) {
	type call struct{ tenant, user string }
	var calls []call
	fail := true
	store := memstore.New()
	m := session.NewManager(store, session.Config{})
	m.SetUserEraser(func(_ context.Context, tenant, user string) (int64, error) {
		calls = append(calls, call{tenant, user})
		if fail {
			return 0, errors.New("audit database down")
		}
		return 3, nil
	})
	c := startSessionsOn(t, m, store)
	alice, admin := as("acme", "alice"), as("acme", "ops", "admin")
	createSession(t, c, alice, &pb.CreateSessionRequest{Model: "up/m1"})

	if _, err := c.sessions.EraseUserSessions(admin, &pb.EraseUserSessionsRequest{User: "alice"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("erase with the eraser failing = %v; want UNAVAILABLE", err)
	}
	if l, err := c.sessions.ListSessions(alice, &pb.ListSessionsRequest{}); err != nil || len(l.GetSessions()) != 0 {
		t.Errorf("sessions after the failed erase: %v, %v; want none (they go first)", l, err)
	}
	fail = false
	er, err := c.sessions.EraseUserSessions(alice, &pb.EraseUserSessionsRequest{})
	if err != nil || er.GetErased() != 0 {
		t.Errorf("retry = %v, %v; want 0 sessions left to erase", er, err)
	}
	if want := []call{{"acme", "alice"}, {"acme", "alice"}}; !slices.Equal(calls, want) {
		t.Errorf("eraser calls %v, want %v", calls, want)
	}
}

func TestSessionsDisabled(t *testing.T) {
	c := start(t, map[string]router.Backend{"up": {Provider: &echoProvider{}}}, nil)
	_, err := c.chat.CreateChatCompletion(context.Background(), &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("x"), SessionId: "0190d8f2-7a4b-7c3d-8e5f-0123456789ab"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("chat with a session on a gateway without sessions = %v; want INVALID_ARGUMENT", err)
	}
}

// BenchmarkChatTurn compares a blocking chat turn without a session to turns that load a session
// (up to 10 turns of history), merge it and append the turn, with the session in each tier alone:
// memory (a hit), Redis at 127.0.0.1:6379 (skipped when absent) and SQLite.
func BenchmarkChatTurn(b *testing.B) {
	b.Run("without session", func(b *testing.B) {
		c := startSessions(b, session.Config{})
		ctx := as("acme", "alice")
		req := &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("hello there")}
		for b.Loop() {
			if _, err := c.chat.CreateChatCompletion(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session in memory", func(b *testing.B) { benchSessionTurns(b, memstore.New()) })
	b.Run("session in Redis", func(b *testing.B) {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		b.Cleanup(func() { rdb.Close() })
		if err := rdb.Ping(b.Context()).Err(); err != nil {
			b.Skipf("no Redis: %v", err)
		}
		prefix := "sy-bench-" + rand.Text()[:8] + ":"
		b.Cleanup(func() {
			keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
			if len(keys) > 0 {
				rdb.Del(context.Background(), keys...)
			}
		})
		benchSessionTurns(b, redisstore.New(rdb, nil, redisstore.WithPrefix(prefix)))
	})
	b.Run("session in SQLite", func(b *testing.B) {
		db, err := database.Open(b.Context(), database.Config{Driver: database.SQLite, DSN: b.TempDir() + "/s.db"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		st, err := sqlstore.New(b.Context(), db, nil)
		if err != nil {
			b.Fatal(err)
		}
		benchSessionTurns(b, st)
	})
}

func benchSessionTurns(b *testing.B, store session.Store) {
	c := startSessionsWith(b, session.Config{}, store)
	ctx := as("acme", "alice")
	req := &pb.CreateChatCompletionRequest{Model: "up/m1", Messages: userMsg("hello there")}
	i := 0
	for b.Loop() {
		if i%10 == 0 {
			b.StopTimer()
			req.SessionId = createSession(b, c, ctx, &pb.CreateSessionRequest{Model: "up/m1", SystemPrompt: "be brief"})
			b.StartTimer()
		}
		i++
		if _, err := c.chat.CreateChatCompletion(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSessionChatRechecksTheSessionModel: a caller whose credentials do not allow the session's
// model cannot continue the session by leaving the model out.
func TestSessionChatRechecksTheSessionModel(t *testing.T) {
	c := startSessions(t, session.Config{})
	id := createSession(t, c, as("acme", "alice"), &pb.CreateSessionRequest{Model: "up/m1"})
	narrow := metadata.AppendToOutgoingContext(as("acme", "alice"), "x-test-models", "up/other")
	_, err := c.chat.CreateChatCompletion(narrow, &pb.CreateChatCompletionRequest{Messages: userMsg("one"), SessionId: id})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("continuing with credentials for up/other only: %v; want PermissionDenied", err)
	}
	if got := summary(history(t, c, as("acme", "alice"), id)); len(got) != 0 {
		t.Errorf("history %q; want nothing appended", got)
	}
	wide := metadata.AppendToOutgoingContext(as("acme", "alice"), "x-test-models", "up/*")
	if _, err := c.chat.CreateChatCompletion(wide, &pb.CreateChatCompletionRequest{Messages: userMsg("two"), SessionId: id}); err != nil {
		t.Fatalf("continuing with credentials for up/*: %v", err)
	}
}
