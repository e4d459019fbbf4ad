package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// prompt is one request's prompt: token ids, or text for chat.
type prompt struct {
	ids  []int32
	text string
}

func randomIDs(rng *rand.Rand, n, vocab int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(rng.IntN(vocab))
	}
	return out
}

// repeated is n tokens: unit over and over, the last copy cut short.
func repeated(unit []int32, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = unit[i%len(unit)]
	}
	return out
}

// recordWords are the keys and values of the repetitive chat workload's
// JSON records.
var recordWords = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima
	mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu
	amber birch cedar dune ember fern glacier harbor island jasper lagoon meadow`)

// repetitiveChat is a chat prompt that asks a model to quote back a JSON
// record (about unitLen tokens) that it shows copies times.
func repetitiveChat(rng *rand.Rand, unitLen, copies int) string {
	var rec strings.Builder
	rec.WriteString("{\n")
	fields := max(2, unitLen/8)
	for i := range fields {
		sep := ","
		if i == fields-1 {
			sep = ""
		}
		fmt.Fprintf(&rec, "  \"%s_%d\": {\"name\": \"%s\", \"id\": %d}%s\n",
			recordWords[rng.IntN(len(recordWords))], i, recordWords[rng.IntN(len(recordWords))], rng.IntN(10000), sep)
	}
	rec.WriteString("}")
	var b strings.Builder
	fmt.Fprintf(&b, "Here is the same JSON record %d times.\n", copies)
	for range copies {
		fmt.Fprintf(&b, "\n```json\n%s\n```\n", rec.String())
	}
	b.WriteString("\nWrite the record out again, exactly as above, as many times as you can.")
	return b.String()
}

// prompts draws the prompts of level li.
func (c *serveClient) prompts(ctx context.Context, li uint64, conc, vocab int) ([]prompt, error) {
	o := c.o
	rng := rand.New(rand.NewPCG(o.Seed, li))
	var ids [][]int32
	if o.Workload == WorkloadSharedPrefix {
		for g := 0; g < o.Groups; g++ {
			prefix := randomIDs(rng, o.PrefixLen, vocab)
			for q := 0; q < o.Questions; q++ {
				ids = append(ids, append(slices.Clip(prefix), randomIDs(rng, o.InputLen, vocab)...))
			}
		}
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		if o.Requests > 0 && o.Requests < len(ids) {
			ids = ids[:o.Requests]
		}
	} else if o.Workload == WorkloadRepetitive {
		n := o.Requests
		if n == 0 {
			n = max(4*conc, 8)
		}
		unitLen := min(o.RepeatLen, o.InputLen)
		if o.Chat {
			out := make([]prompt, n)
			for i := range out {
				out[i] = prompt{text: repetitiveChat(rng, unitLen, max(2, o.InputLen/unitLen))}
			}
			return out, nil
		}
		for range n {
			ids = append(ids, repeated(randomIDs(rng, unitLen, vocab), o.InputLen))
		}
	} else {
		n := o.Requests
		if n == 0 {
			n = max(4*conc, 8)
		}
		for range n {
			ids = append(ids, randomIDs(rng, o.InputLen, vocab))
		}
	}
	out := make([]prompt, len(ids))
	for i, p := range ids {
		var err error
		if out[i], err = c.prompt(ctx, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// prompt turns token ids into a request prompt: as they are for
// completions, as the server's detokenized text for chat.
func (c *serveClient) prompt(ctx context.Context, ids []int32) (prompt, error) {
	if !c.o.Chat {
		return prompt{ids: ids}, nil
	}
	var out struct {
		Prompt  *string `json:"prompt"`  // sluice, vLLM
		Content *string `json:"content"` // llama-server
	}
	if err := c.getJSON(ctx, http.MethodPost, "/detokenize", map[string]any{"model": c.model, "tokens": ids}, &out); err != nil {
		return prompt{}, fmt.Errorf("bench: building chat prompts with /detokenize: %w", err)
	}
	switch {
	case out.Prompt != nil:
		return prompt{text: *out.Prompt}, nil
	case out.Content != nil:
		return prompt{text: *out.Content}, nil
	}
	return prompt{}, errors.New("bench: /detokenize answered neither prompt nor content")
}

// getJSON sends a request with an optional JSON body and decodes the JSON
// answer into out.
func (c *serveClient) getJSON(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.o.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

// discoverModel finds the model to ask for, its vocabulary size and
// context length (0 when the server does not say).
func discoverModel(ctx context.Context, o *ServeOptions) (name string, vocab, ctxLen int, err error) {
	var list struct {
		Data []struct {
			ID          string `json:"id"`
			VocabSize   int    `json:"vocab_size"`
			MaxModelLen int    `json:"max_model_len"`
			Meta        struct {
				NVocab int `json:"n_vocab"`
			} `json:"meta"`
		} `json:"data"`
	}
	c := &serveClient{o: o}
	if err := c.getJSON(ctx, http.MethodGet, "/v1/models", nil, &list); err != nil {
		return "", 0, 0, fmt.Errorf("bench: listing the models: %w", err)
	}
	if len(list.Data) == 0 {
		return "", 0, 0, fmt.Errorf("bench: %s serves no model", o.URL)
	}
	ids := make([]string, len(list.Data))
	for i, m := range list.Data {
		ids[i] = m.ID
		if o.Model == "" || m.ID == o.Model {
			return m.ID, max(m.VocabSize, m.Meta.NVocab), m.MaxModelLen, nil
		}
	}
	return "", 0, 0, fmt.Errorf("bench: %s does not serve %q (it serves %s)", o.URL, o.Model, strings.Join(ids, ", "))
}

// specCounts are the speculative decoding counters of vLLM's metrics.
type specCounts struct {
	drafts, draftTokens, accepted uint64
}

// The counters' names in the Prometheus text format, as vLLM and sluice
// export them.
const (
	metricSpecDrafts      = "vllm:spec_decode_num_drafts_total"
	metricSpecDraftTokens = "vllm:spec_decode_num_draft_tokens_total"
	metricSpecAccepted    = "vllm:spec_decode_num_accepted_tokens_total"
)

// specCounters reads the speculative decoding counters of the model from
// the server's /metrics; ok is false when the server has no /metrics or
// exports none of them.
func (c *serveClient) specCounters(ctx context.Context) (n specCounts, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.o.URL+"/metrics", nil)
	if err != nil {
		return n, false
	}
	resp, err := c.o.Client.Do(req)
	if err != nil {
		return n, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return n, false
	}
	return parseSpecCounters(io.LimitReader(resp.Body, 64<<20), c.model)
}

// parseSpecCounters sums the speculative decoding counters of the
// Prometheus text exposition in r whose model_name label is model (or
// that have no such label).
func parseSpecCounters(r io.Reader, model string) (n specCounts, ok bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ \t")
		if end < 0 {
			continue
		}
		var dst *uint64
		switch line[:end] {
		case metricSpecDrafts:
			dst = &n.drafts
		case metricSpecDraftTokens:
			dst = &n.draftTokens
		case metricSpecAccepted:
			dst = &n.accepted
		default:
			continue
		}
		rest := line[end:]
		if strings.HasPrefix(rest, "{") {
			rb := strings.LastIndexByte(rest, '}')
			if rb < 0 {
				continue
			}
			if name, found := labelValue(rest[1:rb], "model_name"); found && name != model {
				continue
			}
			rest = rest[rb+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		*dst += uint64(math.Round(v))
		ok = true
	}
	return n, ok
}

// labelValue finds a label's value in a Prometheus label set
// (name="value",...; values escape \\, \" and \n).
func labelValue(set, name string) (string, bool) {
	for set != "" {
		set = strings.TrimLeft(set, " ,")
		eq := strings.IndexByte(set, '=')
		if eq < 0 {
			return "", false
		}
		key := strings.TrimSpace(set[:eq])
		set = strings.TrimLeft(set[eq+1:], " ")
		if !strings.HasPrefix(set, `"`) {
			return "", false
		}
		var val strings.Builder
		i := 1
		for ; i < len(set) && set[i] != '"'; i++ {
			if set[i] == '\\' && i+1 < len(set) {
				i++
				if set[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(set[i])
		}
		if key == name {
			return val.String(), true
		}
		set = set[min(i+1, len(set)):]
	}
	return "", false
}

