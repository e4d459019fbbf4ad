package template

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Values inside the interpreter are one of:
//
//	nil (None), bool, int, float64, string, []any (list), tuple, *Map (dict),
//	undefined, *namespace, *loopObj, *macro, *builtin, *boundMethod.

// tuple is a Python tuple: like a list, but printed with parentheses.
type tuple []any

// undefined is Jinja's Undefined: prints as "", is falsy, iterates empty,
// and raises an UndefinedError on most other uses.
type undefined struct{ hint string }

func (u undefined) err() error {
	h := u.hint
	if h == "" {
		h = "value is undefined"
	}
	return &Error{Kind: "UndefinedError", Msg: h}
}

// namespace is the object returned by namespace(): its attributes can be
// assigned with {% set ns.attr = value %} from any scope.
type namespace struct{ attrs *Map }

// builtin is a global function (range, namespace, raise_exception, ...).
type builtin struct {
	name string
	fn   func(st *state, args []any, kw *Map) (any, error)
}

// boundMethod is a Python method looked up on a value (s.strip, d.items).
type boundMethod struct {
	recv any
	name string
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case markup:
		return "Markup"
	case []any:
		return "list"
	case tuple:
		return "tuple"
	case *Map:
		return "dict"
	case undefined:
		return "Undefined"
	case *namespace:
		return "Namespace"
	case *loopObj:
		return "LoopContext"
	case *macro:
		return "Macro"
	case *builtin, *boundMethod:
		return "builtin_function_or_method"
	}
	return fmt.Sprintf("%T", v)
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case markup:
		return x != ""
	case []any:
		return len(x) > 0
	case tuple:
		return len(x) > 0
	case *Map:
		return x.Len() > 0
	case undefined:
		return false
	}
	return true
}

// pyFloatRepr formats f the way Python's repr(float) does.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	neg := false
	if s[0] == '-' {
		neg = true
		s = s[1:]
	}
	epos := strings.IndexByte(s, 'e')
	mant, expS := s[:epos], s[epos+1:]
	exp, _ := strconv.Atoi(expS)
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	if exp >= -4 && exp < 16 {
		// positional notation
		if exp >= 0 {
			if len(digits) <= exp+1 {
				out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
			} else {
				out = digits[:exp+1] + "." + digits[exp+1:]
			}
		} else {
			out = "0." + strings.Repeat("0", -exp-1) + digits
		}
	} else {
		out = sci(digits, exp)
	}
	if neg {
		return "-" + out
	}
	return out
}

func sci(digits string, exp int) string {
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	sign := "+"
	if exp < 0 {
		sign = "-"
		exp = -exp
	}
	e := strconv.Itoa(exp)
	if len(e) < 2 {
		e = "0" + e
	}
	return m + "e" + sign + e
}

// pyStr is Python's str(v).
func pyStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case markup:
		return string(x)
	case undefined:
		return ""
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		return pyFloatRepr(x)
	}
	var sb strings.Builder
	writeRepr(&sb, v, 0)
	return sb.String()
}

// pyRepr is Python's repr(v).
func pyRepr(v any) string {
	var sb strings.Builder
	writeRepr(&sb, v, 0)
	return sb.String()
}

// maxReprLen caps pyStr/pyRepr of containers outside an execution's own
// limits (the state's str method applies those).
const maxReprLen = 1 << 26

func writeRepr(sb *strings.Builder, v any, depth int) {
	writeReprLimit(sb, v, depth, maxReprLen)
}

