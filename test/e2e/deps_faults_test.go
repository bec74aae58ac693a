package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/redisx/redistest"
)

// TestDependencyFaults stops, for real, each service the gateway depends on while traffic runs
// through a real instance, and checks what degrades, what is refused (class and status) and that
// nothing is lost or corrupted once the service is back. docs/operations-faults.md states each
// behaviour. The Redis and PostgreSQL servers are the test's own (never the shared ones).
func TestDependencyFaults(t *testing.T) {
	t.Run("redis", testRedisOutage)
	t.Run("postgres-sessions", testPostgresSessionsOutage)
	t.Run("postgres-sessions-without-redis", testPostgresOnlyArchiveOutage)
	t.Run("postgres-keys", testPostgresKeysOutage)
	t.Run("upstream-hangs", testUpstreamHangs)
	t.Run("dns", testUpstreamDNSFailure)
}

// outcome is one request of the traffic: its HTTP status and OpenAI error type and code.
type outcome struct {
	status                 int
	errType, code, message string
	attempts               string // x-switchyard-attempts
}

// restSend sends a JSON REST request with the bearer key, and a session header unless sid is "".
func restSend(ctx context.Context, addr, method, path, key, sid string, body any) (*http.Response, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(string(b)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	if sid != "" {
		req.Header.Set("X-Switchyard-Session-Id", sid)
	}
	return http.DefaultClient.Do(req)
}

// restCall sends a request as restSend does and returns the outcome.
func restCall(t *testing.T, addr, method, path, key, sid string, body any) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	resp, err := restSend(ctx, addr, method, path, key, sid, body)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return outcome{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	o := outcome{status: resp.StatusCode, attempts: resp.Header.Get("X-Switchyard-Attempts")}
	var e struct {
		Error *struct {
			Type, Code, Message string
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != nil {
		o.errType, o.code, o.message = e.Error.Type, e.Error.Code, e.Error.Message
	}
	return o
}

// wantServiceRefusal reports an outcome that is neither a success nor a 503 service-class
// refusal (what every dependency outage must look like to a client).
func wantServiceRefusal(t *testing.T, what string, o outcome) {
	t.Helper()
	if o.status != http.StatusOK && (o.status != http.StatusServiceUnavailable || o.errType != "api_error") {
		t.Errorf("%s: %d %s %q; want 200 or 503 api_error", what, o.status, o.errType, o.message)
	}
}

// turnLog records, per session, the turns sent in order and whether each was acknowledged.
type turnLog struct {
	mu    sync.Mutex
	turns map[string][]sentTurn
}

type sentTurn struct {
	text string
	ok   bool
}

func (l *turnLog) add(id, text string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.turns == nil {
		l.turns = map[string][]sentTurn{}
	}
	l.turns[id] = append(l.turns[id], sentTurn{text, ok})
}

// check compares a session's history ("turn:role:text" lines) with what was sent: every
// acknowledged turn is there, in the order sent, numbered 1, 2, 3..., each followed by its
// answer; a refused turn may be there too (its write may have reached the store before the
// connection broke), but nothing else, and nothing twice.
func (l *turnLog) check(t *testing.T, id string, history []string) {
	t.Helper()
	l.mu.Lock()
	sent := l.turns[id]
	l.mu.Unlock()
	n, i := 0, 0
	for _, s := range sent {
		if i+1 < len(history) && history[i] == fmt.Sprintf("%d:user:%s", n+1, s.text) {
			if history[i+1] != fmt.Sprintf("%d:assistant:pong: %s", n+1, s.text) {
				t.Errorf("session %s: turn %d answered %q", id, n+1, history[i+1])
			}
			i, n = i+2, n+1
			continue
		}
		if s.ok {
			t.Errorf("session %s: acknowledged turn %q missing at entry %d of %q", id, s.text, i, history)
			return
		}
	}
	if i != len(history) {
		t.Errorf("session %s: history %q has %d entries not sent in this order", id, history, len(history)-i)
	}
}

// traffic runs fn in a loop on n goroutines until stop is called, which waits for them.
func traffic(n int, fn func(worker, seq int)) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; !done.Load(); seq++ {
				fn(w, seq)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return func() { done.Store(true); wg.Wait() }
}

// waitFor polls ok every 50 ms for up to 20 s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testRedisOutage kills the Redis that holds the sessions (tiered: memory, Redis, SQLite
// archive) and the rate limits while turns and plain chats run, and starts it again.
// Plain chats never fail (limits fall back to per-instance memory); a session turn is served or
// refused with 503, never answered without being stored; after the restart every session takes
// turns again and every history holds every acknowledged turn, in order.
func testRedisOutage(t *testing.T) {
	rs := redistest.StartServer(t)
	up := newFakeOpenAI(t)
	extra := fmt.Sprintf(`sessions:
  backend: tiered
  redis: {addrs: [%s], prefix: "sy:sess:"}
  sql: {driver: sqlite, dsn: %q}
limits:
  backend: redis
  redis: {addrs: [%s]}
  on_redis_error: local
  default: {rpm: 100000}
`, rs.Addr(), t.TempDir()+"/archive.db", rs.Addr())
	g := connectSessions(t, startYAML(t, sessionsYAML(up.URL, extra)), up)
	addr := g.HTTPAddr()

	var ids []string
	for i := range 5 { // the fifth is not in the traffic: one turn while Redis is down
		var s pb.Session
		g.restInto(t, http.MethodPost, "/v1/sessions", acmeKey, nil, map[string]any{"model": "up/gpt-ok", "archive": i%2 == 0}, &s)
		ids = append(ids, s.GetId())
	}
	var (
		log   turnLog
		phase atomic.Value
		mu    sync.Mutex
		seen  = map[string]map[int]int{}   // phase → status → count, for turns and plain chats
		slow  = map[string]time.Duration{} // phase → the longest request
	)
	phase.Store("up")
	count := func(kind, during string, o outcome, took time.Duration) { // during: the phase at the start
		mu.Lock()
		defer mu.Unlock()
		k := during + "/" + kind
		if seen[k] == nil {
			seen[k] = map[int]int{}
		}
		seen[k][o.status]++
		slow[k] = max(slow[k], took)
	}
	quiet := ids[4]
	ids = ids[:4]
	stop := traffic(len(ids)+1, func(w, seq int) {
		start, during := time.Now(), phase.Load().(string)
		if w == len(ids) { // plain chats: only the limiter touches Redis
			o := restCall(t, addr, http.MethodPost, "/v1/chat/completions", acmeKey, "", chatBody("up/gpt-ok", "plain", false))
			count("chat", during, o, time.Since(start))
			if o.status != http.StatusOK {
				t.Errorf("plain chat started %s: %d %s %q; want 200 (limits fall back to memory)", during, o.status, o.errType, o.message)
			}
			return
		}
		text := fmt.Sprintf("s%d-t%d", w, seq)
		o := restCall(t, addr, http.MethodPost, "/v1/chat/completions", acmeKey, ids[w], chatBody("up/gpt-ok", text, false))
		count("turn", during, o, time.Since(start))
		wantServiceRefusal(t, "turn "+text, o)
		log.add(ids[w], text, o.status == http.StatusOK)
	})
	time.Sleep(500 * time.Millisecond)
	rs.Stop()
	phase.Store("down")
	time.Sleep(3 * time.Second)
	// New sessions need Redis (their authoritative tier): refused, clearly.
	o := restCall(t, addr, http.MethodPost, "/v1/sessions", acmeKey, "", map[string]any{"model": "up/gpt-ok"})
	if o.status != http.StatusServiceUnavailable {
		t.Errorf("create session with Redis down: %d %s %q; want 503", o.status, o.errType, o.message)
	}
	if o := restCall(t, addr, http.MethodPost, "/v1/chat/completions", acmeKey, quiet, chatBody("up/gpt-ok", "quiet", false)); o.status != http.StatusServiceUnavailable || o.errType != "api_error" {
		t.Errorf("turn with Redis down: %d %s %q; want 503 api_error", o.status, o.errType, o.message)
	}
	log.add(quiet, "quiet", false)
	rs.Start()
	phase.Store("back")
	// Every session takes turns again.
	waitFor(t, "turns succeed after Redis is back", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["back/turn"][http.StatusOK] >= 2*len(ids)
	})
	stop()
	t.Logf("outcomes by phase/kind → status: %v; longest request: %v", seen, slow)
	if v := metricValue(t, &gateway{Instance: g.Instance}, "switchyard_limits_store_errors_total"); v <= 0 {
		t.Errorf("switchyard_limits_store_errors_total = %v after the outage, want > 0", v)
	}
	for _, id := range append(ids, quiet) {
		log.check(t, id, g.restHistory(t, acmeKey, id))
	}
}

// testPostgresSessionsOutage stops the PostgreSQL that archives sessions (tiered: memory, Redis,
// PostgreSQL) during turns on an archived session. Turns keep succeeding from Redis; the archive
// writes fail (counted and logged); the first turn after the restart writes the whole session
// to the archive again, so the archive then holds every turn: a fresh instance reads the complete
// history from it after Redis lost everything.
func testPostgresSessionsOutage(t *testing.T) {
	pg := startPrivatePostgres(t)
	rs := redistest.StartServer(t)
	up := newFakeOpenAI(t)
	yaml := sessionsYAML(up.URL, fmt.Sprintf(`sessions:
  backend: tiered
  redis: {addrs: [%s], prefix: "sy:sess:"}
  sql: {driver: postgres, dsn: %q}
`, rs.Addr(), pg.dsn()))
	g := connectSessions(t, startYAML(t, yaml), up)
	addr := g.HTTPAddr()
	var s pb.Session
	g.restInto(t, http.MethodPost, "/v1/sessions", acmeKey, nil, map[string]any{"model": "up/gpt-ok", "archive": true}, &s)
	id := s.GetId()
	var log turnLog
	turn := func(text string) outcome {
		o := restCall(t, addr, http.MethodPost, "/v1/chat/completions", acmeKey, id, chatBody("up/gpt-ok", text, false))
		log.add(id, text, o.status == http.StatusOK)
		return o
	}
	turn("before")
	pg.stop()
	for i := range 3 {
		if o := turn(fmt.Sprintf("during-%d", i)); o.status != http.StatusOK {
			t.Errorf("turn with the archive down: %d %q; want 200 (Redis is authoritative)", o.status, o.message)
		}
	}
	if v := metricValue(t, &gateway{Instance: g.Instance}, "switchyard_session_archive_errors_total"); v < 3 {
		t.Errorf("switchyard_session_archive_errors_total = %v, want >= 3", v)
	}
	pg.start()
	n := 0 // each try is a turn of its own: a refused one may still be in the history
	waitFor(t, "a turn after PostgreSQL is back", func() bool { n++; return turn(fmt.Sprintf("after-%d", n)).status == http.StatusOK })
	want := g.restHistory(t, acmeKey, id)
	log.check(t, id, want)

	// Redis loses everything; a fresh instance reads the session from the archive alone.
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	fresh := connectSessions(t, startYAML(t, yaml), up)
	if got := fresh.restHistory(t, acmeKey, id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("archived history after the outage = %q; want %q", got, want)
	}
}

// testPostgresOnlyArchiveOutage stops the PostgreSQL of a tiered store without Redis (memory and
// the archive). An unarchived session lives in memory and keeps taking turns; an archived one,
// whose authoritative tier is the archive, and every create (it checks the archive for the id)
// answer 503; after the restart both sessions continue and their histories are complete.
func testPostgresOnlyArchiveOutage(t *testing.T) {
	pg := startPrivatePostgres(t)
	up := newFakeOpenAI(t)
	g := connectSessions(t, startYAML(t, sessionsYAML(up.URL, fmt.Sprintf(`sessions:
  backend: tiered
  sql: {driver: postgres, dsn: %q}
`, pg.dsn()))), up)
	var log turnLog
	turn := func(id, text string) outcome {
		o := restCall(t, g.HTTPAddr(), http.MethodPost, "/v1/chat/completions", acmeKey, id, chatBody("up/gpt-ok", text, false))
		log.add(id, text, o.status == http.StatusOK)
		return o
	}
	var archived, transient pb.Session
	g.restInto(t, http.MethodPost, "/v1/sessions", acmeKey, nil, map[string]any{"model": "up/gpt-ok", "archive": true}, &archived)
	g.restInto(t, http.MethodPost, "/v1/sessions", acmeKey, nil, map[string]any{"model": "up/gpt-ok"}, &transient)
	a, b := archived.GetId(), transient.GetId()
	turn(a, "a1")
	turn(b, "b1")
	pg.stop()
	if o := turn(b, "b2"); o.status != http.StatusOK {
		t.Errorf("unarchived turn with the archive down: %d %q; want 200", o.status, o.message)
	}
	if o := turn(a, "a2"); o.status != http.StatusServiceUnavailable || o.errType != "api_error" {
		t.Errorf("archived turn with the archive down: %d %s %q; want 503 api_error", o.status, o.errType, o.message)
	}
	if o := restCall(t, g.HTTPAddr(), http.MethodPost, "/v1/sessions", acmeKey, "", map[string]any{"model": "up/gpt-ok"}); o.status != http.StatusServiceUnavailable {
		t.Errorf("create with the archive down: %d %q; want 503", o.status, o.message)
	}
	pg.start()
	n := 0 // each try is a turn of its own: a refused one may still be in the history
	waitFor(t, "an archived turn after PostgreSQL is back", func() bool { n++; return turn(a, fmt.Sprintf("a3-%d", n)).status == http.StatusOK })
	turn(b, "b3")
	log.check(t, a, g.restHistory(t, acmeKey, a))
	log.check(t, b, g.restHistory(t, acmeKey, b))
}

// testPostgresKeysOutage stops the PostgreSQL holding the managed API keys. A key found before
// the outage keeps working while its cache entry lasts (cache_ttl), then answers 503, never 401;
// an unknown token answers 503 too (a database outage does not say "your key is invalid"),
// a token refused before the outage stays refused (401, cached), configured keys keep working,
// and everything answers as before once the database is back.
func testPostgresKeysOutage(t *testing.T) {
	pg := startPrivatePostgres(t)
	g := startKeysGateway(t, database.Config{Driver: "postgres", DSN: pg.dsn()}, "  cache_ttl: 2s\n")
	admin := withKey(t.Context(), keysAdminKey)
	ck, err := g.keys.CreateKey(admin, &pb.CreateKeyRequest{Name: "app", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	managed := ck.GetSecret()
	refused := "sk-sy-" + strings.Repeat("0", 64)
	unknown := "sk-sy-" + strings.Repeat("1", 64)
	chat := func(key string) outcome {
		return restCall(t, g.HTTPAddr(), http.MethodPost, "/v1/chat/completions", key, "", chatBody("up/gpt-ok", "hi", false))
	}
	if o := chat(refused); o.status != http.StatusUnauthorized {
		t.Fatalf("unknown key before the outage: %d; want 401", o.status)
	}
	if o := chat(managed); o.status != http.StatusOK {
		t.Fatalf("managed key before the outage: %d %q", o.status, o.message)
	}
	pg.stop()
	start := time.Now()
	checks := []struct {
		what   string
		key    string
		status int
	}{
		{"cached managed key", managed, http.StatusOK},
		{"configured key", keysClientKey, http.StatusOK},
		{"token refused before the outage", refused, http.StatusUnauthorized},
		{"unknown token", unknown, http.StatusServiceUnavailable},
	}
	for _, c := range checks {
		if o := chat(c.key); o.status != c.status {
			t.Errorf("%s with the database down: %d %s %q; want %d", c.what, o.status, o.errType, o.message, c.status)
		}
	}
	if time.Since(start) > 2*time.Second {
		t.Logf("checks took %v: the cache entry may have expired in between", time.Since(start))
	}
	if _, err := g.keys.CreateKey(admin, &pb.CreateKeyRequest{Name: "new", Tenant: "acme"}); status.Code(err) != codes.Unavailable {
		t.Errorf("CreateKey with the database down = %v; want UNAVAILABLE", err)
	}
	time.Sleep(2100*time.Millisecond - time.Since(start)) // the cache entry expires
	if o := chat(managed); o.status != http.StatusServiceUnavailable || o.errType != "api_error" {
		t.Errorf("managed key after cache_ttl with the database down: %d %s %q; want 503 api_error, never 401", o.status, o.errType, o.message)
	}
	pg.start()
	waitFor(t, "the managed key works after the database is back", func() bool { return chat(managed).status == http.StatusOK })
	if o := chat(unknown); o.status != http.StatusUnauthorized {
		t.Errorf("unknown token after the outage: %d; want 401", o.status)
	}
}

// hangingListener accepts TCP connections and never answers; it counts the connections and
// those the gateway closed.
type hangingListener struct {
	net.Listener
	accepted, closed atomic.Int32
}

func newHangingListener(t *testing.T) *hangingListener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingListener{Listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			go func() { // read (and ignore) the request until the peer closes
				_, _ = io.Copy(io.Discard, c)
				h.closed.Add(1)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return h
}

// stallingUpstream answers 200 with headers and a first piece of the answer (one SSE chunk, or
// half a JSON body), then sends nothing more until the gateway goes away; it counts the
// requests the gateway abandoned.
func stallingUpstream(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var gone atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Stream bool }
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"fi"},"finish_reason":null}]}`+"\n\n")
		} else {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"c1","object":"chat.compl`)
		}
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
		gone.Add(1)
	}))
	t.Cleanup(srv.Close)
	return srv, &gone
}

