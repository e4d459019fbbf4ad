package template

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// bindArgs maps positional and keyword arguments onto names, like a Python
// signature. Missing arguments take defs[i] (which may be missingArg to mark
// a required one).
func bindArgs(fname string, args []any, kw *Map, names []string, defs []any) ([]any, error) {
	if len(args) > len(names) {
		return nil, typeErr("%s() takes at most %d arguments (%d given)", fname, len(names), len(args))
	}
	out := make([]any, len(names))
	for i := range names {
		if i < len(args) {
			out[i] = args[i]
			if _, dup := kw.Get(names[i]); dup {
				return nil, typeErr("%s() got multiple values for argument '%s'", fname, names[i])
			}
			continue
		}
		if v, ok := kw.Get(names[i]); ok {
			out[i] = v
			continue
		}
		if i < len(defs) {
			if _, req := defs[i].(missing); req {
				return nil, typeErr("%s() missing required argument '%s'", fname, names[i])
			}
			out[i] = defs[i]
		}
	}
	for _, k := range kw.Keys() {
		found := false
		for _, n := range names {
			if n == k {
				found = true
				break
			}
		}
		if !found {
			return nil, typeErr("%s() got an unexpected keyword argument '%s'", fname, k)
		}
	}
	return out, nil
}

// markupMethods are the str methods whose result stays Markup.
var markupMethods = map[string]bool{
	"capitalize": true, "title": true, "lower": true, "upper": true, "replace": true, "ljust": true,
	"rjust": true, "lstrip": true, "rstrip": true, "center": true, "strip": true, "expandtabs": true,
	"swapcase": true, "zfill": true, "join": true, "format": true,
}

type missing struct{}

var req = missing{}

func (st *state) callMethod(recv any, name string, args []any, kw *Map) (any, error) {
	if n, err := pyLen(recv); err == nil {
		if err := st.work(1 + n>>6); err != nil {
			return nil, err
		}
	}
	switch r := recv.(type) {
	case string:
		return st.strMethod(r, name, args, kw)
	case markup:
		for i, a := range args {
			if s, ok := a.(string); ok && (name == "replace" || name == "join") {
				args[i] = htmlEscape(s)
			}
		}
		v, err := st.strMethod(string(r), name, args, kw)
		if s, ok := v.(string); ok && err == nil && markupMethods[name] {
			return markup(s), nil
		}
		return v, err
	case *Map:
		return st.dictMethod(r, name, args, kw)
	case []any:
		return listMethod(r, name, args, kw)
	case tuple:
		return listMethod(r, name, args, kw)
	case *loopObj:
		switch name {
		case "cycle":
			if len(args) == 0 {
				return nil, typeErr("no items for cycling given")
			}
			return args[r.index0%len(args)], nil
		case "changed":
			if !r.changed || !listEqual(r.last, args, 0) {
				r.changed = true
				r.last = append([]any(nil), args...)
				return true, nil
			}
			return false, nil
		}
	case float64:
		if name == "is_integer" {
			return r == math.Trunc(r) && !math.IsInf(r, 0), nil
		}
	}
	return nil, typeErr("'%s' object has no method '%s'", typeName(recv), name)
}

func unsafeCall(obj any, name string) error {
	return &Error{Kind: "SecurityError", Msg: fmt.Sprintf("access to attribute '%s' of '%s' object is unsafe", name, typeName(obj))}
}

func (st *state) dictMethod(m *Map, name string, args []any, kw *Map) (any, error) {
	switch name {
	case "items":
		if _, err := bindArgs(name, args, kw, nil, nil); err != nil {
			return nil, err
		}
		out := make([]any, len(m.keys))
		for i, k := range m.keys {
			out[i] = tuple{k, m.vals[i]}
		}
		return out, nil
	case "keys":
		if _, err := bindArgs(name, args, kw, nil, nil); err != nil {
			return nil, err
		}
		out := make([]any, len(m.keys))
		for i, k := range m.keys {
			out[i] = k
		}
		return out, nil
	case "values":
		if _, err := bindArgs(name, args, kw, nil, nil); err != nil {
			return nil, err
		}
		return append([]any{}, m.vals...), nil
	case "get":
		a, err := bindArgs(name, args, kw, []string{"key", "default"}, []any{req, nil})
		if err != nil {
			return nil, err
		}
		if k, ok := a[0].(string); ok {
			if v, ok := m.Get(k); ok {
				return v, nil
			}
		}
		return a[1], nil
	case "copy":
		return m.clone(), nil
	}
	return nil, unsafeCall(m, name)
}

