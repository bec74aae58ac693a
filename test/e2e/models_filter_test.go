package e2e

import (
	"fmt"
	"slices"
	"testing"
)

// TestModelsListFollowsAllowedModels: GET /v1/models lists only what the key may use.
func TestModelsListFollowsAllowedModels(t *testing.T) {
	const wideKey, narrowKey = "sk-models-wide-0123456789", "sk-models-narrow-0123456789"
	g := startYAML(t, fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0, shutdown_timeout: 5s}
auth:
  mode: api_key
  api_keys:
    - {name: wide, key: %q, tenant: acme}
    - {name: narrow, key: %q, tenant: acme, models: [mock/echo]}
providers:
  - {name: mock, type: mock, models: [echo, tools, embed]}
`, wideKey, narrowKey))
	list := func(key string) []string {
		c := (&gateway{Instance: g}).sdk(key)
		page, err := c.Models.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		return ids
	}
	if got := list(wideKey); len(got) != 3 {
		t.Errorf("wide key lists %v; want the 3 mock models", got)
	}
	if got := list(narrowKey); !slices.Equal(got, []string{"mock/echo"}) {
		t.Errorf("narrow key lists %v; want only mock/echo", got)
	}
}
