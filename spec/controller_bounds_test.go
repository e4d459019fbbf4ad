package spec

import "testing"

// TestControllerBoundaryValues: a prior acceptance rate of exactly 1 is
// valid, and MaxBatch 1 turns speculation off for a batch of one sequence
// while MaxBatch 2 keeps it.
func TestControllerBoundaryValues(t *testing.T) {
	if _, err := NewController(ControllerConfig{Prior: 1}); err != nil {
		t.Errorf("prior 1 refused: %v", err)
	}
	var st ReqState
	for _, c := range []struct{ maxBatch, batch, want int }{{1, 1, 0}, {2, 1, 3}, {2, 2, 0}} {
		ctl, err := NewController(ControllerConfig{FixedK: 3, MaxBatch: c.maxBatch})
		if err != nil {
			t.Fatal(err)
		}
		if got := ctl.K(&st, c.batch); got != c.want {
			t.Errorf("max batch %d, batch %d: K %d, want %d", c.maxBatch, c.batch, got, c.want)
		}
	}
}
