package toolcall

import (
	"encoding/json"
	mathbits "math/bits"
	"math/rand"
	"testing"

	"github.com/sluice-llm/sluice/tokenizer"
)

// feed advances l by text's tokens; it returns the index of the first
// token refused, -1 if none.
func feed(tok *tokenizer.Tokenizer, l *Lazy, text string) int {
	mask := make([]uint64, l.MaskWords())
	for i, id := range tok.Encode(text, false, false) {
		l.Mask(mask)
		if mask[id>>6]&(1<<(id&63)) == 0 {
			return i
		}
		if err := l.Advance(id); err != nil {
			return i
		}
	}
	return -1
}

func TestLazyCallConstraint(t *testing.T) {
	tok := llama3Tok(t)
	for _, f := range []*Format{Hermes, Mistral, DeepSeekR1, FunctionaryV31, CommandR7B} {
		lg, err := CompileLazy(tok, f, testTools, true)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		l := lg.New()
		if feed(tok, l, "Any text at all, even {\"name\": \"nothing\"} JSON. ") >= 0 || l.Triggered() {
			t.Fatalf("%s: free text refused or triggered", f.Name)
		}
		if feed(tok, l, f.Start) >= 0 || !l.Triggered() {
			t.Fatalf("%s: the start marker did not trigger", f.Name)
		}
		var rest string
		switch f {
		case Hermes:
			rest = `{"name":"get_stock","arguments":{}}`
		case Mistral:
			rest = `[{"name":"get_stock","arguments":{}}]`
		case DeepSeekR1:
			rest = "get_stock\n```json\n{}"
		case FunctionaryV31:
			rest = `get_stock>{}`
		case CommandR7B:
			rest = `[{"tool_call_id":"0","tool_name":"get_stock","parameters":{}}]`
		}
		if feed(tok, l, rest) < 0 {
			t.Errorf("%s: a call of an unknown tool is accepted after the marker", f.Name)
		}
	}
	// A valid call after text, the marker split across tokens.
	lg, err := CompileLazy(tok, Hermes, testTools, false)
	if err != nil {
		t.Fatal(err)
	}
	l := lg.New()
	text := "Let me check.<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}</tool_call>"
	if i := feed(tok, l, text); i >= 0 || !l.Done() {
		t.Fatalf("valid call refused at token %d (done %v)", i, l.Done())
	}
}

// A random "model" that writes some text, then the start marker, then
// random tokens the lazy grammar allows, always produces a call that the
// parser reads as a valid call of the tools, in every format.
func TestLazyRandomWalksParse(t *testing.T) {
	tok := llama3Tok(t)
	rng := rand.New(rand.NewSource(7))
	for _, f := range Formats {
		lg, err := CompileLazy(tok, f, walkTools, false)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		for walk := range 8 {
			l := lg.New()
			text := "Checking. "
			if f.BareJSON && f != Generic {
				text = "" // Llama 3 writes calls first
			}
			text += f.Open + f.Start
			if feed(tok, l, text) >= 0 || !l.Triggered() {
				t.Fatalf("%s: marker refused", f.Name)
			}
			mask := make([]uint64, l.MaskWords())
			for step := 0; !l.Done(); step++ {
				if step > 400 {
					t.Fatalf("%s walk %d: no end after 400 tokens: %q", f.Name, walk, text)
				}
				l.Mask(mask)
				var allowed []int32
				for w, bits := range mask {
					for ; bits != 0; bits &= bits - 1 {
						allowed = append(allowed, int32(w*64+bits64(bits)))
					}
				}
				id := allowed[rng.Intn(len(allowed))]
				if err := l.Advance(id); err != nil {
					t.Fatal(err)
				}
				if id == tok.EOS() || tok.IsControl(id) {
					break
				}
				text += tok.Piece(id)
			}
			got := parseChunks(f, Options{}, randomSplit(rng, text))
			if len(got.Calls) != 1 {
				t.Fatalf("%s walk %d: %q parses as %+v", f.Name, walk, text, got)
			}
			c := got.Calls[0]
			var args map[string]any
			if err := json.Unmarshal([]byte(c.Arguments), &args); err != nil || (c.Name != "get_weather" && c.Name != "get_time") {
				t.Errorf("%s walk %d: call %+v: %v", f.Name, walk, c, err)
			}
			if c.Name == "get_weather" {
				if _, ok := args["city"].(string); !ok || len(args) != 1 {
					t.Errorf("%s walk %d: get_weather arguments %s", f.Name, walk, c.Arguments)
				}
			}
		}
	}
}

// walkTools have bounded arguments, so random walks end.
var walkTools = []Tool{
	{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string","maxLength":8}},"required":["city"],"additionalProperties":false}`)},
	{Name: "get_time", Parameters: []byte(`{"type":"object","properties":{"zone":{"enum":["CET","UTC"]}},"required":["zone"],"additionalProperties":false}`)},
}

func bits64(x uint64) int { return mathbits.TrailingZeros64(x) }
