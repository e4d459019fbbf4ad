package template

import (
	"fmt"
	"strings"
	"time"
)

// Template is a parsed template. It is immutable and safe for concurrent
// use by multiple goroutines.
type Template struct {
	body []node
}

// Limits bound the work one Execute may do. A template that exceeds one
// fails with an error wrapping ErrLimit; it never hangs or exhausts memory.
type Limits struct {
	MaxOutput int // bytes of output, and of any intermediate string or list
	MaxSteps  int // loop iterations, macro calls and filtered items together
	MaxDepth  int // nesting of macro calls and recursive loops
}

// maxDepthCap bounds Limits.MaxDepth so that deep recursion cannot
// exhaust the goroutine stack.
const maxDepthCap = 1000

// DefaultLimits are used when Execute gets no WithLimits option.
var DefaultLimits = Limits{MaxOutput: 32 << 20, MaxSteps: 5_000_000, MaxDepth: 100}

// Option configures Execute.
type Option func(*config)

type config struct {
	limits Limits
	now    func() time.Time
}

// WithLimits replaces DefaultLimits; zero fields keep their default.
func WithLimits(l Limits) Option {
	return func(c *config) {
		if l.MaxOutput > 0 {
			c.limits.MaxOutput = l.MaxOutput
		}
		if l.MaxSteps > 0 {
			c.limits.MaxSteps = l.MaxSteps
		}
		if l.MaxDepth > 0 {
			c.limits.MaxDepth = min(l.MaxDepth, maxDepthCap)
		}
	}
}

// WithNow sets the clock used by strftime_now (time.Now by default).
func WithNow(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

type state struct {
	limits Limits
	now    func() time.Time
	steps  int
	depth  int
}

func (st *state) step() error {
	st.steps++
	if st.steps > st.limits.MaxSteps {
		return limitErr("more than %d loop iterations or calls", st.limits.MaxSteps)
	}
	return nil
}

// checkSize fails when an intermediate value of n bytes or items would be
// larger than the output limit; building it is charged as work.
func (st *state) checkSize(n int) error {
	if n < 0 || n > st.limits.MaxOutput {
		return limitErr("value larger than %d bytes", st.limits.MaxOutput)
	}
	return st.work(n >> 8)
}

// work charges n units against MaxSteps, for operations whose cost grows
// with the size of their operands.
func (st *state) work(n int) error {
	st.steps += n
	if st.steps > st.limits.MaxSteps {
		return limitErr("more than %d loop iterations or calls (operations on large values count too)", st.limits.MaxSteps)
	}
	return nil
}

// repr is Python's repr(v), bounded by the output limit.
func (st *state) repr(v any) (string, error) {
	var sb strings.Builder
	writeReprLimit(&sb, v, 0, st.limits.MaxOutput)
	if err := st.checkSize(sb.Len()); err != nil {
		return "", err
	}
	return sb.String(), nil
}

// str is Python's str(v), bounded by the output limit.
func (st *state) str(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case markup:
		return string(x), nil
	case []any, tuple, *Map, *namespace:
		var sb strings.Builder
		writeReprLimit(&sb, x, 0, st.limits.MaxOutput)
		if err := st.checkSize(sb.Len()); err != nil {
			return "", err
		}
		return sb.String(), nil
	}
	return pyStr(v), nil
}

type writer struct {
	sb    strings.Builder
	limit int
}

func (w *writer) write(s string) error {
	if w.sb.Len()+len(s) > w.limit {
		return limitErr("output larger than %d bytes", w.limit)
	}
	w.sb.WriteString(s)
	return nil
}

type scope struct {
	parent *scope
	names  []string
	vals   []any
	m      map[string]any
}

func (s *scope) lookup(name string) (any, bool) {
	for sc := s; sc != nil; sc = sc.parent {
		for i := len(sc.names) - 1; i >= 0; i-- {
			if sc.names[i] == name {
				return sc.vals[i], true
			}
		}
		if sc.m != nil {
			if v, ok := sc.m[name]; ok {
				return v, true
			}
		}
	}
	return nil, false
}

func (s *scope) set(name string, v any) {
	if s.m != nil {
		s.m[name] = v
		return
	}
	for i := range s.names {
		if s.names[i] == name {
			s.vals[i] = v
			return
		}
	}
	s.names = append(s.names, name)
	s.vals = append(s.vals, v)
}

