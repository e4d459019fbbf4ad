package scheduler

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/kvcache"
)

func tokens(n int, start int32) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = start + int32(i)
	}
	return t
}

// chunk is what a test expects of one plan entry.
type chunk struct {
	id         uint64
	start, end int
	logits     bool
}

func chunks(p *Plan) []chunk {
	var out []chunk
	for _, e := range p.Seqs {
		out = append(out, chunk{e.ID, e.Start, e.End, e.Logits})
	}
	return out
}

func wantChunks(t *testing.T, p *Plan, want ...chunk) {
	t.Helper()
	if got := chunks(p); !slices.Equal(got, want) {
		t.Fatalf("step %d: plan %+v, want %+v", p.Step, got, want)
	}
}

func TestChunkedPrefillAlone(t *testing.T) {
	h := newHarness(t, 400, 16, Config{})
	h.mustSubmit(1, tokens(5000, 1), 3, 0)
	wantChunks(t, h.step(), chunk{1, 0, 2048, false})
	wantChunks(t, h.step(), chunk{1, 2048, 4096, false})
	wantChunks(t, h.step(), chunk{1, 4096, 5000, true})
	wantChunks(t, h.step(), chunk{1, 5000, 5001, true})
	wantChunks(t, h.step(), chunk{1, 5001, 5002, true})
	p := h.step()
	wantChunks(t, p)
	if !slices.Equal(p.Finished, []Done{{1, ReasonLength}}) {
		t.Fatalf("finished %v", p.Finished)
	}
	if h.pool.NumFree() != 400 {
		t.Fatalf("%d blocks free after finishing, want 400", h.pool.NumFree())
	}
}

// A long prompt is chunked while other requests keep decoding every step:
// decodes take their token first, the prefill takes what is left.
func TestChunkedPrefillAlongsideDecodes(t *testing.T) {
	for _, c := range []struct {
		budget int
		sizes  [3]int
	}{
		{2050, [3]int{2048, 2048, 904}}, // budget 2048 + one per decode
		{2048, [3]int{2046, 2046, 908}},
	} {
		h := newHarness(t, 400, 16, Config{MaxNumBatchedTokens: c.budget})
		h.mustSubmit(1, tokens(10, 1), 100, 0)
		h.mustSubmit(2, tokens(10, 50), 100, 0)
		wantChunks(t, h.step(), chunk{1, 0, 10, true}, chunk{2, 0, 10, true})
		h.mustSubmit(3, tokens(5000, 7), 5, 0)
		pos, done := 10, 0
		for _, n := range c.sizes {
			wantChunks(t, h.step(),
				chunk{1, pos, pos + 1, true}, chunk{2, pos, pos + 1, true},
				chunk{3, done, done + n, done+n == 5000})
			pos, done = pos+1, done+n
		}
		wantChunks(t, h.step(),
			chunk{1, pos, pos + 1, true}, chunk{2, pos, pos + 1, true}, chunk{3, 5000, 5001, true})
	}
}

// Decodes are scheduled before continuing prefills even when the prefill
// outranks them, and take the budget first.
func TestDecodesBeforePrefills(t *testing.T) {
	h := newHarness(t, 100, 16, Config{MaxNumBatchedTokens: 105})
	h.mustSubmit(1, tokens(5, 1), 50, 0)
	wantChunks(t, h.step(), chunk{1, 0, 5, true})
	h.mustSubmit(2, tokens(300, 9), 5, 1)
	wantChunks(t, h.step(), chunk{1, 5, 6, true}, chunk{2, 0, 104, false})
	wantChunks(t, h.step(), chunk{1, 6, 7, true}, chunk{2, 104, 208, false})
	wantChunks(t, h.step(), chunk{1, 7, 8, true}, chunk{2, 208, 300, true})
	// Both decoding now: rank order.
	wantChunks(t, h.step(), chunk{2, 300, 301, true}, chunk{1, 8, 9, true})
}

