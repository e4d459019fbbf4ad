package engine

import (
	"fmt"
	"time"

	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/sample"
	"github.com/sluice-llm/sluice/scheduler"
	"github.com/sluice-llm/sluice/spec"
	"github.com/sluice-llm/sluice/tokenizer"
)

// request is the engine's record of one request. The step loop owns it
// once it has left the inbox.
type request struct {
	id        uint64
	extID     string
	prompt    []int32
	maxTokens int // effective: cut to the room in the context and the pool
	priority  int
	client    string // Request.Client
	cacheKey  []byte // separates its prefix cache entries (prefix caching off)

	sampler  *sample.Sampler
	logprobs bool
	dec      *tokenizer.StreamDecoder
	stop     *sample.StopMatcher

	stream     *Stream
	stopCancel func() bool // stops the context.AfterFunc; nil for a context that is never done

	arrival, scheduled, firstTok time.Time
	seen                         bool // scheduled at least once
	cached                       int  // prompt tokens hit in the prefix cache at first admission
	generated                    int
	tok                          [1]int32 // the Result's Tokens storage

	spec       *reqSpec       // nil: no speculation for this request
	constraint *reqConstraint // nil: free output
}

// reqSpec is a speculating request's state.
type reqSpec struct {
	ctx   []int32 // prompt and confirmed output: what proposers continue
	st    spec.ReqState
	ver   *spec.Verifier
	ngram *spec.NGram    // Config.Spec "ngram"
	dseq  *spec.DraftSeq // Config.Spec "draft", while it holds a slot
	prop  spec.Proposal  // the drafts in flight (and their distributions)
	emit  []int32        // the Result's Tokens storage after a verification
}

// releaseDraft gives r's draft model slot back, if it holds one.
func (r *request) releaseDraft() {
	if r.spec != nil && r.spec.dseq != nil {
		r.spec.dseq.Release()
		r.spec.dseq = nil
	}
}

// outEvent is an event waiting for the end of the step to be delivered.
type outEvent struct {
	s  *Stream
	ev Event
}

// loop is the step loop's state. Only the loop goroutine touches it.
type loop struct {
	e    *Engine
	live map[uint64]*request

	// Swapped with the Engine's inbox lists under its lock.
	inbox  []*request
	aborts []uint64
	calls  []func()

	batch   model.Batch
	tables  []int32
	now     time.Time // end of the current step's forward pass
	results []scheduler.Result
	out     []outEvent

	// Speculative decoding: counters, and the draft model's batch.
	specStats spec.Stats
	jobs      []spec.DraftJob
	jobRes    []int // jobs[j] proposes for results[jobRes[j]]

	steps, promptTokens, genTokens, preemptions uint64
	finished                                    map[FinishReason]uint64

	// The last step and totals over all steps (Stats).
	stepTime, stepTimeTotal, fwdTimeTotal time.Duration
	stepHist                              [NumStepTimeBuckets + 1]uint64
	batchTokens, batchSeqs                int
	batchTokensTotal, batchSeqsTotal      uint64
}

func (lp *loop) init(e *Engine) {
	lp.e = e
	lp.live = make(map[uint64]*request)
	lp.finished = make(map[FinishReason]uint64)
	lp.batch.BlockSize = e.plan.BlockSize
}

// run is the step loop: take in submissions, aborts and calls, run one
// step if anything is live, publish stats, deliver events, and sleep on
// the wake channel when idle.
func (e *Engine) run() {
	defer close(e.loopDone)
	lp := &e.lp
	for {
		if e.stepHook != nil {
			e.stepHook()
		}
		if quit := lp.intake(); quit {
			lp.failAll(FinishError, ErrClosed)
			lp.publish()
			lp.flush()
			return
		}
		progressed := false
		if len(lp.live) > 0 && !e.failed() {
			progressed = lp.step()
		}
		lp.publish()
		lp.flush()
		if progressed {
			continue
		}
		// Idle (or stuck waiting for something outside the loop): sleep
		// until Submit, an abort, Drain or Close signals.
		e.mu.Lock()
		if e.draining && len(lp.live) == 0 && len(e.inbox) == 0 && e.drained != nil {
			select {
			case <-e.drained:
			default:
				close(e.drained)
			}
		}
		e.mu.Unlock()
		<-e.wake
	}
}

func (e *Engine) failed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fatal != nil
}

