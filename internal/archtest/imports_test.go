// Package archtest holds the test that keeps the import picture of docs/ARCHITECTURE.md true: every
// package of the module has a place in the layers below, and may import only the packages its
// layer allows. A new package fails the test until it is given its place; a new import across the
// layers fails it until the table (and the architecture document) say why it is right.
//
// Only non-test imports count: tests may reach across layers (end-to-end tests import internal/app).
package archtest

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/switchyard/switchyard"

// rule says what the packages under a path may import from this module and from outside it.
type rule struct {
	// internal lists module-relative package paths (a trailing "/..." includes subpackages) that
	// packages of this rule may import. "*" allows every package of the module but internal/app.
	internal []string
	// external, when not nil, lists the import path prefixes allowed outside the standard library
	// and this module; nil allows any.
	external []string
}

// The leaves: packages that import nothing of the module but the vocabulary.
var (
	vocabulary = []string{"internal/llm"}
	grpcOnly   = []string{"google.golang.org/grpc", "google.golang.org/protobuf", "google.golang.org/genproto", "go.opentelemetry.io/", "github.com/google/uuid"}
)

// rules maps a module-relative path to its rule; the longest matching path applies ("a/..." matches
// a and its subpackages).
var rules = map[string]rule{
	// The composition root and the binaries may import anything.
	"cmd/...":      {internal: []string{"*", "internal/app"}},
	"internal/app": {internal: []string{"*"}},
	"bench/...":    {internal: []string{"gen/..."}},
	// The bench commands share the gateway process and the fake upstream; those import nothing of
	// the module (they drive the binary from outside, like a client).
	"bench/cmd/...":      {internal: []string{"gen/...", "bench/internal/..."}},
	"bench/internal/...": {},
	"internal/archtest":  {},

	// Generated code.
	"gen/...": {internal: []string{"gen/..."}},

	// The REST edge knows the protos, the error mapping and the metadata keys; not the router,
	// the providers, the services or the stores.
	"gateway": {internal: []string{"gen/...", "internal/errmap", "internal/jsonscan", "internal/llm", "internal/mdkey", "internal/telemetry"}},

	// The gRPC services map protos to the domain. No provider and no vendor SDK: providers reach
	// them only as llm.Provider through the router.
	"server": {
		internal: []string{"gen/...", "internal/audit", "internal/auth", "internal/auth/keystore", "internal/callinfo",
			"internal/errmap", "internal/llm", "internal/mdkey", "internal/pbconv", "internal/router", "internal/session"},
		external: grpcOnly,
	},
	// The interceptors: one file per concern of the policy chain.
	"server/interceptor": {
		internal: []string{"gen/...", "internal/audit", "internal/auth", "internal/callinfo", "internal/errmap",
			"internal/limits", "internal/llm", "internal/mdkey"},
		external: append([]string{"github.com/grpc-ecosystem/go-grpc-middleware/"}, grpcOnly...),
	},
	"internal/inproc": {},

	// Routing picks among llm.Providers; it never imports an adapter.
	"internal/router": {internal: []string{"internal/llm"}},

	// Provider adapters: the vocabulary, their shared helpers and, for the gRPC upstreams, the
	// protos and their conversion.
	"internal/provider/...": {internal: []string{"internal/llm", "internal/provider/...", "internal/pbconv", "internal/errmap", "internal/grpczstd", "gen/...", "internal/jsonscan", "internal/telemetry"}},
	"internal/pbconv":       {internal: []string{"gen/...", "internal/llm"}},
	// Micro-batching decorates any llm.Provider: the vocabulary and the standard library only.
	"internal/provider/batch": {internal: vocabulary, external: []string{}},

	// Leaves and near-leaves.
	"internal/jsonscan":      {external: []string{}},
	"internal/llm":           {external: []string{"google.golang.org/grpc/codes"}},
	"internal/errmap":        {internal: vocabulary},
	"internal/mdkey":         {},
	"internal/grpczstd":      {external: []string{"github.com/klauspost/compress/", "google.golang.org/grpc"}},
	"internal/callinfo":      {internal: vocabulary},
	"internal/seal":          {},
	"internal/telemetry":     {},
	"internal/database":      {},
	"internal/redisx":        {},
	"internal/auth":          {internal: vocabulary},
	"internal/auth/keystore": {internal: []string{"internal/auth", "internal/database", "internal/llm"}},
	"internal/limits":        {internal: []string{"internal/llm", "internal/redisx"}},
	"internal/audit":         {internal: []string{"internal/database", "internal/seal", "internal/llm"}},
	"internal/session/...": {
		internal: []string{"internal/llm", "internal/auth", "internal/session/...", "internal/seal", "internal/database", "internal/redisx"},
	},
	// Test helpers live beside what they test and follow its rule; these have no parent rule.
	"internal/database/dbtest":  {internal: []string{"internal/database"}},
	"internal/redisx/redistest": {internal: []string{"internal/redisx"}},
	"test/...":                  {internal: []string{"*", "internal/app"}},
	"tools/...":                 {},
}

