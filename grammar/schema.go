package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// SchemaError is a JSON Schema the compiler refuses: Keyword names the
// keyword at fault, Path the schema location (a JSON pointer).
type SchemaError struct {
	Path    string
	Keyword string
	Msg     string
	empty   bool // the schema at Path matches nothing (an optional property there may only be left out)
}

func (e *SchemaError) Error() string {
	p := e.Path
	if p == "" {
		p = "#"
	}
	return fmt.Sprintf("grammar: JSON Schema at %s: %s", p, e.Msg)
}

func unsupported(path, kw string) error {
	return &SchemaError{Path: path, Keyword: kw, Msg: fmt.Sprintf("unsupported keyword %q", kw)}
}

// annotations are keywords that do not constrain instances.
var annotations = map[string]bool{
	"title": true, "description": true, "$schema": true, "$id": true, "$comment": true,
	"examples": true, "example": true, "default": true, "deprecated": true,
	"readOnly": true, "writeOnly": true, "$defs": true, "definitions": true,
	"id": true, "$anchor": true, "$dynamicAnchor": true, "$recursiveAnchor": true,
	"$vocabulary": true, "contentMediaType": true, "contentEncoding": true, "contentSchema": true,
}

// unimplemented are JSON Schema keywords (drafts 4 to 2020-12) that
// constrain instances and that the compiler does not support: a schema
// using one is refused. Keywords outside the JSON Schema vocabularies
// (vendor extensions such as x-kubernetes-..., misspellings) constrain
// nothing, as the specification says, and are ignored.
var unimplemented = map[string]bool{
	"if": true, "then": true, "else": true,
	"dependencies": true, "dependentRequired": true, "dependentSchemas": true, "multipleOf": true,
	"maxProperties": true, "contains": true, "minContains": true,
	"maxContains": true, "propertyNames": true, "unevaluatedProperties": true,
	"unevaluatedItems": true, "$dynamicRef": true, "$recursiveRef": true,
}

// byKind are the constraining keywords the compiler supports, by the kind
// of instance they apply to.
var byKind = map[string][]string{
	"string":  {"minLength", "maxLength", "format", "pattern"},
	"integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
	"object":  {"properties", "required", "additionalProperties", "patternProperties", "minProperties"},
	"array":   {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "additionalItems"},
}

var general = map[string]bool{
	"not": true, "type": true, "enum": true, "const": true, "nullable": true, "$ref": true,
	"anyOf": true, "oneOf": true, "allOf": true,
}

func supported(kw string) bool {
	if annotations[kw] || general[kw] {
		return true
	}
	for _, kws := range byKind {
		if slices.Contains(kws, kw) {
			return true
		}
	}
	return false
}

var allKinds = []string{"null", "boolean", "object", "array", "string", "number"}

type schemaCompiler struct {
	*jsonBuilder
	root  any
	refs  map[string]sym
	depth int
}

// compile returns the symbol for schema s at path.
func (c *schemaCompiler) compile(s any, path string) (sym, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 256 {
		return sym{}, &SchemaError{Path: path, Msg: "the schema is nested too deeply"}
	}
	if c.err != nil {
		return sym{}, c.err
	}
	switch x := s.(type) {
	case bool:
		if x {
			return c.anyValue(), nil
		}
		return sym{}, &SchemaError{Path: path, Msg: "the schema false matches nothing", empty: true}
	case *object:
		return c.compileObject(x, path)
	}
	return sym{}, &SchemaError{Path: path, Msg: "a schema must be an object or a boolean"}
}

// constraints lists o's keywords that are neither annotations nor in skip.
func constraints(o *object, skip ...string) []string {
	var out []string
	for _, k := range o.keys {
		if !annotations[k] && !slices.Contains(skip, k) {
			out = append(out, k)
		}
	}
	return out
}

// known returns o without the keywords outside the JSON Schema
// vocabularies, or the error naming an unimplemented keyword of o.
func known(o *object, path string) (*object, error) {
	r := o
	for _, k := range o.keys {
		switch {
		case unimplemented[k]:
			return nil, unsupported(path, k)
		case !supported(k):
			r = without(r, k)
		}
	}
	return r, nil
}

