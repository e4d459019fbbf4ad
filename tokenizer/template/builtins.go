package template

import (
	"fmt"
	"strings"
	"time"
)

func (st *state) applyTest(name string, v any, args []any) (bool, error) {
	v = unmark(v)
	for i, a := range args {
		args[i] = unmark(a)
	}
	need := func(n int) error {
		if len(args) < n {
			return typeErr("test '%s' needs %d argument(s)", name, n)
		}
		return nil
	}
	switch name {
	case "defined":
		return !isUndefined(v), nil
	case "undefined":
		return isUndefined(v), nil
	case "none":
		return v == nil, nil
	case "boolean":
		_, ok := v.(bool)
		return ok, nil
	case "true":
		b, ok := v.(bool)
		return ok && b, nil
	case "false":
		b, ok := v.(bool)
		return ok && !b, nil
	case "integer":
		_, ok := v.(int)
		return ok, nil
	case "float":
		_, ok := v.(float64)
		return ok, nil
	case "number":
		_, ok := numVal(v)
		return ok, nil
	case "string":
		_, ok := v.(string)
		return ok, nil
	case "mapping":
		_, ok := v.(*Map)
		return ok, nil
	case "iterable":
		switch v.(type) {
		case string, []any, tuple, *Map, undefined:
			return true, nil
		}
		return false, nil
	case "sequence":
		switch v.(type) {
		case string, []any, tuple, *Map:
			return true, nil
		}
		return false, nil
	case "callable":
		switch x := v.(type) {
		case *macro, *builtin, *boundMethod:
			return true, nil
		case *loopObj:
			return x.node != nil, nil
		}
		return false, nil
	case "sameas":
		if err := need(1); err != nil {
			return false, err
		}
		a := args[0]
		switch x := v.(type) {
		case nil, bool:
			return v == a, nil
		case int:
			y, ok := a.(int)
			return ok && x == y, nil
		case string:
			y, ok := a.(string)
			return ok && x == y, nil
		}
		return identical(v, a), nil
	case "eq", "equalto", "==":
		if err := need(1); err != nil {
			return false, err
		}
		return pyEqual(v, args[0]), nil
	case "ne", "!=":
		if err := need(1); err != nil {
			return false, err
		}
		return !pyEqual(v, args[0]), nil
	case "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=":
		if err := need(1); err != nil {
			return false, err
		}
		op := map[string]string{"lt": "<", "lessthan": "<", "le": "<=", "gt": ">", "greaterthan": ">", "ge": ">="}[name]
		if op == "" {
			op = name
		}
		return compareOp(op, v, args[0])
	case "in":
		if err := need(1); err != nil {
			return false, err
		}
		return pyContains(args[0], v)
	case "odd", "even":
		i, ok := intVal(v)
		if !ok {
			if u, isU := v.(undefined); isU {
				return false, u.err()
			}
			return false, typeErr("test '%s' needs an integer, not %s", name, typeName(v))
		}
		odd := i%2 != 0
		return odd == (name == "odd"), nil
	case "divisibleby":
		if err := need(1); err != nil {
			return false, err
		}
		r, err := intOp("%", mustInt(v), mustInt(args[0]))
		if err != nil {
			return false, err
		}
		return r == 0, nil
	case "lower":
		s, ok := v.(string)
		return ok && s == strings.ToLower(s), nil
	case "upper":
		s, ok := v.(string)
		return ok && s == strings.ToUpper(s), nil
	case "escaped":
		return false, nil
	case "filter":
		s, ok := v.(string)
		_, found := filters[s]
		return ok && found, nil
	case "test":
		s, ok := v.(string)
		return ok && knownTests[s], nil
	}
	return false, &Error{Kind: "TemplateAssertionError", Msg: fmt.Sprintf("no test named '%s'", name)}
}

func mustInt(v any) int {
	i, _ := intVal(v)
	if f, ok := v.(float64); ok {
		i = int(f)
	}
	return i
}

var knownTests = map[string]bool{}

func init() {
	for _, n := range strings.Fields("defined undefined none boolean true false integer float number string mapping iterable sequence callable sameas eq equalto == ne != lt lessthan < le <= gt greaterthan > ge >= in odd even divisibleby lower upper escaped filter test") {
		knownTests[n] = true
	}
}

// ---- globals ----

var globals map[string]any

