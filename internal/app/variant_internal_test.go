package app

import (
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/provider"
)

// TestValidateVariant: with a left-out list (the edge build's, swapped in), configs naming a
// left-out provider type or SQL driver fail validation with the field and a clear reason, and
// are not also reported as unknown types. TestEdgeBuild checks the real edge binary.
func TestValidateVariant(t *testing.T) {
	saved := leftOut
	t.Cleanup(func() { leftOut = saved })
	leftOut = edgeLeftOut{ProviderTypes: []string{"bedrock"}, SQLDrivers: []string{"postgres"}}

	c := DefaultConfig()
	c.Providers = append(c.Providers, provider.Config{Name: "aws", Type: "bedrock", Models: []string{"m"}})
	c.Keys.SQL.Driver, c.Keys.SQL.DSN = "postgres", "postgres://127.0.0.1:1/x"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate passed a config naming left-out parts")
	}
	msg := err.Error()
	for _, want := range []string{
		`providers[1] (aws): provider type "bedrock" is not in this build (` + buildVariant + `); use the full build`,
		`keys.sql.driver: database driver "postgres" is not in this build`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "unknown type") {
		t.Errorf("a left-out type is also reported unknown: %q", msg)
	}

	leftOut = saved
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "not in this build") {
		t.Errorf("the full build refuses: %v", err)
	}
}
