package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// RunServe is a load generator for OpenAI-compatible servers (sluice serve,
// vLLM, llama.cpp's llama-server): it sends streaming completion (or chat)
// requests at fixed concurrency levels and measures, per request, the time
// to first token (TTFT), the time per output token after the first (TPOT)
// and the end-to-end latency, and per level the request and token
// throughput. It talks HTTP only.
//
// Prompts are token ids drawn at random from the model's vocabulary, so
// their length is exact whatever the tokenizer, and requests set
// ignore_eos so every one generates exactly OutputLen tokens. The
// shared-prefix workload gives Groups groups of Questions prompts each a
// common PrefixLen-token prefix (a system prompt, an agent's context)
// followed by InputLen tokens of their own, to measure prefix caching.
// The repetitive workload makes prompts a model can quote back, the case
// speculative decoding (n-gram proposals above all) is made for: a random
// RepeatLen-token unit repeated up to InputLen tokens, which the model is
// left to continue (with chat, a JSON record written out several times
// and a request to write it out again).
//
// When the server exports vLLM's speculative decoding counters on
// /metrics (sluice serve --spec, vLLM), RunServe reads them before and
// after each level and reports the draft tokens proposed and accepted
// during the level. They count the server's whole traffic, so the level's
// numbers are only its own when nothing else talks to the server.

// Workloads of RunServe.
const (
	WorkloadRandom       = "random"
	WorkloadSharedPrefix = "shared-prefix"
	WorkloadRepetitive   = "repetitive"
)

// ServeOptions configure RunServe. Zero values mean the documented
// defaults.
type ServeOptions struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080 (a trailing
	// /v1 is allowed).
	URL string
	// Model is the model to ask for; "" picks the first one /v1/models
	// lists.
	Model string
	// Chat sends /v1/chat/completions requests (one user message, the
	// random tokens detokenized by the server's /detokenize) instead of
	// /v1/completions with a token-id prompt.
	Chat bool
	// Concurrency lists the levels: each runs its requests with that many
	// in flight at all times (default: 1).
	Concurrency []int
	// Requests per level (default: 4 × concurrency, at least 8; the
	// shared-prefix workload sends Groups × Questions).
	Requests int
	// InputLen is the prompt length in tokens (default 256); with the
	// shared-prefix workload, the length of each question after the
	// prefix. OutputLen is the number of tokens generated (default 128).
	InputLen, OutputLen int
	// Workload is WorkloadRandom (default), WorkloadSharedPrefix or
	// WorkloadRepetitive.
	Workload string
	// RepeatLen is the length in tokens of the unit the repetitive
	// workload repeats (default InputLen/4, so four copies).
	RepeatLen int
	// Temperature is the sampling temperature sent with every request
	// (default 0: greedy).
	Temperature float64
	// NoSpeculation sends "speculative": false with every request, sluice's
	// per-request opt-out of speculative decoding, to compare with and
	// without it on one server.
	NoSpeculation bool
	// Groups, PrefixLen and Questions shape the shared-prefix workload
	// (defaults 8, 1024, 8).
	Groups, PrefixLen, Questions int
	// Vocab bounds the random token ids; 0 reads it from /v1/models
	// (sluice's vocab_size, llama-server's meta.n_vocab).
	Vocab int
	// Seed makes the prompts reproducible; each level draws new ones. 0
	// picks a fresh seed (reported in the result), so that running the
	// benchmark again does not find the last run's prompts in the
	// server's prefix cache.
	Seed uint64
	// Timeout bounds each request (default 10 minutes).
	Timeout time.Duration
	// NoWarmup skips the untimed request sent before the first level.
	NoWarmup bool
	// Client sends the requests (default: a client with enough idle
	// connections for the highest level).
	Client *http.Client
	// Progress, when set, receives one line per level.
	Progress io.Writer
}