func TestMaxNumSeqsAndTurnover(t *testing.T) {
	h := newHarness(t, 100, 16, Config{MaxNumSeqs: 2})
	for id := uint64(1); id <= 3; id++ {
		h.mustSubmit(id, tokens(4, int32(id)*10), 2, 0)
	}
	wantChunks(t, h.step(), chunk{1, 0, 4, true}, chunk{2, 0, 4, true})
	if h.s.NumWaiting() != 1 || h.s.NumRunning() != 2 {
		t.Fatalf("%d waiting, %d running", h.s.NumWaiting(), h.s.NumRunning())
	}
	wantChunks(t, h.step(), chunk{1, 4, 5, true}, chunk{2, 4, 5, true})
	// 1 and 2 left in Update; 3 joins in the same step they are reported.
	p := h.step()
	wantChunks(t, p, chunk{3, 0, 4, true})
	if !slices.Equal(p.Finished, []Done{{1, ReasonLength}, {2, ReasonLength}}) {
		t.Fatalf("finished %v", p.Finished)
	}
}

func TestPriorityThenFCFS(t *testing.T) {
	h := newHarness(t, 100, 16, Config{MaxNumSeqs: 1})
	for _, r := range []struct {
		id   uint64
		prio int
	}{{1, 0}, {2, 5}, {3, 5}, {4, 1}, {5, 0}, {6, -3}, {7, 5}} {
		h.mustSubmit(r.id, tokens(3, int32(r.id)*10), 1, r.prio)
	}
	var order []uint64
	for range 7 {
		p := h.step()
		if len(p.Seqs) != 1 {
			t.Fatalf("step %d: %d entries", p.Step, len(p.Seqs))
		}
		order = append(order, p.Seqs[0].ID)
	}
	if want := []uint64{2, 3, 7, 4, 1, 5, 6}; !slices.Equal(order, want) {
		t.Fatalf("admission order %v, want %v", order, want)
	}
}

// When blocks run out, the lowest-ranked running request (latest arrival at
// equal priority) is preempted by recompute, nothing is admitted that step,
// and the victim later resumes (hitting its own cached blocks) and finishes
// with the same tokens.
func TestPreemptionByRecompute(t *testing.T) {
	h := newHarness(t, 6, 4, Config{})
	h.mustSubmit(1, tokens(7, 1), 12, 0)
	h.mustSubmit(2, tokens(7, 100), 12, 0)
	wantChunks(t, h.step(), chunk{1, 0, 7, true}, chunk{2, 0, 7, true})
	for pos := 7; pos < 12; pos++ {
		p := h.step()
		wantChunks(t, p, chunk{1, pos, pos + 1, true}, chunk{2, pos, pos + 1, true})
		if len(p.Preempted) != 0 {
			t.Fatalf("step %d preempted %v", p.Step, p.Preempted)
		}
	}
	// Position 12 needs a fourth block each; 6 blocks are all held.
	p := h.step()
	wantChunks(t, p, chunk{1, 12, 13, true})
	if !slices.Equal(p.Preempted, []uint64{2}) {
		t.Fatalf("preempted %v, want [2]", p.Preempted)
	}
	// 2's three full blocks went to the free list with their hashes, tail
	// first; 1 took the least recently freed one (2's third block).
	if got := h.pool.Stats(); got.FreeBlocks != 2 || got.CachedBlocks != 5 {
		t.Fatalf("stats %+v", got)
	}
	resumed := false
	for i := 0; i < 40 && h.s.NumRunning()+h.s.NumWaiting() > 0; i++ {
		p := h.step()
		for _, e := range p.Seqs {
			if e.ID == 2 && !resumed {
				resumed = true
				// Of 2's cached chain (blocks 2, 3, 5, freed tail first)
				// request 1 reused 5, then 3; the head block 2 survived.
				if e.Start != 4 {
					t.Fatalf("victim resumed at %d, want 4 (one cached block)", e.Start)
				}
			}
		}
		if len(p.Preempted) != 0 {
			t.Fatalf("step %d preempted %v again", p.Step, p.Preempted)
		}
	}
	h.drain(5)
	if !resumed || h.done[1] != ReasonLength || h.done[2] != ReasonLength {
		t.Fatalf("resumed %v, done %v", resumed, h.done)
	}
	if h.pool.NumFree() != 6 {
		t.Fatalf("%d free", h.pool.NumFree())
	}
}