func (c *schemaCompiler) compileObject(o *object, path string) (sym, error) {
	o, err := known(o, path)
	if err != nil {
		return sym{}, err
	}
	if o, err = notRewrite(o, path); err != nil {
		return sym{}, err
	}
	if n, ok := o.get("nullable"); ok {
		b, isBool := n.(bool)
		if !isBool {
			return sym{}, &SchemaError{Path: path, Keyword: "nullable", Msg: "nullable must be a boolean"}
		}
		rest := without(o, "nullable")
		inner, err := c.compileObject(rest, path)
		if err != nil || !b {
			return inner, err
		}
		return c.rule([]sym{inner}, bytesOf("null")), nil
	}
	if ref, ok := o.get("$ref"); ok {
		if len(constraints(o, "$ref")) > 0 {
			return c.besideRef(o, path)
		}
		r, isStr := ref.(string)
		if !isStr {
			return sym{}, &SchemaError{Path: path, Keyword: "$ref", Msg: "$ref must be a string"}
		}
		return c.ref(r, path)
	}
	for _, kw := range []string{"anyOf", "oneOf", "allOf"} {
		if v, ok := o.get(kw); ok {
			if len(constraints(o, kw)) > 0 {
				return c.besideCombinator(o, kw, v, path)
			}
			return c.combine(kw, v, path)
		}
	}
	if _, hasEnum := o.get("enum"); hasEnum {
		return c.enum(o, "enum", path)
	}
	if _, hasConst := o.get("const"); hasConst {
		return c.enum(o, "const", path)
	}
	kinds, err := typeKinds(o, path)
	if err != nil {
		return sym{}, err
	}
	var alts [][]sym
	for _, k := range kinds {
		s, err := c.kind(k, o, path)
		if err != nil {
			return sym{}, err
		}
		alts = append(alts, []sym{s})
	}
	return c.rule(alts...), nil
}

// without returns o less key k.
func without(o *object, k string) *object {
	r := &object{vals: map[string]any{}}
	for _, kk := range o.keys {
		if kk != k {
			r.keys = append(r.keys, kk)
			r.vals[kk] = o.vals[kk]
		}
	}
	return r
}

