package engine

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/sample"
)

// specSetup is a target model with a speculation configuration.
type specSetup struct {
	name, target string
	cfg          Config // Spec, DraftModelPath (a model name), SpecTokens
}

func specSetups() []specSetup {
	return []specSetup{
		{name: "stories260K/ngram", target: stories, cfg: Config{Spec: SpecNGram}},
		{name: "stories260K/self-draft", target: stories, cfg: Config{Spec: SpecDraft, DraftModelPath: stories}},
		{name: "stories260K/self-draft/k3", target: stories, cfg: Config{Spec: SpecDraft, DraftModelPath: stories, SpecTokens: 3}},
		{name: "synth-llama-q8_0/ngram/k4", target: "synth-llama-q8_0", cfg: Config{Spec: SpecNGram, SpecTokens: 4}},
		{name: "synth-llama-q8_0/draft-q4_0", target: "synth-llama-q8_0", cfg: Config{Spec: SpecDraft, DraftModelPath: "synth-llama-q4_0"}},
	}
}

// withSpec returns cfg with su's speculation settings, the draft model
// located in ../shared, and no batch limit on speculation.
func (su specSetup) withSpec(t *testing.T, cfg Config) Config {
	t.Helper()
	cfg.Spec, cfg.SpecTokens = su.cfg.Spec, su.cfg.SpecTokens
	if su.cfg.DraftModelPath != "" {
		cfg.DraftModelPath = testenv.Shared(t, "models", su.cfg.DraftModelPath+".gguf")
	}
	if cfg.SpecMaxBatch == 0 {
		cfg.SpecMaxBatch = 64
	}
	return cfg
}

// TestSpecEquivalence: with speculation on, greedy outputs are token for
// token those of plain single-sequence decoding, for every golden prompt
// (and prompts sharing prefixes with them), alone and batched, with prefix
// caching on and off, with chunked prefill and under preemption; drafts
// are verified and accepted, and no block leaks.
func TestSpecEquivalence(t *testing.T) {
	refs := map[string][][]int32{}
	for _, su := range specSetups() {
		t.Run(su.name, func(t *testing.T) {
			prompts := equivPrompts(loadGolden(t, su.target))
			ref := refs[su.target]
			if ref == nil {
				ref = referenceGreedy(t, su.target, prompts, goldenMaxTokens)
				refs[su.target] = ref
			}
			p := planFor(t, su.target, Config{})
			longest := 0
			for _, pr := range prompts {
				longest = max(longest, (len(pr)+goldenMaxTokens+p.BlockSize-1)/p.BlockSize)
			}
			tiny := int64(longest+2) * p.BlockBytes
			cases := []struct {
				name    string
				cfg     Config
				alone   bool
				preempt bool
			}{
				{name: "alone", alone: true},
				{name: "together"},
				{name: "together/nocache", cfg: Config{DisablePrefixCache: true}},
				{name: "chunked", cfg: Config{MaxNumBatchedTokens: 16}},
				{name: "tinypool", cfg: Config{KVMemory: tiny, MaxNumBatchedTokens: 64}, preempt: true},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := newTestEngine(t, su.target, su.withSpec(t, c.cfg))
					for round := range 2 {
						rs := runAll(t, e, prompts, goldenMaxTokens, c.alone)
						for i := range prompts {
							checkGreedy(t, fmt.Sprintf("round %d prompt %d", round, i), prompts[i], ref[i], goldenMaxTokens, rs[i])
						}
					}
					st := e.Stats()
					t.Logf("steps %d, mean batch %.1f tokens / %.1f seqs, preemptions %d, prefix hits %d of %d, %s: %d drafts, %d of %d draft tokens accepted (%.2f)",
						st.Steps, st.MeanBatchTokens(), st.MeanBatchSeqs(), st.Preemptions, st.PrefixHits, st.PrefixQueries,
						st.SpecMethod, st.SpecDrafts, st.SpecAcceptedTokens, st.SpecDraftTokens, st.SpecAcceptanceRate())
					if st.SpecMethod != su.cfg.Spec || st.SpecDrafts == 0 || st.SpecDraftTokens < st.SpecAcceptedTokens {
						t.Errorf("speculation stats: method %q, %d drafts, %d of %d draft tokens accepted",
							st.SpecMethod, st.SpecDrafts, st.SpecAcceptedTokens, st.SpecDraftTokens)
					}
					if c.preempt && st.Preemptions == 0 {
						t.Errorf("no preemptions in a pool of %d bytes", tiny)
					}
					checkPool(t, e)
					checkDraftSlots(t, e)
				})
			}
		})
	}
}

