package grammar

import (
	"strings"
	"testing"
)

// TestSchemaKeywordsOutsideVocabularyIgnored: vendor keywords, draft-4
// "id" and formats the specification does not define constrain nothing.
func TestSchemaKeywordsOutsideVocabularyIgnored(t *testing.T) {
	tok := llama3(t)
	g := compileSchema(t, tok, `{"type":"object","id":"x","x-kubernetes-group-version-kind":[],"properties":{"a":{"type":"string","format":"html","_uniqueItems":true,"maxLength":3}},"required":["a"],"additionalProperties":false}`)
	if !accepts(t, tok, g, `{"a":"<b>"}`) {
		t.Error(`{"a":"<b>"} rejected`)
	}
	if accepts(t, tok, g, `{"a":"<b></b>"}`) || accepts(t, tok, g, `{}`) {
		t.Error("maxLength or required not enforced beside ignored keywords")
	}
}

// TestSchemaSiblingsOfCombinators: keywords beside $ref, anyOf, oneOf and
// allOf constrain the instance too.
func TestSchemaSiblingsOfCombinators(t *testing.T) {
	tok := llama3(t)
	for _, c := range []struct {
		schema         string
		valid, invalid []string
	}{
		{`{"$ref":"#/$defs/a","required":["x"],"$defs":{"a":{"type":"object","properties":{"x":{"type":"integer"}},"additionalProperties":false}}}`,
			[]string{`{"x":1}`}, []string{`{}`, `{"x":"s"}`}},
		{`{"type":"object","required":["a"],"anyOf":[{"properties":{"a":{"type":"integer"}}},{"properties":{"a":{"type":"string"}}}]}`,
			[]string{`{"a":1}`, `{"a":"s"}`}, []string{`{}`, `{"a":null}`, `[]`}},
		{`{"type":["string","integer"],"oneOf":[{"type":"string"},{"type":"integer","minimum":0}]}`,
			[]string{`"s"`, `3`}, []string{`-1`, `null`}},
		{`{"type":"object","required":["b"],"allOf":[{"properties":{"a":{"type":"integer"}}},{"properties":{"b":{"type":"boolean"}}}]}`,
			[]string{`{"a":1,"b":true}`, `{"b":false}`}, []string{`{"a":1}`, `{"b":1}`}},
		{`{"type":["object","null"],"properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{}},"oneOf":[{"required":["a"]},{"required":["b"]}],"additionalProperties":false}`,
			[]string{`{"a":1}`, `{"b":"x","c":2}`}, []string{`{"a":1,"b":"x"}`, `{"c":1}`, `null`, `{}`}},
		{`{"oneOf":[{"required":["a"]},{"required":["b"]}]}`,
			[]string{`{"a":1}`, `{"b":1,"z":0}`}, []string{`{"a":1,"b":2}`, `1`, `"s"`, `{}`}},
	} {
		g := compileSchema(t, tok, c.schema)
		for _, v := range c.valid {
			if !accepts(t, tok, g, v) {
				t.Errorf("%s: valid %s rejected", c.schema, v)
			}
		}
		for _, v := range c.invalid {
			if accepts(t, tok, g, v) {
				t.Errorf("%s: invalid %s accepted", c.schema, v)
			}
		}
	}
}

