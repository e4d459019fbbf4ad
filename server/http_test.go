package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
	"github.com/sluice-llm/sluice/engine"
)

const testTemplate = `{% if messages[0].role == 'bad' %}{{ raise_exception('the first message must come from the user') }}{% endif %}` +
	`{% for m in messages %}<|{{ m.role }}|>{% if m.content %}{{ m.content }}{% endif %}{% if m.tool_calls %}{{ m.tool_calls[0].function.arguments | tojson }}{% endif %}{{ "\n" }}{% endfor %}{% if tools is defined %}TOOLS:{{ tools | tojson }}
{% endif %}{% if add_generation_prompt %}<|assistant|>{% endif %}`

// newTestServer serves the given models on a loopback listener.
func newTestServer(t *testing.T, opts Options, models ...*fakeModel) (*Server, *httptest.Server) {
	t.Helper()
	s := New(opts)
	for _, m := range models {
		if err := s.AddModel("", m); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func post(t *testing.T, url, body string) response { return do(t, http.MethodPost, url, body) }

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

// checkError asserts an OpenAI error response: the status, the exact body
// shape {"error":{"message","type","param","code"}} and the param.
func checkError(t *testing.T, r response, status int, param string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body map[string]map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if len(body) != 1 || body["error"] == nil {
		t.Fatalf("error body %s: want exactly one key \"error\"", r.body)
	}
	e := body["error"]
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"code", "message", "param", "type"}) {
		t.Errorf("error keys %v", keys)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("empty message in %s", r.body)
	}
	if typ, _ := e["type"].(string); typ == "" {
		t.Errorf("empty type in %s", r.body)
	}
	if param == "" {
		if e["param"] != nil {
			t.Errorf("param = %v, want null", e["param"])
		}
	} else if e["param"] != param {
		t.Errorf("param = %v, want %q (body %s)", e["param"], param, r.body)
	}
	return e
}

func TestCompletions(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{}, m)
	r := post(t, ts.URL+"/v1/completions", `{"model":"tiny","prompt":"Hi","max_tokens":5,"temperature":0}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	resp := decode[completionResponse](t, r)
	if !strings.HasPrefix(resp.ID, "cmpl-") || resp.Object != "text_completion" || resp.Model != "tiny" || resp.SystemFingerprint != "fp-tiny" || resp.Created == 0 {
		t.Errorf("header fields: %+v", resp)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Text != "abcde" || *resp.Choices[0].FinishReason != "length" || resp.Choices[0].Logprobs != nil {
		t.Errorf("choices: %s", r.body)
	}
	want := usageJSON{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8, QueueTime: 0.001, TTFT: 0.01, GenTime: 0.05} // the fake's timing
	if *resp.Usage != want {
		t.Errorf("usage %+v, want %+v", *resp.Usage, want)
	}
	if !bytes.Contains(r.body, []byte(`"prompt_tokens_details":{"cached_tokens":0}`)) {
		t.Errorf("no cached_tokens in %s", r.body)
	}
	reqs := m.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	got := reqs[0]
	if !reflect.DeepEqual(got.Prompt, []int32{0, 'H' + 2, 'i' + 2}) || got.MaxTokens != 5 || got.Sampling.Temperature != 0 ||
		got.Sampling.TopP != 1 || got.Sampling.RepetitionPenalty != 1 || got.Sampling.PenaltyLastN != 64 {
		t.Errorf("engine request %+v", got)
	}
	// The same prompt again hits the (fake) prefix cache.
	r = post(t, ts.URL+"/v1/completions", `{"prompt":"Hi","max_tokens":2}`)
	resp = decode[completionResponse](t, r)
	if resp.Usage.PromptTokensDetails.CachedTokens != 2 {
		t.Errorf("cached tokens %d, want 2", resp.Usage.PromptTokensDetails.CachedTokens)
	}
}

func TestCompletionsSamplingParams(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{AllowClientPriority: true}, m)
	r := post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":3,"temperature":0.7,"top_p":0.9,"top_k":40,"min_p":0.05,
		"seed":42,"presence_penalty":0.5,"frequency_penalty":-0.5,"repetition_penalty":1.1,"stop":["zz","yy"],"user":"u1",
		"ignore_eos":true,"logit_bias":{"5":-100},"stop_token_ids":[7],"priority":3}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := m.requests()[0]
	sp := got.Sampling
	if sp.Temperature != 0.7 || sp.TopP != 0.9 || sp.TopK != 40 || sp.MinP != 0.05 || !sp.HasSeed || sp.Seed != 42 ||
		sp.PresencePenalty != 0.5 || sp.FrequencyPenalty != -0.5 || sp.RepetitionPenalty != 1.1 ||
		!reflect.DeepEqual(sp.Stop, []string{"zz", "yy"}) || !got.IgnoreEOS || sp.LogitBias[5] != -100 ||
		!reflect.DeepEqual(sp.StopTokens, []int32{7}) || got.Priority != -3 || got.NoSpeculation {
		t.Errorf("engine request %+v", got)
	}
	// max_completion_tokens wins over max_tokens; a single stop string;
	// "speculative": false opts out of speculative decoding.
	post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":3,"max_completion_tokens":4,"stop":"q","top_k":-1,"speculative":false}`)
	got = m.requests()[1]
	if got.MaxTokens != 4 || !reflect.DeepEqual(got.Sampling.Stop, []string{"q"}) || got.Sampling.TopK != 0 || !got.NoSpeculation {
		t.Errorf("engine request %+v", got)
	}
}

