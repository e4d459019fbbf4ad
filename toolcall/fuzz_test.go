package toolcall

import (
	"math/rand"
	"reflect"
	"testing"
)

// FuzzParser: any output, in any split, parses without panicking to the
// same result as in one piece, in every format, with and without
// reasoning.
func FuzzParser(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.text, int64(1))
	}
	f.Add("<think><tool_call>{\"name\":\"x\"}</think></tool_call>[TOOL_CALLS][{", int64(2))
	f.Fuzz(func(t *testing.T, text string, seed int64) {
		rng := rand.New(rand.NewSource(seed))
		for _, fm := range Formats {
			for _, opts := range []Options{{}, {Reasoning: true}, {Reasoning: true, InThink: true}} {
				whole := parseChunks(fm, opts, []string{text})
				if got := parseChunks(fm, opts, randomSplit(rng, text)); !reflect.DeepEqual(got, whole) {
					t.Fatalf("%s %+v: split parse %+v, whole %+v", fm.Name, opts, got, whole)
				}
			}
		}
	})
}