func listMethod(l []any, name string, args []any, kw *Map) (any, error) {
	switch name {
	case "index":
		a, err := bindArgs(name, args, kw, []string{"value"}, []any{req})
		if err != nil {
			return nil, err
		}
		for i, it := range l {
			if pyEqual(it, a[0]) {
				return i, nil
			}
		}
		return nil, valueErr("%s is not in list", pyRepr(a[0]))
	case "count":
		a, err := bindArgs(name, args, kw, []string{"value"}, []any{req})
		if err != nil {
			return nil, err
		}
		n := 0
		for _, it := range l {
			if pyEqual(it, a[0]) {
				n++
			}
		}
		return n, nil
	case "copy":
		return append([]any{}, l...), nil
	}
	return nil, unsafeCall(l, name)
}

func strArg(fname string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", typeErr("%s() argument must be str, not %s", fname, typeName(v))
	}
	return s, nil
}

// stripChars implements str.strip/lstrip/rstrip with an optional chars set.
func stripChars(s string, chars any, left, right bool) (string, error) {
	if chars == nil {
		if left {
			s = pyLStrip(s)
		}
		if right {
			s = pyRStrip(s)
		}
		return s, nil
	}
	cs, ok := chars.(string)
	if !ok {
		return "", typeErr("strip arg must be None or str")
	}
	in := func(r rune) bool { return strings.ContainsRune(cs, r) }
	if left {
		s = strings.TrimLeftFunc(s, in)
	}
	if right {
		s = strings.TrimRightFunc(s, in)
	}
	return s, nil
}

// pySplit implements str.split / str.rsplit.
func pySplit(s string, sep any, maxsplit int, fromRight bool) ([]any, error) {
	var parts []string
	if sep == nil {
		fields := strings.FieldsFunc(s, pyIsSpace)
		if maxsplit < 0 || maxsplit >= len(fields) {
			parts = fields
		} else if !fromRight {
			// keep the remainder after maxsplit splits, left-stripped
			rest := s
			for i := 0; i < maxsplit; i++ {
				rest = pyLStrip(rest)
				j := strings.IndexFunc(rest, pyIsSpace)
				parts = append(parts, rest[:j])
				rest = rest[j:]
			}
			rest = pyLStrip(rest)
			if rest != "" {
				parts = append(parts, rest)
			}
		} else {
			rest := s
			var rev []string
			for i := 0; i < maxsplit; i++ {
				rest = pyRStrip(rest)
				j := strings.LastIndexFunc(rest, pyIsSpace)
				_, n := utf8.DecodeRuneInString(rest[j:])
				rev = append(rev, rest[j+n:])
				rest = rest[:j]
			}
			rest = pyRStrip(rest)
			if rest != "" {
				parts = append(parts, rest)
			}
			for i := len(rev) - 1; i >= 0; i-- {
				parts = append(parts, rev[i])
			}
		}
	} else {
		sp, ok := sep.(string)
		if !ok {
			return nil, typeErr("must be str or None, not %s", typeName(sep))
		}
		if sp == "" {
			return nil, valueErr("empty separator")
		}
		switch {
		case maxsplit < 0:
			parts = strings.Split(s, sp)
		case !fromRight:
			parts = strings.SplitN(s, sp, maxsplit+1)
		default:
			rest := s
			var rev []string
			for i := 0; i < maxsplit; i++ {
				j := strings.LastIndex(rest, sp)
				if j < 0 {
					break
				}
				rev = append(rev, rest[j+len(sp):])
				rest = rest[:j]
			}
			parts = append(parts, rest)
			for i := len(rev) - 1; i >= 0; i-- {
				parts = append(parts, rev[i])
			}
		}
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

// pySplitlines is str.splitlines().
func pySplitlines(s string, keepends bool) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		brk := false
		end := i + n
		switch r {
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			brk = true
		case '\r':
			brk = true
			if end < len(s) && s[end] == '\n' {
				end++
			}
		}
		if brk {
			if keepends {
				out = append(out, s[start:end])
			} else {
				out = append(out, s[start:i])
			}
			start = end
		}
		i = end
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// pyTitle is Python's str.title().
func pyTitle(s string) string {
	var sb strings.Builder
	prevCased := false
	for _, r := range s {
		if prevCased {
			sb.WriteRune(unicode.ToLower(r))
		} else {
			sb.WriteRune(unicode.ToTitle(r))
		}
		prevCased = unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
	}
	return sb.String()
}

// pyCapitalize is Python's str.capitalize().
func pyCapitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToTitle(r)) + strings.ToLower(s[n:])
}

