package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
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
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/router"
)

// ident is a provider type that answers with its provider name, so a client sees which target
// served it. A request whose last message is "hold" waits until hold is closed. Close records
// how many calls were still running.
type identType struct {
	fail   atomic.Bool // provider b fails every call with an upstream error
	bCalls atomic.Int64
	hold   chan struct{}
	held   chan struct{}     // receives when a "hold" request starts waiting
	closed chan identClosure // one per closed provider
}

type identClosure struct {
	name   string
	active int64
}

func newIdentType() *identType {
	return &identType{hold: make(chan struct{}), held: make(chan struct{}, 16), closed: make(chan identClosure, 16)}
}

func (it *identType) factory(pc provider.Config) (llm.Provider, error) {
	return &identProvider{typ: it, name: pc.Name}, nil
}

type identProvider struct {
	typ    *identType
	name   string
	active atomic.Int64
}

func (p *identProvider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	p.active.Add(1)
	defer p.active.Add(-1)
	if p.name == "b" {
		p.typ.bCalls.Add(1)
		if p.typ.fail.Load() {
			return nil, &llm.Error{Kind: llm.KindUpstream, Provider: "b", Message: "b is broken"}
		}
	}
	if n := len(req.Messages); n > 0 && req.Messages[n-1].Text() == "hold" {
		p.typ.held <- struct{}{}
		select {
		case <-p.typ.hold:
		case <-ctx.Done():
			return nil, llm.Wrap(llm.KindCanceled, ctx.Err(), "ident: cancelled")
		}
	}
	text := p.name
	return &llm.ChatResponse{ID: "chatcmpl-ident", Model: req.Model, Created: 1,
		Choices: []llm.Choice{{Content: &text, FinishReason: llm.FinishStop}}}, nil
}

func (p *identProvider) ChatStream(context.Context, *llm.ChatRequest) (llm.Stream, error) {
	return nil, llm.Errorf(llm.KindInvalidArgument, "ident: no streams")
}

func (p *identProvider) Close() error {
	p.typ.closed <- identClosure{name: p.name, active: p.active.Load()}
	return nil
}

// logTap records log messages and their attributes, and reports each message on a channel.
type logTap struct {
	mu    sync.Mutex
	lines []map[string]any
	msgs  chan string
}

func newLogTap() *logTap { return &logTap{msgs: make(chan string, 1024)} }

func (l *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (l *logTap) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logTap) WithGroup(string) slog.Handler            { return l }
func (l *logTap) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	l.mu.Lock()
	l.lines = append(l.lines, m)
	l.mu.Unlock()
	select {
	case l.msgs <- r.Message:
	default:
	}
	return nil
}

// wait waits for a log message starting with prefix and returns its attributes.
func (l *logTap) wait(t *testing.T, prefix string) map[string]any {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		for _, m := range l.lines {
			if strings.HasPrefix(m["msg"].(string), prefix) {
				l.mu.Unlock()
				return m
			}
		}
		l.mu.Unlock()
		select {
		case <-l.msgs:
		case <-timeout:
			t.Fatalf("no log line %q", prefix)
		}
	}
}

// reloadConfig is a config file with providers a and b (type ident, model m) and the alias chat.
func reloadConfig(chatTarget, extra string) string {
	return `server: {http_addr: "127.0.0.1:0", grpc_addr: "127.0.0.1:0", admin_addr: "127.0.0.1:0"}
providers:
  - {name: a, type: ident, models: [m]}
  - {name: b, type: ident, models: [m]}
aliases:
  chat: ` + chatTarget + `
` + extra
}

// writeFile replaces path's contents the way editors do: a new file renamed over the old.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startFromFile writes content to a config file and starts an instance from it.
func startFromFile(t *testing.T, content string, opts ...Option) (*Instance, string, *identType, *logTap) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	writeFile(t, path, content)
	it := newIdentType()
	types := append(newRegistry().Types(), "ident")
	cfg, err := loadConfig([]byte(content), path, func(string) string { return "" }, types)
	if err != nil {
		t.Fatal(err)
	}
	tap := newLogTap()
	inst := startT(t, cfg, append([]Option{WithLogger(slog.New(tap)), WithConfigFile(path),
		WithProviderType("ident", it.factory)}, opts...)...)
	return inst, path, it, tap
}

