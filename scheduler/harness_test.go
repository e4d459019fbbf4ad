package scheduler

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sluice-llm/sluice/kvcache"
)

// The fake model: the KV entry of position p is a hash of tokens[0..p], and
// the next token is a function of that hash. A step that reads a wrong or
// stale KV entry therefore notices, and any schedule that computes the right
// entries yields the same tokens.

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func mix(h uint64, tok int32) uint64 {
	h ^= uint64(uint32(tok))
	h *= fnvPrime
	h ^= h >> 29
	return h
}

func nextToken(h uint64) int32 { return int32(h>>40) % 1000 }

// reference generates what any correct schedule must produce.
func reference(prompt []int32, maxTokens int, eos func(int32) bool) []int32 {
	h := uint64(fnvOffset)
	for _, t := range prompt {
		h = mix(h, t)
	}
	var out []int32
	for len(out) < maxTokens {
		t := nextToken(h)
		out = append(out, t)
		if eos != nil && eos(t) {
			break
		}
		h = mix(h, t)
	}
	return out
}

type submitted struct {
	prompt    []int32
	maxTokens int
}

// harness plays the engine: it runs plans against a fake KV memory and the
// fake model, and checks every plan and the scheduler's invariants.
type harness struct {
	t       testing.TB
	s       *Scheduler
	pool    *kvcache.Pool
	kv      []uint64 // per slot; 0 means never written
	reqs    map[uint64]submitted
	stream  map[uint64][]int32 // confirmed tokens as the engine knows them
	drafts  map[uint64][]int32 // drafts proposed for the next step
	done    map[uint64]Reason
	eos     func(int32) bool
	propose func(id uint64, stream []int32) []int32 // draft proposer, may be nil
	skip    func(id uint64) bool                    // drop this result (engine hiccup)
	plans   []Plan                                  // copies of every plan, when record is set
	record  bool
	results []Result
	heavy   bool                   // check every KV entry before each chunk, not only the one before it
	client  func(id uint64) string // Request.Client of each submit; nil: ""
}