func allRunes(s string, f func(rune) bool) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !f(r) {
			return false
		}
	}
	return true
}

func hasCased(s string, f func(rune) bool, other func(rune) bool) bool {
	found := false
	for _, r := range s {
		if other(r) {
			return false
		}
		if f(r) {
			found = true
		}
	}
	return found
}

func runeIndex(s string, byteIdx int) int {
	if byteIdx < 0 {
		return byteIdx
	}
	return utf8.RuneCountInString(s[:byteIdx])
}

func (st *state) strMethod(s, name string, args []any, kw *Map) (any, error) {
	switch name {
	case "strip", "lstrip", "rstrip":
		a, err := bindArgs(name, args, kw, []string{"chars"}, []any{nil})
		if err != nil {
			return nil, err
		}
		return stripChars(s, a[0], name != "rstrip", name != "lstrip")
	case "split", "rsplit":
		a, err := bindArgs(name, args, kw, []string{"sep", "maxsplit"}, []any{nil, -1})
		if err != nil {
			return nil, err
		}
		ms, ok := intVal(a[1])
		if !ok {
			return nil, typeErr("maxsplit must be an integer")
		}
		return pySplit(s, a[0], ms, name == "rsplit")
	case "splitlines":
		a, err := bindArgs(name, args, kw, []string{"keepends"}, []any{false})
		if err != nil {
			return nil, err
		}
		lines := pySplitlines(s, truthy(a[0]))
		out := make([]any, len(lines))
		for i, l := range lines {
			out[i] = l
		}
		return out, nil
	case "startswith", "endswith":
		a, err := bindArgs(name, args, kw, []string{"prefix", "start", "end"}, []any{req, nil, nil})
		if err != nil {
			return nil, err
		}
		sub := s
		if a[1] != nil || a[2] != nil {
			v, err := sliceStr(s, a[1], a[2])
			if err != nil {
				return nil, err
			}
			sub = v
		}
		var cands []any
		if l, ok := listLike(a[0]); ok {
			if _, isTuple := a[0].(tuple); !isTuple {
				return nil, typeErr("%s first arg must be str or a tuple of str, not list", name)
			}
			cands = l
		} else {
			cands = []any{a[0]}
		}
		for _, c := range cands {
			cs, ok := c.(string)
			if !ok {
				return nil, typeErr("%s first arg must be str or a tuple of str, not %s", name, typeName(c))
			}
			if name == "startswith" && strings.HasPrefix(sub, cs) || name == "endswith" && strings.HasSuffix(sub, cs) {
				return true, nil
			}
		}
		return false, nil
	case "replace":
		a, err := bindArgs(name, args, kw, []string{"old", "new", "count"}, []any{req, req, -1})
		if err != nil {
			return nil, err
		}
		return st.pyReplace(s, a[0], a[1], a[2])
	case "upper":
		return strings.ToUpper(s), nil
	case "lower", "casefold":
		return strings.ToLower(s), nil
	case "title":
		return pyTitle(s), nil
	case "capitalize":
		return pyCapitalize(s), nil
	case "swapcase":
		return strings.Map(func(r rune) rune {
			if unicode.IsUpper(r) {
				return unicode.ToLower(r)
			}
			return unicode.ToUpper(r)
		}, s), nil
	case "find", "rfind", "index", "rindex", "count":
		a, err := bindArgs(name, args, kw, []string{"sub", "start", "end"}, []any{req, nil, nil})
		if err != nil {
			return nil, err
		}
		sub, err := strArg(name, a[0])
		if err != nil {
			return nil, err
		}
		offset := 0
		hay := s
		if a[1] != nil || a[2] != nil {
			hay, err = sliceStr(s, a[1], a[2])
			if err != nil {
				return nil, err
			}
			if a[1] != nil {
				b, _, _, _ := sliceIndices(runeLen(s), a[1], nil, nil)
				offset = b
			}
		}
		if name == "count" {
			if sub == "" {
				return runeLen(hay) + 1, nil
			}
			return strings.Count(hay, sub), nil
		}
		var i int
		if name == "find" || name == "index" {
			i = strings.Index(hay, sub)
		} else {
			i = strings.LastIndex(hay, sub)
		}
		if i < 0 {
			if name == "index" || name == "rindex" {
				return nil, valueErr("substring not found")
			}
			return -1, nil
		}
		return runeIndex(hay, i) + offset, nil
	case "join":
		a, err := bindArgs(name, args, kw, []string{"iterable"}, []any{req})
		if err != nil {
			return nil, err
		}
		items, err := st.iterate(a[0])
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(items))
		total := 0
		for i, it := range items {
			p, ok := it.(string)
			if !ok {
				return nil, typeErr("sequence item %d: expected str instance, %s found", i, typeName(it))
			}
			parts[i] = p
			total += len(p) + len(s)
		}
		if err := st.checkSize(total); err != nil {
			return nil, err
		}
		return strings.Join(parts, s), nil
	case "format":
		return st.strFormat(s, args, kw)
	case "isdigit", "isdecimal", "isnumeric":
		return allRunes(s, unicode.IsDigit), nil
	case "isalpha":
		return allRunes(s, unicode.IsLetter), nil
	case "isalnum":
		return allRunes(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }), nil
	case "isspace":
		return allRunes(s, pyIsSpace), nil
	case "isupper":
		return hasCased(s, unicode.IsUpper, unicode.IsLower), nil
	case "islower":
		return hasCased(s, unicode.IsLower, unicode.IsUpper), nil
	case "istitle":
		return s != "" && pyTitle(s) == s && strings.IndexFunc(s, unicode.IsLetter) >= 0, nil
	case "center", "ljust", "rjust":
		a, err := bindArgs(name, args, kw, []string{"width", "fillchar"}, []any{req, " "})
		if err != nil {
			return nil, err
		}
		w, ok := intVal(a[0])
		fill, ok2 := a[1].(string)
		if !ok || !ok2 || runeLen(fill) != 1 {
			return nil, typeErr("%s() arguments must be an int and a single character", name)
		}
		return st.pad(s, w, fill, name)
	case "zfill":
		a, err := bindArgs(name, args, kw, []string{"width"}, []any{req})
		if err != nil {
			return nil, err
		}
		w, ok := intVal(a[0])
		if !ok {
			return nil, typeErr("zfill() argument must be int")
		}
		n := runeLen(s)
		if w <= n {
			return s, nil
		}
		if err := st.checkSize(w); err != nil {
			return nil, err
		}
		sign := ""
		if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
			sign, s = s[:1], s[1:]
		}
		return sign + strings.Repeat("0", w-n) + s, nil
	case "partition", "rpartition":
		a, err := bindArgs(name, args, kw, []string{"sep"}, []any{req})
		if err != nil {
			return nil, err
		}
		sep, err := strArg(name, a[0])
		if err != nil {
			return nil, err
		}
		if sep == "" {
			return nil, valueErr("empty separator")
		}
		var i int
		if name == "partition" {
			i = strings.Index(s, sep)
			if i < 0 {
				return tuple{s, "", ""}, nil
			}
		} else {
			i = strings.LastIndex(s, sep)
			if i < 0 {
				return tuple{"", "", s}, nil
			}
		}
		return tuple{s[:i], sep, s[i+len(sep):]}, nil
	case "removeprefix", "removesuffix":
		a, err := bindArgs(name, args, kw, []string{"affix"}, []any{req})
		if err != nil {
			return nil, err
		}
		x, err := strArg(name, a[0])
		if err != nil {
			return nil, err
		}
		if name == "removeprefix" {
			return strings.TrimPrefix(s, x), nil
		}
		return strings.TrimSuffix(s, x), nil
	case "expandtabs":
		return strings.ReplaceAll(s, "\t", "        "), nil
	case "encode":
		return s, nil
	}
	return nil, typeErr("'str' object has no method '%s'", name)
}

