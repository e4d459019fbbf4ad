package server

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/engine"
)

// Histogram buckets, in seconds, as vLLM defines them.
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560}
	tpotBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}
	e2eBuckets  = []float64{0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680}
)

type histogram struct {
	bounds []float64
	counts []uint64 // per bucket (not cumulative); len(bounds)+1
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.counts[i]++
	h.sum += v
	h.n++
}

// modelHistograms are one model's latency histograms, fed from the Timing
// of every final event the server sees.
type modelHistograms struct {
	mu              sync.Mutex
	ttft, tpot, e2e *histogram
	queue, itl      *histogram // vllm:request_queue_time_seconds, vllm:inter_token_latency_seconds
	timeouts        uint64     // requests cut by their deadline
}

func newModelHistograms() *modelHistograms {
	return &modelHistograms{ttft: newHistogram(ttftBuckets), tpot: newHistogram(tpotBuckets), e2e: newHistogram(e2eBuckets),
		queue: newHistogram(e2eBuckets), itl: newHistogram(tpotBuckets)}
}

// observeITL records the time between two consecutive steps of one
// request that produced tokens (tokens of one step, as speculative
// decoding makes, share a time and are one observation).
func (m *modelHistograms) observeITL(d time.Duration) {
	m.mu.Lock()
	m.itl.observe(d.Seconds())
	m.mu.Unlock()
}

func (m *modelHistograms) observe(ev engine.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := ev.Timing
	if ev.Finish == finishTimeout {
		m.timeouts++
	}
	if ev.Usage.CompletionTokens > 0 && t.FirstTok > 0 {
		m.ttft.observe(t.FirstTok.Seconds())
	}
	if ev.Usage.CompletionTokens > 1 {
		m.tpot.observe(t.PerOutput.Seconds())
	}
	if t.Total > 0 {
		m.e2e.observe(t.Total.Seconds())
	}
	if t.Queued > 0 || ev.Usage.CompletionTokens > 0 {
		m.queue.observe(t.Queued.Seconds())
	}
}

// httpMetrics are the server's own counters.
type httpMetrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // {handler, code}
	grpc     map[[2]string]uint64 // {method, code}
	rejected map[string]uint64    // reason
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{requests: map[[2]string]uint64{}, grpc: map[[2]string]uint64{}, rejected: map[string]uint64{}}
}

func (m *httpMetrics) countGRPC(method, code string) {
	m.mu.Lock()
	m.grpc[[2]string{method, code}]++
	m.mu.Unlock()
}

func sortedPairs(m map[[2]string]uint64) [][2]string {
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	return keys
}

func (m *httpMetrics) countHTTP(handler string, code int) {
	m.mu.Lock()
	m.requests[[2]string{handler, strconv.Itoa(code)}]++
	m.mu.Unlock()
}

func (m *httpMetrics) countRejected(reason string) {
	m.mu.Lock()
	m.rejected[reason]++
	m.mu.Unlock()
}

// promWriter writes the Prometheus text exposition format (0.0.4).
type promWriter struct {
	w *bufio.Writer
}

func (p *promWriter) header(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

func labels(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	var sb strings.Builder
	sb.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(kv[i])
		sb.WriteString(`="`)
		sb.WriteString(escapeLabel(kv[i+1]))
		sb.WriteByte('"')
	}
	sb.WriteByte('}')
	return sb.String()
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (p *promWriter) sample(name, lbls string, v float64) {
	fmt.Fprintf(p.w, "%s%s %s\n", name, lbls, formatFloat(v))
}

func (p *promWriter) histogram(name, model string, h *histogram) {
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		p.sample(name+"_bucket", labels("model_name", model, "le", formatFloat(b)), float64(cum))
	}
	cum += h.counts[len(h.bounds)]
	p.sample(name+"_bucket", labels("model_name", model, "le", "+Inf"), float64(cum))
	p.sample(name+"_sum", labels("model_name", model), h.sum)
	p.sample(name+"_count", labels("model_name", model), float64(h.n))
}

