package grammar

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/tokenizer"
)

var (
	llama3Once sync.Once
	llama3Tok  *tokenizer.Tokenizer
	llama3Err  error
)

// llama3 returns the Llama 3 tokenizer (128256 tokens) from the shared
// vocab GGUF.
func llama3(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	path := testenv.Shared(t, "tokenizer", "ggml-vocab-llama3-bpe.gguf")
	llama3Once.Do(func() {
		f, err := gguf.Open(path)
		if err != nil {
			llama3Err = err
			return
		}
		llama3Tok, llama3Err = tokenizer.FromGGUF(f)
	})
	if llama3Err != nil {
		t.Fatal(llama3Err)
	}
	return llama3Tok
}

// run feeds text's tokens to a new matcher of g. It returns the index of
// the first token refused (-1 if none) and whether the grammar may end
// after all of them. Every step checks that Mask and Allowed agree on the
// token taken.
func run(t *testing.T, tok *tokenizer.Tokenizer, g *Grammar, text string) (int, bool) {
	t.Helper()
	m := g.NewMatcher()
	mask := make([]uint64, m.MaskWords())
	for i, id := range tok.Encode(text, false, false) {
		m.Mask(mask)
		inMask := mask[id>>6]&(1<<(id&63)) != 0
		if inMask != m.Allowed(id) {
			t.Fatalf("%q: token %d (%q): Mask says %v, Allowed says %v", text, i, tok.Piece(id), inMask, !inMask)
		}
		if err := m.Advance(id); err != nil {
			if inMask {
				t.Fatalf("%q: token %d in the mask but Advance failed: %v", text, i, err)
			}
			return i, false
		}
	}
	m.Mask(mask)
	eos := tok.EOGs()[0]
	if ok := mask[eos>>6]&(1<<(eos&63)) != 0; ok != m.CanEnd() {
		t.Fatalf("%q: EOS in mask %v, CanEnd %v", text, ok, m.CanEnd())
	}
	return -1, m.CanEnd()
}

func accepts(t *testing.T, tok *tokenizer.Tokenizer, g *Grammar, text string) bool {
	t.Helper()
	i, end := run(t, tok, g, text)
	return i < 0 && end
}

func compileSchema(t *testing.T, tok *tokenizer.Tokenizer, schema string) *Grammar {
	t.Helper()
	g, err := CompileJSONSchema(tok, []byte(schema), Options{})
	if err != nil {
		t.Fatalf("compile %s: %v", schema, err)
	}
	return g
}

type schemaCase struct {
	name    string
	schema  string
	valid   []string
	invalid []string
}

