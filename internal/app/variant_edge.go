//go:build edge

package app

import "github.com/switchyard/switchyard/internal/provider"

// buildVariant names this build: "edge", built with -tags edge for a single device (make
// build-edge; docs/edge-build.md).
const buildVariant = "edge"

// leftOut is THE list of what the edge build leaves out; docs/edge-build.md repeats it. A config
// naming any of these fails at start (and in config check) with "... is not in this build (edge);
// use the full build". Each entry's code is kept out of the binary by a //go:build !edge file:
// the provider types by variant_full.go, the PostgreSQL driver (pgx) by
// internal/database/postgres.go.
var leftOut = edgeLeftOut{
	ProviderTypes: []string{"bedrock", "kserve"},             // the AWS SDK; KServe's v2 protocol
	SQLDrivers:    []string{"postgres", "postgresql", "pgx"}, // PostgreSQL: SQLite is the edge's database
}

// registerFullOnly registers nothing here: the edge build has no bedrock or kserve.
func registerFullOnly(*provider.Registry) {}