func writeReprLimit(sb *strings.Builder, v any, depth, limit int) {
	if depth > 100 {
		sb.WriteString("...")
		return
	}
	if sb.Len() > limit {
		return
	}
	writeRepr := func(sb *strings.Builder, v any, depth int) { writeReprLimit(sb, v, depth, limit) }
	switch x := v.(type) {
	case string:
		writeStrRepr(sb, x)
	case markup:
		sb.WriteString("Markup(")
		writeStrRepr(sb, string(x))
		sb.WriteString(")")
	case []any:
		sb.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, it, depth+1)
		}
		sb.WriteByte(']')
	case tuple:
		sb.WriteByte('(')
		for i, it := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, it, depth+1)
		}
		if len(x) == 1 {
			sb.WriteByte(',')
		}
		sb.WriteByte(')')
	case *Map:
		sb.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeStrRepr(sb, k)
			sb.WriteString(": ")
			writeRepr(sb, x.vals[i], depth+1)
		}
		sb.WriteByte('}')
	case undefined:
		sb.WriteString("Undefined")
	case *namespace:
		sb.WriteString("<Namespace ")
		writeRepr(sb, x.attrs, depth+1)
		sb.WriteString(">")
	case *loopObj:
		fmt.Fprintf(sb, "<LoopContext %d/%d>", x.index0+1, len(x.items))
	case *macro:
		fmt.Fprintf(sb, "<Macro '%s'>", x.name)
	case *builtin:
		fmt.Fprintf(sb, "<built-in function %s>", x.name)
	case *boundMethod:
		fmt.Fprintf(sb, "<built-in method %s of %s object>", x.name, typeName(x.recv))
	default:
		sb.WriteString(pyStr(v))
	}
}

func writeStrRepr(sb *strings.Builder, s string) {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	sb.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(sb, `\x%02x`, r)
		case r < 0x7f:
			sb.WriteRune(r)
		case isPyPrintable(r):
			sb.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(sb, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(sb, `\u%04x`, r)
		default:
			fmt.Fprintf(sb, `\U%08x`, r)
		}
	}
	sb.WriteByte(q)
}

func isPyPrintable(r rune) bool {
	if r == ' ' {
		return true
	}
	if unicode.Is(unicode.Zs, r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.C) {
		return false
	}
	return unicode.IsPrint(r) || unicode.IsGraphic(r)
}

// pyIsSpace matches Python's str.isspace for one character.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyLStrip(s string) string { return strings.TrimLeftFunc(s, pyIsSpace) }
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }
func runeLen(s string) int     { return utf8.RuneCountInString(s) }
func sortStrings(s []string)   { sort.Strings(s) }
func isNumber(v any) bool      { _, ok := numVal(v); return ok }
func isUndefined(v any) bool   { _, ok := v.(undefined); return ok }

// numVal returns v as a float64 when it is a Python number (bool included).
func numVal(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// intVal returns v as an int when it is a Python int (bool included).
func intVal(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func listLike(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case tuple:
		return x, true
	}
	return nil, false
}

// pyEqual is Python ==.
func pyEqual(a, b any) bool {
	return pyEqualDepth(a, b, 0)
}

func pyEqualDepth(a, b any, depth int) bool {
	if depth > 200 {
		return false
	}
	a, b = unmark(a), unmark(b)
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool, int, float64:
		xf, _ := numVal(a)
		switch y := b.(type) {
		case int:
			if xi, ok := intVal(a); ok {
				return xi == y
			}
			return xf == float64(y)
		case bool, float64:
			yf, _ := numVal(y)
			if xi, ok := intVal(a); ok {
				if yi, ok := intVal(b); ok {
					return xi == yi
				}
			}
			return xf == yf
		}
		return false
	case []any:
		y, ok := b.([]any)
		return ok && (sameBacking(x, y) || listEqual(x, y, depth))
	case tuple:
		y, ok := b.(tuple)
		return ok && (sameBacking(x, y) || listEqual(x, y, depth))
	case *Map:
		y, ok := b.(*Map)
		if !ok || x.Len() != y.Len() {
			return false
		}
		if x == y {
			return true
		}
		for i, k := range x.keys {
			yv, ok := y.Get(k)
			if !ok || !pyEqualDepth(x.vals[i], yv, depth+1) {
				return false
			}
		}
		return true
	case undefined:
		_, ok := b.(undefined)
		return ok
	case *boundMethod:
		y, ok := b.(*boundMethod)
		return ok && x.name == y.name && identical(x.recv, y.recv)
	}
	return identical(a, b)
}

func identical(a, b any) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if ta != nil && ta.Comparable() {
		return a == b
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.Slice {
		return va.Len() == vb.Len() && (va.Len() == 0 || va.Pointer() == vb.Pointer())
	}
	return false
}

