package session_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the session use case free of the transport: it speaks internal/llm and
// internal/auth, never server, gRPC, the generated protos or a provider. And internal/audit,
// which seals its bodies too, needs internal/seal, not this package.
func TestImports(t *testing.T) {
	const mod = "github.com/switchyard/switchyard/"
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{mod + "internal/session", []string{mod + "server", mod + "gen/", "google.golang.org/grpc", mod + "internal/provider"}},
		{mod + "internal/audit", []string{mod + "internal/session"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", r.pkg).Output()
		if err != nil {
			t.Skipf("go list: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range r.forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s imports %s", r.pkg, dep)
				}
			}
		}
	}
}