var schemaCases = []schemaCase{
	{"object", `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["name","age"],"additionalProperties":false}`,
		[]string{`{"name":"Ann","age":31}`, `{"name":"Bo \"B\" é😀","age":-2,"tags":[]}`, `{"name":"","age":0,"tags":["a","b"]}`},
		[]string{`{"name":"Ann"}`, `{"age":3,"name":"x"}`, `{"name":"Ann","age":3.5}`, `{"name":"Ann","age":3,"x":1}`, `{"name":"Ann","age":03}`, `{"name":1,"age":3}`, `{ "name":"a","age":1}`, `[]`}},
	{"optional", `{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"type":"number"}},"additionalProperties":false}`,
		[]string{`{}`, `{"a":true}`, `{"b":null}`, `{"c":1.5e+3}`, `{"a":false,"c":-0.25}`, `{"a":true,"b":null,"c":2}`},
		[]string{`{,}`, `{"a":true,}`, `{"c":1.}`, `{"c":.5}`, `{"a":1}`, `{"b":null,"a":true}`}},
	{"additional", `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}`,
		[]string{`{"id":1}`, `{"id":1,"x":"y"}`, `{"id":1,"i":2,"idd":[1,{"q":null}]}`, `{"id":1,"é":true}`},
		[]string{`{"id":1,"id":"x"}`, `{"x":1}`, `{"id":1,"x"}`}},
	{"additional schema", `{"type":"object","additionalProperties":{"type":"integer"}}`,
		[]string{`{}`, `{"a":1,"b":2}`},
		[]string{`{"a":"x"}`, `{"a":1.5}`}},
	{"enum", `{"enum":["red","green",3,null,{"a":[1]}]}`,
		[]string{`"red"`, `"green"`, `3`, `null`, `{"a":[1]}`},
		[]string{`"blue"`, `"re"`, `4`, `{"a":[2]}`}},
	{"typed enum", `{"type":"string","enum":["a",1]}`,
		[]string{`"a"`}, []string{`1`}},
	{"const", `{"const":"x"}`, []string{`"x"`}, []string{`"y"`}},
	{"lengths", `{"type":"string","minLength":2,"maxLength":3}`,
		[]string{`"ab"`, `"abc"`, `"é\n"`, `"\u00e9x"`},
		[]string{`"a"`, `"abcd"`, `""`, `"\ud83d\ude00"`}},
	{"items bounds", `{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":2}`,
		[]string{`[1]`, `[1,2]`}, []string{`[]`, `[1,2,3]`, `[1,"a"]`}},
	{"prefixItems", `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`,
		[]string{`[]`, `["a"]`, `["a",1]`}, []string{`["a",1,2]`, `[1]`, `["a","b"]`}},
	{"tuple min", `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"boolean"},"minItems":2}`,
		[]string{`["a",true]`, `["a",true,false]`}, []string{`["a"]`, `[]`, `["a",1]`}},
	{"old items array", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"array","items":[{"type":"null"}],"additionalItems":false}`,
		[]string{`[]`, `[null]`}, []string{`[null,null]`}},
	{"anyOf", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`,
		[]string{`"x"`, `12`}, []string{`1.5`, `true`}},
	{"oneOf disjoint", `{"oneOf":[{"type":"string"},{"type":"array","items":{"type":"integer"}}]}`,
		[]string{`"x"`, `[1]`}, []string{`1`}},
	{"nullable types", `{"type":["string","null"]}`, []string{`"a"`, `null`}, []string{`1`}},
	{"openapi nullable", `{"type":"integer","nullable":true}`, []string{`1`, `null`}, []string{`"a"`}},
	{"allOf", `{"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"properties":{"b":{"type":"string"}}}]}`,
		[]string{`{"a":1}`, `{"a":1,"b":"x"}`, `{"a":1,"b":"x","c":null}`}, []string{`{"b":"x"}`, `{"a":1,"b":2}`}},
	{"recursive ref", `{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"}`,
		[]string{`{"v":1}`, `{"v":1,"kids":[{"v":2,"kids":[{"v":3}]},{"v":4}]}`}, []string{`{"v":1,"kids":[{}]}`, `{"v":1,"kids":[{"v":"x"}]}`}},
	{"definitions ref", `{"definitions":{"s":{"type":"string"}},"type":"object","properties":{"x":{"$ref":"#/definitions/s"}},"required":["x"],"additionalProperties":false}`,
		[]string{`{"x":"q"}`}, []string{`{"x":1}`}},
	{"untyped properties", `{"properties":{"a":{"type":"integer"}}}`,
		[]string{`{"a":1}`, `"str"`, `[1]`, `true`}, []string{`{"a":"x"}`}},
	{"true", `true`, []string{`{"a":[1,2.5,"x",null,false]}`, `"s"`, `-0`}, []string{`{a:1}`, `01`, `nul`}},
	{"required outside properties", `{"type":"object","properties":{"a":{"type":"integer"}},"required":["b"]}`,
		[]string{`{"b":1}`, `{"a":1,"b":"x"}`}, []string{`{"a":1}`}},
	{"int range", `{"type":"integer","minimum":-15,"maximum":120}`,
		[]string{`-15`, `-9`, `0`, `7`, `99`, `100`, `120`}, []string{`-16`, `121`, `1000`, `-0`, `007`, `1.0`}},
	{"int exclusive", `{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10}`,
		[]string{`1`, `9`}, []string{`0`, `10`}},
	{"int lower", `{"type":"integer","minimum":42}`,
		[]string{`42`, `99`, `100`, `123456`}, []string{`41`, `9`, `-1`, `0`}},
	{"int upper", `{"type":"integer","maximum":-3}`,
		[]string{`-3`, `-4`, `-100`}, []string{`-2`, `0`, `5`}},
	{"number min 0", `{"type":"number","minimum":0}`,
		[]string{`0`, `1.5`, `2e3`}, []string{`-1`, `-0.5`}},
	{"number range", `{"type":"number","minimum":-1.5,"maximum":2.5}`,
		[]string{`0`, `-1`, `2`, `1.25`, `-0.5`, `0.999`}, []string{`3`, `-2`, `2.6`, `-1.6`, `-1.5000001`}},
	{"number exclusive", `{"type":"number","exclusiveMinimum":0,"maximum":100}`,
		[]string{`1`, `100`, `50.5`, `99.99`}, []string{`0`, `-0.5`, `100.5`, `101`}},
	{"number upper", `{"type":"number","maximum":-3}`,
		[]string{`-3`, `-4.5`, `-100`}, []string{`-2.5`, `0`, `5`}},
	{"pattern", `{"type":"object","properties":{"id":{"type":"string","pattern":"^[A-Z]{2}-\\d+$"},"tag":{"type":"string","pattern":"^ab"}},"required":["id","tag"]}`,
		[]string{`{"id":"AB-12","tag":"aby"}`, `{"id":"QQ-0","tag":"ab"}`}, []string{`{"id":"AB-","tag":"ab"}`, `{"id":"ab-1","tag":"ab"}`, `{"id":"AB-1","tag":"xab"}`}},
	{"pattern and lengths", `{"type":"string","pattern":"^[a-z0-9_]+$","minLength":2,"maxLength":4}`,
		[]string{`"ab"`, `"a_9z"`}, []string{`"a"`, `"abcde"`, `"AB"`, `"a-b"`}},
	{"pattern within lengths", `{"type":"string","pattern":"^([0-9]{5})(-[0-9]{4})?$","minLength":0,"maxLength":10}`,
		[]string{`"12345"`, `"12345-6789"`}, []string{`"1234"`, `"12345-"`}},
	{"date", `{"type":"string","format":"date"}`,
		[]string{`"2024-02-28"`, `"1999-12-31"`, `"2023-04-30"`}, []string{`"2023-02-30"`, `"2023-04-31"`, `"2023-13-01"`, `"2023-1-01"`, `"x"`}},
	{"date-time", `{"type":"string","format":"date-time"}`,
		[]string{`"2024-01-02T03:04:05Z"`, `"2024-01-02T23:59:59.123+05:30"`}, []string{`"2024-01-02 03:04:05Z"`, `"2024-01-02T24:00:00Z"`, `"2024-01-02T03:04:05"`}},
	{"time", `{"type":"string","format":"time"}`, []string{`"12:00:00Z"`}, []string{`"12:00"`}},
	{"uuid", `{"type":"string","format":"uuid"}`,
		[]string{`"123e4567-e89b-12d3-a456-426614174000"`}, []string{`"123e4567e89b12d3a456426614174000"`}},
}

