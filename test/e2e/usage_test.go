package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/database"
)

const limKey = clientKey + "-lim"

// startUsageGateway starts Switchyard with two providers on one fake upstream: "up" (streams ask
// for usage, as by default) and "bare" (options.stream_usage false: streams go without
// stream_options, so the upstream reports no usage), audit to the SQLite file dsn, and a TPM
// limit of 1000 on the key "lim" (tenant lim); the client key (tenant e2e) is unlimited.
func startUsageGateway(t *testing.T, dsn string) *gateway {
	up := newFakeOpenAI(t)
	yaml := fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0, shutdown_timeout: 5s}
auth:
  mode: api_key
  api_keys:
    - {name: e2e, key: %[1]q, tenant: e2e}
    - {name: lim, key: %[2]q, tenant: lim}
providers:
  - {name: up, type: openai, base_url: %[3]q, api_key: %[4]q}
  - {name: bare, type: openai, base_url: %[3]q, api_key: %[4]q, options: {stream_usage: "false"}}
limits:
  keys:
    lim: {tpm: 1000}
%[5]s`, clientKey, limKey, up.URL+"/v1", upstreamKey, auditYAML(database.Config{Driver: database.SQLite, DSN: dsn}))
	return &gateway{Instance: startYAML(t, yaml), up: up}
}

// sseChunks returns the JSON chunks of an SSE answer, without [DONE] and error events.
func sseChunks(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for ev := range strings.SplitSeq(strings.TrimSpace(string(body)), "\n\n") {
		payload, ok := strings.CutPrefix(ev, "data: ")
		if !ok || payload == "[DONE]" {
			continue
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			t.Fatalf("chunk %q: %v", payload, err)
		}
		out = append(out, c)
	}
	return out
}

// TestStreamUsageCounted: every streamed chat is counted whatever the client asked. A client
// without stream_options.include_usage gets no usage chunk, and the audit record has the
// upstream's usage; an upstream that reports none (stream_usage off, or a stream cut before the
// report) gets an estimate, marked so in the audit record; a key's TPM is settled with the
// estimate.
func TestStreamUsageCounted(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "audit.db")
	g := startUsageGateway(t, dsn)
	noUsageChunk := func(name string, a httpAnswer) {
		t.Helper()
		if a.status != 200 {
			t.Fatalf("%s: status %d: %s", name, a.status, a.body)
		}
		for _, c := range sseChunks(t, a.body) {
			if c["usage"] != nil {
				t.Errorf("%s: the client got a usage chunk: %v", name, c)
			}
		}
	}

	// 1. The client did not ask: the upstream was asked, the client sees no usage.
	a := g.post(t, "/v1/chat/completions", []byte(`{"model":"up/gpt-ok","stream":true,"messages":[{"role":"user","content":"hello dify"}]}`), nil)
	noUsageChunk("without include_usage", a)
	if so, _ := g.up.last().Body["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("upstream request stream_options = %v, want include_usage", g.up.last().Body["stream_options"])
	}
	// 2. The upstream reports nothing: estimated (even though this client asked for usage).
	a = g.post(t, "/v1/chat/completions", []byte(`{"model":"bare/gpt-ok","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello estimate"}]}`), nil)
	noUsageChunk("usage off upstream", a)
	if so, ok := g.up.last().Body["stream_options"]; ok {
		t.Errorf("stream_usage false: upstream got stream_options %v", so)
	}
	// 3. The stream is cut before the usage chunk: estimated from what was streamed.
	a = g.post(t, "/v1/chat/completions", []byte(`{"model":"up/reset-mid","stream":true,"messages":[{"role":"user","content":"cut"}]}`), nil)
	if !strings.Contains(string(a.body), "partial") {
		t.Fatalf("reset-mid: %d %s", a.status, a.body)
	}
	// 4. TPM settles with the estimate: 2400 characters reserve about 600 tokens of 1000; the
	// estimate (600 in, 602 out) leaves the bucket in debt, so a tiny request is refused. Had
	// the call kept its reservation, 400 tokens would be left for it.
	lim := limKey
	long := strings.Repeat("a", 2400)
	a = g.post(t, "/v1/chat/completions", []byte(`{"model":"bare/gpt-ok","stream":true,"messages":[{"role":"user","content":"`+long+`"}]}`), &lim)
	noUsageChunk("long prompt", a)
	if a = g.post(t, "/v1/chat/completions", []byte(`{"model":"bare/gpt-ok","messages":[{"role":"user","content":"x"}]}`), &lim); a.status != 429 {
		t.Errorf("after an estimated 1202 tokens of a 1000 TPM: status %d (remaining %s), want 429", a.status, a.header.Get("x-ratelimit-remaining-tokens"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil { // writes every queued record
		t.Fatal(err)
	}
	db, err := database.Open(ctx, database.Config{Driver: database.SQLite, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := audit.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	type usage struct {
		in, out   int64
		estimated bool
	}
	check := func(tenant string, want []usage) {
		t.Helper()
		recs, _, err := st.Query(ctx, audit.Filter{Tenant: tenant, PageSize: 100})
		if err != nil || len(recs) != len(want) {
			t.Fatalf("tenant %s: %d records, %v; want %d", tenant, len(recs), err, len(want))
		}
		for i, w := range want {
			r := recs[len(recs)-1-i] // newest first
			if got := (usage{r.InputTokens, r.OutputTokens, r.UsageEstimated}); got != w {
				t.Errorf("tenant %s record %d (%s %s): usage %+v, want %+v", tenant, r.Seq, r.Target, r.Code, got, w)
			}
		}
	}
	check("e2e", []usage{
		{10, 4, false}, // the upstream's report
		{4, 5, true},   // "hello estimate" (14 characters), "pong: hello estimate" (20)
		{1, 2, true},   // "cut" (3), "partial " (8)
	})
	check("lim", []usage{{600, 602, true}, {0, 0, false}}) // the refused call has no usage
}
