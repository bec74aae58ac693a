// Command levers measures the seed's throughput levers on the real switchyard binary, each on vs
// off in the same run (bench/README.md, "Throughput levers: compression, HTTP/2, pooling"):
//
//   - compression: REST (gzip request bodies, gzip answers, SSE streams with server.compress_streams)
//     and native gRPC (none, gzip, zstd), for a typical chat and a typical embedding call: bytes
//     on the wire between client and gateway, and gateway CPU per request;
//   - HTTP/2 on the REST listener: HTTP/1.1 (one connection per worker) vs h2c (one connection);
//   - upstream connections: a TLS upstream reached by HTTP/1.1 pooled, HTTP/2 pooled, and a new
//     TLS connection per request (the upstream closes each one); plaintext HTTP/1.1 vs h2c;
//   - all levers off vs all on, on the same load.
//
// The upstreams are zero-latency and local (this process); their answers are typical OpenAI
// payloads (a 700-character chat answer, 8 embeddings of 1,536 dimensions). The gateway runs with
// production defaults (API-key auth, audit, access log, tracing), pinned alone to CPU 0 with
// GOMAXPROCS=1; this process is pinned to CPU 1.
//
//	make build && go run ./bench/cmd/levers -binary bin/switchyard
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // the gzip compressor for gRPC calls
	"google.golang.org/grpc/metadata"

	"github.com/klauspost/compress/zstd"

	"github.com/switchyard/switchyard/bench/internal/harness"
	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/switchyard", "switchyard binary")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured time per case")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up per case")
	flag.IntVar(&o.workers, "workers", 16, "concurrent requests (closed loop)")
	flag.IntVar(&o.rounds, "rounds", 1, "times the whole list of cases is run; medians are reported")
	flag.BoolVar(&o.pin, "pin", runtime.NumCPU() >= 2, "pin the gateway to CPU 0 and this process to CPU 1")
	flag.StringVar(&o.only, "only", "", "run only the groups whose name contains this (compression, h2c, upstream, all)")
	flag.StringVar(&o.out, "out", "", "also write the report (markdown) to this file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "levers:", err)
		os.Exit(1)
	}
}

type options struct {
	binary           string
	duration, warmup time.Duration
	workers, rounds  int
	pin              bool
	only, out        string
}

// ---- typical payloads ----

const systemPrompt = `You are a support assistant for an online bookshop. Answer questions about orders, ` +
	`shipping, returns and book recommendations. Be concise and friendly, cite the order number when the ` +
	`customer gives one, and never invent tracking information. If you do not know, say so and offer to ` +
	`hand the conversation to a human colleague.`

const userTurn1 = `Hi, I ordered "The Left Hand of Darkness" and "A Wizard of Earthsea" last Tuesday (order ` +
	`#48213) but the tracking page still says "label created". Is something wrong?`

const assistantTurn1 = `Thanks for the order number. A "label created" status usually means the parcel is ` +
	`packed and waiting for the carrier's first scan, which can take one or two working days.`

const userTurn2 = `OK. It's a birthday present for Saturday though. Can I still change the delivery to ` +
	`express, and if not, what would you recommend by the same author that I could pick up in a shop?`

// chatAnswer is the upstream's answer text: about 700 characters of prose.
const chatAnswer = `I understand the timing matters. Because order #48213 already has a shipping label, ` +
	`I can't switch it to express from here, but our team can intercept it at the depot and re-send it by ` +
	`express for the difference in price; reply "yes" and I'll pass that on now. If you'd rather have ` +
	`something in hand by Saturday, Ursula K. Le Guin's "The Dispossessed" is a natural next read after ` +
	`"The Left Hand of Darkness": it is set in the same Hainish universe and won the same awards. For a ` +
	`younger reader who enjoyed Earthsea, "The Tombs of Atuan" continues Ged's story. Both are usually in ` +
	`stock at our partner shops; I can check the one nearest to you if you tell me your town.`