// answer is the content of a chat completion's first choice.
func answer(body string) string {
	var r struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal([]byte(body), &r) != nil || len(r.Choices) == 0 {
		return ""
	}
	return r.Choices[0].Message.Content
}

// admin calls the AdminService over REST and returns the status and body.
func admin(t *testing.T, inst *Instance, method, path, body, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+inst.HTTPAddr()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSwitchUnderLoad: 50 clients keep requests in flight through REST while the alias chat is
// switched from a to b, by editing the file (watched) and through AdminService. No request
// fails; the measured switch time is logged.
func TestSwitchUnderLoad(t *testing.T) {
	cases := []struct {
		name    string
		switch_ func(t *testing.T, inst *Instance, path string)
	}{
		{"file watch", func(t *testing.T, _ *Instance, path string) {
			writeFile(t, path, reloadConfig("b/m", ""))
		}},
		{"AdminService.RepointRoute", func(t *testing.T, inst *Instance, _ string) {
			if code, body := admin(t, inst, http.MethodPost, "/admin/v1/routes/chat:repoint", `{"targets":["b/m"]}`, ""); code != http.StatusOK {
				t.Errorf("repoint: %d %s", code, body)
			}
		}},
		{"AdminService.ReloadConfig", func(t *testing.T, inst *Instance, path string) {
			// The watcher may apply the new file first; either way the RPC succeeds.
			writeFile(t, path, reloadConfig("b/m", ""))
			if code, body := admin(t, inst, http.MethodPost, "/admin/v1/config:reload", `{}`, ""); code != http.StatusOK {
				t.Errorf("reload: %d %s", code, body)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inst, path, _, tap := startFromFile(t, reloadConfig("a/m", ""))
			const clients, phase = 50, 400 // requests before the switch, and after b first answered
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			defer client.CloseIdleConnections()
			var (
				total, failed, afterB atomic.Int64
				mu                    sync.Mutex
				firstErr              string
				sawB                  time.Time
			)
			warm, switched := make(chan struct{}), make(chan struct{})
			var warmOnce, switchedOnce sync.Once
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						code, body, err := chat(client, inst.HTTPAddr(), "chat", nil)
						got := answer(body)
						if err != nil || code != http.StatusOK || (got != "a" && got != "b") {
							failed.Add(1)
							mu.Lock()
							if firstErr == "" {
								firstErr = fmt.Sprintf("%d %v %s", code, err, body)
							}
							mu.Unlock()
						}
						if total.Add(1) == phase {
							warmOnce.Do(func() { close(warm) })
						}
						if got == "b" {
							switchedOnce.Do(func() {
								mu.Lock()
								sawB = time.Now()
								mu.Unlock()
								close(switched)
							})
							if afterB.Add(1) == phase {
								close(stop)
							}
						}
					}
				})
			}
			<-warm
			changed := time.Now()
			c.switch_(t, inst, path)
			select {
			case <-switched:
			case <-time.After(5 * time.Second):
				close(stop)
				wg.Wait()
				t.Fatal("no request served by b within 5s of the change")
			}
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Errorf("%d of %d requests failed; first: %s", n, total.Load(), firstErr)
			}
			line := tap.wait(t, "model switch")
			if line["route"] != "chat" || line["target"] != "b/m" {
				t.Errorf("switch log line %v", line)
			}
			t.Logf("%d requests by %d clients, 0 failed; switch time: %v from the change to the first answer by b seen by a client, %v server-side (%s)",
				total.Load(), clients, sawB.Sub(changed).Round(time.Microsecond), line["switch_time"], router.MetricSwitchTime)
			if code, body, _ := chat(client, inst.HTTPAddr(), "chat", nil); answer(body) != "b" {
				t.Errorf("after the switch: %d %s", code, body)
			}
		})
	}
}

