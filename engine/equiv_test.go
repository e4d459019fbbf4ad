package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/gguf"
)

// equivPrompts are the golden prompts of a model and prompts sharing a
// prefix with them (the long one's first 100 tokens followed by the short
// ones' text, and the long one repeated), so that prefix caching has
// something to hit within one run.
func equivPrompts(gs []golden) [][]int32 {
	prompts := promptsOf(gs)
	long := prompts[0]
	for _, p := range prompts {
		if len(p) > len(long) {
			long = p
		}
	}
	shared := long[:min(100, len(long)-1)]
	for _, p := range prompts[:2] {
		prompts = append(prompts, append(slices.Clone(shared), p[1:]...))
	}
	return append(prompts, slices.Clone(long))
}

// runAll generates greedily for every prompt: one at a time when alone,
// else all submitted at once and read concurrently.
func runAll(t *testing.T, e *Engine, prompts [][]int32, maxTokens int, alone bool) []result {
	t.Helper()
	if alone {
		out := make([]result, len(prompts))
		for i, p := range prompts {
			out[i] = collect(t, submit(t, e, greedy(p, maxTokens)))
		}
		return out
	}
	streams := make([]*Stream, len(prompts))
	for i, p := range prompts {
		streams[i] = submit(t, e, greedy(p, maxTokens))
	}
	return collectAll(t, streams)
}

// TestEquivalence is the engine's greedy equivalence test: for the golden
// prompts (and prompts sharing prefixes with them) the outputs are the
// same token for token whether requests run alone or all together, with
// prefix caching on or off, with prompts prefilled whole or in small
// chunks next to other requests' decodes, and in a pool so small that
// requests are preempted and recomputed. They equal the model's own
// single-sequence generation, which equals llama.cpp's golden
// continuations except after documented near ties (checkNearTie).
func TestEquivalence(t *testing.T) {
	for _, name := range []string{stories, "synth-llama-q8_0"} {
		t.Run(name, func(t *testing.T) {
			gs := loadGolden(t, name)
			prompts := equivPrompts(gs)
			ref := referenceGreedy(t, name, prompts, goldenMaxTokens)
			for i := range gs {
				checkNearTie(t, i, gs[i], ref[i])
			}
			// The pool for preemption: room for the longest request and a
			// little more, far less than all of them together.
			p := planFor(t, name, Config{})
			need, longest := 0, 0
			for _, pr := range prompts {
				n := (len(pr) + goldenMaxTokens + p.BlockSize - 1) / p.BlockSize
				need += n
				longest = max(longest, n)
			}
			tiny := int64(longest+2) * p.BlockBytes
			if longest+2 >= need {
				t.Fatalf("the prompts need %d blocks together; a pool of %d forces no preemption", need, longest+2)
			}
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
				{name: "chunked/nocache", cfg: Config{MaxNumBatchedTokens: 16, DisablePrefixCache: true}},
				{name: "tinypool", cfg: Config{KVMemory: tiny, MaxNumBatchedTokens: 64}, preempt: true},
				{name: "tinypool/nocache", cfg: Config{KVMemory: tiny, MaxNumBatchedTokens: 64, DisablePrefixCache: true}, preempt: true},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := newTestEngine(t, name, c.cfg)
					// Two rounds: the second finds the first's blocks in
					// the prefix cache (when it is on).
					for round := range 2 {
						rs := runAll(t, e, prompts, goldenMaxTokens, c.alone)
						for i := range prompts {
							checkGreedy(t, fmt.Sprintf("round %d prompt %d", round, i), prompts[i], ref[i], goldenMaxTokens, rs[i])
						}
					}
					st := e.Stats()
					t.Logf("steps %d, mean batch %.1f tokens / %.1f seqs, preemptions %d, prefix hits %d of %d",
						st.Steps, st.MeanBatchTokens(), st.MeanBatchSeqs(), st.Preemptions, st.PrefixHits, st.PrefixQueries)
					// With prefix caching off a request still finds its own
					// blocks when it is recomputed after preemption.
					if c.cfg.DisablePrefixCache && !c.preempt && st.PrefixHits != 0 || !c.cfg.DisablePrefixCache && st.PrefixHits == 0 {
						t.Errorf("prefix caching disabled %v, %d hits", c.cfg.DisablePrefixCache, st.PrefixHits)
					}
					if c.preempt != (st.Preemptions > 0) {
						t.Errorf("%d preemptions, want them: %v", st.Preemptions, c.preempt)
					}
					if !c.alone && st.MeanBatchSeqs() <= 1.5 {
						t.Errorf("requests submitted together ran %.2f sequences per step", st.MeanBatchSeqs())
					}
					checkPool(t, e)
				})
			}
		})
	}
}

