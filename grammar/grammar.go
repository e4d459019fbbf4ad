// Package grammar is constrained decoding: a grammar (JSON Schema, any JSON
// object, or a choice of strings) compiled to a context-free grammar over
// bytes, and matchers that walk it token by token over a tokenizer's
// vocabulary. A Matcher says which tokens may come next (Mask, Allowed),
// advances with the token chosen (Advance), undoes tokens (Rollback) and
// says when the grammar is complete (CanEnd, Done).
//
// Design: the grammar is a set of rules, each a list of alternatives, each
// a sequence of byte classes and rule references, flattened into one
// element array. A parser state is a set of stacks of element positions
// (as in llama.cpp's grammar engine), each stack a hash-consed linked list,
// so equal stacks are equal pointers and a byte's transition from a stack
// is computed once and memoized on it. Masks walk a trie of the
// vocabulary's token bytes (built once per vocabulary) in preorder with
// the parser state, skipping every subtree whose prefix the grammar
// rejects, so a step never tests the whole vocabulary token by token from
// scratch; stack sets are interned as states of a lazily built automaton,
// and the masks of the first states masked are kept, so a state seen again
// (the inside of a string, a number) costs a copy.
//
// The automaton (stacks, states, transitions and kept masks) belongs to
// the Grammar and is shared by all its matchers, across goroutines: what
// one request computed serves the next. Known transitions and masks are
// read without locking; new ones are built under the Grammar's lock.
//
// A Grammar is safe for concurrent use; a Matcher belongs to one
// goroutine.
package grammar

import (
	"errors"
	"fmt"
	"sync"
)

// class is a set of bytes.
type class [4]uint64

func (c *class) has(b byte) bool { return c[b>>6]&(1<<(b&63)) != 0 }
func (c *class) add(lo, hi byte) {
	for b := int(lo); b <= int(hi); b++ {
		c[b>>6] |= 1 << (b & 63)
	}
}

// Element kinds.
const (
	elemByte = iota // match one byte of cls
	elemRef         // call rule
	elemEnd         // end of an alternative: return
)

type elem struct {
	kind uint8
	rule int32 // elemRef
	cls  int32 // elemByte: index into Grammar.classes
}

// sym is a grammar symbol while building: a byte class or a rule.
type sym struct {
	rule int32 // >= 0: a rule reference
	cls  class // when rule < 0
}

// builder collects rules; symbols refer to rules by index.
type builder struct {
	rules [][][]sym // rule -> alternatives -> symbols
	size  int       // symbols in all rules, bounded by maxElems
	err   error
}

// maxElems bounds a compiled grammar (repetition counts expand into rules).
const maxElems = 1 << 18

// ErrTooLarge is returned for grammars that expand past the size limit.
var ErrTooLarge = errors.New("grammar: the grammar is too large (repetition bounds such as maxLength or maxItems expand it)")

// newRule reserves a rule to be filled by setRule (for recursion).
func (b *builder) newRule() sym {
	b.rules = append(b.rules, nil)
	return sym{rule: int32(len(b.rules) - 1)}
}

func (b *builder) setRule(r sym, alts ...[]sym) {
	for _, a := range alts {
		b.size += len(a) + 1
	}
	if b.size > maxElems && b.err == nil {
		b.err = ErrTooLarge
	}
	b.rules[r.rule] = alts
}

// rule returns a new rule with alternatives alts.
func (b *builder) rule(alts ...[]sym) sym {
	r := b.newRule()
	b.setRule(r, alts...)
	return r
}

// bytes returns the symbols matching s exactly.
func bytesOf(s string) []sym {
	out := make([]sym, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = symRange(s[i], s[i])
	}
	return out
}

func symRange(pairs ...byte) sym {
	s := sym{rule: -1}
	for i := 0; i+1 < len(pairs); i += 2 {
		s.cls.add(pairs[i], pairs[i+1])
	}
	return s
}

