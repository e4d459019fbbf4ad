package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/internal/testenv"
)

// newRealServer serves stories260K with the real engine on a loopback
// listener.
func newRealServer(t *testing.T) (*Server, *httptest.Server, *engine.Engine) {
	t.Helper()
	path := testenv.Shared(t, "models", "stories260K.gguf")
	eng, err := engine.New(engine.Config{ModelPath: path, Name: "stories", Threads: 1, KVMemory: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	if err := s.AddModel("", FromEngine[*engine.Stream](eng)); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts, eng
}

func goldenText(t *testing.T) (prompt, text string, n int) {
	t.Helper()
	f, err := os.Open(testenv.Shared(t, "golden", "stories260K.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	if !sc.Scan() {
		t.Fatal("empty golden file")
	}
	var g struct {
		Prompt        string  `json:"prompt"`
		Generated     []int32 `json:"generated"`
		GeneratedText string  `json:"generated_text"`
	}
	if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
		t.Fatal(err)
	}
	return g.Prompt, g.GeneratedText, len(g.Generated)
}

func TestRealEngineGolden(t *testing.T) {
	_, ts, _ := newRealServer(t)
	prompt, want, n := goldenText(t)
	if prompt != "Once upon a time" {
		t.Fatalf("golden prompt %q", prompt)
	}
	body := `{"model":"stories","prompt":"Once upon a time","temperature":0,"max_tokens":` + itoa(n) + `}`
	r := post(t, ts.URL+"/v1/completions", body)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	resp := decode[completionResponse](t, r)
	if got := resp.Choices[0].Text; got != want {
		t.Errorf("greedy continuation\n got %q\nwant %q", got, want)
	}
	if resp.Usage.PromptTokens != 5 || resp.Usage.CompletionTokens != n || *resp.Choices[0].FinishReason != "length" {
		t.Errorf("usage %+v finish %s", resp.Usage, *resp.Choices[0].FinishReason)
	}
	if resp.SystemFingerprint == "" {
		t.Error("no system_fingerprint")
	}

	// The same request streamed gives the same text, and a repeat hits the
	// prefix cache.
	events := sseEvents(t, post(t, ts.URL+"/v1/completions", strings.Replace(body, `"temperature":0`, `"temperature":0,"stream":true,"stream_options":{"include_usage":true}`, 1)))
	var text strings.Builder
	var usage *usageJSON
	for _, ev := range events {
		var c completionResponse
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
		}
		if c.Usage != nil {
			usage = c.Usage
		}
	}
	if text.String() != want {
		t.Errorf("streamed continuation\n got %q\nwant %q", text.String(), want)
	}
	if usage == nil || usage.CompletionTokens != n {
		t.Errorf("stream usage %+v", usage)
	}

	// Tokenize agrees with llama.cpp's tokens for the prompt.
	tr := decode[tokenizeResponse](t, post(t, ts.URL+"/tokenize", `{"model":"stories","prompt":"Once upon a time"}`))
	if len(tr.Tokens) != 5 || tr.Tokens[0] != 1 || tr.MaxModelLen <= 0 {
		t.Errorf("tokenize %+v", tr)
	}
	dr := post(t, ts.URL+"/detokenize", `{"tokens":[403,407,261,378]}`)
	if !strings.Contains(string(dr.body), "Once upon a time") {
		t.Errorf("detokenize %s", dr.body)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestRealEngineDisconnectFreesKV checks that a client hanging up aborts
// its request and the engine frees its KV blocks.
func TestRealEngineDisconnectFreesKV(t *testing.T) {
	_, ts, eng := newRealServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions",
		strings.NewReader(`{"prompt":"Once upon a time","max_tokens":200,"ignore_eos":true,"stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q", line)
	}
	if eng.Stats().KVUsage == 0 {
		t.Log("KV usage already 0 after the first token (request may have finished)")
	}
	cancel()
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st := eng.Stats()
		if st.Running == 0 && st.Waiting == 0 && st.KVUsage == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := eng.Stats()
	if st.Running != 0 || st.Waiting != 0 || st.KVUsage != 0 {
		t.Fatalf("after disconnect: running %d waiting %d KV usage %v", st.Running, st.Waiting, st.KVUsage)
	}
	if st.Finished[engine.FinishAbort] != 1 {
		t.Errorf("finished %v, want one abort", st.Finished)
	}
}

func TestRealEngineMetricsAndErrors(t *testing.T) {
	_, ts, _ := newRealServer(t)
	for i := 0; i < 2; i++ {
		if r := post(t, ts.URL+"/v1/completions", `{"prompt":"Once upon a time","max_tokens":4,"n":2}`); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	got := parseProm(t, string(do(t, "GET", ts.URL+"/metrics", "").body))
	for k, v := range map[string]float64{
		`vllm:generation_tokens_total{model_name="stories"}`:                        16,
		`vllm:request_success_total{model_name="stories",finished_reason="length"}`: 4,
		`vllm:e2e_request_latency_seconds_count{model_name="stories"}`:              4,
		`vllm:time_to_first_token_seconds_count{model_name="stories"}`:              4,
		`vllm:num_requests_running{model_name="stories"}`:                           0,
		`vllm:kv_cache_usage_perc{model_name="stories"}`:                            0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if n := got[`sluice_engine_step_duration_seconds_count{model_name="stories"}`]; n == 0 || n != got[`sluice_engine_steps_total{model_name="stories"}`] {
		t.Errorf("step histogram count %v, steps %v", n, got[`sluice_engine_steps_total{model_name="stories"}`])
	}
	if got[`vllm:prefix_cache_queries_total{model_name="stories"}`] == 0 {
		t.Error("no prefix cache queries counted")
	}
	// A prompt longer than the context is refused naming the prompt.
	long := strings.Repeat("Once upon a time ", 2000)
	checkError(t, post(t, ts.URL+"/v1/completions", `{"prompt":"`+long+`"}`), 400, "prompt")
	// stories260K has no chat template.
	r := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	if e := checkError(t, r, 400, "messages"); !strings.Contains(e["message"].(string), "chat template") {
		t.Errorf("message %v", e["message"])
	}
	if r := do(t, "GET", ts.URL+"/health", ""); r.status != 200 {
		t.Errorf("/health %d %s", r.status, r.body)
	}
}

// The engine adapter reports the engine's queue limit, so a request with
// more choices than it gets a 400 naming n.
func TestRealEngineChoicesBeyondQueue(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	eng, err := engine.New(engine.Config{ModelPath: path, Name: "stories", Threads: 1, KVMemory: 8 << 20, MaxQueue: 8})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	if err := s.AddModel("", FromEngine[*engine.Stream](eng)); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	checkError(t, post(t, ts.URL+"/v1/completions", `{"prompt":["a","b","c"],"n":3,"max_tokens":1}`), http.StatusBadRequest, "n")
}
