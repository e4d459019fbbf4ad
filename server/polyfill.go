package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice/tokenizer/template"
)

// Chat templates differ in what tool conversations they take. When a
// template refuses one, the conversation is rewritten the way the Hugging
// Face and llama.cpp renderers adapt it, in two steps, and rendered again:
//
//  1. polyfillValues: tool-call arguments as JSON strings (templates that
//     concatenate them), content null as "", tool call ids as the 9
//     alphanumeric characters Mistral templates require, an empty
//     description where tool schemas lack one, and the "functions" and
//     "datetime" variables Firefunction templates read;
//  2. polyfillTurns: tool calls written into the assistant's content as
//     JSON, tool results as user turns, consecutive turns of one role
//     merged (templates without tool roles that require alternation).
//
// A conversation without tools, tool calls or tool results is never
// rewritten; when no step renders, the first error is returned.

// hasToolParts reports whether the conversation uses tools.
func (in *chatInput) hasToolParts() bool {
	if len(in.tools) > 0 {
		return true
	}
	for _, m := range in.messages {
		mm := m.(*template.Map)
		if _, ok := mm.Get("tool_calls"); ok {
			return true
		}
		if r, _ := mm.Get("role"); r == "tool" {
			return true
		}
	}
	return false
}

// renderWithPolyfills renders in, rewriting it step by step while the
// template refuses it.
func (e *entry) renderWithPolyfills(in *chatInput, opts template.ChatOptions) (string, template.ChatOptions, error) {
	text, err := e.tmpl.RenderChat(in.messages, opts)
	if err == nil || !in.hasToolParts() {
		return text, opts, err
	}
	var tpe *template.Error
	var raised *template.TemplateError
	if !(errors.As(err, &tpe) || errors.As(err, &raised)) || errors.Is(err, template.ErrLimit) {
		return "", opts, err
	}
	first := err
	for _, step := range []func(*chatInput, *template.ChatOptions){polyfillValues, polyfillTurns} {
		step(in, &opts)
		if text, err = e.tmpl.RenderChat(in.messages, opts); err == nil {
			return text, opts, nil
		}
	}
	return "", opts, first
}

func polyfillValues(in *chatInput, opts *template.ChatOptions) {
	ids := map[string]string{}
	shortID := func(id string) string {
		if s, ok := ids[id]; ok {
			return s
		}
		s := fmt.Sprintf("%09d", len(ids)+1)
		ids[id] = s
		return s
	}
	for _, m := range in.messages {
		mm := m.(*template.Map)
		if c, ok := mm.Get("content"); !ok || c == nil {
			mm.Set("content", "")
		}
		if id, ok := mm.Get("tool_call_id"); ok {
			if s, ok := id.(string); ok {
				mm.Set("tool_call_id", shortID(s))
			}
		}
		for _, c := range toolCallMaps(mm) {
			if id, ok := c.Get("id"); ok {
				if s, ok := id.(string); ok {
					c.Set("id", shortID(s))
				}
			}
			if f, ok := c.Get("function"); ok {
				if fm, ok := f.(*template.Map); ok {
					if a, ok := fm.Get("arguments"); ok {
						if _, isStr := a.(string); !isStr {
							b, _ := json.Marshal(a)
							fm.Set("arguments", string(b))
						}
					}
				}
			}
		}
	}
	for _, t := range in.tools {
		fillDescriptions(t)
	}
	if opts.Extra == nil {
		opts.Extra = map[string]any{}
	}
	if _, ok := opts.Extra["functions"]; !ok {
		b, _ := json.MarshalIndent(in.tools, "", "  ")
		opts.Extra["functions"] = string(b)
	}
	if _, ok := opts.Extra["datetime"]; !ok {
		opts.Extra["datetime"] = opts.Now().Format("Jan 02 2006 15:04:05")
	}
	in.extra = opts.Extra
}

// toolCallMaps returns the tool calls of a message that are objects.
func toolCallMaps(m *template.Map) []*template.Map {
	tc, _ := m.Get("tool_calls")
	list, _ := tc.([]any)
	var out []*template.Map
	for _, c := range list {
		if cm, ok := c.(*template.Map); ok {
			out = append(out, cm)
		}
	}
	return out
}

// fillDescriptions gives a tool's function and its parameters' properties
// an empty description where they have none.
func fillDescriptions(tool any) {
	tm, ok := tool.(*template.Map)
	if !ok {
		return
	}
	f, _ := tm.Get("function")
	fm, ok := f.(*template.Map)
	if !ok {
		return
	}
	setDefault(fm, "description", "")
	p, _ := fm.Get("parameters")
	pm, ok := p.(*template.Map)
	if !ok {
		return
	}
	props, _ := pm.Get("properties")
	if ps, ok := props.(*template.Map); ok {
		ps.Range(func(_ string, v any) bool {
			if vm, ok := v.(*template.Map); ok {
				setDefault(vm, "description", "")
			}
			return true
		})
	}
	setDefault(pm, "required", []any{})
}

func setDefault(m *template.Map, k string, v any) {
	if _, ok := m.Get(k); !ok {
		m.Set(k, v)
	}
}

// polyfillTurns rewrites tool turns as plain text: an assistant's calls
// are appended to its content as {"tool_calls": [...]} JSON, a tool
// result becomes a user turn {"tool_response": ...}; then consecutive
// turns of one role are merged with a newline.
func polyfillTurns(in *chatInput, _ *template.ChatOptions) {
	var out []any
	for _, m := range in.messages {
		mm := m.(*template.Map)
		role, _ := mm.Get("role")
		content, _ := mm.Get("content")
		text, _ := content.(string)
		switch {
		case role == "tool":
			b, _ := json.Marshal(map[string]any{"tool_response": text})
			text, role = string(b), "user"
		case len(toolCallMaps(mm)) > 0:
			calls := []any{}
			for _, c := range toolCallMaps(mm) {
				f, _ := c.Get("function")
				calls = append(calls, f)
			}
			b, _ := json.Marshal(map[string]any{"tool_calls": calls})
			text = strings.TrimSpace(text + "\n" + string(b))
		}
		if n := len(out); n > 0 {
			prev := out[n-1].(*template.Map)
			if pr, _ := prev.Get("role"); pr == role {
				pc, _ := prev.Get("content")
				prev.Set("content", pc.(string)+"\n"+text)
				continue
			}
		}
		nm := template.NewMap()
		nm.Set("role", role)
		nm.Set("content", text)
		out = append(out, nm)
	}
	in.messages = out
}
