package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/redisx/redistest"
)

func TestLimitsConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
providers: [{name: mock, type: mock, models: [echo]}]
limits:
  default: {rpm: 600}
  tenants: {acme: {rpm: 60, tpm: 1000, tpd: 5000}}
  keys: {dify: {tpm: 100}}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	l := cfg.Limits
	if l.Backend != LimitBackendMemory || l.OnRedisError != limits.FailLocal || l.Prefix != limits.DefaultPrefix {
		t.Errorf("defaults = %q %q %q", l.Backend, l.OnRedisError, l.Prefix)
	}
	if l.Default.RPM != 600 || l.Tenants["acme"] != (limits.Limits{RPM: 60, TPM: 1000, TPD: 5000}) || l.Keys["dify"].TPM != 100 {
		t.Errorf("policy = %+v", l.Policy)
	}

	cases := []struct {
		name, yaml, want string
	}{
		{"unknown backend", `{backend: etcd}`, "limits.backend"},
		{"redis without addrs", `{backend: redis}`, "limits.redis.addrs"},
		{"unknown error mode", `{on_redis_error: maybe}`, "limits.on_redis_error"},
		{"braces in prefix", `{prefix: "a{b}"}`, "limits.prefix"},
		{"negative limit", `{tenants: {acme: {rpm: -1}}}`, "tenants.acme"},
		{"unknown field", `{tenant: {}}`, "tenant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte("providers: [{name: mock, type: mock, models: [echo]}]\nlimits: "+c.yaml+"\n"), func(string) string { return "" })
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}

// restChat posts a chat completion (streamed when stream is set) and returns the response with
// its body read.
func restChat(t *testing.T, addr string, stream bool) (*http.Response, string) {
	t.Helper()
	resp, body, err := postChat(addr, stream)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// postChat is restChat for goroutines other than the test's.
func postChat(addr string, stream bool) (*http.Response, string, error) {
	body := `{"model":"mock/echo","messages":[{"role":"user","content":"hi"}],"max_tokens":10`
	if stream {
		body += `,"stream":true`
	}
	resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(body+"}"))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestLimitsREST(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Default = limits.Limits{RPM: 3, TPM: 100_000}
	inst := startT(t, cfg)

	for i, c := range []struct {
		stream    bool
		remaining string
	}{{false, "2"}, {true, "1"}, {false, "0"}} {
		resp, body := restChat(t, inst.HTTPAddr(), c.stream)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		h := resp.Header
		if h.Get("X-Ratelimit-Limit-Requests") != "3" || h.Get("X-Ratelimit-Remaining-Requests") != c.remaining ||
			h.Get("X-Ratelimit-Reset-Requests") == "" || h.Get("X-Ratelimit-Limit-Tokens") != "100000" ||
			h.Get("X-Ratelimit-Remaining-Tokens") == "" || h.Get("X-Ratelimit-Reset-Tokens") == "" {
			t.Errorf("request %d: rate limit headers %v, want limit 3, remaining %s", i, h, c.remaining)
		}
	}
	for _, stream := range []bool{false, true} {
		resp, body := restChat(t, inst.HTTPAddr(), stream)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("stream=%v: status %d %s, want 429", stream, resp.StatusCode, body)
		}
		if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("stream=%v: Retry-After %q", stream, ra)
		}
		if got := resp.Header.Get("X-Ratelimit-Remaining-Requests"); got != "0" {
			t.Errorf("stream=%v: remaining requests %q, want 0", stream, got)
		}
		var e struct {
			Error struct{ Type, Code, Message string }
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type != "rate_limit_error" || e.Error.Code != "rate_limit_exceeded" {
			t.Errorf("stream=%v: body %s, want a rate_limit_error", stream, body)
		}
	}
}

func TestLimitsDailyQuotaREST(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Tenants = map[string]limits.Limits{"default": {TPD: 30}}
	inst := startT(t, cfg)
	var last *http.Response
	var body string
	for range 30 { // each call reserves about 20 tokens and settles to the mock's usage (3)
		if last, body = restChat(t, inst.HTTPAddr(), false); last.StatusCode != http.StatusOK {
			break
		}
	}
	if last.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `"insufficient_quota"`) {
		t.Errorf("status %d %s, want 429 insufficient_quota", last.StatusCode, body)
	}
}

// TestLimitsHoldAcrossInstances runs two instances sharing one Redis and sends n requests of one
// tenant, split across both and concurrent, against a limit of limit requests per minute.
//
// Tolerance: the accepted count is exactly the limit plus what the bucket refills while the run
// lasts (limit per minute × elapsed, rounded up; 0 or 1 here). Redis checks and takes in one Lua
// call, so instances cannot both spend the same room. The memory backend, run the same way,
// accepts up to twice the limit: that contrast shows the test can tell sharing from not sharing.
func TestLimitsHoldAcrossInstances(t *testing.T) {
	const limit, n = 20, 80
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	addr := os.Getenv("SWITCHYARD_TEST_REDIS")
	if addr == "" {
		addr = redistest.DefaultAddr
	}
	for _, c := range []struct {
		backend  string
		min, max func(refill int) int
	}{
		{LimitBackendRedis, func(int) int { return limit }, func(r int) int { return limit + r }},
		{LimitBackendMemory, func(int) int { return 2 * limit }, func(r int) int { return 2 * (limit + r) }},
	} {
		t.Run(c.backend, func(t *testing.T) {
			var insts []*Instance
			for range 2 {
				cfg := testConfig()
				cfg.Limits.Backend = c.backend
				cfg.Limits.Redis.Addrs = []string{addr}
				cfg.Limits.Prefix = prefix + c.backend + ":"
				cfg.Limits.OnRedisError = limits.FailClosed // a Redis failure must not pass for sharing
				cfg.Limits.Default = limits.Limits{RPM: limit}
				insts = append(insts, startT(t, cfg))
			}
			var accepted, refused atomic.Int32
			var wg sync.WaitGroup
			start := time.Now()
			for w := range 8 {
				wg.Go(func() {
					for i := w; i < n; i += 8 {
						resp, body, err := postChat(insts[i%2].HTTPAddr(), false)
						if err != nil {
							t.Error(err)
							return
						}
						switch resp.StatusCode {
						case http.StatusOK:
							accepted.Add(1)
						case http.StatusTooManyRequests:
							refused.Add(1)
						default:
							t.Errorf("status %d %s", resp.StatusCode, body)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			refill := int((elapsed*limit + time.Minute - 1) / time.Minute)
			got := int(accepted.Load())
			t.Logf("%s: %d of %d accepted in %v (limit %d, refill %d)", c.backend, got, n, elapsed, limit, refill)
			if got < c.min(refill) || got > c.max(refill) {
				t.Errorf("%s: accepted %d, want %d..%d", c.backend, got, c.min(refill), c.max(refill))
			}
			if int(accepted.Load()+refused.Load()) != n {
				t.Errorf("accepted %d + refused %d != %d", accepted.Load(), refused.Load(), n)
			}
		})
	}
}

func TestLimitsStartFailsWithoutRedis(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Backend = LimitBackendRedis
	cfg.Limits.Redis.Addrs = []string{"127.0.0.1:1"}
	cfg.Limits.Default = limits.Limits{RPM: 1}
	cfg.SetDataDir(t.TempDir())
	inst, err := Start(context.Background(), cfg, quiet)
	if err == nil {
		_ = inst.Shutdown(context.Background())
		t.Fatal("Start succeeded with an unreachable Redis")
	}
	if !strings.Contains(err.Error(), "limits") {
		t.Errorf("error %v does not name the limits section", err)
	}
}