// intake takes new requests, aborts and calls from the Engine. It reports
// whether the engine is closing.
func (lp *loop) intake() (quit bool) {
	e := lp.e
	e.mu.Lock()
	lp.inbox, e.inbox = e.inbox, lp.inbox[:0]
	lp.aborts, e.aborts = e.aborts, lp.aborts[:0]
	lp.calls, e.calls = e.calls, lp.calls[:0]
	quit, fatal := e.closing, e.fatal
	e.mu.Unlock()

	for i, r := range lp.inbox {
		lp.inbox[i] = nil
		switch {
		case fatal != nil:
			lp.finish(r, FinishError, fmt.Errorf("engine: failed: %w", fatal), Event{})
			continue
		case quit:
			lp.finish(r, FinishError, ErrClosed, Event{})
			continue
		case r.stream.ctx.Err() != nil:
			lp.finish(r, FinishAbort, nil, Event{})
			continue
		}
		sr := scheduler.Request{ID: r.id, Prompt: r.prompt, MaxTokens: r.maxTokens, Priority: r.priority, CacheKey: r.cacheKey, Client: r.client}
		if err := e.sched.Submit(sr); err != nil {
			lp.finish(r, FinishError, fmt.Errorf("engine: %w", err), Event{})
			continue
		}
		lp.live[r.id] = r
	}
	lp.inbox = lp.inbox[:0]
	for _, id := range lp.aborts {
		r := lp.live[id]
		if r == nil {
			continue // already finished
		}
		_ = e.sched.Abort(id) // between steps: frees its blocks now
		lp.finish(r, FinishAbort, nil, Event{})
	}
	lp.aborts = lp.aborts[:0]
	for i, fn := range lp.calls {
		fn()
		lp.calls[i] = nil
	}
	lp.calls = lp.calls[:0]
	return quit
}

// step runs one scheduler plan through the model and the samplers. It
// reports whether anything was computed.
func (lp *loop) step() bool {
	t0 := time.Now()
	plan, ok := lp.schedule()
	if !ok {
		return false
	}
	b := lp.build(plan)
	if !lp.forward(b) {
		return false
	}
	lp.sampleRows(plan)
	if lp.e.specCtl != nil {
		lp.propose()
	}
	if err := lp.e.sched.Update(lp.results); err != nil {
		lp.fail(err)
	}
	lp.countStep(time.Since(t0), len(b.Tokens), len(plan.Seqs))
	return true
}

// schedule asks the scheduler for the step's plan and drops the drafts of
// preempted requests; ok is false when there is nothing to compute.
func (lp *loop) schedule() (plan *scheduler.Plan, ok bool) {
	plan, err := lp.e.sched.Schedule()
	if err != nil {
		lp.fail(err)
		return nil, false
	}
	lp.preemptions += uint64(len(plan.Preempted))
	for _, id := range plan.Preempted {
		// Its drafts are dropped; the draft slot goes to whoever drafts
		// next (the request recomputes it if it gets one back).
		if r := lp.live[id]; r != nil {
			r.releaseDraft()
		}
	}
	return plan, len(plan.Seqs) > 0
}

// build lays plan out as the loop's flat batch: every entry's token range
// with positions, sequence index and slots, its block table as row i
// (padded with -1), and the rows whose logits are wanted. It also marks
// each request's first scheduling and counts prompt tokens.
func (lp *loop) build(plan *scheduler.Plan) *model.Batch {
	now := time.Now()
	b := &lp.batch
	b.Reset()
	maxBlocks := 1
	for i := range plan.Seqs {
		maxBlocks = max(maxBlocks, len(plan.Seqs[i].Blocks))
	}
	n := len(plan.Seqs) * maxBlocks
	if cap(lp.tables) < n {
		lp.tables = make([]int32, n)
	}
	lp.tables = lp.tables[:n]
	for i := range plan.Seqs {
		s := &plan.Seqs[i]
		row := lp.tables[i*maxBlocks : (i+1)*maxBlocks]
		m := copy(row, s.Blocks)
		for j := m; j < len(row); j++ {
			row[j] = -1
		}
		for k, tok := range s.Tokens {
			pos := s.Start + k
			// With drafts, the last confirmed token's row and each
			// draft's row verify them.
			if s.Logits && pos >= s.End-1-s.NumDraft {
				b.Outputs = append(b.Outputs, int32(len(b.Tokens)))
			}
			b.Tokens = append(b.Tokens, tok)
			b.Pos = append(b.Pos, int32(pos))
			b.Seq = append(b.Seq, int32(i))
			b.Slots = append(b.Slots, s.Slots[k])
		}
		lp.seen(s, now)
	}
	b.BlockTables, b.MaxBlocks = lp.tables, maxBlocks
	return b
}

