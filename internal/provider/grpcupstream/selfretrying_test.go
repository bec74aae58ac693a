package grpcupstream_test

import (
	"testing"

	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/grpcupstream"
	"github.com/switchyard/switchyard/internal/router"
)

// TestSelfRetrying checks that the router sees the provider's own retries and does not retry on
// top of them (DESIGN.md: one layer retries a call, never two), whatever max_retries says.
func TestSelfRetrying(t *testing.T) {
	for _, opts := range []map[string]string{nil, {"max_retries": "0"}, {"max_retries": "5"}} {
		p, err := grpcupstream.New(provider.Config{Name: "up", Type: "grpc", BaseURL: "127.0.0.1:1", Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		sr, ok := p.(router.SelfRetrying)
		if !ok || !sr.RetriesCalls() {
			t.Errorf("options %v: provider %T is not router.SelfRetrying with RetriesCalls true", opts, p)
		}
		_ = p.(*grpcupstream.Provider).Close()
	}
}
