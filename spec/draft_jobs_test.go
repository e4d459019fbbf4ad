package spec

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/sample"
)

// TestCheckVocabLengthMessage: vocabularies that differ only in length are
// refused with both sizes and the last id they share.
func TestCheckVocabLengthMessage(t *testing.T) {
	err := CheckVocab([]string{"a", "b", "c"}, []string{"a", "b"})
	if err == nil || !strings.Contains(err.Error(), "2 tokens, the target's has 3 (identical up to id 1)") {
		t.Fatalf("got %v", err)
	}
}

// TestDraftSeedDeterminesDrafts: a sampled request's drafts follow its
// seed: the same seed gives the same drafts, another seed other drafts.
func TestDraftSeedDeterminesDrafts(t *testing.T) {
	be := testBackend(t)
	dm := loadModel(t, be, "stories260K.gguf")
	d, err := NewDraft(dm.m, DraftOptions{Slots: 1, MaxTokens: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	params := sample.DefaultParams()
	params.Temperature = 1
	draw := func(seed uint64) []int32 {
		ds, err := d.Acquire(params, seed)
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Release()
		var p Proposal
		ds.Propose([]int32{1, 403, 407, 261, 378}, 12, &p)
		if ds.Err() != nil || len(p.Tokens) != 12 {
			t.Fatalf("seed %d: %d tokens, %v", seed, len(p.Tokens), ds.Err())
		}
		return slices.Clone(p.Tokens)
	}
	a, b, c := draw(5), draw(5), draw(6)
	if !slices.Equal(a, b) {
		t.Errorf("seed 5 twice: %v and %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 5 and 6 drafted the same %v", a)
	}
}

// TestDraftProposeBatchSkipsJobs: ProposeBatch proposes nothing for a job
// with an empty context or with a sequence of another Draft, and still
// proposes for the other jobs of the batch.
func TestDraftProposeBatchSkipsJobs(t *testing.T) {
	be := testBackend(t)
	dm := loadModel(t, be, "stories260K.gguf")
	var ds [2]*Draft
	for i := range ds {
		d, err := NewDraft(dm.m, DraftOptions{Slots: 2, MaxTokens: 64})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ds[i] = d
	}
	mine, err := ds[0].Acquire(greedyParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := ds[0].Acquire(greedyParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ds[1].Acquire(greedyParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := []int32{1, 403, 407, 261, 378}
	outs := make([]Proposal, 3)
	for i := range outs {
		outs[i].Tokens = []int32{-7}
	}
	jobs := []DraftJob{
		{Seq: mine, Ctx: ctx, K: 3, Out: &outs[0]},
		{Seq: empty, Ctx: nil, K: 3, Out: &outs[1]},
		{Seq: foreign, Ctx: ctx, K: 3, Out: &outs[2]},
	}
	if err := ds[0].ProposeBatch(jobs); err != nil {
		t.Fatal(err)
	}
	if len(outs[0].Tokens) != 3 || len(outs[1].Tokens) != 0 || len(outs[2].Tokens) != 0 {
		t.Fatalf("proposals %v, %v, %v; want 3 tokens, none, none", outs[0].Tokens, outs[1].Tokens, outs[2].Tokens)
	}
}
