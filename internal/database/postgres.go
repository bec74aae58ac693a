//go:build !edge

package database

// The PostgreSQL driver is in the full build only: the edge build (-tags edge, docs/edge-build.md)
// leaves pgx out, and the gateway refuses a postgres driver in its config before it gets here.
import _ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