func newHarness(t testing.TB, numBlocks, blockSize int, cfg Config) *harness {
	t.Helper()
	pool, err := kvcache.NewPool(numBlocks, blockSize, []byte("fake-model"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{
		t: t, s: s, pool: pool,
		kv:     make([]uint64, numBlocks*blockSize),
		reqs:   map[uint64]submitted{},
		stream: map[uint64][]int32{},
		drafts: map[uint64][]int32{},
		done:   map[uint64]Reason{},
		heavy:  true,
	}
}

func (h *harness) submit(id uint64, prompt []int32, maxTokens, priority int) error {
	r := Request{ID: id, Prompt: prompt, MaxTokens: maxTokens, Priority: priority}
	if h.client != nil {
		r.Client = h.client(id)
	}
	err := h.s.Submit(r)
	if err == nil {
		h.reqs[id] = submitted{slices.Clone(prompt), maxTokens}
		h.stream[id] = slices.Clone(prompt)
	}
	return err
}

func (h *harness) mustSubmit(id uint64, prompt []int32, maxTokens, priority int) {
	h.t.Helper()
	if err := h.submit(id, prompt, maxTokens, priority); err != nil {
		h.t.Fatal(err)
	}
}

// schedule runs Schedule and checks the plan against the engine's view.
func (h *harness) schedule() *Plan {
	h.t.Helper()
	p, err := h.s.Schedule()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.checkPlan(p); err != nil {
		h.t.Fatalf("step %d: %v", p.Step, err)
	}
	if h.record {
		h.plans = append(h.plans, clonePlan(p))
	}
	return p
}

// run executes p on the fake model and calls Update.
func (h *harness) run(p *Plan) {
	h.t.Helper()
	h.results = h.results[:0]
	for i := range p.Seqs {
		if err := h.compute(&p.Seqs[i]); err != nil {
			h.t.Fatalf("step %d: %v", p.Step, err)
		}
	}
	if err := h.s.Update(h.results); err != nil {
		h.t.Fatalf("step %d: Update: %v", p.Step, err)
	}
	if err := h.s.check(); err != nil {
		h.t.Fatalf("after step %d: %v", p.Step, err)
	}
}

func (h *harness) step() *Plan {
	h.t.Helper()
	p := h.schedule()
	h.run(p)
	return p
}

// idle steps until nothing is left, failing after limit steps.
func (h *harness) drain(limit int) {
	h.t.Helper()
	for i := 0; h.s.NumRunning()+h.s.NumWaiting() > 0; i++ {
		if i == limit {
			h.t.Fatalf("not drained after %d steps: %d running, %d waiting", limit, h.s.NumRunning(), h.s.NumWaiting())
		}
		h.step()
	}
	h.step() // report the last finishes
}

func (h *harness) checkPlan(p *Plan) error {
	bs := h.pool.BlockSize()
	cfg := h.s.Config()
	if p.NumTokens > cfg.MaxNumBatchedTokens || len(p.Seqs) > cfg.MaxNumSeqs {
		return fmt.Errorf("plan of %d tokens, %d seqs exceeds the limits", p.NumTokens, len(p.Seqs))
	}
	for _, id := range p.Preempted {
		delete(h.drafts, id)
	}
	for _, d := range p.Finished {
		if _, dup := h.done[d.ID]; dup {
			return fmt.Errorf("request %d finished twice", d.ID)
		}
		h.done[d.ID] = d.Reason
		if d.Reason == ReasonAborted {
			continue
		}
		r := h.reqs[d.ID]
		want := reference(r.prompt, r.maxTokens, h.eos)
		got := h.stream[d.ID][len(r.prompt):]
		if !slices.Equal(got, want) {
			return fmt.Errorf("request %d finished (%v) with %v, want %v", d.ID, d.Reason, got, want)
		}
		if d.Reason == ReasonLength && len(got) != r.maxTokens {
			return fmt.Errorf("request %d: length finish after %d of %d tokens", d.ID, len(got), r.maxTokens)
		}
	}
	total, seen := 0, map[uint64]bool{}
	for i := range p.Seqs {
		e := &p.Seqs[i]
		if seen[e.ID] {
			return fmt.Errorf("request %d scheduled twice", e.ID)
		}
		seen[e.ID] = true
		if _, ok := h.done[e.ID]; ok {
			return fmt.Errorf("finished request %d scheduled", e.ID)
		}
		if e.Start < 0 || e.End <= e.Start {
			return fmt.Errorf("request %d: empty range [%d,%d)", e.ID, e.Start, e.End)
		}
		total += e.End - e.Start
		if len(e.Tokens) != e.End-e.Start || len(e.Slots) != len(e.Tokens) {
			return fmt.Errorf("request %d: %d tokens, %d slots for [%d,%d)", e.ID, len(e.Tokens), len(e.Slots), e.Start, e.End)
		}
		if len(e.Blocks)*bs < e.End {
			return fmt.Errorf("request %d: %d blocks for %d positions", e.ID, len(e.Blocks), e.End)
		}
		for k, slot := range e.Slots {
			pos := e.Start + k
			if want := e.Blocks[pos/bs]*int32(bs) + int32(pos%bs); slot != want {
				return fmt.Errorf("request %d pos %d: slot %d, want %d", e.ID, pos, slot, want)
			}
		}
		full := append(slices.Clone(h.stream[e.ID]), h.drafts[e.ID]...)
		if e.End > len(full) || !slices.Equal(e.Tokens, full[e.Start:e.End]) {
			return fmt.Errorf("request %d: tokens [%d,%d) = %v, engine has %v", e.ID, e.Start, e.End, e.Tokens, full)
		}
		if e.Logits && e.End-e.NumDraft != len(h.stream[e.ID]) {
			return fmt.Errorf("request %d: samples at %d with %d drafts, but %d tokens are confirmed", e.ID, e.End, e.NumDraft, len(h.stream[e.ID]))
		}
	}
	if total != p.NumTokens || len(p.Slots) != total {
		return fmt.Errorf("NumTokens %d, slots %d, entries sum to %d", p.NumTokens, len(p.Slots), total)
	}
	return nil
}

// compute plays one entry: it checks the KV entries the chunk reads, writes
// its own (only ever into blocks no one else holds) and samples.
func (h *harness) compute(e *Scheduled) error {
	bs := h.pool.BlockSize()
	full := append(slices.Clone(h.stream[e.ID]), h.drafts[e.ID]...)[:e.End]
	hs := make([]uint64, e.End)
	acc := uint64(fnvOffset)
	for i, t := range full {
		acc = mix(acc, t)
		hs[i] = acc
	}
	slot := func(pos int) int { return int(e.Blocks[pos/bs])*bs + pos%bs }
	from := 0
	if !h.heavy {
		from = max(e.Start-1, 0)
	}
	for q := from; q < e.Start; q++ {
		if got := h.kv[slot(q)]; got != hs[q] {
			return fmt.Errorf("request %d reads a wrong KV entry at position %d (block %d)", e.ID, q, e.Blocks[q/bs])
		}
	}
	for q := e.Start; q < e.End; q++ {
		if rc := h.pool.RefCount(e.Blocks[q/bs]); rc != 1 {
			return fmt.Errorf("request %d writes position %d into block %d with ref count %d", e.ID, q, e.Blocks[q/bs], rc)
		}
		h.kv[slot(q)] = hs[q]
	}
	if !e.Logits {
		return nil
	}
	if h.skip != nil && h.skip(e.ID) {
		delete(h.drafts, e.ID)
		return nil
	}
	conf := e.End - e.NumDraft
	drafts := full[conf:]
	res := Result{ID: e.ID, Accepted: len(drafts)}
	for j, d := range drafts {
		// A draft that is wrong, or right but a stop token, ends the run:
		// the model's own token is reported instead.
		if want := nextToken(hs[conf-1+j]); want != d || (h.eos != nil && h.eos(d)) {
			res.Accepted = j
			res.Tokens = []int32{want}
			break
		}
	}
	if res.Tokens == nil {
		res.Tokens = []int32{nextToken(hs[e.End-1])}
	}
	// Mirror the scheduler: accepted drafts, then tokens up to MaxTokens,
	// stopping at EOS.
	r := h.reqs[e.ID]
	st := append(h.stream[e.ID], drafts[:res.Accepted]...)
	for _, t := range res.Tokens {
		if len(st)-len(r.prompt) >= r.maxTokens {
			break
		}
		st = append(st, t)
		if h.eos != nil && h.eos(t) {
			res.Finished = true
			break
		}
	}
	h.stream[e.ID] = st
	delete(h.drafts, e.ID)
	if !res.Finished && len(st)-len(r.prompt) < r.maxTokens && h.propose != nil {
		res.Drafts = h.propose(e.ID, st)
		room := r.maxTokens - (len(st) - len(r.prompt)) - 1
		h.drafts[e.ID] = slices.Clone(res.Drafts[:min(len(res.Drafts), room)])
	}
	h.results = append(h.results, res)
	return nil
}

// abort cancels a request. The engine keeps its view: an in-flight step
// still computes it.
func (h *harness) abort(id uint64) error { return h.s.Abort(id) }

func clonePlan(p *Plan) Plan {
	c := *p
	c.Seqs = slices.Clone(p.Seqs)
	for i := range c.Seqs {
		c.Seqs[i].Tokens = slices.Clone(c.Seqs[i].Tokens)
		c.Seqs[i].Blocks = slices.Clone(c.Seqs[i].Blocks)
		c.Seqs[i].Slots = slices.Clone(c.Seqs[i].Slots)
	}
	c.Slots = slices.Clone(p.Slots)
	c.Preempted = slices.Clone(p.Preempted)
	c.Finished = slices.Clone(p.Finished)
	return c
}

// check verifies the scheduler's invariants between steps.
func (s *Scheduler) check() error {
	if s.inFlight {
		return fmt.Errorf("check while a step is in flight")
	}
	seqs := make([]*kvcache.Seq, 0, len(s.running))
	if len(s.running) > s.cfg.MaxNumSeqs {
		return fmt.Errorf("%d running, limit %d", len(s.running), s.cfg.MaxNumSeqs)
	}
	for i, r := range s.running {
		if r.state != running || s.byID[r.id] != r {
			return fmt.Errorf("running request %d: state %d, registered %v", r.id, r.state, s.byID[r.id] == r)
		}
		if i > 0 && !s.running[i-1].outranks(r) {
			return fmt.Errorf("running list out of rank order at %d", i)
		}
		if r.computed >= r.target() || r.computed < 0 {
			return fmt.Errorf("request %d: computed %d, target %d", r.id, r.computed, r.target())
		}
		nb := len(r.kv.Blocks())
		if nb < s.pool.BlocksFor(r.computed) || nb > s.pool.BlocksFor(r.target()) {
			return fmt.Errorf("request %d holds %d blocks for computed %d, target %d", r.id, nb, r.computed, r.target())
		}
		if r.numDraft > 0 && r.computed != r.confirmed()-1 {
			return fmt.Errorf("request %d has %d drafts but computed %d of %d confirmed", r.id, r.numDraft, r.computed, r.confirmed())
		}
		if r.generated() >= r.maxTokens || r.confirmed() < r.promptLen {
			return fmt.Errorf("request %d: %d generated of %d", r.id, r.generated(), r.maxTokens)
		}
		seqs = append(seqs, &r.kv)
	}
	n := 0
	for r := s.waiting.head.next; r != &s.waiting.head; r = r.next {
		if r.state != waiting || s.byID[r.id] != r {
			return fmt.Errorf("waiting request %d: state %d", r.id, r.state)
		}
		if len(r.kv.Blocks()) != 0 || r.computed != 0 || r.numDraft != 0 {
			return fmt.Errorf("waiting request %d holds %d blocks, computed %d, %d drafts", r.id, len(r.kv.Blocks()), r.computed, r.numDraft)
		}
		if r.prev != &s.waiting.head && !r.prev.outranks(r) {
			return fmt.Errorf("waiting queue out of rank order at %d", r.id)
		}
		n++
	}
	if n != s.waiting.n {
		return fmt.Errorf("waiting queue has %d, count says %d", n, s.waiting.n)
	}
	if len(s.byID) != n+len(s.running) {
		return fmt.Errorf("%d registered requests, %d waiting + %d running", len(s.byID), n, len(s.running))
	}
	live := map[*client]int{}
	for _, r := range s.byID {
		if r.client == nil || s.clients[r.client.key] != r.client {
			return fmt.Errorf("request %d has no registered client", r.id)
		}
		live[r.client]++
	}
	for key, c := range s.clients {
		if live[c] != c.live || c.key != key || c.live == 0 {
			return fmt.Errorf("client %q counts %d live requests, has %d", key, c.live, live[c])
		}
	}
	return s.pool.CheckTables(seqs...)
}
