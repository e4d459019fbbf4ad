package grammar

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// combine compiles anyOf, oneOf (only when its branches cannot overlap, so
// that anyOf is exact) and allOf (as a merge of its branches).
func (c *schemaCompiler) combine(kw string, v any, path string) (sym, error) {
	branches, ok := v.([]any)
	if !ok || len(branches) == 0 {
		return sym{}, &SchemaError{Path: path, Keyword: kw, Msg: kw + " must be a non-empty array"}
	}
	if kw == "allOf" {
		merged, err := c.merge(branches, path)
		if err != nil {
			return sym{}, err
		}
		return c.compileObject(merged, path+"/allOf")
	}
	if kw == "oneOf" {
		if ex, ok := c.exclusiveRequired(branches); ok {
			return c.combine("anyOf", ex, path)
		}
		if err := c.disjoint(branches, path); err != nil {
			return sym{}, err
		}
	}
	var alts [][]sym
	seen := map[string]bool{}
	for i, b := range branches {
		var key bytes.Buffer
		encodeCompact(&key, b)
		if seen[key.String()] {
			continue // the same branch again adds nothing but ambiguity
		}
		seen[key.String()] = true
		s, err := c.compile(b, fmt.Sprintf("%s/%s/%d", path, kw, i))
		if err != nil {
			return sym{}, err
		}
		alts = append(alts, []sym{s})
	}
	return c.rule(alts...), nil
}

// deref follows $ref chains of a schema without other keywords.
func (c *schemaCompiler) deref(s any, path string) (any, error) {
	for range 32 {
		o, ok := s.(*object)
		if !ok {
			return s, nil
		}
		r, ok := o.get("$ref")
		if !ok {
			return s, nil
		}
		rs, _ := r.(string)
		t, err := c.resolve(rs)
		if err != nil {
			return nil, &SchemaError{Path: path, Keyword: "$ref", Msg: err.Error()}
		}
		s = t
	}
	return nil, &SchemaError{Path: path, Keyword: "$ref", Msg: "$ref chain too long"}
}

// signature is what a oneOf branch may match: kinds, and the exact values
// for enum/const branches (nil otherwise).
type signature struct {
	kinds []string
	vals  []string
	obj   *objectSig // for branches of type object alone
}

// objectSig is what decides whether two object branches may match the
// same object: the properties each requires, their schemas, and whether
// other properties are refused.
type objectSig struct {
	required []string
	props    *object
	closed   bool
}

func objectSigOf(o *object) *objectSig {
	sig := &objectSig{props: &object{vals: map[string]any{}}}
	if p, ok := o.vals["properties"].(*object); ok {
		sig.props = p
	}
	r, _ := o.vals["required"].([]any)
	for _, x := range r {
		if s, ok := x.(string); ok {
			sig.required = append(sig.required, s)
		}
	}
	sig.closed = o.vals["additionalProperties"] == false
	return sig
}

func (c *schemaCompiler) signature(b any, path string) (signature, error) {
	b, err := c.deref(b, path)
	if err != nil {
		return signature{}, err
	}
	o, ok := b.(*object)
	if !ok {
		return signature{kinds: allKinds}, nil
	}
	kinds, err := typeKinds(o, path)
	if err != nil {
		return signature{}, err
	}
	if slices.ContainsFunc(o.keys, func(k string) bool { return k == "anyOf" || k == "oneOf" || k == "allOf" || k == "nullable" }) {
		if _, typed := o.get("type"); typed && !slices.Contains(o.keys, "nullable") {
			return signature{kinds: kinds}, nil // the combinators only narrow the type
		}
		return signature{kinds: allKinds}, nil
	}
	var vals []any
	if e, ok := o.get("enum"); ok {
		vals, _ = e.([]any)
	} else if cv, ok := o.get("const"); ok {
		vals = []any{cv}
	} else {
		sig := signature{kinds: kinds, obj: objectSigOf(o)}
		if lit, ok := literalPattern(o); ok && len(kinds) == 1 && kinds[0] == "string" {
			sig.vals = []string{lit}
		}
		return sig, nil
	}
	sig := signature{vals: []string{}}
	for _, v := range vals {
		var buf bytes.Buffer
		encodeCompact(&buf, v)
		sig.vals = append(sig.vals, buf.String())
		sig.kinds = append(sig.kinds, kindOf(v))
	}
	return sig, nil
}