// TestConcurrentUse hammers one engine from 32 goroutines that generate,
// cancel at random points (before reading, mid-stream, by deadline),
// read through Next or Events, and run into a full queue, in a pool
// small enough to preempt. Every stream ends with exactly one final event
// whose reason fits what happened, completed greedy outputs are exact,
// and afterwards nothing is left: no live request, no queue slot, no
// block. Run it with -race.
func TestConcurrentUse(t *testing.T) {
	gs := loadGolden(t, stories)
	prompts := equivPrompts(gs)
	const maxTok = 24
	ref := referenceGreedy(t, stories, prompts, maxTok)
	p := planFor(t, stories, Config{})
	e := newTestEngine(t, stories, Config{KVMemory: 40 * p.BlockBytes, MaxNumBatchedTokens: 128, MaxQueue: 24, MaxNumSeqs: 8})

	const workers, perWorker = 32, 6
	var (
		mu       sync.Mutex
		accepted int
		counts   = map[string]int{}
	)
	count := func(k string) {
		mu.Lock()
		counts[k]++
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range perWorker {
				i := rng.IntN(len(prompts))
				mode := rng.IntN(5)
				ctx, cancel := context.WithCancel(context.Background())
				if mode == 3 {
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(rng.IntN(20))*time.Millisecond)
				}
				s, err := e.Generate(ctx, greedy(prompts[i], maxTok))
				if err != nil {
					cancel()
					switch {
					case errors.Is(err, ErrOverloaded):
						count("overloaded")
						time.Sleep(time.Millisecond)
					case errors.Is(err, context.DeadlineExceeded):
						count("expired before submit")
					default:
						t.Errorf("Generate: %v", err)
					}
					continue
				}
				mu.Lock()
				accepted++
				mu.Unlock()
				if mode == 0 {
					cancel() // before reading anything
				}
				var tokens []int32
				var final Event
				finals := 0
				cancelAt, cancelledAt := 1+rng.IntN(maxTok), 0
				read := func(ev Event) {
					if ev.HasToken {
						tokens = append(tokens, ev.Token)
					}
					if ev.Done {
						finals++
						final = ev
					}
					if mode == 1 && len(tokens) == cancelAt {
						cancelledAt = len(tokens)
						cancel()
					}
				}
				viaEvents := rng.IntN(2) == 0
				if viaEvents {
					for ev := range s.Events() {
						read(ev)
					}
				} else {
					for {
						ev, ok := s.Next()
						if !ok {
							break
						}
						read(ev)
					}
				}
				cancelled := ctx.Err() != nil
				cancel()
				if finals != 1 {
					t.Errorf("stream ended with %d final events", finals)
					continue
				}
				count(string(final.Finish))
				// Every event reaches a reader of Next; a reader of Events
				// whose context is done may miss token events after that.
				exact := tokens
				if viaEvents && cancelled {
					exact = tokens[:cancelledAt]
				}
				if len(exact) > len(ref[i]) || !slices.Equal(exact, ref[i][:len(exact)]) {
					t.Errorf("prompt %d (mode %d): %v, not a prefix of %v", i, mode, exact, ref[i])
				}
				switch final.Finish {
				case FinishLength, FinishStop:
					if len(exact) == len(tokens) && len(tokens) != len(ref[i]) {
						t.Errorf("prompt %d (mode %d) finished after %d tokens, want %d", i, mode, len(tokens), len(ref[i]))
					}
					if final.Usage.CompletionTokens != len(ref[i]) {
						t.Errorf("usage %+v for %d tokens", final.Usage, len(ref[i]))
					}
				case FinishAbort:
					if !cancelled {
						t.Errorf("prompt %d aborted without a cancellation", i)
					}
				default:
					t.Errorf("prompt %d: final %+v", i, final)
				}
			}
		}()
	}
	// Stats is read concurrently with everything else.
	stop := make(chan struct{})
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			st := e.Stats()
			if st.KVUsage < 0 || st.KVUsage > 1 || st.Running > 8 {
				t.Errorf("stats %+v", st)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	<-statsDone
	t.Logf("%d accepted; outcomes %v", accepted, counts)
	checkPool(t, e)
	st := e.Stats()
	var finished uint64
	for _, n := range st.Finished {
		finished += n
	}
	if finished != uint64(accepted) {
		t.Errorf("%d finished, %d accepted", finished, accepted)
	}
	if n := e.queued.Load(); n != 0 {
		t.Errorf("%d requests still counted as queued", n)
	}
	if counts[string(FinishLength)]+counts[string(FinishStop)] == 0 || counts[string(FinishAbort)] == 0 {
		t.Errorf("outcomes %v: want both completions and aborts", counts)
	}
}

