package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice/grammar"
	"github.com/sluice-llm/sluice/tokenizer"
)

// structuredParams are the structured-output fields of chat and
// completion requests: OpenAI's response_format, vLLM's structured_outputs
// and guided_* fields, llama.cpp's json_schema and grammar. At most one
// may be set. Grammars (GBNF) are not supported yet and are refused.
type structuredParams struct {
	ResponseFormat    json.RawMessage `json:"response_format"`
	JSONSchema        json.RawMessage `json:"json_schema"`
	Grammar           json.RawMessage `json:"grammar"`
	GuidedJSON        json.RawMessage `json:"guided_json"`
	GuidedChoice      json.RawMessage `json:"guided_choice"`
	GuidedRegex       json.RawMessage `json:"guided_regex"`
	GuidedGrammar     json.RawMessage `json:"guided_grammar"`
	StructuredOutputs json.RawMessage `json:"structured_outputs"`
}

func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(bytes.TrimSpace(raw)) != "null"
}

// compile returns the grammar the request's structured-output field asks
// for, or nil when none is set. Everything it refuses is a 400 naming the
// field (and, for a schema, the keyword at fault).
func (p *structuredParams) compile(tok Tokenizer) (*grammar.Grammar, error) {
	fields := []struct {
		name string
		raw  json.RawMessage
	}{
		{"response_format", p.ResponseFormat}, {"json_schema", p.JSONSchema}, {"grammar", p.Grammar},
		{"guided_json", p.GuidedJSON}, {"guided_choice", p.GuidedChoice}, {"guided_regex", p.GuidedRegex},
		{"guided_grammar", p.GuidedGrammar}, {"structured_outputs", p.StructuredOutputs},
	}
	var set []string
	var name string
	var raw json.RawMessage
	for _, f := range fields {
		if present(f.raw) {
			set = append(set, f.name)
			name, raw = f.name, f.raw
		}
	}
	switch {
	case len(set) == 0:
		return nil, nil
	case len(set) > 1:
		return nil, badRequest(set[1], "only one of %s may be set", strings.Join(set, ", "))
	}
	t, ok := tok.(*tokenizer.Tokenizer)
	if !ok {
		return nil, badRequest(name, "%s: structured output is not available for this model", name)
	}
	return grammars.get(grammarKey{t, name, string(raw)}, func() (*grammar.Grammar, error) {
		return compileField(t, name, raw)
	})
}

// compileField compiles the structured-output field name.
func compileField(t *tokenizer.Tokenizer, name string, raw json.RawMessage) (*grammar.Grammar, error) {
	switch name {
	case "response_format":
		return responseFormat(t, raw)
	case "json_schema", "guided_json":
		return compileSchema(t, name, raw)
	case "guided_choice":
		return compileChoice(t, name, raw)
	case "guided_regex":
		return compileRegex(t, name, raw)
	case "structured_outputs":
		return structuredOutputs(t, raw)
	}
	return nil, badRequest(name, "%s is not supported yet (grammars are not); use a JSON schema, a regex or a choice", name)
}