// seen records that s's request was scheduled: its first scheduling time
// and cached prefix, and the prompt tokens this step computes.
func (lp *loop) seen(s *scheduler.Scheduled, now time.Time) {
	r := lp.live[s.ID]
	if r == nil {
		return
	}
	if !r.seen {
		r.seen, r.scheduled, r.cached = true, now, s.Start
		lp.e.queued.Add(-1)
	}
	pl := len(r.prompt)
	lp.promptTokens += uint64(min(s.End, pl) - min(s.Start, pl))
}

// forward runs the model over b; false when it failed (the loop failed
// with it).
func (lp *loop) forward(b *model.Batch) bool {
	tf := time.Now()
	if err := lp.e.model.Forward(b, lp.e.kv); err != nil {
		lp.fail(err)
		return false
	}
	lp.now = time.Now()
	lp.fwdTimeTotal += lp.now.Sub(tf)
	lp.steps++
	return true
}

// sampleRows samples (or verifies drafts from) each logits row in plan
// order into lp.results.
func (lp *loop) sampleRows(plan *scheduler.Plan) {
	e := lp.e
	lp.results = lp.results[:0]
	row := 0
	for i := range plan.Seqs {
		s := &plan.Seqs[i]
		if !s.Logits {
			continue
		}
		base := row
		row += s.NumDraft + 1
		r := lp.live[s.ID]
		if r == nil {
			continue
		}
		if s.NumDraft > 0 && r.spec != nil {
			lp.results = append(lp.results, lp.verify(r, s, base))
		} else {
			// Row base follows the last confirmed token; drafts (never
			// expected here) are then all rejected.
			lp.results = append(lp.results, lp.sample(r, e.model.LogitsRow(base)))
			if r.spec != nil {
				e.specCtl.Observe(&r.spec.st, 0, 0) // ages its history
			}
		}
	}
}

// countStep adds one step's time and batch size to the loop's counters.
func (lp *loop) countStep(d time.Duration, tokens, seqs int) {
	lp.stepTime = d
	lp.stepTimeTotal += d
	lp.stepHist[stepBucket(d)]++
	lp.batchTokens, lp.batchSeqs = tokens, seqs
	lp.batchTokensTotal += uint64(tokens)
	lp.batchSeqsTotal += uint64(seqs)
}

// sample picks r's next token from logits, queues its event (the final
// one if r is done) and returns the scheduler's result.
func (lp *loop) sample(r *request, logits []float32) scheduler.Result {
	var err error
	if r.constraint != nil {
		err = r.constraint.apply(logits)
	}
	var res sample.Result
	if err == nil {
		res, err = r.sampler.Sample(logits)
	}
	if err == nil && r.constraint != nil {
		err = r.constraint.c.Advance(res.Token)
	}
	if err != nil {
		lp.finish(r, FinishError, fmt.Errorf("engine: sampling: %w", err), Event{})
		return scheduler.Result{ID: r.id, Finished: true}
	}
	tok := res.Token
	r.sampler.Accept(tok)
	r.tok[0] = tok
	done := lp.emit(r, tok, res.Stop, res.Logprob, res.TopLogprobs)
	return scheduler.Result{ID: r.id, Tokens: r.tok[:], Finished: done}
}