// Execute renders the template with vars. Values may be nil, bool, any Go
// integer or float type, string, []any, []string, *Map, map[string]any
// (keys sorted, since Go maps have no order) and nestings of these.
func (t *Template) Execute(vars map[string]any, opts ...Option) (out string, err error) {
	cfg := config{limits: DefaultLimits, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	st := &state{limits: cfg.limits, now: cfg.now}
	root := &scope{m: make(map[string]any, len(vars)+4)}
	for k, v := range vars {
		nv, err := normalize(v, 0)
		if err != nil {
			return "", err
		}
		root.m[k] = nv
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = "", &Error{Kind: "InternalError", Msg: fmt.Sprint("render failure: ", r)}
		}
	}()
	w := &writer{limit: cfg.limits.MaxOutput}
	if _, err := st.execBody(t.body, root, w); err != nil {
		return "", err
	}
	return w.sb.String(), nil
}

type ctl int

const (
	ctlNone ctl = iota
	ctlBreak
	ctlContinue
)

func (st *state) execBody(nodes []node, sc *scope, w *writer) (ctl, error) {
	for _, n := range nodes {
		switch n := n.(type) {
		case *textNode:
			if err := w.write(n.s); err != nil {
				return 0, err
			}
		case *outputNode:
			v, err := st.eval(n.e, sc)
			if err != nil {
				return 0, atLine(err, n.line)
			}
			s, err := st.str(v)
			if err == nil {
				err = w.write(s)
			}
			if err != nil {
				return 0, atLine(err, n.line)
			}
		case *ifNode:
			done := false
			for i, c := range n.conds {
				v, err := st.eval(c, sc)
				if err != nil {
					return 0, atLine(err, n.line)
				}
				if truthy(v) {
					done = true
					if c, err := st.execBody(n.bodies[i], sc, w); err != nil || c != ctlNone {
						return c, err
					}
					break
				}
			}
			if !done && n.els != nil {
				if c, err := st.execBody(n.els, sc, w); err != nil || c != ctlNone {
					return c, err
				}
			}
		case *forNode:
			v, err := st.eval(n.iter, sc)
			if err != nil {
				return 0, atLine(err, n.line)
			}
			if c, err := st.execFor(n, v, sc, w, 0); err != nil || c != ctlNone {
				return c, atLine(err, n.line)
			}
		case *setNode:
			if err := st.execSet(n, sc); err != nil {
				return 0, atLine(err, n.line)
			}
		case *macroNode:
			sc.set(n.m.name, &macro{def: n.m, closure: sc})
		case *callBlockNode:
			caller := &macro{def: n.caller, closure: sc}
			v, err := st.evalCall(n.call, sc, caller)
			if err != nil {
				return 0, atLine(err, n.line)
			}
			s, err := st.str(v)
			if err == nil {
				err = w.write(s)
			}
			if err != nil {
				return 0, atLine(err, n.line)
			}
		case *filterBlockNode:
			sub := &writer{limit: w.limit}
			if _, err := st.execBody(n.body, &scope{parent: sc}, sub); err != nil {
				return 0, err
			}
			var v any = sub.sb.String()
			for _, f := range n.filters {
				var err error
				v, err = st.evalFilter(f, v, sc)
				if err != nil {
					return 0, atLine(err, n.line)
				}
			}
			s, err := st.str(v)
			if err == nil {
				err = w.write(s)
			}
			if err != nil {
				return 0, atLine(err, n.line)
			}
		case *withNode:
			child := &scope{parent: sc}
			for i, tg := range n.targets {
				v, err := st.eval(n.values[i], sc)
				if err != nil {
					return 0, atLine(err, n.line)
				}
				if err := st.assign(tg, v, child); err != nil {
					return 0, atLine(err, n.line)
				}
			}
			if c, err := st.execBody(n.body, child, w); err != nil || c != ctlNone {
				return c, err
			}
		case *breakNode:
			return ctlBreak, nil
		case *continueNode:
			return ctlContinue, nil
		}
	}
	return ctlNone, nil
}

