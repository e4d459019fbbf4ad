package engine

import (
	"testing"
	"time"
)

// TestStatsMeans: the per-step means divide by the step count from the
// first step on, and are 0 (not NaN) before it.
func TestStatsMeans(t *testing.T) {
	var zero Stats
	if zero.MeanStepTime() != 0 || zero.MeanBatchTokens() != 0 || zero.MeanBatchSeqs() != 0 {
		t.Errorf("before the first step: %v %g %g", zero.MeanStepTime(), zero.MeanBatchTokens(), zero.MeanBatchSeqs())
	}
	one := Stats{Steps: 1, StepTimeTotal: 3 * time.Millisecond, BatchTokensTotal: 7, BatchSeqsTotal: 3}
	if one.MeanStepTime() != 3*time.Millisecond || one.MeanBatchTokens() != 7 || one.MeanBatchSeqs() != 3 {
		t.Errorf("after one step: %v %g %g, want 3ms 7 3", one.MeanStepTime(), one.MeanBatchTokens(), one.MeanBatchSeqs())
	}
	two := Stats{Steps: 2, StepTimeTotal: 3 * time.Millisecond, BatchTokensTotal: 7, BatchSeqsTotal: 3}
	if two.MeanStepTime() != 1500*time.Microsecond || two.MeanBatchTokens() != 3.5 || two.MeanBatchSeqs() != 1.5 {
		t.Errorf("after two steps: %v %g %g, want 1.5ms 3.5 1.5", two.MeanStepTime(), two.MeanBatchTokens(), two.MeanBatchSeqs())
	}
}
