package app

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Client certificate policies (TLSConfig.ClientAuth).
const (
	ClientAuthRequest = "request" // verify a client certificate when one is presented
	ClientAuthRequire = "require" // refuse gRPC connections without a verified client certificate
)

// TLSConfig turns on TLS for the REST and gRPC listeners (the admin listener stays plain: keep it
// on a private address). TLS 1.2 is the minimum; TLS 1.3 is chosen whenever the client offers it.
// With ClientCAFile, gRPC callers may authenticate with a client certificate signed by one of
// those CAs; auth.client_certs maps certificates to principals.
type TLSConfig struct {
	CertFile string `yaml:"cert_file,omitempty"` // PEM certificate chain, leaf first
	KeyFile  string `yaml:"key_file,omitempty"`  // PEM private key
	// ClientCAFile holds the PEM CA certificates that sign client certificates (gRPC only).
	ClientCAFile string `yaml:"client_ca_file,omitempty"`
	// ClientAuth is "request" (default when ClientCAFile is set) or "require".
	ClientAuth string `yaml:"client_auth,omitempty"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// validateTLS checks server.tls against the rest of c; it does not read the files (Start does).
func (c *Config) validateTLS(add func(format string, args ...any)) {
	t := c.Server.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("server.tls: set both cert_file and key_file")
	}
	if t.ClientAuth != "" && t.ClientAuth != ClientAuthRequest && t.ClientAuth != ClientAuthRequire {
		add("server.tls.client_auth: %q is not %q or %q", t.ClientAuth, ClientAuthRequest, ClientAuthRequire)
	}
	if (t.ClientCAFile != "" || t.ClientAuth != "") && !t.Enabled() {
		add("server.tls: client_ca_file and client_auth need cert_file and key_file")
	}
	if t.ClientAuth != "" && t.ClientCAFile == "" {
		add("server.tls.client_auth: needs client_ca_file (client certificates are always verified)")
	}
	if len(c.Auth.ClientCerts) > 0 && t.ClientCAFile == "" {
		add("auth.client_certs: needs server.tls.client_ca_file: without it no client certificate is verified")
	}
	if t.ClientAuth == ClientAuthRequire && c.Server.GatewayTransport == TransportLoopback {
		add("server.tls.client_auth: %q would refuse the REST gateway's own loopback connection; use gateway_transport: %s",
			ClientAuthRequire, TransportInproc)
	}
}

// serverTLS is the TLS setup of the two public listeners; nil means plaintext.
type serverTLS struct {
	rest, grpc *tls.Config
	leaf       []byte // DER of the server certificate, pinned by the loopback gateway connection
}

// buildTLS loads the certificates t names; it returns nil when TLS is off.
func buildTLS(t TLSConfig) (*serverTLS, error) {
	if !t.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls: %w", err)
	}
	base := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	s := &serverTLS{rest: base.Clone(), grpc: base.Clone(), leaf: cert.Certificate[0]}
	s.rest.NextProtos = []string{"h2", "http/1.1"}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.tls.client_ca_file %s: no PEM certificates", t.ClientCAFile)
		}
		s.grpc.ClientCAs = pool
		s.grpc.ClientAuth = tls.VerifyClientCertIfGiven
		if t.ClientAuth == ClientAuthRequire {
			s.grpc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return s, nil
}

// grpcOption is the gRPC server's transport credentials option.
func (s *serverTLS) grpcOption() grpc.ServerOption {
	if s == nil {
		return grpc.EmptyServerOption{}
	}
	return grpc.Creds(credentials.NewTLS(s.grpc))
}

// restListener wraps the REST listener in TLS.
func (s *serverTLS) restListener(l net.Listener) net.Listener {
	if s == nil {
		return l
	}
	return tls.NewListener(l, s.rest)
}

// loopbackCreds are the credentials of the REST gateway's loopback connection to the process's
// own gRPC listener: TLS that accepts exactly the server's own certificate (the listener may be
// addressed by an IP the certificate does not name).
func (s *serverTLS) loopbackCreds() credentials.TransportCredentials {
	if s == nil {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], s.leaf) {
				return errors.New("loopback: the gRPC listener presented a certificate other than our own")
			}
			return nil
		},
	})
}
