// Package harness holds what the bench commands share: a real switchyard process started with a
// generated configuration (Gateway) and a zero-latency OpenAI-compatible upstream that can inject
// faults (Upstream).
package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// APIKey is the key every bench gateway accepts (tenant "bench").
const APIKey = "sk-bench-0123456789abcdef"

// AuthConfig is the gateway configuration's log and auth sections: JSON logs at info, API-key auth
// with APIKey. Callers append their providers (and the rest) to it.
var AuthConfig = fmt.Sprintf(`log: {level: info, format: json}
auth:
  mode: api_key
  api_keys:
    - {name: bench, key: %q, tenant: bench}
`, APIKey)

// GatewayOptions says how to start a gateway.
type GatewayOptions struct {
	Binary string // path to the switchyard binary
	Config string // the YAML configuration; listener addresses are set through the environment
	// Pin runs the gateway alone on CPU 0 (taskset) with GOMAXPROCS=1.
	Pin bool
	// Env are extra KEY=value environment variables (e.g. SSL_CERT_FILE for a test CA).
	Env []string
}

// Gateway is a running switchyard process on free loopback ports. Its data directory (the default
// SQLite audit log and sessions) and its log are in a temp dir that Stop removes.
type Gateway struct {
	HTTPAddr, GRPCAddr, AdminAddr string
	Procs                         string  // GOMAXPROCS: "1" when pinned, else "default"
	IdleRSS                       float64 // MiB, once ready
	Dir                           string  // the temp dir: switchyard.yaml, gateway.log, data/

	cmd     *exec.Cmd
	logPath string // the process's stdout and stderr
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// StartGateway starts the binary with o.Config and waits up to 10 s for /readyz.
func StartGateway(o GatewayOptions) (*Gateway, error) {
	abs, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "switchyard-bench")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "switchyard.yaml")
	if err := os.WriteFile(cfgPath, []byte(o.Config), 0o600); err != nil {
		return nil, err
	}
	g := &Gateway{Dir: dir, Procs: "default"}
	addrs := make([]string, 3)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	g.HTTPAddr, g.GRPCAddr, g.AdminAddr = addrs[0], addrs[1], addrs[2]
	args := []string{abs, "serve", "--config", cfgPath}
	if o.Pin {
		args = append([]string{"taskset", "-c", "0"}, args...)
		g.Procs = "1"
	}
	g.cmd = exec.Command(args[0], args[1:]...)
	g.cmd.Env = append(os.Environ(), "SWITCHYARD_HTTP_ADDR="+addrs[0], "SWITCHYARD_GRPC_ADDR="+addrs[1],
		"SWITCHYARD_ADMIN_ADDR="+addrs[2], "SWITCHYARD_DATA_DIR="+filepath.Join(dir, "data"))
	if o.Pin {
		g.cmd.Env = append(g.cmd.Env, "GOMAXPROCS=1")
	}
	g.cmd.Env = append(g.cmd.Env, o.Env...)
	logf, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.logPath = logf.Name()
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + g.AdminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 200 {
			g.Stop()
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("gateway not ready after 10s; log:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.IdleRSS = g.RSSMiB()
	return g, nil
}

// Stop interrupts the gateway, kills it after 10 s, and removes its temp dir.
func (g *Gateway) Stop() {
	_ = g.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
	}
	_ = os.RemoveAll(g.Dir)
}

// PID is the gateway's own pid (taskset execs it, so the pid is the same).
func (g *Gateway) PID() int { return g.cmd.Process.Pid }

// Admin GETs path from the admin listener and returns the body of a 200 answer.
func (g *Gateway) Admin(path string) ([]byte, error) {
	resp, err := http.Get("http://" + g.AdminAddr + path)
	if err != nil {
		return nil, err
	}
	b, err := ReadOK(resp)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return b, nil
}

// ReadOK reads and closes resp's body; an answer other than 200 is an error quoting the body.
func ReadOK(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

// CPUProfile saves a CPU profile of the next d (whole seconds, at least one) to path.
func (g *Gateway) CPUProfile(path string, d time.Duration) error {
	secs := max(int(d/time.Second), 1)
	b, err := g.Admin(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs))
	if err != nil {
		return fmt.Errorf("fetch CPU profile: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}

// CPU returns the gateway's user+system CPU time so far, in nanoseconds (all threads); 0 for a
// nil gateway (direct calls).
func (g *Gateway) CPU() int64 {
	if g == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", g.PID()))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return (ut + st) * int64(time.Second) / clkTck
}

// RSSMiB is the gateway's resident set (VmRSS), in MiB; 0 if it cannot be read.
func (g *Gateway) RSSMiB() float64 {
	rss, _ := g.Memory()
	return rss
}

// Memory returns the gateway's resident set (VmRSS) and its peak since start or since the last
// ResetPeak (VmHWM), in MiB; zeros if /proc/<pid>/status cannot be read.
func (g *Gateway) Memory() (rss, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.PID()))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[0], 64)
		if name == "VmRSS" {
			rss = kb / 1024
		} else {
			peak = kb / 1024
		}
	}
	return rss, peak
}

// ResetPeak resets the gateway's VmHWM to its current resident set (writes 5 to
// /proc/<pid>/clear_refs), so Memory's peak covers what follows.
func (g *Gateway) ResetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", g.PID()), []byte("5"), 0o200)
}

// OpenFDs counts the gateway's open file descriptors (/proc/<pid>/fd); -1 if it cannot.
func (g *Gateway) OpenFDs() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.PID()))
	if err != nil {
		return -1
	}
	return len(ents)
}

// Metric returns the value of an unlabelled series in a Prometheus text exposition.
func Metric(exposition []byte, name string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		rest, found := strings.CutPrefix(sc.Text(), name+" ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// LogSize is the current size of the process's log, for LogProblems.
func (g *Gateway) LogSize() int64 {
	fi, err := os.Stat(g.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LogProblems summarises the JSON log lines written after offset from at level ERROR, or WARN with
// an "error" field: the n most frequent "msg: error" pairs, each with its count, most frequent first.
func (g *Gateway) LogProblems(from int64, n int) []string {
	f, err := os.Open(g.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		level := strings.ToUpper(gjson.GetBytes(line, "level").String())
		e := gjson.GetBytes(line, "error").String()
		// WARN lines without an error field are access-log lines of failed calls, which say
		// nothing the matching "request failed" line does not.
		if level != "ERROR" && ((level != "WARN" && level != "WARNING") || e == "") {
			continue
		}
		key := gjson.GetBytes(line, "msg").String()
		if e != "" {
			key += ": " + e
		}
		if len(key) > 400 {
			key = key[:400]
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	if len(keys) > n {
		keys = keys[:n]
	}
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%d × %s", counts[k], k)
	}
	return keys
}
