package spec

import (
	"slices"
	"testing"
)

// TestDraftRecoversFromFailedForward: a forward pass that fails (here on a
// token outside the vocabulary) cuts the slot back to what it held before,
// so the next proposal recomputes those tokens and equals a fresh slot's.
func TestDraftRecoversFromFailedForward(t *testing.T) {
	be := testBackend(t)
	dm := loadModel(t, be, "stories260K.gguf")
	propose := func(ds *DraftSeq, ctx []int32) []int32 {
		var p Proposal
		ds.Propose(ctx, 8, &p)
		if ds.Err() != nil {
			t.Fatal(ds.Err())
		}
		return slices.Clone(p.Tokens)
	}
	good := []int32{1}
	for i := range 40 {
		good = append(good, int32(260+(i*37)%150))
	}
	var want []int32
	{
		d, err := NewDraft(dm.m, DraftOptions{Slots: 1, MaxTokens: 64})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := d.Acquire(greedyParams(), 0)
		if err != nil {
			t.Fatal(err)
		}
		want = propose(ds, good)
		d.Close()
	}
	d, err := NewDraft(dm.m, DraftOptions{Slots: 1, MaxTokens: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ds, err := d.Acquire(greedyParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var p Proposal
	bad := slices.Clone(good)
	bad[len(bad)-2] = int32(d.Vocab()) + 5
	ds.Propose(bad, 4, &p)
	if ds.Err() == nil {
		t.Fatal("a token outside the vocabulary was computed")
	}
	if got := propose(ds, good); !slices.Equal(got, want) {
		t.Fatalf("after a failed pass: %v, fresh slot: %v", got, want)
	}
}
