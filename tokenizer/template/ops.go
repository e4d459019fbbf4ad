package template

import (
	"fmt"
	"math"
	"strings"
)

var dictMethods = map[string]bool{
	"items": true, "keys": true, "values": true, "get": true, "copy": true,
	// present on dict but refused by the sandbox when called
	"pop": true, "popitem": true, "setdefault": true, "update": true, "clear": true, "fromkeys": true,
}

var listMethods = map[string]bool{
	"index": true, "count": true, "copy": true,
	"append": true, "extend": true, "insert": true, "pop": true, "remove": true, "reverse": true, "sort": true, "clear": true,
}

var strMethods = map[string]bool{
	"strip": true, "lstrip": true, "rstrip": true, "split": true, "rsplit": true, "splitlines": true,
	"startswith": true, "endswith": true, "replace": true, "upper": true, "lower": true, "title": true,
	"capitalize": true, "swapcase": true, "casefold": true, "find": true, "rfind": true, "index": true,
	"rindex": true, "count": true, "join": true, "format": true, "isdigit": true, "isdecimal": true,
	"isnumeric": true, "isalpha": true, "isalnum": true, "isspace": true, "isupper": true, "islower": true,
	"istitle": true, "center": true, "ljust": true, "rjust": true, "zfill": true, "partition": true,
	"rpartition": true, "removeprefix": true, "removesuffix": true, "expandtabs": true, "encode": true,
}

// getAttr is Jinja's obj.name: a Python attribute first (methods), then the
// item obj["name"].
func getAttr(x any, name string) (any, error) {
	switch o := x.(type) {
	case undefined:
		return nil, o.err()
	case *Map:
		if dictMethods[name] {
			return &boundMethod{recv: o, name: name}, nil
		}
		if v, ok := o.Get(name); ok {
			return v, nil
		}
		return undefined{hint: fmt.Sprintf("'dict object' has no attribute '%s'", name)}, nil
	case string, markup:
		if strMethods[name] {
			return &boundMethod{recv: o, name: name}, nil
		}
	case []any:
		if listMethods[name] {
			return &boundMethod{recv: o, name: name}, nil
		}
	case tuple:
		if name == "index" || name == "count" {
			return &boundMethod{recv: o, name: name}, nil
		}
	case *namespace:
		if v, ok := o.attrs.Get(name); ok {
			return v, nil
		}
	case *loopObj:
		return o.attr(name), nil
	case *macro:
		switch name {
		case "name":
			return o.def.name, nil
		case "arguments":
			t := make(tuple, len(o.def.params))
			for i, p := range o.def.params {
				t[i] = p
			}
			return t, nil
		}
	case float64:
		if name == "real" {
			return o, nil
		}
		if name == "is_integer" {
			return &boundMethod{recv: o, name: name}, nil
		}
	case int:
		if name == "real" || name == "numerator" {
			return o, nil
		}
	}
	return undefined{hint: fmt.Sprintf("'%s object' has no attribute '%s'", typeName(x), name)}, nil
}

func (l *loopObj) attr(name string) any {
	n := len(l.items)
	switch name {
	case "index":
		return l.index0 + 1
	case "index0":
		return l.index0
	case "revindex":
		return n - l.index0
	case "revindex0":
		return n - l.index0 - 1
	case "first":
		return l.index0 == 0
	case "last":
		return l.index0 == n-1
	case "length":
		return n
	case "depth":
		return l.depth0 + 1
	case "depth0":
		return l.depth0
	case "previtem":
		if l.index0 == 0 {
			return undefined{hint: "there is no previous item"}
		}
		return l.items[l.index0-1]
	case "nextitem":
		if l.index0 >= n-1 {
			return undefined{hint: "there is no next item"}
		}
		return l.items[l.index0+1]
	case "cycle", "changed":
		return &boundMethod{recv: l, name: name}
	}
	return undefined{hint: fmt.Sprintf("'LoopContext object' has no attribute '%s'", name)}
}

