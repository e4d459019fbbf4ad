package engine

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/internal/testenv"
)

// The engine benchmarks run on the model in $SLUICE_BENCH_MODEL (default:
// the shared stories260K, for a quick run), for example a dummy model of a
// real shape:
//
//	go run ./cmd/sluice synth --shape smollm2-135m --type q8_0 -o /tmp/smollm2-q8_0.gguf
//	SLUICE_BENCH_MODEL=/tmp/smollm2-q8_0.gguf go test ./engine/ -run '^$' -bench . -benchtime 1x
//
// Sizes come from the environment so that large models can run shorter
// settings: SLUICE_BENCH_TOKENS (output tokens per request, default 64),
// SLUICE_BENCH_PROMPT (prompt tokens in BenchmarkConcurrency, default 32),
// SLUICE_BENCH_PREFIX, SLUICE_BENCH_SUFFIX and SLUICE_BENCH_REQUESTS
// (BenchmarkSharedPrefix: default 1024, 64 and 32), SLUICE_BENCH_BUDGET
// (MaxNumBatchedTokens, default the engine's), SLUICE_BENCH_THREADS
// (default 0: all cores).

func benchEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

func benchModel(b *testing.B) string {
	if p := os.Getenv("SLUICE_BENCH_MODEL"); p != "" {
		return p
	}
	return testenv.Shared(b, "models", stories+".gguf")
}

// newBenchEngine builds an engine whose KV pool holds tokens positions
// (plus a margin) and closes it when the benchmark ends.
func newBenchEngine(b *testing.B, cfg Config, tokens int) *Engine {
	b.Helper()
	cfg.ModelPath = benchModel(b)
	cfg.Threads = benchEnv(b, "SLUICE_BENCH_THREADS", 0)
	cfg.MaxNumBatchedTokens = benchEnv(b, "SLUICE_BENCH_BUDGET", 0)
	p, err := Plan(cfg)
	if err != nil {
		b.Fatal(err)
	}
	blocks := (tokens+p.BlockSize-1)/p.BlockSize + cfg.MaxNumSeqs + 8
	cfg.KVMemory = int64(blocks) * p.BlockBytes
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// randomPrompt is n token ids drawn from the vocabulary after BOS.
func randomPrompt(rng *rand.Rand, e *Engine, n int) []int32 {
	p := make([]int32, n)
	p[0] = 1
	if bos := e.Tokenizer().BOS(); bos >= 0 {
		p[0] = bos
	}
	vocab := e.Info().VocabSize
	for i := 1; i < n; i++ {
		p[i] = int32(8 + rng.IntN(vocab-8))
	}
	return p
}

// runBurst submits every request at once and waits for all of them,
// returning their final events.
func runBurst(b *testing.B, e *Engine, reqs []*Request) []Event {
	b.Helper()
	streams := make([]*Stream, len(reqs))
	for i, r := range reqs {
		s, err := e.Generate(context.Background(), r)
		if err != nil {
			b.Fatal(err)
		}
		streams[i] = s
	}
	finals := make([]Event, len(reqs))
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, ok := s.Next()
				if !ok {
					return
				}
				if ev.Done {
					finals[i] = ev
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range finals {
		if f.Finish != FinishLength {
			b.Fatalf("request ended with %q (%v)", f.Finish, f.Err)
		}
	}
	return finals
}

// BenchmarkConcurrency measures aggregate generation throughput with 1, 4,
// 16 and 64 requests running at once (short distinct prompts, prefix
// caching off, every request generating SLUICE_BENCH_TOKENS tokens).
// tok/s counts every generated token over the wall time of the burst;
// decode_tok/s counts the tokens after each request's first over the time
// from the first first-token to the last finish.
func BenchmarkConcurrency(b *testing.B) {
	gen := benchEnv(b, "SLUICE_BENCH_TOKENS", 64)
	plen := benchEnv(b, "SLUICE_BENCH_PROMPT", 32)
	for _, n := range []int{1, 4, 16, 64} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			e := newBenchEngine(b, Config{DisablePrefixCache: true, MaxNumSeqs: 64}, n*(plen+gen))
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			burst := func() ([]Event, time.Duration) {
				reqs := make([]*Request, n)
				for i := range reqs {
					reqs[i] = &Request{Prompt: randomPrompt(rng, e, plen), MaxTokens: gen, IgnoreEOS: true}
				}
				t0 := time.Now()
				f := runBurst(b, e, reqs)
				return f, time.Since(t0)
			}
			burst() // warm up: activation buffers, page faults
			st0 := e.Stats()
			var wall, decodeWall time.Duration
			var decoded int
			b.ResetTimer()
			for range b.N {
				finals, d := burst()
				wall += d
				// Every request arrived at t0 (its Timing is from Submit).
				first, last := d, time.Duration(0)
				for _, f := range finals {
					first = min(first, f.Timing.FirstTok)
					last = max(last, f.Timing.Total)
					decoded += f.Usage.CompletionTokens - 1
				}
				decodeWall += last - first
			}
			b.StopTimer()
			st := e.Stats()
			steps := st.Steps - st0.Steps
			b.ReportMetric(float64(n*gen*b.N)/wall.Seconds(), "tok/s")
			b.ReportMetric(float64(decoded)/decodeWall.Seconds(), "decode_tok/s")
			b.ReportMetric(float64((st.StepTimeTotal-st0.StepTimeTotal).Microseconds())/1e3/float64(steps), "ms/step")
			b.ReportMetric(float64(st.BatchSeqsTotal-st0.BatchSeqsTotal)/float64(steps), "seqs/step")
		})
	}
}

