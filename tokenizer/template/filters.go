package template

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// markup is markupsafe.Markup, produced by the safe and escape filters. It
// is a string that escapes plain strings concatenated to it with "+" — a
// quirk some templates depend on byte for byte.
type markup string

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&#39;", "\"", "&#34;")

func htmlEscape(s string) string { return htmlEscaper.Replace(s) }

// unmark turns a markup value into a plain string; other values pass.
func unmark(v any) any {
	if m, ok := v.(markup); ok {
		return string(m)
	}
	return v
}

// escapeToMarkup is markupsafe.escape.
func escapeToMarkup(v any) markup {
	if m, ok := v.(markup); ok {
		return m
	}
	return markup(htmlEscape(pyStr(v)))
}

type filterFunc func(st *state, v any, args []any, kw *Map) (any, error)

var filters map[string]filterFunc

// filters that keep a markup input as markup (they call str methods on it).
var markupKeeping = map[string]bool{
	"trim": true, "upper": true, "lower": true, "capitalize": true, "string": true, "center": true,
}

func (st *state) applyFilter(name string, v any, args []any, kw *Map) (any, error) {
	f, ok := filters[name]
	if !ok {
		return nil, &Error{Kind: "TemplateAssertionError", Msg: "no filter named '" + name + "'"}
	}
	if m, isMarkup := v.(markup); isMarkup {
		switch {
		case name == "safe" || name == "escape" || name == "e" || name == "forceescape":
			return m, nil
		case markupKeeping[name]:
			r, err := f(st, string(m), args, kw)
			if s, ok := r.(string); ok && err == nil {
				return markup(s), nil
			}
			return r, err
		}
		v = string(m)
	}
	for i, a := range args {
		args[i] = unmark(a)
	}
	return f(st, v, args, kw)
}

func init() {
	filters = map[string]filterFunc{
		"abs":   fAbs,
		"attr":  fAttr,
		"batch": fBatch,
		"capitalize": func(st *state, v any, a []any, kw *Map) (any, error) {
			s, err := st.str(v)
			return pyCapitalize(s), err
		},
		"center":      fCenter,
		"count":       fLength,
		"d":           fDefault,
		"default":     fDefault,
		"dictsort":    fDictsort,
		"e":           fEscape,
		"escape":      fEscape,
		"forceescape": fEscape,
		"first":       fFirst,
		"float":       fFloat,
		"format":      fFormat,
		"indent":      fIndent,
		"int":         fInt,
		"items":       fItems,
		"join":        fJoin,
		"last":        fLast,
		"length":      fLength,
		"list":        fList,
		"lower": func(st *state, v any, a []any, kw *Map) (any, error) {
			s, err := st.str(v)
			return strings.ToLower(s), err
		},
		"map":        fMap,
		"max":        func(st *state, v any, a []any, kw *Map) (any, error) { return fMinMax(st, v, a, kw, 1) },
		"min":        func(st *state, v any, a []any, kw *Map) (any, error) { return fMinMax(st, v, a, kw, -1) },
		"pprint":     func(st *state, v any, a []any, kw *Map) (any, error) { return st.repr(v) },
		"reject":     func(st *state, v any, a []any, kw *Map) (any, error) { return fSelect(st, v, a, kw, false, false) },
		"rejectattr": func(st *state, v any, a []any, kw *Map) (any, error) { return fSelect(st, v, a, kw, false, true) },
		"replace":    fReplace,
		"reverse":    fReverse,
		"round":      fRound,
		"safe":       func(st *state, v any, a []any, kw *Map) (any, error) { s, err := st.str(v); return markup(s), err },
		"select":     func(st *state, v any, a []any, kw *Map) (any, error) { return fSelect(st, v, a, kw, true, false) },
		"selectattr": func(st *state, v any, a []any, kw *Map) (any, error) { return fSelect(st, v, a, kw, true, true) },
		"sort":       fSort,
		"string":     func(st *state, v any, a []any, kw *Map) (any, error) { return st.str(v) },
		"striptags":  fStriptags,
		"sum":        fSum,
		"title":      fTitle,
		"tojson":     fToJSON,
		"trim":       fTrim,
		"truncate":   fTruncate,
		"unique":     fUnique,
		"upper": func(st *state, v any, a []any, kw *Map) (any, error) {
			s, err := st.str(v)
			return strings.ToUpper(s), err
		},
		"wordcount": fWordcount,
	}
}

