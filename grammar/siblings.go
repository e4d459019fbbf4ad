package grammar

import "fmt"

// Keywords beside $ref, anyOf, oneOf or allOf constrain the same instance
// as the reference or combinator does (draft 2019-09 and later; older
// drafts ignore a $ref's siblings, so honouring them is never looser).
// They are compiled as an allOf with the reference, or distributed into
// each anyOf/oneOf branch, through merge, which refuses what it cannot
// join exactly.

// besideRef compiles o, a $ref with sibling keywords, as the allOf of the
// reference and the siblings.
func (c *schemaCompiler) besideRef(o *object, path string) (sym, error) {
	ref := &object{keys: []string{"$ref"}, vals: map[string]any{"$ref": o.vals["$ref"]}}
	merged, err := c.merge([]any{ref, without(o, "$ref")}, path)
	if err != nil {
		return sym{}, err
	}
	return c.compileObject(merged, path+"/allOf")
}

// besideCombinator compiles o, whose combinator kw (with branches v) has
// sibling keywords: allOf takes the siblings as one more branch; anyOf and
// oneOf take each branch merged with the siblings.
func (c *schemaCompiler) besideCombinator(o *object, kw string, v any, path string) (sym, error) {
	branches, ok := v.([]any)
	if !ok || len(branches) == 0 {
		return sym{}, &SchemaError{Path: path, Keyword: kw, Msg: kw + " must be a non-empty array"}
	}
	rest := without(o, kw)
	if kw == "allOf" {
		return c.combine(kw, append(append([]any{}, branches...), rest), path)
	}
	merged := make([]any, len(branches))
	for i, b := range branches {
		m, err := c.merge([]any{rest, b}, fmt.Sprintf("%s/%s/%d", path, kw, i))
		if err != nil {
			return sym{}, err
		}
		merged[i] = m
	}
	return c.combine(kw, merged, path)
}