// A waiting request preempts running ones only if it outranks them.
func TestAdmissionPreemptsOnlyLowerRank(t *testing.T) {
	h := newHarness(t, 6, 4, Config{})
	h.mustSubmit(1, tokens(17, 1), 4, 0) // five blocks
	wantChunks(t, h.step(), chunk{1, 0, 17, true})
	h.mustSubmit(2, tokens(8, 200), 3, 0) // same priority, later: waits
	p := h.step()
	wantChunks(t, p, chunk{1, 17, 18, true})
	if len(p.Preempted) != 0 || h.s.NumWaiting() != 1 {
		t.Fatalf("preempted %v, waiting %d", p.Preempted, h.s.NumWaiting())
	}
	h.mustSubmit(3, tokens(8, 300), 2, 1) // higher priority: takes 1's blocks
	p = h.step()
	wantChunks(t, p, chunk{3, 0, 8, true})
	if !slices.Equal(p.Preempted, []uint64{1}) {
		t.Fatalf("preempted %v, want [1]", p.Preempted)
	}
	// 1 (arrival 0) is back ahead of 2; it cannot fit beside 3 and does not
	// outrank it, and 2 waits behind it.
	wantChunks(t, h.step(), chunk{3, 8, 9, true})
	p = h.step()
	if !slices.Equal(p.Finished, []Done{{3, ReasonLength}}) {
		t.Fatalf("finished %v", p.Finished)
	}
	// 1 resumes from its cached prefix: of its four cached blocks, 3's
	// decode reused the tail one, so three hit.
	wantChunks(t, p, chunk{1, 12, 19, true})
	h.drain(20)
	if len(h.done) != 3 {
		t.Fatalf("done %v", h.done)
	}
}

func TestAbort(t *testing.T) {
	h := newHarness(t, 400, 16, Config{})
	h.mustSubmit(1, tokens(5000, 1), 10, 0)
	h.step()
	if h.pool.NumFree() != 400-128 {
		t.Fatalf("%d free after the first chunk", h.pool.NumFree())
	}
	// Between steps: blocks are freed at once.
	if err := h.abort(1); err != nil {
		t.Fatal(err)
	}
	if h.pool.NumFree() != 400 || h.s.NumRunning() != 0 {
		t.Fatalf("%d free, %d running after abort", h.pool.NumFree(), h.s.NumRunning())
	}
	if err := h.abort(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second abort: %v", err)
	}
	h.mustSubmit(2, tokens(5000, 9), 10, 0)
	p := h.step()
	if !slices.Equal(p.Finished, []Done{{1, ReasonAborted}}) {
		t.Fatalf("finished %v", p.Finished)
	}
	wantChunks(t, p, chunk{2, 0, 2048, false})

	// While a step is in flight: the step still runs, blocks go at Update.
	p = h.schedule()
	wantChunks(t, p, chunk{2, 2048, 4096, false})
	if err := h.abort(2); err != nil {
		t.Fatal(err)
	}
	if h.pool.NumFree() != 400-256 {
		t.Fatalf("blocks freed under an in-flight step: %d free", h.pool.NumFree())
	}
	h.run(p)
	if h.pool.NumFree() != 400 {
		t.Fatalf("%d free after the aborted step", h.pool.NumFree())
	}
	h.mustSubmit(3, tokens(5, 9), 10, 0)
	if err := h.abort(3); err != nil { // still waiting
		t.Fatal(err)
	}
	p = h.step()
	if !slices.Equal(p.Finished, []Done{{2, ReasonAborted}, {3, ReasonAborted}}) || len(p.Seqs) != 0 {
		t.Fatalf("finished %v, seqs %v", p.Finished, chunks(p))
	}
	if err := h.abort(77); !errors.Is(err, ErrNotFound) {
		t.Fatalf("abort of an unknown id: %v", err)
	}
}

func TestBoundedQueue(t *testing.T) {
	h := newHarness(t, 100, 16, Config{MaxWaiting: 2})
	h.mustSubmit(1, tokens(5, 1), 3, 0)
	h.mustSubmit(2, tokens(5, 1), 3, 0)
	if err := h.submit(3, tokens(5, 1), 3, 0); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third submit: %v", err)
	}
	h.step() // both admitted: the queue has room again
	h.mustSubmit(3, tokens(5, 1), 3, 0)
}

