package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/tokenizer"
	"github.com/sluice-llm/sluice/tokenizer/template"
)

type chatRequest struct {
	commonParams
	Messages            json.RawMessage `json:"messages"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	Logprobs            bool            `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	ChatTemplateKwargs  json.RawMessage `json:"chat_template_kwargs"`
	AddGenerationPrompt *bool           `json:"add_generation_prompt"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
}

// chatInput is a conversation ready for the template.
type chatInput struct {
	messages            []any
	tools               []any
	extra               map[string]any
	addGenerationPrompt bool
	prompt              string // the rendered prompt, once rendered
}

// parseChat decodes messages, tools and template arguments with
// template.ParseJSON, so objects keep their key order (templates that
// print tool schemas with tojson depend on it).
func parseChat(messages, tools, toolChoice, kwargs json.RawMessage, addGen *bool) (*chatInput, error) {
	in := &chatInput{addGenerationPrompt: addGen == nil || *addGen}
	if len(messages) == 0 || string(messages) == "null" {
		return nil, badRequest("messages", "messages is required")
	}
	v, err := template.ParseJSON(messages)
	if err != nil {
		return nil, badRequest("messages", "messages: %v", err)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest("messages", "messages must be an array of message objects")
	}
	if len(list) == 0 {
		return nil, badRequest("messages", "messages is empty")
	}
	for i, m := range list {
		mm, ok := m.(*template.Map)
		if !ok {
			return nil, badRequest("messages", "messages[%d] must be an object", i)
		}
		role, _ := mm.Get("role")
		if r, ok := role.(string); !ok || r == "" {
			return nil, badRequest("messages", "messages[%d].role must be a non-empty string", i)
		}
		if err := normalizeContent(mm, i); err != nil {
			return nil, err
		}
		normalizeToolCalls(mm)
	}
	in.messages = list
	none := strings.TrimSpace(string(toolChoice)) == `"none"`
	if len(tools) > 0 && string(tools) != "null" && !none {
		tv, err := template.ParseJSON(tools)
		if err != nil {
			return nil, badRequest("tools", "tools: %v", err)
		}
		tl, ok := tv.([]any)
		if !ok {
			return nil, badRequest("tools", "tools must be an array of tool objects")
		}
		in.tools = tl
	}
	if len(kwargs) > 0 && string(kwargs) != "null" {
		kv, err := template.ParseJSON(kwargs)
		if err != nil {
			return nil, badRequest("chat_template_kwargs", "chat_template_kwargs: %v", err)
		}
		km, ok := kv.(*template.Map)
		if !ok {
			return nil, badRequest("chat_template_kwargs", "chat_template_kwargs must be an object")
		}
		in.extra = map[string]any{}
		km.Range(func(k string, v any) bool { in.extra[k] = v; return true })
	}
	return in, nil
}

// normalizeContent turns a content array of text parts into one string
// (parts joined by newlines), as vLLM does for string-content templates.
func normalizeContent(m *template.Map, i int) error {
	c, ok := m.Get("content")
	if !ok || c == nil {
		return nil
	}
	switch c := c.(type) {
	case string:
		return nil
	case []any:
		parts := make([]string, 0, len(c))
		for k, p := range c {
			pm, ok := p.(*template.Map)
			if !ok {
				return badRequest("messages", "messages[%d].content[%d] must be an object", i, k)
			}
			typ, _ := pm.Get("type")
			if typ != "text" {
				return badRequest("messages", "messages[%d].content[%d] has type %v; only text parts are supported", i, k, typ)
			}
			t, ok := pm.Get("text")
			ts, ok2 := t.(string)
			if !ok || !ok2 {
				return badRequest("messages", "messages[%d].content[%d].text must be a string", i, k)
			}
			parts = append(parts, ts)
		}
		m.Set("content", strings.Join(parts, "\n"))
		return nil
	}
	return badRequest("messages", "messages[%d].content must be a string or an array of text parts", i)
}

// normalizeToolCalls decodes each tool call's function.arguments from the
// JSON string OpenAI clients send into an object, which is what chat
// templates expect (they usually print it with tojson).
func normalizeToolCalls(m *template.Map) {
	tc, ok := m.Get("tool_calls")
	if !ok {
		return
	}
	calls, ok := tc.([]any)
	if !ok {
		return
	}
	for _, c := range calls {
		cm, ok := c.(*template.Map)
		if !ok {
			continue
		}
		f, _ := cm.Get("function")
		fm, ok := f.(*template.Map)
		if !ok {
			continue
		}
		if a, ok := fm.Get("arguments"); ok {
			if s, ok := a.(string); ok {
				if v, err := template.ParseJSON([]byte(s)); err == nil {
					fm.Set("arguments", v)
				}
			}
		}
	}
}

// renderChat renders the conversation with the model's template and
// tokenizes it: the template's markup with special tokens parsed, the
// messages' content as plain text (see literalSpans) unless the server
// was started with ParseSpecialInContent.
func (e *entry) renderChat(in *chatInput) ([]int32, error) {
	if e.tmpl == nil {
		return nil, badRequest("messages", "%v", e.terr)
	}
	text, opts, err := e.render(in)
	if err != nil {
		return nil, err
	}
	in.prompt = text
	var spans []tokenizer.Span
	if !e.parseSpecialInContent {
		if spans, err = e.literalSpans(text, in.messages, opts); err != nil {
			return nil, err
		}
	}
	// Templates usually write the BOS text themselves; add it only if not.
	addSpecial := e.bos == "" || !strings.HasPrefix(text, e.bos)
	return e.encodeChat(text, addSpecial, spans), nil
}

// chatText is the conversation rendered by the model's template.
func (e *entry) chatText(in *chatInput) (string, error) {
	if e.tmpl == nil {
		return "", badRequest("messages", "%v", e.terr)
	}
	text, _, err := e.render(in)
	return text, err
}

// render renders the conversation with the model's template.
func (e *entry) render(in *chatInput) (string, template.ChatOptions, error) {
	now := time.Now()
	opts := template.ChatOptions{
		BOS: e.bos, EOS: e.eos, AddGenerationPrompt: in.addGenerationPrompt, Tools: in.tools, Extra: in.extra,
		Now: func() time.Time { return now }, // the same clock for both renderings
	}
	text, opts, err := e.renderWithPolyfills(in, opts)
	if err != nil {
		return "", opts, e.templateFailure(err)
	}
	return text, opts, nil
}

// templateFailure classifies an error rendering the model's chat
// template. raise_exception is the template refusing the conversation's
// shape (a system role it does not take, roles that do not alternate) and
// a safety limit is hit by a conversation too large: both are the
// client's to fix (400). Any other failure (a TypeError, an undefined
// value) is a fault of the model's template: a 500 naming the model.
func (e *entry) templateFailure(err error) error {
	var tpe *template.Error
	if !errors.As(err, &tpe) || errors.Is(err, template.ErrLimit) {
		return err
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: "model_template_error",
		Message: fmt.Sprintf("model template error: the chat template of model %s failed on this conversation: %v", e.name, tpe)}
}

type chatMessage struct {
	Role             string         `json:"role,omitempty"`
	Content          *string        `json:"content,omitempty"`
	ReasoningContent *string        `json:"reasoning_content,omitempty"`
	Reasoning        *string        `json:"reasoning,omitempty"`
	ToolCalls        []toolCallJSON `json:"tool_calls,omitempty"`
	nullContent      bool           // marshal Content as null (see MarshalJSON)
}

type chatLogprob struct {
	Token       string          `json:"token"`
	Logprob     float32         `json:"logprob"`
	Bytes       []int           `json:"bytes"`
	TopLogprobs []chatTopLogpro `json:"top_logprobs"`
}

type chatTopLogpro struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type chatLogprobs struct {
	Content []chatLogprob `json:"content"`
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatMessage  `json:"message,omitempty"`
	Delta        *chatMessage  `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chatResponse struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usageJSON   `json:"usage"`
}

