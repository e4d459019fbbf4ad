package server

import (
	"crypto/rand"
	"encoding/json"
	"strings"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/grammar"
	"github.com/sluice-llm/sluice/tokenizer"
	"github.com/sluice-llm/sluice/toolcall"
)

// toolPlan is what a chat request asks of tools: the tools, whether and
// how calls are parsed from the output, and the grammar that forces a
// call (tool_choice "required" or a named function).
type toolPlan struct {
	tools    []toolcall.Tool
	parse    bool   // calls are parsed from the output
	force    string // "": not forced; "required"; else the function named
	parallel bool
}

// planTools validates tools, tool_choice and parallel_tool_calls. A
// tool_choice naming a function that is not in tools, or forcing a call
// without tools, is a 400.
func planTools(rawTools, rawChoice json.RawMessage, parallel *bool) (*toolPlan, error) {
	p := &toolPlan{parallel: parallel == nil || *parallel}
	if present(rawTools) {
		var tools []struct {
			Type     string `json:"type"`
			Function *struct {
				Name       string          `json:"name"`
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		}
		if err := json.Unmarshal(rawTools, &tools); err != nil {
			return nil, badRequest("tools", "tools must be an array of {\"type\":\"function\",\"function\":{...}} objects: %v", err)
		}
		for i, t := range tools {
			if t.Type != "function" || t.Function == nil || t.Function.Name == "" {
				return nil, badRequest("tools", "tools[%d] must have type \"function\" and a function with a non-empty name", i)
			}
			p.tools = append(p.tools, toolcall.Tool{Name: t.Function.Name, Parameters: t.Function.Parameters})
		}
	}
	choice := "auto"
	if present(rawChoice) {
		var s string
		var named struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(rawChoice, &s) == nil:
			if s != "none" && s != "auto" && s != "required" {
				return nil, badRequest("tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}, got %q", s)
			}
			choice = s
		case json.Unmarshal(rawChoice, &named) == nil && named.Type == "function" && named.Function.Name != "":
			if !p.has(named.Function.Name) {
				return nil, badRequest("tool_choice", "tool_choice names function %q, which is not in tools", named.Function.Name)
			}
			choice = named.Function.Name
		default:
			return nil, badRequest("tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}")
		}
	}
	if choice == "required" && len(p.tools) == 0 {
		return nil, badRequest("tool_choice", "tool_choice \"required\" needs tools")
	}
	p.parse = len(p.tools) > 0 && choice != "none"
	if choice != "auto" && choice != "none" {
		p.force = choice
	}
	return p, nil
}

func (p *toolPlan) has(name string) bool {
	for _, t := range p.tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

// grammar compiles the call grammar of a forced call in the model's
// format, nil when no call is forced.
func (p *toolPlan) grammar(e *entry) (*grammar.Grammar, error) {
	if p.force == "" {
		return nil, nil
	}
	t, ok := e.tok.(*tokenizer.Tokenizer)
	if !ok {
		return nil, badRequest("tool_choice", "tool_choice %q: forced calls are not available for this model", p.force)
	}
	tools, parallel := p.tools, p.parallel
	if p.force != "required" {
		for _, tl := range p.tools {
			if tl.Name == p.force {
				tools = []toolcall.Tool{tl}
			}
		}
		parallel = false
	}
	g, err := toolcall.CallGrammar(t, e.format, tools, parallel)
	if err != nil {
		return nil, badRequest("tools", "tools: %s", strings.TrimPrefix(err.Error(), "grammar: "))
	}
	return g, nil
}

// lazy returns the constraint factory of tool_choice "auto": free text
// until the format's start marker, then valid calls. It is nil when calls
// are not parsed, or forced, or the tools' schemas are outside what the
// grammar compiler supports (auto then parses calls without enforcing
// them).
func (p *toolPlan) lazy(e *entry) func() engine.Constraint {
	t, ok := e.tok.(*tokenizer.Tokenizer)
	if !p.parse || p.force != "" || !ok {
		return nil
	}
	lg, err := toolcall.CompileLazy(t, e.format, p.tools, p.parallel)
	if err != nil {
		return nil
	}
	return func() engine.Constraint { return lg.New() }
}

// parserOptions are the output parser's options for a request, and
// whether output needs parsing at all.
func (e *entry) parserOptions(p *toolPlan, prompt string) (toolcall.Options, bool) {
	o := toolcall.Options{NoCalls: !p.parse, Reasoning: e.thinks && !e.reasoningInline}
	if o.Reasoning {
		o.InThink = strings.HasSuffix(strings.TrimRight(prompt, " \n"), "<think>")
	}
	return o, p.parse || o.Reasoning
}

type toolCallJSON struct {
	Index    *int             `json:"index,omitempty"`
	ID       string           `json:"id,omitempty"`
	Type     string           `json:"type,omitempty"`
	Function toolFunctionJSON `json:"function"`
}

type toolFunctionJSON struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// callID returns a new tool call id: "call_" and 24 random characters.
func callID() string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 24)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return "call_" + string(b)
}