var embedTexts = []string{
	"Return policy: books can be returned within 30 days in their original condition.",
	"Express delivery arrives the next working day when ordered before 2 pm.",
	"Gift wrapping is available for paperbacks and hardbacks at checkout.",
	"The Hainish Cycle is a series of science fiction novels by Ursula K. Le Guin.",
	"Tracking numbers are emailed once the carrier has scanned the parcel.",
	"Signed first editions are sold out and will not be restocked.",
	"Our partner shops hold orders for collection for seven days.",
	"Loyalty points expire twelve months after they were earned.",
}

const embedDims = 1536

func chatJSON(stream bool) []byte {
	msgs := []struct{ role, text string }{{"system", systemPrompt}, {"user", userTurn1}, {"assistant", assistantTurn1}, {"user", userTurn2}}
	var b strings.Builder
	b.WriteString(`{"model":"MODEL","messages":[`)
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"role":%q,"content":%s}`, m.role, strconv.Quote(m.text))
	}
	b.WriteString(`],"temperature":0.7,"max_tokens":512`)
	if stream {
		b.WriteString(`,"stream":true,"stream_options":{"include_usage":true}`)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func embedJSON() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"MODEL","input":[`)
	for i, t := range embedTexts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(t))
	}
	b.WriteString(`],"encoding_format":"float"}`)
	return []byte(b.String())
}

func withModel(body []byte, model string) []byte {
	return bytes.Replace(body, []byte("MODEL"), []byte(model), 1)
}

// ---- the upstream ----

type upstream struct {
	chat, embed []byte
	chunks      [][]byte
}

func newUpstream() *upstream {
	u := &upstream{}
	u.chat = fmt.Appendf(nil, `{"id":"chatcmpl-lever","object":"chat.completion","created":1700000000,"model":"m",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop","logprobs":null}],`+
		`"usage":{"prompt_tokens":182,"completion_tokens":151,"total_tokens":333}}`, strconv.Quote(chatAnswer))
	rng := mrand.New(mrand.NewPCG(1, 2))
	var e strings.Builder
	e.WriteString(`{"object":"list","model":"m","data":[`)
	for i := range embedTexts {
		if i > 0 {
			e.WriteByte(',')
		}
		fmt.Fprintf(&e, `{"object":"embedding","index":%d,"embedding":[`, i)
		for d := range embedDims {
			if d > 0 {
				e.WriteByte(',')
			}
			e.WriteString(strconv.FormatFloat(float64(float32(rng.NormFloat64()*0.03)), 'f', -1, 32))
		}
		e.WriteString("]}")
	}
	e.WriteString(`],"usage":{"prompt_tokens":120,"total_tokens":120}}`)
	u.embed = []byte(e.String())
	words := strings.SplitAfter(chatAnswer, " ")
	per := (len(words) + 19) / 20
	chunk := func(delta string) []byte {
		return fmt.Appendf(nil, `data: {"id":"chatcmpl-lever","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":%s,"finish_reason":null}]}`+"\n\n", delta)
	}
	u.chunks = append(u.chunks, chunk(`{"role":"assistant","content":""}`))
	for i := 0; i < len(words); i += per {
		u.chunks = append(u.chunks, chunk(`{"content":`+strconv.Quote(strings.Join(words[i:min(i+per, len(words))], ""))+`}`))
	}
	u.chunks = append(u.chunks,
		[]byte(`data: {"id":"chatcmpl-lever","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"),
		[]byte(`data: {"id":"chatcmpl-lever","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[],"usage":{"prompt_tokens":182,"completion_tokens":151,"total_tokens":333}}`+"\n\n"),
		[]byte("data: [DONE]\n\n"))
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		_, _ = w.Write(u.embed)
	case !strings.HasSuffix(r.URL.Path, "/chat/completions"):
		http.NotFound(w, r)
	case bytes.Contains(body, []byte(`"stream":true`)):
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, c := range u.chunks {
			if _, err := w.Write(c); err != nil {
				return
			}
			_ = rc.Flush()
		}
	default:
		_, _ = w.Write(u.chat)
	}
}

// counter counts the bytes read and written on connections, and the connections.
type counter struct{ in, out, conns atomic.Int64 }

func (c *counter) reset() { c.in.Store(0); c.out.Store(0); c.conns.Store(0) }

type countedConn struct {
	net.Conn
	c *counter
}

func (cc countedConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.in.Add(int64(n))
	return n, err
}

func (cc countedConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.out.Add(int64(n))
	return n, err
}

type countedListener struct {
	net.Listener
	c *counter
}

func (l countedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.conns.Add(1)
	return countedConn{conn, l.c}, nil
}

// serveUpstream serves u on a counted loopback listener: plaintext (HTTP/1.1 and h2c), or TLS
// with cert (HTTP/1.1 and h2 by ALPN; with keepAlive false, HTTP/1.1 only and every connection
// closed after its answer).
func serveUpstream(u *upstream, cert *tls.Certificate, keepAlive bool) (addr string, c *counter, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	c = &counter{}
	var lis net.Listener = countedListener{ln, c}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	var p http.Protocols
	p.SetHTTP1(true)
	if cert != nil {
		protos := []string{"h2", "http/1.1"}
		if keepAlive {
			p.SetHTTP2(true)
		} else {
			protos = protos[1:]
		}
		lis = tls.NewListener(lis, &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: protos})
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &p
	srv.SetKeepAlivesEnabled(keepAlive)
	go func() { _ = srv.Serve(lis) }()
	return ln.Addr().String(), c, nil
}

// selfSigned makes a CA-flagged certificate for 127.0.0.1 and writes it as PEM to dir/ca.pem.
func selfSigned(dir string) (*tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "levers upstream"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, "", err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path, nil
}

// ---- clients ----

func h1Client(c *counter, workers int) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c.conns.Add(1)
			return countedConn{conn, c}, nil
		},
		MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2, DisableCompression: true, IdleConnTimeout: time.Minute,
	}}
}