// TestConcurrentClose closes the engine while goroutines keep submitting:
// each Generate either fails with ErrClosed or yields a stream that ends.
func TestConcurrentClose(t *testing.T) {
	gs := loadGolden(t, stories)
	e, err := New(Config{ModelPath: testModel(t, stories), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				s, err := e.Generate(context.Background(), greedy(gs[w%len(gs)].PromptTokens, 16))
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Generate: %v", err)
					}
					mu.Lock()
					outcomes["closed"]++
					mu.Unlock()
					return
				}
				r := collect(t, s)
				mu.Lock()
				outcomes[string(r.final.Finish)]++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	t.Logf("outcomes %v", outcomes)
	if outcomes["closed"] == 0 {
		t.Errorf("no Generate saw the engine closed: %v", outcomes)
	}
}

// TestStepStats checks the step counters on a known workload: one
// request of a 5-token prompt and 10 output tokens runs 10 steps of 5, 1,
// 1, ... tokens.
func TestStepStats(t *testing.T) {
	e := newTestEngine(t, stories, Config{})
	s := submit(t, e, &Request{Prompt: []int32{1, 403, 407, 261, 378}, MaxTokens: 10, IgnoreEOS: true})
	var times []time.Duration
	var final Event
	for {
		ev, ok := s.Next()
		if !ok {
			break
		}
		times = append(times, ev.Elapsed)
		final = ev
	}
	// Per-token times: from arrival to each token, the first one the TTFT.
	if len(times) != 10 || times[0] != final.Timing.FirstTok || !slices.IsSorted(times) || times[9] > final.Timing.Total || times[0] <= 0 {
		t.Errorf("token times %v, timing %+v", times, final.Timing)
	}
	st := e.Stats()
	if st.Steps != 10 || st.BatchTokensTotal != 5+9 || st.BatchSeqsTotal != 10 || st.BatchTokens != 1 || st.BatchSeqs != 1 {
		t.Errorf("steps %d, batch tokens %d (last %d), seqs %d (last %d); want 10 steps of 14 tokens",
			st.Steps, st.BatchTokensTotal, st.BatchTokens, st.BatchSeqsTotal, st.BatchSeqs)
	}
	if st.PromptTokens != 5 || st.GenerationTokens != 10 {
		t.Errorf("prompt tokens %d, generation tokens %d", st.PromptTokens, st.GenerationTokens)
	}
	var n uint64
	for _, c := range st.StepTimeHist {
		n += c
	}
	if n != st.Steps {
		t.Errorf("step histogram counts %d steps of %d: %v", n, st.Steps, st.StepTimeHist)
	}
	if st.StepTime <= 0 || st.StepTimeTotal < st.StepTime || st.ForwardTimeTotal <= 0 || st.ForwardTimeTotal > st.StepTimeTotal {
		t.Errorf("step time %v, total %v, forward %v", st.StepTime, st.StepTimeTotal, st.ForwardTimeTotal)
	}
	if st.MeanStepTime() != st.StepTimeTotal/10 || st.MeanBatchTokens() != 1.4 || st.MeanBatchSeqs() != 1 {
		t.Errorf("means %v %g %g", st.MeanStepTime(), st.MeanBatchTokens(), st.MeanBatchSeqs())
	}
	if st.KVCachedBlocks != 0 {
		t.Errorf("%d cached blocks after a request shorter than a block", st.KVCachedBlocks)
	}
	b := StepTimeBuckets()
	if len(b) != NumStepTimeBuckets || !slices.IsSorted(b) || stepBucket(0) != 0 || stepBucket(b[3]) != 3 ||
		stepBucket(b[3]+1) != 4 || stepBucket(time.Hour) != NumStepTimeBuckets {
		t.Errorf("buckets %v", b)
	}
	b[0] = time.Hour // a copy
	if StepTimeBuckets()[0] == time.Hour {
		t.Errorf("StepTimeBuckets returned its own array")
	}
}