// ServeResult is the outcome of RunServe.
type ServeResult struct {
	URL       string `json:"url"`
	Model     string `json:"model"`
	Endpoint  string `json:"endpoint"`
	Workload  string `json:"workload"`
	InputLen  int    `json:"input_len"`
	OutputLen int    `json:"output_len"`
	Groups    int    `json:"groups,omitempty"`
	PrefixLen int    `json:"prefix_len,omitempty"`
	Questions int    `json:"questions,omitempty"`
	RepeatLen int    `json:"repeat_len,omitempty"`
	Vocab     int    `json:"vocab_size"`
	Seed      uint64 `json:"seed"`
	// Temperature is the sampling temperature of the requests (0: greedy);
	// NoSpeculation whether they opted out of speculative decoding.
	Temperature   float64 `json:"temperature"`
	NoSpeculation bool    `json:"no_speculation,omitempty"`
	// SpecMetrics tells whether the server's /metrics exports the
	// speculative decoding counters the levels' Spec fields come from.
	SpecMetrics bool         `json:"spec_metrics"`
	Levels      []ServeLevel `json:"levels"`
}

// ServeLevel is one concurrency level's measurements. Latencies are in
// milliseconds.
type ServeLevel struct {
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Completed   int     `json:"completed"`
	Failed      int     `json:"failed"`
	Duration    float64 `json:"duration_s"`
	// InputTokens and OutputTokens sum the completed requests' usage (as
	// the server reports it, else as sent and as streamed); CachedTokens
	// the prompt tokens the server reports as served from its prefix
	// cache.
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	CachedTokens int `json:"cached_tokens"`
	// ShortOutputs counts completed requests that generated fewer or more
	// tokens than asked (a server ignoring ignore_eos).
	ShortOutputs      int     `json:"short_outputs"`
	RequestThroughput float64 `json:"request_throughput"`     // completed requests/s
	OutputThroughput  float64 `json:"output_throughput"`      // output tokens/s
	TotalThroughput   float64 `json:"total_token_throughput"` // (input + output) tokens/s
	TTFT              Latency `json:"ttft_ms"`
	TPOT              Latency `json:"tpot_ms"`
	E2E               Latency `json:"e2e_ms"`
	// Speculative decoding during the level, from the server's counters
	// (zero when it does not speculate or does not export them):
	// SpecDrafts verifications of a draft, SpecDraftTokens draft tokens
	// proposed and verified, SpecAcceptedTokens those accepted, and
	// SpecAcceptanceRate = SpecAcceptedTokens / SpecDraftTokens.
	SpecDrafts         uint64   `json:"spec_drafts"`
	SpecDraftTokens    uint64   `json:"spec_draft_tokens"`
	SpecAcceptedTokens uint64   `json:"spec_accepted_tokens"`
	SpecAcceptanceRate float64  `json:"spec_acceptance_rate"`
	Errors             []string `json:"errors,omitempty"` // the first distinct ones
	// Runs holds every run's headline figures when bench serve --repeat
	// ran the level more than once (the other fields are the first run's).
	Runs []RunFigures `json:"runs,omitempty"`
}

// Latency summarizes one latency over a level's completed requests, in
// milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
}

// maxErrors is how many distinct error messages a level keeps.
const maxErrors = 5

func (o *ServeOptions) defaults() error {
	if o.URL == "" {
		return errors.New("bench: no server URL")
	}
	o.URL = strings.TrimSuffix(strings.TrimSuffix(o.URL, "/"), "/v1")
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{1}
	}
	for _, c := range o.Concurrency {
		if c < 1 {
			return fmt.Errorf("bench: concurrency %d: must be at least 1", c)
		}
	}
	if o.InputLen == 0 {
		o.InputLen = 256
	}
	if o.OutputLen == 0 {
		o.OutputLen = 128
	}
	if o.Workload == "" {
		o.Workload = WorkloadRandom
	}
	switch o.Workload {
	case WorkloadRandom:
	case WorkloadRepetitive:
		if o.RepeatLen == 0 {
			o.RepeatLen = max(1, o.InputLen/4)
		}
	case WorkloadSharedPrefix:
		if o.Groups == 0 {
			o.Groups = 8
		}
		if o.PrefixLen == 0 {
			o.PrefixLen = 1024
		}
		if o.Questions == 0 {
			o.Questions = 8
		}
	default:
		return fmt.Errorf("bench: unknown workload %q (want %s, %s or %s)", o.Workload, WorkloadRandom, WorkloadSharedPrefix, WorkloadRepetitive)
	}
	if o.InputLen < 1 || o.OutputLen < 1 || o.Requests < 0 || o.Groups < 0 || o.PrefixLen < 0 || o.Questions < 0 || o.Vocab < 0 || o.RepeatLen < 0 {
		return fmt.Errorf("bench: lengths and counts must be positive (input %d, output %d, requests %d, groups %d, prefix %d, questions %d, repeat %d)",
			o.InputLen, o.OutputLen, o.Requests, o.Groups, o.PrefixLen, o.Questions, o.RepeatLen)
	}
	if o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0) {
		return fmt.Errorf("bench: temperature %v: want 0 (greedy) or more", o.Temperature)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	for o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // the server is addressed directly
			MaxIdleConns:        slices.Max(o.Concurrency) + 4,
			MaxIdleConnsPerHost: slices.Max(o.Concurrency) + 4,
			IdleConnTimeout:     time.Minute,
		}}
	}
	return nil
}

