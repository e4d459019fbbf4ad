package template

import (
	"strings"
)

const maxParseDepth = 500

type parser struct {
	toks      []token
	pos       int
	depth     int
	loopDepth int
	macros    []*macroDef // macros being parsed, innermost last
}

// Parse compiles a Jinja2 template source.
func Parse(src string) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, &Error{Kind: "InternalError", Msg: "parser failure"}
		}
	}()
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	body, _, err := p.parseBody(nil)
	if err != nil {
		return nil, err
	}
	return &Template{body: body}, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) peekAt(k int) token {
	if p.pos+k < len(p.toks) {
		return p.toks[p.pos+k]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tkEOF {
		p.pos++
	}
	return t
}

func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tkOp && t.s == s
}

func (p *parser) isName(s string) bool {
	t := p.peek()
	return t.kind == tkName && t.s == s
}

func (p *parser) errUnexpected(what string) error {
	t := p.peek()
	return syntaxErr(t.line, "unexpected %s, expected %s", t, what)
}

func (p *parser) expectOp(s string) error {
	if !p.isOp(s) {
		return p.errUnexpected("'" + s + "'")
	}
	p.next()
	return nil
}

func (p *parser) expectName() (token, error) {
	t := p.peek()
	if t.kind != tkName {
		return t, p.errUnexpected("a name")
	}
	p.next()
	return t, nil
}