func (st *state) pad(s string, w int, fill, how string) (any, error) {
	n := runeLen(s)
	if w <= n {
		return s, nil
	}
	if err := st.checkSize(w * len(fill)); err != nil {
		return nil, err
	}
	total := w - n
	var left int
	switch how {
	case "ljust":
		left = 0
	case "rjust":
		left = total
	default: // Python's center puts the extra space on the right when len is even... as CPython does
		left = total / 2
		if total%2 == 1 && w%2 == 1 {
			left++
		}
	}
	return strings.Repeat(fill, left) + s + strings.Repeat(fill, total-left), nil
}

func sliceStr(s string, start, end any) (string, error) {
	rs := []rune(s)
	b, e, _, err := sliceIndices(len(rs), start, end, nil)
	if err != nil {
		return "", err
	}
	if e <= b {
		return "", nil
	}
	return string(rs[b:e]), nil
}

func (st *state) pyReplace(s string, oldV, newV, countV any) (any, error) {
	old, err := strArg("replace", oldV)
	if err != nil {
		return nil, err
	}
	nw, err := strArg("replace", newV)
	if err != nil {
		return nil, err
	}
	count := -1
	if countV != nil {
		c, ok := intVal(countV)
		if !ok {
			return nil, typeErr("replace() count must be an integer")
		}
		count = c
	}
	occ := strings.Count(s, old)
	if old == "" {
		occ = runeLen(s) + 1
	}
	if count >= 0 && count < occ {
		occ = count
	}
	if err := st.checkSize(len(s) + occ*(len(nw)-len(old))); err != nil {
		return nil, err
	}
	return strings.Replace(s, old, nw, count), nil
}

