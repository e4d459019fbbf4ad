package scheduler

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRandomizedSimulation runs 1000 steps of random arrivals (sharing
// prefixes), priorities, aborts (between steps and during them), stop
// tokens, right and wrong drafts and dropped results on a pool small enough
// to preempt often. Every step checks the plan against the fake engine, the
// KV entries each chunk reads, that writes only go to unshared blocks, the
// scheduler's invariants and the pool's ref counts against the block
// tables; every finished request must have the reference output; at the end
// every block is free. Seeds past 3 spread the requests over three clients.
func TestRandomizedSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		h := newHarness(t, 20, 4, Config{MaxNumBatchedTokens: 24, MaxNumSeqs: 5, MaxWaiting: 8})
		if seed > 3 {
			h.client = func(id uint64) string { return string(rune('a' + id*7%3)) }
		}
		h.eos = func(tok int32) bool { return tok%37 == 0 }
		h.propose = func(id uint64, st []int32) []int32 {
			if rng.IntN(3) != 0 {
				return nil
			}
			acc := uint64(fnvOffset)
			for _, t := range st {
				acc = mix(acc, t)
			}
			d := make([]int32, 1+rng.IntN(4))
			for j := range d {
				d[j] = nextToken(acc)
				if rng.IntN(3) == 0 {
					d[j] = int32(rng.IntN(1000))
				}
				acc = mix(acc, d[j])
			}
			return d
		}
		h.skip = func(uint64) bool { return rng.IntN(40) == 0 }
		prefixes := [][]int32{tokens(9, 1000), tokens(14, 2000), tokens(4, 3000)}

		var live []uint64
		var nextID uint64 = 1
		counts := map[string]int{}
		abortOne := func() {
			if len(live) == 0 {
				return
			}
			i := rng.IntN(len(live))
			id := live[i]
			_, known := h.s.byID[id]
			err := h.abort(id)
			switch {
			case err == nil:
				counts["aborted"]++
				live = slices.Delete(live, i, i+1)
			case errors.Is(err, ErrNotFound) && !known:
				// finished in the last Update, reported in the next plan
			default:
				t.Fatalf("seed %d: Abort(%d): %v", seed, id, err)
			}
		}
		for step := 0; step < 1000; step++ {
			for rng.IntN(2) == 0 {
				prompt := slices.Clone(prefixes[rng.IntN(len(prefixes))])
				for range rng.IntN(11) {
					prompt = append(prompt, int32(rng.IntN(1000)))
				}
				maxTokens := 1 + rng.IntN(40)
				if rng.IntN(30) == 0 {
					maxTokens = 200
				}
				switch err := h.submit(nextID, prompt, maxTokens, rng.IntN(3)); {
				case err == nil:
					live = append(live, nextID)
					counts["submitted"]++
				case errors.Is(err, ErrOverloaded):
					counts["overloaded"]++
				case errors.Is(err, ErrTooLong):
					counts["too long"]++
				default:
					t.Fatal(err)
				}
				nextID++
			}
			if rng.IntN(12) == 0 {
				abortOne()
			}
			p := h.schedule()
			counts["preempted"] += len(p.Preempted)
			for _, d := range p.Finished {
				if d.Reason != ReasonAborted {
					counts["finished"]++
					live = slices.DeleteFunc(live, func(id uint64) bool { return id == d.ID })
				}
			}
			if rng.IntN(15) == 0 {
				abortOne() // while the step is in flight
			}
			h.run(p)
		}
		for len(live) > 0 {
			abortOne()
		}
		h.drain(5)
		if h.pool.NumFree() != h.pool.NumBlocks() || h.s.NumRunning()+h.s.NumWaiting() != 0 || len(h.s.clients) != 0 {
			t.Fatalf("seed %d: %d of %d blocks free at the end", seed, h.pool.NumFree(), h.pool.NumBlocks())
		}
		if err := h.pool.CheckTables(); err != nil {
			t.Fatal(err)
		}
		st := h.pool.Stats()
		t.Logf("seed %d: %v, prefix cache hits %d of %d tokens", seed, counts, st.HitTokens, st.QueryTokens)
		for _, k := range []string{"finished", "aborted", "preempted", "overloaded", "too long"} {
			if counts[k] == 0 {
				t.Errorf("seed %d: the simulation never produced %q", seed, k)
			}
		}
		if st.HitTokens == 0 {
			t.Errorf("seed %d: no prefix cache hits", seed)
		}
	}
}