// getItem is Jinja's obj[key]: the item first, then for string keys the
// attribute.
func getItem(x any, key any) (any, error) {
	x, key = unmark(x), unmark(key)
	switch o := x.(type) {
	case undefined:
		return nil, o.err()
	case *Map:
		if ks, ok := key.(string); ok {
			if v, ok := o.Get(ks); ok {
				return v, nil
			}
			if dictMethods[ks] {
				return &boundMethod{recv: o, name: ks}, nil
			}
			return undefined{hint: fmt.Sprintf("'dict object' has no attribute '%s'", ks)}, nil
		}
		return undefined{hint: fmt.Sprintf("'dict object' has no attribute %s", pyRepr(key))}, nil
	case []any, tuple:
		l, _ := listLike(o)
		if i, ok := intVal(key); ok {
			if i < 0 {
				i += len(l)
			}
			if i < 0 || i >= len(l) {
				return undefined{hint: fmt.Sprintf("'%s object' has no element %d", typeName(x), i)}, nil
			}
			return l[i], nil
		}
	case string:
		if i, ok := intVal(key); ok {
			n := runeLen(o)
			if i < 0 {
				i += n
			}
			if i < 0 || i >= n {
				return undefined{hint: fmt.Sprintf("'str object' has no element %d", i)}, nil
			}
			if len(o) == n {
				return o[i : i+1], nil
			}
			return string([]rune(o)[i]), nil
		}
	}
	if ks, ok := key.(string); ok {
		return getAttr(x, ks)
	}
	return undefined{hint: fmt.Sprintf("'%s object' has no element %s", typeName(x), pyRepr(key))}, nil
}

func sliceArg(v any) (int, bool, error) {
	if v == nil {
		return 0, false, nil
	}
	if i, ok := intVal(v); ok {
		return i, true, nil
	}
	return 0, false, typeErr("slice indices must be integers or None")
}

// sliceIndices is Python's slice.indices(n).
func sliceIndices(n int, start, stop, step any) (int, int, int, error) {
	st, hasStep, err := sliceArg(step)
	if err != nil {
		return 0, 0, 0, err
	}
	if !hasStep {
		st = 1
	}
	if st == 0 {
		return 0, 0, 0, valueErr("slice step cannot be zero")
	}
	b, hasB, err := sliceArg(start)
	if err != nil {
		return 0, 0, 0, err
	}
	e, hasE, err := sliceArg(stop)
	if err != nil {
		return 0, 0, 0, err
	}
	clamp := func(i, lo, hi int) int {
		if i < lo {
			return lo
		}
		if i > hi {
			return hi
		}
		return i
	}
	if st > 0 {
		if !hasB {
			b = 0
		} else if b < 0 {
			b = clamp(b+n, 0, n)
		} else {
			b = clamp(b, 0, n)
		}
		if !hasE {
			e = n
		} else if e < 0 {
			e = clamp(e+n, 0, n)
		} else {
			e = clamp(e, 0, n)
		}
	} else {
		if !hasB {
			b = n - 1
		} else if b < 0 {
			b = clamp(b+n, -1, n-1)
		} else {
			b = clamp(b, -1, n-1)
		}
		if !hasE {
			e = -1
		} else if e < 0 {
			e = clamp(e+n, -1, n-1)
		} else {
			e = clamp(e, -1, n-1)
		}
	}
	return b, e, st, nil
}

func sliceList(l []any, start, stop, step any) ([]any, error) {
	b, e, s, err := sliceIndices(len(l), start, stop, step)
	if err != nil {
		return nil, err
	}
	if s == 1 {
		if e <= b {
			return []any{}, nil
		}
		return append([]any(nil), l[b:e]...), nil
	}
	out := []any{}
	if s > 0 {
		for i := b; i < e; i += s {
			out = append(out, l[i])
		}
	} else {
		for i := b; i > e; i += s {
			out = append(out, l[i])
		}
	}
	return out, nil
}

func (st *state) evalSlice(n *sliceExpr, sc *scope) (any, error) {
	x, err := st.eval(n.x, sc)
	if err != nil {
		return nil, err
	}
	var parts [3]any
	for i, e := range []expr{n.start, n.stop, n.step} {
		if e == nil {
			continue
		}
		parts[i], err = st.eval(e, sc)
		if err != nil {
			return nil, err
		}
	}
	if l, err := pyLen(x); err == nil {
		if err := st.work(l >> 6); err != nil {
			return nil, err
		}
	}
	switch o := unmark(x).(type) {
	case undefined:
		return nil, o.err()
	case []any:
		return sliceList(o, parts[0], parts[1], parts[2])
	case tuple:
		l, err := sliceList(o, parts[0], parts[1], parts[2])
		return tuple(l), err
	case string:
		rs := []rune(o)
		b, e, s, err := sliceIndices(len(rs), parts[0], parts[1], parts[2])
		if err != nil {
			return nil, err
		}
		if s == 1 {
			if e <= b {
				return "", nil
			}
			return string(rs[b:e]), nil
		}
		var out []rune
		if s > 0 {
			for i := b; i < e; i += s {
				out = append(out, rs[i])
			}
		} else {
			for i := b; i > e; i += s {
				out = append(out, rs[i])
			}
		}
		return string(out), nil
	}
	return undefined{hint: fmt.Sprintf("'%s' object is not subscriptable", typeName(x))}, nil
}

