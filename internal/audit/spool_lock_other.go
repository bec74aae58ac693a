//go:build !unix

package audit

import "os"

// lockFile does nothing where flock is missing: do not point two processes at one spool.
func lockFile(*os.File) error { return nil }
