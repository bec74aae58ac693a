package app

import (
	"fmt"
	"slices"
)

// edgeLeftOut lists what a build variant leaves out (empty in the full build; variant_edge.go
// holds the edge build's list).
type edgeLeftOut struct {
	ProviderTypes []string // provider `type` values
	SQLDrivers    []string // `sql.driver` values (audit, keys, sessions)
}

// notInBuild is the error for a config naming something this build left out.
func notInBuild(what, name string) string {
	return fmt.Sprintf("%s %q is not in this build (%s); use the full build", what, name, buildVariant)
}

// validateVariant reports, through add, every part of c this build leaves out.
func (c *Config) validateVariant(add func(format string, args ...any)) {
	for i, p := range c.Providers {
		if slices.Contains(leftOut.ProviderTypes, p.Type) {
			add("providers[%d] (%s): %s", i, p.Name, notInBuild("provider type", p.Type))
		}
	}
	for _, db := range []struct {
		field, driver string
	}{{"audit.sql.driver", c.Audit.SQL.Driver}, {"keys.sql.driver", c.Keys.SQL.Driver}, {"sessions.sql.driver", c.Sessions.SQL.Driver}} {
		if slices.Contains(leftOut.SQLDrivers, db.driver) {
			add("%s: %s", db.field, notInBuild("database driver", db.driver))
		}
	}
}
