// Package redistest connects tests to Redis: the single node the test environment provides, or
// a throwaway local cluster of redis-server processes.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/redisx"
)

// reachErr is the result of the first ping: an unreachable server is not retried by every test.
var (
	reachOnce sync.Once
	reachErr  error
)

// DefaultAddr is the node CI starts (.ci/run).
const DefaultAddr = "127.0.0.1:6379"

// Addr is the address of the test Redis: SWITCHYARD_TEST_REDIS, else DefaultAddr.
func Addr() string {
	if a := os.Getenv("SWITCHYARD_TEST_REDIS"); a != "" {
		return a
	}
	return DefaultAddr
}

// Client returns a client of the test Redis (SWITCHYARD_TEST_REDIS, else DefaultAddr), closed at
// the end of the test. Without a reachable server the test fails when CI is set and is skipped
// otherwise.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	addr := Addr()
	c, err := redisx.NewClient(redisx.Config{Addrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		reachErr = redisx.Ping(ctx, c)
	})
	if err := reachErr; err != nil {
		_ = c.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is unreachable (CI is set): %v", addr, err)
		}
		t.Skipf("Redis at %s is unreachable: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Prefix returns a key prefix unique to this run, and deletes every key under it at the end of
// the test (on every master, for a cluster).
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "sytest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		del := func(ctx context.Context, n *redis.Client) error {
			iter := n.Scan(ctx, 0, p+"*", 500).Iterator()
			for iter.Next(ctx) {
				n.Del(ctx, iter.Val())
			}
			return iter.Err()
		}
		var err error
		switch cc := c.(type) {
		case *redis.ClusterClient:
			err = cc.ForEachMaster(ctx, del)
		case *redis.Client:
			err = del(ctx, cc)
		}
		if err != nil {
			t.Errorf("clean up keys %s*: %v", p, err)
		}
	})
	return p
}

// Cluster starts a 3-master Redis Cluster of redis-server processes on free loopback ports in
// t.TempDir, and stops it at the end of the test. It skips the test, with the reason, when
// redis-server or redis-cli is missing or the cluster does not form.
func Cluster(t testing.TB) redis.UniversalClient {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		t.Skip("redis-server or redis-cli is not installed: cannot start a local cluster")
	}
	dir := t.TempDir()
	var addrs []string
	for i := range 3 {
		port, err := freePort()
		if err != nil {
			t.Skipf("no free port for a cluster node: %v", err)
		}
		nodeDir := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
			"--save", "", "--appendonly", "no", "--dir", nodeDir, "--protected-mode", "no")
		if err := startReady(cmd); err != nil {
			t.Skipf("redis-server on port %d: %v", port, err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Skipf("redis-cli --cluster create: %v: %s", err, out)
	}
	c, err := redisx.NewClient(redisx.Config{Addrs: addrs, Cluster: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// The cluster is usable once every node agrees all 16384 slots are served.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		ok := true
		for _, a := range addrs {
			n := redis.NewClient(&redis.Options{Addr: a})
			info, err := n.ClusterInfo(ctx).Result()
			_ = n.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				ok = false
			}
		}
		if ok && c.Ping(ctx).Err() == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Skip("local Redis Cluster did not reach cluster_state:ok within 20 s")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
	return c
}

// Server is a redis-server process of the test's own on a free loopback port, which the test
// may stop and start again (never the shared node of the other tests). It appends every write to
// its file before answering (appendfsync always), so a restart, even after a kill, keeps every
// acknowledged write, as a production Redis with AOF would.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// StartServer starts a Server and stops it at the end of the test. It skips the test when
// redis-server is missing or does not start.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: cannot start a private Redis")
	}
	port, err := freePort()
	if err != nil {
		t.Skipf("no free port for a private Redis: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: port}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Start starts the server (again) on its port and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir, "--protected-mode", "no")
	if err := startReady(cmd); err != nil {
		s.t.Fatalf("private redis-server on port %d: %v", s.port, err)
	}
	s.cmd = cmd
}

// Stop kills the server (SIGKILL: no goodbye to its clients) and waits for it to exit. Stopping
// a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// startReady starts a redis-server command and waits up to 10 s for "Ready to accept
// connections" on its standard output.
func startReady(cmd *exec.Cmd) error {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), "Ready to accept connections") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if ok {
			return nil
		}
		_ = cmd.Wait()
		return errors.New("exited before accepting connections")
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return errors.New("did not start within 10 s")
	}
}

// freePort returns a port p in [20000, 45000) with p and its cluster bus port p+10000 free.
func freePort() (int, error) {
	var lastErr error
	for range 50 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		p := 20000 + (int(b[0])<<8|int(b[1]))%25000
		l1, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			lastErr = err
			continue
		}
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000))
		_ = l1.Close()
		if err != nil {
			lastErr = err
			continue
		}
		_ = l2.Close()
		return p, nil
	}
	return 0, lastErr
}