// verify checks the NumDraft drafts that entry s computed for r against
// the target's logits rows base..base+NumDraft, emits the accepted run and
// the target's own next token one event each, cut where a stop condition
// triggers, and returns the scheduler's result.
func (lp *loop) verify(r *request, s *scheduler.Scheduled, base int) scheduler.Result {
	e := lp.e
	sp := r.spec
	nd := s.NumDraft
	draft := s.Tokens[len(s.Tokens)-nd:]
	q := sp.prop.Dists()
	if len(q) < nd*e.vocab {
		q = nil
	}
	rows := func(i int) []float32 { return e.model.LogitsRow(base + i) }
	out, acc, err := sp.ver.Verify(r.sampler, draft, q, rows, sp.emit[:0])
	sp.emit = out
	if err != nil {
		lp.finish(r, FinishError, fmt.Errorf("engine: sampling: %w", err), Event{})
		return scheduler.Result{ID: r.id, Finished: true}
	}
	lp.specStats.Record(nd, acc)
	e.specCtl.Observe(&sp.st, nd, acc)
	for j, tok := range out {
		var logprob float32
		var top []sample.TokenLogprob
		if r.logprobs {
			logprob, top = r.sampler.Logprobs(rows(j), tok)
		}
		if lp.emit(r, tok, r.sampler.IsStopToken(tok), logprob, top) {
			// The run ends here: a stop among the drafts is reported as
			// the end of the accepted ones.
			a := min(acc, j)
			return scheduler.Result{ID: r.id, Accepted: a, Tokens: out[a : j+1], Finished: true}
		}
	}
	return scheduler.Result{ID: r.id, Accepted: acc, Tokens: out[acc:]}
}

// propose asks the proposer for the drafts of every request that sampled
// this step and goes on, as many as the controller allows for this batch
// size, and puts them into the results for the scheduler to verify next
// step.
func (lp *loop) propose() {
	e := lp.e
	batch := len(lp.results)
	for i := range lp.results {
		res := &lp.results[i]
		r := lp.live[res.ID]
		if res.Finished || r == nil || r.spec == nil {
			continue
		}
		sp := r.spec
		k := min(e.specCtl.K(&sp.st, batch), r.maxTokens-r.generated-1)
		if k <= 0 {
			if sp.ngram != nil {
				sp.ngram.Propose(sp.ctx, 0, &sp.prop) // keeps the index current
			}
			continue
		}
		switch {
		case sp.ngram != nil:
			sp.ngram.Propose(sp.ctx, k, &sp.prop)
			res.Drafts = sp.prop.Tokens
		case e.draft != nil:
			if sp.dseq == nil {
				ds, err := e.draft.Acquire(r.sampler.Params(), r.sampler.Seed())
				if err != nil {
					continue // every slot taken: no drafts this step
				}
				sp.dseq = ds
			}
			if chunk := e.cfg.MaxNumBatchedTokens; len(sp.ctx)-sp.dseq.Cached() > chunk {
				if err := sp.dseq.Prefill(sp.ctx, chunk); err != nil {
					continue
				}
			}
			lp.jobs = append(lp.jobs, spec.DraftJob{Seq: sp.dseq, Ctx: sp.ctx, K: k, Out: &sp.prop})
			lp.jobRes = append(lp.jobRes, i)
		}
	}
	if len(lp.jobs) == 0 {
		return
	}
	// A failed draft forward proposes nothing: those requests decode one
	// token next step.
	_ = e.draft.ProposeBatch(lp.jobs)
	for j, i := range lp.jobRes {
		lp.results[i].Drafts = lp.jobs[j].Out.Tokens
		lp.jobs[j] = spec.DraftJob{}
	}
	lp.jobs, lp.jobRes = lp.jobs[:0], lp.jobRes[:0]
}

// emit delivers one generated token of r: its event (text, logprobs) and
// its stop conditions (stop is set for a stop token). It reports whether r
// finished with it; the token's event is then r's final one.
func (lp *loop) emit(r *request, tok int32, stop bool, logprob float32, top []sample.TokenLogprob) bool {
	r.generated++
	lp.genTokens++
	if r.generated == 1 {
		r.firstTok = lp.now
	}
	if r.spec != nil {
		r.spec.ctx = append(r.spec.ctx, tok)
	}
	ev := Event{Token: tok, HasToken: true, Elapsed: lp.now.Sub(r.arrival)}
	if r.logprobs {
		ev.Logprob = logprob
		if len(top) > 0 {
			ev.TopLogprobs = append([]sample.TokenLogprob(nil), top...)
		}
	}
	var finish FinishReason
	if stop {
		// A stop token ends the text; its own text is not part of it.
		finish = FinishStop
	} else {
		text, stopped := r.stop.Push(r.dec.Add(tok))
		ev.Text = text
		if stopped {
			finish = FinishStop
		}
	}
	if finish == "" && r.constraint != nil && r.constraint.c.Done() {
		finish = FinishStop // the grammar is complete
	}
	if finish == "" && r.generated >= r.maxTokens {
		finish = FinishLength
	}
	if finish == "" {
		lp.out = append(lp.out, outEvent{r.stream, ev})
		return false
	}
	if !r.stop.Stopped() {
		// Settle what the decoder and the stop matcher still hold.
		text, stopped := r.stop.Push(r.dec.Flush())
		ev.Text += text
		if stopped {
			finish = FinishStop
		} else {
			ev.Text += r.stop.Flush()
		}
	}
	lp.finish(r, finish, nil, ev)
	return true
}

