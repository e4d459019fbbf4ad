package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/grammar"
)

// job is a validated generation request: every prompt is submitted n times
// (choice index = prompt index*n + j).
type job struct {
	e       *entry
	id      string
	prompts [][]int32
	n       int
	req     engine.Request   // template for every choice
	grammar *grammar.Grammar // structured output: each choice gets its own matcher; nil for none
	rec     *reqRecord       // the HTTP request's access-log record; nil for gRPC
	// timeout bounds the whole job (queueing included), 0: none; the
	// server's RequestTimeout and the request's own "timeout", the
	// shorter. Choices it cuts end with finishTimeout.
	timeout time.Duration
	// lazy, when set (and grammar is nil), gives each choice its own
	// constraint (tool_choice "auto": free text, then valid calls).
	lazy func() engine.Constraint
	// parsers, when set, parse each choice's output into content,
	// reasoning and tool calls (gRPC; HTTP streams hold their own).
	parsers *chatParsers
}

// finishTimeout is the finish reason of a choice cut by its job's
// deadline: the engine aborted it (and freed its KV blocks) when the
// deadline passed.
const finishTimeout engine.FinishReason = "timeout"

// choiceEvent is one event of one choice.
type choiceEvent struct {
	index int
	ev    engine.Event
}

// run submits every choice of j and returns a channel of their events,
// closed when every stream has ended. If a Submit fails, the choices
// already started are cancelled and the error is returned. Cancelling ctx
// (the client went away) aborts every choice and stops the delivery of
// their events; the channel still closes. When the drain deadline aborts
// the server's requests, the choices end with FinishAbort events that are
// delivered, so the handler can write the client an ending.
func (s *Server) run(ctx context.Context, j *job) (<-chan choiceEvent, error) {
	if s.Draining() {
		return nil, errDraining()
	}
	if err := checkQueue(j); err != nil {
		return nil, err
	}
	sub, cancel := context.WithCancel(ctx) // the choices' engine context
	if j.timeout > 0 {
		sub, cancel = context.WithTimeout(ctx, j.timeout)
	}
	// expired reports whether the deadline (not the client, not the
	// drain) ended sub; once set, a context's error never changes.
	expired := func() bool { return errors.Is(sub.Err(), context.DeadlineExceeded) }
	stopAbort := context.AfterFunc(s.abortCtx, cancel)
	total := len(j.prompts) * j.n
	streams := make([]Stream, 0, total)
	for i := 0; i < total; i++ {
		req := j.req
		req.Prompt = j.prompts[i/j.n]
		req.ID = j.id
		if total > 1 {
			req.ID = j.id + "-" + strconv.Itoa(i)
		}
		if req.Sampling.HasSeed {
			req.Sampling.Seed += uint64(i % j.n)
		}
		if j.grammar != nil {
			req.Constraint = j.grammar.NewMatcher()
		} else if j.lazy != nil {
			req.Constraint = j.lazy()
		}
		st, err := j.e.m.Submit(sub, &req)
		if err != nil {
			stopAbort()
			cancel()
			for _, st := range streams {
				go drainStream(st)
			}
			return nil, err
		}
		streams = append(streams, st)
	}
	s.inflight.Add(1)
	out := make(chan choiceEvent, 4*total)
	var wg sync.WaitGroup
	for i, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			forward(ctx, st, i, out, j.e, expired, j.rec, j.n)
		}()
	}
	go func() {
		wg.Wait()
		stopAbort()
		cancel()
		close(out)
		s.inflight.Add(-1)
	}()
	return out, nil
}

// forward sends st's events as choice i to out until the stream ends,
// dropping them once ctx (the client's) is done. An abort caused by the
// job's deadline (expired) becomes finishTimeout.
func forward(ctx context.Context, st Stream, i int, out chan<- choiceEvent, e *entry, expired func() bool, rec *reqRecord, n int) {
	abandoned := false
	var last time.Duration // Elapsed of the previous token event
	for {
		ev, ok := st.Next()
		if !ok {
			return
		}
		if ev.HasToken {
			if last > 0 && ev.Elapsed > last {
				e.hist.observeITL(ev.Elapsed - last)
			}
			last = ev.Elapsed
		}
		if ev.Done {
			if ev.Finish == engine.FinishAbort && expired() {
				ev.Finish = finishTimeout
			}
			e.hist.observe(ev)
			e.watch.finished(ev, time.Now())
			if rec != nil {
				rec.final(i, n, ev)
			}
		}
		if !abandoned {
			select {
			case out <- choiceEvent{i, ev}:
			case <-ctx.Done():
				abandoned = true
			}
		}
		if ev.Done {
			return
		}
	}
}