func fAbs(st *state, v any, args []any, kw *Map) (any, error) {
	if _, err := bindArgs("abs", args, kw, nil, nil); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case int:
		if x == math.MinInt {
			return nil, valueErr("integer overflow")
		}
		if x < 0 {
			return -x, nil
		}
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case float64:
		return math.Abs(x), nil
	}
	return nil, typeErr("bad operand type for abs(): '%s'", typeName(v))
}

func fAttr(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("attr", args, kw, []string{"name"}, []any{req})
	if err != nil {
		return nil, err
	}
	name, ok := a[0].(string)
	if !ok {
		return nil, typeErr("attribute name must be a string")
	}
	if m, ok := v.(*Map); ok {
		if dictMethods[name] {
			return &boundMethod{recv: m, name: name}, nil
		}
		return undefined{hint: "'dict object' has no attribute '" + name + "'"}, nil
	}
	return getAttr(v, name)
}

func fBatch(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("batch", args, kw, []string{"linecount", "fill_with"}, []any{req, nil})
	if err != nil {
		return nil, err
	}
	n, ok := intVal(a[0])
	if !ok || n <= 0 {
		return nil, valueErr("batch size must be a positive integer")
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	var out []any
	var cur []any
	for _, it := range items {
		cur = append(cur, it)
		if len(cur) == n {
			out = append(out, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		if _, hasFill := kw.Get("fill_with"); hasFill || len(args) > 1 {
			for len(cur) < n {
				cur = append(cur, a[1])
			}
		}
		out = append(out, cur)
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func fCenter(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("center", args, kw, []string{"width"}, []any{80})
	if err != nil {
		return nil, err
	}
	w, ok := intVal(a[0])
	if !ok {
		return nil, typeErr("center() width must be an integer")
	}
	s, err := st.str(v)
	if err != nil {
		return nil, err
	}
	return st.pad(s, w, " ", "center")
}

func pyLen(v any) (int, error) {
	switch x := v.(type) {
	case string:
		return runeLen(x), nil
	case markup:
		return runeLen(string(x)), nil
	case []any:
		return len(x), nil
	case tuple:
		return len(x), nil
	case *Map:
		return x.Len(), nil
	case undefined:
		return 0, nil
	}
	return 0, typeErr("object of type '%s' has no len()", typeName(v))
}

func fLength(st *state, v any, args []any, kw *Map) (any, error) {
	return pyLen(v)
}

func fDefault(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("default", args, kw, []string{"default_value", "boolean"}, []any{"", false})
	if err != nil {
		return nil, err
	}
	if isUndefined(v) || (truthy(a[1]) && !truthy(v)) {
		return a[0], nil
	}
	return v, nil
}

// ignoreCase lowercases strings for the case-insensitive sort/unique/min/max.
func ignoreCase(v any) any {
	if s, ok := v.(string); ok {
		return strings.ToLower(s)
	}
	return v
}

func fDictsort(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("dictsort", args, kw, []string{"case_sensitive", "by", "reverse"}, []any{false, "key", false})
	if err != nil {
		return nil, err
	}
	m, ok := v.(*Map)
	if !ok {
		if isUndefined(v) {
			return []any{}, nil
		}
		return nil, typeErr("dictsort requires a mapping, not %s", typeName(v))
	}
	pos := 0
	switch a[1] {
	case "key":
	case "value":
		pos = 1
	default:
		return nil, &Error{Kind: "FilterArgumentError", Msg: "You can only sort by either 'key' or 'value'"}
	}
	items := make([]any, m.Len())
	for i, k := range m.keys {
		items[i] = tuple{k, m.vals[i]}
	}
	var cmpErr error
	sort.SliceStable(items, func(i, j int) bool {
		x, y := items[i].(tuple)[pos], items[j].(tuple)[pos]
		if !truthy(a[0]) {
			x, y = ignoreCase(x), ignoreCase(y)
		}
		c, err := pyCompare(x, y)
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		if truthy(a[2]) {
			return c > 0
		}
		return c < 0
	})
	return items, cmpErr
}

func fEscape(st *state, v any, args []any, kw *Map) (any, error) {
	if m, ok := v.(markup); ok {
		return m, nil
	}
	s, err := st.str(v)
	return markup(htmlEscape(s)), err
}

func fFirst(st *state, v any, args []any, kw *Map) (any, error) {
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return undefined{hint: "No first item, sequence was empty."}, nil
	}
	return items[0], nil
}

func fLast(st *state, v any, args []any, kw *Map) (any, error) {
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return undefined{hint: "No last item, sequence was empty."}, nil
	}
	return items[len(items)-1], nil
}

// pyParseInt is int(str) with Python's tolerance for spaces, signs and
// underscores.
func pyParseInt(s string, base int) (int, bool) {
	s = pyStrip(s)
	if strings.Contains(s, "__") || strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") {
		return 0, false
	}
	s = strings.ReplaceAll(s, "_", "")
	sign := ""
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		sign, s = s[:1], s[1:]
	}
	lower := strings.ToLower(s)
	prefixes := map[int]string{16: "0x", 8: "0o", 2: "0b"}
	if base == 0 {
		base = 10
		for b, p := range prefixes {
			if strings.HasPrefix(lower, p) {
				base = b
			}
		}
		if base == 10 && len(s) > 1 && s[0] == '0' && strings.Trim(s, "0") != "" {
			return 0, false
		}
	}
	if p, ok := prefixes[base]; ok && strings.HasPrefix(lower, p) {
		s = s[2:]
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	i, err := strconv.ParseInt(sign+s, base, 64)
	if err != nil {
		return 0, false
	}
	return int(i), true
}

func pyParseFloat(s string) (float64, bool) {
	s = strings.ToLower(pyStrip(s))
	switch strings.TrimLeft(s, "+-") {
	case "inf", "infinity", "nan":
		f, _ := strconv.ParseFloat(s, 64)
		return f, true
	}
	if strings.Contains(s, "__") {
		return 0, false
	}
	s = strings.ReplaceAll(s, "_", "")
	if strings.HasPrefix(strings.TrimLeft(s, "+-"), "0x") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

func fInt(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("int", args, kw, []string{"default", "base"}, []any{0, 10})
	if err != nil {
		return nil, err
	}
	base, _ := intVal(a[1])
	switch x := v.(type) {
	case int:
		return x, nil
	case bool:
		i, _ := intVal(x)
		return i, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) >= 9.2e18 {
			return a[0], nil
		}
		return int(x), nil
	case string:
		if base != 0 && (base < 2 || base > 36) {
			base = 10
		}
		if i, ok := pyParseInt(x, base); ok {
			return i, nil
		}
		if f, ok := pyParseFloat(x); ok && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 9.2e18 {
			return int(f), nil
		}
	case undefined:
		return nil, x.err()
	}
	return a[0], nil
}

func fFloat(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("float", args, kw, []string{"default"}, []any{0.0})
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case int, bool, float64:
		f, _ := numVal(x)
		return f, nil
	case string:
		if f, ok := pyParseFloat(x); ok {
			return f, nil
		}
	case undefined:
		return nil, x.err()
	}
	return a[0], nil
}

func fFormat(st *state, v any, args []any, kw *Map) (any, error) {
	s, err := st.str(v)
	if err != nil {
		return nil, err
	}
	if kw.Len() > 0 {
		if len(args) > 0 {
			return nil, &Error{Kind: "FilterArgumentError", Msg: "can't handle positional and keyword arguments at the same time"}
		}
		return st.percentFormat(s, kw)
	}
	if len(args) == 1 {
		if _, isMap := args[0].(*Map); isMap {
			return st.percentFormat(s, args[0])
		}
	}
	return st.percentFormat(s, tuple(args))
}

func fIndent(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("indent", args, kw, []string{"width", "first", "blank"}, []any{4, false, false})
	if err != nil {
		return nil, err
	}
	var ind string
	if s, ok := a[0].(string); ok {
		ind = s
	} else if w, ok := intVal(a[0]); ok {
		if w > 1<<16 {
			return nil, limitErr("indent width too large")
		}
		if w > 0 {
			ind = strings.Repeat(" ", w)
		}
	} else {
		return nil, typeErr("indent width must be an integer or a string")
	}
	s, err := st.str(v)
	if err != nil {
		return nil, err
	}
	s += "\n"
	lines := pySplitlines(s, false)
	if err := st.checkSize(len(s) + len(lines)*len(ind)); err != nil {
		return nil, err
	}
	var sb strings.Builder
	if truthy(a[2]) {
		for i, l := range lines {
			if i > 0 {
				sb.WriteString("\n")
				sb.WriteString(ind)
			}
			sb.WriteString(l)
		}
	} else {
		sb.WriteString(lines[0])
		for _, l := range lines[1:] {
			sb.WriteString("\n")
			if l != "" {
				sb.WriteString(ind)
			}
			sb.WriteString(l)
		}
	}
	out := sb.String()
	if truthy(a[1]) {
		out = ind + out
	}
	return out, nil
}

func fItems(st *state, v any, args []any, kw *Map) (any, error) {
	switch m := v.(type) {
	case undefined:
		return []any{}, nil
	case *Map:
		return st.dictMethod(m, "items", nil, nil)
	}
	return nil, typeErr("Can only get item pairs from a mapping.")
}

// attrGetter is Jinja's make_attrgetter: a dotted path of item lookups.
func attrGetter(attr any) func(v any) (any, error) {
	var parts []any
	switch a := attr.(type) {
	case string:
		for _, p := range strings.Split(a, ".") {
			if i, err := strconv.Atoi(p); err == nil {
				parts = append(parts, i)
			} else {
				parts = append(parts, p)
			}
		}
	case nil:
	default:
		parts = []any{a}
	}
	return func(v any) (any, error) {
		for _, p := range parts {
			var err error
			v, err = getItem(v, p)
			if err != nil {
				return nil, err
			}
		}
		return v, nil
	}
}

func fJoin(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("join", args, kw, []string{"d", "attribute"}, []any{"", nil})
	if err != nil {
		return nil, err
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	get := attrGetter(a[1])
	sep := pyStr(a[0])
	var sb strings.Builder
	for i, it := range items {
		if a[1] != nil {
			it, err = get(it)
			if err != nil {
				return nil, err
			}
		}
		if i > 0 {
			sb.WriteString(sep)
		}
		is, err := st.str(it)
		if err != nil {
			return nil, err
		}
		sb.WriteString(is)
		if err := st.checkSize(sb.Len()); err != nil {
			return nil, err
		}
	}
	return sb.String(), nil
}

func fList(st *state, v any, args []any, kw *Map) (any, error) {
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	return append([]any{}, items...), nil
}

func fMap(st *state, v any, args []any, kw *Map) (any, error) {
	if !truthy(v) {
		return []any{}, nil
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	var fn func(any) (any, error)
	if len(args) == 0 {
		attr, ok := kw.Get("attribute")
		if !ok {
			return nil, &Error{Kind: "FilterArgumentError", Msg: "map requires a filter name or attribute"}
		}
		def, hasDef := kw.Get("default")
		for _, k := range kw.keys {
			if k != "attribute" && k != "default" {
				return nil, &Error{Kind: "FilterArgumentError", Msg: "Unexpected keyword argument '" + k + "'"}
			}
		}
		get := attrGetter(attr)
		fn = func(it any) (any, error) {
			r, err := get(it)
			if err == nil && hasDef && isUndefined(r) {
				return def, nil
			}
			return r, err
		}
	} else {
		name, ok := args[0].(string)
		if !ok {
			return nil, &Error{Kind: "FilterArgumentError", Msg: "map filter name must be a string"}
		}
		rest := args[1:]
		fn = func(it any) (any, error) {
			return st.applyFilter(name, it, append([]any(nil), rest...), kw)
		}
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		if err := st.step(); err != nil {
			return nil, err
		}
		r, err := fn(it)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func fMinMax(st *state, v any, args []any, kw *Map, sign int) (any, error) {
	a, err := bindArgs("min/max", args, kw, []string{"case_sensitive", "attribute"}, []any{false, nil})
	if err != nil {
		return nil, err
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return undefined{hint: "No aggregated item, sequence was empty."}, nil
	}
	get := attrGetter(a[1])
	key := func(it any) (any, error) {
		k, err := get(it)
		if err != nil {
			return nil, err
		}
		if !truthy(a[0]) {
			k = ignoreCase(k)
		}
		return k, nil
	}
	best := items[0]
	bk, err := key(best)
	if err != nil {
		return nil, err
	}
	for _, it := range items[1:] {
		k, err := key(it)
		if err != nil {
			return nil, err
		}
		c, err := pyCompare(k, bk)
		if err != nil {
			return nil, err
		}
		if c*sign > 0 {
			best, bk = it, k
		}
	}
	return best, nil
}

func fSelect(st *state, v any, args []any, kw *Map, keep, byAttr bool) (any, error) {
	if !truthy(v) {
		return []any{}, nil
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	off := 0
	get := func(x any) (any, error) { return x, nil }
	if byAttr {
		if len(args) == 0 {
			return nil, &Error{Kind: "FilterArgumentError", Msg: "Missing parameter for attribute name"}
		}
		get = attrGetter(args[0])
		off = 1
	}
	testName := ""
	var testArgs []any
	if len(args) > off {
		s, ok := args[off].(string)
		if !ok {
			return nil, &Error{Kind: "FilterArgumentError", Msg: "test name must be a string"}
		}
		testName = s
		testArgs = args[off+1:]
	}
	out := []any{}
	for _, it := range items {
		if err := st.step(); err != nil {
			return nil, err
		}
		x, err := get(it)
		if err != nil {
			return nil, err
		}
		var ok bool
		if testName == "" {
			ok = truthy(x)
		} else {
			ok, err = st.applyTest(testName, x, testArgs)
			if err != nil {
				return nil, err
			}
		}
		if ok == keep {
			out = append(out, it)
		}
	}
	return out, nil
}

func fReplace(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("replace", args, kw, []string{"old", "new", "count"}, []any{req, req, nil})
	if err != nil {
		return nil, err
	}
	s, err := st.str(v)
	if err != nil {
		return nil, err
	}
	return st.pyReplace(s, pyStr(a[0]), pyStr(a[1]), a[2])
}

func fReverse(st *state, v any, args []any, kw *Map) (any, error) {
	if s, ok := v.(string); ok {
		rs := []rune(s)
		for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
			rs[i], rs[j] = rs[j], rs[i]
		}
		return string(rs), nil
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[len(items)-1-i] = it
	}
	return out, nil
}

// pyRound is Python's round(x, ndigits) for floats: correctly rounded,
// ties to even.
func pyRound(x float64, nd int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	if nd >= 0 {
		if nd > 300 {
			return x
		}
		f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', nd, 64), 64)
		return f
	}
	p := math.Pow(10, float64(-nd))
	y := x / p
	r := math.RoundToEven(y)
	return r * p
}

func fRound(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("round", args, kw, []string{"precision", "method"}, []any{0, "common"})
	if err != nil {
		return nil, err
	}
	prec, ok := intVal(a[0])
	if !ok {
		return nil, typeErr("round precision must be an integer")
	}
	method, _ := a[1].(string)
	if method != "common" && method != "ceil" && method != "floor" {
		return nil, &Error{Kind: "FilterArgumentError", Msg: "method must be common, ceil or floor"}
	}
	if u, ok := v.(undefined); ok {
		return nil, u.err()
	}
	f, isNum := numVal(v)
	if !isNum {
		return nil, typeErr("type %s doesn't define __round__ method", typeName(v))
	}
	if method == "common" {
		if i, ok := intVal(v); ok {
			if prec >= 0 {
				return i, nil
			}
			return int(pyRound(float64(i), prec)), nil
		}
		return pyRound(f, prec), nil
	}
	p := math.Pow(10, float64(prec))
	if method == "ceil" {
		return math.Ceil(f*p) / p, nil
	}
	return math.Floor(f*p) / p, nil
}

func fSort(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("sort", args, kw, []string{"reverse", "case_sensitive", "attribute"}, []any{false, false, nil})
	if err != nil {
		return nil, err
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	items = append([]any{}, items...)
	var getters []func(any) (any, error)
	if s, ok := a[2].(string); ok && strings.Contains(s, ",") {
		for _, p := range strings.Split(s, ",") {
			getters = append(getters, attrGetter(strings.TrimSpace(p)))
		}
	} else {
		getters = []func(any) (any, error){attrGetter(a[2])}
	}
	keys := make([]any, len(items))
	for i, it := range items {
		var ks []any
		for _, g := range getters {
			k, err := g(it)
			if err != nil {
				return nil, err
			}
			if !truthy(a[1]) {
				k = ignoreCase(k)
			}
			ks = append(ks, k)
		}
		if len(ks) == 1 {
			keys[i] = ks[0]
		} else {
			keys[i] = ks
		}
	}
	if err := st.work(len(items)); err != nil {
		return nil, err
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	var cmpErr error
	rev := truthy(a[0])
	sort.SliceStable(idx, func(i, j int) bool {
		c, err := pyCompare(keys[idx[i]], keys[idx[j]])
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		if rev {
			return c > 0
		}
		return c < 0
	})
	if cmpErr != nil {
		return nil, cmpErr
	}
	out := make([]any, len(items))
	for i, k := range idx {
		out[i] = items[k]
	}
	return out, nil
}

var tagRe = regexp.MustCompile(`(?s)<!--.*?-->|<[^>]*>`)

func fStriptags(st *state, v any, args []any, kw *Map) (any, error) {
	s, err := st.str(v)
	if err != nil {
		return nil, err
	}
	s = tagRe.ReplaceAllString(s, "")
	s = strings.Join(strings.FieldsFunc(s, pyIsSpace), " ")
	r := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", "\"", "&#39;", "'", "&quot;", "\"")
	return r.Replace(s), nil
}

func fSum(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("sum", args, kw, []string{"attribute", "start"}, []any{nil, 0})
	if err != nil {
		return nil, err
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	get := attrGetter(a[0])
	total := a[1]
	for _, it := range items {
		x, err := get(it)
		if err != nil {
			return nil, err
		}
		total, err = st.binaryOp("+", total, x)
		if err != nil {
			return nil, err
		}
	}
	return total, nil
}

func fTitle(st *state, v any, args []any, kw *Map) (any, error) {
	s, err := st.str(v)
	if err != nil {
		return nil, err
	}
	var sb strings.Builder
	start := true
	for _, r := range s {
		if r == '-' || r == '(' || r == '{' || r == '[' || r == '<' || pyIsSpace(r) {
			sb.WriteRune(r)
			start = true
			continue
		}
		if start {
			sb.WriteRune(unicode.ToUpper(r))
			start = false
		} else {
			sb.WriteRune(unicode.ToLower(r))
		}
	}
	return sb.String(), nil
}

func fToJSON(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("tojson", args, kw, []string{"ensure_ascii", "indent", "separators", "sort_keys"}, []any{false, nil, nil, false})
	if err != nil {
		return nil, err
	}
	enc := jsonEncoder{indent: -1, itemSep: ", ", keySep: ": ", sortKeys: truthy(a[3]), ensureASCII: truthy(a[0]), limit: st.limits.MaxOutput}
	switch ind := a[1].(type) {
	case nil:
	case string:
		enc.indent, enc.indentStr = 0, ind
	default:
		n, ok := intVal(ind)
		if !ok {
			return nil, typeErr("tojson indent must be an integer or a string")
		}
		if n > 1<<12 {
			return nil, limitErr("tojson indent too large")
		}
		enc.indent = 0
		if n > 0 {
			enc.indentStr = strings.Repeat(" ", n)
		}
	}
	if enc.indent >= 0 {
		enc.itemSep = ","
	}
	if a[2] != nil {
		seps, ok := listLike(a[2])
		if !ok || len(seps) != 2 {
			return nil, typeErr("tojson separators must be a pair of strings")
		}
		s1, ok1 := unmark(seps[0]).(string)
		s2, ok2 := unmark(seps[1]).(string)
		if !ok1 || !ok2 {
			return nil, typeErr("tojson separators must be a pair of strings")
		}
		enc.itemSep, enc.keySep = s1, s2
	}
	if err := enc.encode(v, 0); err != nil {
		if err == errJSONTooLarge {
			return nil, limitErr("tojson output larger than %d bytes", st.limits.MaxOutput)
		}
		return nil, typeErr("%v", err)
	}
	return enc.sb.String(), nil
}

func fTrim(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("trim", args, kw, []string{"chars"}, []any{nil})
	if err != nil {
		return nil, err
	}
	s, err := st.str(v)
	if err != nil {
		return nil, err
	}
	return stripChars(s, a[0], true, true)
}

func fTruncate(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("truncate", args, kw, []string{"length", "killwords", "end", "leeway"}, []any{255, false, "...", 5})
	if err != nil {
		return nil, err
	}
	s, err := st.str(v)
	if err != nil {
		return nil, err
	}
	length, ok1 := intVal(a[0])
	leeway, ok2 := intVal(a[3])
	end := pyStr(a[2])
	if !ok1 || !ok2 {
		return nil, typeErr("truncate length must be an integer")
	}
	rs := []rune(s)
	if len(rs) <= length+leeway {
		return s, nil
	}
	cut := length - runeLen(end)
	if cut < 0 {
		cut = 0
	}
	if truthy(a[1]) {
		return string(rs[:cut]) + end, nil
	}
	head := string(rs[:cut])
	if i := strings.LastIndex(head, " "); i >= 0 {
		head = head[:i]
	}
	return head + end, nil
}

func fUnique(st *state, v any, args []any, kw *Map) (any, error) {
	a, err := bindArgs("unique", args, kw, []string{"case_sensitive", "attribute"}, []any{false, nil})
	if err != nil {
		return nil, err
	}
	items, err := st.iterate(v)
	if err != nil {
		return nil, err
	}
	get := attrGetter(a[1])
	var seen []any
	seenStr := map[string]bool{}
	seenNum := map[float64]bool{}
	out := []any{}
	for _, it := range items {
		if err := st.step(); err != nil {
			return nil, err
		}
		k, err := get(it)
		if err != nil {
			return nil, err
		}
		if !truthy(a[0]) {
			k = ignoreCase(k)
		}
		switch k.(type) {
		case []any, *Map:
			return nil, typeErr("unhashable type: '%s'", typeName(k))
		}
		if s, ok := k.(string); ok {
			if seenStr[s] {
				continue
			}
			seenStr[s] = true
			out = append(out, it)
			continue
		}
		if f, ok := numVal(k); ok && !math.IsNaN(f) {
			if seenNum[f] {
				continue
			}
			seenNum[f] = true
			out = append(out, it)
			continue
		}
		if err := st.work(len(seen)); err != nil {
			return nil, err
		}
		dup := false
		for _, x := range seen {
			if pyEqual(x, k) {
				dup = true
				break
			}
		}
		if !dup {
			seen = append(seen, k)
			out = append(out, it)
		}
	}
	return out, nil
}

var wordRe = regexp.MustCompile(`[\p{L}\p{N}_]+`)

func fWordcount(st *state, v any, args []any, kw *Map) (any, error) {
	s, err := st.str(v)
	return len(wordRe.FindAllStringIndex(s, -1)), err
}
