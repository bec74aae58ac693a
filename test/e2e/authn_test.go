package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

const (
	authAcmeKey    = "sk-authn-acme-0123456789"
	authGlobexKey  = "sk-authn-globex-0123456789"
	authExpiredKey = "sk-authn-expired-0123456789"
	authRevokedKey = "sk-authn-revoked-0123456789"
	authModelsKey  = "sk-authn-models-only-0123456789"
	authNarrowKey  = "sk-authn-narrow-0123456789"
	jwtIssuer      = "https://idp.test"
	jwtAudience    = "switchyard-e2e"
)

// rotatingJWKS serves an RS256 JWK set on loopback that the test can replace.
type rotatingJWKS struct {
	*httptest.Server
	mu  sync.Mutex
	doc []byte
}

func newRotatingJWKS(t *testing.T) *rotatingJWKS {
	j := &rotatingJWKS{}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(j.doc)
	}))
	t.Cleanup(j.Close)
	return j
}

// publish replaces the served set with the public keys of keys, by kid.
func (j *rotatingJWKS) publish(keys map[string]*rsa.PrivateKey) {
	var set []map[string]string
	for kid, k := range keys {
		set = append(set, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
	}
	doc, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		panic(err)
	}
	j.mu.Lock()
	j.doc = doc
	j.mu.Unlock()
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// token signs claims for the test issuer with method and key, edited by edit.
func token(t *testing.T, method jwt.SigningMethod, key any, kid string, edit func(jwt.MapClaims)) string {
	t.Helper()
	var header map[string]any
	if kid != "" {
		header = map[string]any{"kid": kid}
	}
	return tokenWithHeader(t, method, key, header, edit)
}

// tokenWithHeader is token with extra header parameters.
func tokenWithHeader(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, edit func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": jwtIssuer, "aud": jwtAudience, "sub": "svc", "tenant": "acme",
		"scope": "chat:write sessions:read", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(c)
	}
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// postChat sends a non-streaming chat for model over REST with bearer token and returns the
// status and body.
func postChat(t *testing.T, addr, bearer, model, sessionID string) (int, string) {
	t.Helper()
	body := map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	if sessionID != "" {
		body["session_id"] = sessionID
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/v1/chat/completions", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// TestAuthAttacks: every forged, stale, misdirected or under-privileged credential is refused with
// the right status over REST and gRPC, and none of them reaches the upstream.
func TestAuthAttacks(t *testing.T) {
	up := newFakeOpenAI(t)
	idp := newRotatingJWKS(t)
	k1, k2 := rsaKey(t), rsaKey(t)
	idp.publish(map[string]*rsa.PrivateKey{"k1": k1})
	inst := startYAML(t, fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0, shutdown_timeout: 5s}
auth:
  mode: both
  api_keys:
    - {name: acme, key: %q, tenant: acme}
    - {name: globex, key: %q, tenant: globex}
    - {name: old, key: %q, tenant: acme, expires_at: 2020-01-01T00:00:00Z}
    - {name: leaked, key: %q, tenant: acme, revoked: true}
    - {name: lister, key: %q, tenant: acme, scopes: [models:read]}
    - {name: narrow, key: %q, tenant: acme, models: [other/*]}
  jwt:
    jwks_min_refresh_interval: 1ms
    issuers:
      - {issuer: %q, audience: %q, algorithms: [RS256], jwks_url: %q}
providers:
  - {name: up, type: openai, base_url: %q, api_key: %q}
aliases:
  chat: up/gpt-ok
`, authAcmeKey, authGlobexKey, authExpiredKey, authRevokedKey, authModelsKey, authNarrowKey,
		jwtIssuer, jwtAudience, idp.URL, up.URL+"/v1", upstreamKey))

	cc, err := grpc.NewClient(inst.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	sessions := pb.NewSessionServiceClient(cc)
	chatc := pb.NewChatServiceClient(cc)

	// acme keeps a session; globex must not be able to see or continue it.
	created, err := sessions.CreateSession(withKey(t.Context(), authAcmeKey), &pb.CreateSessionRequest{Model: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	acmeSession := created.GetSession().GetId()

	rsaPubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&k1.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	good := token(t, jwt.SigningMethodRS256, k1, "k1", nil)
	parts := strings.Split(good, ".")
	payload, _ := json.Marshal(map[string]any{"iss": jwtIssuer, "aud": jwtAudience, "sub": "svc", "tenant": "globex",
		"scope": "chat:write admin", "exp": time.Now().Add(time.Hour).Unix()})
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	none := token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", nil) + "AAAA"

	cases := []struct {
		name      string
		bearer    string
		model     string
		session   string
		wantHTTP  int
		wantGRPC  codes.Code
		wantInMsg string
	}{
		{"no credentials", "", "chat", "", 401, codes.Unauthenticated, ""},
		{"alg none", none, "chat", "", 401, codes.Unauthenticated, "algorithm"},
		{"HS256 signed with the RSA public key", token(t, jwt.SigningMethodHS256, rsaPubPEM, "k1", nil), "chat", "", 401, codes.Unauthenticated, "algorithm"},
		{"expired", token(t, jwt.SigningMethodRS256, k1, "k1", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), "chat", "", 401, codes.Unauthenticated, "expired"},
		{"not yet valid", token(t, jwt.SigningMethodRS256, k1, "k1", func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), "chat", "", 401, codes.Unauthenticated, "not valid yet"},
		{"wrong aud", token(t, jwt.SigningMethodRS256, k1, "k1", func(c jwt.MapClaims) { c["aud"] = "another-api" }), "chat", "", 401, codes.Unauthenticated, "aud"},
		{"wrong iss", token(t, jwt.SigningMethodRS256, k1, "k1", func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), "chat", "", 401, codes.Unauthenticated, "issuer"},
		{"unknown kid", token(t, jwt.SigningMethodRS256, k2, "k9", nil), "chat", "", 401, codes.Unauthenticated, "key id"},
		{"tampered payload", tampered, "chat", "", 401, codes.Unauthenticated, "signature"},
		{"crit unknown", tokenWithHeader(t, jwt.SigningMethodRS256, k1, map[string]any{"kid": "k1", "crit": []string{"urn:x:ext"}, "urn:x:ext": true}, nil), "chat", "", 401, codes.Unauthenticated, "unsupported_crit"},
		{"oversized token", token(t, jwt.SigningMethodRS256, k1, "k1", func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 32<<10) }), "chat", "", 401, codes.Unauthenticated, "token_too_large"},
		{"oversized API key", "sk-" + strings.Repeat("k", 4<<10), "chat", "", 401, codes.Unauthenticated, "token_too_large"},
		{"revoked API key", authRevokedKey, "chat", "", 401, codes.Unauthenticated, "revoked"},
		{"expired API key", authExpiredKey, "chat", "", 401, codes.Unauthenticated, "expired"},
		{"missing scope (key)", authModelsKey, "chat", "", 403, codes.PermissionDenied, "chat:write"},
		{"missing scope (token)", token(t, jwt.SigningMethodRS256, k1, "k1", func(c jwt.MapClaims) { c["scope"] = "models:read" }), "chat", "", 403, codes.PermissionDenied, "chat:write"},
		{"model not allowed", authNarrowKey, "chat", "", 403, codes.PermissionDenied, "not allow the model"},
		{"another tenant's session", authGlobexKey, "chat", acmeSession, 404, codes.NotFound, ""},
		{"another tenant's session by token", token(t, jwt.SigningMethodRS256, k1, "k1", func(c jwt.MapClaims) { c["tenant"] = "globex" }), "chat", acmeSession, 404, codes.NotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := up.count()
			code, body := postChat(t, inst.HTTPAddr(), c.bearer, c.model, c.session)
			if code != c.wantHTTP || !strings.Contains(body, c.wantInMsg) {
				t.Errorf("REST: %d %s; want %d mentioning %q", code, body, c.wantHTTP, c.wantInMsg)
			}
			ctx := t.Context()
			if c.bearer != "" {
				ctx = withKey(ctx, c.bearer)
			}
			req := &pb.CreateChatCompletionRequest{Model: c.model, SessionId: c.session, Messages: []*pb.ChatMessage{
				{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: "hi"}}}}}
			_, err := chatc.CreateChatCompletion(ctx, req)
			if status.Code(err) != c.wantGRPC {
				t.Errorf("gRPC: %v; want %v", err, c.wantGRPC)
			}
			if n := up.count(); n != before {
				t.Errorf("upstream saw %d requests; want none", n-before)
			}
		})
	}

	// Other tenants cannot read acme's session either.
	_, err = sessions.GetSession(withKey(t.Context(), authGlobexKey), &pb.GetSessionRequest{Id: acmeSession})
	if status.Code(err) != codes.NotFound {
		t.Errorf("globex GetSession(acme's): %v; want NotFound", err)
	}

	// The same paths work with good credentials, so the refusals above are not accidents.
	for name, bearer := range map[string]string{"API key": authAcmeKey, "JWT": good} {
		before := up.count()
		if code, body := postChat(t, inst.HTTPAddr(), bearer, "chat", acmeSession); code != 200 {
			t.Errorf("%s: %d %s; want 200", name, code, body)
		}
		if up.count() != before+1 {
			t.Errorf("%s: upstream saw %d requests; want 1", name, up.count()-before)
		}
	}

	// The issuer rotates to k2: a k2 token makes the gateway refetch the JWK set.
	idp.publish(map[string]*rsa.PrivateKey{"k2": k2})
	if code, body := postChat(t, inst.HTTPAddr(), token(t, jwt.SigningMethodRS256, k2, "k2", nil), "chat", ""); code != 200 {
		t.Errorf("token of the rotated key: %d %s; want 200", code, body)
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and client certificates, in files.
type testPKI struct {
	dir                           string
	caPEM                         []byte
	serverCert, serverKey, caFile string
	pool                          *x509.CertPool
	ca                            *x509.Certificate
	caKey                         *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	p.caKey = ecKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	p.caFile = p.write(t, "ca.pem", p.caPEM)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	cert, key := p.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "gateway"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, p.ca, p.caKey)
	p.serverCert, p.serverKey = p.write(t, "server.pem", cert), p.write(t, "server-key.pem", key)
	return p
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *testPKI) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue signs tmpl with parent/parentKey and returns the certificate and key as PEM.
func (p *testPKI) issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte) {
	t.Helper()
	k := ecKey(t)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// clientCert returns a client certificate with common name cn signed by the test CA.
func (p *testPKI) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	c, k := p.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, p.ca, p.caKey)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func tlsYAML(p *testPKI, clientAuth, transport string) string {
	return fmt.Sprintf(`
server:
  http_addr: 127.0.0.1:0
  grpc_addr: 127.0.0.1:0
  admin_addr: 127.0.0.1:0
  shutdown_timeout: 5s
  gateway_transport: %s
  tls: {cert_file: %q, key_file: %q, client_ca_file: %q, client_auth: %s}
auth:
  mode: api_key
  api_keys:
    - {name: acme, key: %q, tenant: acme}
  client_certs:
    - {subject: billing, tenant: acme, scopes: [models:read]}
providers:
  - {name: mock, type: mock, models: [echo]}
`, transport, p.serverCert, p.serverKey, p.caFile, clientAuth, authAcmeKey)
}

// TestTLSVersions: both listeners refuse TLS 1.0 and 1.1 and accept 1.2 and 1.3 (1.3 when the
// client offers both).
func TestTLSVersions(t *testing.T) {
	p := newTestPKI(t)
	inst := startYAML(t, tlsYAML(p, "request", "inproc"))
	versions := []struct {
		name     string
		min, max uint16
		ok       bool
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, false},
		{"TLS 1.1", tls.VersionTLS11, tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, true},
		{"1.0 to 1.3 negotiates 1.3", tls.VersionTLS10, tls.VersionTLS13, true},
	}
	for _, v := range versions {
		for _, l := range []struct{ name, addr string }{{"REST", inst.HTTPAddr()}, {"gRPC", inst.GRPCAddr()}} {
			t.Run(l.name+" "+v.name, func(t *testing.T) {
				cfg := &tls.Config{RootCAs: p.pool, MinVersion: v.min, MaxVersion: v.max}
				if l.name == "gRPC" {
					cfg.NextProtos = []string{"h2"}
				}
				conn, err := tls.Dial("tcp", l.addr, cfg)
				if !v.ok {
					if err == nil {
						conn.Close()
						t.Fatalf("handshake with %s succeeded; want refused", v.name)
					}
					// The server's alert, not the client declining to try.
					if !strings.Contains(err.Error(), "protocol version") {
						t.Fatalf("handshake error %q; want the server's protocol version alert", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				defer conn.Close()
				if got := conn.ConnectionState().Version; got != v.max {
					t.Errorf("negotiated %s; want %s", tls.VersionName(got), tls.VersionName(v.max))
				}
			})
		}
	}

	// Whole requests over TLS: REST (the in-process hop to gRPC is unaffected) and gRPC.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+inst.HTTPAddr()+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+authAcmeKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("REST over TLS: %d; want 200", resp.StatusCode)
	}
	if _, err := grpcModels(t, inst.GRPCAddr(), &tls.Config{RootCAs: p.pool}, authAcmeKey); err != nil {
		t.Errorf("gRPC over TLS: %v", err)
	}
}

// grpcModels calls ListModels over TLS with cfg, with key as bearer token unless it is empty.
func grpcModels(t *testing.T, addr string, cfg *tls.Config, key string) (*pb.ListModelsResponse, error) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if key != "" {
		ctx = withKey(ctx, key)
	}
	return pb.NewModelServiceClient(cc).ListModels(ctx, &pb.ListModelsRequest{})
}

// TestMTLSPrincipal: a gRPC caller with a client certificate signed by the configured CA and
// mapped in auth.client_certs is that mapping's principal (its tenant and scopes); unmapped or
// foreign certificates are not; with client_auth require a caller without one cannot connect,
// while REST (in-process hop) keeps working.
func TestMTLSPrincipal(t *testing.T) {
	p := newTestPKI(t)
	foreign := newTestPKI(t)
	for _, mode := range []string{"request", "require"} {
		t.Run(mode, func(t *testing.T) {
			inst := startYAML(t, tlsYAML(p, mode, "inproc"))
			withCert := func(c tls.Certificate) *tls.Config {
				return &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{c}}
			}
			cases := []struct {
				name string
				cfg  *tls.Config
				key  string
				want codes.Code
			}{
				{"mapped certificate, no token", withCert(p.clientCert(t, "billing")), "", codes.OK},
				{"unmapped certificate, no token", withCert(p.clientCert(t, "intruder")), "", codes.Unauthenticated},
				{"certificate of another CA", withCert(foreign.clientCert(t, "billing")), "", codes.Unavailable},
			}
			if mode == "request" {
				cases = append(cases, struct {
					name string
					cfg  *tls.Config
					key  string
					want codes.Code
				}{"no certificate, API key", &tls.Config{RootCAs: p.pool}, authAcmeKey, codes.OK})
			} else {
				cases = append(cases, struct {
					name string
					cfg  *tls.Config
					key  string
					want codes.Code
				}{"no certificate, API key", &tls.Config{RootCAs: p.pool}, authAcmeKey, codes.Unavailable})
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					_, err := grpcModels(t, inst.GRPCAddr(), c.cfg, c.key)
					if got := status.Code(err); got != c.want {
						t.Fatalf("ListModels: %v; want %v", err, c.want)
					}
				})
			}
			// The mapped certificate grants models:read only.
			cc, err := grpc.NewClient(inst.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(withCert(p.clientCert(t, "billing")))))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			_, err = pb.NewChatServiceClient(cc).CreateChatCompletion(t.Context(), &pb.CreateChatCompletionRequest{Model: "mock/echo",
				Messages: []*pb.ChatMessage{{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: "hi"}}}}})
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "chat:write") {
				t.Errorf("chat with the models:read certificate: %v; want PermissionDenied naming chat:write", err)
			}
			// REST needs no client certificate: it reaches gRPC in process.
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+inst.HTTPAddr()+"/v1/models", nil)
			req.Header.Set("Authorization", "Bearer "+authAcmeKey)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("REST: %d; want 200", resp.StatusCode)
			}
		})
	}
}

// TestTLSLoopbackGateway: with gateway_transport loopback the REST gateway reaches the TLS gRPC
// listener by pinning the server's own certificate.
func TestTLSLoopbackGateway(t *testing.T) {
	p := newTestPKI(t)
	inst := startYAML(t, tlsYAML(p, "request", "loopback"))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+inst.HTTPAddr()+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+authAcmeKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("REST over the loopback TLS hop: %d %s; want 200", resp.StatusCode, body)
	}
}
