package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/shared"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/tokenizer"
)

// These tests drive a real engine on stories260K through the official
// OpenAI Go SDK on a loopback listener: what an OpenAI client sends must
// work, and what sluice answers must decode into the SDK's types.

// toolsTemplate renders each message as <|role|>content, then the tool
// definitions as JSON when there are any, so a test can see that tools
// reach the template.
const toolsTemplate = `{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}
{% endfor %}{% if tools is defined and tools %}<|tools|>{{ tools | tojson }}
{% endif %}{% if add_generation_prompt %}<|assistant|>{% endif %}`

// copyWithTemplate writes a copy of the GGUF at src with tmpl as its
// tokenizer.chat_template.
func copyWithTemplate(t *testing.T, src, tmpl string) string {
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

// sdkServer is a Server with real engines behind an httptest listener.
type sdkServer struct {
	srv     *Server
	ts      *httptest.Server
	engines map[string]*engine.Engine
	client  openai.Client
}

// newSDKServer serves stories260K as "stories" and, with withChat, a copy
// with toolsTemplate as "chat". tune adjusts both engines' configuration.
func newSDKServer(t *testing.T, opts Options, withChat bool, tune func(*engine.Config)) *sdkServer {
	t.Helper()
	path := testenv.Shared(t, "models", "stories260K.gguf")
	s := &sdkServer{srv: New(opts), engines: map[string]*engine.Engine{}}
	add := func(name, p string) {
		cfg := engine.Config{ModelPath: p, Name: name, Threads: 1, KVMemory: 8 << 20}
		if tune != nil {
			tune(&cfg)
		}
		eng, err := engine.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.srv.AddModel(name, FromEngine[*engine.Stream](eng)); err != nil {
			eng.Close()
			t.Fatal(err)
		}
		s.engines[name] = eng
	}
	add("stories", path)
	if withChat {
		add("chat", copyWithTemplate(t, path, toolsTemplate))
	}
	s.ts = httptest.NewServer(s.srv.Handler())
	t.Cleanup(func() {
		s.ts.Close()
		s.srv.Close()
	})
	s.client = openai.NewClient(
		option.WithBaseURL(s.ts.URL+"/v1/"),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0), // 429 and 503 must reach the test
		option.WithRequestTimeout(2*time.Minute),
	)
	return s
}

