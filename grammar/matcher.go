package grammar

import (
	"fmt"
	"slices"
)

// node is one frame of a parser stack: the top frame's pos is the byte
// element to match next, a lower frame's pos the element to return to.
// Nodes are hash-consed per matcher (equal stacks are the same pointer) and
// immutable except for the matcher's bookkeeping (mark, tr).
type node struct {
	pos  int32 // -1: the accepting state (the grammar is complete)
	next *node
	mark uint32       // the matcher epoch that last added it to a set
	tr   *[256]*trans // memoized transitions, allocated on first use
}

// trans is the stack set one byte leads to from a node; shared, read-only.
type trans struct{ out []*node }

var noTrans = &trans{}

type nodeKey struct {
	pos  int32
	next *node
}

// Matcher walks a Grammar token by token. It is owned by one goroutine.
type Matcher struct {
	g      *Grammar
	v      *vocab
	intern map[nodeKey]*node
	accept *node
	epoch  uint32

	cur   []*node   // the current stack set (the accepting node included when complete)
	ended bool      // an end-of-generation token was accepted
	hist  []history // states before each accepted token, for Rollback

	levels [][]*node // Mask's per-depth stack sets (views)
	bufs   [][]*node // Mask's per-depth buffers the views may use
}

type history struct {
	cur   []*node
	ended bool
}

// NewMatcher returns a matcher at the start of g.
func (g *Grammar) NewMatcher() *Matcher {
	m := &Matcher{g: g, v: g.v, intern: make(map[nodeKey]*node), accept: &node{pos: -1}}
	m.epoch++
	var out []*node
	for _, a := range g.starts[g.root] {
		m.expand(a, nil, &out)
	}
	m.cur = out
	m.levels = make([][]*node, g.v.maxD+1)
	m.bufs = make([][]*node, g.v.maxD+1)
	return m
}

func (m *Matcher) node(pos int32, next *node) *node {
	k := nodeKey{pos, next}
	if n := m.intern[k]; n != nil {
		return n
	}
	n := &node{pos: pos, next: next}
	m.intern[k] = n
	return n
}

func (m *Matcher) add(n *node, out *[]*node) {
	if n.mark != m.epoch {
		n.mark = m.epoch
		*out = append(*out, n)
	}
}

// expand adds to out the stacks that start matching at element pos with
// the return frames next: calls are followed into their rules and ends
// return, until every stack's top is a byte element (or the stack is
// empty: the accepting state). The grammar has no left recursion, so this
// ends.
func (m *Matcher) expand(pos int32, next *node, out *[]*node) {
	el := m.g.elems
	for {
		switch e := el[pos]; e.kind {
		case elemByte:
			m.add(m.node(pos, next), out)
			return
		case elemEnd:
			if next == nil {
				m.add(m.accept, out)
				return
			}
			pos, next = next.pos, next.next
		default:
			cont := next
			if el[pos+1].kind != elemEnd { // tail calls push no frame
				cont = m.node(pos+1, next)
			}
			for _, a := range m.g.starts[e.rule] {
				m.expand(a, cont, out)
			}
			return
		}
	}
}

// step returns the stacks byte b leads to from n, memoized on n.
func (m *Matcher) step(n *node, b byte) *trans {
	if n.tr == nil {
		if n.pos < 0 {
			return noTrans
		}
		n.tr = new([256]*trans)
	}
	if t := n.tr[b]; t != nil {
		return t
	}
	t := noTrans
	if m.g.classes[m.g.elems[n.pos].cls].has(b) {
		m.epoch++
		var out []*node
		m.expand(n.pos+1, n.next, &out)
		t = &trans{out: out}
	}
	n.tr[b] = t
	return t
}

