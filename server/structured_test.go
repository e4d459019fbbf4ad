package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/grammar"
)

const personSchema = `{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},"pet":{"enum":["cat","dog"]}},"required":["name","age","pet"],"additionalProperties":false}`

// checkPerson asserts text is an instance of personSchema.
func checkPerson(t *testing.T, text string) {
	t.Helper()
	var p struct {
		Name *string `json:"name"`
		Age  *int64  `json:"age"`
		Pet  string  `json:"pet"`
	}
	d := json.NewDecoder(strings.NewReader(text))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil || p.Name == nil || p.Age == nil || (p.Pet != "cat" && p.Pet != "dog") || len([]rune(*p.Name)) > 12 {
		t.Fatalf("output %q is not a person: %v", text, err)
	}
}

func TestStructuredOutput(t *testing.T) {
	ss := newSDKServer(t, Options{}, true, nil)
	ts := ss.ts
	type chatResp struct {
		Choices []struct {
			Message      struct{ Content string }
			Text         string
			FinishReason string `json:"finish_reason"`
		}
	}
	chat := func(extra string) chatResp {
		t.Helper()
		r := post(t, ts.URL+"/v1/chat/completions", `{"model":"chat","max_tokens":200,"temperature":1,"seed":3,"messages":[{"role":"user","content":"Once upon a time"}],`+extra+`}`)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", extra, r.status, r.body)
		}
		return decode[chatResp](t, r)
	}
	resp := chat(`"n":2,"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":` + personSchema + `}}`)
	if len(resp.Choices) != 2 {
		t.Fatalf("%d choices", len(resp.Choices))
	}
	for _, c := range resp.Choices {
		if c.FinishReason != "stop" {
			t.Errorf("finish_reason %q for %q", c.FinishReason, c.Message.Content)
		}
		checkPerson(t, c.Message.Content)
	}
	for _, extra := range []string{`"guided_json":` + personSchema, `"structured_outputs":{"json":` + personSchema + `}`, `"json_schema":` + personSchema,
		`"guided_json":` + strconvQuote(personSchema)} {
		checkPerson(t, chat(extra).Choices[0].Message.Content)
	}
	for _, extra := range []string{`"guided_choice":["sunny","rainy day"]`, `"structured_outputs":{"choice":["sunny","rainy day"]}`} {
		if c := chat(extra).Choices[0].Message.Content; c != "sunny" && c != "rainy day" {
			t.Errorf("%s: %q", extra, c)
		}
	}
	re := regexp.MustCompile(`^[a-c]{3}-[0-9]{2}(x|yz)$`)
	for _, extra := range []string{`"guided_regex":"^[a-c]{3}-\\d{2}(x|yz)$"`, `"structured_outputs":{"regex":"[a-c]{3}-[0-9]{2}(x|yz)"}`} {
		c := chat(extra).Choices[0]
		if !re.MatchString(c.Message.Content) || c.FinishReason != "stop" {
			t.Errorf("%s: %q (finish_reason %q)", extra, c.Message.Content, c.FinishReason)
		}
	}
	// Any JSON object: this model writes stories into its strings, so the
	// output is a complete object or, cut by max_tokens, a prefix of one.
	tok := ss.engines["chat"].Tokenizer()
	objGrammar, err := grammar.CompileJSONObject(tok, grammar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []string{`"response_format":{"type":"json_object"}`, `"structured_outputs":{"json_object":true}`} {
		c := chat(extra).Choices[0]
		var obj map[string]any
		switch c.FinishReason {
		case "stop":
			if json.Unmarshal([]byte(c.Message.Content), &obj) != nil {
				t.Errorf("%s: %q is not a JSON object", extra, c.Message.Content)
			}
		case "length":
			// Byte by byte, through the vocabulary's byte tokens.
			m := objGrammar.NewMatcher()
			for i := 0; i < len(c.Message.Content); i++ {
				id, ok := tok.TokenID(fmt.Sprintf("<0x%02X>", c.Message.Content[i]))
				if !ok {
					t.Fatalf("no byte token for %#x", c.Message.Content[i])
				}
				if err := m.Advance(id); err != nil {
					t.Fatalf("%s: %q is not a prefix of a JSON object: %v", extra, c.Message.Content, err)
				}
			}
		default:
			t.Errorf("%s: finish_reason %q", extra, c.FinishReason)
		}
	}
	if c := chat(`"response_format":{"type":"text"}`).Choices[0].Message.Content; c == "" {
		t.Error("response_format text: empty output")
	}

	// Completions take the same fields.
	r := post(t, ts.URL+"/v1/completions", `{"model":"stories","max_tokens":200,"prompt":"Once","response_format":{"type":"json_schema","json_schema":{"name":"p","schema":`+personSchema+`}}}`)
	if r.status != http.StatusOK {
		t.Fatalf("completions: %d %s", r.status, r.body)
	}
	checkPerson(t, decode[chatResp](t, r).Choices[0].Text)
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestStructuredOutputErrors(t *testing.T) {
	ts := newSDKServer(t, Options{}, true, nil).ts
	for _, c := range []struct{ extra, param, inMsg string }{
		{`"response_format":{"type":"yaml"}`, "response_format.type", "yaml"},
		{`"response_format":{}`, "response_format.type", "required"},
		{`"response_format":"json"`, "response_format", "object"},
		{`"response_format":{"type":"json_schema"}`, "response_format.json_schema", "required"},
		{`"response_format":{"type":"json_schema","json_schema":{"name":"x"}}`, "response_format.json_schema.schema", "required"},
		{`"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"(a)\\1"}}}`, "response_format.json_schema.schema", "backreferences"},
		{`"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"oneOf":[{"type":"string"},{"type":"string"}]}}}}}`, "response_format.json_schema.schema", "oneOf"},
		{`"guided_json":{"type":"number","multipleOf":2}`, "guided_json", `"multipleOf"`},
		{`"guided_json":{"type":"string","format":"ipv6"}`, "guided_json", `"ipv6"`},
		{`"guided_json":"{not json"`, "guided_json", "not valid JSON"},
		{`"guided_regex":"(?=a)b"`, "guided_regex", "lookaround"},
		{`"guided_regex":["a"]`, "guided_regex", "string"},
		{`"guided_grammar":"root ::= \"a\""`, "guided_grammar", "not supported"},
		{`"grammar":"root ::= \"a\""`, "grammar", "not supported"},
		{`"structured_outputs":{"regex":"(a"}`, "structured_outputs.regex", "missing ')'"},
		{`"structured_outputs":{"grammar":"root ::= \"a\""}`, "structured_outputs.grammar", "not supported"},
		{`"structured_outputs":{"json":{},"choice":["a"]}`, "structured_outputs", "exactly one"},
		{`"guided_choice":[]`, "guided_choice", "empty"},
		{`"guided_choice":"a"`, "guided_choice", "array"},
		{`"guided_json":{},"response_format":{"type":"json_object"}`, "guided_json", "only one"},
	} {
		for _, path := range []string{"/v1/chat/completions", "/v1/completions"} {
			body := `{"model":"chat","max_tokens":5,"messages":[{"role":"user","content":"x"}],` + c.extra + `}`
			if path == "/v1/completions" {
				body = `{"model":"stories","max_tokens":5,"prompt":"x",` + c.extra + `}`
			}
			e := checkError(t, post(t, ts.URL+path, body), http.StatusBadRequest, c.param)
			if msg := e["message"].(string); !strings.Contains(msg, c.inMsg) {
				t.Errorf("%s %s: message %q lacks %q", path, c.extra, msg, c.inMsg)
			}
		}
	}
}

// TestStructuredOutputNeedsTokenizer: a model without a vocabulary the
// grammar package can read refuses structured output instead of ignoring
// it.
func TestStructuredOutputNeedsTokenizer(t *testing.T) {
	f := newFake("m")
	_, ts := newTestServer(t, Options{}, f)
	r := post(t, ts.URL+"/v1/completions", `{"model":"m","prompt":"x","response_format":{"type":"json_object"}}`)
	checkError(t, r, http.StatusBadRequest, "response_format")
	if len(f.requests()) > 0 {
		t.Error("the request reached the model")
	}
}

// TestStructuredGrammarShared: requests with the same constraint get the
// same compiled Grammar (sharing its states and masks); a different one
// gets its own.
func TestStructuredGrammarShared(t *testing.T) {
	ss := newSDKServer(t, Options{}, true, nil)
	tok := ss.engines["chat"].Tokenizer()
	p1 := structuredParams{GuidedJSON: json.RawMessage(personSchema)}
	p2 := structuredParams{GuidedJSON: json.RawMessage(personSchema)}
	p3 := structuredParams{GuidedChoice: json.RawMessage(`["a","b"]`)}
	g1, err1 := p1.compile(tok)
	g2, err2 := p2.compile(tok)
	g3, err3 := p3.compile(tok)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	if g1 != g2 || g1 == g3 {
		t.Errorf("same schema: shared %v; other constraint: shared %v", g1 == g2, g1 == g3)
	}
}
