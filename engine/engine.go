package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/kernels"
	_ "github.com/sluice-llm/sluice/kernels/cpu"  // registers the "cpu" backend
	_ "github.com/sluice-llm/sluice/kernels/cuda" // registers the "cuda" backend
	"github.com/sluice-llm/sluice/kvcache"
	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/sample"
	"github.com/sluice-llm/sluice/scheduler"
	"github.com/sluice-llm/sluice/spec"
	"github.com/sluice-llm/sluice/tokenizer"
)

// Engine serves one model. Its methods are safe for concurrent use.
type Engine struct {
	cfg    Config // defaults filled
	plan   *MemoryPlan
	info   ModelInfo
	chat   string
	file   *gguf.File
	tok    *tokenizer.Tokenizer
	be     kernels.Backend
	model  *model.Model
	kv     *model.KVCache
	pool   *kvcache.Pool
	sched  *scheduler.Scheduler
	vocab  int
	ctxLen int
	eog    []int32
	// maxPoolTokens is the most positions one request may hold: the pool's
	// slots (the last sampled token needs none).
	maxPoolTokens int

	// Speculative decoding (nil when Config.Spec is ""): the controller
	// choosing how many tokens to draft, and for "draft" the draft model
	// with its own KV cache. The loop owns draft.
	specCtl    *spec.Controller
	draftFile  *gguf.File
	draftModel *model.Model
	draft      *spec.Draft

	nextID atomic.Uint64
	queued atomic.Int64 // submitted, not yet scheduled for the first time

	mu       sync.Mutex
	inbox    []*request    // submitted, not yet seen by the loop
	aborts   []uint64      // ids whose context is done
	calls    []func()      // functions to run on the loop (tests)
	wake     chan struct{} // capacity 1: the loop has something to look at
	draining bool
	closing  bool
	fatal    error         // sticky engine failure
	drained  chan struct{} // closed by the loop when draining and idle
	stats    Stats         // published by the loop after every step
	loopDone chan struct{}
	closeErr error
	closed   bool

	// stepHook, if set, runs at the start of every loop iteration (tests).
	stepHook func()
	// threadNote says how the thread count was capped ("" if it was not).
	threadNote string
	started    bool // the step loop runs (start succeeded)

	lp loop // owned by the step loop goroutine
}

// New loads the model in cfg.ModelPath (or the parts in cfg.ModelFiles),
// its tokenizer, the kernels backend and the KV block pool sized by Plan,
// and starts the engine's step loop. Close releases them. The model is
// planned as the only one of the process; see NewGroup for several.
func New(cfg Config) (*Engine, error) {
	return newEngine(cfg, nil)
}

