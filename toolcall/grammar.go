package toolcall

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice/grammar"
	"github.com/sluice-llm/sluice/tokenizer"
)

// Tool is a function the model may call: its name and its parameters'
// JSON Schema (nil: any object).
type Tool struct {
	Name       string
	Parameters json.RawMessage
}

// CallGrammar compiles the grammar of output that is only tool calls of
// tools, written in format f: the family's markers around each call, the
// name one of the tools', the arguments valid by that tool's schema. With
// parallel (and a format that has several calls a turn), one or more
// calls; else exactly one.
func CallGrammar(tok *tokenizer.Tokenizer, f *Format, tools []Tool, parallel bool) (*grammar.Grammar, error) {
	seq, err := callSequence(f, tools, parallel)
	if err != nil {
		return nil, err
	}
	return grammar.CompileSequence(tok, seq, grammar.Options{})
}

// afterStartGrammar is CallGrammar's language after the first call's
// Start marker (which the model wrote on its own): the rest of that call,
// then any further calls, each with its Start.
func afterStartGrammar(tok *tokenizer.Tokenizer, f *Format, tools []Tool, parallel bool) (*grammar.Grammar, error) {
	seq, err := callSequence(f, tools, parallel)
	if err != nil {
		return nil, err
	}
	switch f.Shape {
	case Array:
		seq.Open = "["
	default:
		seq.Open = ""
		seq.Sep += f.Start
		for i := range seq.Items {
			seq.Items[i].Prefix = strings.TrimPrefix(seq.Items[i].Prefix, f.Start)
		}
	}
	return grammar.CompileSequence(tok, seq, grammar.Options{})
}

func callSequence(f *Format, tools []Tool, parallel bool) (grammar.Sequence, error) {
	if len(tools) == 0 {
		return grammar.Sequence{}, fmt.Errorf("toolcall: no tools to call")
	}
	seq := grammar.Sequence{Sep: f.Sep, Min: 1, Max: 1}
	if parallel && !f.OneCall {
		seq.Max = -1
	}
	for _, t := range tools {
		params := t.Parameters
		if len(bytes.TrimSpace(params)) == 0 || string(bytes.TrimSpace(params)) == "null" {
			params = json.RawMessage(`{"type":"object"}`)
		}
		switch f.Shape {
		case Named:
			seq.Items = append(seq.Items, grammar.Item{Prefix: f.Start + t.Name + f.NameEnd, Schema: params, Suffix: f.End})
		default:
			name, _ := json.Marshal(t.Name)
			obj := fmt.Sprintf(`{"type":"object","properties":{%s%q:{"const":%s},%q:%s},"required":[%q,%q],"additionalProperties":false}`,
				f.Extra, f.NameKey, name, f.ArgsKeys[0], params, f.NameKey, f.ArgsKeys[0])
			if f.Shape == Array {
				seq.Items = append(seq.Items, grammar.Item{Schema: []byte(obj)})
			} else {
				seq.Items = append(seq.Items, grammar.Item{Prefix: f.Start, Schema: []byte(obj), Suffix: f.End})
			}
		}
	}
	seq.Open, seq.Close = f.Open, f.Close
	if f.Shape == Array {
		seq.Open, seq.Sep, seq.Close = f.Start+"[", ",", "]"+f.End
	}
	return seq, nil
}
