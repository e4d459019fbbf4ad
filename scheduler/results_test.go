package scheduler

import (
	"errors"
	"testing"
)

// TestUpdateRefusesEachBadResult: every kind of invalid result is refused
// on its own, not only next to another bad one.
func TestUpdateRefusesEachBadResult(t *testing.T) {
	for name, res := range map[string]Result{
		"accepted more drafts than drafted": {ID: 1, Accepted: 1, Tokens: []int32{1}},
		"negative accepted":                 {ID: 1, Accepted: -1, Tokens: []int32{1}},
		"request that did not sample":       {ID: 7, Tokens: []int32{1}},
	} {
		h := newHarness(t, 16, 4, Config{})
		h.mustSubmit(1, tokens(5, 1), 3, 0)
		if _, err := h.s.Schedule(); err != nil {
			t.Fatal(err)
		}
		if err := h.s.Update([]Result{res}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Update = %v, want ErrInvalid", name, err)
		}
	}
}
