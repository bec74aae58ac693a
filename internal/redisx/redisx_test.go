package redisx_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/redisx"
	"github.com/switchyard/switchyard/internal/redisx/redistest"
)

func TestNewClientMode(t *testing.T) {
	cases := []struct {
		name string
		cfg  redisx.Config
		want string
		ok   func(redis.UniversalClient) bool
	}{
		{"single", redisx.Config{Addrs: []string{"127.0.0.1:1"}}, "single", func(c redis.UniversalClient) bool { _, ok := c.(*redis.Client); return ok }},
		{"sentinel", redisx.Config{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, MasterName: "m"}, "sentinel", func(c redis.UniversalClient) bool { _, ok := c.(*redis.Client); return ok }},
		{"cluster", redisx.Config{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, "cluster", func(c redis.UniversalClient) bool { _, ok := c.(*redis.ClusterClient); return ok }},
		{"cluster forced", redisx.Config{Addrs: []string{"127.0.0.1:1"}, Cluster: true}, "cluster", func(c redis.UniversalClient) bool { _, ok := c.(*redis.ClusterClient); return ok }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.cfg.Mode(); got != c.want {
				t.Errorf("Mode() = %q, want %q", got, c.want)
			}
			cl, err := redisx.NewClient(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if !c.ok(cl) {
				t.Errorf("NewClient returned %T", cl)
			}
		})
	}
	for _, bad := range []redisx.Config{{}, {Addrs: []string{"a:1", "b:1"}, DB: 2}, {Addrs: []string{"a:1"}, TLS: true, CAFile: "/nonexistent"}} {
		if _, err := redisx.NewClient(bad); err == nil {
			t.Errorf("NewClient(%+v) succeeded", bad)
		}
	}
}

func TestPing(t *testing.T) {
	c := redistest.Client(t)
	if err := redisx.Ping(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func TestLocalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three redis-server processes")
	}
	c := redistest.Cluster(t)
	ctx := context.Background()
	p := redistest.Prefix(t, c)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if err := c.Set(ctx, p+k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.Get(ctx, p+"c").Result(); err != nil || got != "c" {
		t.Errorf("Get = %q, %v", got, err)
	}
}
