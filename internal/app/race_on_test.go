//go:build race

package app_test

// raceEnabled: this test binary was built with -race (TestEdgeBuild builds the edge binary the same
// way, so that it reuses the packages go test -race has already compiled).
const raceEnabled = true
