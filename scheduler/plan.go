package scheduler

import (
	"bytes"
	"errors"
	"slices"

	"github.com/sluice-llm/sluice/kvcache"
)

// Plan is one step's work. It and every slice reachable from it are buffers
// owned by the Scheduler and reused from step to step: they are valid until
// the next call of Update or Schedule, and the engine must not modify them.
type Plan struct {
	Step uint64
	// Seqs lists the scheduled requests: running ones first, decodes before
	// continuing prefills, then newly admitted ones.
	Seqs      []Scheduled
	NumTokens int     // sum of End-Start over Seqs, at most MaxNumBatchedTokens
	Slots     []int32 // every entry's Slots, concatenated in Seqs order
	// Preempted lists requests sent back to the waiting queue this step:
	// their blocks are freed and they will recompute from the start (prefix
	// cache hits permitting). The engine keeps their output so far.
	Preempted []uint64
	// Finished lists requests that left since the previous plan: finished by
	// the previous Update, or aborted.
	Finished []Done
}

// Scheduled is one request's share of a step: compute KV for token positions
// [Start, End) of its token stream.
type Scheduled struct {
	ID         uint64
	Start, End int
	Tokens     []int32 // token ids at positions Start..End-1
	Blocks     []int32 // the request's whole block table
	Slots      []int32 // KV slot per position: block*blockSize + offset
	// Logits is set when the chunk reaches the request's target, so the
	// engine samples: from the logits of the last NumDraft+1 positions,
	// which yield the token after the confirmed ones and verify each of
	// the NumDraft trailing draft tokens of the range.
	Logits   bool
	NumDraft int
}

// Reason says why a request finished.
type Reason uint8

const (
	ReasonStop    Reason = iota + 1 // the engine reported a stop (EOS, stop string)
	ReasonLength                    // MaxTokens generated
	ReasonAborted                   // Abort
)

func (r Reason) String() string {
	switch r {
	case ReasonStop:
		return "stop"
	case ReasonLength:
		return "length"
	case ReasonAborted:
		return "abort"
	}
	return "unknown"
}

// Done reports a request that left the scheduler.
type Done struct {
	ID     uint64
	Reason Reason
}

// Schedule picks this step's work. Running requests go first, in rank
// order (priority, then turn, then arrival), decodes before continuing
// prefills; each gets min(gap, remaining budget) tokens. When the pool runs out of blocks the
// lowest-ranked running request is preempted by recompute (it may be the one
// asking) and the allocation retried. Then, unless something was preempted,
// waiting requests are admitted in queue order (within a priority,
// round-robin across clients, FCFS within one) while budget, sequence slots
// and blocks last; a waiting request may preempt running ones only if it
// outranks them, and admission stops at the first request that does not fit.
// A waiting request whose prompt continues blocks that entries already in
// the plan compute, so that it would hit them in the prefix cache after
// this step and save at least half its work, waits for the next step
// instead; requests behind it may go first.
//
// Schedule fails with ErrSequence if the previous plan still awaits Update.
// A plan without entries needs no Update.
func (s *Scheduler) Schedule() (*Plan, error) {
	if s.inFlight {
		return nil, ErrSequence
	}
	s.step++
	p := &s.plan
	p.Step = s.step
	p.Seqs = p.Seqs[:0]
	p.Preempted = p.Preempted[:0]
	p.Finished = append(p.Finished[:0], s.done...)
	s.done = s.done[:0]
	s.planReqs = s.planReqs[:0]
	budget := s.cfg.MaxNumBatchedTokens
	preempted := false

	for _, decodes := range [2]bool{true, false} {
		for i := 0; i < len(s.running) && budget > 0; i++ {
			r := s.running[i]
			if r.decoding() != decodes {
				continue
			}
			n := min(r.target()-r.computed, budget)
			for {
				err := s.pool.Allocate(&r.kv, nil, r.computed+n)
				if err == nil {
					break
				}
				victim := s.running[len(s.running)-1]
				budget += s.preempt(victim)
				preempted = true
				if victim == r {
					n = 0
					break
				}
			}
			if n > 0 {
				s.add(r, n)
				budget -= n
			}
		}
	}

	next := s.waiting.front()
	for !preempted && budget > 0 && len(s.running) < s.cfg.MaxNumSeqs && next != nil {
		r := next
		next = s.waiting.after(r)
		admitted, deferred := false, false
		for {
			cached, hit := s.pool.Match(&r.kv, r.tokens)
			if s.computedInStep(r, hit) {
				deferred = true
				break
			}
			n := min(r.target()-hit, budget)
			err := s.pool.Allocate(&r.kv, cached, hit+n)
			if err == nil {
				s.waiting.remove(r)
				s.insertRunning(r)
				s.round = max(s.round, r.turn)
				r.computed = hit
				s.add(r, n)
				budget -= n
				admitted = true
				break
			}
			if !errors.Is(err, kvcache.ErrNoBlocks) || len(s.running) == 0 {
				break
			}
			victim := s.running[len(s.running)-1]
			if !r.outranks(victim) {
				break
			}
			budget += s.preempt(victim)
			preempted = true
		}
		if deferred {
			continue
		}
		if !admitted {
			break
		}
	}

	s.fillViews()
	s.inFlight = len(p.Seqs) > 0
	return p, nil
}

