package engine

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/quant"
	"github.com/sluice-llm/sluice/sample"
)

const stories = "stories260K"

// longPrompt is stories260K's 193-token golden prompt.
func longPrompt(t *testing.T) []int32 {
	t.Helper()
	gs := loadGolden(t, stories)
	p := gs[len(gs)-1].PromptTokens
	if len(p) < 150 {
		t.Fatalf("expected a long golden prompt, got %d tokens", len(p))
	}
	return p
}

// checkPool verifies the pool's invariants from the loop and that every
// block is free (none leaked).
func checkPool(t *testing.T, e *Engine) {
	t.Helper()
	waitIdle(t, e)
	var err error
	var free, total int
	if cerr := e.inLoop(func() {
		err = e.pool.Check()
		free, total = e.pool.NumFree(), e.pool.NumBlocks()
	}); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Errorf("pool: %v", err)
	}
	if free != total {
		t.Errorf("pool: %d of %d blocks free after all requests finished", free, total)
	}
	if st := e.Stats(); st.KVUsage != 0 {
		t.Errorf("KVUsage %g after all requests finished", st.KVUsage)
	}
}

func TestPrefixCache(t *testing.T) {
	long := longPrompt(t)
	gs := loadGolden(t, stories)
	shared := long[:100]
	tailA := append(slices.Clone(shared), gs[0].PromptTokens[1:]...)
	tailB := append(slices.Clone(shared), gs[1].PromptTokens[1:]...)
	const maxTok = 24
	ref := referenceGreedy(t, stories, [][]int32{long, tailA, tailB}, maxTok)

	e := newTestEngine(t, stories, Config{MaxNumBatchedTokens: 64})
	bs := e.Info().BlockSize

	first := collect(t, submit(t, e, greedy(long, maxTok)))
	checkGreedy(t, "first", long, ref[0], maxTok, first)
	if first.final.Usage.CachedTokens != 0 {
		t.Errorf("first request: %d cached tokens, want 0", first.final.Usage.CachedTokens)
	}
	hits0 := e.Stats().PrefixHits

	second := collect(t, submit(t, e, greedy(long, maxTok)))
	checkGreedy(t, "second", long, ref[0], maxTok, second)
	if want := (len(long) - 1) / bs * bs; second.final.Usage.CachedTokens != want {
		t.Errorf("second request: %d cached tokens, want %d", second.final.Usage.CachedTokens, want)
	}
	st := e.Stats()
	if st.PrefixHits <= hits0 {
		t.Errorf("PrefixHits %d after a repeated prompt, was %d", st.PrefixHits, hits0)
	}
	if st.PrefixQueries < st.PrefixHits {
		t.Errorf("PrefixQueries %d < PrefixHits %d", st.PrefixQueries, st.PrefixHits)
	}

	// Generated tokens are committed too: a follow-up turn whose prompt
	// is the first request's prompt and output hits beyond the prompt.
	turn := append(slices.Clone(long), first.tokens[:20]...)
	next := collect(t, submit(t, e, greedy(turn, 2)))
	if want := (len(turn) - 1) / bs * bs; next.final.Usage.CachedTokens != want || want <= len(long)/bs*bs {
		t.Errorf("follow-up turn: %d cached tokens, want %d", next.final.Usage.CachedTokens, want)
	}

	// Different requests sharing a system-prompt-like prefix.
	a := collect(t, submit(t, e, greedy(tailA, maxTok)))
	checkGreedy(t, "shared prefix A", tailA, ref[1], maxTok, a)
	b := collect(t, submit(t, e, greedy(tailB, maxTok)))
	checkGreedy(t, "shared prefix B", tailB, ref[2], maxTok, b)
	want := len(shared) / bs * bs
	for name, r := range map[string]result{"A": a, "B": b} {
		if r.final.Usage.CachedTokens != want {
			t.Errorf("shared prefix %s: %d cached tokens, want %d", name, r.final.Usage.CachedTokens, want)
		}
	}
	checkPool(t, e)
}

