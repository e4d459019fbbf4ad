package grammar

import (
	"fmt"
	"slices"
)

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
	if kw == "oneOf" {
		if ex, ok := c.exclusiveRequired(branches); ok {
			kw, branches = "anyOf", ex
		}
	}
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

// exclusiveRequired rewrites a oneOf whose branches each only require one
// property, distinct ones ({"oneOf":[{"required":["a"]},{"required":["b"]}]}:
// exactly one of a and b is present) as the equivalent disjoint branches
// that also forbid the other properties, to be compiled as an anyOf. A
// non-object matches every such branch, so none is allowed.
func (c *schemaCompiler) exclusiveRequired(branches []any) ([]any, bool) {
	if len(branches) < 2 {
		return nil, false
	}
	names := make([]string, len(branches))
	for i, b := range branches {
		b, err := c.deref(b, "")
		o, ok := b.(*object)
		if err != nil || !ok || len(constraints(o, "required")) > 0 {
			return nil, false
		}
		r, _ := o.vals["required"].([]any)
		if len(r) != 1 {
			return nil, false
		}
		n, isStr := r[0].(string)
		if !isStr || slices.Contains(names[:i], n) {
			return nil, false
		}
		names[i] = n
	}
	out := make([]any, len(branches))
	for i, n := range names {
		forbid := &object{vals: map[string]any{}}
		for _, other := range names {
			if other != n {
				forbid.keys, forbid.vals[other] = append(forbid.keys, other), false
			}
		}
		out[i] = &object{keys: []string{"type", "required", "properties"},
			vals: map[string]any{"type": "object", "required": []any{n}, "properties": forbid}}
	}
	return out, true
}
