package engine

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluice-llm/sluice/grammar"
	"github.com/sluice-llm/sluice/sample"
)

// constraintSchemas are bounded (strings and arrays have maximum sizes) so
// a random-weight model, which writes garbage unless constrained, finishes
// them within the token limit.
var constraintSchemas = []string{
	`{"type":"object","properties":{"name":{"type":"string","maxLength":8},"age":{"type":"integer"},"ok":{"type":"boolean"}},"required":["name","age"],"additionalProperties":false}`,
	`{"type":"array","items":{"enum":["red","green",3,null]},"minItems":1,"maxItems":4}`,
	`{"$defs":{"n":{"type":"object","properties":{"v":{"enum":[1,2]},"k":{"type":"array","items":{"$ref":"#/$defs/n"},"maxItems":2}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/n"}`,
	`{"anyOf":[{"type":"string","minLength":1,"maxLength":5},{"type":"null"},{"type":"array","prefixItems":[{"type":"boolean"},{"const":"x"}],"items":false}]}`,
}

// TestConstrainedGenerationsValidate runs 200 sampled generations of a
// random-weight model under JSON Schema constraints and checks every
// output with an independent validator.
func TestConstrainedGenerationsValidate(t *testing.T) {
	e := newTestEngine(t, "synth-llama-q4_0", Config{})
	tok := e.Tokenizer()
	grammars := make([]*grammar.Grammar, len(constraintSchemas))
	validators := make([]*jsonschema.Schema, len(constraintSchemas))
	for i, s := range constraintSchemas {
		g, err := grammar.CompileJSONSchema(tok, []byte(s), grammar.Options{})
		if err != nil {
			t.Fatalf("schema %d: %v", i, err)
		}
		grammars[i] = g
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("s.json", doc); err != nil {
			t.Fatal(err)
		}
		if validators[i], err = c.Compile("s.json"); err != nil {
			t.Fatal(err)
		}
	}
	prompt := tok.Encode("Reply in JSON:", true, false)
	const n = 200
	streams := make([]*Stream, n)
	for i := range n {
		p := sample.DefaultParams()
		p.Temperature, p.Seed, p.HasSeed = 1, uint64(i), true
		req := &Request{Prompt: prompt, MaxTokens: 400, Sampling: p, Constraint: grammars[i%len(grammars)].NewMatcher()}
		s, err := e.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = s
	}
	for i, s := range streams {
		r := collect(t, s)
		if r.final.Finish != FinishStop {
			t.Errorf("generation %d (schema %d): finish %q (%v), text %q", i, i%len(grammars), r.final.Finish, r.final.Err, r.text)
			continue
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(r.text))
		if err == nil {
			err = validators[i%len(grammars)].Validate(inst)
		}
		if err != nil {
			t.Errorf("generation %d (schema %d): %q does not validate: %v", i, i%len(grammars), r.text, err)
		}
	}
}

// TestConstraintNoSpeculation: a constrained request on a speculating
// engine decodes without drafts and still matches its grammar.
func TestConstraintNoSpeculation(t *testing.T) {
	e := newTestEngine(t, "synth-llama-q4_0", Config{Spec: SpecNGram})
	tok := e.Tokenizer()
	g, err := grammar.CompileChoice(tok, []string{"alpha beta", "gamma"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.Generate(context.Background(), &Request{Prompt: tok.Encode("x", true, false), MaxTokens: 50, Constraint: g.NewMatcher()})
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, s)
	if r.final.Finish != FinishStop || (r.text != "alpha beta" && r.text != "gamma") {
		t.Fatalf("finish %q, text %q", r.final.Finish, r.text)
	}
}

// TestConstraintApplyAllocFree: masking a logits row allocates nothing
// once the matcher has seen its state.
func TestConstraintApplyAllocFree(t *testing.T) {
	e := newTestEngine(t, "synth-llama-q4_0", Config{})
	tok := e.Tokenizer()
	g, err := grammar.CompileJSONObject(tok, grammar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := g.NewMatcher()
	for _, b := range []byte(`{"a":"`) {
		id, ok := tok.TokenID(fmt.Sprintf("<0x%02X>", b))
		if !ok {
			t.Fatalf("no byte token for %q", b)
		}
		if err := m.Advance(id); err != nil {
			t.Fatal(err)
		}
	}
	rc := newReqConstraint(m, e.vocab)
	logits := make([]float32, e.vocab)
	if err := rc.apply(logits); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { _ = rc.apply(logits) }); n != 0 {
		t.Fatalf("apply allocates %v times per call", n)
	}
	quote, _ := tok.TokenID("<0x22>")
	if logits[quote] != 0 {
		t.Fatalf("the closing quote is masked: %v", logits[quote])
	}
	ctl, _ := tok.TokenID("<0x0A>") // a raw newline cannot be in a JSON string
	if !math.IsInf(float64(logits[ctl]), -1) {
		t.Fatalf("a raw newline is allowed inside a string: %v", logits[ctl])
	}
}
