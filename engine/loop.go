package engine

import (
	"fmt"
	"time"

	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/sample"
	"github.com/sluice-llm/sluice/scheduler"
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
			lp.failAll(FinishAbort, nil)
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
		case quit || r.stream.ctx.Err() != nil:
			lp.finish(r, FinishAbort, nil, Event{})
			continue
		}
		sr := scheduler.Request{ID: r.id, Prompt: r.prompt, MaxTokens: r.maxTokens, Priority: r.priority, CacheKey: r.cacheKey}
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
	e := lp.e
	t0 := time.Now()
	plan, err := e.sched.Schedule()
	if err != nil {
		lp.fail(err)
		return false
	}
	lp.preemptions += uint64(len(plan.Preempted))
	if len(plan.Seqs) == 0 {
		return false
	}
	now := time.Now()

	// The flat batch: every entry's token range, its block table as row i.
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
			if s.Logits && pos == s.End-1 {
				b.Outputs = append(b.Outputs, int32(len(b.Tokens)))
			}
			b.Tokens = append(b.Tokens, tok)
			b.Pos = append(b.Pos, int32(pos))
			b.Seq = append(b.Seq, int32(i))
			b.Slots = append(b.Slots, s.Slots[k])
		}
		if r := lp.live[s.ID]; r != nil {
			if !r.seen {
				r.seen, r.scheduled, r.cached = true, now, s.Start
				e.queued.Add(-1)
			}
			pl := len(r.prompt)
			lp.promptTokens += uint64(min(s.End, pl) - min(s.Start, pl))
		}
	}
	b.BlockTables, b.MaxBlocks = lp.tables, maxBlocks

	tf := time.Now()
	if err := e.model.Forward(b, e.kv); err != nil {
		lp.fail(err)
		return false
	}
	lp.now = time.Now()
	lp.fwdTimeTotal += lp.now.Sub(tf)
	lp.steps++

	lp.results = lp.results[:0]
	row := 0
	for i := range plan.Seqs {
		s := &plan.Seqs[i]
		if !s.Logits {
			continue
		}
		logits := e.model.LogitsRow(row)
		row++
		r := lp.live[s.ID]
		if r == nil {
			continue
		}
		lp.results = append(lp.results, lp.sample(r, logits))
	}
	if err := e.sched.Update(lp.results); err != nil {
		lp.fail(err)
	}
	d := time.Since(t0)
	lp.stepTime = d
	lp.stepTimeTotal += d
	lp.stepHist[stepBucket(d)]++
	lp.batchTokens, lp.batchSeqs = len(b.Tokens), len(plan.Seqs)
	lp.batchTokensTotal += uint64(len(b.Tokens))
	lp.batchSeqsTotal += uint64(len(plan.Seqs))
	return true
}

// sample picks r's next token from logits, queues its event (the final
// one if r is done) and returns the scheduler's result.
func (lp *loop) sample(r *request, logits []float32) scheduler.Result {
	res, err := r.sampler.Sample(logits)
	if err != nil {
		lp.finish(r, FinishError, fmt.Errorf("engine: sampling: %w", err), Event{})
		return scheduler.Result{ID: r.id, Finished: true}
	}
	tok := res.Token
	r.sampler.Accept(tok)
	r.generated++
	lp.genTokens++
	if r.generated == 1 {
		r.firstTok = lp.now
	}
	ev := Event{Token: tok, HasToken: true, Elapsed: lp.now.Sub(r.arrival)}
	if r.logprobs {
		ev.Logprob = res.Logprob
		if len(res.TopLogprobs) > 0 {
			ev.TopLogprobs = append([]sample.TokenLogprob(nil), res.TopLogprobs...)
		}
	}
	var finish FinishReason
	if res.Stop {
		// A stop token ends the text; its own text is not part of it.
		finish = FinishStop
	} else {
		text, stopped := r.stop.Push(r.dec.Add(tok))
		ev.Text = text
		if stopped {
			finish = FinishStop
		}
	}
	if finish == "" && r.generated >= r.maxTokens {
		finish = FinishLength
	}
	r.tok[0] = tok
	result := scheduler.Result{ID: r.id, Tokens: r.tok[:]}
	if finish == "" {
		lp.out = append(lp.out, outEvent{r.stream, ev})
		return result
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
	result.Finished = true
	lp.finish(r, finish, nil, ev)
	return result
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