// disjoint refuses a oneOf whose branches might match the same instance.
func (c *schemaCompiler) disjoint(branches []any, path string) error {
	sigs := make([]signature, len(branches))
	for i, b := range branches {
		s, err := c.signature(b, path)
		if err != nil {
			return err
		}
		sigs[i] = s
	}
	for i := range sigs {
		for j := i + 1; j < len(sigs); j++ {
			if c.overlap(sigs[i], sigs[j], path, 0) {
				return &SchemaError{Path: path, Keyword: "oneOf", Msg: fmt.Sprintf(
					"oneOf branches %d and %d may match the same instance; only oneOf with branches of distinct types or values is supported", i, j)}
			}
		}
	}
	return nil
}

// overlap reports whether two signatures may match the same instance
// (true when unsure).
func (c *schemaCompiler) overlap(a, b signature, path string, depth int) bool {
	common := intersectKinds(a.kinds, b.kinds)
	if len(common) == 0 {
		return false
	}
	if a.vals != nil && b.vals != nil {
		return slices.ContainsFunc(a.vals, func(v string) bool { return slices.Contains(b.vals, v) })
	}
	// Only objects in common: their properties may tell them apart.
	if len(common) == 1 && common[0] == "object" && a.obj != nil && b.obj != nil && depth < 8 {
		return !c.objectsDisjoint(a.obj, b.obj, path, depth) && !c.objectsDisjoint(b.obj, a.obj, path, depth)
	}
	return true
}

// objectsDisjoint reports whether a property a requires is refused by b
// (b closed without it, or its schema false there) or has values b's
// schema for it never matches, when b requires it too.
func (c *schemaCompiler) objectsDisjoint(a, b *objectSig, path string, depth int) bool {
	for _, p := range a.required {
		bs, inB := b.props.vals[p]
		if (!inB && b.closed) || (inB && bs == false) {
			return true
		}
		as, inA := a.props.vals[p]
		if !inA || !inB || !slices.Contains(b.required, p) {
			continue
		}
		sa, errA := c.signature(as, path)
		sb, errB := c.signature(bs, path)
		if errA == nil && errB == nil && !c.overlap(sa, sb, path, depth+1) {
			return true
		}
	}
	return false
}

// merge folds allOf branches into one schema: properties and required are
// joined, types intersected; any other keyword may appear in one branch
// only, and additionalProperties in none (merging it would be looser).
func (c *schemaCompiler) merge(branches []any, path string) (*object, error) {
	m := &object{vals: map[string]any{}}
	props := &object{vals: map[string]any{}}
	var required []any
	var kinds []string
	for i, b := range branches {
		bp := fmt.Sprintf("%s/allOf/%d", path, i)
		b, err := c.deref(b, bp)
		if err != nil {
			return nil, err
		}
		if t, ok := b.(bool); ok && t {
			continue
		}
		o, ok := b.(*object)
		if !ok {
			return nil, &SchemaError{Path: bp, Keyword: "allOf", Msg: "an allOf branch must be a schema object or true"}
		}
		for _, k := range o.keys {
			v := o.vals[k]
			switch {
			case annotations[k]:
			case k == "additionalProperties":
				if objectBranches(branches, c) > 1 {
					return nil, &SchemaError{Path: bp, Keyword: k, Msg: "additionalProperties inside allOf is not supported (beside properties of another branch)"}
				}
				m.keys, m.vals[k] = append(m.keys, k), v
			case k == "properties":
				po, ok := v.(*object)
				if !ok {
					return nil, &SchemaError{Path: bp, Keyword: k, Msg: "properties must be an object"}
				}
				for _, name := range po.keys {
					if prev, dup := props.vals[name]; dup {
						if joined, ok := joinProperty(prev, po.vals[name]); ok {
							props.vals[name] = joined
							continue
						}
						return nil, &SchemaError{Path: bp, Keyword: "allOf", Msg: fmt.Sprintf("property %q in two allOf branches is not supported", name)}
					}
					props.keys = append(props.keys, name)
					props.vals[name] = po.vals[name]
				}
			case k == "required":
				r, _ := v.([]any)
				required = append(required, r...)
			case k == "type":
				ks, err := typeKinds(o, bp)
				if err != nil {
					return nil, err
				}
				if kinds == nil {
					kinds = ks
				} else {
					kinds = intersectKinds(kinds, ks)
				}
			default:
				if _, dup := m.vals[k]; dup {
					return nil, &SchemaError{Path: bp, Keyword: k, Msg: fmt.Sprintf("%q in two allOf branches is not supported", k)}
				}
				m.keys = append(m.keys, k)
				m.vals[k] = v
			}
		}
	}
	if len(props.keys) > 0 {
		m.keys, m.vals["properties"] = append(m.keys, "properties"), props
	}
	if len(required) > 0 {
		m.keys, m.vals["required"] = append(m.keys, "required"), required
	}
	if kinds != nil {
		if len(kinds) == 0 {
			return nil, &SchemaError{Path: path, Keyword: "allOf", Msg: "the allOf branches' types have nothing in common"}
		}
		t := make([]any, len(kinds))
		for i, k := range kinds {
			t[i] = k
		}
		m.keys, m.vals["type"] = append(m.keys, "type"), t
	}
	return m, nil
}