// testUpstreamHangs: an upstream that accepts connections and never answers, and one that
// stalls after the first bytes of its answer. Each request ends at the route's timeout with a
// service-class error (504 before the first chunk; an error event after it, at the route's
// stream_idle_timeout), the upstream connection is closed, and no goroutine is left behind.
func testUpstreamHangs(t *testing.T) {
	hang := newHangingListener(t)
	stall, gone := stallingUpstream(t)
	yaml := fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0, shutdown_timeout: 5s}
auth: {mode: api_key, api_keys: [{name: e2e, key: %q, tenant: e2e}]}
providers:
  - {name: mock, type: mock, models: [echo]}
  - {name: hang, type: openai, base_url: "http://%s/v1", api_key: k}
  - {name: slowhang, type: openai, base_url: "http://%s/v1", api_key: k, timeout: 400ms, retry: {max_retries: 1, initial_backoff: 1ms, max_backoff: 2ms}}
  - {name: stall, type: openai, base_url: "%s/v1", api_key: k}
routes:
  - name: hang
    targets: [{model: hang/m}]
    retry: {max_retries: 1, initial_backoff: 1ms, max_backoff: 2ms}
    breaker: {consecutive_failures: -1, error_rate: -1}
    attempt_timeout: 300ms
  - name: stall
    targets: [{model: stall/m}]
    retry: {max_retries: 0}
    breaker: {consecutive_failures: -1, error_rate: -1}
    timeout: 600ms
    stream_idle_timeout: 500ms