// setSpec sets the level's speculative decoding numbers from the counters
// before and after it (a counter that went down, a server restarted,
// counts from zero).
func (l *ServeLevel) setSpec(before, after specCounts) {
	diff := func(a, b uint64) uint64 {
		if b < a {
			return b
		}
		return b - a
	}
	l.SpecDrafts = diff(before.drafts, after.drafts)
	l.SpecDraftTokens = diff(before.draftTokens, after.draftTokens)
	l.SpecAcceptedTokens = diff(before.accepted, after.accepted)
	if l.SpecDraftTokens > 0 {
		l.SpecAcceptanceRate = float64(l.SpecAcceptedTokens) / float64(l.SpecDraftTokens)
	}
}

// result is one request's measurements.
type result struct {
	err                  error
	ttft, e2e            time.Duration
	prompt, out, cached  int
	usageSeen, firstSeen bool
}

// level runs prompts with conc requests in flight.
func (c *serveClient) level(ctx context.Context, conc int, prompts []prompt) (ServeLevel, error) {
	results := make([]result, len(prompts))
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(conc, len(prompts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = c.do(ctx, prompts[i], c.o.OutputLen)
			}
		}()
	}
feed:
	for i := range prompts {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	dur := time.Since(start)
	if err := ctx.Err(); err != nil {
		return ServeLevel{}, err
	}
	return summarize(conc, results, dur, c.o.OutputLen)
}