// objectBranches counts the allOf branches with properties or
// additionalProperties: additionalProperties merges exactly only when its
// branch is the one that names properties.
func objectBranches(branches []any, c *schemaCompiler) int {
	n := 0
	for _, b := range branches {
		b, _ = c.deref(b, "")
		if o, ok := b.(*object); ok {
			p, hasP := o.get("properties")
			_, a := o.get("additionalProperties")
			if a || (hasP && !onlyForbids(p)) {
				n++
			}
		}
	}
	return n
}

// onlyForbids reports whether properties p only forbid names (each false):
// such a branch restricts the keys another branch allows without naming
// any, so additionalProperties elsewhere still merges exactly.
func onlyForbids(p any) bool {
	po, ok := p.(*object)
	if !ok {
		return false
	}
	for _, k := range po.keys {
		if po.vals[k] != false {
			return false
		}
	}
	return true
}

// joinProperty is the allOf of a property's schemas in two branches when
// it is exact without merging them: false with anything, or equal schemas.
func joinProperty(a, b any) (any, bool) {
	if a == false || b == false {
		return false, true
	}
	var x, y bytes.Buffer
	encodeCompact(&x, a)
	encodeCompact(&y, b)
	return a, x.String() == y.String()
}

func intersectKinds(a, b []string) []string {
	var out []string
	for _, x := range a {
		switch {
		case slices.Contains(b, x):
			out = append(out, x)
		case x == "number" && slices.Contains(b, "integer"), x == "integer" && slices.Contains(b, "number"):
			out = append(out, "integer")
		}
	}
	return out
}

// array is the grammar of o's arrays: prefixItems (or an items array, as
// in older drafts), then items (or additionalItems), within minItems and
// maxItems.
func (c *schemaCompiler) array(o *object, path string) (sym, error) {
	if u, ok := o.get("uniqueItems"); ok && u != false {
		return sym{}, unsupported(path, "uniqueItems")
	}
	lo, hi, err := bounds(o, "minItems", "maxItems", path)
	if err != nil {
		return sym{}, err
	}
	var prefix []any
	var rest any = true
	restKw := "items"
	if pi, ok := o.get("prefixItems"); ok {
		if prefix, ok = pi.([]any); !ok {
			return sym{}, &SchemaError{Path: path, Keyword: "prefixItems", Msg: "prefixItems must be an array"}
		}
		if it, ok := o.get("items"); ok {
			rest = it
		}
	} else if it, ok := o.get("items"); ok {
		if arr, isArr := it.([]any); isArr {
			prefix, restKw = arr, "additionalItems"
			if ai, ok := o.get("additionalItems"); ok {
				rest = ai
			}
		} else {
			rest = it
		}
	}
	// additionalItems without an items array is ignored (as every draft
	// that has it says).
	items := make([]sym, len(prefix))
	for i, p := range prefix {
		if items[i], err = c.compile(p, fmt.Sprintf("%s/prefixItems/%d", path, i)); err != nil {
			return sym{}, err
		}
	}
	var restSym *sym
	if rest != false {
		s, err := c.compile(rest, path+"/"+restKw)
		if err != nil {
			return sym{}, err
		}
		restSym = &s
	}
	if len(items) == 0 {
		if restSym == nil {
			hi = 0
		}
		if hi == 0 && lo > 0 {
			return sym{}, &SchemaError{Path: path, Keyword: "minItems", Msg: "minItems asks for items the schema forbids"}
		}
		var item []sym
		if restSym != nil {
			item = []sym{*restSym}
		}
		return c.list("[", ",", "]", item, lo, hi), nil
	}
	return c.tuple(items, restSym, lo, hi), nil
}