func h2cClient(c *counter) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{
		Protocols: &p,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c.conns.Add(1)
			return countedConn{conn, c}, nil
		},
		DisableCompression: true,
	}}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// restCall returns one call: POST body (gzip-coded when zbody is set) to url, asking for gzip
// answers when acceptGzip; the answer is read whole (and decoded) and checked for want.
func restCall(client *http.Client, url string, body []byte, zbody, acceptGzip bool, want string) func() error {
	if zbody {
		body = gzipBytes(body)
	}
	return func() error {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+harness.APIKey)
		req.Header.Set("Content-Type", "application/json")
		if zbody {
			req.Header.Set("Content-Encoding", "gzip")
		}
		if acceptGzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				return err
			}
			r = zr
		} else if acceptGzip && resp.StatusCode == http.StatusOK {
			return errors.New("asked for gzip, got an uncompressed answer")
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(want)) {
			return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
		}
		return nil
	}
}

type zstdCompressor struct{}

func (zstdCompressor) Name() string { return "zstd" }
func (zstdCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
}
func (zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}

func grpcConn(addr string, c *counter) (*grpc.ClientConn, error) {
	d := &net.Dialer{}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, "tcp", a)
			if err != nil {
				return nil, err
			}
			c.conns.Add(1)
			return countedConn{conn, c}, nil
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
}

func grpcChat(conn *grpc.ClientConn, model, compressor string) func() error {
	text := func(s string) *pb.MessageContent {
		return &pb.MessageContent{Content: &pb.MessageContent_Text{Text: s}}
	}
	req := &pb.CreateChatCompletionRequest{Model: model, Messages: []*pb.ChatMessage{
		{Role: "system", Content: text(systemPrompt)}, {Role: "user", Content: text(userTurn1)},
		{Role: "assistant", Content: text(assistantTurn1)}, {Role: "user", Content: text(userTurn2)}}}
	client := pb.NewChatServiceClient(conn)
	var opts []grpc.CallOption
	if compressor != "" {
		opts = append(opts, grpc.UseCompressor(compressor))
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+harness.APIKey)
	return func() error {
		resp, err := client.CreateChatCompletion(ctx, req, opts...)
		if err != nil {
			return err
		}
		if !strings.Contains(resp.GetChoices()[0].GetMessage().GetContent(), "Hainish") {
			return errors.New("unexpected chat answer")
		}
		return nil
	}
}

