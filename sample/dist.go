package sample

import "math"

// cand is one token and its current (transformed) logit or weight.
type cand struct {
	id  int32
	val float32
}

var negInf = float32(math.Inf(-1))

// sanitize maps NaN to -Inf and +Inf to the largest float32.
func sanitize(v float32) float32 {
	if v <= math.MaxFloat32 {
		return v
	}
	if v != v {
		return negInf
	}
	return math.MaxFloat32
}

// fill copies logits into c (which must have the same length) as
// sanitised candidates in id order, and returns the largest value.
func fill(c []cand, logits []float32) float32 {
	c = c[:len(logits)]
	m := negInf
	for i, v := range logits {
		if !(v <= math.MaxFloat32) {
			v = sanitize(v)
		}
		c[i] = cand{int32(i), v}
		if v > m {
			m = v
		}
	}
	return m
}

// argmax returns the index of the largest value, the lowest index on ties;
// -1 when every value is -Inf.
func argmax(c []cand) int {
	best, m := -1, negInf
	for i := range c {
		if c[i].val > m {
			best, m = i, c[i].val
		}
	}
	return best
}

func maxOf(c []cand) float32 {
	m := negInf
	for i := range c {
		if c[i].val > m {
			m = c[i].val
		}
	}
	return m
}

// worse reports whether a ranks below b: a lower value, or an equal value
// and a higher id. It is a strict total order, so selections are exact and
// deterministic.
func worse(a, b cand) bool { return a.val < b.val || (a.val == b.val && a.id > b.id) }

// siftDown restores the heap property below i in a heap whose root is the
// worst element.
func siftDown(h []cand, i int) {
	n := len(h)
	x := h[i]
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && worse(h[r], h[l]) {
			m = r
		}
		if !worse(h[m], x) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = x
}

// selectTop permutes c so that c[:k] holds its k best elements sorted best
// first (0 < k <= len(c)). It keeps a k-element heap of the best seen so
// far: one pass over c, where most elements are rejected by a single
// comparison, plus O(k log k) per replacement, so O(len(c)) for small k.
func selectTop(c []cand, k int) {
	h := c[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	root := h[0]
	for j := k; j < len(c); j++ {
		x := c[j]
		if x.val < root.val || !worse(root, x) {
			continue
		}
		c[j] = root
		h[0] = x
		siftDown(h, 0)
		root = h[0]
	}
	for end := k - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		siftDown(h[:end], 0)
	}
}

