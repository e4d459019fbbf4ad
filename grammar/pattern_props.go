package grammar

import (
	"bytes"
	"fmt"
)

// patternProps is an object's patternProperties with one schema for every
// pattern: a key beside the declared properties must match one of the
// patterns and its value that schema. Keys matching no pattern are not
// generated, whatever additionalProperties says (stricter, never looser).
type patternProps struct {
	patterns []string
	schema   any
}

// patternProperties reads o's patternProperties: nil when absent or
// empty; refused unless the patterns share one schema (a key matching
// several patterns must match all their schemas, which would need an
// intersection).
func (c *schemaCompiler) patternProperties(o *object, path string) (*patternProps, error) {
	v, ok := o.get("patternProperties")
	if !ok {
		return nil, nil
	}
	po, isObj := v.(*object)
	if !isObj {
		return nil, &SchemaError{Path: path, Keyword: "patternProperties", Msg: "patternProperties must be an object"}
	}
	if len(po.keys) == 0 {
		return nil, nil
	}
	pp := &patternProps{patterns: po.keys, schema: po.vals[po.keys[0]]}
	var first bytes.Buffer
	encodeCompact(&first, pp.schema)
	for _, k := range po.keys[1:] {
		var b bytes.Buffer
		encodeCompact(&b, po.vals[k])
		if b.String() != first.String() {
			return nil, &SchemaError{Path: path, Keyword: "patternProperties", Msg: "patternProperties with different schemas for different patterns is not supported"}
		}
	}
	return pp, nil
}

// compile returns the grammar of a key matching one of the patterns and
// of its value. A declared property name that a pattern matches is
// refused: its value would have to match both schemas.
func (pp *patternProps) compile(c *schemaCompiler, names []string, path string) (key, val sym, err error) {
	kp := path + "/patternProperties"
	var alts [][]sym
	for _, p := range pp.patterns {
		for _, n := range names {
			m, err := regexMatches(p, n)
			if err != nil {
				return sym{}, sym{}, &SchemaError{Path: kp, Keyword: "patternProperties", Msg: err.Error()}
			}
			if m {
				return sym{}, sym{}, &SchemaError{Path: kp, Keyword: "patternProperties", Msg: fmt.Sprintf("property %q is declared and matches pattern %q: not supported", n, p)}
			}
		}
		seq, err := regexSyms(c.builder, p, c.jsonStrChar, []sym{c.star([]sym{c.strChar()})})
		if err != nil {
			return sym{}, sym{}, &SchemaError{Path: kp, Keyword: "patternProperties", Msg: err.Error()}
		}
		alts = append(alts, cat(bytesOf(`"`), seq, bytesOf(`"`)))
	}
	val, err = c.compile(pp.schema, kp+"/"+escapePointer(pp.patterns[0]))
	if err != nil {
		return sym{}, sym{}, err
	}
	return c.rule(alts...), val, nil
}

// regexMatches reports whether pattern matches somewhere in s (JSON
// Schema's unanchored search), by walking s's bytes through the pattern's
// grammar.
func regexMatches(pattern, s string) (bool, error) {
	b := &builder{}
	anyChar := b.rawChar(negate(nil))
	seq, err := regexSyms(b, pattern, b.rawChar, []sym{b.star(anyChar)})
	if err != nil {
		return false, err
	}
	g, err := b.build(b.rule(seq), nil)
	if err != nil {
		return false, err
	}
	a := newAutomaton(g)
	st := a.start
	for i := 0; i < len(s) && st != a.dead; i++ {
		st = a.next(st, s[i])
	}
	return st.accept, nil
}
