package server

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/engine"
)

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelPair  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$`)
)

// parseProm parses the Prometheus text format strictly enough to catch
// what a scraper would reject: every sample belongs to a family declared
// with # TYPE before it, names and labels are well formed, values are
// numbers, and no series repeats. It returns the samples keyed by name and
// labels as written.
func parseProm(t *testing.T, text string) map[string]float64 {
	t.Helper()
	types := map[string]string{}
	samples := map[string]float64{}
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("exposition does not end with a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(msg string) { t.Fatalf("line %d %q: %s", i+1, line, msg) }
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") || !metricName.MatchString(f[2]) {
				fail("bad comment")
			}
			if f[1] == "TYPE" {
				if len(f) != 4 || !map[string]bool{"counter": true, "gauge": true, "histogram": true}[f[3]] {
					fail("bad type")
				}
				if _, dup := types[f[2]]; dup {
					fail("family declared twice")
				}
				types[f[2]] = f[3]
			}
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			fail("no value")
		}
		series, val := line[:sp], line[sp+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			fail("bad value")
		}
		name := series
		if b := strings.IndexByte(series, '{'); b >= 0 {
			if !strings.HasSuffix(series, "}") {
				fail("unterminated labels")
			}
			name = series[:b]
			body := series[b+1 : len(series)-1]
			for _, p := range splitLabels(body) {
				if !labelPair.MatchString(p) {
					fail(fmt.Sprintf("bad label %q", p))
				}
			}
		}
		if !metricName.MatchString(name) {
			fail("bad metric name")
		}
		fam := name
		if _, ok := types[fam]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base := strings.TrimSuffix(name, suf); base != name && types[base] == "histogram" {
					fam = base
				}
			}
		}
		if _, ok := types[fam]; !ok {
			fail("sample without # TYPE")
		}
		if _, dup := samples[series]; dup {
			fail("duplicate series")
		}
		samples[series] = v
	}
	return samples
}

// splitLabels splits a label list on the commas outside quoted values.
func splitLabels(s string) []string {
	var out []string
	inQ, esc, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			inQ = !inQ
		case c == ',' && !inQ:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func TestMetrics(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{}, m, newChatFake())
	for i := 0; i < 2; i++ {
		if r := post(t, ts.URL+"/v1/completions", `{"model":"tiny","prompt":"hi","max_tokens":3}`); r.status != 200 {
			t.Fatal(r.status)
		}
	}
	post(t, ts.URL+"/v1/completions", `{"model":"tiny","prompt":"hi","max_tokens":30}`) // runs to the end of the reply: "stop"
	post(t, ts.URL+"/v1/completions", `{"model":"tiny","prompt":"x","temperature":9}`)
	post(t, ts.URL+"/v1/completions", `{"model":"nope","prompt":"x"}`)
	m.setSubmit(func(*engine.Request, int) error { return engine.ErrOverloaded })
	post(t, ts.URL+"/v1/completions", `{"model":"tiny","prompt":"x"}`)
	m.setSubmit(nil)

	r := do(t, "GET", ts.URL+"/metrics", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	got := parseProm(t, string(r.body))
	want := map[string]float64{
		`vllm:num_requests_running{model_name="tiny"}`:                                                                                           0,
		`vllm:num_requests_waiting{model_name="tiny"}`:                                                                                           0,
		`vllm:kv_cache_usage_perc{model_name="tiny"}`:                                                                                            0,
		`vllm:prefix_cache_queries_total{model_name="tiny"}`:                                                                                     9,
		`vllm:prefix_cache_hits_total{model_name="tiny"}`:                                                                                        4,
		`vllm:prompt_tokens_total{model_name="tiny"}`:                                                                                            5,
		`vllm:generation_tokens_total{model_name="tiny"}`:                                                                                        32,
		`vllm:num_preemptions_total{model_name="tiny"}`:                                                                                          0,
		`vllm:request_success_total{model_name="tiny",finished_reason="length"}`:                                                                 2,
		`vllm:request_success_total{model_name="tiny",finished_reason="stop"}`:                                                                   1,
		`vllm:request_success_total{model_name="tiny",finished_reason="abort"}`:                                                                  0,
		`vllm:request_success_total{model_name="chat",finished_reason="stop"}`:                                                                   0,
		`vllm:time_to_first_token_seconds_count{model_name="tiny"}`:                                                                              3,
		`vllm:time_to_first_token_seconds_bucket{model_name="tiny",le="0.01"}`:                                                                   3,
		`vllm:time_to_first_token_seconds_bucket{model_name="tiny",le="0.005"}`:                                                                  0,
		`vllm:time_to_first_token_seconds_bucket{model_name="tiny",le="+Inf"}`:                                                                   3,
		`vllm:time_to_first_token_seconds_sum{model_name="tiny"}`:                                                                                0.03,
		`vllm:time_per_output_token_seconds_count{model_name="tiny"}`:                                                                            3,
		`vllm:e2e_request_latency_seconds_count{model_name="tiny"}`:                                                                              3,
		`vllm:e2e_request_latency_seconds_bucket{model_name="tiny",le="0.3"}`:                                                                    3,
		`vllm:e2e_request_latency_seconds_count{model_name="chat"}`:                                                                              0,
		`sluice_http_requests_total{handler="/v1/completions",code="200"}`:                                                                       3,
		`sluice_http_requests_total{handler="/v1/completions",code="400"}`:                                                                       1,
		`sluice_http_requests_total{handler="/v1/completions",code="404"}`:                                                                       1,
		`sluice_http_requests_total{handler="/v1/completions",code="429"}`:                                                                       1,
		`sluice_requests_rejected_total{reason="overloaded"}`:                                                                                    1,
		`sluice_requests_rejected_total{reason="draining"}`:                                                                                      0,
		`sluice_kv_cache_blocks{model_name="tiny"}`:                                                                                              100,
		`sluice_engine_healthy{model_name="tiny"}`:                                                                                               1,
		`sluice_model_info{model_name="tiny",path="/models/tiny.gguf",fingerprint="fp-tiny",arch="llama",quant_mix="F32:3",context_length="64"}`: 1,
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if diff := g - v; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	// Buckets are cumulative and end at the count.
	prev := -1.0
	for _, b := range ttftBuckets {
		v := got[fmt.Sprintf(`vllm:time_to_first_token_seconds_bucket{model_name="tiny",le="%s"}`, formatFloat(b))]
		if v < prev {
			t.Errorf("bucket le=%v decreases", b)
		}
		prev = v
	}
}

func TestLabelEscaping(t *testing.T) {
	if got := labels("a", "x\"y\\z\nw"); got != `{a="x\"y\\z\nw"}` {
		t.Errorf("labels = %s", got)
	}
}

// vllmFamilies are the metric families the Gateway API Inference
// Extension's endpoint picker (llm-d) and vLLM dashboards read, with
// vLLM's types.
var vllmFamilies = map[string]string{
	"vllm:num_requests_waiting":        "gauge",
	"vllm:num_requests_running":        "gauge",
	"vllm:kv_cache_usage_perc":         "gauge",
	"vllm:cache_config_info":           "gauge",
	"vllm:request_queue_time_seconds":  "histogram",
	"vllm:inter_token_latency_seconds": "histogram",
	"vllm:time_to_first_token_seconds": "histogram",
	"vllm:e2e_request_latency_seconds": "histogram",
	"vllm:prefix_cache_queries_total":  "counter",
	"vllm:prefix_cache_hits_total":     "counter",
	"vllm:request_success_total":       "counter",
}

// promTypes returns the # TYPE of every family.
func promTypes(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	return out
}

// TestMetricsEndpointPicker: the families llm-d reads exist with vLLM's
// types; vllm:cache_config_info carries block_size and num_gpu_blocks;
// queue time and inter-token latency are observed.
func TestMetricsEndpointPicker(t *testing.T) {
	_, ts := newTestServer(t, Options{}, newFake("tiny"))
	if r := post(t, ts.URL+"/v1/completions", `{"prompt":"hi","max_tokens":4}`); r.status != 200 {
		t.Fatal(r.status)
	}
	text := string(do(t, "GET", ts.URL+"/metrics", "").body)
	types := promTypes(text)
	for name, typ := range vllmFamilies {
		if types[name] != typ {
			t.Errorf("%s: type %q, want %q", name, types[name], typ)
		}
	}
	got := parseProm(t, text)
	for k, v := range map[string]float64{
		`vllm:cache_config_info{model_name="tiny",block_size="16",num_gpu_blocks="100",enable_prefix_caching="true"}`: 1,
		`vllm:request_queue_time_seconds_count{model_name="tiny"}`:                                                    1,
		`vllm:request_queue_time_seconds_sum{model_name="tiny"}`:                                                      0.001,
		`vllm:inter_token_latency_seconds_count{model_name="tiny"}`:                                                   3, // 4 tokens
		`vllm:inter_token_latency_seconds_bucket{model_name="tiny",le="0.01"}`:                                        3,
	} {
		if g, ok := got[k]; !ok || g-v > 1e-9 || v-g > 1e-9 {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
