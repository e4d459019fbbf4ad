package grammar

import (
	"testing"
)

// FuzzCompileJSONSchema: any input compiles or is refused with an error,
// never a panic; a compiled grammar gives a matcher whose first mask is
// consistent with Allowed on a few tokens.
func FuzzCompileJSONSchema(f *testing.F) {
	for _, c := range schemaCases {
		f.Add(c.schema)
	}
	f.Add(`{"anyOf":[{"$ref":"#"},{"type":"null"}]}`)
	f.Add(`{"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/a"}}}`)
	f.Add(`{"type":"string","maxLength":100000000}`)
	f.Add(`{"type":"array","prefixItems":[true,true],"minItems":5,"maxItems":1}`)
	tok := llama3(f)
	f.Fuzz(func(t *testing.T, schema string) {
		g, err := CompileJSONSchema(tok, []byte(schema), Options{})
		if err != nil {
			return
		}
		m := g.NewMatcher()
		mask := make([]uint64, m.MaskWords())
		m.Mask(mask)
		for _, id := range []int32{0, 1, 15, 90, 220, 517} {
			if in := mask[id>>6]&(1<<(id&63)) != 0; in != m.Allowed(id) {
				t.Fatalf("token %d: mask %v, Allowed %v", id, in, !in)
			}
		}
	})
}
