package kvcache

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRandomOperations drives a small pool with random admissions (sharing
// prefixes), growth, commits, truncations and frees, checking the invariants
// after every operation and that every hit block holds exactly the tokens of
// the sequence that hit it.
func TestRandomOperations(t *testing.T) {
	const bs = 4
	rng := rand.New(rand.NewPCG(7, 7))
	p := mustPool(t, 24, bs)
	type live struct {
		seq      Seq
		tokens   []int32
		computed int
	}
	var seqs []*live
	tables := func() []*Seq {
		out := make([]*Seq, len(seqs))
		for i, l := range seqs {
			out[i] = &l.seq
		}
		return out
	}
	prefixes := [][]int32{seqOf(9, 100), seqOf(6, 200)}
	for op := 0; op < 5000; op++ {
		switch k := rng.IntN(10); {
		case k < 3 || len(seqs) == 0: // admit
			toks := slices.Clone(prefixes[rng.IntN(2)])
			for range rng.IntN(8) {
				toks = append(toks, int32(rng.IntN(4)))
			}
			l := &live{tokens: toks}
			cached, hit := p.Match(&l.seq, toks)
			if hit >= len(toks) || hit%bs != 0 {
				t.Fatalf("hit %d of %d tokens", hit, len(toks))
			}
			for i, b := range cached {
				if !slices.Equal(p.blockTokens(b), toks[i*bs:(i+1)*bs]) {
					t.Fatalf("hit block %d holds %v, want %v", b, p.blockTokens(b), toks[i*bs:(i+1)*bs])
				}
			}
			before := p.NumFree()
			err := p.Allocate(&l.seq, cached, len(toks))
			if errors.Is(err, ErrNoBlocks) {
				if p.NumFree() != before || len(l.seq.blocks) != 0 {
					t.Fatal("failed allocation changed the pool")
				}
				break
			} else if err != nil {
				t.Fatal(err)
			}
			l.computed = hit
			seqs = append(seqs, l)
		case k < 6: // compute some, commit, maybe grow
			l := seqs[rng.IntN(len(seqs))]
			l.computed = min(len(l.tokens), l.computed+1+rng.IntN(6))
			p.Commit(&l.seq, l.tokens[:l.computed])
			if l.computed == len(l.tokens) {
				grow := 1 + rng.IntN(5)
				if p.Allocate(&l.seq, nil, len(l.tokens)+grow) == nil {
					for range grow {
						l.tokens = append(l.tokens, int32(rng.IntN(4)))
					}
				}
			}
		case k < 7: // roll back uncommitted tokens
			l := seqs[rng.IntN(len(seqs))]
			n := l.seq.committed*bs + rng.IntN(len(l.tokens)-l.seq.committed*bs+1)
			if err := p.Truncate(&l.seq, n); err != nil {
				t.Fatal(err)
			}
			l.tokens = l.tokens[:n]
			l.computed = min(l.computed, n)
		default: // free
			i := rng.IntN(len(seqs))
			p.Free(&seqs[i].seq)
			seqs = slices.Delete(seqs, i, i+1)
		}
		if err := p.CheckTables(tables()...); err != nil {
			t.Fatalf("op %d: %v", op, err)
		}
	}
	for _, l := range seqs {
		p.Free(&l.seq)
	}
	if p.NumFree() != p.NumBlocks() {
		t.Fatalf("%d of %d free", p.NumFree(), p.NumBlocks())
	}
	if s := p.Stats(); s.HitTokens == 0 || s.CachedBlocks == 0 {
		t.Fatalf("the run never hit the cache: %+v", s)
	}
}