func (st *state) execSet(n *setNode, sc *scope) error {
	if n.e != nil {
		v, err := st.eval(n.e, sc)
		if err != nil {
			return err
		}
		return st.assign(n.target, v, sc)
	}
	sub := &writer{limit: st.limits.MaxOutput}
	if _, err := st.execBody(n.body, &scope{parent: sc}, sub); err != nil {
		return err
	}
	var v any = sub.sb.String()
	for _, f := range n.filters {
		var err error
		v, err = st.evalFilter(f, v, sc)
		if err != nil {
			return err
		}
	}
	return st.assign(n.target, v, sc)
}

func (st *state) assign(tg target, v any, sc *scope) error {
	if tg.items != nil {
		seq, err := st.iterate(v)
		if err != nil {
			return err
		}
		if len(seq) != len(tg.items) {
			if len(seq) > len(tg.items) {
				return valueErr("too many values to unpack (expected %d)", len(tg.items))
			}
			return valueErr("not enough values to unpack (expected %d, got %d)", len(tg.items), len(seq))
		}
		for i, it := range tg.items {
			if err := st.assign(it, seq[i], sc); err != nil {
				return err
			}
		}
		return nil
	}
	if tg.attr != "" {
		obj, _ := sc.lookup(tg.name)
		ns, ok := obj.(*namespace)
		if !ok {
			return &Error{Kind: "TemplateRuntimeError", Line: tg.line, Msg: "cannot assign attribute on non-namespace object"}
		}
		ns.attrs.Set(tg.attr, v)
		return nil
	}
	sc.set(tg.name, v)
	return nil
}

// loopObj is the "loop" variable inside a for loop.
type loopObj struct {
	items   []any
	index0  int
	depth0  int
	node    *forNode // for recursive loops
	scope   *scope
	last    []any
	changed bool
}

func (st *state) execFor(n *forNode, iterable any, sc *scope, w *writer, depth int) (ctl, error) {
	items, err := st.iterate(iterable)
	if err != nil {
		return 0, err
	}
	if n.cond != nil {
		var kept []any
		for _, it := range items {
			if err := st.step(); err != nil {
				return 0, err
			}
			tmp := &scope{parent: sc}
			if err := st.assign(n.target, it, tmp); err != nil {
				return 0, err
			}
			c, err := st.eval(n.cond, tmp)
			if err != nil {
				return 0, err
			}
			if truthy(c) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		if n.els != nil {
			return st.execBody(n.els, sc, w)
		}
		return ctlNone, nil
	}
	lp := &loopObj{items: items, depth0: depth}
	if n.recursive {
		lp.node, lp.scope = n, sc
	}
	for i, it := range items {
		if err := st.step(); err != nil {
			return 0, err
		}
		lp.index0 = i
		child := &scope{parent: sc}
		if err := st.assign(n.target, it, child); err != nil {
			return 0, err
		}
		child.set("loop", lp)
		c, err := st.execBody(n.body, child, w)
		if err != nil {
			return 0, err
		}
		if c == ctlBreak {
			break
		}
	}
	return ctlNone, nil
}

// iterate returns the items Python's iter() would yield.
func (st *state) iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, st.work(len(x) >> 4)
	case tuple:
		return x, st.work(len(x) >> 4)
	case *Map:
		if err := st.work(x.Len() >> 4); err != nil {
			return nil, err
		}
		out := make([]any, len(x.keys))
		for i, k := range x.keys {
			out[i] = k
		}
		return out, nil
	case markup:
		return st.iterate(string(x))
	case string:
		if err := st.checkSize(len(x)); err != nil {
			return nil, err
		}
		if err := st.work(len(x) >> 2); err != nil {
			return nil, err
		}
		out := make([]any, 0, len(x))
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case undefined:
		return nil, nil
	}
	return nil, typeErr("'%s' object is not iterable", typeName(v))
}

type macro struct {
	def     *macroDef
	closure *scope
	name    string
}

