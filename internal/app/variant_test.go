package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEdgeBuild builds the edge variant (go build -tags edge, docs/edge-build.md) once and runs
// its smoke test: config check passes on configs/switchyard.edge.yaml, serve with the built-in
// config (mock provider) answers /readyz and a chat completion over REST, and configs naming
// what the edge build leaves out (bedrock, kserve, postgres) fail at start with a clear message.
func TestEdgeBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchyard-edge")
	// Under go test -race (make test) the edge binary is built with -race too: the packages the
	// edge tag does not touch are then already compiled, and the build takes seconds, not minutes.
	// Otherwise it is built as make build-edge builds it, with CGO_ENABLED=0.
	args := []string{"build", "-tags", "edge", "-o", bin}
	build := exec.Command(gobin, append(args, "../../cmd/switchyard")...)
	if raceEnabled {
		build = exec.Command(gobin, append(args, "-race", "../../cmd/switchyard")...)
	} else {
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags edge: %v\n%s", err, out)
	}
	// The edge binary holds neither the AWS SDK nor pgx.
	if out, err := exec.Command(gobin, "version", "-m", bin).Output(); err != nil {
		t.Fatalf("go version -m: %v", err)
	} else {
		for _, mod := range []string{"github.com/aws/aws-sdk-go-v2", "github.com/jackc/pgx"} {
			if bytes.Contains(out, []byte(mod)) {
				t.Errorf("edge binary depends on %s", mod)
			}
		}
	}

	env := func(kv ...string) []string {
		return append(os.Environ(), append([]string{"SWITCHYARD_CONFIG=", "SWITCHYARD_DATA_DIR=" + filepath.Join(dir, "data")}, kv...)...)
	}
	run := func(args []string, kv ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env(kv...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := run([]string{"version"}); err != nil || !strings.Contains(out, "(edge build)") {
		t.Errorf("version: %v %q", err, out)
	}
	if out, err := run([]string{"config", "check", "--config", "../../configs/switchyard.edge.yaml"}, "SWITCHYARD_API_KEY=edge-test-key"); err != nil {
		t.Errorf("config check configs/switchyard.edge.yaml: %v\n%s", err, out)
	}

	for _, c := range []struct{ yaml, want string }{
		{"providers: [{name: aws, type: bedrock, models: [m]}]\n", `provider type "bedrock" is not in this build (edge); use the full build`},
		{"providers: [{name: triton, type: kserve, base_url: 'http://127.0.0.1:1', models: [m]}]\n", `provider type "kserve" is not in this build (edge); use the full build`},
		{"providers: [{name: mock, type: mock, models: [echo]}]\naudit: {enabled: true, sql: {driver: postgres, dsn: 'postgres://127.0.0.1:1/x'}}\n", `audit.sql.driver: database driver "postgres" is not in this build (edge); use the full build`},
	} {
		path := filepath.Join(dir, "left-out.yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"config", "check", "--config", path}, {"serve", "--config", path}} {
			out, err := run(args)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("%s with %q: err %v, output %q; want an error saying %q", args[0], c.yaml, err, out, c.want)
			}
		}
	}

	httpAddr, grpcAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve")
	serve.Env = env("SWITCHYARD_HTTP_ADDR="+httpAddr, "SWITCHYARD_GRPC_ADDR="+grpcAddr, "SWITCHYARD_ADMIN_ADDR="+adminAddr)
	var logs bytes.Buffer
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = serve.Process.Signal(os.Interrupt)
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("serve logs:\n%s", logs.String())
		}
	}()
	ready := false
	for !ready && ctx.Err() == nil {
		if resp, err := http.Get("http://" + adminAddr + "/readyz"); err == nil {
			ready = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		if !ready {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatal("edge serve: /readyz never answered 200")
	}
	resp, err := http.Post("http://"+httpAddr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"mock/echo","messages":[{"role":"user","content":"hello edge"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var chat struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &chat) != nil || len(chat.Choices) != 1 || !strings.Contains(chat.Choices[0].Message.Content, "hello edge") {
		t.Fatalf("chat completion: %d %s", resp.StatusCode, body)
	}
}

// freeAddr is a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