func TestPrefixCacheDisabled(t *testing.T) {
	long := longPrompt(t)
	e := newTestEngine(t, stories, Config{DisablePrefixCache: true})
	for range 2 {
		r := collect(t, submit(t, e, greedy(long, 4)))
		if r.final.Usage.CachedTokens != 0 {
			t.Errorf("prefix caching disabled: %d cached tokens", r.final.Usage.CachedTokens)
		}
	}
	if st := e.Stats(); st.PrefixHits != 0 {
		t.Errorf("prefix caching disabled: %d hits", st.PrefixHits)
	}
}

// TestPreemption runs the golden prompts at once in a pool too small to
// hold them together: requests are preempted and recomputed, and the
// outputs must still be exact.
func TestPreemption(t *testing.T) {
	gs := loadGolden(t, stories)
	prompts := promptsOf(gs)
	ref := referenceGreedy(t, stories, prompts, goldenMaxTokens)

	// 18 blocks of 16: the longest request (193+48 tokens) needs 16 alone,
	// all four together 29.
	cfg := Config{MaxNumBatchedTokens: 64, DisablePrefixCache: true}
	p := planFor(t, stories, cfg)
	cfg.KVMemory = 18 * p.BlockBytes
	e := newTestEngine(t, stories, cfg)
	if got := e.Info().KVBlocks; got != 18 {
		t.Fatalf("pool has %d blocks, want 18", got)
	}
	for round := range 2 {
		streams := make([]*Stream, len(prompts))
		for i, pr := range prompts {
			streams[i] = submit(t, e, greedy(pr, goldenMaxTokens))
		}
		results := collectAll(t, streams)
		for i := range prompts {
			checkGreedy(t, "round "+itoa(round)+" prompt "+itoa(i), prompts[i], ref[i], goldenMaxTokens, results[i])
		}
	}
	st := e.Stats()
	t.Logf("preemptions %d, steps %d, prompt tokens computed %d", st.Preemptions, st.Steps, st.PromptTokens)
	if st.Preemptions == 0 {
		t.Errorf("no preemptions with 29 blocks of demand in 18: %+v", st)
	}
	checkPool(t, e)
}

func collectAll(t *testing.T, streams []*Stream) []result {
	t.Helper()
	results := make([]result, len(streams))
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = collect(t, streams[i])
		}()
	}
	wg.Wait()
	return results
}