// advance returns the stack set byte b leads to from set: either shared
// (read-only) or, when inBuf, built in buf.
func (m *Matcher) advance(set []*node, b byte, buf []*node) (out []*node, inBuf bool) {
	if len(set) == 1 {
		return m.step(set[0], b).out, false
	}
	buf = buf[:0]
	var tsArr [8]*trans
	ts := tsArr[:0]
	for _, n := range set {
		if t := m.step(n, b); len(t.out) > 0 {
			ts = append(ts, t)
		}
	}
	switch len(ts) {
	case 0:
		return nil, false
	case 1:
		return ts[0].out, false
	}
	m.epoch++
	for _, t := range ts {
		for _, n := range t.out {
			m.add(n, &buf)
		}
	}
	return buf, true
}

// walk runs s's bytes from set; nil if the grammar rejects them.
func (m *Matcher) walk(set []*node, s string) []*node {
	for i := 0; i < len(s) && len(set) > 0; i++ {
		set, _ = m.advance(set, s[i], nil)
	}
	return set
}

// CanEnd reports whether the grammar is complete here: an end-of-generation
// token may come next.
func (m *Matcher) CanEnd() bool {
	return !m.ended && slices.Contains(m.cur, m.accept)
}

// Done reports whether nothing more may follow: the grammar is complete
// and no byte can extend it (or an end-of-generation token was accepted).
func (m *Matcher) Done() bool {
	return m.ended || (len(m.cur) == 1 && m.cur[0] == m.accept)
}

func (m *Matcher) isEOG(tok int32) bool { return slices.Contains(m.v.eog, tok) }

// Allowed reports whether tok may come next.
func (m *Matcher) Allowed(tok int32) bool {
	if m.ended || tok < 0 || int(tok) >= m.v.size {
		return false
	}
	if m.isEOG(tok) {
		return m.CanEnd()
	}
	s := m.v.bytes[tok]
	return s != "" && len(m.walk(m.cur, s)) > 0
}

// Advance accepts tok. A token the grammar does not allow is an error and
// leaves the matcher as it was.
func (m *Matcher) Advance(tok int32) error {
	if !m.Allowed(tok) {
		if tok < 0 || int(tok) >= m.v.size {
			return fmt.Errorf("grammar: token %d is outside the vocabulary (size %d)", tok, m.v.size)
		}
		return fmt.Errorf("grammar: token %d (%q) is not allowed here", tok, m.v.bytes[tok])
	}
	m.hist = append(m.hist, history{m.cur, m.ended})
	if m.isEOG(tok) {
		m.ended = true
		return nil
	}
	m.cur = slices.Clone(m.walk(m.cur, m.v.bytes[tok]))
	return nil
}

// Rollback undoes the last n accepted tokens.
func (m *Matcher) Rollback(n int) error {
	if n < 0 || n > len(m.hist) {
		return fmt.Errorf("grammar: cannot roll back %d tokens; %d were accepted", n, len(m.hist))
	}
	h := m.hist[len(m.hist)-n]
	m.cur, m.ended = h.cur, h.ended
	m.hist = m.hist[:len(m.hist)-n]
	return nil
}

// Accepted returns the number of tokens accepted (and not rolled back).
func (m *Matcher) Accepted() int { return len(m.hist) }

// MaskWords returns the length of the bitset Mask fills for this vocabulary.
func (m *Matcher) MaskWords() int { return (m.v.size + 63) / 64 }

// Mask sets dst (a bitset of at least MaskWords words: token t is bit t%64
// of word t/64) to the tokens that may come next. It walks the vocabulary
// trie with the parser state and skips every subtree whose prefix the
// grammar rejects.
func (m *Matcher) Mask(dst []uint64) {
	clear(dst)
	if m.ended {
		return
	}
	v := m.v
	m.levels[0] = m.cur
	for i := 0; i < len(v.tb); {
		d := v.td[i]
		s, inBuf := m.advance(m.levels[d-1], v.tb[i], m.bufs[d])
		if inBuf {
			m.bufs[d] = s
		}
		if len(s) == 0 {
			i = int(v.skip[i])
			continue
		}
		m.levels[d] = s
		for _, t := range v.toks[v.tlo[i]:v.tlo[i+1]] {
			dst[t>>6] |= 1 << (t & 63)
		}
		i++
	}
	if m.CanEnd() {
		for _, t := range v.eog {
			dst[t>>6] |= 1 << (t & 63)
		}
	}
}