func byteList(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

func (e *entry) chatLogprobs(tokens []int32, lps []float32, tps [][]topLogprob) *chatLogprobs {
	out := &chatLogprobs{Content: make([]chatLogprob, len(tokens))}
	for i, id := range tokens {
		p := e.tok.Piece(id)
		lp := chatLogprob{Token: p, Logprob: lps[i], Bytes: byteList(p), TopLogprobs: make([]chatTopLogpro, len(tps[i]))}
		for k, t := range tps[i] {
			tp := e.tok.Piece(t.id)
			lp.TopLogprobs[k] = chatTopLogpro{Token: tp, Logprob: t.lp, Bytes: byteList(tp)}
		}
		out.Content[i] = lp
	}
	return out
}

func strPtr(s string) *string { return &s }

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) error {
	var body chatRequest
	e, req, n, err := s.begin(r, &body, &body.commonParams)
	if err != nil {
		return err
	}
	g, err := body.compile(e.tok) // structured output
	if err != nil {
		return err
	}
	if body.TopLogprobs != nil {
		k := *body.TopLogprobs
		if k < 0 || k > maxTopLogprobs {
			return badRequest("top_logprobs", "top_logprobs must be in [0, %d], got %d", maxTopLogprobs, k)
		}
		if k > 0 && !body.Logprobs {
			return badRequest("top_logprobs", "top_logprobs requires logprobs to be true")
		}
		req.Sampling.TopLogprobs = k
	}
	req.Sampling.Logprobs = body.Logprobs
	in, err := parseChat(body.Messages, body.Tools, body.ToolChoice, body.ChatTemplateKwargs, body.AddGenerationPrompt)
	if err != nil {
		return err
	}
	plan, err := planTools(body.Tools, body.ToolChoice, body.ParallelToolCalls)
	if err != nil {
		return err
	}
	if tg, err := plan.grammar(e); err != nil {
		return err
	} else if tg != nil && g != nil {
		return badRequest("tool_choice", "tool_choice %q forces a tool call; it cannot be combined with a structured-output format", plan.force)
	} else if tg != nil {
		g = tg
	}
	prompt, err := e.renderChat(in)
	if err != nil {
		return err
	}
	popts, parse := e.parserOptions(plan, in.prompt)
	maxParam := "max_tokens"
	if body.MaxCompletionTokens != nil {
		maxParam = "max_completion_tokens"
	}
	if err := checkLength(prompt, req.MaxTokens, e.info.ContextLength, "messages", maxParam); err != nil {
		return err
	}
	j := &job{e: e, id: requestID(r.Context(), "chatcmpl-"), prompts: [][]int32{prompt}, n: n, req: req, timeout: body.limit, rec: record(r.Context()), grammar: g}
	if g == nil {
		j.lazy = plan.lazy(e)
	}
	events, err := s.run(r.Context(), j)
	if err != nil {
		return err
	}
	resp := chatResponse{
		ID: j.id, Object: "chat.completion", Created: time.Now().Unix(), Model: e.name,
		SystemFingerprint: e.info.Fingerprint,
	}
	if body.Stream {
		resp.Object = "chat.completion.chunk"
		var ps *chatParsers
		if parse {
			ps = newChatParsers(e.format, popts, n)
		}
		s.stream(r.Context(), w, events, j.n, j.n, body.includeUsage(), &chatChunks{chunk: resp, j: j, wantLP: body.Logprobs, ps: ps})
		return nil
	}
	cs, err := s.collect(r.Context(), events, n, body.Logprobs)
	if err != nil {
		return err
	}
	for i, c := range cs {
		fr := finishReason(c.finish)
		msg := &chatMessage{Role: "assistant", Content: strPtr(string(c.text))}
		if parse {
			var calls bool
			if msg, calls = parsedMessage(e.format, popts, string(c.text)); calls && fr == "stop" {
				fr = "tool_calls"
			}
		}
		ch := chatChoice{Index: i, Message: msg, FinishReason: &fr}
		if body.Logprobs {
			ch.Logprobs = e.chatLogprobs(c.tokens, c.logprobs, c.tops)
		}
		resp.Choices = append(resp.Choices, ch)
	}
	u := sumUsage(cs, n)
	resp.Usage = &u
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// chatChunks writes a chat completion's stream: a role chunk per choice,
// then content (or parsed tool-call and reasoning) deltas, then usage.
type chatChunks struct {
	chunk  chatResponse
	j      *job
	wantLP bool
	ps     *chatParsers // tool-call and reasoning parsers; nil for none
}

func (c *chatChunks) open(out *sseWriter) {
	for i := 0; i < c.j.n; i++ {
		c.chunk.Choices = []chatChoice{{Index: i, Delta: &chatMessage{Role: "assistant", Content: strPtr("")}}}
		out.send(c.chunk)
	}
}

func (c *chatChunks) event(out *sseWriter, index int, ev engine.Event) {
	if c.ps != nil {
		c.ps.send(out, &c.chunk, index, ev, c.wantLP, c.j)
		return
	}
	if ev.Text == "" && !ev.Done && !(c.wantLP && ev.HasToken) {
		return
	}
	ch := chatChoice{Index: index, Delta: &chatMessage{}}
	if ev.Text != "" || !ev.Done {
		ch.Delta.Content = strPtr(ev.Text)
	}
	if c.wantLP && ev.HasToken {
		ch.Logprobs = c.j.e.chatLogprobs([]int32{ev.Token}, []float32{ev.Logprob}, [][]topLogprob{tops(ev)})
	}
	if ev.Done {
		ch.FinishReason = strPtr(finishReason(ev.Finish))
	}
	c.chunk.Choices = []chatChoice{ch}
	out.send(c.chunk)
}

func (c *chatChunks) usage(out *sseWriter, u usageJSON) {
	c.chunk.Choices = []chatChoice{}
	c.chunk.Usage = &u
	out.send(c.chunk)
}