func grpcEmbed(conn *grpc.ClientConn, model, compressor string) func() error {
	req := &pb.CreateEmbeddingRequest{Model: model, Input: &pb.EmbeddingInput{Texts: embedTexts}}
	client := pb.NewEmbeddingServiceClient(conn)
	var opts []grpc.CallOption
	if compressor != "" {
		opts = append(opts, grpc.UseCompressor(compressor))
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+harness.APIKey)
	return func() error {
		resp, err := client.CreateEmbedding(ctx, req, opts...)
		if err != nil {
			return err
		}
		if len(resp.GetData()) != len(embedTexts) || len(resp.GetData()[0].GetEmbedding()) != embedDims {
			return errors.New("unexpected embeddings")
		}
		return nil
	}
}

// ---- measuring ----

type sample struct {
	n, errs       int
	firstErr      error
	elapsed       time.Duration
	p50, p99      time.Duration
	cpuPerReq     time.Duration
	wirePerReq    float64 // client <-> gateway, both directions
	upPerReq      float64 // gateway <-> upstream, both directions
	upConnsPerReq float64
}

func (s sample) rps() float64 { return float64(s.n) / s.elapsed.Seconds() }

type testCase struct {
	group, name string
	gw          *harness.Gateway
	client      *counter // counts the client's connections to the gateway
	up          *counter // counts the upstream's side
	call        func() error
}