// responseFormat is OpenAI's response_format: {"type":"text"},
// {"type":"json_object"} (with llama.cpp's optional "schema") or
// {"type":"json_schema","json_schema":{"name","schema","strict"}}.
func responseFormat(t *tokenizer.Tokenizer, raw json.RawMessage) (*grammar.Grammar, error) {
	var rf struct {
		Type       string          `json:"type"`
		JSONSchema json.RawMessage `json:"json_schema"`
		Schema     json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, badRequest("response_format", "response_format must be an object with a string \"type\": %v", err)
	}
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		if present(rf.Schema) {
			return compileSchema(t, "response_format.schema", rf.Schema)
		}
		g, err := grammar.CompileJSONObject(t, grammar.Options{})
		if err != nil {
			return nil, badRequest("response_format", "response_format: %v", err)
		}
		return g, nil
	case "json_schema":
		var js struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict"`
		}
		if !present(rf.JSONSchema) {
			return nil, badRequest("response_format.json_schema", "response_format.json_schema is required when type is \"json_schema\"")
		}
		if err := json.Unmarshal(rf.JSONSchema, &js); err != nil {
			return nil, badRequest("response_format.json_schema", "response_format.json_schema must be an object with name, schema and strict: %v", err)
		}
		if !present(js.Schema) {
			return nil, badRequest("response_format.json_schema.schema", "response_format.json_schema.schema is required")
		}
		return compileSchema(t, "response_format.json_schema.schema", js.Schema)
	case "":
		return nil, badRequest("response_format.type", "response_format.type is required: \"text\", \"json_object\" or \"json_schema\"")
	}
	return nil, badRequest("response_format.type", "response_format.type %q is not supported; use \"text\", \"json_object\" or \"json_schema\"", rf.Type)
}

// compileSchema compiles a JSON Schema given as an object (or, as vLLM
// also takes, a string holding one).
func compileSchema(t *tokenizer.Tokenizer, param string, raw json.RawMessage) (*grammar.Grammar, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	g, err := grammar.CompileJSONSchema(t, raw, grammar.Options{})
	if err != nil {
		return nil, badRequest(param, "%s: %s", param, strings.TrimPrefix(err.Error(), "grammar: "))
	}
	return g, nil
}

// compileRegex compiles a regular expression the whole output matches.
func compileRegex(t *tokenizer.Tokenizer, param string, raw json.RawMessage) (*grammar.Grammar, error) {
	var pattern string
	if err := json.Unmarshal(raw, &pattern); err != nil {
		return nil, badRequest(param, "%s must be a string", param)
	}
	g, err := grammar.CompileRegex(t, pattern)
	if err != nil {
		return nil, badRequest(param, "%s: %s", param, strings.TrimPrefix(err.Error(), "grammar: "))
	}
	return g, nil
}

func compileChoice(t *tokenizer.Tokenizer, param string, raw json.RawMessage) (*grammar.Grammar, error) {
	var choices []string
	if err := json.Unmarshal(raw, &choices); err != nil {
		return nil, badRequest(param, "%s must be an array of strings", param)
	}
	g, err := grammar.CompileChoice(t, choices)
	if err != nil {
		return nil, badRequest(param, "%s: %s", param, strings.TrimPrefix(err.Error(), "grammar: "))
	}
	return g, nil
}

// structuredOutputs is vLLM's structured_outputs object: one of json,
// choice, regex or json_object; grammar and the rest are refused.
func structuredOutputs(t *tokenizer.Tokenizer, raw json.RawMessage) (*grammar.Grammar, error) {
	var so map[string]json.RawMessage
	if err := json.Unmarshal(raw, &so); err != nil {
		return nil, badRequest("structured_outputs", "structured_outputs must be an object")
	}
	var set []string
	for k, v := range so {
		if present(v) && string(v) != "false" {
			set = append(set, k)
		}
	}
	if len(set) != 1 {
		return nil, badRequest("structured_outputs", "structured_outputs must set exactly one of json, choice, regex, json_object (got %d fields)", len(set))
	}
	k := set[0]
	param := "structured_outputs." + k
	switch k {
	case "json":
		return compileSchema(t, param, so[k])
	case "choice":
		return compileChoice(t, param, so[k])
	case "regex":
		return compileRegex(t, param, so[k])
	case "json_object":
		if string(so[k]) != "true" {
			return nil, badRequest(param, "%s must be true", param)
		}
		g, err := grammar.CompileJSONObject(t, grammar.Options{})
		if err != nil {
			return nil, badRequest(param, "%v", err)
		}
		return g, nil
	}
	return nil, badRequest(param, "%s is not supported yet; use json, choice, regex or json_object", fmt.Sprint(param))
}
