package spec

import (
	"slices"
	"testing"
)

// TestResidualSampleEmptyResidual: when the draft distribution equals the
// target's (the residual max(0, p−q) is zero everywhere, which rounding can
// produce) the replacement is drawn from p itself, never -1.
func TestResidualSampleEmptyResidual(t *testing.T) {
	p := []float32{0.25, 0.75, 0}
	for _, u := range []float64{0, 0.2, 0.5, 0.99} {
		want := int32(0)
		if u >= 0.25 {
			want = 1
		}
		got := residualSample(slices.Clone(p), slices.Clone(p), 1, u)
		if got != want {
			t.Errorf("q == p, u %.2f: got %d, want %d (a draw from p)", u, got, want)
		}
	}
}

// TestResidualSampleNormalises: the residual max(0, p−q) is drawn from,
// renormalised; tokens where q ≥ p are never chosen.
func TestResidualSampleNormalises(t *testing.T) {
	p := []float32{0.5, 0.3, 0.2}
	q := []float32{0.1, 0.6, 0.3}
	// Residual: {0.4, 0, 0}: token 0 whatever u.
	for _, u := range []float64{0, 0.5, 0.999} {
		if got := residualSample(slices.Clone(p), q, 1, u); got != 0 {
			t.Errorf("u %.3f: got %d, want 0", u, got)
		}
	}
}