func TestCompletionsStop(t *testing.T) {
	_, ts := newTestServer(t, Options{}, newFake("tiny"))
	resp := decode[completionResponse](t, post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":10,"stop":"c"}`))
	if c := resp.Choices[0]; c.Text != "ab" || *c.FinishReason != "stop" {
		t.Errorf("choice %+v", c)
	}
}

func TestCompletionsPromptForms(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{}, m)
	for _, tc := range []struct {
		prompt  string
		prompts [][]int32
	}{
		{`"ab"`, [][]int32{{0, 'a' + 2, 'b' + 2}}},
		{`["a","b"]`, [][]int32{{0, 'a' + 2}, {0, 'b' + 2}}},
		{`[5,6,7]`, [][]int32{{5, 6, 7}}},
		{`[[5],[6,7]]`, [][]int32{{5}, {6, 7}}},
		{`["a",[9]]`, [][]int32{{0, 'a' + 2}, {9}}},
	} {
		before := len(m.requests())
		r := post(t, ts.URL+"/v1/completions", `{"prompt":`+tc.prompt+`,"max_tokens":2,"n":2}`)
		if r.status != 200 {
			t.Fatalf("prompt %s: status %d: %s", tc.prompt, r.status, r.body)
		}
		resp := decode[completionResponse](t, r)
		if len(resp.Choices) != 2*len(tc.prompts) {
			t.Fatalf("prompt %s: %d choices", tc.prompt, len(resp.Choices))
		}
		for i, c := range resp.Choices {
			if c.Index != i || c.Text != "ab" {
				t.Errorf("prompt %s: choice %d: %+v", tc.prompt, i, c)
			}
		}
		reqs := m.requests()[before:]
		var got [][]int32
		for _, rq := range reqs {
			got = append(got, rq.Prompt)
		}
		var want [][]int32
		for _, p := range tc.prompts {
			want = append(want, p, p)
		}
		sortPrompts(got)
		sortPrompts(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("prompt %s: engine prompts %v, want %v", tc.prompt, got, want)
		}
		total := 0
		for _, p := range tc.prompts {
			total += len(p)
		}
		if resp.Usage.PromptTokens != total || resp.Usage.CompletionTokens != 4*len(tc.prompts) {
			t.Errorf("prompt %s: usage %+v", tc.prompt, resp.Usage)
		}
	}
}

func sortPrompts(p [][]int32) {
	sort.Slice(p, func(i, j int) bool {
		a, b := p[i], p[j]
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return len(a) < len(b)
	})
}

func TestCompletionsN2Seeds(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{}, m)
	r := post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":3,"n":2,"seed":10}`)
	resp := decode[completionResponse](t, r)
	if len(resp.Choices) != 2 || resp.Usage.PromptTokens != 2 || resp.Usage.CompletionTokens != 6 || resp.Usage.TotalTokens != 8 {
		t.Fatalf("response %s", r.body)
	}
	seeds := []uint64{}
	ids := []string{}
	for _, rq := range m.requests() {
		seeds = append(seeds, rq.Sampling.Seed)
		ids = append(ids, rq.ID)
	}
	sort.Slice(seeds, func(i, j int) bool { return seeds[i] < seeds[j] })
	if !reflect.DeepEqual(seeds, []uint64{10, 11}) {
		t.Errorf("seeds %v: each choice must draw differently", seeds)
	}
	if ids[0] == ids[1] || !strings.HasPrefix(ids[0], resp.ID) {
		t.Errorf("request ids %v (response %s)", ids, resp.ID)
	}
}