func planFor(t *testing.T, name string, cfg Config) *MemoryPlan {
	t.Helper()
	cfg.ModelPath = testModel(t, name)
	p, err := Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// slowHook slows each loop iteration so a test can act mid-generation.
func slowHook() { time.Sleep(2 * time.Millisecond) }

func TestCancel(t *testing.T) {
	long := longPrompt(t)
	e := newTestEngineHook(t, stories, Config{}, slowHook)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := e.Submit(ctx, &Request{Prompt: long, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	var tokens int
	var final Event
	for {
		ev, ok := s.Next()
		if !ok {
			break
		}
		if ev.HasToken {
			tokens++
		}
		if tokens == 3 && !ev.Done {
			if u := e.Stats().KVUsage; u == 0 {
				t.Errorf("KVUsage 0 while a request is generating")
			}
			cancel()
		}
		if ev.Done {
			final = ev
		}
	}
	if final.Finish != FinishAbort {
		t.Fatalf("final event %+v, want FinishAbort", final)
	}
	if final.Usage.CompletionTokens < 3 || final.Usage.CompletionTokens > 100 {
		t.Errorf("aborted after %d tokens", final.Usage.CompletionTokens)
	}
	// The blocks are freed before the final event is delivered.
	if st := e.Stats(); st.KVUsage != 0 || st.Running != 0 || st.Finished[FinishAbort] != 1 {
		t.Errorf("after abort: %+v", st)
	}
	if _, ok := s.Next(); ok {
		t.Errorf("Next after the final event returned an event")
	}
	checkPool(t, e)
}

// gate is a step hook that can hold the loop before its next intake.
type gate struct {
	closed  atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) hook() {
	if g.closed.Load() {
		g.entered <- struct{}{}
		<-g.release
	}
}

// hold stops the loop at the start of its next iteration.
func (g *gate) hold(e *Engine) {
	g.closed.Store(true)
	e.signal()
	<-g.entered
}

func (g *gate) open() {
	g.closed.Store(false)
	g.release <- struct{}{}
}

func TestCancelWhileWaiting(t *testing.T) {
	g := newGate()
	e := newTestEngineHook(t, stories, Config{}, g.hook)
	g.hold(e)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.Submit(ctx, greedy([]int32{1, 403}, 8))
	if err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Waiting != 1 {
		t.Errorf("Waiting %d with one request in the inbox", st.Waiting)
	}
	cancel()
	g.open()
	r := collect(t, s)
	if r.final.Finish != FinishAbort || len(r.tokens) != 0 {
		t.Errorf("cancelled before scheduling: %d tokens, final %+v", len(r.tokens), r.final)
	}
	// The queue slot is given back.
	if n := e.queued.Load(); n != 0 {
		t.Errorf("%d requests counted as queued", n)
	}
	if _, err := e.Submit(context.Background(), greedy([]int32{1, 403}, 2)); err != nil {
		t.Errorf("Submit after the cancelled one: %v", err)
	}
}

func TestOverload(t *testing.T) {
	g := newGate()
	e := newTestEngineHook(t, stories, Config{MaxQueue: 1}, g.hook)
	g.hold(e)
	s1, err := e.Submit(context.Background(), greedy([]int32{1, 403}, 4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Submit(context.Background(), greedy([]int32{1, 407}, 4)); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("second Submit with MaxQueue 1: %v, want ErrOverloaded", err)
	}
	g.open()
	if r := collect(t, s1); r.final.Finish != FinishLength {
		t.Errorf("first request: %+v", r.final)
	}
	// Once it has been scheduled the queue has room again.
	if _, err := e.Submit(context.Background(), greedy([]int32{1, 407}, 4)); err != nil {
		t.Errorf("Submit after the queue emptied: %v", err)
	}
}

func TestDrain(t *testing.T) {
	long := longPrompt(t)
	e := newTestEngineHook(t, stories, Config{}, slowHook)
	streams := []*Stream{
		submit(t, e, &Request{Prompt: long, MaxTokens: 20, IgnoreEOS: true}),
		submit(t, e, &Request{Prompt: long[:50], MaxTokens: 30, IgnoreEOS: true}),
	}
	drained := make(chan error, 1)
	go func() { drained <- e.Drain(context.Background()) }()
	for !e.Stats().Draining {
		time.Sleep(time.Millisecond)
	}
	if _, err := e.Submit(context.Background(), greedy([]int32{1}, 1)); !errors.Is(err, ErrDraining) {
		t.Errorf("Submit while draining: %v, want ErrDraining", err)
	}
	results := collectAll(t, streams)
	for i, want := range []int{20, 30} {
		if r := results[i]; r.final.Finish != FinishLength || len(r.tokens) != want {
			t.Errorf("request %d while draining: %d tokens, final %+v", i, len(r.tokens), r.final)
		}
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("Drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after the requests finished")
	}
	if _, err := e.Submit(context.Background(), greedy([]int32{1}, 1)); !errors.Is(err, ErrDraining) {
		t.Errorf("Submit after Drain: %v, want ErrDraining", err)
	}
	if err := e.Drain(context.Background()); err != nil {
		t.Errorf("second Drain: %v", err)
	}
}

func TestDrainTimeout(t *testing.T) {
	g := newGate()
	e := newTestEngineHook(t, stories, Config{}, g.hook)
	g.hold(e)
	s := submit(t, e, greedy([]int32{1, 403}, 4))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a held loop: %v, want DeadlineExceeded", err)
	}
	g.open()
	if r := collect(t, s); r.final.Finish != FinishLength {
		t.Errorf("request: %+v", r.final)
	}
}

func TestClose(t *testing.T) {
	long := longPrompt(t)
	cfg := Config{Threads: 1, ModelPath: testModel(t, stories)}
	e, err := newEngine(cfg, slowHook)
	if err != nil {
		t.Fatal(err)
	}
	s := submit(t, e, &Request{Prompt: long, IgnoreEOS: true})
	if ev, ok := s.Next(); !ok || ev.Done {
		t.Fatalf("first event: %+v %v", ev, ok)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The engine ended it, not the caller: an error naming the close,
	// not the caller's abort.
	if r := collect(t, s); r.final.Finish != FinishError || !errors.Is(r.final.Err, ErrClosed) {
		t.Errorf("stream after Close: %+v, want FinishError with ErrClosed", r.final)
	}
	if _, err := e.Submit(context.Background(), greedy([]int32{1}, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v, want ErrClosed", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := e.Drain(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Drain after Close: %v", err)
	}
}

func TestInvalidRequests(t *testing.T) {
	cfg := Config{}
	p := planFor(t, stories, cfg)
	cfg.KVMemory = 4 * p.BlockBytes // 64 token slots
	e := newTestEngine(t, stories, cfg)
	ctxLen := e.Info().ContextLength
	vocab := int32(e.Info().VocabSize)
	long := make([]int32, ctxLen)
	for i := range long {
		long[i] = 1
	}
	poolLong := long[:4*p.BlockSize+1]
	withParams := func(mod func(*sample.Params)) sample.Params {
		sp := sample.DefaultParams()
		mod(&sp)
		return sp
	}
	cases := []struct {
		name  string
		req   Request
		param string
	}{
		{"empty prompt", Request{}, "prompt"},
		{"prompt fills the context", Request{Prompt: long}, "prompt"},
		{"negative token", Request{Prompt: []int32{1, -1}}, "prompt"},
		{"token past the vocabulary", Request{Prompt: []int32{1, vocab}}, "prompt"},
		{"prompt larger than the KV cache", Request{Prompt: poolLong}, "prompt"},
		{"negative max_tokens", Request{Prompt: []int32{1}, MaxTokens: -1}, "max_tokens"},
		{"temperature", Request{Prompt: []int32{1}, Sampling: withParams(func(p *sample.Params) { p.Temperature = 3 })}, "temperature"},
		{"top_p", Request{Prompt: []int32{1}, Sampling: withParams(func(p *sample.Params) { p.TopP = 0 })}, "top_p"},
		{"logit_bias id", Request{Prompt: []int32{1}, Sampling: withParams(func(p *sample.Params) {
			p.LogitBias = map[int32]float32{vocab + 5: 1}
		})}, "logit_bias"},
	}
	for _, c := range cases {
		_, err := e.Submit(context.Background(), &c.req)
		var ie *InvalidRequestError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v, want *InvalidRequestError", c.name, err)
			continue
		}
		if ie.Param != c.param {
			t.Errorf("%s: param %q (%v), want %q", c.name, ie.Param, err, c.param)
		}
		if ie.Msg == "" {
			t.Errorf("%s: empty message", c.name)
		}
	}
	if _, err := e.Submit(context.Background(), nil); err == nil {
		t.Errorf("nil request accepted")
	}
	// Right at the pool's limit is fine: MaxTokens is cut to the room left.
	r := collect(t, submit(t, e, &Request{Prompt: poolLong[:4*p.BlockSize-2], IgnoreEOS: true}))
	if r.final.Finish != FinishLength || len(r.tokens) != 3 {
		t.Errorf("request filling the pool: %d tokens, %+v", len(r.tokens), r.final)
	}
	if st := e.Stats(); st.Running+st.Waiting != 0 {
		t.Errorf("refused requests left traces: %+v", st)
	}
}

func TestMaxTokensAndContextLength(t *testing.T) {
	e := newTestEngine(t, stories, Config{ContextLength: 40})
	r := collect(t, submit(t, e, &Request{Prompt: []int32{1, 403}, MaxTokens: 5, IgnoreEOS: true}))
	if r.final.Finish != FinishLength || len(r.tokens) != 5 || r.final.Usage.CompletionTokens != 5 || r.events != 5 {
		t.Errorf("MaxTokens 5: %d tokens in %d events, %+v", len(r.tokens), r.events, r.final)
	}
	// MaxTokens 0: up to the context length.
	r = collect(t, submit(t, e, &Request{Prompt: []int32{1, 403}, IgnoreEOS: true}))
	if r.final.Finish != FinishLength || len(r.tokens) != 38 {
		t.Errorf("MaxTokens 0 with context 40: %d tokens, %+v", len(r.tokens), r.final)
	}
	// MaxTokens past the context is cut to it.
	r = collect(t, submit(t, e, &Request{Prompt: []int32{1, 403}, MaxTokens: 1000, IgnoreEOS: true}))
	if r.final.Finish != FinishLength || len(r.tokens) != 38 {
		t.Errorf("MaxTokens 1000 with context 40: %d tokens, %+v", len(r.tokens), r.final)
	}
	if tm := r.final.Timing; tm.Total <= 0 || tm.FirstTok <= 0 || tm.FirstTok > tm.Total || tm.PerOutput <= 0 {
		t.Errorf("timing %+v", tm)
	}
}

func TestStopStrings(t *testing.T) {
	gs := loadGolden(t, stories)
	prompt := gs[0].PromptTokens
	e := newTestEngine(t, stories, Config{})
	full := collect(t, submit(t, e, greedy(prompt, 40)))
	// The streamed text is the decoder's output for the tokens.
	dec := e.Tokenizer().NewStreamDecoder()
	var want strings.Builder
	for _, id := range full.tokens {
		if !e.Tokenizer().IsEOG(id) {
			want.WriteString(dec.Add(id))
		}
	}
	want.WriteString(dec.Flush())
	if full.text != want.String() {
		t.Fatalf("streamed text %q, decoded %q", full.text, want.String())
	}
	if len(full.text) < 30 {
		t.Fatalf("generated text %q too short for the test", full.text)
	}
	// Stop at a word in the middle: the text is cut before it.
	words := strings.Fields(full.text[len(full.text)/2:])
	stop := " " + words[1]
	at := strings.Index(full.text, stop)
	if at < 0 {
		t.Fatalf("no %q in %q", stop, full.text)
	}
	sp := sample.DefaultParams()
	sp.Temperature = 0
	sp.Stop = []string{"never appears", stop}
	r := collect(t, submit(t, e, &Request{Prompt: prompt, MaxTokens: 40, Sampling: sp}))
	if r.text != full.text[:at] {
		t.Errorf("with stop %q: text %q, want %q", stop, r.text, full.text[:at])
	}
	if r.final.Finish != FinishStop {
		t.Errorf("with stop %q: finish %q", stop, r.final.Finish)
	}
	if len(r.tokens) >= len(full.tokens) || !slices.Equal(r.tokens, full.tokens[:len(r.tokens)]) {
		t.Errorf("with stop: tokens %v, not a proper prefix of %v", r.tokens, full.tokens)
	}

	// A stop token id.
	sp.Stop = nil
	sp.StopTokens = []int32{full.tokens[5]}
	r = collect(t, submit(t, e, &Request{Prompt: prompt, MaxTokens: 40, Sampling: sp}))
	first := slices.Index(full.tokens, full.tokens[5])
	if r.final.Finish != FinishStop || len(r.tokens) != first+1 {
		t.Errorf("stop token %d: %d tokens (want %d), %+v", full.tokens[5], len(r.tokens), first+1, r.final)
	}
}

func TestSeededSampling(t *testing.T) {
	gs := loadGolden(t, stories)
	e := newTestEngine(t, stories, Config{})
	sp := sample.DefaultParams()
	sp.Temperature = 0.9
	sp.TopK = 40
	sp.Seed, sp.HasSeed = 42, true
	sp.Logprobs, sp.TopLogprobs = true, 3
	req := func(p []int32) *Request { return &Request{Prompt: p, MaxTokens: 30, Sampling: sp, IgnoreEOS: true} }
	a := collect(t, submit(t, e, req(gs[0].PromptTokens)))
	// The same seed again, this time next to other requests.
	streams := []*Stream{
		submit(t, e, req(gs[1].PromptTokens)),
		submit(t, e, req(gs[0].PromptTokens)),
		submit(t, e, req(gs[2].PromptTokens)),
	}
	rs := collectAll(t, streams)
	if !slices.Equal(a.tokens, rs[1].tokens) || a.text != rs[1].text {
		t.Errorf("seed 42 twice: %v vs %v", a.tokens, rs[1].tokens)
	}
	if len(a.tokens) != 30 {
		t.Errorf("%d tokens", len(a.tokens))
	}
}

func TestLogprobsAndEvents(t *testing.T) {
	gs := loadGolden(t, stories)
	e := newTestEngine(t, stories, Config{})
	sp := sample.DefaultParams()
	sp.Temperature = 0
	sp.Logprobs, sp.TopLogprobs = true, 2
	s := submit(t, e, &Request{Prompt: gs[0].PromptTokens, MaxTokens: 10, Sampling: sp})
	var tokens []int32
	n := 0
	for ev := range s.Events() {
		n++
		if ev.HasToken {
			tokens = append(tokens, ev.Token)
			if ev.Logprob > 0 || len(ev.TopLogprobs) != 2 || ev.TopLogprobs[0].Token != ev.Token {
				t.Errorf("token %d: logprob %g, top %+v", ev.Token, ev.Logprob, ev.TopLogprobs)
			}
		}
		if ev.Done != (n == 10) {
			t.Errorf("event %d: Done %v", n, ev.Done)
		}
	}
	if !slices.Equal(tokens, gs[0].Generated[:10]) {
		t.Errorf("Events: %v, want %v", tokens, gs[0].Generated[:10])
	}
	if _, ok := s.Next(); ok {
		t.Errorf("Next after the channel closed returned an event")
	}
}

func TestEventsCancelledReader(t *testing.T) {
	long := longPrompt(t)
	e := newTestEngineHook(t, stories, Config{}, slowHook)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.Submit(ctx, &Request{Prompt: long, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	ch := s.Events()
	<-ch
	cancel()
	// A reader that stopped reading still finds the final event.
	time.Sleep(50 * time.Millisecond)
	var final Event
	for ev := range ch {
		final = ev
	}
	if final.Finish != FinishAbort {
		t.Errorf("final %+v", final)
	}
}

// TestEngineFailure makes a forward pass fail: every request ends with
// FinishError, the engine reports unhealthy and refuses new work.
func TestEngineFailure(t *testing.T) {
	long := longPrompt(t)
	g := newGate()
	e := newTestEngineHook(t, stories, Config{}, g.hook)
	g.hold(e)
	// A cache that is not the model's makes Forward fail validation.
	real := e.kv
	e.kv = &model.KVCache{}
	t.Cleanup(real.Free)
	s1 := submit(t, e, greedy(long, 4))
	s2 := submit(t, e, greedy(long[:20], 4))
	g.open()
	for i, s := range []*Stream{s1, s2} {
		r := collect(t, s)
		if r.final.Finish != FinishError || r.final.Err == nil {
			t.Errorf("request %d: %+v", i, r.final)
		}
	}
	st := e.Stats()
	if st.Healthy || st.Finished[FinishError] != 2 || st.KVUsage != 0 {
		t.Errorf("after a failure: %+v", st)
	}
	if _, err := e.Submit(context.Background(), greedy([]int32{1}, 1)); err == nil || errors.Is(err, ErrOverloaded) {
		t.Errorf("Submit after a failure: %v", err)
	}
	// The failed step was rolled back: none of the KV it was to write
	// reached the prefix cache.
	var cached int
	if err := e.inLoop(func() { cached = e.pool.Stats().CachedBlocks }); err != nil {
		t.Fatal(err)
	}
	if cached != 0 || st.KVCachedBlocks != 0 {
		t.Errorf("%d blocks cached (stats %d) from a failed forward pass", cached, st.KVCachedBlocks)
	}
}

func TestInfo(t *testing.T) {
	e := newTestEngine(t, stories, Config{})
	info := e.Info()
	if info.Name != stories || info.Arch != "llama" || info.VocabSize != 512 || info.ContextLength <= 0 ||
		info.Fingerprint == "" || info.QuantMix == "" || info.KVBlocks <= 0 || info.BlockSize != 16 {
		t.Errorf("Info %+v", info)
	}
	if e.Tokenizer() == nil || e.Tokenizer().VocabSize() != 512 {
		t.Errorf("Tokenizer")
	}
	if e.ChatTemplate() != "" {
		t.Errorf("stories260K has no chat template, got %q", e.ChatTemplate())
	}
	st := e.Stats()
	if !st.Healthy || st.KVBlocks != info.KVBlocks || st.Draining {
		t.Errorf("Stats %+v", st)
	}
}

func TestPlan(t *testing.T) {
	path := testModel(t, "synth-qwen2-q8_0")
	p, err := Plan(Config{ModelPath: path, KVMemory: 3 << 20, BlockSize: 32, ContextLength: 1024})
	if err != nil {
		t.Fatal(err)
	}
	m := loadModelConfig(t, path)
	bpt := m.KVBytesPerToken(quant.F16)
	if p.KVBytesPerToken != bpt || bpt == 0 {
		t.Errorf("KVBytesPerToken %d, model says %d", p.KVBytesPerToken, bpt)
	}
	wantBlocks := int((3 << 20) / int64(bpt*32))
	if p.Blocks != wantBlocks || p.Blocks != m.KVBlocksFor(3<<20, 32, quant.F16) {
		t.Errorf("Blocks %d, want %d", p.Blocks, wantBlocks)
	}
	if p.BlockBytes != int64(bpt*32) || p.KVBytes != int64(p.Blocks)*p.BlockBytes || p.TotalTokens != p.Blocks*32 || p.KVBytes > 3<<20 {
		t.Errorf("plan %+v", p)
	}
	if p.WeightBytes <= 0 || p.ContextLength != 1024 {
		t.Errorf("weights %d, context %d", p.WeightBytes, p.ContextLength)
	}
	if len(p.Fits) != 4 {
		t.Fatalf("fits %+v", p.Fits)
	}
	for i, l := range []int{128, 256, 512, 1024} {
		if f := p.Fits[i]; f.Length != l || f.Sequences != p.Blocks/((l+31)/32) {
			t.Errorf("fit %+v for length %d", f, l)
		}
	}
	// F32 doubles the bytes per token.
	p32, err := Plan(Config{ModelPath: path, KVMemory: 3 << 20, KVType: "f32", BlockSize: 32}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if p32.KVBytesPerToken != m.KVBytesPerToken(quant.F32) || p32.KVBytesPerToken != 2*bpt || len(p32.Fits) != 1 || p32.Fits[0].Length != 100 {
		t.Errorf("f32 plan %+v", p32)
	}
	// A budget below one block is refused.
	if _, err := Plan(Config{ModelPath: path, KVMemory: int64(bpt*32) - 1, BlockSize: 32}); err == nil || !strings.Contains(err.Error(), "holds no block") {
		t.Errorf("tiny budget: %v", err)
	}
	// Sized from available memory.
	pa, err := Plan(Config{ModelPath: path})
	if err != nil {
		t.Fatal(err)
	}
	if pa.Blocks < 1 || pa.Available <= 0 || pa.Fraction != DefaultKVMemoryFraction || pa.KVBytes > pa.Available {
		t.Errorf("auto plan %+v", pa)
	}
	// New uses the same plan.
	e := newTestEngine(t, "synth-qwen2-q8_0", Config{KVMemory: 3 << 20, BlockSize: 32, ContextLength: 1024})
	if info := e.Info(); info.KVBlocks != p.Blocks || info.KVBytes != p.KVBytes || info.BlockSize != 32 {
		t.Errorf("engine info %+v, plan %+v", info, p)
	}
	if _, err := Plan(Config{ModelPath: path, KVType: "q8"}); err == nil {
		t.Errorf("KVType q8 accepted")
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"512MiB": 512 << 20, "4GiB": 4 << 30, "1.5G": 3 << 29, "1.5GB": 1500000000,
		"100": 100, "2k": 2048, "10 MB": 10e6, "1tib": 1 << 40,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "4XB", "-1G", "1e400"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
	if s := FormatBytes(3 << 29); s != "1.5 GiB" {
		t.Errorf("FormatBytes: %q", s)
	}
}

// TestSteadyStateAllocs bounds the allocations per generated token of a
// decoding request: the text of its event (decoder and stop matcher
// strings) and little else; batch, scheduler and sampler buffers are
// reused.
func TestSteadyStateAllocs(t *testing.T) {
	e := newTestEngine(t, stories, Config{})
	collect(t, submit(t, e, &Request{Prompt: []int32{1, 403}, MaxTokens: 50, IgnoreEOS: true}))
	s := submit(t, e, &Request{Prompt: []int32{1, 403, 300}, MaxTokens: 1000, IgnoreEOS: true})
	for range 100 {
		s.Next()
	}
	const n = 800
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for range n {
		s.Next()
	}
	runtime.ReadMemStats(&ms1)
	per := float64(ms1.Mallocs-ms0.Mallocs) / n
	t.Logf("%.2f allocations, %.0f bytes per token", per, float64(ms1.TotalAlloc-ms0.TotalAlloc)/n)
	if per > 4 {
		t.Errorf("%.2f allocations per generated token", per)
	}
	collect(t, s)
}
