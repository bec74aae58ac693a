package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/database"
)

// privatePostgres is a PostgreSQL server of the test's own, in a temporary directory on a free
// port, that the test may stop and start (never the shared server of the other tests).
type privatePostgres struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cred *syscall.Credential // run as the postgres user when the test runs as root
}

// startPrivatePostgres initialises and starts a server. It skips the test when the server
// binaries are missing: /usr/lib/postgresql/15/bin, or SWITCHYARD_TEST_PG_BIN.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bin := os.Getenv("SWITCHYARD_TEST_PG_BIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		t.Skipf("PostgreSQL server binaries not found (set SWITCHYARD_TEST_PG_BIN to their directory): %v", err)
	}
	// Not t.TempDir: the postgres user must be able to enter it.
	dir, err := os.MkdirTemp("", "switchyard-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	pg := &privatePostgres{t: t, bin: bin, dir: dir}
	if os.Geteuid() == 0 { // initdb and postgres refuse to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pg.run("initdb", "-D", pg.data(), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pg.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	pg.start()
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(pg.data(), "postmaster.pid")); err == nil {
			pg.run("pg_ctl", "-D", pg.data(), "-m", "immediate", "-w", "stop")
		}
	})
	return pg
}

func (pg *privatePostgres) data() string { return filepath.Join(pg.dir, "data") }

func (pg *privatePostgres) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

func (pg *privatePostgres) start() {
	pg.run("pg_ctl", "-D", pg.data(), "-l", filepath.Join(pg.dir, "log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %d -c fsync=off", pg.dir, pg.port), "start")
}

// stop stops the server as an operator would for maintenance: fast shutdown, sessions cut.
func (pg *privatePostgres) stop() { pg.run("pg_ctl", "-D", pg.data(), "-m", "fast", "-w", "stop") }

func (pg *privatePostgres) run(name string, args ...string) {
	pg.t.Helper()
	cmd := exec.Command(filepath.Join(pg.bin, name), args...)
	cmd.Dir = pg.dir
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "log"))
		pg.t.Fatalf("%s %s: %v\n%s\nserver log:\n%s", name, strings.Join(args, " "), err, out, log)
	}
}

// metricValue returns the value of the Prometheus sample name (without labels) on the admin
// listener, -1 when it is missing.
func metricValue(t *testing.T, g *gateway, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + g.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && (f[0] == name || strings.HasPrefix(f[0], name+"{")) {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

// chatAs sends one chat completion with request id id and key, over REST when rest, else over
// gRPC, and returns the error of a refusal (HTTP status and body, or the gRPC status).
func chatAs(ctx context.Context, g *gateway, cc pb.ChatServiceClient, key, id string, rest bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !rest {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key, "x-request-id", id)
		_, err := cc.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "mock/echo",
			Messages: []*pb.ChatMessage{textMsg("user", "hi "+id)}})
		return err
	}
	body := fmt.Sprintf(`{"model":"mock/echo","messages":[{"role":"user","content":"hi %s"}]}`, id)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.restURL()+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return nil
}

