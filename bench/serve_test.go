package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/server"
)

// serveStories serves stories260K (and, with chat, a copy with a chat
// template as "chat") with the real engine on a loopback listener.
func serveStories(t *testing.T, chat bool) (string, *engine.Engine) {
	t.Helper()
	return serveStoriesWith(t, chat, engine.Config{})
}

// serveStoriesWith is serveStories with the engine settings of cfg (Spec,
// SpecTokens, ...) besides the model, name, threads and KV memory.
func serveStoriesWith(t *testing.T, chat bool, cfg engine.Config) (string, *engine.Engine) {
	t.Helper()
	path := testenv.Shared(t, "models", "stories260K.gguf")
	srv := server.New(server.Options{})
	var first *engine.Engine
	add := func(name, p string) {
		c := cfg
		c.ModelPath, c.Name, c.Threads, c.KVMemory = p, name, 1, 16<<20
		eng, err := engine.New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.AddModel(name, server.FromEngine[*engine.Stream](eng)); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = eng
		}
	}
	add("stories", path)
	if chat {
		add("chat", withTemplate(t, path, "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}<|assistant|>"))
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return ts.URL, first
}

func withTemplate(t *testing.T, src, tmpl string) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KVs {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Set("tokenizer.chat_template", tmpl); err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	dst := t.TempDir() + "/chat.gguf"
	if err := w.WriteFile(dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// checkLevel asserts the counts of a level where every request succeeded,
// and latencies that make sense together.
func checkLevel(t *testing.T, l ServeLevel, conc, reqs, in, out int) {
	t.Helper()
	if l.Concurrency != conc || l.Requests != reqs || l.Completed != reqs || l.Failed != 0 || len(l.Errors) != 0 {
		t.Fatalf("level %+v: want %d requests at concurrency %d, all completed", l, reqs, conc)
	}
	if l.OutputTokens != reqs*out || l.ShortOutputs != 0 {
		t.Errorf("concurrency %d: %d output tokens (%d short), want %d", conc, l.OutputTokens, l.ShortOutputs, reqs*out)
	}
	if in > 0 && l.InputTokens != reqs*in {
		t.Errorf("concurrency %d: %d input tokens, want %d", conc, l.InputTokens, reqs*in)
	}
	if l.Duration <= 0 || l.RequestThroughput <= 0 || l.OutputThroughput <= 0 || l.TotalThroughput <= l.OutputThroughput {
		t.Errorf("concurrency %d: duration %v, throughputs %v req/s %v out tok/s %v tok/s", conc, l.Duration, l.RequestThroughput, l.OutputThroughput, l.TotalThroughput)
	}
	if d := float64(l.Completed) / l.Duration; d < 0.99*l.RequestThroughput || d > 1.01*l.RequestThroughput {
		t.Errorf("request throughput %v, completed/duration %v", l.RequestThroughput, d)
	}
	for name, lat := range map[string]Latency{"TTFT": l.TTFT, "TPOT": l.TPOT, "e2e": l.E2E} {
		if lat.P50 <= 0 || lat.P50 > lat.P90 || lat.P90 > lat.P99 || lat.Mean <= 0 {
			t.Errorf("concurrency %d: %s %+v", conc, name, lat)
		}
	}
	// A request's end-to-end time is its TTFT plus (n-1) TPOTs, and no
	// request takes longer than the level.
	if l.E2E.P50 < l.TTFT.P50 || l.E2E.P99 > 1000*l.Duration+1 {
		t.Errorf("concurrency %d: e2e %+v, TTFT %+v, duration %vs", conc, l.E2E, l.TTFT, l.Duration)
	}
	if approx := l.TTFT.Mean + float64(out-1)*l.TPOT.Mean; approx < 0.95*l.E2E.Mean || approx > 1.05*l.E2E.Mean {
		t.Errorf("concurrency %d: TTFT %v + %d × TPOT %v = %v, e2e mean %v", conc, l.TTFT.Mean, out-1, l.TPOT.Mean, approx, l.E2E.Mean)
	}
}

func TestServeBenchRandom(t *testing.T) {
	url, eng := serveStories(t, false)
	var progress bytes.Buffer
	res, err := RunServe(context.Background(), ServeOptions{
		URL: url + "/v1", Concurrency: []int{1, 3}, Requests: 6, InputLen: 24, OutputLen: 10, Seed: 1, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "stories" || res.Vocab != 512 || res.Endpoint != "/v1/completions" || res.Workload != "random" || res.Seed != 1 || len(res.Levels) != 2 {
		t.Fatalf("result %+v", res)
	}
	for i, c := range []int{1, 3} {
		checkLevel(t, res.Levels[i], c, 6, 24, 10)
	}
	// 1 warm-up + 2 × 6 requests, each of exactly 10 tokens or 4 for the
	// warm-up.
	if st := eng.Stats(); st.GenerationTokens != 4+12*10 || st.Running != 0 || st.KVUsage != 0 {
		t.Errorf("engine generated %d tokens (running %d, KV %v), want 124", st.GenerationTokens, st.Running, st.KVUsage)
	}
	if n := strings.Count(progress.String(), "\n"); n != 2 {
		t.Errorf("progress:\n%s", progress.String())
	}

	var md bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "random, 24 in / 10 out") || !strings.Contains(lines[2], "TTFT p50 ms") ||
		!strings.HasPrefix(lines[4], "|    1 |    6 |") || !strings.HasPrefix(lines[5], "|    3 |    6 |") {
		t.Errorf("table:\n%s", md.String())
	}
	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back ServeResult
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Levels[1].TTFT != res.Levels[1].TTFT || back.Levels[0].OutputTokens != 60 {
		t.Errorf("JSON round trip: %v\n%s", err, js.String())
	}
	for _, key := range []string{`"output_throughput"`, `"ttft_ms"`, `"p99"`, `"request_throughput"`, `"spec_metrics": true`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	// sluice exports the speculation counters, but this engine does not
	// speculate: zero, and left out of the table.
	for _, l := range res.Levels {
		if l.SpecDrafts != 0 || l.SpecDraftTokens != 0 || l.SpecAcceptedTokens != 0 || l.SpecAcceptanceRate != 0 {
			t.Errorf("concurrency %d without speculation: %d drafts, %d drafted, %d accepted, rate %v",
				l.Concurrency, l.SpecDrafts, l.SpecDraftTokens, l.SpecAcceptedTokens, l.SpecAcceptanceRate)
		}
	}
	if !res.SpecMetrics || !strings.Contains(js.String(), `"spec_draft_tokens": 0,`) || strings.Contains(md.String(), "accept %") {
		t.Errorf("spec metrics %v; JSON or table shows speculation:\n%s\n%s", res.SpecMetrics, js.String(), md.String())
	}
}

// TestServeBenchSpec runs the repetitive workload against a server with
// n-gram speculation: the prompts repeat, so the proposer drafts, and each
// level's counts are the engine's own (no warm-up, no other traffic).
// Requests that opt out draft nothing.
func TestServeBenchSpec(t *testing.T) {
	url, eng := serveStoriesWith(t, false, engine.Config{Spec: engine.SpecNGram})
	ctx := context.Background()
	res, err := RunServe(ctx, ServeOptions{
		URL: url, Workload: WorkloadRepetitive, Concurrency: []int{1, 2}, Requests: 3, InputLen: 48, RepeatLen: 12,
		OutputLen: 24, NoWarmup: true, Seed: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.SpecMetrics || res.Workload != WorkloadRepetitive || res.RepeatLen != 12 || res.Temperature != 0 {
		t.Fatalf("result %+v", res)
	}
	var drafts, drafted, accepted uint64
	for i, c := range []int{1, 2} {
		l := res.Levels[i]
		checkLevel(t, l, c, 3, 48, 24)
		if l.SpecDrafts == 0 || l.SpecDraftTokens < l.SpecDrafts || l.SpecAcceptedTokens > l.SpecDraftTokens {
			t.Errorf("concurrency %d: %d drafts, %d draft tokens, %d accepted", c, l.SpecDrafts, l.SpecDraftTokens, l.SpecAcceptedTokens)
		}
		if want := float64(l.SpecAcceptedTokens) / float64(l.SpecDraftTokens); l.SpecAcceptanceRate != want || want > 1 {
			t.Errorf("concurrency %d: acceptance rate %v, want %v", c, l.SpecAcceptanceRate, want)
		}
		drafts += l.SpecDrafts
		drafted += l.SpecDraftTokens
		accepted += l.SpecAcceptedTokens
	}
	if st := eng.Stats(); st.SpecDrafts != drafts || st.SpecDraftTokens != drafted || st.SpecAcceptedTokens != accepted {
		t.Errorf("levels: %d drafts, %d drafted, %d accepted; engine: %d, %d, %d", drafts, drafted, accepted,
			st.SpecDrafts, st.SpecDraftTokens, st.SpecAcceptedTokens)
	}
	var md, js bytes.Buffer
	res.WriteMarkdown(&md)
	res.WriteJSON(&js)
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if !strings.Contains(lines[0], "repetitive, 48 in (a 12-token unit repeated) / 24 out") || !strings.HasSuffix(lines[2], "| drafted | accepted | accept % |") {
		t.Errorf("table:\n%s", md.String())
	}
	for _, key := range []string{`"spec_drafts"`, `"spec_draft_tokens"`, `"spec_accepted_tokens"`, `"repeat_len": 12`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, js.String())
		}
	}

	// The same server, every request opting out.
	res, err = RunServe(ctx, ServeOptions{
		URL: url, Workload: WorkloadRepetitive, Concurrency: []int{2}, Requests: 2, InputLen: 48, RepeatLen: 12,
		OutputLen: 8, NoWarmup: true, NoSpeculation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if l := res.Levels[0]; !res.SpecMetrics || !res.NoSpeculation || l.SpecDrafts != 0 || l.SpecDraftTokens != 0 || l.Completed != 2 {
		t.Errorf("opted out: result %+v level %+v", res, l)
	}
	md.Reset()
	res.WriteMarkdown(&md)
	if !strings.Contains(md.String(), `"speculative": false`) || strings.Contains(md.String(), "accept %") {
		t.Errorf("table:\n%s", md.String())
	}
}

// TestServeBenchRepetitivePrompts checks the requests of the repetitive
// workload: token-id prompts of exactly InputLen tokens that repeat with
// period RepeatLen, the temperature and the opt-out sent as asked.
func TestServeBenchRepetitivePrompts(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/models", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"object":"list","data":[{"id":"m","vocab_size":300}]}`)
	})
	mux.HandleFunc("/v1/completions", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"text\":\"x\"}]}\n\ndata: [DONE]\n\n")
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	res, err := RunServe(context.Background(), ServeOptions{
		URL: ts.URL, Workload: WorkloadRepetitive, Requests: 3, InputLen: 20, RepeatLen: 6, OutputLen: 1,
		Temperature: 0.7, NoSpeculation: true, NoWarmup: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The fake server has no /metrics.
	if res.SpecMetrics || res.Levels[0].Completed != 3 || res.Levels[0].SpecDraftTokens != 0 {
		t.Errorf("result %+v", res)
	}
	if len(bodies) != 3 {
		t.Fatalf("%d requests", len(bodies))
	}
	var units []string
	for _, b := range bodies {
		if b["temperature"] != 0.7 || b["speculative"] != false {
			t.Errorf("request %v", b)
		}
		p, _ := b["prompt"].([]any)
		if len(p) != 20 {
			t.Fatalf("prompt of %d tokens: %v", len(p), b["prompt"])
		}
		for i := 6; i < len(p); i++ {
			if p[i] != p[i-6] {
				t.Errorf("prompt %v does not repeat every 6 tokens", p)
				break
			}
		}
		units = append(units, fmt.Sprint(p[:6]))
	}
	if units[0] == units[1] || units[1] == units[2] {
		t.Errorf("requests share their unit: %v", units)
	}
	// Defaults: four copies, greedy, no opt-out field.
	o := ServeOptions{URL: ts.URL, Workload: WorkloadRepetitive, InputLen: 256}
	if err := o.defaults(); err != nil || o.RepeatLen != 64 || o.Temperature != 0 || o.NoSpeculation {
		t.Errorf("defaults %+v: %v", o, err)
	}
}

func TestServeBenchRepetitiveChat(t *testing.T) {
	url, _ := serveStoriesWith(t, true, engine.Config{Spec: engine.SpecNGram})
	res, err := RunServe(context.Background(), ServeOptions{URL: url, Model: "chat", Chat: true, Workload: WorkloadRepetitive,
		Concurrency: []int{2}, Requests: 2, InputLen: 64, OutputLen: 6, NoWarmup: true})
	if err != nil {
		t.Fatal(err)
	}
	checkLevel(t, res.Levels[0], 2, 2, 0, 6)
	if !res.SpecMetrics {
		t.Errorf("result %+v", res)
	}
	p := repetitiveChat(rand.New(rand.NewPCG(1, 2)), 16, 3)
	if strings.Count(p, "```json") != 3 || !strings.Contains(p, "Write the record out again") {
		t.Errorf("prompt:\n%s", p)
	}
	rec := strings.Split(p, "```")
	if rec[1] != rec[3] || rec[3] != rec[5] || !json.Valid([]byte(strings.TrimPrefix(rec[1], "json\n"))) {
		t.Errorf("copies differ or are not JSON:\n%s", p)
	}
}

func TestParseSpecCounters(t *testing.T) {
	const text = `# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{model_name="a"} 10
vllm:spec_decode_num_drafts_total{model_name="b"} 99
vllm:spec_decode_num_draft_tokens_total{model_name="a",engine="0"} 4.0e+01
vllm:spec_decode_num_draft_tokens_total{engine="1",model_name="a"} 2
vllm:spec_decode_num_draft_tokens_total{model_name="b\"a"} 1000
vllm:spec_decode_num_accepted_tokens_total{model_name="a"} 25 1700000000000
vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name="a",position="0"} 12
vllm:generation_tokens_total{model_name="a"} 500
`
	n, ok := parseSpecCounters(strings.NewReader(text), "a")
	if !ok || n != (specCounts{drafts: 10, draftTokens: 42, accepted: 25}) {
		t.Errorf("model a: %+v %v", n, ok)
	}
	// No model_name label: counts for any model.
	n, ok = parseSpecCounters(strings.NewReader("vllm:spec_decode_num_draft_tokens_total 7\n"), "x")
	if !ok || n.draftTokens != 7 {
		t.Errorf("unlabelled: %+v %v", n, ok)
	}
	if _, ok := parseSpecCounters(strings.NewReader("vllm:generation_tokens_total 5\nllamacpp:tokens_predicted_total 3\n"), "a"); ok {
		t.Error("found speculation counters in metrics without them")
	}
	var l ServeLevel
	l.setSpec(specCounts{1, 10, 5}, specCounts{3, 30, 20})
	if l.SpecDrafts != 2 || l.SpecDraftTokens != 20 || l.SpecAcceptedTokens != 15 || l.SpecAcceptanceRate != 0.75 {
		t.Errorf("level %+v", l)
	}
}

// TestServeBenchFreshPrompts checks that runs without a seed draw new
// prompts: a second run must not find the first one's in the prefix
// cache, and random prompts share no prefix blocks with each other.
func TestServeBenchFreshPrompts(t *testing.T) {
	url, _ := serveStories(t, false)
	o := ServeOptions{URL: url, Concurrency: []int{2}, Requests: 4, InputLen: 40, OutputLen: 2}
	var seeds []uint64
	for range 2 {
		res, err := RunServe(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if l := res.Levels[0]; l.CachedTokens != 0 || l.Completed != 4 {
			t.Errorf("seed %d: %d of %d prompt tokens cached", res.Seed, l.CachedTokens, l.InputTokens)
		}
		seeds = append(seeds, res.Seed)
	}
	if seeds[0] == 0 || seeds[0] == seeds[1] {
		t.Errorf("seeds %v", seeds)
	}
}

func TestServeBenchSharedPrefix(t *testing.T) {
	url, _ := serveStories(t, false)
	res, err := RunServe(context.Background(), ServeOptions{
		URL: url, Model: "stories", Workload: WorkloadSharedPrefix, Groups: 2, PrefixLen: 64, Questions: 3,
		InputLen: 8, OutputLen: 5, Concurrency: []int{1, 2}, NoWarmup: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Groups != 2 || res.PrefixLen != 64 || res.Questions != 3 {
		t.Errorf("result %+v", res)
	}
	for i, c := range []int{1, 2} {
		l := res.Levels[i]
		checkLevel(t, l, c, 6, 72, 5)
		// One at a time, the later questions of a group find its 64-token
		// prefix (4 blocks of 16) in the cache.
		if c == 1 && l.CachedTokens < 4*64 {
			t.Errorf("concurrency 1: %d cached prompt tokens, want at least %d", l.CachedTokens, 4*64)
		}
	}
	var md bytes.Buffer
	res.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "2 groups × 3 questions, 64-token prefix + 8 in / 5 out") {
		t.Errorf("table:\n%s", md.String())
	}
}

func TestServeBenchChat(t *testing.T) {
	url, _ := serveStories(t, true)
	res, err := RunServe(context.Background(), ServeOptions{URL: url, Model: "chat", Chat: true, Concurrency: []int{2}, Requests: 4, InputLen: 12, OutputLen: 6})
	if err != nil {
		t.Fatal(err)
	}
	if res.Endpoint != "/v1/chat/completions" || res.Model != "chat" {
		t.Errorf("result %+v", res)
	}
	// Prompt lengths change through detokenize, template and tokenize.
	checkLevel(t, res.Levels[0], 2, 4, 0, 6)
}

// TestServeBenchOtherServer checks the parts that serve servers other than
// sluice: the vocabulary from llama-server's meta.n_vocab, a stream
// without usage (tokens counted by chunk), and failed requests counted in
// the level rather than ending the run.
func TestServeBenchOtherServer(t *testing.T) {
	calls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/models", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"object":"list","data":[{"id":"m.gguf","meta":{"n_vocab":1000}}]}`)
	})
	mux.HandleFunc("/v1/completions", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Prompt    []int32 `json:"prompt"`
			MaxTokens int     `json:"max_tokens"`
			IgnoreEOS bool    `json:"ignore_eos"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !body.IgnoreEOS || len(body.Prompt) != 5 {
			http.Error(w, "bad request", 400)
			return
		}
		for _, id := range body.Prompt {
			if id < 0 || id >= 1000 {
				http.Error(w, "token out of range", 400)
				return
			}
		}
		calls++
		if calls == 2 {
			http.Error(w, `{"error":{"message":"busy"}}`, 503)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < body.MaxTokens; i++ {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"text\":\"t%d\"}]}\n\n", i)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	res, err := RunServe(context.Background(), ServeOptions{URL: ts.URL, Requests: 4, InputLen: 5, OutputLen: 3})
	if err != nil {
		t.Fatal(err)
	}
	l := res.Levels[0]
	if res.Vocab != 1000 || res.Model != "m.gguf" || res.SpecMetrics || l.Completed != 3 || l.Failed != 1 || l.OutputTokens != 9 || l.InputTokens != 15 ||
		len(l.Errors) != 1 || !strings.Contains(l.Errors[0], "503") {
		t.Errorf("result %+v level %+v", res, l)
	}
	var md bytes.Buffer
	res.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "error: 503") {
		t.Errorf("table does not show the error:\n%s", md.String())
	}
}

func TestServeBenchErrors(t *testing.T) {
	url, _ := serveStories(t, false)
	ctx := context.Background()
	for _, tc := range []struct {
		o    ServeOptions
		want string
	}{
		{ServeOptions{}, "no server URL"},
		{ServeOptions{URL: url, Concurrency: []int{0}}, "concurrency 0"},
		{ServeOptions{URL: url, Workload: "zipf"}, "unknown workload"},
		{ServeOptions{URL: url, InputLen: -1}, "must be positive"},
		{ServeOptions{URL: url, Workload: WorkloadRepetitive, RepeatLen: -1}, "must be positive"},
		{ServeOptions{URL: url, Temperature: -1}, "temperature -1"},
		{ServeOptions{URL: url, Model: "gpt-4o"}, `does not serve "gpt-4o" (it serves stories)`},
		{ServeOptions{URL: url, InputLen: 2000, OutputLen: 100}, "do not fit stories's context of 2048"},
		{ServeOptions{URL: url + "/nope"}, "listing the models"},
		// Every request refused: token ids past the real vocabulary.
		{ServeOptions{URL: url, Vocab: 100000, InputLen: 64, OutputLen: 2, Requests: 2, NoWarmup: true}, "every request at concurrency 1 failed: 400 Bad Request"},
	} {
		_, err := RunServe(ctx, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
}