func measure(tc testCase, workers int, warmup, d time.Duration) sample {
	loop := func(until time.Time, lat *[]time.Duration, mu *sync.Mutex, errs *int, first *error) {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				var mine []time.Duration
				for time.Now().Before(until) {
					t0 := time.Now()
					err := tc.call()
					if err != nil {
						mu.Lock()
						*errs++
						if *first == nil {
							*first = err
						}
						mu.Unlock()
						continue
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				*lat = append(*lat, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	var mu sync.Mutex
	var discard []time.Duration
	var werrs int
	var wfirst error
	loop(time.Now().Add(warmup), &discard, &mu, &werrs, &wfirst)

	tc.client.reset()
	tc.up.reset()
	cpu0 := tc.gw.CPU()
	start := time.Now()
	var lat []time.Duration
	var s sample
	loop(start.Add(d), &lat, &mu, &s.errs, &s.firstErr)
	s.elapsed = time.Since(start)
	cpu := tc.gw.CPU() - cpu0
	s.n = len(lat)
	if s.n == 0 {
		return s
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	s.p50, s.p99 = lat[s.n/2], lat[min(s.n-1, s.n*99/100)]
	s.cpuPerReq = time.Duration(cpu / int64(s.n))
	s.wirePerReq = float64(tc.client.in.Load()+tc.client.out.Load()) / float64(s.n)
	s.upPerReq = float64(tc.up.in.Load()+tc.up.out.Load()) / float64(s.n)
	s.upConnsPerReq = float64(tc.up.conns.Load()) / float64(s.n)
	return s
}

func median[T any](xs []T, key func(T) float64) T {
	sorted := append([]T(nil), xs...)
	sort.Slice(sorted, func(i, j int) bool { return key(sorted[i]) < key(sorted[j]) })
	return sorted[len(sorted)/2]
}

// ---- the run ----

func gatewayConfig(plain, tlsKeep, tlsClose string, compressStreams bool) string {
	cfg := fmt.Sprintf("server: {compress_streams: %v}\n", compressStreams) + harness.AuthConfig + fmt.Sprintf(`providers:
  - {name: plain, type: openai, base_url: "http://%[1]s/v1", api_key: sk-up}
  - {name: h2c, type: openai, base_url: "http://%[1]s/v1", api_key: sk-up, http2: h2c}
  - {name: tlsh1, type: openai, base_url: "https://%[2]s/v1", api_key: sk-up, http2: "off"}
  - {name: tlsh2, type: openai, base_url: "https://%[2]s/v1", api_key: sk-up}
  - {name: tlsnew, type: openai, base_url: "https://%[3]s/v1", api_key: sk-up, http2: "off"}
`, plain, tlsKeep, tlsClose)
	return cfg
}

func run(o options) error {
	if o.pin {
		var set unix.CPUSet
		set.Set(1)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin to CPU 1: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "levers")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cert, caFile, err := selfSigned(dir)
	if err != nil {
		return err
	}
	encoding.RegisterCompressor(zstdCompressor{})
	u := newUpstream()
	plainAddr, plainC, err := serveUpstream(u, nil, true)
	if err != nil {
		return err
	}
	keepAddr, keepC, err := serveUpstream(u, cert, true)
	if err != nil {
		return err
	}
	closeAddr, closeC, err := serveUpstream(u, cert, false)
	if err != nil {
		return err
	}
	env := []string{"SSL_CERT_FILE=" + caFile}
	gw, err := harness.StartGateway(harness.GatewayOptions{Binary: o.binary, Pin: o.pin, Env: env,
		Config: gatewayConfig(plainAddr, keepAddr, closeAddr, false)})
	if err != nil {
		return err
	}
	defer gw.Stop()
	gwz, err := harness.StartGateway(harness.GatewayOptions{Binary: o.binary, Pin: o.pin, Env: env,
		Config: gatewayConfig(plainAddr, keepAddr, closeAddr, true)})
	if err != nil {
		return err
	}
	defer gwz.Stop()

	cc := &counter{}
	h1, h2 := h1Client(cc, o.workers), h2cClient(cc)
	gconn, err := grpcConn(gw.GRPCAddr, cc)
	if err != nil {
		return err
	}
	defer gconn.Close()
	chatURL, embedURL := "http://"+gw.HTTPAddr+"/v1/chat/completions", "http://"+gw.HTTPAddr+"/v1/embeddings"
	chat, stream, embed := chatJSON(false), chatJSON(true), embedJSON()
	const wantChat, wantEmbed, wantStream = "Hainish", `"embedding"`, "data: [DONE]"

	var cases []testCase
	add := func(group, name string, g *harness.Gateway, up *counter, call func() error) {
		cases = append(cases, testCase{group: group, name: name, gw: g, client: cc, up: up, call: call})
	}
	// Compression, REST and gRPC; every call goes to the plaintext upstream over HTTP/1.1.
	add("compression", "REST chat, identity", gw, plainC, restCall(h1, chatURL, withModel(chat, "plain/m"), false, false, wantChat))
	add("compression", "REST chat, gzip request + answer", gw, plainC, restCall(h1, chatURL, withModel(chat, "plain/m"), true, true, wantChat))
	add("compression", "REST embeddings, identity", gw, plainC, restCall(h1, embedURL, withModel(embed, "plain/m"), false, false, wantEmbed))
	add("compression", "REST embeddings, gzip request + answer", gw, plainC, restCall(h1, embedURL, withModel(embed, "plain/m"), true, true, wantEmbed))
	zStreamURL := "http://" + gwz.HTTPAddr + "/v1/chat/completions"
	add("compression", "REST stream (24 events), identity", gwz, plainC, restCall(h1, zStreamURL, withModel(stream, "plain/m"), false, false, wantStream))
	add("compression", "REST stream (24 events), gzip (compress_streams)", gwz, plainC, restCall(h1, zStreamURL, withModel(stream, "plain/m"), false, true, wantStream))
	for _, c := range []string{"", "gzip", "zstd"} {
		label := c
		if label == "" {
			label = "none"
		}
		add("compression", "gRPC chat, "+label, gw, plainC, grpcChat(gconn, "plain/m", c))
	}
	for _, c := range []string{"", "gzip", "zstd"} {
		label := c
		if label == "" {
			label = "none"
		}
		add("compression", "gRPC embeddings, "+label, gw, plainC, grpcEmbed(gconn, "plain/m", c))
	}
	// HTTP/2 on the REST listener.
	add("h2c", "REST chat over HTTP/1.1 (a connection per worker)", gw, plainC, restCall(h1, chatURL, withModel(chat, "plain/m"), false, false, wantChat))
	add("h2c", "REST chat over h2c (one connection)", gw, plainC, restCall(h2, chatURL, withModel(chat, "plain/m"), false, false, wantChat))
	// Upstream connections.
	for _, m := range []struct {
		name, model string
		up          *counter
	}{
		{"plaintext upstream, HTTP/1.1 pooled", "plain/m", plainC},
		{"plaintext upstream, h2c pooled", "h2c/m", plainC},
		{"TLS upstream, new connection per request (HTTP/1.1)", "tlsnew/m", closeC},
		{"TLS upstream, HTTP/1.1 pooled", "tlsh1/m", keepC},
		{"TLS upstream, HTTP/2 pooled", "tlsh2/m", keepC},
	} {
		add("upstream", m.name, gw, m.up, restCall(h1, chatURL, withModel(chat, m.model), false, false, wantChat))
	}
	// Everything off vs everything on, same load.
	add("all", "all off: HTTP/1.1, identity, TLS upstream with a new connection per request", gw, closeC,
		restCall(h1, chatURL, withModel(chat, "tlsnew/m"), false, false, wantChat))
	add("all", "all on: h2c, gzip both ways, TLS upstream over pooled HTTP/2", gw, keepC,
		restCall(h2, chatURL, withModel(chat, "tlsh2/m"), true, true, wantChat))

	var selected []testCase
	for _, tc := range cases {
		if o.only == "" || strings.Contains(tc.group, o.only) {
			selected = append(selected, tc)
		}
	}
	// Check every case once before measuring.
	for _, tc := range selected {
		if err := tc.call(); err != nil {
			return fmt.Errorf("%s: %w", tc.name, err)
		}
	}
	results := make([][]sample, len(selected))
	for r := range o.rounds {
		for i, tc := range selected {
			s := measure(tc, o.workers, o.warmup, o.duration)
			if s.errs > 0 {
				fmt.Fprintf(os.Stderr, "round %d, %s: %d errors, first: %v\n", r+1, tc.name, s.errs, s.firstErr)
			}
			results[i] = append(results[i], s)
		}
	}

	var b strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "levers: %d workers, %v per case (+%v warm-up), %d round(s), medians; gateway pinned: %v; load average at the end: %s\n\n",
		o.workers, o.duration, o.warmup, o.rounds, o.pin, strings.Join(strings.Fields(string(load))[:3], " "))
	group := ""
	for i, tc := range selected {
		if tc.group != group {
			group = tc.group
			fmt.Fprintf(&b, "\n%s\n\n| case | req/s | p50 | p99 | gateway CPU/req | client↔gateway bytes/req | gateway↔upstream bytes/req | upstream conns/req | errors |\n|---|---|---|---|---|---|---|---|---|\n", group)
		}
		rps := median(results[i], sample.rps)
		cpu := median(results[i], func(s sample) float64 { return float64(s.cpuPerReq) })
		wire := median(results[i], func(s sample) float64 { return s.wirePerReq })
		errs := 0
		for _, s := range results[i] {
			errs += s.errs
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f ms | %.2f ms | %d µs | %.0f | %.0f | %.2f | %d |\n", tc.name, rps.rps(),
			float64(rps.p50)/1e6, float64(rps.p99)/1e6, cpu.cpuPerReq.Microseconds(), wire.wirePerReq, wire.upPerReq, rps.upConnsPerReq, errs)
	}
	fmt.Print(b.String())
	if o.out != "" {
		return os.WriteFile(o.out, []byte(b.String()), 0o644)
	}
	return nil
}
