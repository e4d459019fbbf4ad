//go:build !unix

package main

// openFileLimit is the process's soft limit on open files, if known.
func openFileLimit() (uint64, bool) { return 0, false }