// tuple is an array whose first items follow items[i] in turn (any prefix
// of them may be present), then rest (nil: no more), lo to hi items.
func (c *schemaCompiler) tuple(items []sym, rest *sym, lo, hi int) sym {
	ws := c.ws()
	closeSyms := cat(ws, bytesOf("]"))
	more := func(x sym) []sym { return cat(ws, bytesOf(","), ws, []sym{x}) }
	n := len(items)
	// tail: what follows after i items.
	var tail sym
	for i := n; i >= 1; i-- {
		var alts [][]sym
		if i == n {
			if rest != nil {
				rhi := -1
				if hi >= 0 {
					rhi = hi - n
				}
				if rhi != -1 && rhi < 0 {
					alts = nil
				} else {
					alts = append(alts, cat(c.rep(more(*rest), max(lo-n, 0), rhi), closeSyms))
				}
			} else if i >= lo {
				alts = append(alts, closeSyms)
			}
		} else {
			if i >= lo {
				alts = append(alts, closeSyms)
			}
			if hi < 0 || i < hi {
				alts = append(alts, cat(more(items[i]), []sym{tail}))
			}
		}
		tail = c.rule(alts...)
	}
	var alts [][]sym
	if lo == 0 {
		alts = append(alts, cat(bytesOf("["), closeSyms))
	}
	if hi != 0 {
		alts = append(alts, cat(bytesOf("["), ws, []sym{items[0], tail}))
	}
	return c.rule(alts...)
}

// member is one object entry: a key's symbols, then its value.
type member struct {
	key      []sym
	val      sym
	required bool
}