// checkDraftSlots verifies that every draft model slot is free once all
// requests are done.
func checkDraftSlots(t *testing.T, e *Engine) {
	t.Helper()
	if e.draft == nil {
		return
	}
	waitIdle(t, e)
	var free int
	if err := e.inLoop(func() { free = e.draft.Free() }); err != nil {
		t.Fatal(err)
	}
	if want := min(e.cfg.MaxNumSeqs, e.cfg.SpecMaxBatch); free != want {
		t.Errorf("%d of %d draft slots free after all requests finished", free, want)
	}
}

// TestSpecPrefixCache: blocks are committed to the prefix cache for
// confirmed tokens only, never for drafts, so a request continuing a
// finished one's prompt and output hits exactly what it would without
// speculation, and the cache holds no more blocks.
func TestSpecPrefixCache(t *testing.T) {
	prompt := longPrompt(t)
	run := func(cfg Config) (first, second result, cachedBlocks int) {
		e := newTestEngine(t, stories, cfg)
		first = collect(t, submit(t, e, &Request{Prompt: prompt, MaxTokens: 60, IgnoreEOS: true}))
		waitIdle(t, e)
		cachedBlocks = e.Stats().KVCachedBlocks
		next := append(slices.Clone(prompt), first.tokens...)
		next = append(next, 300, 301)
		second = collect(t, submit(t, e, &Request{Prompt: next, MaxTokens: 4}))
		checkPool(t, e)
		checkDraftSlots(t, e)
		return first, second, cachedBlocks
	}
	su := specSetup{cfg: Config{Spec: SpecDraft, DraftModelPath: stories, SpecTokens: 5}}
	f0, s0, c0 := run(Config{})
	f1, s1, c1 := run(su.withSpec(t, Config{}))
	if !slices.Equal(f0.tokens, f1.tokens) {
		t.Fatalf("outputs differ with speculation:\n%v\n%v", f1.tokens, f0.tokens)
	}
	bs := planFor(t, stories, Config{}).BlockSize
	confirmed := len(prompt) + len(f1.tokens) - 1 // positions with KV
	if c1 != c0 || c1 > confirmed/bs {
		t.Errorf("cached blocks after the first request: %d with speculation, %d without, %d full blocks of confirmed tokens", c1, c0, confirmed/bs)
	}
	if h0, h1 := s0.final.Usage.CachedTokens, s1.final.Usage.CachedTokens; h1 != h0 || h1 > confirmed || h1 != confirmed/bs*bs {
		t.Errorf("second request hit %d tokens with speculation, %d without; the first confirmed %d", h1, h0, confirmed)
	}
}