`, clientKey, hang.Addr(), hang.Addr(), stall.URL)
	inst := startYAML(t, yaml)
	addr := inst.HTTPAddr()
	chat := func(model string, stream bool) (outcome, time.Duration, string) {
		start := time.Now()
		body := chatBody(model, "hi", stream)
		if !stream {
			return restCall(t, addr, http.MethodPost, "/v1/chat/completions", clientKey, "", body), time.Since(start), ""
		}
		resp, err := restSend(t.Context(), addr, http.MethodPost, "/v1/chat/completions", clientKey, "", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var events strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events.WriteString(line + "\n")
			}
		}
		return outcome{status: resp.StatusCode}, time.Since(start), events.String()
	}
	chat("mock/echo", false) // warm up the gateway's pools and servers before counting goroutines
	time.Sleep(200 * time.Millisecond)
	base := runtime.NumGoroutine()

	cases := []struct {
		name, model string
		stream      bool
		status      int
		max         time.Duration
	}{
		{"no answer, attempt timeout, one retry", "hang", false, http.StatusGatewayTimeout, 2 * time.Second},
		{"no answer, provider timeout, one retry (pinned)", "slowhang/m", false, http.StatusGatewayTimeout, 2 * time.Second},
		{"no answer, streamed", "hang", true, http.StatusGatewayTimeout, 2 * time.Second},
		{"half a body, then nothing", "stall", false, http.StatusGatewayTimeout, 2 * time.Second},
	}
	for _, c := range cases {
		o, took, _ := chat(c.model, c.stream)
		if o.status != c.status || took > c.max {
			t.Errorf("%s: %d %s %q after %v; want %d within %v", c.name, o.status, o.errType, o.message, took, c.status, c.max)
		}
	}
	// Streamed, stalled after the first chunk: the client has its 200 and the chunk, then the
	// stream ends with an error event at the route's stream_idle_timeout (the route's timeout ends
	// with the first chunk).
	o, took, events := chat("stall", true)
	if o.status != http.StatusOK || !strings.Contains(events, `"fi"`) || !strings.Contains(events, "stream stalled") || took > 2*time.Second {
		t.Errorf("stalled stream: %d after %v with events\n%s\nwant 200, the chunk, then an error event within 2 s", o.status, took, events)
	}
	waitFor(t, "the gateway closes every upstream connection", func() bool {
		return hang.closed.Load() == hang.accepted.Load() && gone.Load() >= 2
	})
	if hang.accepted.Load() != 6 { // 2 attempts, 2 (pinned, retried under the provider's retry:), 2 streamed
		t.Errorf("hanging upstream got %d connections, want 6", hang.accepted.Load())
	}
	waitFor(t, fmt.Sprintf("goroutines back to %d (+5)", base), func() bool { return runtime.NumGoroutine() <= base+5 })
}

// testUpstreamDNSFailure: a provider whose host does not resolve (.invalid, RFC 6761) answers
// 503 with the service class, after the route's retries; the breaker then opens and refuses at
// once, without a lookup.
func testUpstreamDNSFailure(t *testing.T) {
	yaml := fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0, shutdown_timeout: 5s}
auth: {mode: api_key, api_keys: [{name: e2e, key: %q, tenant: e2e}]}
providers:
  - {name: nowhere, type: openai, base_url: "http://switchyard-e2e.invalid/v1", api_key: k}
routes:
  - name: dns
    targets: [{model: nowhere/m}]
    retry: {max_retries: 2, initial_backoff: 1ms, max_backoff: 2ms}
    breaker: {consecutive_failures: 3, error_rate: -1, open_for: 1m}
`, clientKey)
	inst := startYAML(t, yaml)
	dns := func() outcome {
		return restCall(t, inst.HTTPAddr(), http.MethodPost, "/v1/chat/completions", clientKey, "", chatBody("dns", "hi", false))
	}
	o := dns()
	if o.status != http.StatusServiceUnavailable || o.errType != "api_error" || o.attempts != "3" {
		t.Errorf("unresolvable host: %d %s %q after %s attempts; want 503 api_error after 3", o.status, o.errType, o.message, o.attempts)
	}
	if !strings.Contains(o.message, "unreachable") {
		t.Errorf("message %q does not say the upstream is unreachable", o.message)
	}
	start := time.Now()
	o = dns()
	if o.status != http.StatusServiceUnavailable || o.code != "circuit_open" || time.Since(start) > time.Second {
		t.Errorf("after 3 failures: %d %s %q in %v; want 503 circuit_open at once", o.status, o.code, o.message, time.Since(start))
	}
}