// objectKind is the grammar of o's objects: its properties in the order
// written (required ones present, optional ones may be left out), then,
// unless additionalProperties is false, further keys that are none of the
// properties' names.
func (c *schemaCompiler) objectKind(o *object, path string) (sym, error) {
	props := &object{vals: map[string]any{}}
	if p, ok := o.get("properties"); ok {
		if props, ok = p.(*object); !ok {
			return sym{}, &SchemaError{Path: path, Keyword: "properties", Msg: "properties must be an object"}
		}
	}
	var required []string
	if r, ok := o.get("required"); ok {
		arr, isArr := r.([]any)
		if !isArr {
			return sym{}, &SchemaError{Path: path, Keyword: "required", Msg: "required must be an array of strings"}
		}
		for _, x := range arr {
			s, isStr := x.(string)
			if !isStr {
				return sym{}, &SchemaError{Path: path, Keyword: "required", Msg: "required must be an array of strings"}
			}
			if !slices.Contains(required, s) {
				required = append(required, s)
			}
		}
	}
	var addl any = true
	if a, ok := o.get("additionalProperties"); ok {
		addl = a
	}
	pattern, err := c.patternProperties(o, path)
	if err != nil {
		return sym{}, err
	}
	_, hasMinProps := o.get("minProperties")
	if len(props.keys) == 0 && len(required) == 0 && addl == true && !hasMinProps && pattern == nil {
		return c.anyObject(), nil
	}
	ws := c.ws()
	var members []member
	names := slices.Clone(props.keys)
	for _, name := range props.keys {
		if props.vals[name] == false { // the property may not appear
			if slices.Contains(required, name) {
				return sym{}, &SchemaError{Path: path, Keyword: "required", Msg: fmt.Sprintf("required property %q has the schema false: nothing matches", name)}
			}
			continue
		}
		v, err := c.compile(props.vals[name], path+"/properties/"+escapePointer(name))
		var se *SchemaError
		if errors.As(err, &se) && se.empty && !slices.Contains(required, name) {
			continue // no value matches: the property may only be left out
		}
		if err != nil {
			return sym{}, err
		}
		members = append(members, member{key: literal(name), val: v, required: slices.Contains(required, name)})
	}
	var addlSym *sym
	if addl != false && pattern == nil { // beside patternProperties, extra keys must match a pattern
		s, err := c.compile(addl, path+"/additionalProperties")
		if err != nil {
			return sym{}, err
		}
		addlSym = &s
	}
	for _, name := range required {
		if slices.Contains(names, name) {
			continue
		}
		if pattern != nil {
			return sym{}, &SchemaError{Path: path, Keyword: "required", Msg: fmt.Sprintf("required property %q outside properties beside patternProperties is not supported", name)}
		}
		if addlSym == nil {
			return sym{}, &SchemaError{Path: path, Keyword: "required", Msg: fmt.Sprintf("required property %q is not in properties and additionalProperties is false: nothing matches", name)}
		}
		names = append(names, name)
		members = append(members, member{key: literal(name), val: *addlSym, required: true})
	}
	kv := func(m member) []sym { return cat(m.key, ws, bytesOf(":"), ws, []sym{m.val}) }
	comma := cat(ws, bytesOf(","), ws)
	// after: members i.. when something was written already; first: when
	// nothing was.
	after, first := c.rule(nil), c.rule(nil)
	var extra []sym
	switch {
	case addlSym != nil:
		extra = kv(member{key: []sym{c.excludedKey(names)}, val: *addlSym})
	case pattern != nil:
		key, val, err := pattern.compile(c, names, path)
		if err != nil {
			return sym{}, err
		}
		extra = kv(member{key: []sym{key}, val: val})
	}
	if extra != nil {
		after = c.star(cat(comma, extra))
		first = c.opt(cat(extra, []sym{after}))
	}
	// first1: as first, but writing at least one member (minProperties 1).
	var first1 *sym
	if extra != nil {
		f := c.rule(cat(extra, []sym{after}))
		first1 = &f
	}
	for i := len(members) - 1; i >= 0; i-- {
		m := members[i]
		a := [][]sym{cat(comma, kv(m), []sym{after})}
		f := [][]sym{cat(kv(m), []sym{after})}
		f1 := [][]sym{f[0]}
		if !m.required {
			a = append(a, []sym{after})
			f = append(f, []sym{first})
			if first1 != nil {
				f1 = append(f1, []sym{*first1})
			}
		}
		r1 := c.rule(f1...)
		after, first, first1 = c.rule(a...), c.rule(f...), &r1
	}
	minProps, err := minProperties(o, path)
	if err != nil {
		return sym{}, err
	}
	if minProps == 1 {
		if first1 == nil {
			return sym{}, &SchemaError{Path: path, Keyword: "minProperties", Msg: "minProperties 1 with no property allowed: nothing matches", empty: true}
		}
		first = *first1
	}
	return c.rule(cat(bytesOf("{"), ws, []sym{first}, ws, bytesOf("}"))), nil
}

// minProperties reads o's minProperties: 0 or 1 (more is refused).
func minProperties(o *object, path string) (int, error) {
	lo, _, err := bounds(o, "minProperties", "", path)
	if err != nil {
		return 0, err
	}
	if lo > 1 {
		return 0, &SchemaError{Path: path, Keyword: "minProperties", Msg: fmt.Sprintf("minProperties %d is not supported (only 0 and 1 are)", lo)}
	}
	return lo, nil
}

func literal(s string) []sym {
	var buf bytes.Buffer
	encodeString(&buf, s)
	return bytesOf(buf.String())
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// literalPattern returns, as a JSON string, the one string o's pattern
// matches when it is a literal anchored at both ends ("^ecu$").
func literalPattern(o *object) (string, bool) {
	p, _ := o.vals["pattern"].(string)
	if len(p) < 2 || p[0] != '^' || p[len(p)-1] != '$' || strings.ContainsAny(p[1:len(p)-1], `\.^$|?*+()[]{}`) {
		return "", false
	}
	var buf bytes.Buffer
	encodeString(&buf, p[1:len(p)-1])
	return buf.String(), true
}
