package engine

import (
	"fmt"
	"strings"
	"testing"
)

// TestDraftSlotsCoverContext: a draft model's KV slots hold the whole
// effective context, also where the KV pool lowered it (the last sampled
// token needs no slot, so the context is the pool's tokens plus one), so
// drafting does not stop before the target's context runs out. The plan's
// note on the draft model states the slot length.
func TestDraftSlotsCoverContext(t *testing.T) {
	draft := testModel(t, stories)
	p, err := Plan(Config{ModelPath: draft, BlockSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"model context", Config{}},
		{"pool-limited context", Config{KVMemory: 4 * p.BlockBytes}},
	} {
		cfg := c.cfg
		cfg.BlockSize, cfg.Spec, cfg.DraftModelPath, cfg.MaxNumSeqs, cfg.SpecMaxBatch = 16, SpecDraft, draft, 4, 2
		e := newTestEngine(t, stories, cfg)
		plan := e.MemoryPlan()
		want := fmt.Sprintf("%d KV slots of %d tokens", 2, e.Info().ContextLength)
		if !strings.Contains(strings.Join(plan.Notes, "\n"), want) {
			t.Errorf("%s (context %d): no note %q in %q", c.name, e.Info().ContextLength, want, plan.Notes)
		}
	}
}
