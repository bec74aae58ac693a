package grpcupstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard/switchyard/internal/grpczstd"
	"github.com/switchyard/switchyard/internal/provider"
)

// ConnOptions are the Options keys Dial reads (see the package documentation).
var ConnOptions = []string{"tls", "tls_ca_file", "tls_server_name", "authority", "compression", "gzip", "max_message_bytes", "keepalive_time", "max_retries", "retry_backoff"}

// Conn is one shared client connection to a gRPC upstream with Switchyard's connection policy:
// TLS or plaintext, otelgrpc tracing, message limits, keepalive, call metadata (API key and
// headers), the call timeout, and the retry interceptors. Other gRPC adapters (kserve) use it
// too. Safe for concurrent use.
type Conn struct {
	*grpc.ClientConn
	md      []string // metadata pairs sent on every call
	timeout time.Duration
	policy  retryPolicy
}

// Dial builds the connection cfg describes (BaseURL, APIKey, Headers, Timeout and the
// ConnOptions keys of cfg.Options). Option keys in own belong to the caller and are skipped;
// any other unknown key is an error. It does not connect: the first call does.
func Dial(cfg provider.Config, own []string, extra ...grpc.DialOption) (*Conn, error) {
	o, err := parseOptions(cfg.Options, own)
	if err != nil {
		return nil, err
	}
	target := strings.TrimSpace(cfg.BaseURL)
	switch {
	case target == "":
		return nil, errors.New("base_url (the gRPC target, host:port) is required")
	case strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "https://"):
		return nil, fmt.Errorf("base_url %q is an HTTP URL; give a gRPC target such as host:port or dns:///host:port (options.tls selects TLS)", target)
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	call := []grpc.CallOption{grpc.MaxCallRecvMsgSize(o.maxMsg), grpc.MaxCallSendMsgSize(o.maxMsg)}
	if o.compression != "" {
		call = append(call, grpc.UseCompressor(o.compression))
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultCallOptions(call...),
		// The retry interceptors are configured per call (RetryOptions); here they only get
		// their place in the chain. Without per-call options they do not retry.
		grpc.WithChainUnaryInterceptor(retry.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(retry.StreamClientInterceptor()),
	}
	if o.keepalive > 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: o.keepalive, Timeout: 20 * time.Second}))
	}
	if o.authority != "" {
		opts = append(opts, grpc.WithAuthority(o.authority))
	}
	cc, err := grpc.NewClient(target, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", target, err)
	}
	c := &Conn{ClientConn: cc, timeout: cfg.Timeout, policy: retryPolicy{base: o.backoff, maxRetries: o.maxRetries}}
	if cfg.APIKey != "" {
		c.md = append(c.md, "authorization", "Bearer "+cfg.APIKey)
	}
	keys := make([]string, 0, len(cfg.Headers))
	for k := range cfg.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c.md = append(c.md, strings.ToLower(k), cfg.Headers[k])
	}
	return c, nil
}

// Close closes the connection; calls in flight fail. Safe to call more than once.
func (c *Conn) Close() error {
	if err := c.ClientConn.Close(); err != nil && !strings.Contains(err.Error(), "already closed") {
		return fmt.Errorf("grpcupstream: close %s: %w", c.Target(), err)
	}
	return nil
}

// CallContext adds the call metadata to ctx and applies the configured timeout when ctx has no
// deadline of its own. The caller must call cancel.
func (c *Conn) CallContext(ctx context.Context) (_ context.Context, cancel context.CancelFunc) {
	if len(c.md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, c.md...)
	}
	if c.timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, c.timeout)
		}
	}
	return context.WithCancel(ctx)
}

// RetryOptions returns the call options that apply the retry policy to one unary or
// server-streaming call made with ctx. received, when not nil, must be set once a stream has
// delivered its first message: from then on nothing is retried. Client- and bidi-streaming
// calls cannot be retried: give them NoRetry.
func (c *Conn) RetryOptions(ctx context.Context, received *bool) []grpc.CallOption {
	return c.policy.callOptions(ctx, received)
}

// NoRetry is the call option that turns retries off for one call.
func NoRetry() grpc.CallOption { return retry.Disable() }

type options struct {
	tls         *tls.Config
	authority   string
	compression string // "" (none), gzip.Name or grpczstd.Name
	maxMsg      int
	keepalive   time.Duration
	maxRetries  uint
	backoff     time.Duration
}

// parseOptions validates the connection options in m; keys in own are skipped, other unknown
// keys are errors (a typo must not pass silently).
func parseOptions(m map[string]string, own []string) (options, error) {
	o := options{maxMsg: DefaultMaxMessageBytes, keepalive: DefaultKeepaliveTime, maxRetries: DefaultMaxRetries, backoff: DefaultRetryBackoff}
	var useTLS, gz, compressionSet bool
	var caFile, serverName string
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.TrimSpace(m[k])
		var err error
		switch k {
		case "tls":
			useTLS, err = strconv.ParseBool(v)
		case "tls_ca_file":
			caFile = v
		case "tls_server_name":
			serverName = v
		case "authority":
			o.authority = v
		case "compression":
			switch v {
			case "none", "":
				o.compression = ""
			case gzip.Name, grpczstd.Name:
				o.compression = v
			default:
				err = errors.New("must be none, gzip or zstd")
			}
			compressionSet = true
		case "gzip": // before "compression" existed; gzip: true is compression: gzip
			gz, err = strconv.ParseBool(v)
		case "max_message_bytes":
			o.maxMsg, err = strconv.Atoi(v)
			if err == nil && o.maxMsg < 1<<20 {
				err = errors.New("must be at least 1048576")
			}
		case "keepalive_time":
			o.keepalive, err = parseDuration(v)
		case "max_retries":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 8)
			o.maxRetries = uint(n)
		case "retry_backoff":
			o.backoff, err = parseDuration(v)
			if err == nil && o.backoff <= 0 {
				err = errors.New("must be positive")
			}
		default:
			if !slices.Contains(own, k) && !ownedPrefix(k, own) {
				return o, fmt.Errorf("unknown option %q (known: %s)", k, strings.Join(append(slices.Clone(own), ConnOptions...), ", "))
			}
		}
		if err != nil {
			return o, fmt.Errorf("option %s=%q: %w", k, v, err)
		}
	}
	if gz {
		if compressionSet && o.compression != gzip.Name {
			return o, fmt.Errorf("options gzip=true and compression=%q disagree: keep compression only", m["compression"])
		}
		o.compression = gzip.Name
	}
	if useTLS || caFile != "" || serverName != "" {
		o.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return o, fmt.Errorf("option tls_ca_file: %w", err)
			}
			o.tls.RootCAs = x509.NewCertPool()
			if !o.tls.RootCAs.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("option tls_ca_file: no certificate in %s", caFile)
			}
		}
	}
	return o, nil
}

// ownedPrefix reports whether k is "<scope>/<key>" with key in own: a caller's per-scope setting.
func ownedPrefix(k string, own []string) bool {
	i := strings.LastIndexByte(k, '/')
	return i > 0 && slices.Contains(own, k[i+1:])
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = errors.New("must not be negative")
	}
	return d, err
}
