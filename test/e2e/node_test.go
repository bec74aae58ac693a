package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodeDir is the npm project with the Node clients; its node_modules comes from
// `npm ci` (make test-tools does it).
const nodeDir = "../node"

// TestNodeClients runs the Node scripts in test/node against a whole gateway: the official openai
// npm SDK over REST, and a Connect gRPC client generated from our protos. Each script is a
// node:test file that exits non-zero when a check fails; its output is the failure message.
func TestNodeClients(t *testing.T) {
	node := requireNode(t)
	g := startGateway(t, "")
	for _, script := range []string{"openai.test.js", "grpc.test.js"} {
		t.Run(script, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "--test-reporter=spec", script)
			cmd.Dir = nodeDir
			cmd.Env = append(os.Environ(),
				"SWITCHYARD_REST_URL="+g.restURL(),
				"SWITCHYARD_GRPC_ADDR="+g.GRPCAddr(),
				"SWITCHYARD_API_KEY="+clientKey,
				"NO_COLOR=1",
			)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node %s: %v\n%s", script, err, out)
			}
			if testing.Verbose() {
				t.Logf("node %s:\n%s", script, out)
			}
		})
	}
}

// requireNode returns the node binary once test/node's dependencies are installed. A missing
// node or node_modules fails the test.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: install Node.js 20 or later (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", ".package-lock.json")); err != nil {
		t.Fatalf("test/node/node_modules is not installed: run make test-tools (%v)", err)
	}
	return node
}