// RunServe runs the benchmark. It fails if the server cannot be queried
// or a whole level fails; single failed requests are counted in the level.
func RunServe(ctx context.Context, o ServeOptions) (*ServeResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	model, vocab, ctxLen, err := discoverModel(ctx, &o)
	if err != nil {
		return nil, err
	}
	if o.Vocab > 0 {
		vocab = o.Vocab
	}
	if vocab < 2 {
		return nil, fmt.Errorf("bench: cannot tell the vocabulary size of %s from %s/v1/models; pass it (--vocab)", model, o.URL)
	}
	promptLen := o.InputLen + o.PrefixLen
	if ctxLen > 0 && promptLen+o.OutputLen > ctxLen {
		return nil, fmt.Errorf("bench: %d prompt + %d output tokens do not fit %s's context of %d tokens", promptLen, o.OutputLen, model, ctxLen)
	}
	res := &ServeResult{
		URL: o.URL, Model: model, Endpoint: "/v1/completions", Workload: o.Workload,
		InputLen: o.InputLen, OutputLen: o.OutputLen, Vocab: vocab, Seed: o.Seed,
		Temperature: o.Temperature, NoSpeculation: o.NoSpeculation,
	}
	if o.Workload == WorkloadRepetitive {
		res.RepeatLen = o.RepeatLen
	}
	if o.Chat {
		res.Endpoint = "/v1/chat/completions"
	}
	if o.Workload == WorkloadSharedPrefix {
		res.Groups, res.PrefixLen, res.Questions = o.Groups, o.PrefixLen, o.Questions
	}
	c := &serveClient{o: &o, model: model}
	if !o.NoWarmup {
		rng := rand.New(rand.NewPCG(o.Seed, math.MaxUint64))
		p, err := c.prompt(ctx, randomIDs(rng, min(16, promptLen), vocab))
		if err != nil {
			return nil, err
		}
		if r := c.do(ctx, p, min(4, o.OutputLen)); r.err != nil {
			return nil, fmt.Errorf("bench: warm-up request: %w", r.err)
		}
	}
	// A server without /metrics or without the counters is asked once.
	specBefore, ok := c.specCounters(ctx)
	res.SpecMetrics = ok
	for li, conc := range o.Concurrency {
		prompts, err := c.prompts(ctx, uint64(li), conc, vocab)
		if err != nil {
			return nil, err
		}
		if res.SpecMetrics {
			specBefore, _ = c.specCounters(ctx)
		}
		lv, err := c.level(ctx, conc, prompts)
		if err != nil {
			return nil, err
		}
		if res.SpecMetrics {
			if after, ok := c.specCounters(ctx); ok {
				lv.setSpec(specBefore, after)
			}
		}
		res.Levels = append(res.Levels, lv)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "concurrency %d: %d/%d requests in %.1fs, %.1f output tokens/s\n",
				conc, lv.Completed, lv.Requests, lv.Duration, lv.OutputThroughput)
		}
	}
	return res, nil
}

type serveClient struct {
	o     *ServeOptions
	model string
}