// TestReloadRejectsInvalidConfig: an invalid file is rejected by the watcher and by
// ReloadConfig, and the running config keeps serving; restart-only fields are ignored with a
// warning while the rest applies.
func TestReloadRejectsInvalidConfig(t *testing.T) {
	inst, path, _, tap := startFromFile(t, reloadConfig("a/m", ""))
	client := &http.Client{}

	writeFile(t, path, reloadConfig("zz/m", ""))
	line := tap.wait(t, "config reload rejected")
	if !strings.Contains(fmt.Sprint(line["err"]), "unknown provider") {
		t.Errorf("watch rejection logged %v", line)
	}
	code, body := admin(t, inst, http.MethodPost, "/admin/v1/config:reload", `{}`, "")
	if code != http.StatusBadRequest || !strings.Contains(body, "unknown provider") {
		t.Errorf("reload of an invalid config: %d %s; want 400 naming the problem", code, body)
	}
	if code, body, err := chat(client, inst.HTTPAddr(), "chat", nil); err != nil || answer(body) != "a" {
		t.Fatalf("after rejected reloads: %d %s %v; want a still serving", code, body, err)
	}

	writeFile(t, path, strings.Replace(reloadConfig("b/m", ""), `admin_addr: "127.0.0.1:0"}`, `admin_addr: "127.0.0.1:0", max_body_bytes: 1000}`, 1))
	code, body = admin(t, inst, http.MethodPost, "/admin/v1/config:reload", `{}`, "")
	if code != http.StatusOK || !strings.Contains(body, `"server.max_body_bytes"`) {
		t.Errorf("reload with a restart-only change: %d %s; want 200 listing server.max_body_bytes as ignored", code, body)
	}
	if _, body, _ := chat(client, inst.HTTPAddr(), "chat", nil); answer(body) != "b" {
		t.Errorf("routing change not applied: %s", body)
	}
	tap.wait(t, "config reload: these fields need a restart")
}

// TestReplacedProviderClosedWhenIdle: a provider whose settings changed is rebuilt, and the
// old one is closed only after the request running on it finished.
func TestReplacedProviderClosedWhenIdle(t *testing.T) {
	defer func(d time.Duration) { providerCloseDelay = d }(providerCloseDelay)
	providerCloseDelay = 0
	inst, path, it, _ := startFromFile(t, reloadConfig("a/m", ""))

	result := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+inst.HTTPAddr()+"/v1/chat/completions",
			strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hold"}]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- fmt.Sprintf("%d %s", resp.StatusCode, answer(string(b)))
	}()
	<-it.held

	// Provider a gets new settings (a header): it is rebuilt; b is unchanged and reused.
	writeFile(t, path, strings.Replace(reloadConfig("a/m", ""), "{name: a, type: ident, models: [m]}",
		"{name: a, type: ident, models: [m], headers: {x-v: \"2\"}}", 1))
	if _, err := inst.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-it.closed:
		t.Fatalf("%s closed while a request ran on it", c.name)
	default:
	}
	close(it.hold)
	if got := <-result; got != "200 a" {
		t.Errorf("held request: %s, want 200 a", got)
	}
	select {
	case c := <-it.closed:
		if c.name != "a" || c.active != 0 {
			t.Errorf("closed %s with %d calls running, want a with none", c.name, c.active)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replaced provider not closed")
	}
	select {
	case c := <-it.closed:
		t.Errorf("%s closed too; want only the replaced provider", c.name)
	default:
	}
}