// TestSpecVocabMismatch: a draft model whose vocabulary differs from the
// target's in one token string is refused by New.
func TestSpecVocabMismatch(t *testing.T) {
	src, err := gguf.Open(testModel(t, stories))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	toks, ok := src.Strings("tokenizer.ggml.tokens")
	if !ok {
		t.Fatal("no tokenizer.ggml.tokens")
	}
	const changed = 300
	w := gguf.NewWriter()
	for _, kv := range src.KVs {
		v := any(kv.Value)
		if kv.Key == "tokenizer.ggml.tokens" {
			toks = slices.Clone(toks)
			toks[changed] = "<changed>"
			v = toks
		}
		if err := w.Set(kv.Key, v); err != nil {
			t.Fatal(err)
		}
	}
	for i := range src.Tensors {
		ti := &src.Tensors[i]
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, src.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "draft.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ModelPath: testModel(t, stories), Threads: 1, Spec: SpecDraft, DraftModelPath: path}
	e, err := New(cfg)
	if err == nil {
		e.Close()
		t.Fatal("New accepted a draft model with a different vocabulary")
	}
	if msg := err.Error(); !strings.Contains(msg, "vocabulary") || !strings.Contains(msg, fmt.Sprint(changed)) {
		t.Errorf("error %q does not name the vocabulary mismatch at id %d", msg, changed)
	}
	// Other configurations New refuses.
	for _, bad := range []Config{{Spec: "medusa"}, {Spec: SpecDraft}, {Spec: SpecNGram, SpecTokens: -1}} {
		bad.ModelPath = cfg.ModelPath
		if e, err := New(bad); err == nil {
			e.Close()
			t.Errorf("New accepted %+v", bad)
		}
	}
}

// TestSpecOptOut: Request.NoSpeculation decodes without drafts, and
// SpecMaxBatch turns speculation off for batches that large.
func TestSpecOptOut(t *testing.T) {
	gs := loadGolden(t, stories)
	su := specSetup{cfg: Config{Spec: SpecDraft, DraftModelPath: stories}}
	e := newTestEngine(t, stories, su.withSpec(t, Config{}))
	prompts := promptsOf(gs)
	ref := referenceGreedy(t, stories, prompts, goldenMaxTokens)
	for i, p := range prompts {
		r := collect(t, submit(t, e, &Request{Prompt: p, MaxTokens: goldenMaxTokens, NoSpeculation: true}))
		checkGreedy(t, fmt.Sprintf("prompt %d", i), p, ref[i], goldenMaxTokens, r)
	}
	if st := e.Stats(); st.SpecDrafts != 0 || st.SpecDraftTokens != 0 || st.SpecAcceptedTokens != 0 {
		t.Errorf("requests opting out drafted: %+v", st)
	}
	checkDraftSlots(t, e)

	e = newTestEngine(t, stories, Config{Spec: SpecNGram, SpecMaxBatch: 1})
	rs := runAll(t, e, prompts, goldenMaxTokens, false)
	for i := range prompts {
		checkGreedy(t, fmt.Sprintf("max batch 1, prompt %d", i), prompts[i], ref[i], goldenMaxTokens, rs[i])
	}
	if st := e.Stats(); st.SpecDrafts != 0 {
		t.Errorf("SpecMaxBatch 1: %d drafts", st.SpecDrafts)
	}
}

// TestSpecStats: drafting stories260K with itself is accepted nearly
// always, and the counters say so.
func TestSpecStats(t *testing.T) {
	su := specSetup{cfg: Config{Spec: SpecDraft, DraftModelPath: stories}}
	e := newTestEngine(t, stories, su.withSpec(t, Config{}))
	prompt := longPrompt(t)
	r := collect(t, submit(t, e, &Request{Prompt: prompt, MaxTokens: 100, IgnoreEOS: true}))
	if len(r.tokens) != 100 || r.events != 100 {
		t.Errorf("%d tokens in %d events, want 100 in 100 (the last one final)", len(r.tokens), r.events)
	}
	st := e.Stats()
	t.Logf("%d steps, %d drafts, %d of %d accepted", st.Steps, st.SpecDrafts, st.SpecAcceptedTokens, st.SpecDraftTokens)
	if st.SpecDraftTokens < st.SpecAcceptedTokens || st.SpecAcceptedTokens == 0 || st.SpecAcceptanceRate() < 0.5 {
		t.Errorf("self-drafting: %d of %d draft tokens accepted", st.SpecAcceptedTokens, st.SpecDraftTokens)
	}
	if st.GenerationTokens != 100 || st.Steps >= 100 {
		t.Errorf("%d tokens generated in %d steps", st.GenerationTokens, st.Steps)
	}
}

// TestSpecStops: stop strings, stop tokens and max_tokens cut an accepted
// run where they trigger, with the same tokens, text and finish reason as
// without speculation.
func TestSpecStops(t *testing.T) {
	gs := loadGolden(t, stories)
	prompt := gs[0].PromptTokens
	plain := newTestEngine(t, stories, Config{})
	full := collect(t, submit(t, plain, greedy(prompt, 40)))
	words := strings.Fields(full.text[len(full.text)/2:])
	stopStr := " " + words[1]
	reqs := map[string]func() *Request{}
	for _, n := range []int{1, 2, 7, 23} {
		reqs[fmt.Sprintf("max_tokens %d", n)] = func() *Request { return greedy(prompt, n) }
	}
	reqs["stop string"] = func() *Request {
		sp := sample.DefaultParams()
		sp.Temperature = 0
		sp.Stop = []string{stopStr}
		return &Request{Prompt: prompt, MaxTokens: 40, Sampling: sp}
	}
	reqs["stop token"] = func() *Request {
		sp := sample.DefaultParams()
		sp.Temperature = 0
		sp.StopTokens = []int32{full.tokens[9]}
		return &Request{Prompt: prompt, MaxTokens: 40, Sampling: sp}
	}
	reqs["logprobs"] = func() *Request {
		sp := sample.DefaultParams()
		sp.Temperature = 0
		sp.Logprobs, sp.TopLogprobs = true, 3
		return &Request{Prompt: prompt, MaxTokens: 30, Sampling: sp}
	}
	for _, su := range specSetups()[:3] {
		e := newTestEngine(t, stories, su.withSpec(t, Config{}))
		for name, req := range reqs {
			want := collectEvents(t, submit(t, plain, req()))
			got := collectEvents(t, submit(t, e, req()))
			if len(got) != len(want) {
				t.Errorf("%s, %s: %d events, want %d", su.name, name, len(got), len(want))
				continue
			}
			for i := range got {
				g, w := got[i], want[i]
				g.Elapsed, w.Elapsed, g.Timing, w.Timing = 0, 0, Timing{}, Timing{}
				if fmt.Sprint(g) != fmt.Sprint(w) {
					t.Errorf("%s, %s: event %d\n got %+v\nwant %+v", su.name, name, i, g, w)
					break
				}
			}
		}
		if st := e.Stats(); su.cfg.Spec == SpecDraft && st.SpecAcceptedTokens == 0 {
			t.Errorf("%s: nothing accepted", su.name)
		}
		checkPool(t, e)
		checkDraftSlots(t, e)
	}
}

func collectEvents(t *testing.T, s *Stream) []Event {
	t.Helper()
	var evs []Event
	for {
		ev, ok := s.Next()
		if !ok {
			return evs
		}
		evs = append(evs, ev)
	}
}

// TestSpecSeededSampling: sampled requests with speculation complete and
// are reproducible for a seed, alone or next to other requests (token for
// token); other seeds give other outputs.
func TestSpecSeededSampling(t *testing.T) {
	gs := loadGolden(t, stories)
	sp := sample.DefaultParams()
	sp.Temperature = 0.9
	sp.TopK = 40
	sp.RepetitionPenalty = 1.1
	sp.Logprobs, sp.TopLogprobs = true, 3
	req := func(p []int32, seed uint64) *Request {
		sp := sp
		sp.Seed, sp.HasSeed = seed, true
		return &Request{Prompt: p, MaxTokens: 40, Sampling: sp, IgnoreEOS: true}
	}
	for _, su := range specSetups()[:3] {
		e := newTestEngine(t, stories, su.withSpec(t, Config{}))
		a := collect(t, submit(t, e, req(gs[0].PromptTokens, 42)))
		b := collect(t, submit(t, e, req(gs[0].PromptTokens, 42)))
		if !slices.Equal(a.tokens, b.tokens) || a.text != b.text {
			t.Errorf("%s: seed 42 twice: %v vs %v", su.name, a.tokens, b.tokens)
		}
		if len(a.tokens) != 40 || a.final.Finish != FinishLength || a.events != 40 {
			t.Errorf("%s: %d tokens, %d events, finish %q", su.name, len(a.tokens), a.events, a.final.Finish)
		}
		solo := []result{collect(t, submit(t, e, req(gs[1].PromptTokens, 7))), a, collect(t, submit(t, e, req(gs[2].PromptTokens, 9)))}
		streams := []*Stream{
			submit(t, e, req(gs[1].PromptTokens, 7)),
			submit(t, e, req(gs[0].PromptTokens, 42)),
			submit(t, e, req(gs[2].PromptTokens, 9)),
			submit(t, e, req(gs[0].PromptTokens, 43)),
			submit(t, e, req(gs[0].PromptTokens, 44)),
		}
		rs := collectAll(t, streams)
		for i, r := range rs {
			if len(r.tokens) != 40 || r.final.Finish != FinishLength {
				t.Errorf("%s: %d tokens, finish %q", su.name, len(r.tokens), r.final.Finish)
			}
			if i < len(solo) && (!slices.Equal(r.tokens, solo[i].tokens) || r.text != solo[i].text) {
				t.Errorf("%s: request %d batched:\n got %v\nwant %v (alone)", su.name, i, r.tokens, solo[i].tokens)
			}
		}
		if slices.Equal(rs[1].tokens, rs[3].tokens) || slices.Equal(rs[1].tokens, rs[4].tokens) || slices.Equal(rs[3].tokens, rs[4].tokens) {
			t.Errorf("%s: seeds 42, 43, 44 gave equal outputs", su.name)
		}
		st := e.Stats()
		t.Logf("%s: %d of %d draft tokens accepted", su.name, st.SpecAcceptedTokens, st.SpecDraftTokens)
		if st.SpecDrafts == 0 {
			t.Errorf("%s: no drafts verified", su.name)
		}
		checkPool(t, e)
		checkDraftSlots(t, e)
	}
}

// sampleTokens runs n requests of prompt with params (seeds first,
// first+1, ...) on e, 32 at a time, and counts the tokens each output has
// at positions 1..maxTokens-1 (the speculated ones): counts[i-1][token].
func sampleTokens(t *testing.T, e *Engine, prompt []int32, params sample.Params, maxTokens, n int, first uint64) []map[int32]int {
	t.Helper()
	counts := make([]map[int32]int, maxTokens-1)
	for i := range counts {
		counts[i] = map[int32]int{}
	}
	for done := 0; done < n; {
		var streams []*Stream
		for ; done < n && len(streams) < 32; done++ {
			sp := params
			sp.Seed, sp.HasSeed = first+uint64(done), true
			streams = append(streams, submit(t, e, &Request{Prompt: prompt, MaxTokens: maxTokens, Sampling: sp, IgnoreEOS: true}))
		}
		for _, r := range collectAll(t, streams) {
			if len(r.tokens) != maxTokens {
				t.Fatalf("%d tokens, want %d", len(r.tokens), maxTokens)
			}
			for i, tok := range r.tokens[1:] {
				counts[i][tok]++
			}
		}
	}
	return counts
}

// homogeneity is the two-sample chi-square statistic of counts a and b
// (equal totals), cells with fewer than 10 observations together pooled
// into one, and its degrees of freedom.
func homogeneity(a, b map[int32]int) (stat float64, df int) {
	var smallA, smallB int
	cells := 0
	add := func(x, y int) {
		stat += float64((x-y)*(x-y)) / float64(x+y)
		cells++
	}
	seen := map[int32]bool{}
	for _, m := range []map[int32]int{a, b} {
		for tok := range m {
			if seen[tok] {
				continue
			}
			seen[tok] = true
			if x, y := a[tok], b[tok]; x+y < 10 {
				smallA, smallB = smallA+x, smallB+y
			} else {
				add(x, y)
			}
		}
	}
	if smallA+smallB > 0 {
		add(smallA, smallB)
	}
	return stat, cells - 1
}

// chi2Survival is P(X ≥ x) for X chi-square with df degrees of freedom:
// the regularised upper incomplete gamma function Q(df/2, x/2).
func chi2Survival(x float64, df int) float64 {
	a, z := float64(df)/2, x/2
	if z <= 0 {
		return 1
	}
	lg, _ := math.Lgamma(a)
	if z < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000 && math.Abs(term) > math.Abs(sum)*1e-15; n++ {
			term *= z / (a + float64(n))
			sum += term
		}
		return 1 - sum*math.Exp(-z+a*math.Log(z)-lg)
	}
	// Lentz's continued fraction for Q.
	const tiny = 1e-300
	b := z + 1 - a
	c, d := 1/tiny, 1/b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return math.Exp(-z+a*math.Log(z)-lg) * h
}

