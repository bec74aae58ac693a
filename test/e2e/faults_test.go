package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/database"
)

// faultUpstream is an OpenAI-compatible server whose model name picks a fault. Every request is
// counted per model, so a test can tell how many attempts reached it.
//
//	ok         a normal answer "fine" (JSON or SSE)
//	s401 s403 s400 s404 s413 s500 s502 s503 s529   that status with an OpenAI error body
//	s429       429 without Retry-After;  s429ra  429 with Retry-After: 1
//	hang       never sends headers; returns when the gateway gives up
//	reset      blocking: headers and half a body, then the connection drops;
//	           streaming: one chunk, then the connection drops
//	event      200, then an error instead of an answer (an SSE error event / an error object)
//	eventmid   streaming: one chunk, then an SSE error event
type faultUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newFaultUpstream(t *testing.T) *faultUpstream {
	f := &faultUpstream{hits: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *faultUpstream) count(model string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[model]
}

func (f *faultUpstream) serve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.hits[body.Model]++
	f.mu.Unlock()

	if strings.HasPrefix(body.Model, "s") {
		code, _ := strconv.Atoi(strings.TrimSuffix(body.Model[1:], "ra"))
		if strings.HasSuffix(body.Model, "ra") {
			w.Header().Set("Retry-After", "1")
		}
		typ := map[int]string{401: "invalid_request_error", 403: "permission_error", 404: "invalid_request_error",
			429: "rate_limit_error", 529: "overloaded_error"}[code]
		if typ == "" {
			typ = "server_error"
		}
		if code == 400 || code == 413 {
			typ = "invalid_request_error"
		}
		writeErr(w, code, typ, fmt.Sprintf("upstream says %d", code))
		return
	}
	rc := http.NewResponseController(w)
	chunk := `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"fine"},"finish_reason":null}]}`
	errObj := `{"error":{"message":"upstream broke mid-answer","type":"server_error","param":null,"code":null}}`
	switch body.Model {
	case "hang":
		<-r.Context().Done()
		return
	case "reset":
		if body.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: %s\n\n", chunk)
		} else {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "400")
			io.WriteString(w, `{"id":"c1","object":"chat.compl`)
		}
		_ = rc.Flush()
		if conn, _, err := rc.Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	case "event":
		if body.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", errObj)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, errObj)
		return
	case "eventmid":
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", chunk)
		_ = rc.Flush()
		fmt.Fprintf(w, "event: error\ndata: %s\n\n", errObj)
		return
	}
	if body.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", chunk)
		fmt.Fprintf(w, "data: %s\n\n", strings.Replace(chunk, `"finish_reason":null`, `"finish_reason":"stop"`, 1))
		io.WriteString(w, "data: [DONE]\n\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"ok","choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
}

// fault is one row of the matrix: the upstream's fault, reached through route "solo-<name>"
// (the faulty target alone: retries only) and route "fb-<name>" (the faulty target, then a
// healthy fallback).
type fault struct {
	name, model string // model on the faulty provider ("flaky", or "dead" for a closed port)
	dead        bool
	streamOnly  bool
	midStream   bool // streamed, the fault comes after the first chunk: committed, no retry, no fallback

	class  string // class the client sees without a fallback
	status int    // HTTP status the client sees without a fallback
	tries  int    // attempts on the faulty target per request
	falls  bool   // whether the fallback serves
}

// faultMatrix lists the faults. Retries are max_retries 2 (3 attempts) for retryable kinds.
var faultMatrix = []fault{
	{name: "401", model: "s401", class: "authentication", status: 401, tries: 1, falls: true},
	{name: "403", model: "s403", class: "authentication", status: 403, tries: 1, falls: true},
	{name: "400", model: "s400", class: "parameter", status: 400, tries: 1, falls: false},
	{name: "404-model", model: "s404", class: "parameter", status: 404, tries: 1, falls: true},
	{name: "413", model: "s413", class: "parameter", status: 413, tries: 1, falls: false},
	{name: "429", model: "s429", class: "quota", status: 429, tries: 3, falls: true},
	{name: "429-retry-after", model: "s429ra", class: "quota", status: 429, tries: 3, falls: true},
	{name: "500", model: "s500", class: "service", status: 502, tries: 3, falls: true},
	{name: "502", model: "s502", class: "service", status: 502, tries: 3, falls: true},
	{name: "503", model: "s503", class: "service", status: 503, tries: 3, falls: true},
	{name: "529", model: "s529", class: "quota", status: 429, tries: 3, falls: true},
	{name: "connect-refused", model: "any", dead: true, class: "service", status: 503, tries: 3, falls: true},
	{name: "timeout-before-headers", model: "hang", class: "service", status: 504, tries: 3, falls: true},
	{name: "reset", model: "reset", midStream: true, class: "service", status: 502, tries: 3, falls: true},
	{name: "error-event-in-200", model: "event", class: "service", status: 502, tries: 3, falls: true},
	{name: "error-event-after-chunk", model: "eventmid", streamOnly: true, midStream: true, class: "service", status: 200, tries: 1, falls: false},
}