// sameBacking reports whether two lists are the same object, which Python
// treats as equal without looking at the items.
func sameBacking(x, y []any) bool {
	return len(x) == len(y) && len(x) > 0 && &x[0] == &y[0]
}

func listEqual(x, y []any, depth int) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !pyEqualDepth(x[i], y[i], depth+1) {
			return false
		}
	}
	return true
}

// pyCompare orders a and b as Python's < does; it fails for unorderable
// types.
func pyCompare(a, b any) (int, error) {
	a, b = unmark(a), unmark(b)
	if isUndefined(a) {
		return 0, a.(undefined).err()
	}
	if isUndefined(b) {
		return 0, b.(undefined).err()
	}
	if af, ok := numVal(a); ok {
		if bf, ok := numVal(b); ok {
			ai, aInt := intVal(a)
			bi, bInt := intVal(b)
			if aInt && bInt {
				return cmpInt(ai, bi), nil
			}
			switch {
			case af < bf:
				return -1, nil
			case af > bf:
				return 1, nil
			}
			return 0, nil
		}
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), nil
		}
	case []any:
		if y, ok := b.([]any); ok {
			return compareLists(x, y)
		}
	case tuple:
		if y, ok := b.(tuple); ok {
			return compareLists(x, y)
		}
	}
	return 0, typeErr("'<' not supported between instances of '%s' and '%s'", typeName(a), typeName(b))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareLists(x, y []any) (int, error) {
	for i := 0; i < len(x) && i < len(y); i++ {
		if pyEqual(x[i], y[i]) {
			continue
		}
		return pyCompare(x[i], y[i])
	}
	return cmpInt(len(x), len(y)), nil
}

// normalize converts caller-supplied Go values to interpreter values. It
// returns v itself (no allocation) when v is already normalized.
func normalize(v any, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("template: value nesting too deep")
	}
	switch x := v.(type) {
	case nil, bool, int, float64, string, markup, undefined, *namespace, *macro, *builtin:
		return v, nil
	case []any:
		var out []any
		for i, it := range x {
			n, err := normalize(it, depth+1)
			if err != nil {
				return nil, err
			}
			if out == nil && !sameValue(n, it) {
				out = make([]any, len(x))
				copy(out, x[:i])
			}
			if out != nil {
				out[i] = n
			}
		}
		if out != nil {
			return out, nil
		}
		if x == nil {
			return []any{}, nil
		}
		return x, nil
	case tuple:
		l, err := normalize([]any(x), depth)
		if err != nil {
			return nil, err
		}
		return tuple(l.([]any)), nil
	case *Map:
		if x == nil {
			return nil, nil
		}
		var out *Map
		for i, it := range x.vals {
			n, err := normalize(it, depth+1)
			if err != nil {
				return nil, err
			}
			if out == nil && !sameValue(n, it) {
				out = x.clone()
			}
			if out != nil {
				out.vals[i] = n
			}
		}
		if out != nil {
			return out, nil
		}
		return x, nil
	case int8:
		return int(x), nil
	case int16:
		return int(x), nil
	case int32:
		return int(x), nil
	case int64:
		return int(x), nil
	case uint8:
		return int(x), nil
	case uint16:
		return int(x), nil
	case uint32:
		return int(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return float64(x), nil
		}
		return int(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return float64(x), nil
		}
		return int(x), nil
	case float32:
		return float64(x), nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := NewMap()
		for _, k := range keys {
			n, err := normalize(x[k], depth+1)
			if err != nil {
				return nil, err
			}
			m.Set(k, n)
		}
		return m, nil
	case []map[string]any:
		out := make([]any, len(x))
		for i, it := range x {
			n, err := normalize(it, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case []*Map:
		out := make([]any, len(x))
		for i, it := range x {
			n, err := normalize(it, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := NewMap()
		for _, k := range keys {
			m.Set(k, x[k])
		}
		return m, nil
	}
	return nil, fmt.Errorf("template: unsupported value type %T", v)
}

// sameValue reports whether normalize left a value untouched.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		return ok && len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0])
	case tuple:
		y, ok := b.(tuple)
		return ok && len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0])
	case *Map:
		y, ok := b.(*Map)
		return ok && x == y
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if ta == nil || ta.Comparable() {
		return a == b
	}
	return false
}