func unaryOp(op string, x any) (any, error) {
	if op == "not" {
		return !truthy(x), nil
	}
	if u, ok := x.(undefined); ok {
		return nil, u.err()
	}
	if i, ok := intVal(x); ok {
		if op == "-" {
			if i == math.MinInt {
				return nil, valueErr("integer overflow")
			}
			return -i, nil
		}
		return i, nil
	}
	if f, ok := x.(float64); ok {
		if op == "-" {
			return -f, nil
		}
		return f, nil
	}
	return nil, typeErr("bad operand type for unary %s: '%s'", op, typeName(x))
}

func (st *state) binaryOp(op string, l, r any) (any, error) {
	if op == "~" {
		ls, err := st.str(l)
		if err != nil {
			return nil, err
		}
		rs, err := st.str(r)
		if err != nil {
			return nil, err
		}
		if err := st.checkSize(len(ls) + len(rs)); err != nil {
			return nil, err
		}
		return ls + rs, nil
	}
	if u, ok := l.(undefined); ok {
		return nil, u.err()
	}
	if u, ok := r.(undefined); ok {
		return nil, u.err()
	}
	lm, lIsM := l.(markup)
	rm, rIsM := r.(markup)
	if lIsM || rIsM {
		switch op {
		case "+":
			_, lStr := unmark(l).(string)
			_, rStr := unmark(r).(string)
			if lStr && rStr {
				s := string(escapeToMarkup(l)) + string(escapeToMarkup(r))
				return markup(s), st.checkSize(len(s))
			}
		case "*", "%":
			v, err := st.binaryOp(op, unmark(l), unmark(r))
			if s, ok := v.(string); ok && err == nil && (lIsM || op == "*") {
				return markup(s), nil
			}
			return v, err
		}
		_, _ = lm, rm
	}
	li, lInt := intVal(l)
	ri, rInt := intVal(r)
	if lInt && rInt {
		return intOp(op, li, ri)
	}
	lf, lNum := numVal(l)
	rf, rNum := numVal(r)
	if lNum && rNum {
		return floatOp(op, lf, rf)
	}
	switch op {
	case "+":
		switch a := l.(type) {
		case string:
			if b, ok := r.(string); ok {
				if err := st.checkSize(len(a) + len(b)); err != nil {
					return nil, err
				}
				return a + b, nil
			}
			return nil, typeErr("can only concatenate str (not \"%s\") to str", typeName(r))
		case []any:
			if b, ok := r.([]any); ok {
				if err := st.checkSize(len(a) + len(b)); err != nil {
					return nil, err
				}
				out := make([]any, 0, len(a)+len(b))
				return append(append(out, a...), b...), nil
			}
			return nil, typeErr("can only concatenate list (not \"%s\") to list", typeName(r))
		case tuple:
			if b, ok := r.(tuple); ok {
				if err := st.checkSize(len(a) + len(b)); err != nil {
					return nil, err
				}
				out := make(tuple, 0, len(a)+len(b))
				return append(append(out, a...), b...), nil
			}
			return nil, typeErr("can only concatenate tuple (not \"%s\") to tuple", typeName(r))
		}
	case "*":
		if rInt {
			if v, ok, err := st.repeat(l, ri); ok {
				return v, err
			}
		}
		if lInt {
			if v, ok, err := st.repeat(r, li); ok {
				return v, err
			}
		}
	case "%":
		if s, ok := l.(string); ok {
			return st.percentFormat(s, r)
		}
	}
	return nil, typeErr("unsupported operand type(s) for %s: '%s' and '%s'", op, typeName(l), typeName(r))
}

func (st *state) repeat(v any, n int) (any, bool, error) {
	if n < 0 {
		n = 0
	}
	switch x := v.(type) {
	case string:
		if len(x) > 0 && n > st.limits.MaxOutput/len(x) {
			return nil, true, st.checkSize(-1)
		}
		return strings.Repeat(x, n), true, nil
	case []any:
		if len(x) > 0 && n > st.limits.MaxOutput/len(x) {
			return nil, true, st.checkSize(-1)
		}
		out := make([]any, 0, len(x)*n)
		for i := 0; i < n; i++ {
			out = append(out, x...)
		}
		return out, true, nil
	case tuple:
		if len(x) > 0 && n > st.limits.MaxOutput/len(x) {
			return nil, true, st.checkSize(-1)
		}
		out := make(tuple, 0, len(x)*n)
		for i := 0; i < n; i++ {
			out = append(out, x...)
		}
		return out, true, nil
	}
	return nil, false, nil
}