// BenchmarkSharedPrefix runs the shared-prefix workload: 32 requests
// submitted at once, each a 1,024-token common prefix and a 64-token
// unique suffix, generating 64 tokens; with prefix caching on (cache: the
// prefix is new, so the first requests compute it and the rest hit it;
// cache-warm: one earlier request left it in the cache) and off
// (nocache). Each iteration uses a new prefix. Reported: time to first
// token p50 and p99 over all requests, and the wall time of the burst.
func BenchmarkSharedPrefix(b *testing.B) {
	prefix := benchEnv(b, "SLUICE_BENCH_PREFIX", 1024)
	suffix := benchEnv(b, "SLUICE_BENCH_SUFFIX", 64)
	gen := benchEnv(b, "SLUICE_BENCH_TOKENS", 64)
	nreq := benchEnv(b, "SLUICE_BENCH_REQUESTS", 32)
	for _, c := range []struct {
		name        string
		cache, warm bool
	}{{"cache", true, false}, {"cache-warm", true, true}, {"nocache", false, false}} {
		b.Run(c.name, func(b *testing.B) {
			// Room for every request whole, so nothing is preempted.
			e := newBenchEngine(b, Config{DisablePrefixCache: !c.cache, MaxNumSeqs: max(nreq, 64)},
				(nreq+1)*(prefix+suffix+gen))
			rng := rand.New(rand.NewPCG(7, 7))
			vocab := e.Info().VocabSize
			var ttfts []time.Duration
			var total time.Duration
			var cached int
			runBurst(b, e, []*Request{{Prompt: randomPrompt(rng, e, 64), MaxTokens: 4, IgnoreEOS: true}}) // warm up
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				common := randomPrompt(rng, e, prefix)
				reqs := make([]*Request, nreq)
				for i := range reqs {
					p := slices.Clone(common)
					for range suffix {
						p = append(p, int32(8+rng.IntN(vocab-8)))
					}
					reqs[i] = &Request{Prompt: p, MaxTokens: gen, IgnoreEOS: true}
				}
				if c.warm {
					runBurst(b, e, []*Request{{Prompt: append(slices.Clone(common), 9), MaxTokens: 1, IgnoreEOS: true}})
				}
				b.StartTimer()
				t0 := time.Now()
				finals := runBurst(b, e, reqs)
				total += time.Since(t0)
				for _, f := range finals {
					ttfts = append(ttfts, f.Timing.FirstTok)
					cached += f.Usage.CachedTokens
				}
			}
			b.StopTimer()
			slices.Sort(ttfts)
			pct := func(q float64) float64 {
				i := min(int(q*float64(len(ttfts))), len(ttfts)-1)
				return float64(ttfts[i].Microseconds()) / 1e3
			}
			b.ReportMetric(pct(0.50), "ttft_p50_ms")
			b.ReportMetric(pct(0.99), "ttft_p99_ms")
			b.ReportMetric(total.Seconds()/float64(b.N), "total_s")
			b.ReportMetric(float64(cached)/float64(len(ttfts)), "cached_tokens/req")
			st := e.Stats()
			b.ReportMetric(float64(st.StepTimeTotal.Microseconds())/1e3/float64(st.Steps), "ms/step")
		})
	}
}