func TestCompletionsLogprobs(t *testing.T) {
	_, ts := newTestServer(t, Options{}, newFake("tiny"))
	r := post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":2,"logprobs":2}`)
	resp := decode[completionResponse](t, r)
	lp := resp.Choices[0].Logprobs
	if lp == nil {
		t.Fatalf("no logprobs: %s", r.body)
	}
	want := &completionLogprobs{
		Tokens: []string{"a", "b"}, TokenLogprobs: []float32{-0.5, -0.5},
		TopLogprobs: []map[string]float32{{"a": -0.5, "b": -1.5}, {"b": -0.5, "c": -1.5}},
		TextOffset:  []int{0, 1},
	}
	if !reflect.DeepEqual(lp, want) {
		t.Errorf("logprobs %+v, want %+v", lp, want)
	}
}

// sseEvents reads an SSE body, checking the framing: every event is one
// "data: " line followed by a blank line, and the last one is [DONE].
func sseEvents(t *testing.T, r response) []string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q", ct)
	}
	if !bytes.HasSuffix(r.body, []byte("data: [DONE]\n\n")) {
		t.Fatalf("stream does not end with data: [DONE]: %q", r.body)
	}
	var out []string
	for _, block := range strings.Split(strings.TrimSuffix(string(r.body), "\n\n"), "\n\n") {
		if !strings.HasPrefix(block, "data: ") || strings.Contains(block, "\n") {
			t.Fatalf("bad SSE event %q", block)
		}
		out = append(out, strings.TrimPrefix(block, "data: "))
	}
	if out[len(out)-1] != "[DONE]" {
		t.Fatalf("last event %q", out[len(out)-1])
	}
	return out[:len(out)-1]
}