// TestSpecSampledDistribution: speculative sampling through the engine
// draws the same distribution as plain sampling. The draft (stories260K
// itself) samples without the request's repetition penalty, so its
// distribution q differs from the target's p: a verification that lost q
// would emit the draft's bias. Each speculated position's token counts
// over 2,000 seeded requests are compared with plain sampling's by a
// chi-square test at p = 1e-6 (the seeds are fixed: the outcome is
// deterministic). Without the penalty q = p, and nearly every draft token
// must be accepted; verifying the drafts as point masses would accept
// only Σp² of them.
func TestSpecSampledDistribution(t *testing.T) {
	if testing.Short() {
		t.Skip("4,000 sampled requests")
	}
	gs := loadGolden(t, stories)
	prompt := gs[0].PromptTokens
	const n, maxTokens = 2000, 4
	sp := sample.DefaultParams()
	sp.Temperature = 1
	sp.TopK = 8
	sp.RepetitionPenalty = 1.8
	sp.PenaltyLastN = sample.WholeContext
	su := specSetup{cfg: Config{Spec: SpecDraft, DraftModelPath: stories, SpecTokens: 2}}
	spe := newTestEngine(t, stories, su.withSpec(t, Config{}))
	plain := newTestEngine(t, stories, Config{})
	want := sampleTokens(t, plain, prompt, sp, maxTokens, n, 1)
	got := sampleTokens(t, spe, prompt, sp, maxTokens, n, n+1)
	st := spe.Stats()
	if st.SpecDraftTokens < 2*n {
		t.Fatalf("%d draft tokens verified over %d requests", st.SpecDraftTokens, n)
	}
	for i := range got {
		stat, df := homogeneity(got[i], want[i])
		pv := chi2Survival(stat, df)
		t.Logf("token %d: chi2 %.1f, df %d, p %.3g", i+2, stat, df, pv)
		if df < 2 || pv < 1e-6 {
			t.Errorf("token %d: speculative and plain sampling differ: chi2 %.1f with %d df (p %.3g)\nspec  %v\nplain %v",
				i+2, stat, df, pv, got[i], want[i])
		}
	}
	t.Logf("with the penalty: %d of %d draft tokens accepted", st.SpecAcceptedTokens, st.SpecDraftTokens)

	sp.RepetitionPenalty = 1
	same := newTestEngine(t, stories, su.withSpec(t, Config{}))
	sampleTokens(t, same, prompt, sp, maxTokens, 500, 1)
	st = same.Stats()
	t.Logf("q = p: %d of %d draft tokens accepted (%.3f)", st.SpecAcceptedTokens, st.SpecDraftTokens, st.SpecAcceptanceRate())
	if st.SpecDraftTokens < 500 || st.SpecAcceptanceRate() < 0.97 {
		t.Errorf("drafting with the target itself: %d of %d draft tokens accepted", st.SpecAcceptedTokens, st.SpecDraftTokens)
	}
}

