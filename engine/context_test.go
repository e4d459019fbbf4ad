package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestContextLimitedByPool: a KV pool that holds fewer tokens than the
// model's context for one sequence lowers the effective context length
// (Info, MemoryPlan) to what it holds, with a note; a prompt over it is
// refused and a generation without max_tokens runs to exactly it.
func TestContextLimitedByPool(t *testing.T) {
	p, err := Plan(Config{ModelPath: testModel(t, stories), BlockSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	const blocks = 4
	const limit = blocks*16 + 1 // the last sampled token needs no KV slot
	model := p.ContextLength
	if model <= limit {
		t.Fatalf("model context %d is too small for this test", model)
	}
	e := newTestEngine(t, stories, Config{BlockSize: 16, KVMemory: blocks * p.BlockBytes})
	info, plan := e.Info(), e.MemoryPlan()
	if info.ContextLength != limit || plan.ContextLength != limit || plan.RequestedContextLength != model || e.Config().ContextLength != limit {
		t.Fatalf("context: info %d, plan %d (requested %d), config %d; want %d (requested %d)",
			info.ContextLength, plan.ContextLength, plan.RequestedContextLength, e.Config().ContextLength, limit, model)
	}
	noted := false
	for _, n := range plan.Notes {
		noted = noted || strings.Contains(n, "context length lowered")
	}
	if !noted {
		t.Errorf("no note on the lowered context: %q", plan.Notes)
	}
	// A prompt that fills the effective context leaves no room: refused.
	long := make([]int32, limit)
	for i := range long {
		long[i] = 1 + int32(i%200)
	}
	var bad *InvalidRequestError
	if _, err := e.Submit(context.Background(), &Request{Prompt: long}); !errors.As(err, &bad) || bad.Param != "prompt" {
		t.Errorf("prompt of the whole context: %v", err)
	}
	// Without max_tokens the generation ends at the context length.
	r := collect(t, submit(t, e, &Request{Prompt: long[:10], IgnoreEOS: true}))
	if r.final.Finish != FinishLength || 10+len(r.tokens) != limit {
		t.Errorf("generated %d tokens after 10 (finish %v), want %d in all", len(r.tokens), r.final.Finish, limit)
	}
}