func TestCompletionsStream(t *testing.T) {
	_, ts := newTestServer(t, Options{}, newFake("tiny"))
	r := post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":4,"stream":true,"n":2,"stream_options":{"include_usage":true}}`)
	events := sseEvents(t, r)
	texts := map[int]string{}
	finishes := map[int]string{}
	var usage *usageJSON
	for i, ev := range events {
		var c completionResponse
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		if c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || c.SystemFingerprint != "fp-tiny" {
			t.Errorf("chunk %s", ev)
		}
		if i < len(events)-1 {
			if c.Usage != nil || len(c.Choices) != 1 {
				t.Errorf("chunk %d: %s", i, ev)
			}
		} else {
			usage = c.Usage
			if len(c.Choices) != 0 || !strings.Contains(ev, `"choices":[]`) {
				t.Errorf("usage chunk %s", ev)
			}
		}
		for _, ch := range c.Choices {
			texts[ch.Index] += ch.Text
			if ch.FinishReason != nil {
				finishes[ch.Index] = *ch.FinishReason
			}
		}
	}
	if texts[0] != "abcd" || texts[1] != "abcd" || finishes[0] != "length" || finishes[1] != "length" {
		t.Errorf("texts %v finishes %v", texts, finishes)
	}
	if usage == nil || usage.PromptTokens != 2 || usage.CompletionTokens != 8 || usage.TotalTokens != 10 {
		t.Errorf("usage %+v", usage)
	}
	// Without include_usage there is no usage chunk.
	events = sseEvents(t, post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":2,"stream":true}`))
	for _, ev := range events {
		if strings.Contains(ev, `"usage":{`) {
			t.Errorf("usage without include_usage: %s", ev)
		}
	}
	if len(events) != 3 { // "a", "b", final with finish_reason
		t.Errorf("%d events: %v", len(events), events)
	}
}

func newChatFake() *fakeModel {
	m := newFake("chat")
	m.tmpl = testTemplate
	return m
}

func TestChat(t *testing.T) {
	m := newChatFake()
	_, ts := newTestServer(t, Options{}, m)
	r := post(t, ts.URL+"/v1/chat/completions", `{"model":"chat","messages":[{"role":"system","content":"be brief"},
		{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"there"}]}],"max_completion_tokens":3}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	resp := decode[chatResponse](t, r)
	if !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Object != "chat.completion" || resp.Model != "chat" || resp.SystemFingerprint != "fp-chat" {
		t.Errorf("response %s", r.body)
	}
	c := resp.Choices[0]
	if c.Message == nil || c.Message.Role != "assistant" || *c.Message.Content != "abc" || *c.FinishReason != "length" || c.Delta != nil {
		t.Errorf("choice %s", r.body)
	}
	prompt := m.requests()[0].Prompt
	if prompt[0] != 0 {
		t.Errorf("no BOS: %v", prompt)
	}
	wantText := "<|system|>be brief\n<|user|>hi\nthere\n<|assistant|>"
	if got := (byteTok{}).Decode(prompt[1:]); got != wantText {
		t.Errorf("rendered prompt %q, want %q", got, wantText)
	}
	if resp.Usage.PromptTokens != len(prompt) || resp.Usage.CompletionTokens != 3 {
		t.Errorf("usage %+v", resp.Usage)
	}
}

func TestChatToolsKeepKeyOrder(t *testing.T) {
	m := newChatFake()
	m.ctxLen = 512
	_, ts := newTestServer(t, Options{}, m)
	r := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"weather?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"z\": 1, \"a\": 2}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"sunny"}],
		"tools":[{"type":"function","function":{"name":"get","parameters":{"zeta":{"type":"string"},"alpha":{"type":"number"}}}}],"max_tokens":1}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := (byteTok{}).Decode(m.requests()[0].Prompt[1:])
	want := `<|user|>weather?
<|assistant|>{"z": 1, "a": 2}
<|tool|>sunny
TOOLS:[{"type": "function", "function": {"name": "get", "parameters": {"zeta": {"type": "string"}, "alpha": {"type": "number"}}}}]
<|assistant|>`
	if got != want {
		t.Errorf("rendered\n%s\nwant\n%s", got, want)
	}
}

func TestChatStream(t *testing.T) {
	_, ts := newTestServer(t, Options{}, newChatFake())
	r := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"n":2,"stream":true,
		"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":1}`)
	events := sseEvents(t, r)
	roles := map[int]int{}
	texts := map[int]string{}
	finishes := map[int]string{}
	lps := map[int]int{}
	var usage *usageJSON
	for _, ev := range events {
		var c chatResponse
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		if c.Object != "chat.completion.chunk" || !strings.HasPrefix(c.ID, "chatcmpl-") {
			t.Errorf("chunk %s", ev)
		}
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Message != nil || ch.Delta == nil {
				t.Errorf("chunk without delta: %s", ev)
				continue
			}
			if ch.Delta.Role == "assistant" {
				roles[ch.Index]++
			}
			if ch.Delta.Content != nil {
				texts[ch.Index] += *ch.Delta.Content
			}
			if ch.FinishReason != nil {
				finishes[ch.Index] = *ch.FinishReason
			}
			if ch.Logprobs != nil {
				for _, lp := range ch.Logprobs.Content {
					lps[ch.Index]++
					if len(lp.TopLogprobs) != 1 || lp.TopLogprobs[0].Token != lp.Token || len(lp.Bytes) != 1 {
						t.Errorf("logprob %+v", lp)
					}
				}
			}
		}
	}
	for i := 0; i < 2; i++ {
		if roles[i] != 1 || texts[i] != "abc" || finishes[i] != "length" || lps[i] != 3 {
			t.Errorf("choice %d: roles %d text %q finish %q logprobs %d", i, roles[i], texts[i], finishes[i], lps[i])
		}
	}
	if usage == nil || usage.CompletionTokens != 6 {
		t.Errorf("usage %+v", usage)
	}
}

func TestChatLogprobs(t *testing.T) {
	_, ts := newTestServer(t, Options{}, newChatFake())
	r := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"logprobs":true,"top_logprobs":2}`)
	resp := decode[chatResponse](t, r)
	lp := resp.Choices[0].Logprobs
	if lp == nil || len(lp.Content) != 2 {
		t.Fatalf("logprobs: %s", r.body)
	}
	want := chatLogprob{Token: "a", Logprob: -0.5, Bytes: []int{'a'}, TopLogprobs: []chatTopLogpro{
		{Token: "a", Logprob: -0.5, Bytes: []int{'a'}}, {Token: "b", Logprob: -1.5, Bytes: []int{'b'}}}}
	if !reflect.DeepEqual(lp.Content[0], want) {
		t.Errorf("logprob %+v, want %+v", lp.Content[0], want)
	}
	// Without logprobs the field is null.
	r = post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}`)
	if !bytes.Contains(r.body, []byte(`"logprobs":null`)) {
		t.Errorf("body %s", r.body)
	}
}

