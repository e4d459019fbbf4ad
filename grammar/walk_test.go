package grammar

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/sluice-llm/sluice/tokenizer"
)

// randomAllowed picks a random token the matcher allows: a few random
// draws first, then one from the mask. It returns -1 if none is allowed.
func randomAllowed(m *Matcher, rng *rand.Rand, mask []uint64, size int) int32 {
	for range 64 {
		if id := int32(rng.IntN(size)); m.Allowed(id) {
			return id
		}
	}
	m.Mask(mask)
	var ids []int32
	for w, bits := range mask {
		for ; bits != 0; bits &= bits - 1 {
			b := 0
			for bits&(1<<b) == 0 {
				b++
			}
			ids = append(ids, int32(w*64+b))
		}
	}
	if len(ids) == 0 {
		return -1
	}
	return ids[rng.IntN(len(ids))]
}

// TestRandomWalksValidate walks each schema's grammar with random allowed
// tokens of the Llama 3 vocabulary (ending as soon as it may, with some
// probability) and checks every finished output with an independent
// validator: the grammar must never accept an invalid instance.
func TestRandomWalksValidate(t *testing.T) {
	tok := llama3(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range schemaCases {
		t.Run(c.name, func(t *testing.T) {
			g := compileSchema(t, tok, c.schema)
			v := validator(t, c.schema)
			finished := 0
			for range 12 {
				if text, ok := walk(g, tok, rng, 400); ok {
					finished++
					inst, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
					if err == nil {
						err = v.Validate(inst)
					}
					if err != nil {
						t.Errorf("grammar output %q is invalid: %v", text, err)
					}
				}
			}
			if finished == 0 {
				t.Errorf("no walk finished")
			}
		})
	}
}

// walk generates one output of g; ok is false when it did not finish
// within limit tokens.
func walk(g *Grammar, tok *tokenizer.Tokenizer, rng *rand.Rand, limit int) (string, bool) {
	m := g.NewMatcher()
	mask := make([]uint64, m.MaskWords())
	var ids []int32
	for range limit {
		if m.Done() || (m.CanEnd() && rng.IntN(2) == 0) {
			return tok.Decode(ids), true
		}
		id := randomAllowed(m, rng, mask, tok.VocabSize())
		if id < 0 {
			return "", false
		}
		if err := m.Advance(id); err != nil {
			panic(err)
		}
		if tok.IsEOG(id) {
			return tok.Decode(ids), true
		}
		ids = append(ids, id)
	}
	return "", false
}

func validator(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("s.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("s.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