func summarize(conc int, results []result, dur time.Duration, outputLen int) (ServeLevel, error) {
	lv := ServeLevel{Concurrency: conc, Requests: len(results), Duration: dur.Seconds()}
	var ttft, tpot, e2e []float64
	seen := map[string]bool{}
	for _, r := range results {
		if r.err != nil {
			lv.Failed++
			if msg := r.err.Error(); !seen[msg] && len(lv.Errors) < maxErrors {
				seen[msg] = true
				lv.Errors = append(lv.Errors, msg)
			}
			continue
		}
		lv.Completed++
		lv.InputTokens += r.prompt
		lv.OutputTokens += r.out
		lv.CachedTokens += r.cached
		if r.out != outputLen {
			lv.ShortOutputs++
		}
		ttft = append(ttft, ms(r.ttft))
		e2e = append(e2e, ms(r.e2e))
		if r.out > 1 {
			tpot = append(tpot, ms(r.e2e-r.ttft)/float64(r.out-1))
		}
	}
	if lv.Completed == 0 {
		return lv, fmt.Errorf("bench: every request at concurrency %d failed: %s", conc, strings.Join(lv.Errors, "; "))
	}
	if s := dur.Seconds(); s > 0 {
		lv.RequestThroughput = float64(lv.Completed) / s
		lv.OutputThroughput = float64(lv.OutputTokens) / s
		lv.TotalThroughput = float64(lv.InputTokens+lv.OutputTokens) / s
	}
	lv.TTFT, lv.TPOT, lv.E2E = summary(ttft), summary(tpot), summary(e2e)
	return lv, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summary is the mean and percentiles of xs (linear interpolation between
// closest ranks, as numpy.percentile).
func summary(xs []float64) Latency {
	if len(xs) == 0 {
		return Latency{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Latency{Mean: sum / float64(len(s)), P50: percentile(s, 50), P90: percentile(s, 90), P99: percentile(s, 99)}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(lo)
	return sorted[lo] + f*(sorted[lo+1]-sorted[lo])
}

// streamChunk is the part of a streamed completion or chat chunk the
// benchmark reads.
type streamChunk struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// do sends one streaming request and times it.
func (c *serveClient) do(ctx context.Context, p prompt, maxTokens int) (r result) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	body := map[string]any{
		"model": c.model, "max_tokens": maxTokens, "ignore_eos": true, "temperature": c.o.Temperature,
		"stream": true, "stream_options": map[string]any{"include_usage": true},
	}
	if c.o.NoSpeculation {
		body["speculative"] = false
	}
	path := "/v1/completions"
	if c.o.Chat {
		path = "/v1/chat/completions"
		body["messages"] = []map[string]string{{"role": "user", "content": p.text}}
	} else {
		body["prompt"] = p.ids
	}
	b, err := json.Marshal(body)
	if err != nil {
		return result{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.o.URL+path, bytes.NewReader(b))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := c.o.Client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return result{err: fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	chunks := 0
	done := false
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			done = true
			break
		}
		var ch streamChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return result{err: fmt.Errorf("undecodable chunk %.200q: %v", data, err)}
		}
		if ch.Error != nil {
			return result{err: fmt.Errorf("error in the stream: %s", ch.Error.Message)}
		}
		for _, c := range ch.Choices {
			if c.Text == "" && c.Delta.Content == "" {
				continue
			}
			chunks++
			if !r.firstSeen {
				r.firstSeen, r.ttft = true, time.Since(start)
			}
		}
		if u := ch.Usage; u != nil && (u.CompletionTokens > 0 || u.PromptTokens > 0) {
			r.usageSeen = true
			r.prompt, r.out = u.PromptTokens, u.CompletionTokens
			if u.PromptTokensDetails != nil {
				r.cached = u.PromptTokensDetails.CachedTokens
			}
		}
	}
	r.e2e = time.Since(start)
	if err := sc.Err(); err != nil {
		return result{err: err}
	}
	if !done {
		return result{err: errors.New("the stream ended without [DONE]")}
	}
	if !r.usageSeen {
		// A server that sends no usage: count the chunks with text.
		r.out = chunks
		r.prompt = len(p.ids)
	}
	if !r.firstSeen {
		r.ttft = r.e2e
	}
	return r
}

// WriteMarkdown writes one table row per concurrency level.
func (r *ServeResult) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	desc := fmt.Sprintf("%d in / %d out", r.InputLen, r.OutputLen)
	switch r.Workload {
	case WorkloadSharedPrefix:
		desc = fmt.Sprintf("%d groups × %d questions, %d-token prefix + %d in / %d out", r.Groups, r.Questions, r.PrefixLen, r.InputLen, r.OutputLen)
	case WorkloadRepetitive:
		desc = fmt.Sprintf("%d in (a %d-token unit repeated) / %d out", r.InputLen, r.RepeatLen, r.OutputLen)
	}
	if r.Temperature > 0 {
		desc += fmt.Sprintf(", temperature %g", r.Temperature)
	}
	if r.NoSpeculation {
		desc += `, "speculative": false`
	}
	fmt.Fprintf(bw, "%s %s at %s: %s, %s\n\n", r.Endpoint, r.Model, r.URL, r.Workload, desc)
	header := []string{"conc", "reqs", "failed", "time s", "req/s", "out tok/s", "total tok/s", "cached %",
		"TTFT p50 ms", "TTFT p90 ms", "TTFT p99 ms", "TPOT p50 ms", "TPOT p99 ms", "e2e p50 ms", "e2e p99 ms"}
	// Speculation columns when the server drafted anything.
	spec := false
	for _, l := range r.Levels {
		spec = spec || l.SpecDraftTokens > 0
	}
	if spec {
		header = append(header, "drafted", "accepted", "accept %")
	}
	rows := make([][]string, 0, len(r.Levels))
	f1 := func(x float64) string {
		if x < 10 {
			return fmt.Sprintf("%.2f", x)
		}
		return fmt.Sprintf("%.1f", x)
	}
	for _, l := range r.Levels {
		cached := 0.0
		if l.InputTokens > 0 {
			cached = 100 * float64(l.CachedTokens) / float64(l.InputTokens)
		}
		rows = append(rows, []string{
			fmt.Sprint(l.Concurrency), fmt.Sprint(l.Requests), fmt.Sprint(l.Failed), fmt.Sprintf("%.2f", l.Duration),
			fmt.Sprintf("%.2f", l.RequestThroughput), f1(l.OutputThroughput), f1(l.TotalThroughput), f1(cached),
			f1(l.TTFT.P50), f1(l.TTFT.P90), f1(l.TTFT.P99), f1(l.TPOT.P50), f1(l.TPOT.P99), f1(l.E2E.P50), f1(l.E2E.P99),
		})
		if spec {
			rows[len(rows)-1] = append(rows[len(rows)-1], fmt.Sprint(l.SpecDraftTokens), fmt.Sprint(l.SpecAcceptedTokens), f1(100*l.SpecAcceptanceRate))
		}
	}
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
		for _, row := range rows {
			width[i] = max(width[i], len(row[i]))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			fmt.Fprintf(bw, "| %*s ", width[i], c)
		}
		fmt.Fprintln(bw, "|")
	}
	line(header)
	for i := range header {
		fmt.Fprintf(bw, "| %s: ", strings.Repeat("-", width[i]-1))
	}
	fmt.Fprintln(bw, "|")
	for _, row := range rows {
		line(row)
	}
	for _, l := range r.Levels {
		if l.ShortOutputs > 0 {
			fmt.Fprintf(bw, "\nconcurrency %d: %d requests did not generate exactly %d tokens (does the server honor ignore_eos?)\n", l.Concurrency, l.ShortOutputs, r.OutputLen)
		}
		for _, e := range l.Errors {
			fmt.Fprintf(bw, "\nconcurrency %d: error: %s\n", l.Concurrency, e)
		}
	}
	return bw.Flush()
}

// WriteJSON writes the result as indented JSON.
func (r *ServeResult) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