func TestErrors(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{MaxBodyBytes: 1 << 10}, m, newChatFake())
	u := ts.URL
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		param                    string
	}{
		{"unknown model", "POST", "/v1/completions", `{"model":"nope","prompt":"x"}`, 404, ""},
		{"unknown model chat", "POST", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, 404, ""},
		{"unknown model tokenize", "POST", "/tokenize", `{"model":"nope","prompt":"x"}`, 404, ""},
		{"unknown model card", "GET", "/v1/models/nope", ``, 404, ""},
		{"malformed json", "POST", "/v1/completions", `{"prompt":`, 400, ""},
		{"not an object", "POST", "/v1/completions", `[1,2]`, 400, ""},
		{"empty body", "POST", "/v1/completions", ``, 400, ""},
		{"wrong type", "POST", "/v1/completions", `{"prompt":"x","max_tokens":"many"}`, 400, "max_tokens"},
		{"temperature", "POST", "/v1/completions", `{"prompt":"x","temperature":3}`, 400, "temperature"},
		{"top_p", "POST", "/v1/completions", `{"prompt":"x","top_p":0}`, 400, "top_p"},
		{"top_k", "POST", "/v1/completions", `{"prompt":"x","top_k":-2}`, 400, "top_k"},
		{"min_p", "POST", "/v1/completions", `{"prompt":"x","min_p":1.5}`, 400, "min_p"},
		{"presence", "POST", "/v1/completions", `{"prompt":"x","presence_penalty":2.5}`, 400, "presence_penalty"},
		{"frequency", "POST", "/v1/completions", `{"prompt":"x","frequency_penalty":-3}`, 400, "frequency_penalty"},
		{"repetition", "POST", "/v1/completions", `{"prompt":"x","repetition_penalty":0}`, 400, "repetition_penalty"},
		{"n", "POST", "/v1/completions", `{"prompt":"x","n":0}`, 400, "n"},
		{"max_tokens", "POST", "/v1/completions", `{"prompt":"x","max_tokens":0}`, 400, "max_tokens"},
		{"stop type", "POST", "/v1/completions", `{"prompt":"x","stop":5}`, 400, "stop"},
		{"empty stop", "POST", "/v1/completions", `{"prompt":"x","stop":[""]}`, 400, "stop"},
		{"logit_bias", "POST", "/v1/completions", `{"prompt":"x","logit_bias":{"999":1}}`, 400, "logit_bias"},
		{"logprobs", "POST", "/v1/completions", `{"prompt":"x","logprobs":21}`, 400, "logprobs"},
		{"prompt missing", "POST", "/v1/completions", `{"max_tokens":1}`, 400, "prompt"},
		{"prompt empty array", "POST", "/v1/completions", `{"prompt":[]}`, 400, "prompt"},
		{"prompt bad id", "POST", "/v1/completions", `{"prompt":[1,9999]}`, 400, "prompt"},
		{"prompt bad type", "POST", "/v1/completions", `{"prompt":{"a":1}}`, 400, "prompt"},
		{"prompt over context", "POST", "/v1/completions", `{"prompt":"` + strings.Repeat("x", 70) + `"}`, 400, "prompt"},
		{"max_tokens over context", "POST", "/v1/completions", `{"prompt":"xx","max_tokens":62}`, 400, "max_tokens"},
		{"max_completion_tokens over context", "POST", "/v1/completions", `{"prompt":"xx","max_completion_tokens":62}`, 400, "max_completion_tokens"},
		{"echo", "POST", "/v1/completions", `{"prompt":"x","echo":true}`, 400, "echo"},
		{"no template", "POST", "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"x"}]}`, 400, "messages"},
		{"template raises", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"bad","content":"x"}]}`, 400, "messages"},
		{"messages missing", "POST", "/v1/chat/completions", `{"model":"chat"}`, 400, "messages"},
		{"messages empty", "POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`, 400, "messages"},
		{"message without role", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"content":"x"}]}`, 400, "messages"},
		{"image part", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "messages"},
		{"top_logprobs without logprobs", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"x"}],"top_logprobs":2}`, 400, "top_logprobs"},
		{"chat over context", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"` + strings.Repeat("x", 70) + `"}]}`, 400, "messages"},
		{"detokenize bad id", "POST", "/detokenize", `{"tokens":[-1]}`, 400, "tokens"},
		{"too large", "POST", "/v1/completions", `{"prompt":"` + strings.Repeat("x", 2000) + `"}`, 413, ""},
		{"wrong method", "GET", "/v1/completions", ``, 405, ""},
		{"wrong method models", "POST", "/v1/models", `{}`, 405, ""},
		{"no such path", "GET", "/v2/whatever", ``, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, u+tc.path, tc.body)
			e := checkError(t, r, tc.status, tc.param)
			if tc.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if strings.HasPrefix(tc.name, "unknown model") && e["code"] != "model_not_found" {
				t.Errorf("code %v", e["code"])
			}
		})
	}
	if n := len(m.requests()); n != 0 {
		t.Errorf("%d requests reached the engine", n)
	}
	// The template's own message is passed through.
	r := post(t, u+"/v1/chat/completions", `{"model":"chat","messages":[{"role":"bad","content":"x"}]}`)
	if e := checkError(t, r, 400, "messages"); e["message"] != "the first message must come from the user" {
		t.Errorf("message %v", e["message"])
	}
	r = post(t, u+"/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"x"}]}`)
	if e := checkError(t, r, 400, "messages"); !strings.Contains(e["message"].(string), "no chat template") {
		t.Errorf("message %v", e["message"])
	}
}

