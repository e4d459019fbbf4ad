package grammar

import (
	"errors"
	"fmt"

	"github.com/sluice-llm/sluice/tokenizer"
)

// Options configure the JSON front ends.
type Options struct {
	// AnyWhitespace allows JSON whitespace between tokens; by default
	// output is compact JSON.
	AnyWhitespace bool
}

// CompileJSONSchema compiles a JSON Schema (drafts 4 to 2020-12, the
// supported subset) for tok's vocabulary. A keyword the compiler does not
// support is a *SchemaError naming it, never a looser grammar. Objects
// list their properties in the order the schema writes them.
func CompileJSONSchema(tok *tokenizer.Tokenizer, schema []byte, opts Options) (*Grammar, error) {
	root, err := decodeOrdered(schema)
	if err != nil {
		return nil, &SchemaError{Msg: "the schema is not valid JSON: " + err.Error()}
	}
	c := &schemaCompiler{jsonBuilder: newJSONBuilder(opts.AnyWhitespace), root: root, refs: map[string]sym{}}
	s, err := c.compile(root, "#")
	if err != nil {
		return nil, err
	}
	return c.build(s, vocabFor(tok))
}

// CompileJSONObject compiles "any JSON object" (OpenAI's json_object).
func CompileJSONObject(tok *tokenizer.Tokenizer, opts Options) (*Grammar, error) {
	j := newJSONBuilder(opts.AnyWhitespace)
	return j.build(j.anyObject(), vocabFor(tok))
}

// CompileChoice compiles "exactly one of choices" (the strings as they
// are, not quoted).
func CompileChoice(tok *tokenizer.Tokenizer, choices []string) (*Grammar, error) {
	if len(choices) == 0 {
		return nil, errors.New("grammar: the choice list is empty")
	}
	b := &builder{}
	alts := make([][]sym, len(choices))
	for i, c := range choices {
		if c == "" {
			return nil, fmt.Errorf("grammar: choice %d is empty", i)
		}
		alts[i] = bytesOf(c)
	}
	return b.build(b.rule(alts...), vocabFor(tok))
}
