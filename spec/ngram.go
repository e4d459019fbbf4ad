package spec

import "fmt"

// NGramConfig configures prompt-lookup proposals.
type NGramConfig struct {
	// MinN and MaxN bound the length of the n-gram that must match the end
	// of the context; the longest matching length wins. Defaults 1 and 4;
	// MaxN is at most MaxNGram.
	MinN, MaxN int
}

// MaxNGram is the largest NGramConfig.MaxN.
const MaxNGram = 16

func (c NGramConfig) withDefaults() (NGramConfig, error) {
	if c.MinN == 0 {
		c.MinN = 1
	}
	if c.MaxN == 0 {
		c.MaxN = max(4, c.MinN)
	}
	if c.MinN < 1 || c.MaxN < c.MinN || c.MaxN > MaxNGram {
		return c, fmt.Errorf("spec: n-gram lengths must satisfy 1 <= min (%d) <= max (%d) <= %d", c.MinN, c.MaxN, MaxNGram)
	}
	return c, nil
}

// NGram proposes by prompt lookup: it finds the most recent earlier
// occurrence of the longest n-gram (MaxN down to MinN tokens) that ends
// the context, and proposes the tokens that followed it. Where the
// continuation runs into the end of the context it continues with the
// proposal itself, so a repeating pattern is extended periodically.
//
// One NGram serves one request: it keeps an index from every n-gram of the
// context to its latest end position, updated incrementally from the tokens
// appended since the previous call, so a step costs O(MaxN²) per new token
// plus O(MaxN·(MaxN+k)) for the lookup. The context must only grow between
// calls (prompt and accepted output); a context that is shorter, or whose
// last indexed token changed, is re-indexed from scratch. Not safe for
// concurrent use.
type NGram struct {
	minN, maxN int
	seen       int   // context length indexed
	last       int32 // ctx[seen-1] when seen > 0

	// Open addressing, linear probing: keys[i] == 0 is empty. vals[i] is
	// the end (exclusive) of the latest occurrence of the n-gram hashed to
	// keys[i]; it is always before the end of the indexed context, so the
	// token at vals[i] is a continuation.
	keys []uint64
	vals []int32
	used int
}

// NewNGram returns an empty index.
func NewNGram(cfg NGramConfig) (*NGram, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &NGram{minN: c.MinN, maxN: c.MaxN}, nil
}

// Reset forgets the indexed context, keeping the table's storage.
func (g *NGram) Reset() {
	clear(g.keys)
	g.used, g.seen, g.last = 0, 0, 0
}

// hashGram hashes the n tokens of gram (n is part of the key).
func hashGram(gram []int32) uint64 {
	h := uint64(len(gram)) * 0x9e3779b97f4a7c15
	for _, t := range gram {
		h ^= uint64(uint32(t))
		h *= 0xff51afd7ed558ccd
		h ^= h >> 32
	}
	h ^= h >> 29
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 32
	if h == 0 {
		h = 1
	}
	return h
}

func (g *NGram) insert(h uint64, end int32) {
	if 2*(g.used+1) > len(g.keys) {
		g.grow()
	}
	mask := uint64(len(g.keys) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch g.keys[i] {
		case 0:
			g.keys[i], g.vals[i] = h, end
			g.used++
			return
		case h:
			g.vals[i] = end
			return
		}
	}
}

func (g *NGram) grow() {
	n := max(256, 2*len(g.keys))
	keys, vals := g.keys, g.vals
	g.keys, g.vals = make([]uint64, n), make([]int32, n)
	mask := uint64(n - 1)
	for j, h := range keys {
		if h == 0 {
			continue
		}
		i := h & mask
		for g.keys[i] != 0 {
			i = (i + 1) & mask
		}
		g.keys[i], g.vals[i] = h, vals[j]
	}
}

func (g *NGram) lookup(h uint64) (int32, bool) {
	if len(g.keys) == 0 {
		return 0, false
	}
	mask := uint64(len(g.keys) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch g.keys[i] {
		case 0:
			return 0, false
		case h:
			return g.vals[i], true
		}
	}
}

// sync indexes ctx: afterwards every n-gram ctx[e-n:e] with e < len(ctx)
// (one that has a continuation) maps to its latest such e, up to hash
// collisions, which lookups detect by comparing tokens.
func (g *NGram) sync(ctx []int32) {
	if len(ctx) < g.seen || (g.seen > 0 && ctx[g.seen-1] != g.last) {
		g.Reset()
	}
	// Ends already indexed: 1..seen-1. Index ends seen..len(ctx)-1.
	for e := max(g.seen, 1); e < len(ctx); e++ {
		for n := g.minN; n <= g.maxN && n <= e; n++ {
			g.insert(hashGram(ctx[e-n:e]), int32(e))
		}
	}
	g.seen = len(ctx)
	if g.seen > 0 {
		g.last = ctx[g.seen-1]
	}
}

// Match returns the end e of the latest earlier occurrence of the longest
// n-gram (MinN ≤ n ≤ MaxN) that ends ctx, so that ctx[e] continues it, and
// n; ok is false when there is none. It updates the index like Propose.
func (g *NGram) Match(ctx []int32) (end, n int, ok bool) {
	g.sync(ctx)
	l := len(ctx)
	for n := min(g.maxN, l-1); n >= g.minN; n-- {
		suffix := ctx[l-n:]
		e, found := g.lookup(hashGram(suffix))
		if !found || int(e) < n || int(e) >= l || !equal(ctx[int(e)-n:e], suffix) {
			continue
		}
		return int(e), n, true
	}
	return 0, 0, false
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Propose implements Proposer. The proposal is deterministic (Sampled is
// false).
func (g *NGram) Propose(ctx []int32, k int, out *Proposal) {
	out.Tokens, out.Sampled = out.Tokens[:0], false
	if k <= 0 {
		g.sync(ctx)
		return
	}
	e, _, ok := g.Match(ctx)
	if !ok {
		return
	}
	out.Tokens = continuation(ctx, e, k, out.Tokens)
}

// continuation appends k tokens following position e of ctx to dst, where
// positions past the end of ctx continue with the tokens appended so far.
func continuation(ctx []int32, e, k int, dst []int32) []int32 {
	base := len(dst)
	for j := range k {
		i := e + j
		if i < len(ctx) {
			dst = append(dst, ctx[i])
		} else {
			dst = append(dst, dst[base+i-len(ctx)])
		}
	}
	return dst
}