func TestSchemaAcceptReject(t *testing.T) {
	tok := llama3(t)
	for _, c := range schemaCases {
		t.Run(c.name, func(t *testing.T) {
			g := compileSchema(t, tok, c.schema)
			for _, v := range c.valid {
				if !accepts(t, tok, g, v) {
					t.Errorf("valid instance %s refused", v)
				}
			}
			for _, v := range c.invalid {
				if accepts(t, tok, g, v) {
					t.Errorf("invalid instance %s accepted", v)
				}
			}
		})
	}
}

func TestSchemaUnsupported(t *testing.T) {
	tok := llama3(t)
	for schema, kw := range map[string]string{
		`{"type":"string","pattern":"^a|b$","maxLength":3}`:                                        "maxLength",
		`{"type":"string","pattern":"(a)\\1"}`:                                                     "pattern",
		`{"type":"string","format":"ipv6"}`:                                                        "format",
		`{"type":"string","format":"date","maxLength":3}`:                                          "maxLength",
		`{"type":"integer","minimum":5,"maximum":4}`:                                               "minimum",
		`{"type":"integer","minimum":1e300}`:                                                       "minimum",
		`{"type":"object","properties":{"a":{"type":"string","format":"idn-email"}}}`:              "format",
		`{"oneOf":[{"type":"string"},{"type":"string","maxLength":2}]}`:                            "oneOf",
		`{"oneOf":[{"type":"number"},{"type":"integer"}]}`:                                         "oneOf",
		`{"type":"array","uniqueItems":true}`:                                                      "uniqueItems",
		`{"$ref":"https://example.com/s.json"}`:                                                    "$ref",
		`{"type":"object","minProperties":2}`:                                                      "minProperties",
		`{"allOf":[{"properties":{"a":{}},"additionalProperties":false},{"properties":{"b":{}}}]}`: "additionalProperties",
		`{"not":{"enum":[1]}}`:                                                                     "not",
	} {
		_, err := CompileJSONSchema(tok, []byte(schema), Options{})
		var se *SchemaError
		if !errors.As(err, &se) || se.Keyword != kw {
			t.Errorf("%s: got %v, want a SchemaError naming %q", schema, err, kw)
		}
	}
}