// strFormat is a small str.format: {} {0} {name} {name.attr} {0[key]} with
// an optional conversion (!s !r) and a simple format spec.
func (st *state) strFormat(s string, args []any, kw *Map) (any, error) {
	var sb strings.Builder
	auto := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c == '{' {
			if i+1 < len(s) && s[i+1] == '{' {
				sb.WriteByte('{')
				i += 2
				continue
			}
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return nil, valueErr("Single '{' encountered in format string")
			}
			field := s[i+1 : i+j]
			i += j + 1
			spec := ""
			if k := strings.IndexByte(field, ':'); k >= 0 {
				field, spec = field[:k], field[k+1:]
			}
			conv := ""
			if k := strings.IndexByte(field, '!'); k >= 0 {
				field, conv = field[:k], field[k+1:]
			}
			// split off attribute/index accessors
			head := field
			rest := ""
			if k := strings.IndexAny(field, ".["); k >= 0 {
				head, rest = field[:k], field[k:]
			}
			var v any
			if head == "" {
				if auto >= len(args) {
					return nil, &Error{Kind: "IndexError", Msg: "Replacement index out of range for positional args tuple"}
				}
				v = args[auto]
				auto++
			} else if n, err := strconv.Atoi(head); err == nil {
				if n < 0 || n >= len(args) {
					return nil, &Error{Kind: "IndexError", Msg: "Replacement index out of range for positional args tuple"}
				}
				v = args[n]
			} else {
				x, ok := kw.Get(head)
				if !ok {
					return nil, &Error{Kind: "KeyError", Msg: pyRepr(head)}
				}
				v = x
			}
			for rest != "" {
				var err error
				if rest[0] == '.' {
					k := strings.IndexAny(rest[1:], ".[")
					name := rest[1:]
					if k >= 0 {
						name, rest = rest[1:k+1], rest[k+1:]
					} else {
						rest = ""
					}
					v, err = getAttr(v, name)
				} else {
					k := strings.IndexByte(rest, ']')
					if k < 0 {
						return nil, valueErr("Missing ']' in format string")
					}
					key := rest[1:k]
					rest = rest[k+1:]
					var kv any = key
					if n, err := strconv.Atoi(key); err == nil {
						kv = n
					}
					v, err = getItem(v, kv)
				}
				if err != nil {
					return nil, err
				}
			}
			var out string
			var err error
			if conv == "r" {
				out, err = st.repr(v)
				if err != nil {
					return nil, err
				}
			} else {
				if _, isNum := numVal(v); !isNum {
					if v, err = st.str(v); err != nil {
						return nil, err
					}
				}
				out, err = formatSpec(v, spec)
				if err != nil {
					return nil, err
				}
			}
			sb.WriteString(out)
			if err := st.checkSize(sb.Len()); err != nil {
				return nil, err
			}
			continue
		}
		if c == '}' {
			if i+1 < len(s) && s[i+1] == '}' {
				i += 2
			} else {
				i++
			}
			sb.WriteByte('}')
			continue
		}
		sb.WriteByte(c)
		i++
	}
	return sb.String(), nil
}

