package template

import (
	"time"
)

// ChatOptions are the variables a chat template sees besides messages.
type ChatOptions struct {
	BOS, EOS            string // bos_token, eos_token
	AddGenerationPrompt bool   // add_generation_prompt
	// Tools is the list of tool schemas ("tools"). When nil, "tools" is left
	// undefined, which is what templates test with "tools is defined".
	Tools []any
	// Now is the clock for strftime_now; time.Now when nil.
	Now func() time.Time
	// Extra variables (e.g. documents, enable_thinking, custom special
	// tokens). They cannot override messages, tools, bos_token, eos_token
	// or add_generation_prompt.
	Extra map[string]any
	// Limits overrides DefaultLimits when non-zero.
	Limits Limits
}

// RenderChat renders a conversation. Each message is a *Map (or a
// map[string]any) with at least "role" and "content"; tool calls and tool
// results are passed through as the template expects them.
//
// A template that refuses the conversation via raise_exception returns a
// *TemplateError whose Error() is the template's message.
func (t *Template) RenderChat(messages []any, opts ChatOptions) (string, error) {
	vars := make(map[string]any, len(opts.Extra)+5)
	for k, v := range opts.Extra {
		vars[k] = v
	}
	if messages == nil {
		messages = []any{}
	}
	vars["messages"] = messages
	vars["bos_token"] = opts.BOS
	vars["eos_token"] = opts.EOS
	vars["add_generation_prompt"] = opts.AddGenerationPrompt
	if opts.Tools != nil {
		vars["tools"] = opts.Tools
	} else {
		delete(vars, "tools")
	}
	execOpts := []Option{WithLimits(opts.Limits)}
	if opts.Now != nil {
		execOpts = append(execOpts, WithNow(opts.Now))
	}
	return t.Execute(vars, execOpts...)
}