func cat(parts ...[]sym) []sym {
	var out []sym
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// star is x repeated zero or more times (right-recursive: the matcher's
// tail calls keep its stacks flat).
func (b *builder) star(x []sym) sym {
	r := b.newRule()
	b.setRule(r, cat(x, []sym{r}), nil)
	return r
}

// opt is x or nothing.
func (b *builder) opt(x []sym) sym { return b.rule(x, nil) }

// rep is x repeated between lo and hi times (hi < 0: unbounded).
func (b *builder) rep(x []sym, lo, hi int) []sym {
	if n := max(lo, hi); n > 0 && n > (maxElems-b.size)/(len(x)+2) {
		b.err = ErrTooLarge // refused before building anything
		return nil
	}
	var out []sym
	for i := 0; i < lo; i++ {
		if b.size+len(out) > maxElems {
			b.err = ErrTooLarge
			return nil
		}
		out = append(out, x...)
	}
	if hi < 0 {
		return append(out, b.star(x))
	}
	// x? nested: (x (x (...)?)?)?
	var tail []sym
	for i := lo; i < hi; i++ {
		if b.err != nil {
			return nil
		}
		tail = []sym{b.opt(cat(x, tail))}
	}
	return append(out, tail...)
}

// Grammar is a compiled grammar: immutable, shareable across matchers and
// goroutines.
type Grammar struct {
	elems   []elem
	classes []class
	starts  [][]int32 // rule -> first element of each alternative
	root    int32
	v       *vocab

	autoOnce sync.Once
	auto     *automaton // parser states shared by the matchers, built lazily
}

// build flattens the builder's rules with root as the start rule and
// refuses left recursion (a rule reachable from itself without consuming
// a byte), which the matcher could not expand.
func (b *builder) build(root sym, v *vocab) (*Grammar, error) {
	if b.err != nil {
		return nil, b.err
	}
	if root.rule < 0 {
		root = b.rule([]sym{root})
	}
	g := &Grammar{root: root.rule, starts: make([][]int32, len(b.rules)), v: v}
	clsIdx := map[class]int32{}
	for r, alts := range b.rules {
		for _, alt := range alts {
			g.starts[r] = append(g.starts[r], int32(len(g.elems)))
			for _, s := range alt {
				if s.rule >= 0 {
					g.elems = append(g.elems, elem{kind: elemRef, rule: s.rule})
					continue
				}
				ci, ok := clsIdx[s.cls]
				if !ok {
					ci = int32(len(g.classes))
					clsIdx[s.cls] = ci
					g.classes = append(g.classes, s.cls)
				}
				g.elems = append(g.elems, elem{kind: elemByte, cls: ci})
			}
			g.elems = append(g.elems, elem{kind: elemEnd})
		}
	}
	if err := g.checkLeftRecursion(); err != nil {
		return nil, err
	}
	return g, nil
}

// nullable computes which rules derive the empty string.
func (g *Grammar) nullable() []bool {
	null := make([]bool, len(g.starts))
	for changed := true; changed; {
		changed = false
		for r, alts := range g.starts {
			if null[r] {
				continue
			}
			for _, p := range alts {
				if g.seqNullable(p, null) {
					null[r], changed = true, true
					break
				}
			}
		}
	}
	return null
}

func (g *Grammar) seqNullable(p int32, null []bool) bool {
	for ; ; p++ {
		switch e := g.elems[p]; e.kind {
		case elemEnd:
			return true
		case elemByte:
			return false
		default:
			if !null[e.rule] {
				return false
			}
		}
	}
}

func (g *Grammar) checkLeftRecursion() error {
	null := g.nullable()
	// left[r]: rules r may call before consuming a byte.
	left := make([][]int32, len(g.starts))
	for r, alts := range g.starts {
		for _, p := range alts {
			for ; g.elems[p].kind == elemRef; p++ {
				left[r] = append(left[r], g.elems[p].rule)
				if !null[g.elems[p].rule] {
					break
				}
			}
		}
	}
	state := make([]uint8, len(left)) // 0 new, 1 on path, 2 done
	var visit func(r int32) bool
	visit = func(r int32) bool {
		state[r] = 1
		for _, c := range left[r] {
			if state[c] == 1 || (state[c] == 0 && visit(c)) {
				return true
			}
		}
		state[r] = 2
		return false
	}
	for r := range left {
		if state[r] == 0 && visit(int32(r)) {
			return fmt.Errorf("grammar: a rule refers to itself before any text (left recursion, such as a $ref cycle that consumes nothing)")
		}
	}
	return nil
}