// formatSpec supports [[fill]align][width][.precision][type] for str.format.
func formatSpec(v any, spec string) (string, error) {
	if spec == "" {
		return pyStr(v), nil
	}
	fill, align := " ", byte(0)
	rs := []rune(spec)
	if len(rs) >= 2 && strings.ContainsRune("<>^", rs[1]) {
		fill, align = string(rs[0]), byte(rs[1])
		spec = string(rs[2:])
	} else if len(spec) >= 1 && strings.IndexByte("<>^", spec[0]) >= 0 {
		align = spec[0]
		spec = spec[1:]
	}
	i := 0
	for i < len(spec) && isDigit(spec[i]) {
		i++
	}
	width, _ := strconv.Atoi(spec[:i])
	if width > 1<<20 {
		return "", valueErr("format width too large")
	}
	spec = spec[i:]
	prec := -1
	if strings.HasPrefix(spec, ".") {
		j := 1
		for j < len(spec) && isDigit(spec[j]) {
			j++
		}
		prec, _ = strconv.Atoi(spec[1:j])
		if prec > 100 {
			prec = 100
		}
		spec = spec[j:]
	}
	var out string
	switch spec {
	case "d":
		i, ok := intVal(v)
		if !ok {
			return "", valueErr("Unknown format code 'd' for object of type '%s'", typeName(v))
		}
		out = strconv.Itoa(i)
	case "f", "F", "e", "g", "%":
		f, ok := numVal(v)
		if !ok {
			return "", valueErr("Unknown format code '%s' for object of type '%s'", spec, typeName(v))
		}
		if prec < 0 {
			prec = 6
		}
		switch spec {
		case "%":
			out = strconv.FormatFloat(f*100, 'f', prec, 64) + "%"
		case "F":
			out = strconv.FormatFloat(f, 'f', prec, 64)
		default:
			out = strconv.FormatFloat(f, spec[0], prec, 64)
		}
	case "", "s":
		out = pyStr(v)
		if prec >= 0 && runeLen(out) > prec {
			out = string([]rune(out)[:prec])
		}
	default:
		return "", valueErr("unsupported format spec %q", spec)
	}
	if n := runeLen(out); n < width {
		if align == 0 {
			align = '<'
			if isNumber(v) {
				align = '>'
			}
		}
		pad := width - n
		switch align {
		case '<':
			out += strings.Repeat(fill, pad)
		case '>':
			out = strings.Repeat(fill, pad) + out
		case '^':
			out = strings.Repeat(fill, pad/2) + out + strings.Repeat(fill, pad-pad/2)
		}
	}
	return out, nil
}