func TestSchemaLeftRecursionRefused(t *testing.T) {
	tok := llama3(t)
	_, err := CompileJSONSchema(tok, []byte(`{"anyOf":[{"$ref":"#"},{"type":"null"}]}`), Options{})
	if err == nil || !strings.Contains(err.Error(), "left recursion") {
		t.Fatalf("got %v, want a left recursion error", err)
	}
}

func TestOneOfDisjointEnums(t *testing.T) {
	tok := llama3(t)
	g := compileSchema(t, tok, `{"oneOf":[{"enum":["a","b"]},{"enum":["c"]},{"type":"integer"}]}`)
	if !accepts(t, tok, g, `"c"`) || !accepts(t, tok, g, `7`) || accepts(t, tok, g, `"d"`) {
		t.Fatal("oneOf of disjoint enums not matched exactly")
	}
	if _, err := CompileJSONSchema(tok, []byte(`{"oneOf":[{"enum":["a","b"]},{"enum":["b"]}]}`), Options{}); err == nil {
		t.Fatal("oneOf of overlapping enums compiled")
	}
}

func TestJSONObjectAndWhitespace(t *testing.T) {
	tok := llama3(t)
	g, err := CompileJSONObject(tok, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{`{}`, `{"a":{"b":[1,true,null,"x"]}}`} {
		if !accepts(t, tok, g, v) {
			t.Errorf("%s refused", v)
		}
	}
	for _, v := range []string{`[]`, `"x"`, `{ }`, `{"a":1}}`} {
		if accepts(t, tok, g, v) {
			t.Errorf("%s accepted", v)
		}
	}
	gw, err := CompileJSONObject(tok, Options{AnyWhitespace: true})
	if err != nil {
		t.Fatal(err)
	}
	if !accepts(t, tok, gw, "{ \"a\" : [ 1 , 2 ]\n}") {
		t.Error("whitespace refused with AnyWhitespace")
	}
}

func TestChoice(t *testing.T) {
	tok := llama3(t)
	g, err := CompileChoice(tok, []string{"yes", "no", "not sure"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"yes", "no", "not sure"} {
		if !accepts(t, tok, g, v) {
			t.Errorf("%q refused", v)
		}
	}
	for _, v := range []string{"maybe", "yess", "not"} {
		if accepts(t, tok, g, v) {
			t.Errorf("%q accepted", v)
		}
	}
	if _, err := CompileChoice(tok, nil); err == nil {
		t.Error("empty choice list compiled")
	}
}

// TestMaskMatchesAllowed checks the trie walk against testing every token
// on its own, at each step of an instance.
func TestMaskMatchesAllowed(t *testing.T) {
	tok := llama3(t)
	g := compileSchema(t, tok, schemaCases[0].schema)
	m := g.NewMatcher()
	mask := make([]uint64, m.MaskWords())
	ids := tok.Encode(`{"name":"Ann é","age":31,"tags":["x"]}`, false, false)
	for step := 0; step <= len(ids); step++ {
		m.Mask(mask)
		n := 0
		for id := range int32(tok.VocabSize()) {
			in := mask[id>>6]&(1<<(id&63)) != 0
			if in != m.Allowed(id) {
				t.Fatalf("step %d token %d (%q): mask %v, Allowed %v", step, id, tok.Piece(id), in, !in)
			}
			if in {
				n++
			}
		}
		if n == 0 {
			t.Fatalf("step %d: nothing allowed", step)
		}
		if step < len(ids) {
			if err := m.Advance(ids[step]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !m.Done() {
		t.Fatal("not done after the closing brace")
	}
}

func TestRollback(t *testing.T) {
	tok := llama3(t)
	g := compileSchema(t, tok, `{"type":"array","items":{"type":"integer"},"maxItems":2}`)
	m := g.NewMatcher()
	ids := tok.Encode(`[1,2]`, false, false)
	for _, id := range ids {
		if err := m.Advance(id); err != nil {
			t.Fatal(err)
		}
	}
	if !m.Done() {
		t.Fatal("not done")
	}
	if err := m.Rollback(len(ids)); err != nil {
		t.Fatal(err)
	}
	if m.Accepted() != 0 || m.CanEnd() {
		t.Fatal("rollback did not return to the start")
	}
	if err := m.Rollback(1); err == nil {
		t.Fatal("rollback past the start accepted")
	}
	bad := tok.Encode(`"`, false, false)[0]
	if err := m.Advance(bad); err == nil {
		t.Fatal("a quote accepted at the start of an array")
	}
	for _, id := range ids {
		if err := m.Advance(id); err != nil {
			t.Fatalf("after rollback: %v", err)
		}
	}
	eos := tok.EOGs()[0]
	if err := m.Advance(eos); err != nil {
		t.Fatalf("EOS refused at the end: %v", err)
	}
	if err := m.Advance(ids[0]); err == nil {
		t.Fatal("a token accepted after EOS")
	}
}

// TestAmbiguityBounded: anyOf over many branches sharing a prefix keeps
// each state's stack set within maxStacks, and repeated branches are
// compiled once.
func TestAmbiguityBounded(t *testing.T) {
	tok := llama3(t)
	var br []string
	for i := range 400 {
		br = append(br, fmt.Sprintf(`{"type":"object","properties":{"a":{"type":"string"},"k":{"const":%d}},"required":["a"],"additionalProperties":false}`, i))
	}
	g := compileSchema(t, tok, `{"anyOf":[`+strings.Join(br, ",")+`]}`)
	m := g.NewMatcher()
	mask := make([]uint64, m.MaskWords())
	for _, id := range tok.Encode(`{"a":"x`, false, false) {
		m.Mask(mask)
		if err := m.Advance(id); err != nil {
			break // refused as too ambiguous: allowed, it is stricter
		}
	}
	for _, s := range m.a.states {
		if len(s.nodes) > maxStacks {
			t.Fatalf("a state holds %d stacks", len(s.nodes))
		}
	}
	dup := compileSchema(t, tok, `{"anyOf":[`+strings.Repeat(`{"type":"string"},`, 50)+`{"type":"string"}]}`)
	if n := len(dup.NewMatcher().cur.nodes); n > 20 {
		t.Fatalf("50 equal branches give %d start stacks", n)
	}
}