// startFaultGateway starts Switchyard with a faulty provider, a dead one and a healthy backup.
// The faulty and dead providers carry the same retry policy as the routes (for pinned names) and
// the faulty one a 200ms call timeout, which bounds pinned calls that hang (routes cut them at
// their attempt_timeout first). extra is appended to the config.
func startFaultGateway(t *testing.T, up *faultUpstream, extra ...string) *app.Instance {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + lis.Addr().String() + "/v1"
	_ = lis.Close() // connections to it are refused from now on

	const pinnedRetry = `retry: {max_retries: 2, initial_backoff: 1ms, max_backoff: 2ms, retry_after_cap: 5ms}`
	var routes strings.Builder
	policy := `retry: {max_retries: 2, initial_backoff: 1ms, max_backoff: 2ms, retry_after_cap: 5ms}
    breaker: {consecutive_failures: -1, error_rate: -1}
    attempt_timeout: 150ms`
	for _, f := range faultMatrix {
		prov := "flaky"
		if f.dead {
			prov = "dead"
		}
		fmt.Fprintf(&routes, "  - name: solo-%s\n    targets: [{model: %s/%s}]\n    %s\n", f.name, prov, f.model, policy)
		fmt.Fprintf(&routes, "  - name: fb-%s\n    targets: [{model: %s/%s}, {model: backup/ok}]\n    %s\n", f.name, prov, f.model, policy)
	}
	yaml := fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0, shutdown_timeout: 5s}
providers:
  - {name: flaky, type: openai, base_url: %q, api_key: k1, timeout: 200ms, %s}
  - {name: dead, type: openai, base_url: %q, api_key: k2, %s}
  - {name: backup, type: openai, base_url: %q, api_key: k3}
