package server

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/tokenizer"
)

// byteTok is a deterministic tokenizer for tests: id 0 is <s>, 1 is </s>,
// id b+2 is byte b.
type byteTok struct{}

func (byteTok) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	var out []int32
	if addSpecial {
		out = append(out, 0)
	}
	for i := 0; i < len(text); i++ {
		out = append(out, int32(text[i])+2)
	}
	return out
}

// byteTok has no control tokens: there is nothing to keep literal.
func (t byteTok) EncodeLiteral(text string, addSpecial bool, _ []tokenizer.Span) []int32 {
	return t.Encode(text, addSpecial, true)
}

func (byteTok) HasControlText(string) bool { return false }

func (t byteTok) Decode(ids []int32) string {
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(t.Piece(id))
	}
	return sb.String()
}

func (byteTok) Piece(id int32) string {
	switch {
	case id == 0:
		return "<s>"
	case id == 1:
		return "</s>"
	case id >= 2 && id < 258:
		return string([]byte{byte(id - 2)})
	}
	return ""
}

func (t byteTok) Token(id int32) string { return t.Piece(id) }
func (byteTok) BOS() int32              { return 0 }
func (byteTok) EOS() int32              { return 1 }
func (byteTok) VocabSize() int          { return 258 }

// fakeModel is a deterministic Model: every request generates the bytes of
// reply in order (one token each), up to MaxTokens, ending with "stop" at
// the end of reply (like an EOS) or "length". Stop strings are cut as the
// engine does.
type fakeModel struct {
	name     string
	ctxLen   int
	reply    string
	maxQueue int // MaxQueue; 0: none
	tmpl     string
	tok      Tokenizer   // nil: byteTok
	block    atomic.Bool // streams wait for cancellation or release after each token
	release  chan struct{}
	submitFn func(*engine.Request, int) error // called per Submit with its sequence number; an error refuses it

	mu        sync.Mutex
	reqs      []engine.Request
	seen      map[string]bool
	submits   int
	cancelled chan string // request ids whose ctx was cancelled
	stats     engine.Stats
	running   atomic.Int64
	draining  atomic.Bool
}

func newFake(name string) *fakeModel {
	return &fakeModel{
		name: name, ctxLen: 64, reply: "abcdefghijklmnopqrstuvwxyz",
		seen: map[string]bool{}, cancelled: make(chan string, 64), release: make(chan struct{}),
		stats: engine.Stats{Healthy: true, KVBlocks: 100, Finished: map[engine.FinishReason]uint64{}},
	}
}

func (f *fakeModel) Info() engine.ModelInfo {
	return engine.ModelInfo{Name: f.name, Path: "/models/" + f.name + ".gguf", Fingerprint: "fp-" + f.name, Arch: "llama",
		ContextLength: f.ctxLen, VocabSize: 258, QuantMix: "F32:3", LoadedAt: time.Unix(1700000000, 0), BlockSize: 16, KVBlocks: 100}
}

func (f *fakeModel) Tokenizer() Tokenizer {
	if f.tok != nil {
		return f.tok
	}
	return byteTok{}
}
func (f *fakeModel) MaxQueue() int        { return f.maxQueue }
func (f *fakeModel) ChatTemplate() string { return f.tmpl }

func (f *fakeModel) Stats() engine.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.Finished = map[engine.FinishReason]uint64{}
	for k, v := range f.stats.Finished {
		st.Finished[k] = v
	}
	st.Running = int(f.running.Load())
	st.KVUsage = float64(st.Running) / 10
	st.Draining = f.draining.Load()
	return st
}

func (f *fakeModel) Drain(ctx context.Context) error {
	f.draining.Store(true)
	for f.running.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

func (f *fakeModel) Close() error { return nil }

func (f *fakeModel) requests() []engine.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Request(nil), f.reqs...)
}

type fakeStream struct{ ch chan engine.Event }

func (s *fakeStream) Next() (engine.Event, bool) {
	ev, ok := <-s.ch
	return ev, ok
}