func TestSubmitRefusesWhatCanNeverRun(t *testing.T) {
	h := newHarness(t, 4, 4, Config{MaxWaiting: 1})
	// 16 positions: prompt 10 + 7 new tokens needs 16 (the last sampled
	// token is never computed).
	h.mustSubmit(1, tokens(10, 1), 7, 0)
	err := h.submit(2, tokens(10, 1), 8, 0)
	if !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "needs 5 KV blocks") {
		t.Fatalf("too long for the pool: %v", err)
	}
	if err := h.submit(3, tokens(20, 1), 1, 0); !errors.Is(err, ErrTooLong) {
		t.Fatalf("prompt longer than the pool: %v", err)
	}
	if err := h.submit(4, tokens(1, 1), 1<<62, 0); !errors.Is(err, ErrTooLong) {
		t.Fatalf("huge max_tokens: %v", err)
	}
	// Refusal comes before overload: the queue is full, the answer is still
	// "too long".
	if err := h.submit(5, tokens(10, 1), 8, 0); !errors.Is(err, ErrTooLong) {
		t.Fatalf("with a full queue: %v", err)
	}
	for _, r := range []Request{
		{ID: 6, MaxTokens: 1},
		{ID: 7, Prompt: tokens(2, 1), MaxTokens: 0},
		{ID: 1, Prompt: tokens(2, 1), MaxTokens: 1},
	} {
		if err := h.s.Submit(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("Submit(%+v) = %v, want ErrInvalid", r, err)
		}
	}
	g := newHarness(t, 100, 4, Config{MaxModelLen: 12})
	if err := g.submit(1, tokens(10, 1), 3, 0); !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "context length 12") {
		t.Fatalf("past MaxModelLen: %v", err)
	}
	g.mustSubmit(2, tokens(10, 1), 2, 0)
	h.drain(20)
	g.drain(20)
}

func TestPrefixHitsAdvanceComputed(t *testing.T) {
	h := newHarness(t, 100, 16, Config{})
	base := tokens(40, 1)
	h.mustSubmit(1, base, 1, 0)
	wantChunks(t, h.step(), chunk{1, 0, 40, true})
	h.mustSubmit(2, append(slices.Clone(base), 900, 901), 2, 0)
	h.mustSubmit(3, base[:32], 1, 0) // exactly two blocks: one block hits
	h.mustSubmit(4, base[:33], 1, 0)
	p := h.schedule()
	wantChunks(t, p, chunk{2, 32, 42, true}, chunk{3, 16, 32, true}, chunk{4, 32, 33, true})
	if s := h.pool.Stats(); s.QueryTokens != 40+42+32+33 || s.HitTokens != 32+16+32 {
		t.Fatalf("stats %+v", s)
	}
	// The shared prefix: block 0 in three tables, block 1 in two.
	if b := p.Seqs[0].Blocks; h.pool.RefCount(b[0]) != 3 || h.pool.RefCount(b[1]) != 2 || h.pool.RefCount(b[2]) != 1 {
		t.Fatalf("ref counts of %v: %d %d %d", b, h.pool.RefCount(b[0]), h.pool.RefCount(b[1]), h.pool.RefCount(b[2]))
	}
	h.run(p)
	h.drain(10)
}

func TestCacheKeySeparatesPrefixes(t *testing.T) {
	h := newHarness(t, 100, 4, Config{})
	prompt := tokens(9, 1)
	submit := func(id uint64, key string) {
		t.Helper()
		h.reqs[id] = submitted{prompt, 1}
		h.stream[id] = slices.Clone(prompt)
		if err := h.s.Submit(Request{ID: id, Prompt: prompt, MaxTokens: 1, CacheKey: []byte(key)}); err != nil {
			t.Fatal(err)
		}
	}
	submit(1, "")
	submit(2, "adapter-a")
	wantChunks(t, h.step(), chunk{1, 0, 9, true}, chunk{2, 0, 9, true})
	submit(3, "adapter-a")
	submit(4, "adapter-b")
	wantChunks(t, h.step(), chunk{3, 8, 9, true}, chunk{4, 0, 9, true})
}