func newEngine(cfg Config, hook func()) (*Engine, error) {
	es, err := newGroup([]Config{cfg}, hook)
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

// NewGroup builds an engine for each of cfgs, for one process serving all
// of them: their weights, the backends' repacked weight copies and their
// KV caches come out of one memory budget, planned as PlanGroup plans it
// and refused as a whole, before any cache is allocated, when it cannot
// fit. The engines are then independent; the caller closes each one.
func NewGroup(cfgs []Config) ([]*Engine, error) {
	return newGroup(cfgs, nil)
}

func newGroup(cfgs []Config, hook func()) (_ []*Engine, err error) {
	if len(cfgs) == 0 {
		return nil, errors.New("engine: no model to load")
	}
	es := make([]*Engine, 0, len(cfgs))
	defer func() {
		if err != nil {
			for _, e := range es {
				e.discard()
			}
		}
	}()
	for _, cfg := range cfgs {
		e, err := loadEngine(cfg, hook)
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	if err := planEngines(es); err != nil {
		return nil, err
	}
	for _, e := range es {
		if err := e.start(); err != nil {
			return nil, err
		}
	}
	return es, nil
}

// loadEngine builds an engine's model side: the GGUF file, the tokenizer,
// the backend (with threads resolved by ResolveThreads) and the model's
// weights over it. planEngines and start do the rest.
func loadEngine(cfg Config, hook func()) (_ *Engine, err error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	var threadNote string
	cfg.Threads, threadNote = ResolveThreads(cfg.Threads, cfg.ThreadsForce)
	e := &Engine{cfg: cfg, threadNote: threadNote, stepHook: hook, wake: make(chan struct{}, 1), loopDone: make(chan struct{})}
	defer func() {
		// The failure returns below leave the result nil; free what was
		// built through e itself.
		if err != nil {
			e.release()
		}
	}()
	if e.file, err = openModel(&cfg); err != nil {
		return nil, err
	}
	if e.tok, err = tokenizer.FromGGUF(e.file); err != nil {
		return nil, fmt.Errorf("engine: tokenizer of %s: %w", cfg.ModelPath, err)
	}
	e.chat, _ = e.file.String("tokenizer.chat_template")
	if e.be, err = kernels.Open(cfg.Backend, kernels.Options{Threads: cfg.Threads}); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if e.model, err = model.Load(e.file, e.be, model.Options{}); err != nil {
		return nil, err
	}
	return e, nil
}

// planEngines gives the loaded engines es their memory plans, out of one
// budget for the process.
func planEngines(es []*Engine) error {
	cfgs := make([]*Config, len(es))
	plans := make([]*MemoryPlan, len(es))
	mem := AvailableMemory()
	for i, e := range es {
		deviceMemory(e.be, &mem)
		mc := e.model.Config()
		p, err := basePlan(&e.cfg, e.file, &mc)
		if err != nil {
			return err
		}
		p.PackedBytes = e.model.PackedBytes()
		cfgs[i], plans[i] = &e.cfg, p
	}
	if _, err := sizeGroup(cfgs, plans, mem); err != nil {
		return err
	}
	for i, e := range es {
		e.plan = plans[i]
		if e.threadNote != "" {
			e.plan.Notes = append(e.plan.Notes, e.threadNote)
		}
		e.plan.setFits(nil)
	}
	return nil
}

// start allocates a loaded and planned engine's KV cache, block pool and
// scheduler, and starts its step loop.
func (e *Engine) start() (err error) {
	mc := e.model.Config()
	e.ctxLen = e.cfg.ContextLength
	e.vocab = mc.VocabSize
	if e.kv, err = e.model.NewKVCache(e.plan.Blocks, e.plan.BlockSize, e.cfg.kvQuant()); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	fp := e.model.Fingerprint()
	if e.pool, err = kvcache.NewPool(e.plan.Blocks, e.plan.BlockSize, []byte(fp)); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	e.maxPoolTokens = e.plan.TotalTokens
	// Submit bounds the fresh waiting requests by MaxQueue itself;
	// preempted ones come back on top of those, at most MaxNumSeqs.
	e.sched, err = scheduler.New(e.pool, scheduler.Config{
		MaxNumBatchedTokens: e.cfg.MaxNumBatchedTokens,
		MaxNumSeqs:          e.cfg.MaxNumSeqs,
		MaxWaiting:          e.cfg.MaxQueue + e.cfg.MaxNumSeqs + 1,
	})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if err = e.initSpec(); err != nil {
		return err
	}
	e.eog = e.tok.EOGs()
	for _, id := range mc.EOS {
		if !slices.Contains(e.eog, id) {
			e.eog = append(e.eog, id)
		}
	}
	e.info = ModelInfo{
		Name:          e.cfg.Name,
		Path:          e.cfg.ModelPath,
		Fingerprint:   fp,
		Arch:          mc.Arch,
		ContextLength: e.ctxLen,
		VocabSize:     e.vocab,
		QuantMix:      quantMix(e.file),
		LoadedAt:      time.Now(),
		BlockSize:     e.plan.BlockSize,
		KVBlocks:      e.plan.Blocks,
		KVBytes:       e.plan.KVBytes,
		Threads:       e.cfg.Threads,
	}
	if t, ok := e.be.(interface{ Threads() int }); ok {
		e.info.Threads = t.Threads()
	}
	e.stats = Stats{KVBlocks: e.plan.Blocks, Healthy: true, Finished: map[FinishReason]uint64{}}
	e.lp.init(e)
	e.started = true
	go e.run()
	return nil
}

// discard frees an engine of a group that failed to build: it closes one
// whose loop runs, and releases one that never started.
func (e *Engine) discard() {
	if e.started {
		e.Close()
		return
	}
	e.release()
}

// release frees what New built (after the loop has stopped).
func (e *Engine) release() {
	if e.draft != nil {
		e.draft.Close()
		e.draft = nil
	}
	if e.draftModel != nil {
		e.draftModel.Close()
		e.draftModel = nil
	}
	if e.draftFile != nil {
		if err := e.draftFile.Close(); err != nil && e.closeErr == nil {
			e.closeErr = err
		}
		e.draftFile = nil
	}
	if e.kv != nil {
		e.kv.Free()
		e.kv = nil
	}
	if e.model != nil {
		e.model.Close()
		e.model = nil
	}
	if e.be != nil {
		if err := e.be.Close(); err != nil && e.closeErr == nil {
			e.closeErr = err
		}
		e.be = nil
	}
	if e.file != nil {
		if err := e.file.Close(); err != nil && e.closeErr == nil {
			e.closeErr = err
		}
		e.file = nil
	}
}

// quantMix lists tensor counts per type, most bytes first: "Q4_K:193 Q6_K:33 F32:65".
func quantMix(f *gguf.File) string {
	type share struct {
		name  string
		n     int
		bytes uint64
	}
	by := map[string]*share{}
	var order []*share
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		n := ti.Type.String()
		s := by[n]
		if s == nil {
			s = &share{name: n}
			by[n] = s
			order = append(order, s)
		}
		s.n++
		s.bytes += ti.Size
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].bytes > order[j].bytes })
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%s:%d", s.name, s.n)
	}
	return strings.Join(parts, " ")
}

