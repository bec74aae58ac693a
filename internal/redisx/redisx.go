// Package redisx builds the gateway's Redis client from configuration: one node, a Sentinel
// group (MasterName set) or a Cluster (several addresses), all as go-redis's UniversalClient.
package redisx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config selects and authenticates the Redis deployment.
type Config struct {
	// Addrs are host:port pairs: one for a single node; the Sentinels when MasterName is set;
	// otherwise, with more than one address (or Cluster set), the cluster's seed nodes.
	Addrs []string `yaml:"addrs"`
	// MasterName selects Sentinel mode: the name of the monitored master.
	MasterName string `yaml:"master_name"`
	// Cluster forces cluster mode with a single seed address.
	Cluster bool `yaml:"cluster"`
	// Username and Password authenticate to Redis (ACL user or legacy password).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// SentinelUsername and SentinelPassword authenticate to the Sentinels when they differ.
	SentinelUsername string `yaml:"sentinel_username"`
	SentinelPassword string `yaml:"sentinel_password"`
	// DB is the database number (single node and Sentinel only; a cluster has database 0).
	DB int `yaml:"db"`
	// TLS enables TLS; CAFile adds a CA to verify the server, CertFile/KeyFile a client
	// certificate, ServerName overrides the verified name; InsecureSkipVerify is for tests only.
	TLS                bool   `yaml:"tls"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// PoolSize is connections per node (0: go-redis default, 10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// DialTimeout, ReadTimeout and WriteTimeout (0: go-redis defaults of 5 s, 3 s, 3 s).
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// Mode names the deployment cfg selects: "single", "sentinel" or "cluster".
func (cfg Config) Mode() string {
	switch {
	case cfg.MasterName != "":
		return "sentinel"
	case cfg.Cluster || len(cfg.Addrs) > 1:
		return "cluster"
	default:
		return "single"
	}
}

// NewClient returns a client for cfg without connecting (go-redis dials lazily; call Ping to
// check). The caller closes it.
func NewClient(cfg Config) (redis.UniversalClient, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("redisx.NewClient: no addrs")
	}
	var tlsCfg *tls.Config
	if cfg.TLS {
		var err error
		if tlsCfg, err = cfg.tlsConfig(); err != nil {
			return nil, fmt.Errorf("redisx.NewClient: %w", err)
		}
	}
	switch cfg.Mode() {
	case "sentinel":
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: cfg.MasterName, SentinelAddrs: cfg.Addrs,
			SentinelUsername: cfg.SentinelUsername, SentinelPassword: cfg.SentinelPassword,
			Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, TLSConfig: tlsCfg,
			PoolSize: cfg.PoolSize, DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		}), nil
	case "cluster":
		if cfg.DB != 0 {
			return nil, errors.New("redisx.NewClient: a cluster has only database 0")
		}
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: cfg.Addrs, Username: cfg.Username, Password: cfg.Password, TLSConfig: tlsCfg,
			PoolSize: cfg.PoolSize, DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		}), nil
	default:
		return redis.NewClient(&redis.Options{
			Addr: cfg.Addrs[0], Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, TLSConfig: tlsCfg,
			PoolSize: cfg.PoolSize, DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		}), nil
	}
}

// Ping checks that the deployment answers.
func Ping(ctx context.Context, c redis.UniversalClient) error {
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisx.Ping: %w", err)
	}
	return nil
}

func (cfg Config) tlsConfig() (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		t.RootCAs = pool
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}
