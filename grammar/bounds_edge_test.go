package grammar

import (
	"regexp"
	"testing"
)

// TestRegexUnclosedRepeat: a pattern that ends inside a {n,m} quantifier
// ("a{2", "a{2,") is, as in Go's regexp, literal text; it is never read
// past its end.
func TestRegexUnclosedRepeat(t *testing.T) {
	tok := llama3(t)
	for _, c := range []struct {
		pattern string
		texts   []string
	}{
		{"a{2", []string{"a{2", "aa", "a"}},
		{"a{2,", []string{"a{2,", "aa", "aaa"}},
		{"a{", []string{"a{", "a"}},
		{"a{2,3", []string{"a{2,3", "aa"}},
	} {
		g, err := CompileRegex(tok, c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		re := regexp.MustCompile(`^(?:` + c.pattern + `)$`)
		for _, s := range c.texts {
			if got, want := accepts(t, tok, g, s), re.MatchString(s); got != want {
				t.Errorf("%s: %q accepted %v, regexp says %v", c.pattern, s, got, want)
			}
		}
	}
}

// TestSingleClassRepeatRefusesOperators: an anchored pattern whose one
// atom is a regex operator, not a character, is not a repeated character
// set (so length bounds beside it are not narrowed as if it were).
func TestSingleClassRepeatRefusesOperators(t *testing.T) {
	for _, op := range "()|*+?{^$" {
		p := "^" + string(op) + "{2}$"
		if rs, lo, hi, ok := singleClassRepeat(p); ok {
			t.Errorf("%s: read as the set %v repeated %d..%d", p, rs, lo, hi)
		}
	}
	if rs, lo, hi, ok := singleClassRepeat("^a{2,4}$"); !ok || lo != 2 || hi != 4 || len(rs) != 1 {
		t.Errorf("^a{2,4}$: %v %d..%d %v", rs, lo, hi, ok)
	}
}

// TestPatternMaxLengthNarrows: maxLength below a repeated set's upper bound
// narrows it; the pattern's own bound still holds under a larger
// maxLength.
func TestPatternMaxLengthNarrows(t *testing.T) {
	tok := llama3(t)
	for _, c := range []struct {
		schema string
		ok     []string
		bad    []string
	}{
		{`{"type":"string","pattern":"^[a-z]{1,3}$","maxLength":2}`, []string{`"a"`, `"ab"`}, []string{`"abc"`, `""`}},
		{`{"type":"string","pattern":"^[a-z]{1,3}$","minLength":2,"maxLength":5}`, []string{`"ab"`, `"abc"`}, []string{`"a"`, `"abcd"`}},
		{`{"type":"string","pattern":"^[a-z]+$","minLength":2,"maxLength":3}`, []string{`"ab"`, `"abc"`}, []string{`"a"`, `"abcd"`}},
	} {
		g := compileSchema(t, tok, c.schema)
		for _, s := range c.ok {
			if !accepts(t, tok, g, s) {
				t.Errorf("%s: %s refused", c.schema, s)
			}
		}
		for _, s := range c.bad {
			if accepts(t, tok, g, s) {
				t.Errorf("%s: %s accepted", c.schema, s)
			}
		}
	}
}

// TestAllowedOutOfVocabulary: token ids outside the vocabulary, the first
// one past its end included, are never allowed.
func TestAllowedOutOfVocabulary(t *testing.T) {
	tok := llama3(t)
	m := compileSchema(t, tok, `{"type":"string"}`).NewMatcher()
	for _, id := range []int32{-1, int32(tok.VocabSize()), int32(tok.VocabSize()) + 1} {
		if m.Allowed(id) {
			t.Errorf("token %d of a %d-token vocabulary allowed", id, tok.VocabSize())
		}
	}
}