routes:
%s%s`, up.URL+"/v1", pinnedRetry, deadURL, pinnedRetry, up.URL+"/v1", routes.String(), strings.Join(extra, ""))
	cfg, err := app.ParseConfig([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.SetDataDir(t.TempDir())
	inst, err := app.Start(t.Context(), cfg, app.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = inst.Shutdown(ctx)
	})
	return inst
}

// answer is what a REST client received.
type answer struct {
	status            int
	errType           string
	chunks            int  // SSE content chunks received
	streamErr         bool // an SSE error event arrived
	attempts, route   string
	decision, content string
}

func (a answer) String() string {
	s := strconv.Itoa(a.status)
	if a.errType != "" {
		s += " " + a.errType
	}
	if a.chunks > 0 || a.streamErr {
		s += fmt.Sprintf(" chunks=%d", a.chunks)
	}
	if a.streamErr {
		s += "+error-event"
	}
	return s
}

func restChat(t *testing.T, addr, model string, stream bool) answer {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, model, stream)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", model, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, attempts: resp.Header.Get("X-Switchyard-Attempts"),
		route: resp.Header.Get("X-Switchyard-Route"), decision: resp.Header.Get("X-Switchyard-Route-Decision")}
	if resp.StatusCode != http.StatusOK || !stream {
		var out struct {
			Error *struct {
				Type string `json:"type"`
			} `json:"error"`
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if out.Error != nil {
			a.errType = out.Error.Type
		}
		if len(out.Choices) > 0 {
			a.content = out.Choices[0].Message.Content
		}
		return a
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		if strings.HasPrefix(line, `{"error"`) {
			a.streamErr = true
			continue
		}
		a.chunks++
		a.content += "chunk "
	}
	return a
}

func classOf(status int) string {
	switch {
	case status == 401 || status == 403:
		return "authentication"
	case status == 429:
		return "quota"
	case status == 400 || status == 404 || status == 413:
		return "parameter"
	case status >= 500:
		return "service"
	}
	return ""
}

// TestFaultMatrix injects each upstream fault, blocking and streamed, through a route without and
// with a fallback, and checks the class the client sees, the attempts that reached the faulty
// upstream (counted there, and reported in x-switchyard-attempts), whether the fallback served,
// and what the client received. Nothing is retried once a chunk has reached the client.
func TestFaultMatrix(t *testing.T) {
	up := newFaultUpstream(t)
	inst := startFaultGateway(t, up)

	var table strings.Builder
	fmt.Fprintf(&table, "\n%-24s %-6s %-15s %-8s %-26s | %-8s %-9s %-14s %s\n",
		"fault", "mode", "class", "attempts", "client (no fallback)", "attempts", "fallback", "answered by", "client (with fallback)")
	for _, f := range faultMatrix {
		for _, stream := range []bool{false, true} {
			if f.streamOnly && !stream {
				continue
			}
			mode := "block"
			if stream {
				mode = "stream"
			}
			f := f
			if stream && f.midStream {
				f.status, f.tries, f.falls = 200, 1, false
			}
			t.Run(f.name+"/"+mode, func(t *testing.T) {
				hits := func() int {
					if f.dead {
						return 0
					}
					return up.count(f.model)
				}

				// Without a fallback: the class and the retries.
				before := hits()
				solo := restChat(t, inst.HTTPAddr(), "solo-"+f.name, stream)
				soloHits := hits() - before
				if solo.status != f.status {
					t.Errorf("solo: status %d, want %d", solo.status, f.status)
				}
				if got := classOf(solo.status); f.status != 200 && got != f.class {
					t.Errorf("solo: class %s, want %s", got, f.class)
				}
				// The REST edge drops response headers of a stream that fails before its first
				// chunk (a gateway limitation); the upstream's hit count shows the attempts there.
				if (!stream || solo.status == 200) && solo.attempts != strconv.Itoa(f.tries) {
					t.Errorf("solo: x-switchyard-attempts %q, want %d", solo.attempts, f.tries)
				}
				if !f.dead && soloHits != f.tries {
					t.Errorf("solo: upstream hit %d times, want %d", soloHits, f.tries)
				}

				// With a fallback.
				before, beforeOK := hits(), up.count("ok")
				fb := restChat(t, inst.HTTPAddr(), "fb-"+f.name, stream)
				fbHits, okHits := hits()-before, up.count("ok")-beforeOK
				wantAttempts := f.tries
				if f.falls {
					wantAttempts++
				}
				if fb.attempts != strconv.Itoa(wantAttempts) {
					if !stream || fb.status == 200 {
						t.Errorf("fallback: x-switchyard-attempts %q, want %d", fb.attempts, wantAttempts)
					}
				}
				if !f.dead && fbHits != f.tries {
					t.Errorf("fallback: faulty upstream hit %d times, want %d", fbHits, f.tries)
				}
				if f.falls {
					if okHits != 1 || fb.status != 200 || fb.route != "backup/ok" || !strings.Contains(fb.content, "fine") && fb.chunks == 0 {
						t.Errorf("fallback: backup hit %d, answer %v by %q, want 200 by backup/ok", okHits, fb, fb.route)
					}
				} else {
					if okHits != 0 || fb.status != solo.status {
						t.Errorf("fallback: backup hit %d, answer %v, want no fallback and %d", okHits, fb, solo.status)
					}
				}
				if stream && f.midStream {
					// Bytes reached the client: the stream ends with an error event, nothing retried.
					if fb.chunks != 1 || !fb.streamErr || fb.route != "flaky/"+f.model {
						t.Errorf("mid-stream: %v by %q, want 1 chunk then an error event from the faulty target", fb, fb.route)
					}
				}
				if (!stream || fb.status == 200) && !strings.HasPrefix(fb.decision, "strategy=priority; chosen=") {
					t.Errorf("decision header %q", fb.decision)
				}
				class := f.class
				if f.status == 200 {
					class += " (mid)"
				}
				shown := func(header string, hits int) string { // "*": counted at the upstream
					switch {
					case header != "":
						return header
					case f.dead:
						return "?"
					}
					return strconv.Itoa(hits) + "*"
				}
				fbShown := fb.attempts
				if fbShown == "" {
					fbShown = shown("", fbHits+okHits)
				}
				fmt.Fprintf(&table, "%-24s %-6s %-15s %-8s %-26s | %-8s %-9v %-14s %s\n",
					f.name, mode, class, shown(solo.attempts, soloHits), solo.String(), fbShown, f.falls, fb.route, fb.String())
			})
		}
	}
	t.Log(table.String())
}

// TestNoRetryAfterFirstChunk: a stream that broke after its first chunk reached the client is
// neither retried nor fallen back, even on a route that would retry and fall back.
func TestNoRetryAfterFirstChunk(t *testing.T) {
	up := newFaultUpstream(t)
	inst := startFaultGateway(t, up)
	a := restChat(t, inst.HTTPAddr(), "fb-reset", true)
	if up.count("reset") != 1 || up.count("ok") != 0 {
		t.Errorf("upstream hits: reset %d, ok %d; want 1 and 0", up.count("reset"), up.count("ok"))
	}
	if a.status != 200 || a.chunks != 1 || a.attempts != "1" {
		t.Errorf("client got %v after %s attempts, want 200 with 1 chunk after 1 attempt", a, a.attempts)
	}
}

// TestFaultMatrixPinned runs the fault matrix for pinned names ("flaky/s503"): the faulty target
// alone, retried under its provider's retry: policy (max_retries 2: 3 attempts for retryable
// kinds), never fallen back, nothing retried once a chunk has reached the client. The attempts
// show in x-switchyard-attempts and in the audit records. Each mode gets its own gateway, so the
// target's breaker (default policy on pinned names: 5 failures in a row) starts closed.
func TestFaultMatrixPinned(t *testing.T) {
	for _, stream := range []bool{false, true} {
		mode := "block"
		if stream {
			mode = "stream"
		}
		t.Run(mode, func(t *testing.T) {
			up := newFaultUpstream(t)
			dbPath := filepath.Join(t.TempDir(), "audit.db")
			inst := startFaultGateway(t, up, fmt.Sprintf("audit: {enabled: true, sql: {driver: sqlite, dsn: %q}}\n", dbPath))
			want := map[string]int{} // audit: pinned model → attempts
			for _, f := range faultMatrix {
				if f.streamOnly && !stream {
					continue
				}
				if stream && f.midStream {
					f.status, f.tries = 200, 1
				}
				prov := "flaky"
				if f.dead {
					prov = "dead"
				}
				model := prov + "/" + f.model
				t.Run(f.name, func(t *testing.T) {
					before, beforeOK := up.count(f.model), up.count("ok")
					a := restChat(t, inst.HTTPAddr(), model, stream)
					hits := up.count(f.model) - before
					if a.status != f.status {
						t.Errorf("status %d, want %d", a.status, f.status)
					}
					if got := classOf(a.status); f.status != 200 && got != f.class {
						t.Errorf("class %s, want %s", got, f.class)
					}
					// As in TestFaultMatrix: a stream failing before its first chunk loses its headers.
					if (!stream || a.status == 200) && a.attempts != strconv.Itoa(f.tries) {
						t.Errorf("x-switchyard-attempts %q, want %d", a.attempts, f.tries)
					}
					if !f.dead && hits != f.tries {
						t.Errorf("upstream hit %d times, want %d", hits, f.tries)
					}
					if up.count("ok") != beforeOK {
						t.Errorf("the backup was called: pinned names never fall back")
					}
					if a.status == 200 && a.route != model {
						t.Errorf("x-switchyard-route %q, want %q", a.route, model)
					}
					if stream && f.midStream && (a.chunks != 1 || !a.streamErr) {
						t.Errorf("mid-stream: %v, want 1 chunk then an error event", a)
					}
				})
				want[model] = f.tries
			}

			// The audit records carry the same attempts (written asynchronously: wait for them).
			db, err := database.Open(t.Context(), database.Config{Driver: database.SQLite, DSN: dbPath})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			st, err := audit.NewStore(t.Context(), db, nil)
			if err != nil {
				t.Fatal(err)
			}
			var recs []*audit.Record
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if recs, _, err = st.Query(t.Context(), audit.Filter{Tenant: "default", PageSize: 1000}); err == nil && len(recs) >= len(want) {
					break
				}
			}
			if len(recs) != len(want) {
				t.Fatalf("%d audit records (err %v), want %d", len(recs), err, len(want))
			}
			for _, r := range recs {
				if r.Attempts != want[r.Model] {
					t.Errorf("audit record for %s: attempts %d, want %d", r.Model, r.Attempts, want[r.Model])
				}
			}
		})
	}
}