// computedInStep reports whether waiting request r, whose prompt hits
// hit tokens in the prefix cache, should wait for the next step because
// entries already in this step's plan compute the blocks of its prompt
// that follow: once this step commits them, r hits them and has at most
// half as much left to compute. Admitting it now would compute the same
// prefix twice in one step (a burst of requests sharing a new system
// prompt, say).
func (s *Scheduler) computedInStep(r *req, hit int) bool {
	bs := s.pool.BlockSize()
	// A hit stops short of the last prompt token (Match's limit).
	most := (len(r.tokens) - 1) / bs * bs
	if most-hit < bs {
		return false
	}
	rest := r.target() - hit
	for i, q := range s.planReqs {
		// q commits its confirmed tokens up to the end of its chunk.
		end := min(s.plan.Seqs[i].End, q.confirmed(), most)
		if end-hit < bs || !bytes.Equal(q.key, r.key) {
			continue
		}
		// The block after the hit first: it rejects unrelated streams
		// at once.
		if !slices.Equal(q.tokens[hit:hit+bs], r.tokens[hit:hit+bs]) {
			continue
		}
		c := hit + bs
		for c < end && q.tokens[c] == r.tokens[c] {
			c++
		}
		if hit == 0 || slices.Equal(q.tokens[:hit], r.tokens[:hit]) {
			if gain := c/bs*bs - hit; 2*gain >= rest {
				return true
			}
		}
	}
	return false
}

// add appends r's chunk of n tokens to the plan and counts them computed.
// A chunk that takes in the last confirmed token but stops short of the
// target sheds the drafts it cannot reach, so drafts are always verified in
// the chunk that computes them.
func (s *Scheduler) add(r *req, n int) {
	end := r.computed + n
	if end < r.target() && end >= r.confirmed() {
		r.numDraft = end - r.confirmed()
		r.tokens = r.tokens[:end]
	}
	r.step = s.step
	r.logits = end == r.target()
	r.sampled = false
	e := Scheduled{ID: r.id, Start: r.computed, End: end, Logits: r.logits}
	if r.logits {
		e.NumDraft = r.numDraft
	}
	r.computed = end
	s.plan.Seqs = append(s.plan.Seqs, e)
	s.planReqs = append(s.planReqs, r)
}

// preempt sends running request v back to the waiting queue, ahead of later
// arrivals of its priority, with its blocks freed and computed = 0. If v was already
// planned this step its entry is withdrawn and the tokens it used returned.
func (s *Scheduler) preempt(v *req) (refund int) {
	if v.step == s.step {
		for i := len(s.planReqs) - 1; i >= 0; i-- {
			if s.planReqs[i] == v {
				e := &s.plan.Seqs[i]
				refund = e.End - e.Start
				s.plan.Seqs = append(s.plan.Seqs[:i], s.plan.Seqs[i+1:]...)
				s.planReqs = append(s.planReqs[:i], s.planReqs[i+1:]...)
				break
			}
		}
		v.step, v.logits = 0, false
	}
	s.removeRunning(v)
	s.pool.Free(&v.kv)
	v.dropDrafts()
	v.computed = 0
	v.state = waiting
	s.waiting.requeue(v)
	s.plan.Preempted = append(s.plan.Preempted, v.id)
	return refund
}

// fillViews points each entry at its request's tokens and blocks and fills
// the slot mapping, once all decisions (and withdrawals) are made.
func (s *Scheduler) fillViews() {
	p := &s.plan
	bs := int32(s.pool.BlockSize())
	total := 0
	for i := range p.Seqs {
		total += p.Seqs[i].End - p.Seqs[i].Start
	}
	p.NumTokens = total
	if cap(p.Slots) < total {
		p.Slots = make([]int32, 0, total)
	}
	p.Slots = p.Slots[:0]
	for i := range p.Seqs {
		e := &p.Seqs[i]
		r := s.planReqs[i]
		blocks := r.kv.Blocks()
		first := len(p.Slots)
		for pos := int32(e.Start); pos < int32(e.End); pos++ {
			p.Slots = append(p.Slots, blocks[pos/bs]*bs+pos%bs)
		}
		e.Slots = p.Slots[first:len(p.Slots):len(p.Slots)]
		e.Tokens = r.tokens[e.Start:e.End:e.End]
		e.Blocks = blocks[:len(blocks):len(blocks)]
	}
}
