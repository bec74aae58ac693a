package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

func TestDefaultBodyBudget(t *testing.T) {
	if got := defaultBodyBudget(1 << 20); got < minBodyBudget || got > maxBodyBudget {
		t.Errorf("defaultBodyBudget = %d, want within [%d, %d]", got, minBodyBudget, maxBodyBudget)
	}
	if got := defaultBodyBudget(8 << 30); got != 8<<30 {
		t.Errorf("defaultBodyBudget(8 GiB body limit) = %d, want the body limit", got)
	}
}

// recordingSink keeps what it is given.
type recordingSink struct {
	mu   sync.Mutex
	recs []*audit.Record
}

func (s *recordingSink) Append(_ context.Context, recs []*audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *recordingSink) Close() error { return nil }

func TestEdgeAuthenticate(t *testing.T) {
	none, err := auth.New(auth.Config{Mode: auth.ModeNone})
	if err != nil {
		t.Fatal(err)
	}
	if edgeAuthenticate(none, nil) != nil {
		t.Error("mode none has an edge check")
	}
	a, err := auth.New(auth.Config{Mode: auth.ModeAPIKey, APIKeys: []auth.APIKey{
		{Name: "k", Key: "sk-good", Tenant: "t"},
		{Name: "reserved", Key: "sk-reserved", Tenant: "_system"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	w := audit.NewWriter(sink, audit.WriterOptions{})
	check := edgeAuthenticate(a, &auditLog{writer: w})
	for _, tc := range []struct {
		header, code string
	}{
		{"Bearer sk-good", ""},
		{"Bearer sk-bad", "invalid_api_key"},
		{"", "missing_api_key"},
		{"Basic c2stZ29vZA==", "invalid_api_key"},
		{"Bearer sk-reserved", "invalid_tenant"}, // the chain's rule: reserved tenants are refused
	} {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		err := check(r)
		if got := llm.AsError(err); (tc.code == "") != (err == nil) || (err != nil && got.Code != tc.code) {
			t.Errorf("%q: err = %v, want code %q", tc.header, err, tc.code)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(sink.recs) != 4 {
		t.Fatalf("%d audit records, want one per refusal (4)", len(sink.recs))
	}
	r := sink.recs[0]
	if r.Tenant != audit.UnauthenticatedTenant || r.Transport != audit.TransportREST || r.RPC != "POST /v1/chat/completions" ||
		r.Class != "authentication" || r.Code != "UNAUTHENTICATED" || r.ClientAddr == "" || r.ForwardedFor != "203.0.113.9" {
		t.Errorf("edge refusal record = %+v", r)
	}
}
