package grammar

import (
	"fmt"
	"slices"
)

// notRewrite compiles o's "not" in the forms that are the complement of
// something the compiler expresses: not {type: ...} (the other kinds) and
// not {required: [p]} (p absent, an object property false). It returns o
// with "not" folded into its other keywords; other forms are refused.
func notRewrite(o *object, path string) (*object, error) {
	v, ok := o.get("not")
	if !ok {
		return o, nil
	}
	n, isObj := v.(*object)
	if !isObj {
		return nil, unsupported(path, "not")
	}
	switch rest := constraints(n); {
	case len(rest) == 1 && rest[0] == "type":
		return notType(o, n, path)
	case len(rest) == 1 && rest[0] == "required":
		r, _ := n.vals["required"].([]any)
		if name, isStr := firstString(r); isStr && len(r) == 1 {
			return forbidProperty(without(o, "not"), name), nil
		}
	}
	return nil, unsupported(path, "not")
}

func firstString(a []any) (string, bool) {
	if len(a) == 0 {
		return "", false
	}
	s, ok := a[0].(string)
	return s, ok
}

// notType narrows o's kinds to those the "not" schema n's type excludes.
func notType(o, n *object, path string) (*object, error) {
	kinds, err := typeKinds(o, path)
	if err != nil {
		return nil, err
	}
	excl, err := typeKinds(n, path+"/not")
	if err != nil {
		return nil, err
	}
	var keep []any
	for _, k := range kinds {
		switch {
		case slices.Contains(excl, k), k == "integer" && slices.Contains(excl, "number"):
		case k == "number" && slices.Contains(excl, "integer"):
			return nil, &SchemaError{Path: path, Keyword: "not", Msg: "not integer beside number is not supported"}
		default:
			keep = append(keep, k)
		}
	}
	if len(keep) == 0 {
		return nil, &SchemaError{Path: path, Keyword: "not", Msg: fmt.Sprintf("not excludes every type %v allows: nothing matches", kinds), empty: true}
	}
	r := without(o, "not")
	if _, has := r.vals["type"]; !has {
		r.keys = append(r.keys, "type")
	}
	r.vals["type"] = keep
	return r, nil
}

// forbidProperty returns o with property name set to false.
func forbidProperty(o *object, name string) *object {
	props := &object{vals: map[string]any{}}
	if p, ok := o.vals["properties"].(*object); ok {
		props.keys = slices.Clone(p.keys)
		for k, v := range p.vals {
			props.vals[k] = v
		}
	}
	if _, has := props.vals[name]; !has {
		props.keys = append(props.keys, name)
	}
	props.vals[name] = false
	if _, has := o.vals["properties"]; !has {
		o.keys = append(o.keys, "properties")
	}
	o.vals["properties"] = props
	return o
}