// checkQueue refuses a job with more choices than its model ever queues:
// a 429 would ask the client to retry something that cannot succeed.
func checkQueue(j *job) error {
	q, ok := j.e.m.(queueLimited)
	if !ok {
		return nil
	}
	total := len(j.prompts) * j.n
	if limit := q.MaxQueue(); limit > 0 && total > limit {
		return badRequest("n", "this request asks for %d choices (%d prompts with n = %d), more than the %d requests the server queues (--max-queue); lower n or split the request",
			total, len(j.prompts), j.n, limit)
	}
	return nil
}

func drainStream(st Stream) {
	for {
		ev, ok := st.Next()
		if !ok || ev.Done {
			return
		}
	}
}

// choice accumulates one choice's output.
type choice struct {
	text     []byte
	tokens   []int32
	logprobs []float32
	tops     [][]topLogprob
	finish   engine.FinishReason
	usage    engine.Usage
	timing   engine.Timing
	err      error
	done     bool
}

type topLogprob struct {
	id int32
	lp float32
}

func (c *choice) add(ev engine.Event, wantLogprobs bool) {
	c.text = append(c.text, ev.Text...)
	if ev.HasToken && wantLogprobs {
		c.tokens = append(c.tokens, ev.Token)
		c.logprobs = append(c.logprobs, ev.Logprob)
		c.tops = append(c.tops, tops(ev))
	}
	if ev.Done {
		c.done = true
		c.finish = ev.Finish
		c.usage = ev.Usage
		c.timing = ev.Timing
		c.err = ev.Err
	}
}

func tops(ev engine.Event) []topLogprob {
	out := make([]topLogprob, len(ev.TopLogprobs))
	for i, t := range ev.TopLogprobs {
		out[i] = topLogprob{t.Token, t.Logprob}
	}
	return out
}

// finishError turns a choice that ended in an engine error into an error.
func finishError(c *choice) error {
	if c.finish != engine.FinishError {
		return nil
	}
	if c.err != nil {
		return fmt.Errorf("generation failed: %w", c.err)
	}
	return fmt.Errorf("generation failed")
}

// finishReason is the OpenAI finish_reason of a finished choice.
func finishReason(f engine.FinishReason) string {
	if f == "" {
		return "stop"
	}
	return string(f)
}

// usageJSON is OpenAI's usage object.
type usageJSON struct {
	PromptTokens        int                `json:"prompt_tokens"`
	CompletionTokens    int                `json:"completion_tokens"`
	TotalTokens         int                `json:"total_tokens"`
	PromptTokensDetails promptTokenDetails `json:"prompt_tokens_details"`
	// sluice's extension (clients ignore unknown fields): the longest
	// queue time, the first token's time and the longest engine time
	// of the choices, in seconds from the request's submission.
	QueueTime float64 `json:"queue_time_seconds"`
	TTFT      float64 `json:"time_to_first_token_seconds"`
	GenTime   float64 `json:"generation_time_seconds"`
}

type promptTokenDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// sumUsage adds up the choices' usage: each prompt's tokens count once
// (from its first choice), completion tokens for every choice.
func sumUsage(cs []*choice, n int) usageJSON {
	var u usageJSON
	for i, c := range cs {
		addUsage(&u, i%n == 0, c.usage, c.timing)
	}
	return u
}

// addUsage adds one choice's usage and timing to u; first says whether
// it is its prompt's first choice (whose prompt tokens count).
func addUsage(u *usageJSON, first bool, us engine.Usage, t engine.Timing) {
	if first {
		u.PromptTokens += us.PromptTokens
		u.PromptTokensDetails.CachedTokens += us.CachedTokens
	}
	u.CompletionTokens += us.CompletionTokens
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	u.QueueTime = max(u.QueueTime, t.Queued.Seconds())
	if ft := t.FirstTok.Seconds(); ft > 0 && (u.TTFT == 0 || ft < u.TTFT) {
		u.TTFT = ft
	}
	u.GenTime = max(u.GenTime, t.Total.Seconds())
}

// collect reads every event of a job into its choices. It returns early
// with ctx's error if ctx is done, and a 503 if the drain deadline cut a
// choice.
func (s *Server) collect(ctx context.Context, events <-chan choiceEvent, total int, wantLogprobs bool) ([]*choice, error) {
	cs := make([]*choice, total)
	for i := range cs {
		cs[i] = &choice{}
	}
	for {
		select {
		case ce, ok := <-events:
			if !ok {
				for _, c := range cs {
					if err := finishError(c); err != nil {
						return nil, err
					}
					if c.finish == engine.FinishAbort && s.aborting() {
						return nil, errShutdown()
					}
					if c.finish == finishTimeout {
						return nil, errTimeout()
					}
				}
				return cs, nil
			}
			cs[ce.index].add(ce.ev, wantLogprobs)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
