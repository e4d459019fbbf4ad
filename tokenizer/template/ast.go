package template

// Statement nodes.
type node interface{}

type textNode struct{ s string }

type outputNode struct {
	e    expr
	line int
}

type ifNode struct {
	conds  []expr
	bodies [][]node
	els    []node
	line   int
}

type forNode struct {
	target    target
	iter      expr
	cond      expr // optional "if" filter
	body, els []node
	recursive bool
	line      int
}

type setNode struct {
	target  target
	e       expr   // nil for a block set
	body    []node // block set
	filters []*filterExpr
	line    int
}

type macroNode struct {
	m    *macroDef
	line int
}

type callBlockNode struct {
	call   *callExpr
	caller *macroDef
	line   int
}

type filterBlockNode struct {
	filters []*filterExpr // applied in order; their .x is nil
	body    []node
	line    int
}

type withNode struct {
	targets []target
	values  []expr
	body    []node
	line    int
}

type breakNode struct{ line int }
type continueNode struct{ line int }

// target is the left side of set/for: a name, a namespace attribute, or a
// tuple of targets.
type target struct {
	name  string   // plain name
	attr  string   // when set, target is name.attr (namespace assignment)
	items []target // tuple unpacking
	line  int
}

type macroDef struct {
	name     string
	params   []string
	defaults []expr // aligned with params; nil where there is none
	body     []node
	line     int
	// whether the body mentions varargs / kwargs: without them, extra
	// arguments are an error, as in Jinja
	usesVarargs, usesKwargs bool
}

// Expression nodes.
type expr interface{}

type constExpr struct{ v any }

type nameExpr struct {
	name string
	line int
}

type listExpr struct {
	items []expr
	tuple bool
}

type dictExpr struct {
	keys, vals []expr
	line       int
}

type attrExpr struct {
	x    expr
	name string
	line int
}

type itemExpr struct {
	x, key expr
	line   int
}

type sliceExpr struct {
	x                 expr
	start, stop, step expr // nil when omitted
	line              int
}

type callExpr struct {
	fn       expr
	args     []expr
	kwnames  []string
	kwvals   []expr
	starargs expr
	starkw   expr
	line     int
}

type filterExpr struct {
	x       expr // nil inside {% filter %}
	name    string
	args    []expr
	kwnames []string
	kwvals  []expr
	line    int
}

type testExpr struct {
	x      expr
	name   string
	args   []expr
	negate bool
	line   int
}

type unaryExpr struct {
	op   string // "-", "+", "not"
	x    expr
	line int
}

type binExpr struct {
	op   string // + - * / // % ** ~
	l, r expr
	line int
}

type logicExpr struct {
	and  bool
	l, r expr
}

type compareExpr struct {
	first expr
	ops   []string // == != < <= > >= in notin
	rest  []expr
	line  int
}

type condExpr struct {
	cond, a, b expr // b may be nil
	line       int
}
