package scheduler

import "fmt"

// Result is the engine's outcome for one plan entry with Logits set.
type Result struct {
	ID uint64
	// Accepted is how many of the entry's NumDraft draft tokens were
	// accepted; the rest are dropped and their KV positions recomputed
	// later as needed.
	Accepted int
	// Tokens are the tokens sampled after the accepted drafts: usually one
	// (the next token, or the correction/bonus token of a verification).
	// Output past MaxTokens is dropped; the request then finishes with
	// ReasonLength.
	Tokens []int32
	// Drafts are proposals to verify in the next step. Only as many are
	// kept as can still be useful within MaxTokens.
	Drafts []int32
	// Finished reports a stop condition (EOS, stop string) in Tokens. An
	// accepted draft that is a stop token is reported as the end of the
	// accepted run: Accepted counts the drafts before it, Tokens holds it.
	Finished bool
}

// Update applies the results of the step the last plan described. It must
// be called once after every plan with entries, before the next Schedule.
// results need only cover entries with Logits set; an entry with Logits and
// no result samples nothing and recomputes its last token next step. Every
// scheduled request's newly full blocks of confirmed tokens are committed to
// the prefix cache, requests that reached MaxTokens or reported Finished
// leave (listed in the next plan's Finished, their blocks freed now), and
// requests aborted during the step are freed. A result that matches no
// sampling entry, or accepts more drafts than it was given, is skipped and
// reported in the returned error; the others still apply.
func (s *Scheduler) Update(results []Result) error {
	if !s.inFlight {
		if len(results) == 0 {
			return nil
		}
		return ErrSequence
	}
	s.inFlight = false
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	for i := range results {
		res := &results[i]
		r := s.byID[res.ID]
		switch {
		case r == nil || r.step != s.step || !r.logits:
			fail(fmt.Errorf("%w: result for request %d, which did not sample this step", ErrInvalid, res.ID))
		case r.sampled:
			fail(fmt.Errorf("%w: second result for request %d", ErrInvalid, res.ID))
		case res.Accepted < 0 || res.Accepted > r.numDraft:
			fail(fmt.Errorf("%w: request %d accepted %d of %d drafts", ErrInvalid, res.ID, res.Accepted, r.numDraft))
		case !r.aborted:
			r.sampled = true
			s.apply(r, res)
		}
	}
	for _, r := range s.planReqs {
		if r.aborted {
			s.removeRunning(r)
			s.retire(r)
			continue
		}
		if r.finish == 0 {
			if r.computed >= r.target() {
				// Nothing sampled: recompute the last token to sample it.
				r.dropDrafts()
				r.computed = r.target() - 1
			}
			if err := s.pool.Truncate(&r.kv, r.target()); err != nil {
				fail(err)
			}
		}
		s.pool.Commit(&r.kv, r.tokens[:min(r.computed, r.confirmed())])
		if r.finish != 0 {
			s.done = append(s.done, Done{ID: r.id, Reason: r.finish})
			s.removeRunning(r)
			s.retire(r)
		}
	}
	return firstErr
}

// apply folds one result into r: rejected drafts are cut (computed rolls
// back to the accepted ones), sampled tokens appended, finish conditions
// and new drafts recorded.
func (s *Scheduler) apply(r *req, res *Result) {
	keep := r.confirmed() + res.Accepted
	r.tokens = r.tokens[:keep]
	r.numDraft = 0
	r.computed = min(r.computed, keep)
	room := r.maxTokens - r.generated()
	r.tokens = append(r.tokens, res.Tokens[:min(len(res.Tokens), max(room, 0))]...)
	switch {
	case res.Finished:
		r.finish = ReasonStop
	case r.generated() >= r.maxTokens:
		r.finish = ReasonLength
	default:
		// k drafts yield up to k+1 tokens, so more than room-1 are wasted.
		d := res.Drafts[:min(len(res.Drafts), r.maxTokens-r.generated()-1)]
		r.tokens = append(r.tokens, d...)
		r.numDraft = len(d)
	}
}

// Rollback abandons the step the last plan described, for an engine whose
// forward pass failed: instead of Update, it returns every scheduled
// request to the computed count it had before the step (the KV the step
// was to write is not trusted), drops drafts, and commits nothing to the
// prefix cache. Requests keep their blocks and stay running, so a later
// plan schedules the same work again; requests aborted during the step
// are freed. Without a step in flight Rollback does nothing.
func (s *Scheduler) Rollback() {
	if !s.inFlight {
		return
	}
	s.inFlight = false
	for i, r := range s.planReqs {
		if r.aborted {
			s.removeRunning(r)
			s.retire(r)
			continue
		}
		r.computed = s.plan.Seqs[i].Start
		r.dropDrafts()
		r.step, r.logits, r.sampled = 0, false, false
	}
}