func (p *parser) expectBlockEnd() error {
	if p.peek().kind != tkBlockEnd {
		return p.errUnexpected("end of statement block")
	}
	p.next()
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxParseDepth {
		return syntaxErr(p.peek().line, "template nesting too deep")
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// parseBody parses nodes until a block tag named in ends; it consumes "{%"
// and the tag name and returns the name. With no ends it parses to EOF.
func (p *parser) parseBody(ends []string) ([]node, string, error) {
	if err := p.enter(); err != nil {
		return nil, "", err
	}
	defer p.leave()
	var out []node
	for {
		t := p.peek()
		switch t.kind {
		case tkEOF:
			if len(ends) > 0 {
				return nil, "", syntaxErr(t.line, "unexpected end of template, expected '%s'", strings.Join(ends, "' or '"))
			}
			return out, "", nil
		case tkData:
			p.next()
			out = append(out, &textNode{s: t.s})
		case tkVarBegin:
			p.next()
			e, err := p.parseTuple(true, true)
			if err != nil {
				return nil, "", err
			}
			if p.peek().kind != tkVarEnd {
				return nil, "", p.errUnexpected("end of print statement")
			}
			p.next()
			out = append(out, &outputNode{e: e, line: t.line})
		case tkBlockBegin:
			nt := p.peekAt(1)
			if nt.kind != tkName {
				p.next()
				return nil, "", p.errUnexpected("a statement name")
			}
			for _, e := range ends {
				if e == nt.s {
					p.next()
					p.next()
					return out, nt.s, nil
				}
			}
			p.next()
			n, err := p.parseStatement()
			if err != nil {
				return nil, "", err
			}
			if n != nil {
				out = append(out, n)
			}
		default:
			return nil, "", p.errUnexpected("template data or a tag")
		}
	}
}

func (p *parser) parseStatement() (node, error) {
	t, _ := p.expectName()
	switch t.s {
	case "if":
		return p.parseIf(t.line)
	case "for":
		return p.parseFor(t.line)
	case "set":
		return p.parseSet(t.line)
	case "macro":
		return p.parseMacro(t.line)
	case "call":
		return p.parseCallBlock(t.line)
	case "filter":
		return p.parseFilterBlock(t.line)
	case "with":
		return p.parseWith(t.line)
	case "generation":
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, _, err := p.parseBody([]string{"endgeneration"})
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		return &withNode{body: body, line: t.line}, nil
	case "break", "continue":
		if p.loopDepth == 0 {
			return nil, syntaxErr(t.line, "'%s' outside of a loop", t.s)
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		if t.s == "break" {
			return &breakNode{line: t.line}, nil
		}
		return &continueNode{line: t.line}, nil
	}
	return nil, syntaxErr(t.line, "encountered unknown tag '%s'", t.s)
}

func (p *parser) parseIf(line int) (node, error) {
	n := &ifNode{line: line}
	for {
		cond, err := p.parseTuple(false, false)
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, end, err := p.parseBody([]string{"elif", "else", "endif"})
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, cond)
		n.bodies = append(n.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			if err := p.expectBlockEnd(); err != nil {
				return nil, err
			}
			els, _, err := p.parseBody([]string{"endif"})
			if err != nil {
				return nil, err
			}
			n.els = els
		}
		return n, p.expectBlockEnd()
	}
}

func (p *parser) parseFor(line int) (node, error) {
	n := &forNode{line: line}
	tg, err := p.parseAssignTarget(false)
	if err != nil {
		return nil, err
	}
	n.target = tg
	if !p.isName("in") {
		return nil, p.errUnexpected("'in'")
	}
	p.next()
	n.iter, err = p.parseTuple(false, false, "recursive")
	if err != nil {
		return nil, err
	}
	if p.isName("if") {
		p.next()
		n.cond, err = p.parseExpression(true)
		if err != nil {
			return nil, err
		}
	}
	if p.isName("recursive") {
		p.next()
		n.recursive = true
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	p.loopDepth++
	body, end, err := p.parseBody([]string{"endfor", "else"})
	p.loopDepth--
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		n.els, _, err = p.parseBody([]string{"endfor"})
		if err != nil {
			return nil, err
		}
	}
	return n, p.expectBlockEnd()
}

// parseAssignTarget parses a set/for target: name, (tuple of) names, and
// with withNS also name.attr.
func (p *parser) parseAssignTarget(withNS bool) (target, error) {
	line := p.peek().line
	first, err := p.parseTargetItem(withNS)
	if err != nil {
		return target{}, err
	}
	if !p.isOp(",") {
		return first, nil
	}
	tg := target{items: []target{first}, line: line}
	for p.isOp(",") {
		p.next()
		if p.isName("in") || p.isOp("=") || p.peek().kind == tkBlockEnd {
			break
		}
		it, err := p.parseTargetItem(false)
		if err != nil {
			return target{}, err
		}
		tg.items = append(tg.items, it)
	}
	return tg, nil
}

func (p *parser) parseTargetItem(withNS bool) (target, error) {
	t := p.peek()
	if t.kind == tkOp && t.s == "(" {
		p.next()
		if err := p.enter(); err != nil {
			return target{}, err
		}
		defer p.leave()
		tg := target{line: t.line}
		for !p.isOp(")") {
			if len(tg.items) > 0 {
				if err := p.expectOp(","); err != nil {
					return target{}, err
				}
				if p.isOp(")") {
					break
				}
			}
			it, err := p.parseTargetItem(false)
			if err != nil {
				return target{}, err
			}
			tg.items = append(tg.items, it)
		}
		p.next()
		if len(tg.items) == 0 {
			return target{}, syntaxErr(t.line, "cannot assign to an empty tuple")
		}
		return tg, nil
	}
	nt, err := p.expectName()
	if err != nil {
		return target{}, err
	}
	switch nt.s {
	case "true", "false", "none", "True", "False", "None":
		return target{}, syntaxErr(nt.line, "cannot assign to '%s'", nt.s)
	}
	tg := target{name: nt.s, line: nt.line}
	if withNS && p.isOp(".") && p.peekAt(1).kind == tkName {
		p.next()
		tg.attr = p.next().s
	}
	return tg, nil
}

func (p *parser) parseSet(line int) (node, error) {
	tg, err := p.parseAssignTarget(true)
	if err != nil {
		return nil, err
	}
	n := &setNode{target: tg, line: line}
	if p.isOp("=") {
		p.next()
		n.e, err = p.parseTuple(true, false)
		if err != nil {
			return nil, err
		}
		return n, p.expectBlockEnd()
	}
	if tg.items != nil {
		return nil, syntaxErr(line, "a block set needs a single name")
	}
	for p.isOp("|") {
		p.next()
		f, err := p.parseFilterCall(nil)
		if err != nil {
			return nil, err
		}
		n.filters = append(n.filters, f)
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	n.body, _, err = p.parseBody([]string{"endset"})
	if err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd()
}

func (p *parser) parseSignature(def *macroDef) error {
	if err := p.expectOp("("); err != nil {
		return err
	}
	for !p.isOp(")") {
		if len(def.params) > 0 {
			if err := p.expectOp(","); err != nil {
				return err
			}
			if p.isOp(")") {
				break
			}
		}
		nt, err := p.expectName()
		if err != nil {
			return err
		}
		var d expr
		if p.isOp("=") {
			p.next()
			d, err = p.parseExpression(true)
			if err != nil {
				return err
			}
		} else if len(def.defaults) > 0 && def.defaults[len(def.defaults)-1] != nil {
			return syntaxErr(nt.line, "non-default argument follows default argument")
		}
		def.params = append(def.params, nt.s)
		def.defaults = append(def.defaults, d)
	}
	p.next()
	return nil
}

func (p *parser) parseMacro(line int) (node, error) {
	nt, err := p.expectName()
	if err != nil {
		return nil, err
	}
	def := &macroDef{name: nt.s, line: line}
	if err := p.parseSignature(def); err != nil {
		return nil, err
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	saved := p.loopDepth
	p.loopDepth = 0
	p.macros = append(p.macros, def)
	def.body, _, err = p.parseBody([]string{"endmacro"})
	p.macros = p.macros[:len(p.macros)-1]
	p.loopDepth = saved
	if err != nil {
		return nil, err
	}
	if p.peek().kind == tkName && p.peek().s == def.name {
		p.next()
	}
	return &macroNode{m: def, line: line}, p.expectBlockEnd()
}

func (p *parser) parseCallBlock(line int) (node, error) {
	def := &macroDef{name: "caller", line: line}
	if p.isOp("(") {
		if err := p.parseSignature(def); err != nil {
			return nil, err
		}
	}
	e, err := p.parseExpression(true)
	if err != nil {
		return nil, err
	}
	call, ok := e.(*callExpr)
	if !ok {
		return nil, syntaxErr(line, "expected a call in the call block")
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	saved := p.loopDepth
	p.loopDepth = 0
	p.macros = append(p.macros, def)
	def.body, _, err = p.parseBody([]string{"endcall"})
	p.macros = p.macros[:len(p.macros)-1]
	p.loopDepth = saved
	if err != nil {
		return nil, err
	}
	return &callBlockNode{call: call, caller: def, line: line}, p.expectBlockEnd()
}

func (p *parser) parseFilterBlock(line int) (node, error) {
	n := &filterBlockNode{line: line}
	for {
		f, err := p.parseFilterCall(nil)
		if err != nil {
			return nil, err
		}
		n.filters = append(n.filters, f)
		if !p.isOp("|") {
			break
		}
		p.next()
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	var err error
	n.body, _, err = p.parseBody([]string{"endfilter"})
	if err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd()
}

func (p *parser) parseWith(line int) (node, error) {
	n := &withNode{line: line}
	for p.peek().kind != tkBlockEnd {
		if len(n.targets) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		tg, err := p.parseTargetItem(false)
		if err != nil {
			return nil, err
		}
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		v, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		n.targets = append(n.targets, tg)
		n.values = append(n.values, v)
	}
	p.next()
	var err error
	n.body, _, err = p.parseBody([]string{"endwith"})
	if err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd()
}

// ---- expressions ----

func (p *parser) isTupleEnd(extra []string) bool {
	t := p.peek()
	switch t.kind {
	case tkVarEnd, tkBlockEnd, tkEOF:
		return true
	case tkOp:
		return t.s == ")"
	case tkName:
		for _, e := range extra {
			if t.s == e {
				return true
			}
		}
	}
	return false
}

// parseTuple parses "a, b, c" (a tuple) or a single expression.
func (p *parser) parseTuple(withCondexpr, allowEmpty bool, extraEnds ...string) (expr, error) {
	line := p.peek().line
	var items []expr
	isTuple := false
	for {
		if len(items) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if p.isTupleEnd(extraEnds) || (withCondexpr == false && p.isName("if")) {
			break
		}
		e, err := p.parseExpression(withCondexpr)
		if err != nil {
			return nil, err
		}
		items = append(items, e)
		if p.isOp(",") {
			isTuple = true
		} else {
			break
		}
	}
	if !isTuple {
		if len(items) > 0 {
			return items[0], nil
		}
		if !allowEmpty {
			return nil, syntaxErr(line, "expected an expression, got %s", p.peek())
		}
	}
	return &listExpr{items: items, tuple: true}, nil
}

func (p *parser) parseExpression(withCondexpr bool) (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if withCondexpr {
		return p.parseCondexpr()
	}
	return p.parseOr()
}

func (p *parser) parseCondexpr() (expr, error) {
	line := p.peek().line
	e1, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.isName("if") {
		p.next()
		cond, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		var e3 expr
		if p.isName("else") {
			p.next()
			if err := p.enter(); err != nil {
				return nil, err
			}
			e3, err = p.parseCondexpr()
			p.leave()
			if err != nil {
				return nil, err
			}
		}
		e1 = &condExpr{cond: cond, a: e1, b: e3, line: line}
	}
	return e1, nil
}

func (p *parser) parseOr() (expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isName("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &logicExpr{and: false, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseAnd() (expr, error) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.isName("and") {
		p.next()
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &logicExpr{and: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseNot() (expr, error) {
	if p.isName("not") {
		t := p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op: "not", x: x, line: t.line}, nil
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	line := p.peek().line
	first, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	var ops []string
	var rest []expr
	for {
		t := p.peek()
		var op string
		switch {
		case t.kind == tkOp && (t.s == "==" || t.s == "!=" || t.s == "<" || t.s == "<=" || t.s == ">" || t.s == ">="):
			op = t.s
			p.next()
		case t.kind == tkName && t.s == "in":
			op = "in"
			p.next()
		case t.kind == tkName && t.s == "not" && p.peekAt(1).kind == tkName && p.peekAt(1).s == "in":
			op = "notin"
			p.next()
			p.next()
		}
		if op == "" {
			break
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
		rest = append(rest, r)
	}
	if len(ops) == 0 {
		return first, nil
	}
	return &compareExpr{first: first, ops: ops, rest: rest, line: line}, nil
}

func (p *parser) parseMath1() (expr, error) {
	l, err := p.parseConcat()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		t := p.next()
		r, err := p.parseConcat()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: t.s, l: l, r: r, line: t.line}
	}
	return l, nil
}

func (p *parser) parseConcat() (expr, error) {
	l, err := p.parseMath2()
	if err != nil {
		return nil, err
	}
	for p.isOp("~") {
		t := p.next()
		r, err := p.parseMath2()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "~", l: l, r: r, line: t.line}
	}
	return l, nil
}

func (p *parser) parseMath2() (expr, error) {
	l, err := p.parsePow()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		t := p.next()
		r, err := p.parsePow()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: t.s, l: l, r: r, line: t.line}
	}
	return l, nil
}

func (p *parser) parsePow() (expr, error) {
	l, err := p.parseUnary(true)
	if err != nil {
		return nil, err
	}
	for p.isOp("**") {
		t := p.next()
		r, err := p.parseUnary(true)
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "**", l: l, r: r, line: t.line}
	}
	return l, nil
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	t := p.peek()
	var x expr
	var err error
	if t.kind == tkOp && (t.s == "-" || t.s == "+") {
		p.next()
		inner, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		x = &unaryExpr{op: t.s, x: inner, line: t.line}
	} else {
		x, err = p.parsePrimary()
		if err != nil {
			return nil, err
		}
		x, err = p.parsePostfix(x)
		if err != nil {
			return nil, err
		}
	}
	if withFilter {
		return p.parseFilterExpr(x)
	}
	return x, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.peek()
	switch t.kind {
	case tkName:
		p.next()
		switch t.s {
		case "true", "True":
			return &constExpr{v: true}, nil
		case "false", "False":
			return &constExpr{v: false}, nil
		case "none", "None":
			return &constExpr{v: nil}, nil
		}
		if len(p.macros) > 0 {
			switch t.s {
			case "varargs":
				p.macros[len(p.macros)-1].usesVarargs = true
			case "kwargs":
				p.macros[len(p.macros)-1].usesKwargs = true
			}
		}
		return &nameExpr{name: t.s, line: t.line}, nil
	case tkString:
		p.next()
		s := t.s
		for p.peek().kind == tkString {
			s += p.next().s
		}
		return &constExpr{v: s}, nil
	case tkInt:
		p.next()
		return &constExpr{v: t.i}, nil
	case tkFloat:
		p.next()
		return &constExpr{v: t.f}, nil
	case tkOp:
		switch t.s {
		case "(":
			p.next()
			e, err := p.parseTuple(true, true)
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "[":
			p.next()
			l := &listExpr{}
			for !p.isOp("]") {
				if len(l.items) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("]") {
						break
					}
				}
				e, err := p.parseExpression(true)
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, e)
			}
			p.next()
			return l, nil
		case "{":
			p.next()
			d := &dictExpr{line: t.line}
			for !p.isOp("}") {
				if len(d.keys) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("}") {
						break
					}
				}
				k, err := p.parseExpression(true)
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.parseExpression(true)
				if err != nil {
					return nil, err
				}
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
			}
			p.next()
			return d, nil
		}
	}
	return nil, p.errUnexpected("an expression")
}

func (p *parser) parsePostfix(x expr) (expr, error) {
	for {
		t := p.peek()
		if t.kind != tkOp {
			return x, nil
		}
		switch t.s {
		case ".":
			p.next()
			nt := p.peek()
			switch nt.kind {
			case tkName:
				p.next()
				x = &attrExpr{x: x, name: nt.s, line: nt.line}
			case tkInt:
				p.next()
				x = &itemExpr{x: x, key: &constExpr{v: nt.i}, line: nt.line}
			default:
				return nil, p.errUnexpected("an attribute name")
			}
		case "[":
			var err error
			x, err = p.parseSubscript(x)
			if err != nil {
				return nil, err
			}
		case "(":
			var err error
			x, err = p.parseCall(x)
			if err != nil {
				return nil, err
			}
		default:
			return x, nil
		}
	}
}

func (p *parser) parseSubscript(x expr) (expr, error) {
	t := p.next() // [
	var parts []expr
	var slice *sliceExpr
	for !p.isOp("]") {
		if len(parts) > 0 || slice != nil {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
			if slice != nil {
				return nil, syntaxErr(t.line, "extended slicing is not supported")
			}
			if p.isOp("]") {
				break
			}
		}
		var start expr
		if !p.isOp(":") {
			e, err := p.parseExpression(true)
			if err != nil {
				return nil, err
			}
			if !p.isOp(":") {
				parts = append(parts, e)
				continue
			}
			start = e
		}
		if len(parts) > 0 {
			return nil, syntaxErr(t.line, "extended slicing is not supported")
		}
		p.next() // :
		slice = &sliceExpr{x: x, start: start, line: t.line}
		if !p.isOp("]") && !p.isOp(",") && !p.isOp(":") {
			e, err := p.parseExpression(true)
			if err != nil {
				return nil, err
			}
			slice.stop = e
		}
		if p.isOp(":") {
			p.next()
			if !p.isOp("]") && !p.isOp(",") {
				e, err := p.parseExpression(true)
				if err != nil {
					return nil, err
				}
				slice.step = e
			}
		}
	}
	p.next() // ]
	if slice != nil {
		return slice, nil
	}
	switch len(parts) {
	case 0:
		return nil, syntaxErr(t.line, "empty subscript")
	case 1:
		return &itemExpr{x: x, key: parts[0], line: t.line}, nil
	}
	return &itemExpr{x: x, key: &listExpr{items: parts, tuple: true}, line: t.line}, nil
}

// parseCallArgs parses "(args)" into c.
func (p *parser) parseCallArgs(c *callExpr) error {
	if err := p.expectOp("("); err != nil {
		return err
	}
	n := 0
	for !p.isOp(")") {
		if n > 0 {
			if err := p.expectOp(","); err != nil {
				return err
			}
			if p.isOp(")") {
				break
			}
		}
		n++
		switch {
		case p.isOp("*"):
			p.next()
			e, err := p.parseExpression(true)
			if err != nil {
				return err
			}
			c.starargs = e
		case p.isOp("**"):
			p.next()
			e, err := p.parseExpression(true)
			if err != nil {
				return err
			}
			c.starkw = e
		case p.peek().kind == tkName && p.peekAt(1).kind == tkOp && p.peekAt(1).s == "=":
			name := p.next().s
			p.next()
			e, err := p.parseExpression(true)
			if err != nil {
				return err
			}
			c.kwnames = append(c.kwnames, name)
			c.kwvals = append(c.kwvals, e)
		default:
			if len(c.kwnames) > 0 || c.starargs != nil || c.starkw != nil {
				return syntaxErr(p.peek().line, "positional argument follows keyword argument")
			}
			e, err := p.parseExpression(true)
			if err != nil {
				return err
			}
			c.args = append(c.args, e)
		}
	}
	p.next()
	return nil
}

func (p *parser) parseCall(fn expr) (expr, error) {
	c := &callExpr{fn: fn, line: p.peek().line}
	if err := p.parseCallArgs(c); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *parser) parseFilterExpr(x expr) (expr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.next()
			f, err := p.parseFilterCall(x)
			if err != nil {
				return nil, err
			}
			x = f
		case p.isName("is"):
			p.next()
			tx, err := p.parseTest(x)
			if err != nil {
				return nil, err
			}
			x = tx
		case p.isOp("("):
			c, err := p.parseCall(x)
			if err != nil {
				return nil, err
			}
			x = c
		default:
			return x, nil
		}
	}
}

