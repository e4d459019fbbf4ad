package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"sort"
)

// Mutant is one planted change: the bytes [Start, End) of File replaced by
// New. Desc says what it does, for the survivor list.
type Mutant struct {
	File       string
	Line       int
	Start, End int
	New        string
	Desc       string
}

func (m Mutant) String() string { return fmt.Sprintf("%s:%d: %s", m.File, m.Line, m.Desc) }

// Apply returns src with m's change made.
func (m Mutant) Apply(src []byte) []byte {
	out := make([]byte, 0, len(src)+len(m.New))
	out = append(out, src[:m.Start]...)
	out = append(out, m.New...)
	return append(out, src[m.End:]...)
}

// flips maps an operator to the ones it is mutated into: comparisons to
// their negation and their off-by-one neighbour, boolean connectives to
// each other, + and - of one to each other.
var flips = map[token.Token][]token.Token{
	token.EQL:  {token.NEQ},
	token.NEQ:  {token.EQL},
	token.LSS:  {token.LEQ, token.GEQ},
	token.LEQ:  {token.LSS, token.GTR},
	token.GTR:  {token.GEQ, token.LEQ},
	token.GEQ:  {token.GTR, token.LSS},
	token.LAND: {token.LOR},
	token.LOR:  {token.LAND},
}

// Sites parses the Go file at path and returns its mutants: flipped
// comparisons and connectives, off-by-ones (x+1 ↔ x-1, and a constant
// 1 → 0 or 2 on either side of a comparison), dropped negations and
// removed call statements. Code in functions only; test files are the
// caller's to skip.
func Sites(path string) ([]Mutant, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []Mutant
	add := func(pos, end token.Pos, repl, desc string) {
		p := fset.Position(pos)
		out = append(out, Mutant{File: path, Line: p.Line, Start: p.Offset, End: fset.Position(end).Offset, New: repl, Desc: desc})
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				opEnd := n.OpPos + token.Pos(len(n.Op.String()))
				for _, to := range flips[n.Op] {
					add(n.OpPos, opEnd, to.String(), fmt.Sprintf("%s → %s", n.Op, to))
				}
				if isOne(n.Y) && (n.Op == token.ADD || n.Op == token.SUB) {
					to := map[token.Token]token.Token{token.ADD: token.SUB, token.SUB: token.ADD}[n.Op]
					add(n.OpPos, opEnd, to.String(), fmt.Sprintf("%s 1 → %s 1", n.Op, to))
				}
				if _, cmp := flips[n.Op]; cmp && n.Op != token.LAND && n.Op != token.LOR {
					for _, side := range []ast.Expr{n.X, n.Y} {
						if lit, ok := side.(*ast.BasicLit); ok && lit.Kind == token.INT && (lit.Value == "0" || lit.Value == "1") {
							to := map[string]string{"0": "1", "1": "0"}[lit.Value]
							add(lit.Pos(), lit.End(), to, fmt.Sprintf("constant %s → %s in a comparison", lit.Value, to))
						}
					}
				}
			case *ast.UnaryExpr:
				if n.Op == token.NOT {
					add(n.OpPos, n.OpPos+1, "", "drop !")
				}
			case *ast.ExprStmt:
				if call, ok := n.X.(*ast.CallExpr); ok && !isPanic(call) {
					add(n.Pos(), n.End(), "_ = 0", "remove call "+callName(call))
				}
			}
			return true
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

func isOne(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.INT && lit.Value == "1"
}

func isPanic(c *ast.CallExpr) bool {
	id, ok := c.Fun.(*ast.Ident)
	return ok && id.Name == "panic"
}

// callName is the called function as written: f, x.f or (expr).
func callName(c *ast.CallExpr) string {
	switch f := c.Fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok {
			return x.Name + "." + f.Sel.Name
		}
		return "…." + f.Sel.Name
	}
	return "(func)"
}