// TestOneOfDisjointObjects: oneOf over object branches that a required
// property tells apart (by its values, or by a closed branch without it)
// is exact; an optional property whose schema matches nothing may only be
// left out.
func TestOneOfDisjointObjects(t *testing.T) {
	tok := llama3(t)
	for _, c := range []struct {
		schema         string
		valid, invalid []string
	}{
		{`{"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind"]},{"type":"object","properties":{"kind":{"enum":["b","c"]}},"required":["kind"]}]}`,
			[]string{`{"kind":"a","x":1}`, `{"kind":"c"}`}, []string{`{"kind":"d"}`, `{}`, `"a"`}},
		{`{"oneOf":[{"type":"object","properties":{"a":{}},"required":["a"],"additionalProperties":false},{"type":"object","properties":{"b":{}},"required":["b"],"additionalProperties":false}]}`,
			[]string{`{"a":1}`, `{"b":[]}`}, []string{`{"a":1,"b":2}`, `{}`}},
		{`{"type":"object","minProperties":1}`, []string{`{"a":1}`, `{"a":1,"b":[]}`}, []string{`{}`}},
		{`{"type":"object","properties":{"a":{},"b":{}},"minProperties":1,"additionalProperties":false}`,
			[]string{`{"a":1}`, `{"b":1}`, `{"a":1,"b":2}`}, []string{`{}`, `{"c":1}`}},
		{`{"type":"array","items":{"type":"integer"},"additionalItems":false}`, []string{`[1,2]`}, []string{`["a"]`}},
		{`{"type":"object","properties":{"n":{"type":"integer"},"e":{"type":"object","enum":["x"]}},"required":["n"]}`,
			[]string{`{"n":1}`}, []string{`{"n":1,"e":"x"}`, `{"n":1,"e":{}}`}},
	} {
		g := compileSchema(t, tok, c.schema)
		for _, v := range c.valid {
			if !accepts(t, tok, g, v) {
				t.Errorf("%s: valid %s rejected", c.schema, v)
			}
		}
		for _, v := range c.invalid {
			if accepts(t, tok, g, v) {
				t.Errorf("%s: invalid %s accepted", c.schema, v)
			}
		}
	}
	_, err := CompileJSONSchema(tok, []byte(`{"oneOf":[{"type":"object","properties":{"a":{}},"required":["a"]},{"type":"object","properties":{"b":{}},"required":["b"]}]}`), Options{})
	if err == nil || !strings.Contains(err.Error(), "oneOf") {
		t.Errorf("overlapping object branches: got %v, want a oneOf error", err)
	}
}

// TestOneOfDisjointByTypeAndLiteral: a typed branch with combinators keeps
// its type apart from other types; objects told apart by a required
// property whose patterns are distinct literals are exact.
func TestOneOfDisjointByTypeAndLiteral(t *testing.T) {
	tok := llama3(t)
	g := compileSchema(t, tok, `{"oneOf":[{"type":"string"},{"type":"object","properties":{"t":{"type":"string"},"u":{"type":"string"}},"anyOf":[{"required":["t"]},{"required":["u"]}]}]}`)
	for v, want := range map[string]bool{`"x"`: true, `{"t":"a"}`: true, `{}`: false, `1`: false} {
		if accepts(t, tok, g, v) != want {
			t.Errorf("string or object: %s accepted=%v", v, !want)
		}
	}
	g = compileSchema(t, tok, `{"oneOf":[{"type":"object","properties":{"k":{"type":"string","pattern":"^ecu$"}},"required":["k"]},{"properties":{"k":{"type":"string","pattern":"^table$"}},"required":["k"]}]}`)
	for v, want := range map[string]bool{`{"k":"ecu"}`: true, `{"k":"table"}`: true, `{"k":"x"}`: false, `"s"`: true} {
		if accepts(t, tok, g, v) != want {
			t.Errorf("literal patterns: %s accepted=%v", v, !want)
		}
	}
}

// TestSchemaNot: not of a type leaves the other kinds; not of one
// required property forbids it.
func TestSchemaNot(t *testing.T) {
	tok := llama3(t)
	for _, c := range []struct {
		schema         string
		valid, invalid []string
	}{
		{`{"not":{"type":["string","object"]}}`, []string{`1`, `1.5`, `null`, `[]`, `true`}, []string{`"s"`, `{}`}},
		{`{"type":["integer","string"],"not":{"type":"number"}}`, []string{`"s"`}, []string{`1`}},
		{`{"type":"object","properties":{"a":{},"b":{}},"not":{"required":["a"]}}`, []string{`{"b":1}`, `{}`}, []string{`{"a":1}`, `{"b":1,"a":2}`}},
	} {
		g := compileSchema(t, tok, c.schema)
		for _, v := range c.valid {
			if !accepts(t, tok, g, v) {
				t.Errorf("%s: valid %s rejected", c.schema, v)
			}
		}
		for _, v := range c.invalid {
			if accepts(t, tok, g, v) {
				t.Errorf("%s: invalid %s accepted", c.schema, v)
			}
		}
	}
	_, err := CompileJSONSchema(tok, []byte(`{"type":"number","not":{"type":"integer"}}`), Options{})
	if err == nil || !strings.Contains(err.Error(), "not integer") {
		t.Errorf("not integer beside number: got %v", err)
	}
}