func TestImportDirections(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := packages(t, root)
	if len(pkgs) < 20 {
		t.Fatalf("found %d packages under %s; the walk is broken", len(pkgs), root)
	}
	for _, p := range pkgs {
		name, r, ok := ruleFor(p.path)
		if !ok {
			t.Errorf("%s has no place in the import rules: add it to rules in %s and to docs/ARCHITECTURE.md", p.path, "internal/archtest")
			continue
		}
		for _, imp := range p.imports {
			if why := r.refuses(imp); why != "" {
				t.Errorf("%s imports %s: %s (rule %q)", p.path, imp, why, name)
			}
		}
	}
}

// TestRulesRefuse checks the checker: each of these imports breaks the intended directions.
func TestRulesRefuse(t *testing.T) {
	for _, c := range []struct{ pkg, imp string }{
		{"server", module + "/internal/provider/openai"},
		{"server", "github.com/openai/openai-go/v3"},
		{"gateway", module + "/internal/router"},
		{"gateway", module + "/internal/provider/mock"},
		{"internal/router", module + "/internal/provider/openai"},
		{"server", module + "/internal/app"},
		{"internal/llm", module + "/internal/errmap"},
		{"internal/audit", module + "/internal/session"},
		{"internal/session/tiered", module + "/server"},
		{"internal/provider/openai", module + "/internal/router"},
		{"bench/cmd/soak", module + "/internal/app"},
		{"internal/provider/batch", module + "/internal/provider/openai"},
		{"internal/provider/batch", "google.golang.org/grpc"},
		{"bench/internal/harness", module + "/gen/go/switchyard/v1"},
	} {
		_, r, ok := ruleFor(c.pkg)
		if !ok {
			t.Fatalf("no rule for %s", c.pkg)
		}
		if r.refuses(c.imp) == "" {
			t.Errorf("%s may import %s; the rules should refuse it", c.pkg, c.imp)
		}
	}
}

type pkg struct {
	path    string // module-relative
	imports []string
}

// packages lists the module's Go packages under root with their non-test imports.
func packages(t *testing.T, root string) []pkg {
	t.Helper()
	var out []pkg
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		bp, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, pkg{path: filepath.ToSlash(rel), imports: bp.Imports})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ruleFor returns the rule of the longest matching path.
func ruleFor(p string) (string, rule, bool) {
	best, found := "", false
	for name := range rules {
		if matches(name, p) && (!found || len(strings.TrimSuffix(name, "/...")) > len(strings.TrimSuffix(best, "/..."))) {
			best, found = name, true
		}
	}
	return best, rules[best], found
}

// matches reports whether p is pattern, or under it when pattern ends in "/...".
func matches(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

// refuses says why r does not allow imp, or "" when it does.
func (r rule) refuses(imp string) string {
	if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
		if slices.Contains(r.internal, "*") && (rel != "internal/app" || slices.Contains(r.internal, "internal/app")) {
			return ""
		}
		for _, a := range r.internal {
			if matches(a, rel) {
				return ""
			}
		}
		return "not among the layers this package may import"
	}
	if r.external == nil || isStd(imp) {
		return ""
	}
	for _, a := range r.external {
		if imp == strings.TrimSuffix(a, "/") || strings.HasPrefix(imp, a) || strings.HasPrefix(imp, a+"/") {
			return ""
		}
	}
	return "third-party module not allowed here"
}

// isStd reports whether imp is a standard-library path (no dot in its first element).
func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}