// Generate starts generating for req and returns the stream of its
// events: tokens with their text, logprobs if asked for, and a final event
// with the finish reason, usage counts and timing. It is Submit under the
// name the public API documents; see Submit for validation, errors and
// cancellation (cancelling ctx aborts the request). Like every Engine
// method it may be called from many goroutines at once.
func (e *Engine) Generate(ctx context.Context, req *Request) (*Stream, error) {
	return e.Submit(ctx, req)
}

// Submit validates req and queues it. The returned Stream carries its
// events; cancelling ctx aborts the request (its KV blocks are freed at the
// next step and the stream ends with FinishAbort).
//
// Errors: *InvalidRequestError for a request that can never run as given
// (empty prompt or one that leaves no room in the context, token ids
// outside the vocabulary, negative max_tokens, invalid sampling
// parameters, a prompt larger than the whole KV cache), ErrOverloaded when
// MaxQueue requests are already waiting, ErrDraining after Drain,
// ErrClosed after Close, the engine's failure once it has failed, and
// ctx.Err() if ctx is already done.
//
// req.Sampling is used as given, except that its zero value means greedy
// decoding without penalties (sample.DefaultParams with temperature 0).
// MaxTokens beyond the room left in the context (or in the KV cache) is
// cut to it; such a request ends with FinishLength there.
func (e *Engine) Submit(ctx context.Context, req *Request) (*Stream, error) {
	if req == nil {
		return nil, &InvalidRequestError{Param: "prompt", Msg: "no request"}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := e.admissible(); err != nil {
		return nil, err
	}
	r, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.stream = newStream(ctx, r.id)
	if ctx.Done() != nil {
		// A cancellation before the loop has seen the request is caught
		// when it takes the request in (it checks ctx.Err).
		id := r.id
		r.stopCancel = context.AfterFunc(ctx, func() { e.abort(id) })
	}
	refuse := func(err error) (*Stream, error) {
		if r.stopCancel != nil {
			r.stopCancel()
		}
		return nil, err
	}

	e.mu.Lock()
	if err := e.admissibleLocked(); err != nil {
		e.mu.Unlock()
		return refuse(err)
	}
	if e.queued.Add(1) > int64(e.cfg.MaxQueue) {
		e.queued.Add(-1)
		e.mu.Unlock()
		return refuse(ErrOverloaded)
	}
	e.inbox = append(e.inbox, r)
	e.mu.Unlock()
	e.signal()
	return r.stream, nil
}

func (e *Engine) admissible() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.admissibleLocked()
}

func (e *Engine) admissibleLocked() error {
	switch {
	case e.closing:
		return ErrClosed
	case e.fatal != nil:
		return fmt.Errorf("engine: failed: %w", e.fatal)
	case e.draining:
		return ErrDraining
	}
	return nil
}