func TestEngineErrors(t *testing.T) {
	m := newFake("tiny")
	s, ts := newTestServer(t, Options{RetryAfter: 3}, m)
	m.setSubmit(func(*engine.Request, int) error { return engine.ErrOverloaded })
	r := post(t, ts.URL+"/v1/completions", `{"prompt":"x"}`)
	e := checkError(t, r, 429, "")
	if r.header.Get("Retry-After") != "3" || e["code"] != "overloaded" || e["type"] != "rate_limit_error" {
		t.Errorf("429: Retry-After %q, %v", r.header.Get("Retry-After"), e)
	}
	m.setSubmit(func(*engine.Request, int) error {
		return &engine.InvalidRequestError{Param: "temperature", Msg: "bad"}
	})
	checkError(t, post(t, ts.URL+"/v1/completions", `{"prompt":"x"}`), 400, "temperature")
	m.setSubmit(func(*engine.Request, int) error { return engine.ErrDraining })
	r = post(t, ts.URL+"/v1/completions", `{"prompt":"x"}`)
	checkError(t, r, 503, "")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	m.setSubmit(func(*engine.Request, int) error { return errors.New("boom") })
	checkError(t, post(t, ts.URL+"/v1/completions", `{"prompt":"x"}`), 500, "")

	// n=2 where the second Submit is refused: the first is cancelled.
	m.setSubmit(func(_ *engine.Request, k int) error {
		if k%2 == 1 {
			return engine.ErrOverloaded
		}
		return nil
	})
	m.block.Store(true)
	checkError(t, post(t, ts.URL+"/v1/completions", `{"prompt":"x","n":2}`), 429, "")
	select {
	case <-m.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the choice already submitted was not cancelled")
	}
	m.block.Store(false)
	m.setSubmit(nil)

	// Server-side draining: new requests get 503.
	s.StartDrain()
	for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
		r := post(t, ts.URL+path, `{"prompt":"x","messages":[{"role":"user","content":"x"}]}`)
		e := checkError(t, r, 503, "")
		if e["code"] != "draining" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s: %v", path, e)
		}
	}
}

