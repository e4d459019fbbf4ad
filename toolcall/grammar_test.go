package toolcall

import (
	"reflect"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/grammar"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/tokenizer"
)

func llama3Tok(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	f, err := gguf.Open(testenv.Shared(t, "tokenizer", "ggml-vocab-llama3-bpe.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// accepts reports whether g's matcher takes text's tokens and may end.
func accepts(tok *tokenizer.Tokenizer, g *grammar.Grammar, text string) bool {
	m := g.NewMatcher()
	for _, id := range tok.Encode(text, false, false) {
		if m.Advance(id) != nil {
			return false
		}
	}
	return m.CanEnd()
}

var testTools = []Tool{
	{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}`)},
	{Name: "get_time"}, // no parameters: any object
}

func TestCallGrammarPerFormat(t *testing.T) {
	tok := llama3Tok(t)
	one := map[*Format]string{
		Hermes:         `<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>`,
		Generic:        `<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>`,
		Llama3:         `<|python_tag|>{"name":"get_weather","parameters":{"city":"Paris"}}`,
		Mistral:        `[TOOL_CALLS][{"name":"get_weather","arguments":{"city":"Paris"}}]`,
		DeepSeekR1:     "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
		FunctionaryV31: `<function=get_weather>{"city":"Paris"}</function>`,
		FunctionaryV32: ">>>get_weather\n{\"city\":\"Paris\"}",
		CommandR7B:     `<|START_ACTION|>[{"tool_call_id":"0","tool_name":"get_weather","parameters":{"city":"Paris"}}]<|END_ACTION|>`,
		Firefunction:   ` functools[{"name":"get_weather","arguments":{"city":"Paris"}}]`,
	}
	if len(one) != len(Formats) {
		t.Fatalf("%d formats, %d cases", len(Formats), len(one))
	}
	for f, text := range one {
		g, err := CallGrammar(tok, f, testTools, false)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if !accepts(tok, g, text) {
			t.Errorf("%s: the grammar refuses %q", f.Name, text)
		}
		if accepts(tok, g, "Hello "+text) {
			t.Errorf("%s: the grammar takes text before the call", f.Name)
		}
		got := parseChunks(f, Options{}, []string{text})
		if want := (result{Calls: []Call{weather}}); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the grammar's output parses as %+v", f.Name, got)
		}
	}
	g, err := CallGrammar(tok, Hermes, testTools[:1], false)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`<tool_call>{"name":"get_time","arguments":{}}</tool_call>`,
		`<tool_call>{"name":"get_weather","arguments":{"town":"Paris"}}</tool_call>`,
		`<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call><tool_call>{"name":"get_weather","arguments":{"city":"Oslo"}}</tool_call>`,
	} {
		if accepts(tok, g, bad) {
			t.Errorf("hermes, get_weather only, one call: the grammar takes %q", bad)
		}
	}
	par, err := CallGrammar(tok, Hermes, testTools, true)
	if err != nil {
		t.Fatal(err)
	}
	two := `<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>` + "\n" + `<tool_call>{"name":"get_time","arguments":{}}</tool_call>`
	if !accepts(tok, par, two) {
		t.Errorf("parallel: two calls refused")
	}
	if _, err := CallGrammar(tok, Hermes, nil, false); err == nil {
		t.Error("no tools: no error")
	}
}

// Llama 3.x writes one call a turn: even parallel, its grammar takes one.
func TestCallGrammarOneCallFormat(t *testing.T) {
	tok := llama3Tok(t)
	g, err := CallGrammar(tok, Llama3, testTools, true)
	if err != nil {
		t.Fatal(err)
	}
	one := `<|python_tag|>{"name":"get_weather","parameters":{"city":"Paris"}}`
	if !accepts(tok, g, one) || accepts(tok, g, one+one) {
		t.Errorf("llama3 parallel grammar: one call %v, two calls %v", accepts(tok, g, one), accepts(tok, g, one+one))
	}
}