// percentFormat is Python's "fmt % args" for %s %r %d %i %f %x %%.
func (st *state) percentFormat(f string, arg any) (any, error) {
	var args []any
	var mapping *Map
	switch a := arg.(type) {
	case tuple:
		args = a
	case *Map:
		mapping = a
		args = []any{a}
	default:
		args = []any{a}
	}
	var sb strings.Builder
	ai := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			sb.WriteByte(c)
			continue
		}
		i++
		if i >= len(f) {
			return nil, valueErr("incomplete format")
		}
		var v any
		hasKey := false
		if f[i] == '(' && mapping != nil {
			j := strings.IndexByte(f[i:], ')')
			if j < 0 {
				return nil, valueErr("incomplete format key")
			}
			key := f[i+1 : i+j]
			x, ok := mapping.Get(key)
			if !ok {
				return nil, &Error{Kind: "KeyError", Msg: pyRepr(key)}
			}
			v, hasKey = x, true
			i += j + 1
		}
		start := i
		for i < len(f) && strings.IndexByte("-+ #0123456789.", f[i]) >= 0 {
			i++
		}
		if i >= len(f) {
			return nil, valueErr("incomplete format")
		}
		flags := f[start:i]
		verb := f[i]
		if verb == '%' {
			sb.WriteByte('%')
			continue
		}
		if !hasKey {
			if ai >= len(args) {
				return nil, typeErr("not enough arguments for format string")
			}
			v = args[ai]
			ai++
		}
		width := 0
		prec := -1
		left := strings.Contains(flags, "-")
		zero := strings.HasPrefix(strings.TrimLeft(flags, "-+ #"), "0")
		num := strings.TrimLeft(flags, "-+ #0")
		if k := strings.IndexByte(num, '.'); k >= 0 {
			prec, _ = strconv.Atoi(num[k+1:])
			num = num[:k]
		}
		width, _ = strconv.Atoi(num)
		if width > 1<<20 || prec > 100 {
			return nil, valueErr("format width too large")
		}
		var out string
		switch verb {
		case 's':
			var err error
			if out, err = st.str(v); err != nil {
				return nil, err
			}
			if prec >= 0 && runeLen(out) > prec {
				out = string([]rune(out)[:prec])
			}
		case 'r':
			var err error
			if out, err = st.repr(v); err != nil {
				return nil, err
			}
		case 'd', 'i':
			if i, ok := intVal(v); ok {
				out = strconv.Itoa(i)
			} else if fl, ok := v.(float64); ok {
				out = strconv.FormatFloat(math.Trunc(fl), 'f', 0, 64)
			} else {
				return nil, typeErr("%%%c format: a real number is required, not %s", verb, typeName(v))
			}
		case 'f', 'F', 'e', 'g':
			fl, ok := numVal(v)
			if !ok {
				return nil, typeErr("must be real number, not %s", typeName(v))
			}
			if prec < 0 {
				prec = 6
			}
			vb := verb
			if vb == 'F' {
				vb = 'f'
			}
			out = strconv.FormatFloat(fl, vb, prec, 64)
		case 'x', 'X', 'o':
			iv, ok := intVal(v)
			if !ok {
				return nil, typeErr("%%%c format: an integer is required, not %s", verb, typeName(v))
			}
			base := 16
			if verb == 'o' {
				base = 8
			}
			out = strconv.FormatInt(int64(iv), base)
			if verb == 'X' {
				out = strings.ToUpper(out)
			}
		default:
			return nil, valueErr("unsupported format character '%c'", verb)
		}
		if n := runeLen(out); n < width {
			switch {
			case left:
				out += strings.Repeat(" ", width-n)
			case zero && verb != 's' && verb != 'r':
				out = strings.Repeat("0", width-n) + out
			default:
				out = strings.Repeat(" ", width-n) + out
			}
		}
		sb.WriteString(out)
		if err := st.checkSize(sb.Len()); err != nil {
			return nil, err
		}
	}
	if mapping == nil && ai < len(args) {
		return nil, typeErr("not all arguments converted during string formatting")
	}
	return sb.String(), nil
}