// TestClientDisconnect checks that a client going away cancels its
// request's context, streaming or not.
func TestClientDisconnect(t *testing.T) {
	for _, stream := range []bool{false, true} {
		m := newFake("tiny")
		m.block.Store(true)
		_, ts := newTestServer(t, Options{}, m)
		ctx, cancel := context.WithCancel(context.Background())
		body := `{"prompt":"x","max_tokens":50,"stream":false}`
		if stream {
			body = strings.Replace(body, "false", "true", 1)
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			if stream {
				// Read the first event, then hang up.
				br := bufio.NewReader(resp.Body)
				line, _ := br.ReadString('\n')
				if !strings.HasPrefix(line, "data: ") {
					t.Errorf("first line %q", line)
				}
				cancel()
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
		if !stream {
			// Wait until the engine has the request, then hang up.
			deadline := time.Now().Add(5 * time.Second)
			for len(m.requests()) == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}
		select {
		case <-m.cancelled:
		case <-time.After(5 * time.Second):
			t.Fatalf("stream=%v: the engine never saw the cancellation", stream)
		}
		<-done
		deadline := time.Now().Add(5 * time.Second)
		for m.running.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := m.running.Load(); n != 0 {
			t.Errorf("stream=%v: %d requests still running", stream, n)
		}
	}
}

func TestModels(t *testing.T) {
	_, ts := newTestServer(t, Options{}, newFake("a"), newChatFake())
	r := do(t, "GET", ts.URL+"/v1/models", "")
	var list struct {
		Object string      `json:"object"`
		Data   []modelCard `json:"data"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 {
		t.Fatalf("%d %s %v", r.status, r.body, err)
	}
	if list.Object != "list" || len(list.Data) != 2 || list.Data[0].ID != "a" || list.Data[1].ID != "chat" {
		t.Fatalf("%s", r.body)
	}
	a := list.Data[0]
	if a.Object != "model" || a.OwnedBy != "sluice" || a.MaxModelLen != 64 || a.Fingerprint != "fp-a" || a.QuantMix != "F32:3" ||
		a.Created != 1700000000 || a.ChatTmpl || !list.Data[1].ChatTmpl || a.Path != "a.gguf" || a.Root != "a.gguf" {
		t.Errorf("card %+v", a)
	}
	card := decode[modelCard](t, do(t, "GET", ts.URL+"/v1/models/chat", ""))
	if card.ID != "chat" {
		t.Errorf("card %+v", card)
	}
	// A request picks its model by name.
	resp := decode[completionResponse](t, post(t, ts.URL+"/v1/completions", `{"model":"chat","prompt":"x","max_tokens":1}`))
	if resp.Model != "chat" || resp.SystemFingerprint != "fp-chat" {
		t.Errorf("response %+v", resp)
	}
}

func TestTokenize(t *testing.T) {
	_, ts := newTestServer(t, Options{}, newChatFake())
	r := post(t, ts.URL+"/tokenize", `{"model":"chat","prompt":"ab"}`)
	got := decode[tokenizeResponse](t, r)
	if !reflect.DeepEqual(got.Tokens, []int32{0, 'a' + 2, 'b' + 2}) || got.Count != 3 || got.MaxModelLen != 64 || got.TokenStrs != nil {
		t.Errorf("tokenize %s", r.body)
	}
	got = decode[tokenizeResponse](t, post(t, ts.URL+"/tokenize", `{"prompt":"ab","add_special_tokens":false,"return_token_strs":true}`))
	if !reflect.DeepEqual(got.Tokens, []int32{'a' + 2, 'b' + 2}) || !reflect.DeepEqual(got.TokenStrs, []string{"a", "b"}) {
		t.Errorf("tokenize %+v", got)
	}
	got = decode[tokenizeResponse](t, post(t, ts.URL+"/tokenize", `{"messages":[{"role":"user","content":"q"}]}`))
	if (byteTok{}).Decode(got.Tokens) != "<s><|user|>q\n<|assistant|>" {
		t.Errorf("chat tokenize %q", (byteTok{}).Decode(got.Tokens))
	}
	checkError(t, post(t, ts.URL+"/tokenize", `{}`), 400, "prompt")
	r = post(t, ts.URL+"/detokenize", `{"model":"chat","tokens":[99,100]}`)
	var d map[string]string
	if err := json.Unmarshal(r.body, &d); err != nil || d["prompt"] != "ab" || len(d) != 1 {
		t.Errorf("detokenize %s", r.body)
	}
	checkError(t, post(t, ts.URL+"/detokenize", `{}`), 400, "tokens")
}

func TestHealth(t *testing.T) {
	m := newFake("tiny")
	s, ts := newTestServer(t, Options{Version: "1.2.3"}, m)
	for _, p := range []string{"/health", "/ready"} {
		if r := do(t, "GET", ts.URL+p, ""); r.status != 200 {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	r := do(t, "GET", ts.URL+"/version", "")
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"version":"1.2.3"`)) {
		t.Errorf("/version: %d %s", r.status, r.body)
	}
	m.mu.Lock()
	m.stats.Healthy = false
	m.mu.Unlock()
	if r := do(t, "GET", ts.URL+"/health", ""); r.status != 503 || !bytes.Contains(r.body, []byte(`"status":"unhealthy"`)) {
		t.Errorf("/health of an unhealthy engine: %d %s", r.status, r.body)
	}
	m.mu.Lock()
	m.stats.Healthy = true
	m.mu.Unlock()
	s.StartDrain()
	// Liveness stays up while draining (a probe must not kill a pod
	// finishing its requests); readiness goes down.
	if r := do(t, "GET", ts.URL+"/health", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"status":"draining"`)) {
		t.Errorf("/health while draining: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", ts.URL+"/ready", ""); r.status != 503 {
		t.Errorf("/ready while draining: %d %s", r.status, r.body)
	}
}

// TestDrain checks graceful shutdown: a running stream finishes, new
// requests get 503 meanwhile, and Drain returns once the stream is done.
func TestDrain(t *testing.T) {
	m := newFake("tiny")
	m.reply = "abc"
	m.block.Store(true)
	s, ts := newTestServer(t, Options{}, m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions", strings.NewReader(`{"prompt":"x","stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q", line)
	}
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Draining() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	checkError(t, post(t, ts.URL+"/v1/completions", `{"prompt":"x"}`), 503, "")
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v while a request runs", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(m.release) // the running request finishes normally
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rest), `"finish_reason":"stop"`) || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the running stream did not finish: %q", rest)
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return")
	}
}

