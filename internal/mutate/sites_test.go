package main

import (
	"go/format"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const sample = `package p

func f(a, b int, ok bool) int {
	if a < b && !ok {
		g(a + 1)
	}
	if a == 0 {
		return b - 1
	}
	return a
}

func g(int) {}
`

// TestSites: every kind of mutant is found at its place, each applies to
// a program that still parses, and nothing outside function bodies is
// touched.
func TestSites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.go")
	if err := os.WriteFile(path, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := Sites(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		out := m.Apply([]byte(sample))
		if _, err := format.Source(out); err != nil {
			t.Errorf("%s: mutated source does not parse: %v\n%s", m, err, out)
		}
		got = append(got, m.Desc+" @"+string(out[m.Start:m.Start+len(m.New)]))
	}
	want := []string{
		"< → <= @<=", "< → >= @>=", "&& → || @||", "drop ! @",
		"remove call g @_ = 0", "+ 1 → - 1 @-",
		"== → != @!=", "constant 0 → 1 in a comparison @1", "- 1 → + 1 @+",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing mutant %q in %q", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d mutants %q, want %d", len(got), got, len(want))
	}
}