// typeKinds returns the kinds of instance o allows by its "type" (all
// when absent); "integer" stays distinct from "number".
func typeKinds(o *object, path string) ([]string, error) {
	t, ok := o.get("type")
	if !ok {
		return allKinds, nil
	}
	var names []string
	switch x := t.(type) {
	case string:
		names = []string{x}
	case []any:
		for _, e := range x {
			s, isStr := e.(string)
			if !isStr {
				return nil, &SchemaError{Path: path, Keyword: "type", Msg: "type must be a string or an array of strings"}
			}
			names = append(names, s)
		}
	default:
		return nil, &SchemaError{Path: path, Keyword: "type", Msg: "type must be a string or an array of strings"}
	}
	if len(names) == 0 {
		return nil, &SchemaError{Path: path, Keyword: "type", Msg: "type is an empty array"}
	}
	var out []string
	for _, n := range names {
		switch n {
		case "null", "boolean", "object", "array", "string", "number", "integer":
		default:
			return nil, &SchemaError{Path: path, Keyword: "type", Msg: fmt.Sprintf("unknown type %q", n)}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if slices.Contains(out, "number") {
		out = slices.DeleteFunc(out, func(s string) bool { return s == "integer" })
	}
	return out, nil
}

// kind is the grammar of the instances of kind k that o allows.
func (c *schemaCompiler) kind(k string, o *object, path string) (sym, error) {
	switch k {
	case "null":
		return c.rule(bytesOf("null")), nil
	case "boolean":
		return c.rule(bytesOf("true"), bytesOf("false")), nil
	case "integer":
		lo, hi, err := intBounds(o, path)
		if err != nil {
			return sym{}, err
		}
		if lo == nil && hi == nil {
			return c.integerRule(), nil
		}
		return c.intRange(lo, hi), nil
	case "number":
		return c.boundedNumber(o, path)
	case "string":
		if pat, ok := o.get("pattern"); ok {
			return c.patternString(o, pat, path)
		}
		if f, ok := o.get("format"); ok {
			return c.formatString(o, f, path)
		}
		lo, hi, err := bounds(o, "minLength", "maxLength", path)
		if err != nil {
			return sym{}, err
		}
		return c.str(lo, hi), nil
	case "array":
		return c.array(o, path)
	}
	return c.objectKind(o, path)
}

// bounds reads a pair of non-negative integer keywords (hi -1 when absent).
func bounds(o *object, loKw, hiKw, path string) (lo, hi int, err error) {
	lo, hi = 0, -1
	for i, kw := range []string{loKw, hiKw} {
		v, ok := o.get(kw)
		if !ok {
			continue
		}
		num, isNum := v.(json.Number)
		n, perr := strconv.ParseInt(strings.TrimSuffix(string(num), ".0"), 10, 64)
		if !isNum || perr != nil || n < 0 || n > 1<<20 {
			return 0, 0, &SchemaError{Path: path, Keyword: kw, Msg: fmt.Sprintf("%s must be a non-negative integer (at most %d)", kw, 1<<20)}
		}
		if i == 0 {
			lo = int(n)
		} else {
			hi = int(n)
		}
	}
	if hi >= 0 && lo > hi {
		return 0, 0, &SchemaError{Path: path, Keyword: loKw, Msg: fmt.Sprintf("%s %d is above %s %d: nothing matches", loKw, lo, hiKw, hi)}
	}
	return lo, hi, nil
}

// enum is the alternatives of o's enum (or const) values, written as
// compact JSON; values outside o's "type" are dropped.
func (c *schemaCompiler) enum(o *object, kw, path string) (sym, error) {
	if extra := constraints(o, kw, "type"); len(extra) > 0 {
		return sym{}, &SchemaError{Path: path, Keyword: extra[0], Msg: fmt.Sprintf("%q beside %s is not supported", extra[0], kw)}
	}
	vals := []any{o.vals[kw]}
	if kw == "enum" {
		a, ok := o.vals[kw].([]any)
		if !ok {
			return sym{}, &SchemaError{Path: path, Keyword: kw, Msg: "enum must be an array"}
		}
		vals = a
	}
	kinds, err := typeKinds(o, path)
	if err != nil {
		return sym{}, err
	}
	var alts [][]sym
	for _, v := range vals {
		if !slices.Contains(kinds, kindOf(v)) && !(kindOf(v) == "integer" && slices.Contains(kinds, "number")) {
			continue
		}
		var buf bytes.Buffer
		encodeCompact(&buf, v)
		alts = append(alts, bytesOf(buf.String()))
	}
	if len(alts) == 0 {
		return sym{}, &SchemaError{Path: path, Keyword: kw, Msg: "no " + kw + " value matches the schema's type", empty: true}
	}
	return c.rule(alts...), nil
}

// kindOf is the JSON Schema type of a decoded value ("integer" for
// numbers without a fraction or exponent).
func kindOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case *object:
		return "object"
	case json.Number:
		if !strings.ContainsAny(string(x), ".eE") {
			return "integer"
		}
	}
	return "number"
}

// ref compiles the schema $ref points to, once per target (recursion
// refers back to the same rule).
func (c *schemaCompiler) ref(r, path string) (sym, error) {
	if s, ok := c.refs[r]; ok {
		return s, nil
	}
	target, err := c.resolve(r)
	if err != nil {
		return sym{}, &SchemaError{Path: path, Keyword: "$ref", Msg: err.Error()}
	}
	s := c.newRule()
	c.refs[r] = s
	body, err := c.compile(target, r)
	if err != nil {
		return sym{}, err
	}
	c.setRule(s, []sym{body})
	return s, nil
}

// resolve follows a local JSON pointer reference ("#", "#/$defs/name").
func (c *schemaCompiler) resolve(r string) (any, error) {
	if r != "#" && !strings.HasPrefix(r, "#/") {
		return nil, fmt.Errorf("only local references (#/...) are supported, not %q", r)
	}
	cur := c.root
	if r == "#" {
		return cur, nil
	}
	for _, tok := range strings.Split(r[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := cur.(type) {
		case *object:
			v, ok := x.get(tok)
			if !ok {
				return nil, fmt.Errorf("reference %q: no %q", r, tok)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("reference %q: no index %q", r, tok)
			}
			cur = x[i]
		default:
			return nil, fmt.Errorf("reference %q: cannot descend into %q", r, tok)
		}
	}
	return cur, nil
}
