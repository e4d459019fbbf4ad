package grammar

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// node is one frame of a parser stack: the top frame's pos is the byte
// element to match next, a lower frame's pos the element to return to.
// Nodes are hash-consed per Grammar (equal stacks are the same pointer) and
// immutable except for the automaton's bookkeeping (mark, tr), which only
// the holder of the automaton's lock touches.
type node struct {
	pos  int32 // -1: the accepting state (the grammar is complete)
	id   uint32
	next *node
	mark uint32       // the automaton epoch that last added it to a set
	tr   *[256]*trans // memoized transitions, allocated on first use
}

// trans is the stack set one byte leads to from a node; shared, read-only.
type trans struct{ out []*node }

var noTrans = &trans{}

type nodeKey struct {
	pos  int32
	next *node
}

// state is an interned stack set: a state of the lazily built automaton
// whose transitions (tr) are filled as bytes are tried from it. nodes and
// accept are immutable; tr and mask are written once each, under the
// automaton's lock, and read without it.
type state struct {
	nodes  []*node // sorted by id; the accepting node included when complete
	accept bool
	tr     [256]atomic.Pointer[state]
	mask   atomic.Pointer[[]uint64] // Mask's result here, kept for the first maxMasks states masked
}

// maxMasks bounds the masks a Grammar keeps (MaskWords words each: 16 KiB
// for a 128k vocabulary). Generation mostly loops through a few states
// (inside a string, a number, between values), so a kept mask is a copy.
const maxMasks = 64

// maxStacks bounds a parser state's stack set, and with it the work of a
// transition: a grammar so ambiguous (such as anyOf over many branches
// that share a long prefix) that more stacks are live at once refuses the
// byte that would lead there, so its masks stay cheap at the price of
// refusing such outputs.
const maxStacks = 2048

// automaton is a Grammar's parser states, built lazily and shared by all
// its matchers, so that a state (and its mask) computed for one request
// serves every other. mu guards everything but the states' tr and mask,
// which are read lock-free.
type automaton struct {
	mu     sync.Mutex
	g      *Grammar
	intern map[nodeKey]*node
	states map[string]*state
	dead   *state // the empty set
	accept *node
	start  *state
	epoch  uint32
	buf    []*node
	key    []byte
	masks  int // states holding a kept mask
}

func newAutomaton(g *Grammar) *automaton {
	a := &automaton{g: g, intern: make(map[nodeKey]*node), states: make(map[string]*state), accept: &node{pos: -1}}
	a.dead = &state{}
	for i := range a.dead.tr {
		a.dead.tr[i].Store(a.dead)
	}
	a.epoch++
	var out []*node
	for _, p := range g.starts[g.root] {
		a.expand(p, nil, &out)
	}
	a.start = a.state(out)
	return a
}

// Matcher walks a Grammar token by token. It is owned by one goroutine;
// the states it walks are the Grammar's, shared.
type Matcher struct {
	g     *Grammar
	v     *vocab
	a     *automaton
	cur   *state
	ended bool      // an end-of-generation token was accepted
	hist  []history // states before each accepted token, for Rollback

	levels []*state // Mask's per-depth states
}

type history struct {
	cur   *state
	ended bool
}

// NewMatcher returns a matcher at the start of g.
func (g *Grammar) NewMatcher() *Matcher {
	g.autoOnce.Do(func() { g.auto = newAutomaton(g) })
	return &Matcher{g: g, v: g.v, a: g.auto, cur: g.auto.start, levels: make([]*state, g.v.maxD+1)}
}

// state interns the stack set nodes (which it may reorder).
func (m *automaton) state(nodes []*node) *state {
	if len(nodes) == 0 {
		return m.dead
	}
	slices.SortFunc(nodes, func(a, b *node) int { return int(a.id) - int(b.id) })
	m.key = m.key[:0]
	for _, n := range nodes {
		m.key = append(m.key, byte(n.id), byte(n.id>>8), byte(n.id>>16), byte(n.id>>24))
	}
	if s := m.states[string(m.key)]; s != nil {
		return s
	}
	s := &state{nodes: slices.Clone(nodes), accept: slices.Contains(nodes, m.accept)}
	m.states[string(m.key)] = s
	return s
}

// next is the state byte b leads to from s, memoized on s.
func (m *Matcher) next(s *state, b byte) *state {
	if t := s.tr[b].Load(); t != nil {
		return t
	}
	m.a.mu.Lock()
	defer m.a.mu.Unlock()
	return m.a.next(s, b)
}

// next is Matcher.next with the lock held.
func (m *automaton) next(s *state, b byte) *state {
	if t := s.tr[b].Load(); t != nil {
		return t
	}
	out, inBuf := m.advance(s.nodes, b, m.buf)
	if inBuf {
		m.buf = out
	}
	if len(out) > maxStacks {
		out = out[:0] // too ambiguous: refused (stricter, never looser)
	}
	t := m.state(slices.Clone(out))
	s.tr[b].Store(t)
	return t
}

func (m *automaton) node(pos int32, next *node) *node {
	k := nodeKey{pos, next}
	if n := m.intern[k]; n != nil {
		return n
	}
	n := &node{pos: pos, next: next, id: uint32(len(m.intern) + 1)}
	m.intern[k] = n
	return n
}

func (m *automaton) add(n *node, out *[]*node) {
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
func (m *automaton) expand(pos int32, next *node, out *[]*node) {
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
func (m *automaton) step(n *node, b byte) *trans {
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
func (m *automaton) advance(set []*node, b byte, buf []*node) (out []*node, inBuf bool) {
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

// walk runs str's bytes from s; the dead state if the grammar rejects them.
func (m *Matcher) walk(s *state, str string) *state {
	for i := 0; i < len(str) && s != m.a.dead; i++ {
		s = m.next(s, str[i])
	}
	return s
}

// CanEnd reports whether the grammar is complete here: an end-of-generation
// token may come next.
func (m *Matcher) CanEnd() bool {
	return !m.ended && m.cur.accept
}

// Done reports whether nothing more may follow: the grammar is complete
// and no byte can extend it (or an end-of-generation token was accepted).
func (m *Matcher) Done() bool {
	return m.ended || (len(m.cur.nodes) == 1 && m.cur.accept)
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
	return s != "" && m.walk(m.cur, s) != m.a.dead
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
	m.cur = m.walk(m.cur, m.v.bytes[tok])
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
	if k := m.cur.mask.Load(); k != nil {
		copy(dst, *k)
		return
	}
	a := m.a
	a.mu.Lock()
	defer a.mu.Unlock()
	m.walkTrie(dst)
	if a.masks < maxMasks && m.cur.mask.Load() == nil {
		a.masks++
		k := slices.Clone(dst[:m.MaskWords()])
		m.cur.mask.Store(&k)
	}
}

// walkTrie sets dst's bits for the tokens allowed from the current state;
// the automaton's lock is held.
func (m *Matcher) walkTrie(dst []uint64) {
	v, a := m.v, m.a
	m.levels[0] = m.cur
	for i := 0; i < len(v.tb); {
		d := v.td[i]
		s := a.next(m.levels[d-1], v.tb[i])
		if s == a.dead {
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