// auditRecordCounts returns the number of records of each request id of tenant, after checking
// that every chain in the database verifies.
func auditRecordCounts(t *testing.T, dsn, tenant string) map[string]int {
	t.Helper()
	ctx := t.Context()
	db, err := database.Open(ctx, database.Config{Driver: database.Postgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := audit.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if problems, _, err := st.Verify(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("audit verify: %v %v", problems, err)
	}
	rows, err := db.QueryContext(ctx, "SELECT request_id, COUNT(*) FROM audit_records WHERE tenant = $1 GROUP BY request_id", tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

func shutdown(t *testing.T, g *gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitMetric waits up to 60 s for the admin listener's sample name to equal want.
func waitMetric(t *testing.T, g *gateway, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for metricValue(t, g, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %v within 60 s (now %v)", name, want, metricValue(t, g, name))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuditSurvivesPostgresRestart stops the audit log's PostgreSQL in the middle of audited
// traffic (REST and gRPC), keeps sending for a few seconds, and starts it again: no request is
// refused while the spool has room (the tenant requires audit, fail_closed), the spool takes the
// records while the database is down and drains once it is back, and afterwards every request
// has exactly one record and every chain verifies.
func TestAuditSurvivesPostgresRestart(t *testing.T) {
	pg := startPrivatePostgres(t)
	g := startGateway(t, fmt.Sprintf(`
audit:
  enabled: true
  sql: {driver: postgres, dsn: %q}
  required_tenants: [e2e]
  on_spool_full: fail_closed
`, pg.dsn()))
	cc := pb.NewChatServiceClient(g.grpcConn(t))
	var mu sync.Mutex
	var sent []string
	next := 0
	// traffic sends requests from 4 clients until until returns true.
	traffic := func(until func() bool) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for !until() {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					id := fmt.Sprintf("outage-%05d", i)
					if err := chatAs(t.Context(), g, cc, clientKey, id, i%2 == 0); err != nil {
						t.Errorf("request %s refused: %v", id, err)
						return
					}
					mu.Lock()
					sent = append(sent, id)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	count := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return next >= n }
	}

	traffic(count(60)) // database up
	pg.stop()
	stopped, downFrom := time.Now(), next
	traffic(func() bool { return time.Since(stopped) > 3*time.Second }) // down: the spool takes the records
	downTo := next
	if v := metricValue(t, g, "switchyard_audit_spool_records"); v <= 0 {
		t.Errorf("switchyard_audit_spool_records = %v with the database down, want > 0", v)
	}
	pg.start()
	traffic(count(next + 100)) // back: the spool drains first, then new records go straight on
	waitMetric(t, g, "switchyard_audit_spool_records", 0)
	if v := metricValue(t, g, "switchyard_audit_records_replayed_total"); v <= 0 {
		t.Errorf("switchyard_audit_records_replayed_total = %v, want > 0", v)
	}
	if v := metricValue(t, g, "switchyard_audit_records_dropped_total"); v > 0 {
		t.Errorf("switchyard_audit_records_dropped_total = %v, want none", v)
	}
	shutdown(t, g)

	counts := auditRecordCounts(t, pg.dsn(), "e2e")
	for _, id := range sent {
		if counts[id] != 1 {
			t.Errorf("request %s has %d audit records, want 1", id, counts[id])
		}
	}
	if len(counts) != len(sent) || len(sent) != next {
		t.Errorf("%d requests sent, %d accepted, %d request ids in the audit log", next, len(sent), len(counts))
	}
	t.Logf("%d requests, %d while the database was down", len(sent), downTo-downFrom)
}

// TestAuditSpoolFullRefuses fills a small spool with the audit database down: then a tenant
// that requires audit is refused (REST 503 with an OpenAI error body, gRPC UNAVAILABLE) while
// another tenant is still served; once the database is back and the spool drained, the first
// tenant is served again, and every request it was served has exactly one record.
func TestAuditSpoolFullRefuses(t *testing.T) {
	pg := startPrivatePostgres(t)
	const otherKey = "sk-e2e-other-0123456789"
	g := &gateway{Instance: startYAML(t, fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0}
auth:
  mode: api_key
  api_keys:
    - {name: e2e, key: %q, tenant: e2e}
    - {name: other, key: %q, tenant: other}
providers:
  - {name: mock, type: mock, models: [echo]}
audit:
  enabled: true
  sql: {driver: postgres, dsn: %q}
  spool: {max_bytes: 16384}
  required_tenants: [e2e]
`, clientKey, otherKey, pg.dsn()))}
	cc := pb.NewChatServiceClient(g.grpcConn(t))
	var served []string
	send := func(i int) error {
		id := fmt.Sprintf("full-%05d", i)
		err := chatAs(t.Context(), g, cc, clientKey, id, i%2 == 0)
		if err == nil {
			served = append(served, id)
		}
		return err
	}
	for i := range 5 {
		if err := send(i); err != nil {
			t.Fatal(err)
		}
	}
	pg.stop()
	i := 5
	var restErr, grpcErr error
	for ; i < 20000 && (restErr == nil || grpcErr == nil); i++ { // the buffer and a few batches in memory come first
		err := send(i)
		switch {
		case err == nil:
		case i%2 == 0:
			restErr = err
		default:
			grpcErr = err
		}
	}
	if restErr == nil || !strings.Contains(restErr.Error(), "status 503") || !strings.Contains(restErr.Error(), `"code":"audit_unavailable"`) ||
		!strings.Contains(restErr.Error(), "audit log unavailable") {
		t.Errorf("REST with the spool full: %v; want 503 with an audit_unavailable error body", restErr)
	}
	if status.Code(grpcErr) != codes.Unavailable {
		t.Errorf("gRPC with the spool full: %v; want UNAVAILABLE", grpcErr)
	}
	if err := chatAs(t.Context(), g, cc, otherKey, "other-1", true); err != nil {
		t.Errorf("tenant without required audit, spool full: %v; want served", err)
	}
	if v := metricValue(t, g, "switchyard_audit_requests_refused_total"); v < 2 {
		t.Errorf("switchyard_audit_requests_refused_total = %v, want >= 2", v)
	}
	pg.start()
	waitMetric(t, g, "switchyard_audit_spool_records", 0)
	deadline := time.Now().Add(30 * time.Second)
	for send(i) != nil {
		if time.Now().After(deadline) {
			t.Fatal("still refused 30 s after the spool drained")
		}
		i++
		time.Sleep(20 * time.Millisecond)
	}
	shutdown(t, g)
	counts := auditRecordCounts(t, pg.dsn(), "e2e")
	for _, id := range served {
		if counts[id] != 1 {
			t.Errorf("served request %s has %d audit records, want 1", id, counts[id])
		}
	}
	t.Logf("%d requests served, %d sent before both transports were refused", len(served), i)
}