func init() {
	globals = map[string]any{
		"range":           &builtin{name: "range", fn: gRange},
		"namespace":       &builtin{name: "namespace", fn: gNamespace},
		"dict":            &builtin{name: "dict", fn: gDict},
		"raise_exception": &builtin{name: "raise_exception", fn: gRaise},
		"strftime_now":    &builtin{name: "strftime_now", fn: gStrftimeNow},
		"joiner":          &builtin{name: "joiner", fn: gJoiner},
		"cycler":          &builtin{name: "cycler", fn: gCycler},
	}
}

func gRange(st *state, args []any, kw *Map) (any, error) {
	if kw.Len() > 0 {
		return nil, typeErr("range() takes no keyword arguments")
	}
	var ints []int
	for _, a := range args {
		i, ok := intVal(a)
		if !ok {
			return nil, typeErr("'%s' object cannot be interpreted as an integer", typeName(a))
		}
		ints = append(ints, i)
	}
	start, stop, step := 0, 0, 1
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	default:
		return nil, typeErr("range expected 1 to 3 arguments, got %d", len(ints))
	}
	if step == 0 {
		return nil, valueErr("range() arg 3 must not be zero")
	}
	var n int
	if step > 0 && stop > start {
		n = int((uint(stop-start) + uint(step) - 1) / uint(step))
	} else if step < 0 && start > stop {
		n = int((uint(start-stop) + uint(-step) - 1) / uint(-step))
	}
	if n > st.limits.MaxSteps || n < 0 {
		return nil, limitErr("range of %d items exceeds the iteration limit", n)
	}
	if err := st.work(n >> 2); err != nil {
		return nil, err
	}
	out := make([]any, n)
	for i := range out {
		out[i] = start + i*step
	}
	return out, nil
}

func gNamespace(st *state, args []any, kw *Map) (any, error) {
	ns := &namespace{attrs: NewMap()}
	for _, a := range args {
		m, ok := a.(*Map)
		if !ok {
			return nil, typeErr("namespace() positional argument must be a mapping")
		}
		for i, k := range m.keys {
			ns.attrs.Set(k, m.vals[i])
		}
	}
	kw.Range(func(k string, v any) bool {
		ns.attrs.Set(k, v)
		return true
	})
	return ns, nil
}

func gDict(st *state, args []any, kw *Map) (any, error) {
	m := NewMap()
	for _, a := range args {
		switch x := a.(type) {
		case *Map:
			for i, k := range x.keys {
				m.Set(k, x.vals[i])
			}
		default:
			items, err := st.iterate(a)
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				pair, ok := listLike(it)
				if !ok || len(pair) != 2 {
					return nil, valueErr("dictionary update sequence element has wrong length")
				}
				k, ok := unmark(pair[0]).(string)
				if !ok {
					return nil, typeErr("only string dict keys are supported")
				}
				m.Set(k, pair[1])
			}
		}
	}
	kw.Range(func(k string, v any) bool {
		m.Set(k, v)
		return true
	})
	return m, nil
}

func gRaise(st *state, args []any, kw *Map) (any, error) {
	msg := ""
	if len(args) > 0 {
		msg = pyStr(args[0])
	} else if v, ok := kw.Get("message"); ok {
		msg = pyStr(v)
	}
	return nil, &TemplateError{Message: msg}
}

func gStrftimeNow(st *state, args []any, kw *Map) (any, error) {
	a, err := bindArgs("strftime_now", args, kw, []string{"format"}, []any{req})
	if err != nil {
		return nil, err
	}
	f, ok := unmark(a[0]).(string)
	if !ok {
		return nil, typeErr("strftime() argument 1 must be str, not %s", typeName(a[0]))
	}
	return strftime(st.now(), f), nil
}

func gJoiner(st *state, args []any, kw *Map) (any, error) {
	a, err := bindArgs("joiner", args, kw, []string{"sep"}, []any{", "})
	if err != nil {
		return nil, err
	}
	used := false
	return &builtin{name: "joiner", fn: func(st *state, args []any, kw *Map) (any, error) {
		if !used {
			used = true
			return "", nil
		}
		return a[0], nil
	}}, nil
}

func gCycler(st *state, args []any, kw *Map) (any, error) {
	items := append([]any(nil), args...)
	if len(items) == 0 {
		return nil, typeErr("cycler needs at least one item")
	}
	pos := 0
	next := &builtin{name: "next", fn: func(st *state, args []any, kw *Map) (any, error) {
		v := items[pos]
		pos = (pos + 1) % len(items)
		return v, nil
	}}
	ns := &namespace{attrs: NewMap()}
	ns.attrs.Set("next", next)
	ns.attrs.Set("items", items)
	return ns, nil
}