// writeSplit writes the GGUF file at src as two parts the way gguf-split
// lays them out (part 0 carries the metadata, both carry split.no and
// split.count) and returns their paths.
func writeSplit(t *testing.T, src, dir string) []string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	half := len(f.Tensors) / 2
	var paths []string
	for part, ts := range [][]gguf.TensorInfo{f.Tensors[:half], f.Tensors[half:]} {
		w := gguf.NewWriter()
		if part == 0 {
			for _, kv := range f.KVs {
				if err := w.Set(kv.Key, kv.Value); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Set("split.no", uint16(part)); err != nil {
			t.Fatal(err)
		}
		if err := w.Set("split.count", uint16(2)); err != nil {
			t.Fatal(err)
		}
		for i := range ts {
			if err := w.AddTensor(ts[i].Name, ts[i].Type, ts[i].Dims, f.TensorData(&ts[i])); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("tiny-%05d-of-00002.gguf", part+1))
		if err := w.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestSplitModel serves a model split in two parts through
// Config.ModelFiles: same outputs as the whole file.
func TestSplitModel(t *testing.T) {
	gs := loadGolden(t, stories)
	paths := writeSplit(t, testModel(t, stories), t.TempDir())
	e, err := New(Config{ModelFiles: paths, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if info := e.Info(); info.Name != "tiny" || info.Path != paths[0] || info.VocabSize != 512 {
		t.Errorf("info %+v", info)
	}
	if c := e.Config(); c.ModelPath != paths[0] || !slices.Equal(c.ModelFiles, paths) {
		t.Errorf("config paths %q %q", c.ModelPath, c.ModelFiles)
	}
	whole := newTestEngine(t, stories, Config{})
	if e.Info().Fingerprint != whole.Info().Fingerprint {
		t.Errorf("fingerprint of the split model %s, of the whole %s", e.Info().Fingerprint, whole.Info().Fingerprint)
	}
	for i, g := range gs {
		r := collect(t, submit(t, e, greedy(g.PromptTokens, goldenMaxTokens)))
		want := collect(t, submit(t, whole, greedy(g.PromptTokens, goldenMaxTokens)))
		if !slices.Equal(r.tokens, want.tokens) || r.text != want.text {
			t.Errorf("prompt %d: split model %v, whole %v", i, r.tokens, want.tokens)
		}
	}
	p, err := Plan(Config{ModelFiles: paths, KVMemory: 1 << 20})
	if err != nil || p.Arch != "llama" || p.Blocks <= 0 || p.Model != "tiny" {
		t.Errorf("Plan of the split model: %+v, %v", p, err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{ModelPath: paths[0]}, "split"},
		{Config{ModelFiles: paths[:1]}, "split"},
		{Config{ModelFiles: []string{paths[1], paths[0]}}, "split.no"},
		{Config{ModelPath: paths[1], ModelFiles: paths}, "first of ModelFiles"},
		{Config{ModelFiles: []string{paths[0], ""}}, "ModelFiles[1]"},
		{Config{}, "ModelPath"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want an error about %q", c.cfg, err, c.want)
		}
	}
}