// prepare validates req and builds its record (sampler, decoders).
func (e *Engine) prepare(req *Request) (*request, error) {
	n := len(req.Prompt)
	switch {
	case n == 0:
		return nil, &InvalidRequestError{Param: "prompt", Msg: "the prompt is empty"}
	case n+1 > e.ctxLen:
		return nil, &InvalidRequestError{Param: "prompt", Msg: fmt.Sprintf(
			"the prompt has %d tokens; the context length is %d, which leaves no room for a completion", n, e.ctxLen)}
	case n > e.maxPoolTokens:
		return nil, &InvalidRequestError{Param: "prompt", Msg: fmt.Sprintf(
			"the prompt has %d tokens; the KV cache holds %d (%d blocks of %d)", n, e.maxPoolTokens, e.plan.Blocks, e.plan.BlockSize)}
	case req.MaxTokens < 0:
		return nil, &InvalidRequestError{Param: "max_tokens", Msg: fmt.Sprintf("max_tokens is %d; it must not be negative", req.MaxTokens)}
	}
	for i, t := range req.Prompt {
		if t < 0 || int(t) >= e.vocab {
			return nil, &InvalidRequestError{Param: "prompt", Msg: fmt.Sprintf(
				"token %d at position %d is outside the vocabulary (size %d)", t, i, e.vocab)}
		}
	}
	params := req.Sampling
	if reflect.ValueOf(params).IsZero() {
		params = sample.DefaultParams()
		params.Temperature = 0
		params.PenaltyLastN = 0
	}
	if err := params.Validate(); err != nil {
		return nil, paramError(err)
	}
	smp, err := sample.New(params, e.vocab)
	if err != nil {
		return nil, paramError(err)
	}
	if !req.IgnoreEOS {
		smp.AddStopTokens(e.eog...)
	}
	smp.AcceptPrompt(req.Prompt)

	// Room for output: the context, and the pool (a request can never hold
	// more positions than it has; the last token needs no slot).
	room := min(e.ctxLen, e.maxPoolTokens+1) - n
	maxTok := room
	if req.MaxTokens > 0 {
		maxTok = min(req.MaxTokens, room)
	}
	arrival := req.Arrival
	if arrival.IsZero() {
		arrival = time.Now()
	}
	r := &request{
		id:        e.nextID.Add(1),
		extID:     req.ID,
		prompt:    append([]int32(nil), req.Prompt...),
		maxTokens: maxTok,
		priority:  req.Priority,
		client:    req.Client,
		sampler:   smp,
		logprobs:  params.Logprobs,
		dec:       e.tok.NewStreamDecoder(),
		stop:      sample.NewStopMatcher(params.Stop),
		arrival:   arrival,
	}
	if req.Constraint != nil {
		r.constraint = newReqConstraint(req.Constraint, e.vocab)
	}
	if e.specCtl != nil && !req.NoSpeculation && req.Constraint == nil {
		r.spec = &reqSpec{ctx: append(make([]int32, 0, n+min(maxTok, 256)), req.Prompt...)}
		if e.cfg.Spec == SpecNGram {
			if r.spec.ngram, err = spec.NewNGram(spec.NGramConfig{}); err != nil {
				return nil, err
			}
		}
		r.spec.ver = spec.NewVerifier(smp)
	}
	if e.cfg.DisablePrefixCache {
		// A key of its own keeps the request's blocks from matching any
		// other request's.
		r.cacheKey = binary.LittleEndian.AppendUint64(nil, r.id)
	}
	return r, nil
}

func paramError(err error) error {
	var pe *sample.ParamError
	if errors.As(err, &pe) {
		return &InvalidRequestError{Param: pe.Param, Msg: pe.Msg}
	}
	return &InvalidRequestError{Msg: err.Error()}
}

// signal wakes the loop if it sleeps.
func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// abort asks the loop to cancel request id (its context is done).
func (e *Engine) abort(id uint64) {
	e.mu.Lock()
	e.aborts = append(e.aborts, id)
	e.mu.Unlock()
	e.signal()
}

// Stats returns a snapshot of the engine's counters, as of the last step.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Waiting += len(e.inbox)
	s.Finished = make(map[FinishReason]uint64, len(e.stats.Finished))
	for k, v := range e.stats.Finished {
		s.Finished[k] = v
	}
	s.Draining = e.draining
	s.Healthy = e.fatal == nil && !e.closing
	return s
}

// Info describes the loaded model and its KV cache.
func (e *Engine) Info() ModelInfo { return e.info }