// TestAdminAuth: AdminService needs the admin scope.
func TestAdminAuth(t *testing.T) {
	extra := `auth:
  mode: api_key
  api_keys:
    - {name: ops, key: sk-admin, tenant: t1, scopes: [admin]}
    - {name: app, key: sk-user, tenant: t1, scopes: [chat]}
`
	inst, _, _, _ := startFromFile(t, reloadConfig("a/m", extra))
	cases := []struct {
		key      string
		wantHTTP int
		wantGRPC codes.Code
	}{
		{"sk-admin", http.StatusOK, codes.OK},
		{"sk-user", http.StatusForbidden, codes.PermissionDenied},
		{"", http.StatusUnauthorized, codes.Unauthenticated},
	}
	conn := dialGRPC(t, inst.GRPCAddr())
	for _, c := range cases {
		t.Run("key="+c.key, func(t *testing.T) {
			if code, body := admin(t, inst, http.MethodGet, "/admin/v1/routes", "", c.key); code != c.wantHTTP {
				t.Errorf("REST ListRoutes: %d %s, want %d", code, body, c.wantHTTP)
			}
			ctx := t.Context()
			if c.key != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.key)
			}
			_, err := pb.NewAdminServiceClient(conn).RepointRoute(ctx, &pb.RepointRouteRequest{Name: "chat", Targets: []string{"b/m"}})
			if got := status.Code(err); got != c.wantGRPC {
				t.Errorf("gRPC RepointRoute: %v, want %v", err, c.wantGRPC)
			}
		})
	}
}

// TestListRoutes shows the routes with the targets' live figures over REST.
func TestListRoutes(t *testing.T) {
	extra := `routes:
  - name: duo
    strategy: latency
    targets: [{model: a/m}]
    shadow: {model: b/m, percent: 0}
`
	inst, _, _, _ := startFromFile(t, reloadConfig("a/m", extra))
	if code, body, err := chat(&http.Client{}, inst.HTTPAddr(), "duo", nil); err != nil || code != http.StatusOK {
		t.Fatalf("chat: %d %s %v", code, body, err)
	}
	code, body := admin(t, inst, http.MethodGet, "/admin/v1/routes", "", "")
	if code != http.StatusOK {
		t.Fatalf("ListRoutes: %d %s", code, body)
	}
	var resp struct {
		Source string `json:"source"`
		Routes []struct {
			Name     string `json:"name"`
			Alias    bool   `json:"alias"`
			Strategy string `json:"strategy"`
			Targets  []struct {
				Model     string  `json:"model"`
				Breaker   string  `json:"breaker"`
				LatencyMs float64 `json:"latency_ms"`
				Successes string  `json:"successes"` // int64 is a JSON string
				Measured  bool    `json:"measured"`
			} `json:"targets"`
			Shadow *struct {
				Model string `json:"model"`
			} `json:"shadow"`
		} `json:"routes"`
	}
	if err := json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&resp); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(resp.Routes) != 2 || resp.Source != "config" {
		t.Fatalf("routes %s", body)
	}
	chatR, duo := resp.Routes[0], resp.Routes[1]
	if chatR.Name != "chat" || !chatR.Alias || duo.Name != "duo" || duo.Strategy != "latency" || duo.Shadow == nil || duo.Shadow.Model != "b/m" {
		t.Errorf("routes %s", body)
	}
	if tg := duo.Targets[0]; tg.Model != "a/m" || tg.Breaker != "closed" || !tg.Measured || tg.Successes != "1" {
		t.Errorf("duo's target %+v, want a/m closed, measured, 1 success", tg)
	}

	// A repoint answers with the route as it now is, and the listing says where routing came from.
	code, body = admin(t, inst, http.MethodPost, "/admin/v1/routes/chat:repoint", `{"targets":["b/m","a/m"]}`, "")
	var rp struct {
		Route struct {
			Alias    bool   `json:"alias"`
			Strategy string `json:"strategy"`
			Targets  []struct {
				Model string `json:"model"`
			} `json:"targets"`
		} `json:"route"`
	}
	if err := json.Unmarshal([]byte(body), &rp); err != nil || code != http.StatusOK {
		t.Fatalf("repoint: %d %s %v", code, body, err)
	}
	if r := rp.Route; r.Alias || r.Strategy != "priority" || len(r.Targets) != 2 || r.Targets[0].Model != "b/m" {
		t.Errorf("repointed route %+v, want a priority route b/m, a/m", r)
	}
	_, body = admin(t, inst, http.MethodGet, "/admin/v1/routes", "", "")
	var list struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || list.Source != "repoint" {
		t.Errorf("after repoint: %s, want source repoint", body)
	}
	code, body = admin(t, inst, http.MethodPost, "/admin/v1/routes/duo:repoint", `{"targets":["b/m"]}`, "")
	if code != http.StatusBadRequest || !strings.Contains(body, "already a target") {
		t.Errorf("repoint onto the route's shadow: %d %s, want 400", code, body)
	}
}