// A prompt array times n is bounded: the choices of one request are all
// submitted (and their streams allocated) up front.
func TestCompletionsTooManyChoices(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{}, m)
	prompts := strings.TrimSuffix(strings.Repeat(`[5],`, maxChoices/maxN+1), ",")
	r := post(t, ts.URL+"/v1/completions", `{"prompt":[`+prompts+`],"n":`+strconv.Itoa(maxN)+`,"max_tokens":1}`)
	checkError(t, r, http.StatusBadRequest, "prompt")
	if n := len(m.requests()); n != 0 {
		t.Errorf("%d requests reached the engine", n)
	}
	// At the limit the request runs.
	prompts = strings.TrimSuffix(strings.Repeat(`[5],`, maxChoices/maxN), ",")
	r = post(t, ts.URL+"/v1/completions", `{"prompt":[`+prompts+`],"n":`+strconv.Itoa(maxN)+`,"max_tokens":1}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if got := len(decode[completionResponse](t, r).Choices); got != maxChoices {
		t.Errorf("%d choices, want %d", got, maxChoices)
	}
}

// More choices than the model's queue holds can never be accepted: a 400
// naming n, not a retryable 429, even on an idle server.
func TestChoicesBeyondQueue(t *testing.T) {
	m := newChatFake()
	m.maxQueue = 4
	_, ts := newTestServer(t, Options{}, m)
	for _, body := range []string{`{"prompt":"x","n":5,"max_tokens":1}`, `{"prompt":["x","y","z"],"n":2,"max_tokens":1}`} {
		e := checkError(t, post(t, ts.URL+"/v1/completions", body), http.StatusBadRequest, "n")
		if !strings.Contains(e["message"].(string), "--max-queue") {
			t.Errorf("%s: %v", body, e["message"])
		}
	}
	checkError(t, post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"n":5,"max_tokens":1}`), http.StatusBadRequest, "n")
	if n := len(m.requests()); n != 0 {
		t.Errorf("%d requests reached the engine", n)
	}
	if r := post(t, ts.URL+"/v1/completions", `{"prompt":["x","y"],"n":2,"max_tokens":1}`); r.status != 200 {
		t.Errorf("4 choices with a queue of 4: %d %s", r.status, r.body)
	}
}

// A runtime failure inside the model's own chat template is the model's
// fault (500 server_error naming the model); raise_exception is the
// template refusing the request's shape (400).
func TestChatTemplateFailure(t *testing.T) {
	m := newChatFake()
	m.tmpl = `{% if messages[0].role == 'bad' %}{{ raise_exception('the first message must come from the user') }}{% endif %}` +
		`{{ messages[0].content + 1 }}`
	s, ts := newTestServer(t, Options{}, m)
	r := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`)
	e := checkError(t, r, http.StatusInternalServerError, "")
	if e["type"] != "server_error" || e["code"] != "model_template_error" ||
		!strings.Contains(e["message"].(string), "model template error") || !strings.Contains(e["message"].(string), "chat") {
		t.Errorf("template TypeError: %s", r.body)
	}
	r = post(t, ts.URL+"/tokenize", `{"messages":[{"role":"user","content":"x"}]}`)
	checkError(t, r, http.StatusInternalServerError, "")
	r = post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"bad","content":"x"}]}`)
	if e := checkError(t, r, http.StatusBadRequest, "messages"); !strings.Contains(e["message"].(string), "must come from the user") {
		t.Errorf("raise_exception: %s", r.body)
	}
	c := pb.NewSluiceClient(newGRPC(t, s))
	_, err := generateAll(t, c, &pb.GenerateRequest{Prompt: &pb.GenerateRequest_MessagesJson{MessagesJson: `[{"role":"user","content":"x"}]`}})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "model template error") {
		t.Errorf("gRPC: %v", err)
	}
}