func (p *parser) parseFilterCall(x expr) (*filterExpr, error) {
	nt, err := p.expectName()
	if err != nil {
		return nil, err
	}
	name := nt.s
	for p.isOp(".") && p.peekAt(1).kind == tkName {
		p.next()
		name += "." + p.next().s
	}
	f := &filterExpr{x: x, name: name, line: nt.line}
	if p.isOp("(") {
		c := &callExpr{}
		if err := p.parseCallArgs(c); err != nil {
			return nil, err
		}
		if c.starargs != nil || c.starkw != nil {
			return nil, syntaxErr(nt.line, "*args and **kwargs are not supported in filter calls")
		}
		f.args, f.kwnames, f.kwvals = c.args, c.kwnames, c.kwvals
	}
	return f, nil
}

func (p *parser) parseTest(x expr) (expr, error) {
	negate := false
	if p.isName("not") {
		p.next()
		negate = true
	}
	nt, err := p.expectName()
	if err != nil {
		return nil, err
	}
	name := nt.s
	for p.isOp(".") && p.peekAt(1).kind == tkName {
		p.next()
		name += "." + p.next().s
	}
	te := &testExpr{x: x, name: name, negate: negate, line: nt.line}
	t := p.peek()
	switch {
	case t.kind == tkOp && t.s == "(":
		c := &callExpr{}
		if err := p.parseCallArgs(c); err != nil {
			return nil, err
		}
		te.args = append(te.args, c.args...)
		te.args = append(te.args, c.kwvals...)
	case t.kind == tkString || t.kind == tkInt || t.kind == tkFloat ||
		(t.kind == tkOp && (t.s == "[" || t.s == "{")) ||
		(t.kind == tkName && t.s != "else" && t.s != "or" && t.s != "and" && t.s != "if" && t.s != "is" && t.s != "in" && t.s != "not"):
		a, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		a, err = p.parsePostfix(a)
		if err != nil {
			return nil, err
		}
		te.args = []expr{a}
	}
	return te, nil
}
