package spec

import (
	"slices"
	"testing"
)

// TestNGramIndexesOnlyAppendedTokens: a context that grows with the same
// last indexed token is indexed incrementally — the n-grams already indexed
// are not read again (the documented O(new tokens) cost per step). A caller
// that breaks the contract by rewriting an early token in place is
// therefore not re-indexed, which this test observes: the rewritten token
// is unknown to the index, so it yields no proposal until a Reset.
func TestNGramIndexesOnlyAppendedTokens(t *testing.T) {
	g := newNGram(t, 1, 1)
	ctx := []int32{1, 2, 3, 4}
	propose(t, g, ctx, 2)
	ctx[0] = 9 // in place: not a growth the contract allows
	ctx = append(ctx, 9)
	if got := propose(t, g, ctx, 2); len(got) != 0 {
		t.Fatalf("re-indexed a grown context from scratch: got %v, want none", got)
	}
	g.Reset()
	if got := propose(t, g, ctx, 2); !slices.Equal(got, []int32{2, 3}) {
		t.Fatalf("after Reset: got %v, want [2 3]", got)
	}
}

// TestNGramSameLengthContextChange: a context of the indexed length whose
// last token changed is re-indexed, as is a shorter one; one of the same
// length and last token is kept.
func TestNGramSameLengthContextChange(t *testing.T) {
	g := newNGram(t, 1, 2)
	propose(t, g, []int32{4, 5, 4}, 1)
	// Same length, new last token: only an index rebuilt for the new
	// context knows that "7" is followed by 5.
	if got := propose(t, g, []int32{7, 5, 7}, 1); !slices.Equal(got, []int32{5}) {
		t.Fatalf("same length, changed context: got %v, want [5]", got)
	}
	if got := propose(t, g, []int32{8, 8}, 1); !slices.Equal(got, []int32{8}) {
		t.Fatalf("shorter context: got %v, want [8]", got)
	}
}

// TestNGramMinNZeroDefaults: MinN 0 means the default 1, so unigram
// matches are proposed; a negative MinN is refused.
func TestNGramMinNZeroDefaults(t *testing.T) {
	g, err := NewNGram(NGramConfig{MinN: 0, MaxN: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := propose(t, g, []int32{1, 2, 3, 1}, 2); !slices.Equal(got, []int32{2, 3}) {
		t.Fatalf("MinN 0: got %v, want [2 3]", got)
	}
	if _, err := NewNGram(NGramConfig{MinN: 0, MaxN: MaxNGram}); err != nil {
		t.Fatalf("MaxN = MaxNGram refused: %v", err)
	}
	if _, err := NewNGram(NGramConfig{MinN: 2, MaxN: 2}); err != nil {
		t.Fatalf("MinN = MaxN refused: %v", err)
	}
}
