package grammar

import (
	"sync"
	"testing"
)

// TestMatchersShareGrammarConcurrently: matchers of one Grammar in several
// goroutines share its states and kept masks; each sees the masks a
// matcher of a separately compiled Grammar computes alone (run with -race
// to check the sharing).
func TestMatchersShareGrammarConcurrently(t *testing.T) {
	tok := llama3(t)
	const schema = `{"type":"object","properties":{"name":{"type":"string","maxLength":20},"tags":{"type":"array","items":{"enum":["a","bb","ccc"]}},"n":{"type":"integer","minimum":-5,"maximum":500}},"required":["name","n"],"additionalProperties":false}`
	texts := []string{`{"name":"Ada Lovelace","tags":["a","ccc"],"n":42}`, `{"name":"x","n":-5}`, `{"name":"","tags":[],"n":500}`}
	// Reference masks from a grammar no other matcher touches.
	want := map[string][][]uint64{}
	for _, text := range texts {
		m := compileSchema(t, tok, schema).NewMatcher()
		for _, id := range tok.Encode(text, false, false) {
			mask := make([]uint64, m.MaskWords())
			m.Mask(mask)
			want[text] = append(want[text], mask)
			if err := m.Advance(id); err != nil {
				t.Fatalf("%s: %v", text, err)
			}
		}
	}
	g := compileSchema(t, tok, schema)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 3 {
				text := texts[(w+r)%len(texts)]
				m := g.NewMatcher()
				mask := make([]uint64, m.MaskWords())
				for i, id := range tok.Encode(text, false, false) {
					m.Mask(mask)
					for j := range mask {
						if mask[j] != want[text][i][j] {
							errs <- text + ": a shared mask differs"
							return
						}
					}
					if err := m.Advance(id); err != nil {
						errs <- err.Error()
						return
					}
				}
				if !m.CanEnd() {
					errs <- text + ": cannot end"
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