// BenchmarkSpec measures greedy generation (SLUICE_BENCH_TOKENS tokens
// per request, default here 256, end-of-generation ignored) without
// speculation, with n-gram proposals and with a draft model: the one in
// $SLUICE_BENCH_DRAFT, default the benchmark model itself (an upper bound
// on acceptance). SLUICE_BENCH_SPEC_TOKENS fixes the draft length (default
// 0: adaptive). SLUICE_BENCH_CONC lists the numbers of requests submitted
// at once (default 1, e.g. 1,8,16). SLUICE_BENCH_SPEC_PROMPT picks the
// prompts: story (default, the same short story opening for every
// request) or repetitive (per request, a random SLUICE_BENCH_REPEAT_LEN-
// token unit, default 32, repeated SLUICE_BENCH_REPEATS times, default 4,
// for the model to continue). SLUICE_BENCH_SPEC_METHODS picks the
// variants (default off,ngram,draft); SLUICE_BENCH_SPEC_MAX_BATCH sets
// Config.SpecMaxBatch (default the engine's: speculation stops at 8
// decoding sequences). Reported: tok/s (every generated
// token over the wall time), decode_tok/s (the tokens after each
// request's first over the time from the first first-token to the last
// finish), accept (the draft tokens' acceptance rate) and tok/step
// (generated tokens per forward pass of the target).
//
// On random-weight dummy models the repetitive prompt does not make the
// model quote back: n-gram acceptance there reflects how much the model's
// own greedy output repeats.
func BenchmarkSpec(b *testing.B) {
	gen := benchEnv(b, "SLUICE_BENCH_TOKENS", 256)
	k := benchEnv(b, "SLUICE_BENCH_SPEC_TOKENS", 0)
	maxBatch := benchEnv(b, "SLUICE_BENCH_SPEC_MAX_BATCH", 0)
	unit := max(1, benchEnv(b, "SLUICE_BENCH_REPEAT_LEN", 32))
	copies := max(1, benchEnv(b, "SLUICE_BENCH_REPEATS", 4))
	kind := os.Getenv("SLUICE_BENCH_SPEC_PROMPT")
	if kind != "" && kind != "story" && kind != "repetitive" {
		b.Fatalf("SLUICE_BENCH_SPEC_PROMPT=%q: want story or repetitive", kind)
	}
	concs := []int{1}
	if s := os.Getenv("SLUICE_BENCH_CONC"); s != "" {
		concs = concs[:0]
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("SLUICE_BENCH_CONC=%q: want a list of counts ≥ 1", s)
			}
			concs = append(concs, n)
		}
	}
	methods := []string{"off", SpecNGram, SpecDraft}
	if s := os.Getenv("SLUICE_BENCH_SPEC_METHODS"); s != "" {
		methods = strings.Split(s, ",")
	}
	draft := os.Getenv("SLUICE_BENCH_DRAFT")
	if draft == "" {
		draft = benchModel(b)
	}
	for _, method := range methods {
		if method != "off" && method != SpecNGram && method != SpecDraft {
			b.Fatalf("SLUICE_BENCH_SPEC_METHODS: unknown method %q", method)
		}
		for _, n := range concs {
			name := method
			if len(concs) > 1 || n > 1 {
				name += "/" + strconv.Itoa(n)
			}
			b.Run(name, func(b *testing.B) {
				cfg := Config{MaxNumSeqs: max(4, n), SpecTokens: k, SpecMaxBatch: maxBatch}
				if method != "off" {
					cfg.Spec = method
				}
				if method == SpecDraft {
					cfg.DraftModelPath = draft
				}
				plen := 64
				if kind == "repetitive" {
					plen = unit * copies
				}
				e := newBenchEngine(b, cfg, n*(plen+gen+16))
				story := e.Tokenizer().Encode("Once upon a time, there was a little girl named Lily. She loved to play outside.", true, false)
				rng := rand.New(rand.NewPCG(uint64(n), 3))
				burst := func() ([]Event, time.Duration) {
					reqs := make([]*Request, n)
					for i := range reqs {
						p := story
						if kind == "repetitive" {
							u := randomPrompt(rng, e, unit+1)[1:]
							p = append(p[:0:0], story[0]) // BOS
							for range copies {
								p = append(p, u...)
							}
						}
						reqs[i] = &Request{Prompt: p, MaxTokens: gen, IgnoreEOS: true}
					}
					t0 := time.Now()
					f := runBurst(b, e, reqs)
					return f, time.Since(t0)
				}
				burst() // warm up
				st0 := e.Stats()
				var wall, decodeWall time.Duration
				var decoded int
				b.ResetTimer()
				for range b.N {
					finals, d := burst()
					wall += d
					first, last := d, time.Duration(0)
					for _, f := range finals {
						first = min(first, f.Timing.FirstTok)
						last = max(last, f.Timing.Total)
						decoded += f.Usage.CompletionTokens - 1
					}
					decodeWall += last - first
				}
				b.StopTimer()
				st := e.Stats()
				b.ReportMetric(float64(n*gen*b.N)/wall.Seconds(), "tok/s")
				b.ReportMetric(float64(decoded)/decodeWall.Seconds(), "decode_tok/s")
				b.ReportMetric(float64(n*gen*b.N)/float64(st.Steps-st0.Steps), "tok/step")
				if d := st.SpecDraftTokens - st0.SpecDraftTokens; d > 0 {
					b.ReportMetric(float64(st.SpecAcceptedTokens-st0.SpecAcceptedTokens)/float64(d), "accept")
				}
			})
		}
	}
}