// TestCanaryRollsBack: a canary takes its share of REST traffic; when it starts failing, clients
// keep getting answers (from the stable target), the canary is rolled back within its window
// and gets no more traffic, and ListRoutes shows it.
func TestCanaryRollsBack(t *testing.T) {
	extra := `routes:
  - name: gen
    targets: [{model: a/m}]
    retry: {max_retries: 0}
    breaker: {consecutive_failures: -1, error_rate: -1} # else b's breaker opens first and b gets no more attempts
    canary: {model: b/m, percent: 50, window: 1m, max_error_rate: 0.2, min_requests: 5}
`
	inst, _, it, tap := startFromFile(t, reloadConfig("a/m", extra))
	client := &http.Client{}
	served := map[string]int{}
	for range 40 {
		code, body, err := chat(client, inst.HTTPAddr(), "gen", nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("healthy canary: %d %s %v", code, body, err)
		}
		served[answer(body)]++
	}
	if served["b"] == 0 || served["a"] == 0 {
		t.Fatalf("served %v: want both the canary and the stable target", served)
	}

	it.fail.Store(true)
	for range 60 {
		code, body, err := chat(client, inst.HTTPAddr(), "gen", nil)
		if err != nil || code != http.StatusOK || answer(body) != "a" {
			t.Fatalf("failing canary: %d %s %v; want the stable target's answer", code, body, err)
		}
	}
	line := tap.wait(t, "canary rolled back")
	if line["route"] != "gen" || line["target"] != "b/m" {
		t.Errorf("rollback log %v", line)
	}
	before := it.bCalls.Load()
	for range 20 {
		if code, body, _ := chat(client, inst.HTTPAddr(), "gen", nil); answer(body) != "a" {
			t.Fatalf("after rollback: %d %s", code, body)
		}
	}
	if n := it.bCalls.Load() - before; n != 0 {
		t.Errorf("rolled-back canary got %d requests", n)
	}
	_, body := admin(t, inst, http.MethodGet, "/admin/v1/routes", "", "")
	var list struct {
		Routes []struct {
			Name   string `json:"name"`
			Canary *struct {
				RolledBack     bool `json:"rolled_back"`
				WindowFailures int  `json:"window_failures"`
			} `json:"canary"`
		} `json:"routes"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	for _, r := range list.Routes {
		if r.Name == "gen" && (r.Canary == nil || !r.Canary.RolledBack || r.Canary.WindowFailures == 0) {
			t.Errorf("ListRoutes canary %+v, want rolled back with failures in its window", r.Canary)
		}
	}
}

// TestSameProviderIgnoresRetry: a reload that changes only a provider's retry: keeps the built
// provider (the new router applies the policy); any other change rebuilds it.
func TestSameProviderIgnoresRetry(t *testing.T) {
	one := 1
	a := provider.Config{Name: "up", Type: "openai", BaseURL: "http://x/v1"}
	b := a
	b.Retry = &provider.RetryConfig{MaxRetries: &one}
	if !sameProvider(a, b) {
		t.Error("a retry: change alone rebuilds the provider")
	}
	b.TemperatureMapping = provider.TemperatureLinear
	if sameProvider(a, b) {
		t.Error("a temperature_mapping change keeps the old provider")
	}
}