func (st *state) callMacro(m *macro, args []any, kw *Map, caller *macro) (any, error) {
	if err := st.step(); err != nil {
		return nil, err
	}
	st.depth++
	defer func() { st.depth-- }()
	if st.depth > st.limits.MaxDepth {
		return nil, limitErr("macro calls nested deeper than %d", st.limits.MaxDepth)
	}
	def := m.def
	sc := &scope{parent: m.closure}
	used := 0
	for i, name := range def.params {
		switch {
		case i < len(args):
			sc.set(name, args[i])
		default:
			if v, ok := kw.Get(name); ok {
				sc.set(name, v)
				used++
				continue
			}
			if def.defaults[i] != nil {
				v, err := st.eval(def.defaults[i], sc)
				if err != nil {
					return nil, err
				}
				sc.set(name, v)
				continue
			}
			sc.set(name, undefined{hint: fmt.Sprintf("parameter '%s' was not provided", name)})
		}
	}
	var extra []any
	if len(args) > len(def.params) {
		if !def.usesVarargs {
			return nil, typeErr("macro '%s' takes not more than %d argument(s)", def.name, len(def.params))
		}
		extra = args[len(def.params):]
	}
	sc.set("varargs", tuple(extra))
	kwargs := NewMap()
	if kw.Len() > used {
		for i, k := range kw.keys {
			isParam := false
			for _, p := range def.params {
				if p == k {
					isParam = true
					break
				}
			}
			if !isParam {
				if !def.usesKwargs {
					return nil, typeErr("macro '%s' takes no keyword argument '%s'", def.name, k)
				}
				kwargs.Set(k, kw.vals[i])
			}
		}
	}
	sc.set("kwargs", kwargs)
	if caller != nil {
		sc.set("caller", caller)
	}
	w := &writer{limit: st.limits.MaxOutput}
	if _, err := st.execBody(def.body, sc, w); err != nil {
		return nil, err
	}
	return w.sb.String(), nil
}

func (st *state) evalCall(n *callExpr, sc *scope, caller *macro) (any, error) {
	fn, err := st.eval(n.fn, sc)
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, len(n.args))
	for _, a := range n.args {
		v, err := st.eval(a, sc)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	if n.starargs != nil {
		v, err := st.eval(n.starargs, sc)
		if err != nil {
			return nil, err
		}
		more, err := st.iterate(v)
		if err != nil {
			return nil, err
		}
		args = append(args, more...)
	}
	var kw *Map
	if len(n.kwnames) > 0 || n.starkw != nil {
		kw = NewMap()
		for i, name := range n.kwnames {
			v, err := st.eval(n.kwvals[i], sc)
			if err != nil {
				return nil, err
			}
			kw.Set(name, v)
		}
		if n.starkw != nil {
			v, err := st.eval(n.starkw, sc)
			if err != nil {
				return nil, err
			}
			m, ok := v.(*Map)
			if !ok {
				return nil, typeErr("argument after ** must be a mapping, not %s", typeName(v))
			}
			for i, k := range m.keys {
				kw.Set(k, m.vals[i])
			}
		}
	}
	v, err := st.call(fn, args, kw, caller)
	return v, atLine(err, n.line)
}

func (st *state) call(fn any, args []any, kw *Map, caller *macro) (any, error) {
	switch f := fn.(type) {
	case *macro:
		return st.callMacro(f, args, kw, caller)
	case *builtin:
		return f.fn(st, args, kw)
	case *boundMethod:
		return st.callMethod(f.recv, f.name, args, kw)
	case *loopObj:
		if f.node == nil {
			return nil, typeErr("the loop must be marked recursive to be called")
		}
		if len(args) != 1 {
			return nil, typeErr("loop() takes exactly one argument")
		}
		st.depth++
		defer func() { st.depth-- }()
		if st.depth > st.limits.MaxDepth {
			return nil, limitErr("recursive loop nested deeper than %d", st.limits.MaxDepth)
		}
		w := &writer{limit: st.limits.MaxOutput}
		if _, err := st.execFor(f.node, args[0], f.scope, w, f.depth0+1); err != nil {
			return nil, err
		}
		return w.sb.String(), nil
	case undefined:
		return nil, f.err()
	}
	return nil, typeErr("'%s' object is not callable", typeName(fn))
}

func (st *state) lookup(name string, sc *scope) any {
	if v, ok := sc.lookup(name); ok {
		return v
	}
	if g, ok := globals[name]; ok {
		return g
	}
	return undefined{hint: fmt.Sprintf("'%s' is undefined", name)}
}