func (f *fakeModel) Submit(ctx context.Context, req *engine.Request) (Stream, error) {
	if f.draining.Load() {
		return nil, engine.ErrDraining
	}
	f.mu.Lock()
	k := f.submits
	f.submits++
	fn := f.submitFn
	f.mu.Unlock()
	if fn != nil {
		if err := fn(req, k); err != nil {
			return nil, err
		}
	}
	if len(req.Prompt) == 0 {
		return nil, &engine.InvalidRequestError{Param: "prompt", Msg: "empty"}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, *req)
	key := byteTok{}.Decode(req.Prompt)
	cached := 0
	if f.seen[key] {
		cached = len(req.Prompt) - 1
	}
	f.seen[key] = true
	f.mu.Unlock()
	f.running.Add(1)
	st := &fakeStream{ch: make(chan engine.Event)}
	r := *req
	go f.generate(ctx, &r, cached, st.ch)
	return st, nil
}

func (f *fakeModel) generate(ctx context.Context, req *engine.Request, cached int, ch chan<- engine.Event) {
	defer close(ch)
	var text strings.Builder
	n := 0
	finish := engine.FinishStop
	emit := func(ev engine.Event) bool {
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			finish = engine.FinishAbort
			break
		}
		if req.MaxTokens > 0 && n >= req.MaxTokens {
			finish = engine.FinishLength
			break
		}
		if i >= len(f.reply) {
			break
		}
		b := f.reply[i]
		id := int32(b) + 2
		piece := string([]byte{b})
		text.WriteString(piece)
		n++
		// Tokens come every 5ms after a first one at 10ms (the final
		// event's Timing).
		ev := engine.Event{Token: id, HasToken: true, Text: piece, Elapsed: 10*time.Millisecond + time.Duration(n-1)*5*time.Millisecond}
		if req.Sampling.Logprobs {
			ev.Logprob = -0.5
			ev.TopLogprobs = grow(ev.TopLogprobs, req.Sampling.TopLogprobs)
			for k := range ev.TopLogprobs {
				ev.TopLogprobs[k].Token = id + int32(k)
				ev.TopLogprobs[k].Logprob = -0.5 - float32(k)
			}
		}
		stopped := false
		for _, s := range req.Sampling.Stop {
			if strings.HasSuffix(text.String(), s) {
				ev.Text = ""
				stopped = true
			}
		}
		if stopped {
			finish = engine.FinishStop
			break
		}
		if !emit(ev) {
			finish = engine.FinishAbort
			break
		}
		if f.block.Load() {
			select {
			case <-ctx.Done():
			case <-f.release:
			}
		}
	}
	if finish == engine.FinishAbort {
		select {
		case f.cancelled <- req.ID:
		default:
		}
	}
	f.mu.Lock()
	f.stats.Finished[finish]++
	f.stats.PromptTokens += uint64(len(req.Prompt) - cached)
	f.stats.GenerationTokens += uint64(n)
	f.stats.PrefixQueries += uint64(len(req.Prompt))
	f.stats.PrefixHits += uint64(cached)
	f.mu.Unlock()
	f.running.Add(-1)
	final := engine.Event{Done: true, Finish: finish,
		Usage:  engine.Usage{PromptTokens: len(req.Prompt), CompletionTokens: n, CachedTokens: cached},
		Timing: engine.Timing{Queued: time.Millisecond, FirstTok: 10 * time.Millisecond, Total: 50 * time.Millisecond, PerOutput: 5 * time.Millisecond}}
	// A final event is always delivered, even after cancellation, as the
	// engine does.
	ch <- final
}

// grow appends n zero elements to s.
func grow[S ~[]E, E any](s S, n int) S { return append(s, make(S, n)...) }

func (f *fakeModel) setSubmit(fn func(*engine.Request, int) error) {
	f.mu.Lock()
	f.submitFn = fn
	f.mu.Unlock()
}