func TestSpeculativeRollbackFreesSurplusBlocks(t *testing.T) {
	h := newHarness(t, 16, 4, Config{})
	var proposals [][]int32
	h.propose = func(id uint64, st []int32) []int32 {
		if len(proposals) == 0 {
			return nil
		}
		d := proposals[0]
		proposals = proposals[1:]
		return d
	}
	prompt := tokens(6, 1)
	want := reference(prompt, 20, nil)
	// After the prompt: 7 tokens. Two right drafts and a wrong one.
	proposals = [][]int32{{want[1], want[2], -5}, {-1, -2, -3, -4, -6}}
	h.mustSubmit(1, prompt, 20, 0)
	wantChunks(t, h.step(), chunk{1, 0, 6, true})
	p := h.schedule()
	wantChunks(t, p, chunk{1, 6, 10, true})
	if p.Seqs[0].NumDraft != 3 || len(p.Seqs[0].Blocks) != 3 {
		t.Fatalf("entry %+v", p.Seqs[0])
	}
	h.run(p)
	// Accepted two, plus the correction: 10 confirmed, computed 9. The next
	// proposal is five wrong drafts: target 15, four blocks.
	p = h.schedule()
	wantChunks(t, p, chunk{1, 9, 15, true})
	if p.Seqs[0].NumDraft != 5 || len(p.Seqs[0].Blocks) != 4 || h.pool.NumFree() != 12 {
		t.Fatalf("entry %+v, %d free", p.Seqs[0], h.pool.NumFree())
	}
	h.run(p)
	// All rejected: 11 confirmed; the fourth block was surplus.
	r := h.s.byID[1]
	if r.computed != 10 || r.target() != 11 || len(r.kv.Blocks()) != 3 || h.pool.NumFree() != 13 {
		t.Fatalf("computed %d target %d blocks %v free %d", r.computed, r.target(), r.kv.Blocks(), h.pool.NumFree())
	}
	h.drain(30)
	if got := h.stream[1][6:]; !slices.Equal(got, want) {
		t.Fatalf("output %v, want %v", got, want)
	}
}

func TestDraftsShedToFitBudget(t *testing.T) {
	h := newHarness(t, 16, 4, Config{MaxNumBatchedTokens: 4})
	first := true
	h.propose = func(id uint64, st []int32) []int32 {
		if !first {
			return nil
		}
		first = false
		return []int32{1, 2, 3, 4, 5}
	}
	h.mustSubmit(1, tokens(4, 1), 10, 0)
	wantChunks(t, h.step(), chunk{1, 0, 4, true})
	p := h.step() // gap 6 (1 + 5 drafts), budget 4: three drafts kept
	wantChunks(t, p, chunk{1, 4, 8, true})
	if p.Seqs[0].NumDraft != 3 {
		t.Fatalf("NumDraft %d, want 3", p.Seqs[0].NumDraft)
	}
	h.drain(20)
}

// An entry with Logits but no result (the engine could not sample) is
// recomputed from its last token; the output is unaffected.
func TestMissingResultRecomputesLastToken(t *testing.T) {
	h := newHarness(t, 16, 4, Config{})
	skipped := false
	h.skip = func(id uint64) bool {
		if skipped {
			return false
		}
		skipped = true
		return true
	}
	h.mustSubmit(1, tokens(5, 1), 3, 0)
	wantChunks(t, h.step(), chunk{1, 0, 5, true})
	wantChunks(t, h.step(), chunk{1, 4, 5, true})
	wantChunks(t, h.step(), chunk{1, 5, 6, true})
	h.drain(10)
}