var (
	shortDays   = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	longDays    = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	shortMonths = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	longMonths  = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

// strftime formats t like C's strftime in the C locale (what Python's
// datetime.now().strftime does on Linux), for a naive local time: %Z and %z
// are empty. The glibc flags "-" (no padding) and "_" (space padding) are
// supported.
func strftime(t time.Time, f string) string {
	var sb strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' || i+1 >= len(f) {
			sb.WriteByte(c)
			continue
		}
		i++
		pad := byte('0')
		if f[i] == '-' || f[i] == '_' || f[i] == '0' {
			switch f[i] {
			case '-':
				pad = 0
			case '_':
				pad = ' '
			}
			i++
			if i >= len(f) {
				break
			}
		}
		num := func(v, width int) {
			s := fmt.Sprint(v)
			for len(s) < width && pad != 0 {
				s = string(pad) + s
			}
			sb.WriteString(s)
		}
		hour12 := t.Hour() % 12
		if hour12 == 0 {
			hour12 = 12
		}
		switch f[i] {
		case 'a':
			sb.WriteString(shortDays[t.Weekday()])
		case 'A':
			sb.WriteString(longDays[t.Weekday()])
		case 'b', 'h':
			sb.WriteString(shortMonths[t.Month()-1])
		case 'B':
			sb.WriteString(longMonths[t.Month()-1])
		case 'c':
			sb.WriteString(fmt.Sprintf("%s %s %2d %02d:%02d:%02d %d", shortDays[t.Weekday()], shortMonths[t.Month()-1], t.Day(), t.Hour(), t.Minute(), t.Second(), t.Year()))
		case 'C':
			num(t.Year()/100, 2)
		case 'd':
			num(t.Day(), 2)
		case 'D':
			sb.WriteString(fmt.Sprintf("%02d/%02d/%02d", int(t.Month()), t.Day(), t.Year()%100))
		case 'e':
			if pad == '0' {
				pad = ' '
			}
			num(t.Day(), 2)
		case 'F':
			sb.WriteString(fmt.Sprintf("%d-%02d-%02d", t.Year(), int(t.Month()), t.Day()))
		case 'H':
			num(t.Hour(), 2)
		case 'I':
			num(hour12, 2)
		case 'j':
			num(t.YearDay(), 3)
		case 'k':
			if pad == '0' {
				pad = ' '
			}
			num(t.Hour(), 2)
		case 'l':
			if pad == '0' {
				pad = ' '
			}
			num(hour12, 2)
		case 'm':
			num(int(t.Month()), 2)
		case 'M':
			num(t.Minute(), 2)
		case 'n':
			sb.WriteByte('\n')
		case 'p':
			if t.Hour() < 12 {
				sb.WriteString("AM")
			} else {
				sb.WriteString("PM")
			}
		case 'r':
			sb.WriteString(fmt.Sprintf("%02d:%02d:%02d ", hour12, t.Minute(), t.Second()))
			if t.Hour() < 12 {
				sb.WriteString("AM")
			} else {
				sb.WriteString("PM")
			}
		case 'R':
			sb.WriteString(fmt.Sprintf("%02d:%02d", t.Hour(), t.Minute()))
		case 'S':
			num(t.Second(), 2)
		case 't':
			sb.WriteByte('\t')
		case 'T', 'X':
			sb.WriteString(fmt.Sprintf("%02d:%02d:%02d", t.Hour(), t.Minute(), t.Second()))
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			num(wd, 1)
		case 'w':
			num(int(t.Weekday()), 1)
		case 'x':
			sb.WriteString(fmt.Sprintf("%02d/%02d/%02d", int(t.Month()), t.Day(), t.Year()%100))
		case 'y':
			num(t.Year()%100, 2)
		case 'Y':
			num(t.Year(), 1)
		case 'G':
			y, _ := t.ISOWeek()
			num(y, 1)
		case 'V':
			_, w := t.ISOWeek()
			num(w, 2)
		case 'U':
			num((t.YearDay()+6-int(t.Weekday()))/7, 2)
		case 'W':
			num((t.YearDay()+6-(int(t.Weekday())+6)%7)/7, 2)
		case 'f':
			num(t.Nanosecond()/1000, 6)
		case 'z', 'Z':
		case '%':
			sb.WriteByte('%')
		default:
			sb.WriteByte('%')
			sb.WriteByte(f[i])
		}
	}
	return sb.String()
}