// TestSpecAbort: speculating requests cancelled mid-generation end with
// FinishAbort, long before their max_tokens, and give their KV blocks and
// draft slots back. The loop runs a counted number of iterations (at most
// 9 tokens each) before the cancellations, then waits until all six
// aborts are queued, so no request can reach its length first.
func TestSpecAbort(t *testing.T) {
	gs := loadGolden(t, stories)
	su := specSetup{cfg: Config{Spec: SpecDraft, DraftModelPath: stories}}
	ticks := make(chan struct{}, 64)
	var entered atomic.Int64
	e := newTestEngineHook(t, stories, su.withSpec(t, Config{}), func() { entered.Add(1); <-ticks })
	const maxTokens, iterations = 200, 12
	var streams []*Stream
	var cancels []context.CancelFunc
	for i := range 6 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		s, err := e.Submit(ctx, &Request{Prompt: gs[i%len(gs)].PromptTokens, MaxTokens: maxTokens, IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	for range iterations {
		ticks <- struct{}{}
	}
	for i, s := range streams {
		for range 3 + i {
			if ev, ok := s.Next(); !ok || ev.Done {
				t.Fatalf("stream %d ended before its cancellation: %+v", i, ev)
			}
		}
	}
	// The loop waits for a tick it will not get before its next intake.
	for entered.Load() <= iterations {
		time.Sleep(time.Millisecond)
	}
	for _, cancel := range cancels {
		cancel()
	}
	for {
		e.mu.Lock()
		n := len(e.aborts)
		e.mu.Unlock()
		if n == len(streams) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(ticks)
	for i, r := range collectAll(t, streams) {
		if r.final.Finish != FinishAbort || r.final.Usage.CompletionTokens > 9*iterations {
			t.Errorf("stream %d: finish %q after %d tokens, want abort within %d", i, r.final.Finish, r.final.Usage.CompletionTokens, 9*iterations)
		}
	}
	if st := e.Stats(); st.Finished[FinishAbort] != uint64(len(streams)) || st.SpecAcceptedTokens == 0 {
		t.Errorf("finished %v, %d draft tokens accepted", st.Finished, st.SpecAcceptedTokens)
	}
	checkPool(t, e)
	checkDraftSlots(t, e)
}