// waitIdle waits until every engine has no request and no KV block in use.
func (s *sdkServer) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for name, eng := range s.engines {
		for {
			st := eng.Stats()
			if st.Running == 0 && st.Waiting == 0 && st.KVUsage == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still busy: running %d, waiting %d, KV usage %v", name, st.Running, st.Waiting, st.KVUsage)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for s.srv.inflight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still in flight in the server", s.srv.inflight.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func completionText(c *openai.Completion) []string {
	out := make([]string, len(c.Choices))
	for _, ch := range c.Choices {
		out[ch.Index] = ch.Text
	}
	return out
}

func TestServeSDKCompletions(t *testing.T) {
	s := newSDKServer(t, Options{}, false, nil)
	ctx := context.Background()
	prompt, want, n := goldenText(t)
	greedy := openai.CompletionNewParams{
		Model:       "stories",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(int64(n)),
		Temperature: openai.Float(0),
	}

	t.Run("greedy", func(t *testing.T) {
		c, err := s.client.Completions.New(ctx, greedy)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 1 || c.Choices[0].Text != want || c.Choices[0].FinishReason != openai.CompletionChoiceFinishReasonLength {
			t.Errorf("choices %+v, want text %q finishing with length", c.Choices, want)
		}
		if c.Object != "text_completion" || c.Model != "stories" || !strings.HasPrefix(c.ID, "cmpl-") || c.SystemFingerprint == "" {
			t.Errorf("object %q model %q id %q fingerprint %q", c.Object, c.Model, c.ID, c.SystemFingerprint)
		}
		if c.Usage.PromptTokens != 5 || c.Usage.CompletionTokens != int64(n) || c.Usage.TotalTokens != int64(5+n) {
			t.Errorf("usage %+v", c.Usage)
		}
	})

	t.Run("stop as the max_tokens-th token", func(t *testing.T) {
		text := func(n int, stop string) (string, openai.CompletionChoiceFinishReason) {
			p := greedy
			p.MaxTokens = openai.Int(int64(n))
			if stop != "" {
				p.Stop = openai.CompletionNewParamsStopUnion{OfString: openai.String(stop)}
			}
			c, err := s.client.Completions.New(ctx, p)
			if err != nil || len(c.Choices) != 1 {
				t.Fatalf("max_tokens %d, stop %q: %+v, %v", n, stop, c, err)
			}
			return c.Choices[0].Text, c.Choices[0].FinishReason
		}
		// The first k whose token adds text not seen before it.
		for k := 3; k < n; k++ {
			before, _ := text(k, "")
			upto, _ := text(k+1, "")
			piece := strings.TrimPrefix(upto, before)
			if piece == "" || strings.Index(upto, piece) != len(before) {
				continue
			}
			if got, fr := text(k+1, piece); got != before || fr != openai.CompletionChoiceFinishReasonStop {
				t.Errorf("stop %q completed by token %d of max_tokens %d: %q, %s; want %q, stop", piece, k+1, k+1, got, fr, before)
			}
			return
		}
		t.Fatalf("no token of %q adds new text", want)
	})

	t.Run("token ids", func(t *testing.T) {
		tr := decode[tokenizeResponse](t, post(t, s.ts.URL+"/tokenize", `{"model":"stories","prompt":`+jsonString(prompt)+`}`))
		ids := make([]int64, len(tr.Tokens))
		for i, id := range tr.Tokens {
			ids[i] = int64(id)
		}
		p := greedy
		p.Prompt = openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: ids}
		c, err := s.client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Choices[0].Text != want {
			t.Errorf("token-id prompt: %q, want %q", c.Choices[0].Text, want)
		}
	})

	t.Run("stream", func(t *testing.T) {
		p := greedy
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		st := s.client.Completions.NewStreaming(ctx, p)
		var text strings.Builder
		var usage openai.CompletionUsage
		finish := ""
		chunks := 0
		for st.Next() {
			c := st.Current()
			chunks++
			for _, ch := range c.Choices {
				text.WriteString(ch.Text)
				if ch.FinishReason != "" {
					finish = string(ch.FinishReason)
				}
			}
			if c.Usage.TotalTokens > 0 {
				usage = c.Usage
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if text.String() != want || finish != "length" || chunks < 2 {
			t.Errorf("streamed %q (finish %q, %d chunks), want %q", text.String(), finish, chunks, want)
		}
		if usage.CompletionTokens != int64(n) || usage.PromptTokens != 5 {
			t.Errorf("stream usage %+v", usage)
		}
	})

	t.Run("stop", func(t *testing.T) {
		// A stop string from the middle of the greedy text cuts it there.
		stop := want[len(want)/2 : len(want)/2+3]
		cut := want[:strings.Index(want, stop)]
		for _, stream := range []bool{false, true} {
			p := greedy
			p.Stop = openai.CompletionNewParamsStopUnion{OfStringArray: []string{"zzzz-never", stop}}
			text, finish := "", ""
			if stream {
				st := s.client.Completions.NewStreaming(ctx, p)
				for st.Next() {
					for _, ch := range st.Current().Choices {
						text += ch.Text
						if ch.FinishReason != "" {
							finish = string(ch.FinishReason)
						}
					}
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				c, err := s.client.Completions.New(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				text, finish = c.Choices[0].Text, string(c.Choices[0].FinishReason)
			}
			if text != cut || finish != "stop" {
				t.Errorf("stream=%v stop %q: %q (finish %q), want %q (stop)", stream, stop, text, finish, cut)
			}
		}
	})

	t.Run("n and seed", func(t *testing.T) {
		p := openai.CompletionNewParams{
			Model:       "stories",
			Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
			MaxTokens:   openai.Int(24),
			Temperature: openai.Float(1),
			N:           openai.Int(3),
			Seed:        openai.Int(1234),
		}
		p.SetExtraFields(map[string]any{"ignore_eos": true})
		a, err := s.client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		ta, tb := completionText(a), completionText(b)
		if len(ta) != 3 || fmt.Sprint(ta) != fmt.Sprint(tb) {
			t.Errorf("the same seed gave different choices:\n%q\n%q", ta, tb)
		}
		if ta[0] == ta[1] && ta[1] == ta[2] {
			t.Errorf("n=3 sampled three identical choices %q", ta[0])
		}
		if a.Usage.CompletionTokens != 3*24 || a.Usage.PromptTokens != 5 {
			t.Errorf("usage %+v, want 72 completion tokens (ignore_eos) and 5 prompt tokens", a.Usage)
		}
		p.Seed = openai.Int(99)
		c, err := s.client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(completionText(c)) == fmt.Sprint(ta) {
			t.Errorf("seeds 1234 and 99 gave the same choices %q", ta)
		}
	})

	t.Run("logprobs", func(t *testing.T) {
		p := greedy
		p.Logprobs = openai.Int(3)
		c, err := s.client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		lp := c.Choices[0].Logprobs
		if len(lp.Tokens) != n || len(lp.TokenLogprobs) != n || len(lp.TopLogprobs) != n || len(lp.TextOffset) != n {
			t.Fatalf("logprobs of %d tokens: %+v", n, lp)
		}
		if strings.Join(lp.Tokens, "") != want {
			t.Errorf("tokens %q do not spell %q", lp.Tokens, want)
		}
		for i, l := range lp.TokenLogprobs {
			top := lp.TopLogprobs[i]
			if len(top) == 0 || len(top) > 3 {
				t.Fatalf("token %d: %d top logprobs", i, len(top))
			}
			best := math.Inf(-1)
			for _, v := range top {
				best = max(best, v)
			}
			// Greedy picks the most likely token.
			if l > 0 || math.Abs(l-best) > 1e-4 {
				t.Errorf("token %d: logprob %v, best alternative %v", i, l, best)
			}
		}
	})
	s.waitIdle(t)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func chatParams(content string, maxTokens int) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:       "chat",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You tell stories."), openai.UserMessage(content)},
		MaxTokens:   openai.Int(int64(maxTokens)),
		Temperature: openai.Float(0),
	}
}

func TestServeSDKChat(t *testing.T) {
	s := newSDKServer(t, Options{}, true, nil)
	ctx := context.Background()
	p := chatParams("Once upon a time", 24)

	c, err := s.client.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || c.Choices[0].Message.Content == "" {
		t.Fatalf("choices %+v", c.Choices)
	}
	want := c.Choices[0].Message.Content
	if c.Object != "chat.completion" || c.Model != "chat" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Usage.CompletionTokens == 0 {
		t.Errorf("object %q model %q id %q usage %+v", c.Object, c.Model, c.ID, c.Usage)
	}
	// The reply is the model's own greedy continuation of toolsTemplate's
	// rendering (written out here), BOS first.
	rendered := "<|system|>You tell stories.\n<|user|>Once upon a time\n<|assistant|>"
	refText, refTokens, refFinish := referenceGreedyText(t, testenv.Shared(t, "models", "stories260K.gguf"), rendered, 24)
	if want != refText || c.Usage.CompletionTokens != int64(refTokens) || string(c.Choices[0].FinishReason) != refFinish {
		t.Errorf("reply %q (%d tokens, %s), want the model's greedy %q (%d tokens, %s)",
			want, c.Usage.CompletionTokens, c.Choices[0].FinishReason, refText, refTokens, refFinish)
	}
	// The prompt is the template's rendering, token for token.
	tr := decode[tokenizeResponse](t, post(t, s.ts.URL+"/tokenize",
		`{"model":"chat","messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"Once upon a time"}]}`))
	if c.Usage.PromptTokens != int64(tr.Count) {
		t.Errorf("prompt tokens %d, /tokenize of the same messages %d", c.Usage.PromptTokens, tr.Count)
	}

	t.Run("stream", func(t *testing.T) {
		sp := p
		sp.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		st := s.client.Chat.Completions.NewStreaming(ctx, sp)
		var acc openai.ChatCompletionAccumulator
		for st.Next() {
			acc.AddChunk(st.Current())
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != want || acc.Choices[0].FinishReason != c.Choices[0].FinishReason {
			t.Errorf("streamed %+v, want %q", acc.Choices, want)
		}
		if acc.Usage.CompletionTokens != c.Usage.CompletionTokens || acc.Usage.PromptTokens != c.Usage.PromptTokens {
			t.Errorf("stream usage %+v, want %+v", acc.Usage, c.Usage)
		}
	})

	t.Run("stop", func(t *testing.T) {
		if len(want) < 8 {
			t.Skipf("reply %q too short", want)
		}
		stop := want[len(want)/2 : len(want)/2+2]
		sp := p
		sp.Stop = openai.ChatCompletionNewParamsStopUnion{OfString: openai.String(stop)}
		r, err := s.client.Chat.Completions.New(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		if got, cut := r.Choices[0].Message.Content, want[:strings.Index(want, stop)]; got != cut || r.Choices[0].FinishReason != "stop" {
			t.Errorf("stop %q: %q (%s), want %q (stop)", stop, got, r.Choices[0].FinishReason, cut)
		}
	})

	t.Run("n, seed and logprobs", func(t *testing.T) {
		sp := p
		sp.Temperature = openai.Float(0.9)
		sp.N = openai.Int(2)
		sp.Seed = openai.Int(7)
		sp.Logprobs = openai.Bool(true)
		sp.TopLogprobs = openai.Int(2)
		a, err := s.client.Chat.Completions.New(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.client.Chat.Completions.New(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Choices) != 2 || len(b.Choices) != 2 {
			t.Fatalf("%d and %d choices, want 2", len(a.Choices), len(b.Choices))
		}
		for i := range a.Choices {
			ca, cb := a.Choices[i], b.Choices[i]
			if ca.Index != int64(i) || ca.Message.Content != cb.Message.Content {
				t.Errorf("choice %d: %q vs %q with the same seed", i, ca.Message.Content, cb.Message.Content)
			}
			var spelled strings.Builder
			for _, lp := range ca.Logprobs.Content {
				spelled.WriteString(lp.Token)
				if lp.Logprob > 0 || len(lp.TopLogprobs) == 0 || len(lp.TopLogprobs) > 2 || string(bytesOf(lp.Bytes)) != lp.Token {
					t.Errorf("choice %d: logprob %+v", i, lp)
				}
			}
			if spelled.String() != ca.Message.Content {
				t.Errorf("choice %d: logprob tokens spell %q, content %q", i, spelled.String(), ca.Message.Content)
			}
		}
	})

	t.Run("tools reach the template", func(t *testing.T) {
		tool := openai.ChatCompletionToolParam{Function: shared.FunctionDefinitionParam{
			Name:        "get_weather",
			Description: openai.String("Weather in a city"),
			Parameters: shared.FunctionParameters{
				"type":       "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}},
				"required":   []string{"city"},
			},
		}}
		tp := p
		tp.Tools = []openai.ChatCompletionToolParam{tool}
		r, err := s.client.Chat.Completions.New(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"model":"chat","messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"Once upon a time"}],` +
			`"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}`
		tr := decode[tokenizeResponse](t, post(t, s.ts.URL+"/tokenize", body))
		if r.Usage.PromptTokens != int64(tr.Count) || r.Usage.PromptTokens <= c.Usage.PromptTokens {
			t.Errorf("prompt tokens with tools %d, /tokenize %d, without tools %d", r.Usage.PromptTokens, tr.Count, c.Usage.PromptTokens)
		}
		ids, _ := json.Marshal(tr.Tokens)
		text := decode[map[string]string](t, post(t, s.ts.URL+"/detokenize", `{"model":"chat","tokens":`+string(ids)+`}`))["prompt"]
		if !strings.Contains(text, `<|tools|>[{"type": "function", "function": {"name": "get_weather"`) || !strings.Contains(text, `"required": ["city"]`) {
			t.Errorf("the rendered prompt does not show the tools:\n%s", text)
		}
	})
	s.waitIdle(t)
}

// referenceGreedyText is the model package's single-sequence greedy
// continuation of text (tokenized with BOS, special tokens parsed) for at
// most n tokens: the decoded text of the tokens before any
// end-of-generation token, their count, and the finish reason.
func referenceGreedyText(t *testing.T, path, text string, n int) (string, int, string) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	be, err := kernels.Open("cpu", kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt := tok.Encode(text, true, true)
	sess, err := model.NewSession(m, 1, len(prompt)+n, model.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Generate(0, prompt, n, 0, func(logits []float32) (int32, bool) {
		id := model.Argmax(logits)
		return id, tok.IsEOG(id)
	})
	if err != nil {
		t.Fatal(err)
	}
	finish := "length"
	if len(out) > 0 && tok.IsEOG(out[len(out)-1]) {
		finish = "stop"
	}
	dec := tok.NewStreamDecoder()
	var sb strings.Builder
	for _, id := range out {
		if !tok.IsEOG(id) {
			sb.WriteString(dec.Add(id))
		}
	}
	sb.WriteString(dec.Flush())
	return sb.String(), len(out), finish
}

func bytesOf(b []int64) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		out[i] = byte(v)
	}
	return out
}

// sdkError asserts that err is the SDK's *openai.Error with the status,
// type, param and code given ("" for null).
func sdkError(t *testing.T, what string, err error, status int, typ, param, code string) *openai.Error {
	t.Helper()
	var ae *openai.Error
	if !errors.As(err, &ae) {
		t.Fatalf("%s: error %v (%T), want *openai.Error", what, err, err)
	}
	if ae.StatusCode != status || ae.Type != typ || ae.Param != param || ae.Code != code || ae.Message == "" {
		t.Errorf("%s: status %d type %q param %q code %q message %q; want %d %q %q %q",
			what, ae.StatusCode, ae.Type, ae.Param, ae.Code, ae.Message, status, typ, param, code)
	}
	return ae
}

func TestServeSDKErrors(t *testing.T) {
	// One sequence at a time and one waiting request at most make 429
	// reachable; a 16 KiB body limit makes 413 cheap.
	s := newSDKServer(t, Options{MaxBodyBytes: 16 << 10, RetryAfter: 3}, true, func(c *engine.Config) {
		c.MaxNumSeqs, c.MaxQueue = 1, 1
	})
	ctx := context.Background()
	base := openai.CompletionNewParams{Model: "stories", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")}, MaxTokens: openai.Int(4)}

	p := base
	p.Temperature = openai.Float(3)
	_, err := s.client.Completions.New(ctx, p)
	sdkError(t, "temperature 3", err, 400, "invalid_request_error", "temperature", "")

	p = base
	p.MaxTokens = openai.Int(5000)
	_, err = s.client.Completions.New(ctx, p)
	sdkError(t, "max_tokens past the context", err, 400, "invalid_request_error", "max_tokens", "")

	// An error before the first event reaches a streaming client as the
	// same error.
	p = base
	p.N = openai.Int(0)
	st := s.client.Completions.NewStreaming(ctx, p)
	for st.Next() {
		t.Error("a refused stream yielded a chunk")
	}
	sdkError(t, "stream with n=0", st.Err(), 400, "invalid_request_error", "n", "")

	cp := chatParams("hi", 4)
	cp.TopLogprobs = openai.Int(3)
	_, err = s.client.Chat.Completions.New(ctx, cp)
	sdkError(t, "top_logprobs without logprobs", err, 400, "invalid_request_error", "top_logprobs", "")
	cp = chatParams("hi", 4)
	cp.Model = "stories" // no chat template
	_, err = s.client.Chat.Completions.New(ctx, cp)
	sdkError(t, "chat without a template", err, 400, "invalid_request_error", "messages", "")

	p = base
	p.Model = "gpt-4o"
	_, err = s.client.Completions.New(ctx, p)
	sdkError(t, "unknown model", err, 404, "not_found_error", "", "model_not_found")
	_, err = s.client.Models.Get(ctx, "gpt-4o")
	sdkError(t, "unknown model card", err, 404, "not_found_error", "", "model_not_found")
	m, err := s.client.Models.Get(ctx, "chat")
	if err != nil || m.ID != "chat" || m.OwnedBy != "sluice" {
		t.Errorf("model card %+v %v", m, err)
	}

	p = base
	p.Prompt = openai.CompletionNewParamsPromptUnion{OfString: openai.String(strings.Repeat("Once upon a time. ", 2000))}
	_, err = s.client.Completions.New(ctx, p)
	sdkError(t, "36 KB body", err, 413, "invalid_request_error", "", "request_too_large")

	// n=3 with a queue of one can never be accepted: a 400 naming n,
	// not a 429 to retry (the fake-engine tests cover 429).
	p = base
	p.N, p.MaxTokens = openai.Int(3), openai.Int(200)
	p.SetExtraFields(map[string]any{"ignore_eos": true})
	_, err = s.client.Completions.New(ctx, p)
	sdkError(t, "more choices than the queue", err, 400, "invalid_request_error", "n", "")
	s.waitIdle(t)

	s.srv.StartDrain()
	_, err = s.client.Chat.Completions.New(ctx, chatParams("hi", 4))
	ae := sdkError(t, "draining", err, 503, "service_unavailable_error", "", "draining")
	if ra := ae.Response.Header.Get("Retry-After"); ra != "3" {
		t.Errorf("503 Retry-After %q, want 3", ra)
	}
	if r := do(t, http.MethodGet, s.ts.URL+"/ready", ""); r.status != 503 {
		t.Errorf("/ready while draining: %d", r.status)
	}
	if r := do(t, http.MethodGet, s.ts.URL+"/health", ""); r.status != 200 {
		t.Errorf("/health while draining: %d", r.status)
	}
}

// TestServeSDKConcurrentClients runs many SDK clients at once against one
// engine, streaming and not, completions and chat, some cancelled midway.
// Every request must succeed with exactly its tokens — the text and token
// count the same seeded request gets alone, beforehand — or end in the
// client's cancellation, and the engine must end with no request and no KV
// block in use. Run it with -race.
func TestServeSDKConcurrentClients(t *testing.T) {
	s := newSDKServer(t, Options{}, true, func(c *engine.Config) { c.MaxNumSeqs, c.KVMemory = 8, 32<<20 })
	const clients, perClient, tokens = 16, 3, 16
	// want[kind/2][seed]: the text alone (streamed or not gives the same).
	var want [2][clients]string
	for g := range clients {
		for kind := 0; kind < 4; kind += 2 {
			text, n, err := concurrentRequest(s, kind, false, g, tokens)
			if err != nil || n != tokens || text == "" {
				t.Fatalf("kind %d seed %d alone: %d tokens, text %q, %v", kind, g, n, text, err)
			}
			want[kind/2][g] = text
		}
	}
	if want[0][0] == want[0][1] && want[0][1] == want[0][2] {
		t.Fatalf("seeds 0, 1, 2 give the same completion %q: the comparison would prove nothing", want[0][0])
	}
	var mu sync.Mutex
	var ok, cancelled int
	var wg sync.WaitGroup
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < perClient; k++ {
				kind := (g + k) % 4 // completion, streamed completion, chat, streamed chat
				cancel := (g*perClient+k)%5 == 2
				text, got, err := concurrentRequest(s, kind, cancel, g, tokens)
				mu.Lock()
				switch {
				case cancel && errors.Is(err, context.Canceled):
					cancelled++
				case err != nil:
					t.Errorf("client %d request %d (kind %d, cancel %v): %v", g, k, kind, cancel, err)
				case got != tokens || text != want[kind/2][g]:
					t.Errorf("client %d request %d (kind %d): %d tokens, text %q; want %d, %q (alone)", g, k, kind, got, text, tokens, want[kind/2][g])
				default:
					ok++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.waitIdle(t)
	if ok+cancelled != clients*perClient || cancelled == 0 {
		t.Errorf("%d succeeded, %d cancelled, of %d", ok, cancelled, clients*perClient)
	}
	got := parseProm(t, string(do(t, "GET", s.ts.URL+"/metrics", "").body))
	for _, m := range []string{"stories", "chat"} {
		if v := got[`vllm:num_requests_running{model_name="`+m+`"}`]; v != 0 {
			t.Errorf("%s: %v requests running after the clients are done", m, v)
		}
		if v := got[`vllm:kv_cache_usage_perc{model_name="`+m+`"}`]; v != 0 {
			t.Errorf("%s: KV usage %v after the clients are done", m, v)
		}
	}
}

// concurrentRequest makes one request of the given kind and returns its
// text (streamed deltas joined) and completion tokens. With cancel, the
// request is cancelled after its first streamed chunk (or, not streaming,
// after a short delay) and the error is the context's.
func concurrentRequest(s *sdkServer, kind int, cancel bool, seed, tokens int) (string, int, error) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	maxTokens := tokens
	if cancel {
		maxTokens = 1800 // long enough to still be running when cancelled
	}
	extra := map[string]any{"ignore_eos": true}
	usage := openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	if cancel && kind%2 == 0 {
		time.AfterFunc(20*time.Millisecond, stop)
	}
	var text strings.Builder
	switch kind {
	case 0, 1:
		p := openai.CompletionNewParams{
			Model:     "stories",
			Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
			MaxTokens: openai.Int(int64(maxTokens)), Seed: openai.Int(int64(seed)),
		}
		p.SetExtraFields(extra)
		if kind == 0 {
			c, err := s.client.Completions.New(ctx, p)
			if err != nil {
				return "", 0, err
			}
			if len(c.Choices) != 1 {
				return "", 0, fmt.Errorf("%d choices", len(c.Choices))
			}
			return c.Choices[0].Text, int(c.Usage.CompletionTokens), nil
		}
		p.StreamOptions = usage
		st := s.client.Completions.NewStreaming(ctx, p)
		defer st.Close()
		n := 0
		for st.Next() {
			if cancel {
				stop()
			}
			c := st.Current()
			for _, ch := range c.Choices {
				text.WriteString(ch.Text)
			}
			n = max(n, int(c.Usage.CompletionTokens))
		}
		return text.String(), n, st.Err()
	default:
		p := chatParams("Tell me a story", maxTokens)
		p.Temperature = openai.Float(0.8)
		p.Seed = openai.Int(int64(seed))
		p.SetExtraFields(extra)
		if kind == 2 {
			c, err := s.client.Chat.Completions.New(ctx, p)
			if err != nil {
				return "", 0, err
			}
			if len(c.Choices) != 1 {
				return "", 0, fmt.Errorf("%d choices", len(c.Choices))
			}
			return c.Choices[0].Message.Content, int(c.Usage.CompletionTokens), nil
		}
		p.StreamOptions = usage
		st := s.client.Chat.Completions.NewStreaming(ctx, p)
		defer st.Close()
		n, chunks := 0, 0
		for st.Next() {
			// The first chunks carry only the role; cancel once text flows.
			if chunks++; cancel && chunks > 2 {
				stop()
			}
			c := st.Current()
			for _, ch := range c.Choices {
				text.WriteString(ch.Delta.Content)
			}
			n = max(n, int(c.Usage.CompletionTokens))
		}
		return text.String(), n, st.Err()
	}
}

// TestServeSDKEngineClosed: a request the engine ends by closing (not the
// client by going away) is answered with the 503 of a server going away,
// not a completion whose finish_reason is the client's "abort".
func TestServeSDKEngineClosed(t *testing.T) {
	s := newSDKServer(t, Options{}, false, nil)
	p := openai.CompletionNewParams{
		Model:     "stories",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(1800),
	}
	p.SetExtraFields(map[string]any{"ignore_eos": true})
	type reply struct {
		c   *openai.Completion
		err error
	}
	done := make(chan reply, 1)
	go func() {
		c, err := s.client.Completions.New(context.Background(), p)
		done <- reply{c, err}
	}()
	eng := s.engines["stories"]
	for eng.Stats().GenerationTokens == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err == nil {
		t.Fatalf("completion after the engine closed: finish %q, %d tokens; want a 503", r.c.Choices[0].FinishReason, r.c.Usage.CompletionTokens)
	}
	sdkError(t, "engine closed", r.err, http.StatusServiceUnavailable, "service_unavailable_error", "", "draining")
}