// parsedMessage parses a whole output into an assistant message; it
// returns the message and whether it holds calls.
func parsedMessage(f *toolcall.Format, opts toolcall.Options, text string) (*chatMessage, bool) {
	p := toolcall.NewParser(f, opts)
	evs := append(p.Feed(text), p.Flush()...)
	m := &chatMessage{Role: "assistant"}
	var content, reasoning strings.Builder
	for _, ev := range evs {
		switch ev.Kind {
		case toolcall.Content:
			content.WriteString(ev.Text)
		case toolcall.Reasoning:
			reasoning.WriteString(ev.Text)
		case toolcall.ToolCall:
			m.ToolCalls = append(m.ToolCalls, toolCallJSON{ID: callID(), Type: "function",
				Function: toolFunctionJSON{Name: ev.Call.Name, Arguments: ev.Call.Arguments}})
		}
	}
	if content.Len() > 0 || len(m.ToolCalls) == 0 {
		m.Content = strPtr(content.String())
	} else {
		m.nullContent = true
	}
	if reasoning.Len() > 0 {
		m.ReasoningContent, m.Reasoning = strPtr(reasoning.String()), strPtr(reasoning.String())
	}
	return m, len(m.ToolCalls) > 0
}

// deltas turns parser events into stream deltas in OpenAI's shape: a
// call's first delta carries its index, id, type and name with empty
// arguments, the next its arguments.
func deltas(evs []toolcall.Event) []*chatMessage {
	var out []*chatMessage
	for _, ev := range evs {
		switch ev.Kind {
		case toolcall.Content:
			out = append(out, &chatMessage{Content: strPtr(ev.Text)})
		case toolcall.Reasoning:
			out = append(out, &chatMessage{ReasoningContent: strPtr(ev.Text), Reasoning: strPtr(ev.Text)})
		case toolcall.ToolCall:
			i := ev.Index
			out = append(out,
				&chatMessage{ToolCalls: []toolCallJSON{{Index: &i, ID: callID(), Type: "function", Function: toolFunctionJSON{Name: ev.Call.Name}}}},
				&chatMessage{ToolCalls: []toolCallJSON{{Index: &i, Function: toolFunctionJSON{Arguments: ev.Call.Arguments}}}})
		}
	}
	return out
}

// chatParsers parse the output of each choice of a stream.
type chatParsers struct {
	ps []*toolcall.Parser
}

func newChatParsers(f *toolcall.Format, opts toolcall.Options, n int) *chatParsers {
	cp := &chatParsers{ps: make([]*toolcall.Parser, n)}
	for i := range cp.ps {
		cp.ps[i] = toolcall.NewParser(f, opts)
	}
	return cp
}

// feed passes choice i's event ev through its parser: the parsed events
// of its text, and what the parser held back when ev ends the choice.
func (cp *chatParsers) feed(i int, ev engine.Event) []toolcall.Event {
	p := cp.ps[i]
	var evs []toolcall.Event
	if ev.Text != "" {
		evs = p.Feed(ev.Text)
	}
	if ev.Done {
		evs = append(evs, p.Flush()...)
	}
	return evs
}