// finish ends r's stream with ev as its final event and forgets r. The
// scheduler side (Abort, or a Result with Finished) is the caller's.
func (lp *loop) finish(r *request, reason FinishReason, err error, ev Event) {
	now := time.Now()
	ev.Done, ev.Finish, ev.Err = true, reason, err
	ev.Usage = Usage{PromptTokens: len(r.prompt), CompletionTokens: r.generated, CachedTokens: r.cached}
	t := &ev.Timing
	t.Total = now.Sub(r.arrival)
	if r.seen {
		t.Queued = r.scheduled.Sub(r.arrival)
	} else {
		t.Queued = t.Total
		lp.e.queued.Add(-1)
	}
	if r.generated > 0 {
		t.FirstTok = r.firstTok.Sub(r.arrival)
		if r.generated > 1 {
			t.PerOutput = now.Sub(r.firstTok) / time.Duration(r.generated-1)
		}
	}
	lp.out = append(lp.out, outEvent{r.stream, ev})
	delete(lp.live, r.id)
	r.releaseDraft()
	if r.stopCancel != nil {
		r.stopCancel()
	}
	lp.finished[reason]++
}

// fail records a sticky engine failure and fails every live request.
func (lp *loop) fail(err error) {
	e := lp.e
	e.mu.Lock()
	if e.fatal == nil {
		e.fatal = err
	}
	e.mu.Unlock()
	// Abandon the step in flight, if any: its KV was not (or not wholly)
	// written, so none of it may reach the prefix cache.
	e.sched.Rollback()
	lp.failAll(FinishError, fmt.Errorf("engine: failed: %w", err))
}

// failAll ends every live request with reason, freeing its blocks.
func (lp *loop) failAll(reason FinishReason, err error) {
	for id, r := range lp.live {
		_ = lp.e.sched.Abort(id)
		lp.finish(r, reason, err, Event{})
	}
}

// publish copies the loop's counters into the Engine's Stats snapshot.
func (lp *loop) publish() {
	e := lp.e
	ps := e.pool.Stats()
	e.mu.Lock()
	s := &e.stats
	s.Running = e.sched.NumRunning()
	s.Waiting = e.sched.NumWaiting()
	s.KVUsage = ps.Usage
	s.KVBlocks = ps.NumBlocks
	s.KVCachedBlocks = ps.CachedBlocks
	s.PrefixQueries = ps.QueryTokens
	s.PrefixHits = ps.HitTokens
	s.PromptTokens = lp.promptTokens
	s.GenerationTokens = lp.genTokens
	s.Preemptions = lp.preemptions
	s.Steps = lp.steps
	s.StepTime, s.StepTimeTotal, s.ForwardTimeTotal = lp.stepTime, lp.stepTimeTotal, lp.fwdTimeTotal
	s.StepTimeHist = lp.stepHist
	s.BatchTokens, s.BatchSeqs = lp.batchTokens, lp.batchSeqs
	s.BatchTokensTotal, s.BatchSeqsTotal = lp.batchTokensTotal, lp.batchSeqsTotal
	if e.specCtl != nil {
		ss := lp.specStats.Snapshot()
		s.SpecMethod = e.cfg.Spec
		s.SpecDrafts, s.SpecDraftTokens, s.SpecAcceptedTokens = ss.Drafts, ss.DraftTokens, ss.AcceptedTokens
		s.SpecAcceptedAt = ss.AcceptedAt
	}
	for k, v := range lp.finished {
		s.Finished[k] = v
	}
	e.mu.Unlock()
}

// flush delivers the step's events.
func (lp *loop) flush() {
	for i := range lp.out {
		lp.out[i].s.push(lp.out[i].ev)
		lp.out[i] = outEvent{}
	}
	lp.out = lp.out[:0]
}