// MemoryPlan returns the KV memory plan the engine was built with.
func (e *Engine) MemoryPlan() MemoryPlan {
	p := *e.plan
	p.Fits = append([]SeqFit(nil), p.Fits...)
	p.Notes = append([]string(nil), p.Notes...)
	return p
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Tokenizer returns the model's tokenizer (safe for concurrent use).
func (e *Engine) Tokenizer() *tokenizer.Tokenizer { return e.tok }

// ChatTemplate returns the model's chat template source
// (tokenizer.chat_template), or "" when the file has none.
func (e *Engine) ChatTemplate() string { return e.chat }

// Drain stops admitting requests (Submit returns ErrDraining) and waits
// until every submitted request has finished, or ctx is done.
func (e *Engine) Drain(ctx context.Context) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return ErrClosed
	}
	e.draining = true
	if e.drained == nil {
		e.drained = make(chan struct{})
	}
	ch := e.drained
	e.mu.Unlock()
	e.signal()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends every request (their streams end with FinishError and an Err
// that is ErrClosed: the engine, not the caller, ended them), stops the
// step loop and frees the model, the KV cache and the backend. Later
// calls return the first call's result; Submit returns ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.loopDone
		return e.closeErr
	}
	e.closed, e.closing = true, true
	e.mu.Unlock()
	e.signal()
	<-e.loopDone
	e.release()
	return e.closeErr
}

// inLoop runs fn on the step loop between steps and waits for it (tests).
func (e *Engine) inLoop(fn func()) error {
	done := make(chan struct{})
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return ErrClosed
	}
	e.calls = append(e.calls, func() { fn(); close(done) })
	e.mu.Unlock()
	e.signal()
	select {
	case <-done:
		return nil
	case <-e.loopDone:
		return ErrClosed
	}
}

// initSpec sets up speculative decoding as configured: the controller,
// and for Config.Spec "draft" the draft model (refused unless its
// vocabulary is the target's) with a KV cache of one slot per request
// that may draft at once.
func (e *Engine) initSpec() (err error) {
	if e.cfg.Spec == "" {
		return nil
	}
	if e.specCtl, err = spec.NewController(spec.ControllerConfig{
		FixedK:      e.cfg.SpecTokens,
		MaxBatch:    e.cfg.SpecMaxBatch,
		TokenBudget: e.cfg.MaxNumBatchedTokens,
	}); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if e.cfg.Spec != SpecDraft {
		return nil
	}
	path := e.cfg.DraftModelPath
	if e.draftFile, err = gguf.Open(path); err != nil {
		return fmt.Errorf("engine: draft model: %w", err)
	}
	target, ok := e.file.Strings("tokenizer.ggml.tokens")
	if !ok {
		return fmt.Errorf("engine: %s has no tokenizer.ggml.tokens to check a draft model's vocabulary against", e.cfg.ModelPath)
	}
	draft, ok := e.draftFile.Strings("tokenizer.ggml.tokens")
	if !ok {
		return fmt.Errorf("engine: draft model %s has no tokenizer.ggml.tokens", path)
	}
	if err := spec.CheckVocab(target, draft); err != nil {
		return fmt.Errorf("engine: draft model %s cannot draft for %s: %w", path, e.cfg.ModelPath, err)
	}
	if e.draftModel, err = model.Load(e.draftFile, e.be, model.Options{}); err != nil {
		return fmt.Errorf("engine: draft model %s: %w", path, err)
	}
	if v := e.draftModel.Config().VocabSize; v != e.vocab {
		return fmt.Errorf("engine: draft model %s has %d logits per token, the target %d", path, v, e.vocab)
	}
	// Speculation is off for batches of SpecMaxBatch sequences, so that
	// many slots serve every request drafting in one step; a request
	// that finds none decodes without drafts until one is free.
	slots := min(e.cfg.MaxNumSeqs, e.cfg.SpecMaxBatch)
	perSlot := min(e.ctxLen, e.maxPoolTokens+1)
	if e.draft, err = spec.NewDraft(e.draftModel, spec.DraftOptions{
		Slots:     slots,
		MaxTokens: perSlot,
		BlockSize: e.plan.BlockSize,
	}); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	dc := e.draftModel.Config()
	bs := e.plan.BlockSize
	kvBytes := int64(dc.KVBytesPerToken(model.DefaultKVType)) * int64(slots) * int64((perSlot+bs-1)/bs*bs)
	e.plan.Notes = append(e.plan.Notes, fmt.Sprintf(
		"draft model %s: %d KV slots of %d tokens, %d bytes besides this plan (and its weights, %d bytes)",
		path, slots, perSlot, kvBytes, e.draftFile.Size()))
	return nil
}