// expNeg returns e^x for x <= 0, and 0 for -Inf, NaN or x below the
// float32 range. Range reduction x = n·ln2 + r, |r| <= ln2/2, and a degree-6
// Taylor polynomial in float32 give a relative error below 3e-7 (checked by
// TestExpNeg), ample for float32 weights and faster than math.Exp.
func expNeg(x float32) float32 {
	if !(x > -87.3) {
		return 0
	}
	const (
		log2e = 1.442695
		ln2hi = 0.693145751953125 // ln2 split so that n*ln2hi is exact
		ln2lo = 1.428606765330187045e-06
	)
	n := -float32(int32(0.5 - x*log2e)) // round to nearest; the operand is > 0
	r := x - n*ln2hi - n*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// sumExp returns Σ e^(v-m) over c in float64.
func sumExp(c []cand, m float32) float64 {
	z := 0.0
	for i := range c {
		z += float64(expNeg(c[i].val - m))
	}
	return z
}

// chain holds the truncation and temperature settings in the form the hot
// path uses.
type chain struct {
	greedy  bool
	topK    int // 0 = off, already clamped below the vocabulary size
	topP    float32
	minP    float32
	logMinP float32
	invTemp float32
}

func newChain(p *Params, vocab int) chain {
	ch := chain{
		greedy: p.Temperature == 0,
		topK:   p.TopK,
		topP:   p.TopP,
		minP:   p.MinP,
	}
	if ch.topK >= vocab {
		ch.topK = 0
	}
	if !(ch.topP > 0) || ch.topP > 1 { // a zero TopP from an unvalidated Params acts as off
		ch.topP = 1
	}
	if ch.minP > 0 {
		ch.logMinP = float32(math.Log(float64(ch.minP)))
	}
	if !ch.greedy {
		// Capped so that a denormal temperature cannot turn 0·invTemp into
		// NaN; at 1e30 it is already greedy in all but name.
		ch.invTemp = min(1/p.Temperature, 1e30)
	}
	return ch
}

// Top-p over many unsorted candidates avoids sorting them: one pass
// buckets every candidate by how far its logit lies below the maximum and
// sums the probability mass per bucket; the bucket where the cumulative mass
// crosses the target is the only one that needs sorting. Buckets are
// 1/topPScale logits wide and cover topPRange logits; the rest share the
// last bucket (their mass is below V·e^-32, so it is essentially never the
// crossing bucket, and it is still handled exactly if it is).
const (
	topPBuckets = 2048
	topPRange   = 32
	topPScale   = topPBuckets / topPRange
	// Up to this many candidates, top-p just sorts them.
	topPSortMax = 512
)

func bucketOf(v, m float32) int {
	d := (m - v) * topPScale // >= 0; +Inf or NaN never occur (v finite or -Inf)
	if !(d < topPBuckets-1) {
		return topPBuckets - 1
	}
	return int(d)
}

// truncate applies top-k, top-p and min-p to c, whose largest value is m
// (finite), and returns the survivors, a prefix of c. hist is top-p's
// scratch (topPBuckets long), needed only when top-p runs on more than
// topPSortMax candidates.
func (ch *chain) truncate(c []cand, m float32, hist []float64) []cand {
	sorted := false
	if ch.topK > 0 && ch.topK < len(c) {
		selectTop(c, ch.topK)
		c = c[:ch.topK]
		sorted = true
	}
	if ch.topP < 1 && len(c) > 1 {
		if !sorted && len(c) <= topPSortMax {
			selectTop(c, len(c))
			sorted = true
		}
		if sorted {
			target := float64(ch.topP) * sumExp(c, m)
			cum := 0.0
			for i := range c {
				cum += float64(expNeg(c[i].val - m))
				if cum >= target {
					c = c[:i+1]
					break
				}
			}
		} else {
			c = topPHist(c, m, ch.topP, hist)
		}
	}
	if ch.minP > 0 && len(c) > 1 {
		thr := m + ch.logMinP
		n := 0
		for i := range c {
			if c[i].val >= thr {
				c[n] = c[i]
				n++
			}
		}
		c = c[:n]
	}
	return c
}

// weigh replaces each value in c by its unnormalised probability
// e^((v-m)·invTemp) and returns their sum, accumulated in float64 over the
// float32 weights so that a later walk in the same order reaches exactly
// the same total.
func weigh(c []cand, m, invTemp float32) float64 {
	z := 0.0
	for i := range c {
		w := expNeg((c[i].val - m) * invTemp)
		c[i].val = w
		z += float64(w)
	}
	return z
}

// pick returns the candidate where the running sum of weights first
// exceeds u·z.
func pick(c []cand, z, u float64) int32 {
	target := u * z
	acc := 0.0
	last := int32(-1)
	for i := range c {
		w := float64(c[i].val)
		if w == 0 {
			continue
		}
		acc += w
		last = c[i].id
		if acc > target {
			return last
		}
	}
	return last // only reached through rounding when u is just below 1
}

// SampleFrom draws a token from a (not necessarily normalised) probability
// vector indexed by token id, given a uniform u in [0, 1): the first id at
// which the running sum of probs exceeds u times their total. Entries that
// are zero, negative or NaN are never chosen. It returns -1 when no entry
// is positive.
func SampleFrom(probs []float32, u float64) int32 {
	z := 0.0
	for _, p := range probs {
		if p > 0 && p <= math.MaxFloat32 {
			z += float64(p)
		}
	}
	if z == 0 {
		return -1
	}
	target := u * z
	acc := 0.0
	last := int32(-1)
	for i, p := range probs {
		if p > 0 && p <= math.MaxFloat32 {
			acc += float64(p)
			last = int32(i)
			if acc > target {
				return last
			}
		}
	}
	return last
}

// topPHist is top-p over unsorted candidates; see topPBuckets.
func topPHist(c []cand, m, topP float32, hist []float64) []cand {
	hist = hist[:topPBuckets]
	clear(hist)
	z := 0.0
	for i := range c {
		v := c[i].val
		w := float64(expNeg(v - m))
		z += w
		hist[bucketOf(v, m)] += w
	}
	target := float64(topP) * z
	cum, cross := 0.0, topPBuckets-1
	for b, w := range hist {
		if cum+w >= target {
			cross = b
			break
		}
		cum += w
	}
	// One three-way partition pass: buckets above the crossing one to the
	// front, the crossing bucket to the back, the rest (dropped) between.
	n, hi := 0, len(c)
	for i := 0; i < hi; {
		switch b := bucketOf(c[i].val, m); {
		case b < cross:
			c[i], c[n] = c[n], c[i]
			n++
			i++
		case b == cross:
			hi--
			c[i], c[hi] = c[hi], c[i]
		default:
			i++
		}
	}
	// Bring the crossing bucket next to the kept ones, sort it, and cut it
	// where the cumulative mass reaches the target.
	k := n
	for j := hi; j < len(c); j++ {
		c[k], c[j] = c[j], c[k]
		k++
	}
	edge := c[n:k]
	if len(edge) == 0 { // rounding left the target just out of reach
		return c[:max(n, 1)]
	}
	selectTop(edge, len(edge))
	for i := range edge {
		cum += float64(expNeg(edge[i].val - m))
		if cum >= target {
			return c[:n+i+1]
		}
	}
	return c[:k]
}
