// Package testenv locates the shared test data (models, golden outputs,
// tokenizer cases, chat templates) that lives in ../shared beside the
// checkout. Tests call Shared; under CI (CI=true) a missing directory is a
// test failure with a clear message, elsewhere the test is skipped.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SharedDir returns the path of the shared test data directory and whether it
// exists. $SLUICE_SHARED overrides the default, which is ../shared relative
// to the module root.
func SharedDir() (string, bool) {
	dir := os.Getenv("SLUICE_SHARED")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		// file is <root>/internal/testenv/testenv.go
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		dir = filepath.Join(filepath.Dir(root), "shared")
	}
	st, err := os.Stat(dir)
	return dir, err == nil && st.IsDir()
}

// Shared returns the shared test data directory joined with elem. If the
// directory is missing it fails the test under CI=true and skips it otherwise.
func Shared(tb testing.TB, elem ...string) string {
	tb.Helper()
	dir, ok := SharedDir()
	if !ok {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("shared test data not found at %s (set SLUICE_SHARED or place shared/ beside the checkout)", dir)
		}
		tb.Skipf("shared test data not found at %s; skipping (set SLUICE_SHARED)", dir)
	}
	p := filepath.Join(append([]string{dir}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("shared test data: %v", err)
	}
	return p
}