// send writes the chunks of choice i's event ev: its parsed deltas (the
// token's logprobs on the first), then, when ev ends the choice, a chunk
// with the finish reason ("tool_calls" when it made calls).
func (cp *chatParsers) send(out *sseWriter, chunk *chatResponse, i int, ev engine.Event, wantLP bool, j *job) {
	evs := cp.feed(i, ev)
	ds := deltas(evs)
	var lp *chatLogprobs
	if wantLP && ev.HasToken {
		lp = j.e.chatLogprobs([]int32{ev.Token}, []float32{ev.Logprob}, [][]topLogprob{tops(ev)})
		if len(ds) == 0 {
			ds = []*chatMessage{{Content: strPtr("")}}
		}
	}
	for k, d := range ds {
		ch := chatChoice{Index: i, Delta: d}
		if k == 0 {
			ch.Logprobs = lp
		}
		chunk.Choices = []chatChoice{ch}
		out.send(*chunk)
	}
	if ev.Done {
		fr := finishReason(ev.Finish)
		if cp.ps[i].Calls() > 0 && fr == "stop" {
			fr = "tool_calls"
		}
		chunk.Choices = []chatChoice{{Index: i, Delta: &chatMessage{}, FinishReason: &fr}}
		out.send(*chunk)
	}
}

// MarshalJSON writes "content": null for a message of calls only, as
// OpenAI does; otherwise a nil Content is left out (stream deltas).
func (m chatMessage) MarshalJSON() ([]byte, error) {
	type plain chatMessage
	if !m.nullContent {
		return json.Marshal(plain(m))
	}
	return json.Marshal(struct {
		plain
		Content *string `json:"content"`
	}{plain: plain(m)})
}

// toolSetup is what a chat request's tools make of its job: the grammar
// of a forced call or the lazy one of "auto", and how output is parsed.
type toolSetup struct {
	grammar *grammar.Grammar
	lazy    func() engine.Constraint
	popts   toolcall.Options
	parse   bool
}

// grpcTools sets up the tools of a gRPC messages_json request whose
// rendered prompt is prompt.
func grpcTools(e *entry, r *pb.GenerateRequest, prompt string) (*toolSetup, error) {
	var choice json.RawMessage
	if r.ToolChoiceJson != "" {
		choice = json.RawMessage(r.ToolChoiceJson)
	}
	plan, err := planTools(json.RawMessage(r.ToolsJson), choice, r.ParallelToolCalls)
	if err != nil {
		return nil, err
	}
	ts := &toolSetup{}
	if ts.grammar, err = plan.grammar(e); err != nil {
		return nil, err
	}
	if ts.grammar == nil {
		ts.lazy = plan.lazy(e)
	}
	ts.popts, ts.parse = e.parserOptions(plan, prompt)
	return ts, nil
}

// grpc fills a gRPC response from choice i's event: text is content
// only, reasoning and completed calls in their fields.
func (cp *chatParsers) grpc(resp *pb.GenerateResponse, i int, ev engine.Event) {
	evs := cp.feed(i, ev)
	resp.Text = ""
	for _, x := range evs {
		switch x.Kind {
		case toolcall.Content:
			resp.Text += x.Text
		case toolcall.Reasoning:
			resp.Reasoning += x.Text
		case toolcall.ToolCall:
			resp.ToolCalls = append(resp.ToolCalls, &pb.ToolCall{Index: int32(x.Index), Id: callID(), Name: x.Call.Name, Arguments: x.Call.Arguments})
		}
	}
}

// toolFormat is the tool-call format of e's chat template: a known family
// recognised by its markers, else one learned by rendering the template,
// else toolcall.Generic.
func toolFormat(e *entry) *toolcall.Format {
	if e.tmpl == nil {
		return toolcall.Generic
	}
	if f, known := toolcall.Detect(e.m.ChatTemplate()); known {
		return f
	}
	if f, ok := toolcall.Learn(e.tmpl, e.bos, e.eos); ok {
		return f
	}
	return toolcall.Generic
}