func intOp(op string, a, b int) (any, error) {
	overflow := func() (any, error) { return nil, valueErr("integer overflow in %d %s %d", a, op, b) }
	switch op {
	case "+":
		c := a + b
		if (c > a) != (b > 0) {
			return overflow()
		}
		return c, nil
	case "-":
		c := a - b
		if (c < a) != (b > 0) {
			return overflow()
		}
		return c, nil
	case "*":
		if a == 0 || b == 0 {
			return 0, nil
		}
		c := a * b
		if c/b != a || (a == -1 && b == math.MinInt) || (b == -1 && a == math.MinInt) {
			return overflow()
		}
		return c, nil
	case "/":
		if b == 0 {
			return nil, &Error{Kind: "ZeroDivisionError", Msg: "division by zero"}
		}
		return float64(a) / float64(b), nil
	case "//":
		if b == 0 {
			return nil, &Error{Kind: "ZeroDivisionError", Msg: "integer division or modulo by zero"}
		}
		if a == math.MinInt && b == -1 {
			return overflow()
		}
		q := a / b
		if (a%b != 0) && ((a < 0) != (b < 0)) {
			q--
		}
		return q, nil
	case "%":
		if b == 0 {
			return nil, &Error{Kind: "ZeroDivisionError", Msg: "integer division or modulo by zero"}
		}
		if b == -1 {
			return 0, nil
		}
		m := a % b
		if m != 0 && ((m < 0) != (b < 0)) {
			m += b
		}
		return m, nil
	case "**":
		if b < 0 {
			return math.Pow(float64(a), float64(b)), nil
		}
		result := 1
		base := a
		for e := b; e > 0; e >>= 1 {
			if e&1 == 1 {
				r, err := intOp("*", result, base)
				if err != nil {
					return overflow()
				}
				result = r.(int)
			}
			if e > 1 {
				r, err := intOp("*", base, base)
				if err != nil {
					return overflow()
				}
				base = r.(int)
			}
		}
		return result, nil
	}
	return nil, typeErr("unsupported operator %s", op)
}

func floatOp(op string, a, b float64) (any, error) {
	switch op {
	case "+":
		return a + b, nil
	case "-":
		return a - b, nil
	case "*":
		return a * b, nil
	case "/":
		if b == 0 {
			return nil, &Error{Kind: "ZeroDivisionError", Msg: "float division by zero"}
		}
		return a / b, nil
	case "//":
		if b == 0 {
			return nil, &Error{Kind: "ZeroDivisionError", Msg: "float floor division by zero"}
		}
		return math.Floor(a / b), nil
	case "%":
		if b == 0 {
			return nil, &Error{Kind: "ZeroDivisionError", Msg: "float modulo"}
		}
		m := math.Mod(a, b)
		if m != 0 && ((m < 0) != (b < 0)) {
			m += b
		}
		return m, nil
	case "**":
		if a == 0 && b < 0 {
			return nil, &Error{Kind: "ZeroDivisionError", Msg: "0.0 cannot be raised to a negative power"}
		}
		return math.Pow(a, b), nil
	}
	return nil, typeErr("unsupported operator %s", op)
}

func compareOp(op string, l, r any) (bool, error) {
	switch op {
	case "==":
		return pyEqual(l, r), nil
	case "!=":
		return !pyEqual(l, r), nil
	case "in":
		return pyContains(r, l)
	case "notin":
		ok, err := pyContains(r, l)
		return !ok, err
	}
	c, err := pyCompare(l, r)
	if err != nil {
		if te, ok := err.(*Error); ok && te.Kind == "TypeError" {
			te.Msg = strings.Replace(te.Msg, "'<'", "'"+op+"'", 1)
		}
		return false, err
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	case ">=":
		return c >= 0, nil
	}
	return false, typeErr("unknown comparison %s", op)
}

// pyContains is Python's "item in container".
func pyContains(container, item any) (bool, error) {
	container, item = unmark(container), unmark(item)
	switch c := container.(type) {
	case string:
		s, ok := item.(string)
		if !ok {
			if u, ok := item.(undefined); ok {
				return false, u.err()
			}
			return false, typeErr("'in <string>' requires string as left operand, not %s", typeName(item))
		}
		return strings.Contains(c, s), nil
	case []any:
		for _, it := range c {
			if pyEqual(it, item) {
				return true, nil
			}
		}
		return false, nil
	case tuple:
		for _, it := range c {
			if pyEqual(it, item) {
				return true, nil
			}
		}
		return false, nil
	case *Map:
		if s, ok := item.(string); ok {
			_, found := c.Get(s)
			return found, nil
		}
		return false, nil
	case undefined:
		return false, nil
	case *namespace:
		return false, typeErr("argument of type 'Namespace' is not iterable")
	}
	return false, typeErr("argument of type '%s' is not iterable", typeName(container))
}
