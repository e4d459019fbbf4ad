package grammar

import (
	"errors"
	"fmt"

	"github.com/sluice-llm/sluice/tokenizer"
)

// Item is one alternative of a sequence grammar: literal text, a JSON
// value matching Schema, literal text. Tool calls use it for the markers
// and function name around a call's arguments.
type Item struct {
	Prefix string
	Schema []byte // a JSON Schema (the supported subset of CompileJSONSchema)
	Suffix string
}

// Sequence is Open, then between Min and Max items (each any one of
// Items) separated by Sep, then Close. Max < 0 is unbounded.
type Sequence struct {
	Open, Sep, Close string
	Items            []Item
	Min, Max         int
}

// CompileSequence compiles seq for tok's vocabulary. Each item's schema is
// compiled as CompileJSONSchema would; a keyword it does not support is a
// *SchemaError naming the item.
func CompileSequence(tok *tokenizer.Tokenizer, seq Sequence, opts Options) (*Grammar, error) {
	if len(seq.Items) == 0 {
		return nil, errors.New("grammar: a sequence needs at least one item")
	}
	if seq.Min < 1 || (seq.Max >= 0 && seq.Max < seq.Min) {
		return nil, fmt.Errorf("grammar: sequence bounds [%d, %d] are invalid (at least one item)", seq.Min, seq.Max)
	}
	j := newJSONBuilder(opts.AnyWhitespace)
	alts := make([][]sym, len(seq.Items))
	for i, it := range seq.Items {
		root, err := decodeOrdered(it.Schema)
		if err != nil {
			return nil, &SchemaError{Path: fmt.Sprintf("item %d", i), Msg: "the schema is not valid JSON: " + err.Error()}
		}
		c := &schemaCompiler{jsonBuilder: j, root: root, refs: map[string]sym{}}
		s, err := c.compile(root, "#")
		if err != nil {
			return nil, err
		}
		alts[i] = cat(bytesOf(it.Prefix), []sym{s}, bytesOf(it.Suffix))
	}
	item := []sym{j.rule(alts...)}
	hi := -1
	if seq.Max >= 0 {
		hi = seq.Max - 1
	}
	more := j.rep(cat(bytesOf(seq.Sep), item), seq.Min-1, hi)
	root := j.rule(cat(bytesOf(seq.Open), item, more, bytesOf(seq.Close)))
	return j.build(root, vocabFor(tok))
}
