package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// ClientCert maps verified mTLS client certificates to a principal. Exactly one of Subject and SAN
// is set. The certificate must have been verified by the TLS stack against the configured client
// CAs; the mapping only names who it is.
type ClientCert struct {
	// Subject matches the certificate's subject, either its full RFC 2253 form
	// ("CN=billing,O=Acme") or its common name alone ("billing").
	Subject string `yaml:"subject,omitempty"`
	// SAN matches any subject alternative name: a DNS name, a URI (e.g. a SPIFFE id), an e-mail
	// address or an IP address.
	SAN    string `yaml:"san,omitempty"`
	Tenant string `yaml:"tenant"`
	Name   string `yaml:"name,omitempty"` // the principal's subject; default: the matched value
	// Scopes granted; empty means DefaultScopes (everything but admin).
	Scopes []string `yaml:"scopes,omitempty"`
	Models []string `yaml:"models,omitempty"` // allowed models; empty means all
}

type certKey struct{}

// NewCertContext returns a copy of ctx carrying the caller's verified client certificate (the
// leaf of the verified chain), for Authenticate. The gRPC auth interceptor calls it for mTLS
// connections; never call it with an unverified certificate.
func NewCertContext(ctx context.Context, leaf *x509.Certificate) context.Context {
	return context.WithValue(ctx, certKey{}, leaf)
}

// certAuth maps client certificates to principals, first matching entry first.
type certAuth struct {
	entries []certEntry
}

type certEntry struct {
	subject, san string
	p            *Principal
}

func newCertAuth(cfgs []ClientCert) (*certAuth, error) {
	if len(cfgs) == 0 {
		return nil, nil
	}
	c := &certAuth{}
	for i, cc := range cfgs {
		where := fmt.Sprintf("auth: client_certs[%d]", i)
		if (cc.Subject == "") == (cc.SAN == "") {
			return nil, errors.New(where + ": set exactly one of subject and san")
		}
		if cc.Tenant == "" {
			return nil, errors.New(where + ": tenant is required")
		}
		name := cc.Name
		if name == "" {
			name = cc.Subject + cc.SAN
		}
		scopes := slices.Clone(cc.Scopes)
		if len(scopes) == 0 {
			scopes = slices.Clone(DefaultScopes)
		}
		c.entries = append(c.entries, certEntry{subject: cc.Subject, san: cc.SAN, p: &Principal{
			Tenant: cc.Tenant, Subject: name, Scopes: scopes, Models: slices.Clone(cc.Models), Method: "mtls",
		}})
	}
	return c, nil
}

// principal returns the principal of the certificate in ctx, if one entry matches it.
func (c *certAuth) principal(ctx context.Context) (*Principal, bool) {
	leaf, _ := ctx.Value(certKey{}).(*x509.Certificate)
	if leaf == nil {
		return nil, false
	}
	for _, e := range c.entries {
		if e.subject != "" && (e.subject == leaf.Subject.String() || e.subject == leaf.Subject.CommonName) {
			return e.p, true
		}
		if e.san != "" && hasSAN(leaf, e.san) {
			return e.p, true
		}
	}
	return nil, false
}

func hasSAN(c *x509.Certificate, san string) bool {
	if slices.Contains(c.DNSNames, san) || slices.Contains(c.EmailAddresses, san) {
		return true
	}
	for _, u := range c.URIs {
		if u.String() == san {
			return true
		}
	}
	for _, ip := range c.IPAddresses {
		if ip.String() == san {
			return true
		}
	}
	return false
}