// writeMetrics writes every metric.
func (s *Server) writeMetrics(w io.Writer) error {
	p := &promWriter{w: bufio.NewWriter(w)}
	es := s.entries()
	stats := make([]engine.Stats, len(es))
	for i, e := range es {
		stats[i] = e.m.Stats()
	}
	gauge := func(name, help string, f func(engine.Stats) float64) {
		p.header(name, "gauge", help)
		for i, e := range es {
			p.sample(name, labels("model_name", e.name), f(stats[i]))
		}
	}
	counter := func(name, help string, f func(engine.Stats) uint64) {
		p.header(name, "counter", help)
		for i, e := range es {
			p.sample(name, labels("model_name", e.name), float64(f(stats[i])))
		}
	}
	gauge("vllm:num_requests_running", "Number of requests in model execution batches.", func(st engine.Stats) float64 { return float64(st.Running) })
	gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", func(st engine.Stats) float64 { return float64(st.Waiting) })
	gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", func(st engine.Stats) float64 { return st.KVUsage })
	counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", func(st engine.Stats) uint64 { return st.PrefixQueries })
	counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", func(st engine.Stats) uint64 { return st.PrefixHits })
	counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", func(st engine.Stats) uint64 { return st.PromptTokens })
	counter("vllm:generation_tokens_total", "Number of generation tokens processed.", func(st engine.Stats) uint64 { return st.GenerationTokens })
	counter("vllm:num_preemptions_total", "Cumulative number of preemptions from the engine.", func(st engine.Stats) uint64 { return st.Preemptions })
	counter("vllm:spec_decode_num_drafts_total", "Number of spec decoding drafts.", func(st engine.Stats) uint64 { return st.SpecDrafts })
	counter("vllm:spec_decode_num_draft_tokens_total", "Number of draft tokens.", func(st engine.Stats) uint64 { return st.SpecDraftTokens })
	counter("vllm:spec_decode_num_accepted_tokens_total", "Number of accepted tokens.", func(st engine.Stats) uint64 { return st.SpecAcceptedTokens })

	p.header("vllm:request_success_total", "counter", "Count of successfully processed requests.")
	for i, e := range es {
		reasons := map[engine.FinishReason]uint64{engine.FinishStop: 0, engine.FinishLength: 0, engine.FinishAbort: 0}
		for r, n := range stats[i].Finished {
			if r != engine.FinishError {
				reasons[r] = n
			}
		}
		keys := make([]string, 0, len(reasons))
		for r := range reasons {
			keys = append(keys, string(r))
		}
		sort.Strings(keys)
		for _, r := range keys {
			p.sample("vllm:request_success_total", labels("model_name", e.name, "finished_reason", r), float64(reasons[engine.FinishReason(r)]))
		}
	}

	hists := []struct {
		name, help string
		get        func(*modelHistograms) *histogram
	}{
		{"vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", func(m *modelHistograms) *histogram { return m.ttft }},
		{"vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", func(m *modelHistograms) *histogram { return m.tpot }},
		{"vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", func(m *modelHistograms) *histogram { return m.e2e }},
		{"vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", func(m *modelHistograms) *histogram { return m.queue }},
		{"vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", func(m *modelHistograms) *histogram { return m.itl }},
	}
	for _, h := range hists {
		p.header(h.name, "histogram", h.help)
		for _, e := range es {
			e.hist.mu.Lock()
			p.histogram(h.name, e.name, h.get(e.hist))
			e.hist.mu.Unlock()
		}
	}

	s.writeCacheConfig(p, es)

	// sluice's own metrics.
	p.header("sluice_model_info", "gauge", "Loaded models (value 1), with their file, fingerprint and quantization mix.")
	for _, e := range es {
		p.sample("sluice_model_info", labels("model_name", e.name, "path", e.info.Path, "fingerprint", e.info.Fingerprint,
			"arch", e.info.Arch, "quant_mix", e.info.QuantMix, "context_length", strconv.Itoa(e.info.ContextLength)), 1)
	}
	gauge("sluice_kv_cache_blocks", "KV-cache blocks in the pool.", func(st engine.Stats) float64 { return float64(st.KVBlocks) })
	gauge("sluice_kv_cache_cached_blocks", "KV-cache blocks holding a reusable prefix, in use or free.", func(st engine.Stats) float64 { return float64(st.KVCachedBlocks) })
	counter("sluice_engine_steps_total", "Engine steps that ran the model.", func(st engine.Stats) uint64 { return st.Steps })
	counter("sluice_engine_batch_tokens_total", "Tokens computed by engine steps.", func(st engine.Stats) uint64 { return st.BatchTokensTotal })
	counter("sluice_engine_batch_seqs_total", "Sequences in engine steps, summed over steps.", func(st engine.Stats) uint64 { return st.BatchSeqsTotal })
	p.header("sluice_engine_forward_seconds_total", "counter", "Time spent in the model's forward pass.")
	for i, e := range es {
		p.sample("sluice_engine_forward_seconds_total", labels("model_name", e.name), stats[i].ForwardTimeTotal.Seconds())
	}
	p.header("sluice_engine_step_duration_seconds", "histogram", "Wall time of engine steps.")
	bounds := engine.StepTimeBuckets()
	for i, e := range es {
		st := stats[i]
		var cum uint64
		for k, b := range bounds {
			cum += st.StepTimeHist[k]
			p.sample("sluice_engine_step_duration_seconds_bucket", labels("model_name", e.name, "le", formatFloat(b.Seconds())), float64(cum))
		}
		cum += st.StepTimeHist[len(bounds)]
		p.sample("sluice_engine_step_duration_seconds_bucket", labels("model_name", e.name, "le", "+Inf"), float64(cum))
		p.sample("sluice_engine_step_duration_seconds_sum", labels("model_name", e.name), st.StepTimeTotal.Seconds())
		p.sample("sluice_engine_step_duration_seconds_count", labels("model_name", e.name), float64(cum))
	}
	p.header("sluice_request_errors_total", "counter", "Requests that ended with an engine error.")
	for i, e := range es {
		p.sample("sluice_request_errors_total", labels("model_name", e.name), float64(stats[i].Finished[engine.FinishError]))
	}
	s.writeTimeouts(p, es)
	gauge("sluice_engine_healthy", "1 if the engine is healthy.", func(st engine.Stats) float64 { return b2f(st.Healthy) })
	gauge("sluice_engine_draining", "1 if the engine is draining.", func(st engine.Stats) float64 { return b2f(st.Draining) })

	s.metrics.mu.Lock()
	p.header("sluice_http_requests_total", "counter", "HTTP requests by handler and status code.")
	for _, k := range sortedPairs(s.metrics.requests) {
		p.sample("sluice_http_requests_total", labels("handler", k[0], "code", k[1]), float64(s.metrics.requests[k]))
	}
	p.header("sluice_grpc_requests_total", "counter", "gRPC calls by method and status code.")
	for _, k := range sortedPairs(s.metrics.grpc) {
		p.sample("sluice_grpc_requests_total", labels("method", k[0], "code", k[1]), float64(s.metrics.grpc[k]))
	}
	p.header("sluice_requests_rejected_total", "counter", "Requests refused before generation: overloaded (429) or draining (503).")
	for _, reason := range []string{"draining", "overloaded"} {
		p.sample("sluice_requests_rejected_total", labels("reason", reason), float64(s.metrics.rejected[reason]))
	}
	s.metrics.mu.Unlock()
	return p.w.Flush()
}

// writeCacheConfig writes vllm:cache_config_info.
func (s *Server) writeCacheConfig(p *promWriter, es []*entry) {
	// The KV cache's shape, as vLLM's CacheConfig info: the endpoint
	// picker's prefix-cache scorer reads block_size and num_gpu_blocks
	// (sluice's pool, wherever it lives) from its labels.
	p.header("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
	for _, e := range es {
		p.sample("vllm:cache_config_info", labels("model_name", e.name, "block_size", strconv.Itoa(e.info.BlockSize),
			"num_gpu_blocks", strconv.Itoa(e.info.KVBlocks), "enable_prefix_caching", strconv.FormatBool(e.prefixCaching())), 1)
	}
}

// writeTimeouts writes sluice_request_timeouts_total.
func (s *Server) writeTimeouts(p *promWriter, es []*entry) {
	p.header("sluice_request_timeouts_total", "counter", "Requests cut by their deadline (--request-timeout or the request's timeout field).")
	for _, e := range es {
		e.hist.mu.Lock()
		n := e.hist.timeouts
		e.hist.mu.Unlock()
		p.sample("sluice_request_timeouts_total", labels("model_name", e.name), float64(n))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return s.writeMetrics(w)
}