func TestCallOrder(t *testing.T) {
	h := newHarness(t, 16, 4, Config{})
	if err := h.s.Update([]Result{{ID: 1}}); !errors.Is(err, ErrSequence) {
		t.Fatalf("Update before Schedule: %v", err)
	}
	if p := h.step(); len(p.Seqs) != 0 { // empty plans need no Update
		t.Fatal("work from nowhere")
	}
	h.mustSubmit(1, tokens(5, 1), 3, 0)
	h.mustSubmit(2, tokens(9, 1), 3, 0)
	if _, err := h.s.Schedule(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Schedule(); !errors.Is(err, ErrSequence) {
		t.Fatalf("second Schedule: %v", err)
	}
	err := h.s.Update([]Result{{ID: 9, Tokens: []int32{1}}, {ID: 1, Accepted: 2, Tokens: []int32{1}}, {ID: 2, Tokens: []int32{7}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad results: %v", err)
	}
	if got := h.s.byID[2].tokens[9:]; !slices.Equal(got, []int32{7}) {
		t.Fatalf("valid result not applied: %v", got)
	}
	if err := h.s.check(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(nil, Config{}); !errors.Is(err, ErrInvalid) {
		t.Fatal("nil pool accepted")
	}
	pool, _ := kvcache.NewPool(4, 4, nil)
	if _, err := New(pool, Config{MaxNumSeqs: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatal("negative MaxNumSeqs accepted")
	}
	if c := mustNew(t, pool).Config(); c.MaxNumBatchedTokens != 2048 || c.MaxNumSeqs != 64 || c.MaxWaiting != 1024 {
		t.Fatalf("defaults %+v", c)
	}
}

func mustNew(t testing.TB, pool *kvcache.Pool) *Scheduler {
	s, err := New(pool, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRollback abandons steps as an engine does after a failed forward
// pass: the same work is planned again, nothing reaches the prefix cache,
// and requests aborted during the step are freed.
func TestRollback(t *testing.T) {
	h := newHarness(t, 100, 16, Config{MaxNumBatchedTokens: 32})
	h.s.Rollback() // nothing in flight: no-op
	h.mustSubmit(1, tokens(40, 1), 3, 0)
	h.mustSubmit(2, tokens(20, 500), 3, 0)
	p := h.schedule()
	wantChunks(t, p, chunk{1, 0, 32, false})
	h.s.Rollback()
	if err := h.s.check(); err != nil {
		t.Fatal(err)
	}
	if st := h.pool.Stats(); st.CachedBlocks != 0 {
		t.Fatalf("rolled-back step committed %d blocks", st.CachedBlocks)
	}
	if _, err := h.s.Schedule(); err != nil {
		t.Fatalf("Schedule after Rollback: %v", err)
	}
	h.s.Rollback()
	// The same chunk again, then the rest as usual.
	wantChunks(t, h.step(), chunk{1, 0, 32, false})
	wantChunks(t, h.step(), chunk{1, 32, 40, true}, chunk{2, 0, 20, true})

	// A decode step rolled back is recomputed; an abort during it is freed.
	p = h.schedule()
	wantChunks(t, p, chunk{1, 40, 41, true}, chunk{2, 20, 21, true})
	if err := h.abort(2); err != nil {
		t.Fatal(err)
	}
	h.s.Rollback()
	if err := h.s.check(); err != nil {
		t.Fatal(err)
	}
	if h.s.NumRunning() != 1 {
		t.Fatalf("%d running after rolling back an aborted request's step", h.s.NumRunning())
	}
	p = h.step()
	wantChunks(t, p, chunk{1, 40, 41, true})
	if !slices.Equal(p.Finished, []Done{{2, ReasonAborted}}) {
		t.Fatalf("finished %v", p.Finished)
	}
	h.drain(10)
	if h.pool.NumFree() != 100 {
		t.Fatalf("%d blocks free after draining", h.pool.NumFree())
	}
}

// TestSharedPrefixBurst: requests arriving together with a common prefix
// that is not cached yet wait one step for the first of them to compute
// it, instead of computing it again in the same step; unrelated requests
// behind them are admitted meanwhile, and other cache keys don't wait.
func TestSharedPrefixBurst(t *testing.T) {
	h := newHarness(t, 100, 16, Config{})
	prefix := tokens(64, 1)
	with := func(tail ...int32) []int32 { return append(slices.Clone(prefix), tail...) }
	h.mustSubmit(1, with(tokens(8, 500)...), 2, 0)
	h.mustSubmit(2, with(tokens(8, 600)...), 2, 0)
	h.mustSubmit(3, with(tokens(8, 700)...), 2, 0)
	h.mustSubmit(4, tokens(20, 900), 2, 0)
	// The same prompt under another cache key cannot use 1's blocks.
	if err := h.s.Submit(Request{ID: 5, Prompt: with(tokens(8, 800)...), MaxTokens: 2, CacheKey: []byte("other")}); err != nil {
		t.Fatal(err)
	}
	h.reqs[5] = submitted{with(tokens(8, 800)...), 2}
	h.stream[5] = with(tokens(8, 800)...)
	wantChunks(t, h.step(), chunk{1, 0, 72, true}, chunk{4, 0, 20, true}, chunk{5, 0, 72, true})
	if h.s.NumWaiting() != 2 {
		t.Fatalf("%d waiting, want 2 deferred", h.s.NumWaiting())
	}
	wantChunks(t, h.step(), chunk{1, 72, 73, true}, chunk{4, 20, 21, true}, chunk{5, 72, 73, true},
		chunk{2, 64, 72, true}, chunk{3, 64, 72, true})
	h.drain(10)

	// Sharing one block of a long prompt is not worth a step's wait.
	h = newHarness(t, 100, 16, Config{})
	h.mustSubmit(1, with(tokens(8, 500)...), 2, 0)
	h.mustSubmit(2, append(slices.Clone(prefix[:16]), tokens(100, 600)...), 2, 0)
	wantChunks(t, h.step(), chunk{1, 0, 72, true}, chunk{2, 0, 116, true})
	h.drain(10)
}