func (st *state) eval(e expr, sc *scope) (any, error) {
	switch n := e.(type) {
	case *constExpr:
		return n.v, nil
	case *nameExpr:
		return st.lookup(n.name, sc), nil
	case *listExpr:
		vals := make([]any, len(n.items))
		for i, it := range n.items {
			v, err := st.eval(it, sc)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		if n.tuple {
			return tuple(vals), nil
		}
		return vals, nil
	case *dictExpr:
		m := NewMap()
		for i, k := range n.keys {
			kv, err := st.eval(k, sc)
			if err != nil {
				return nil, err
			}
			ks, ok := kv.(string)
			if !ok {
				return nil, &Error{Kind: "TypeError", Line: n.line, Msg: "only string dict keys are supported"}
			}
			v, err := st.eval(n.vals[i], sc)
			if err != nil {
				return nil, err
			}
			m.Set(ks, v)
		}
		return m, nil
	case *attrExpr:
		x, err := st.eval(n.x, sc)
		if err != nil {
			return nil, err
		}
		v, err := getAttr(x, n.name)
		return v, atLine(err, n.line)
	case *itemExpr:
		x, err := st.eval(n.x, sc)
		if err != nil {
			return nil, err
		}
		k, err := st.eval(n.key, sc)
		if err != nil {
			return nil, err
		}
		if s, ok := x.(string); ok && len(s) > 256 {
			if err := st.work(len(s) >> 8); err != nil {
				return nil, atLine(err, n.line)
			}
		}
		v, err := getItem(x, k)
		return v, atLine(err, n.line)
	case *sliceExpr:
		v, err := st.evalSlice(n, sc)
		return v, atLine(err, n.line)
	case *callExpr:
		return st.evalCall(n, sc, nil)
	case *filterExpr:
		x, err := st.eval(n.x, sc)
		if err != nil {
			return nil, err
		}
		return st.evalFilter(n, x, sc)
	case *testExpr:
		x, err := st.eval(n.x, sc)
		if err != nil {
			return nil, err
		}
		args := make([]any, len(n.args))
		for i, a := range n.args {
			args[i], err = st.eval(a, sc)
			if err != nil {
				return nil, err
			}
		}
		ok, err := st.applyTest(n.name, x, args)
		if err != nil {
			return nil, atLine(err, n.line)
		}
		return ok != n.negate, nil
	case *unaryExpr:
		x, err := st.eval(n.x, sc)
		if err != nil {
			return nil, err
		}
		v, err := unaryOp(n.op, x)
		return v, atLine(err, n.line)
	case *binExpr:
		l, err := st.eval(n.l, sc)
		if err != nil {
			return nil, err
		}
		r, err := st.eval(n.r, sc)
		if err != nil {
			return nil, err
		}
		v, err := st.binaryOp(n.op, l, r)
		return v, atLine(err, n.line)
	case *logicExpr:
		l, err := st.eval(n.l, sc)
		if err != nil {
			return nil, err
		}
		if truthy(l) != n.and {
			return l, nil
		}
		return st.eval(n.r, sc)
	case *compareExpr:
		l, err := st.eval(n.first, sc)
		if err != nil {
			return nil, err
		}
		for i, op := range n.ops {
			r, err := st.eval(n.rest[i], sc)
			if err != nil {
				return nil, err
			}
			if op == "in" || op == "notin" {
				if n, err := pyLen(r); err == nil {
					if err := st.work(n >> 4); err != nil {
						return nil, err
					}
				}
			}
			ok, err := compareOp(op, l, r)
			if err != nil {
				return nil, atLine(err, n.line)
			}
			if !ok {
				return false, nil
			}
			l = r
		}
		return true, nil
	case *condExpr:
		c, err := st.eval(n.cond, sc)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return st.eval(n.a, sc)
		}
		if n.b == nil {
			return undefined{hint: "the inline if-expression evaluated to false and no else section was defined"}, nil
		}
		return st.eval(n.b, sc)
	}
	return nil, fmt.Errorf("template: unknown expression %T", e)
}

func (st *state) evalFilter(f *filterExpr, x any, sc *scope) (any, error) {
	args := make([]any, len(f.args))
	for i, a := range f.args {
		v, err := st.eval(a, sc)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	var kw *Map
	if len(f.kwnames) > 0 {
		kw = NewMap()
		for i, name := range f.kwnames {
			v, err := st.eval(f.kwvals[i], sc)
			if err != nil {
				return nil, err
			}
			kw.Set(name, v)
		}
	}
	v, err := st.applyFilter(f.name, x, args, kw)
	return v, atLine(err, f.line)
}
