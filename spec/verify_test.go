package spec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluice-llm/sluice/sample"
)

func TestVerifyGreedy(t *testing.T) {
	target := []int32{5, 6, 7, 8, 9} // argmax at positions 0..4
	argmax := func(calls *[]int) func(i int) int32 {
		return func(i int) int32 {
			*calls = append(*calls, i)
			return target[i]
		}
	}
	for _, c := range []struct {
		draft []int32
		acc   int
		next  int32
	}{
		{nil, 0, 5},
		{[]int32{1}, 0, 5},
		{[]int32{5}, 1, 6},
		{[]int32{5, 6, 7}, 3, 8},
		{[]int32{5, 6, 1, 8}, 2, 7},
		{[]int32{5, 6, 7, 8}, 4, 9},
		{[]int32{9, 6, 7, 8}, 0, 5},
	} {
		var calls []int
		acc, next := VerifyGreedy(c.draft, argmax(&calls))
		if acc != c.acc || next != c.next {
			t.Errorf("draft %v: got accepted %d next %d, want %d %d", c.draft, acc, next, c.acc, c.next)
		}
		want := []int{}
		for i := 0; i <= c.acc; i++ {
			want = append(want, i)
		}
		if !slices.Equal(calls, want) {
			t.Errorf("draft %v: argmax called at %v, want %v", c.draft, calls, want)
		}
	}
}

// markov is a toy language model over a small vocabulary: the next token's
// distribution depends only on the previous token.
type markov [][]float64

func randomMarkov(r *rand.Rand, v int, zeroFrac float64) markov {
	m := make(markov, v)
	for a := range m {
		m[a] = make([]float64, v)
		z := 0.0
		for b := range m[a] {
			if r.Float64() < zeroFrac && b != a { // keep at least one positive entry
				continue
			}
			m[a][b] = math.Exp(2 * r.NormFloat64())
			z += m[a][b]
		}
		for b := range m[a] {
			m[a][b] /= z
		}
	}
	return m
}

func (m markov) row(prev int32, dst []float32) []float32 {
	for b, p := range m[prev] {
		dst[b] = float32(p)
	}
	return dst
}

// specTrial generates tokens after ctxTok with k drafts per step until at
// least two are emitted, and returns the first two. q nil means the draft
// is deterministic: point proposals from det.
func specTrial(p, q markov, det func(prev int32) int32, ctxTok int32, k int, rng *RNG, dr *RNG,
	draft []int32, qbuf, pbuf []float32, emitted []int32) []int32 {
	v := len(p)
	emitted = emitted[:0]
	prev := ctxTok
	for len(emitted) < 2 {
		draft = draft[:0]
		x := prev
		for i := range k {
			if q == nil {
				x = det(x)
			} else {
				row := q.row(x, qbuf[i*v:(i+1)*v])
				x = sample.SampleFrom(row, dr.Float64())
			}
			draft = append(draft, x)
		}
		var qd []float32
		if q != nil {
			qd = qbuf[:k*v]
		}
		acc, next := VerifySampled(draft, qd, func(i int) []float32 {
			pr := prev
			if i > 0 {
				pr = draft[i-1]
			}
			return p.row(pr, pbuf)
		}, rng)
		if next < 0 {
			panic("no token")
		}
		emitted = append(emitted, draft[:acc]...)
		emitted = append(emitted, next)
		prev = next
	}
	return emitted
}

// TestRejectionSamplingDistribution is the exactness test: over many
// trials the first emitted token and the pair of the first two emitted
// tokens (the second drawn on the path the first opened, often inside the
// same verification) are distributed as the target's, by a chi-square
// test at the 0.999 level, whatever the draft distribution.
func TestRejectionSamplingDistribution(t *testing.T) {
	const v = 7
	trials := 200000
	if testing.Short() {
		trials = 40000
	}
	mk := rand.New(rand.NewPCG(7, 11))
	p := randomMarkov(mk, v, 0.25)
	cases := []struct {
		name string
		q    markov
		det  func(prev int32) int32
		k    int
	}{
		{name: "draft q, k=3", q: randomMarkov(mk, v, 0), k: 3},
		{name: "draft q with support gaps, k=4", q: randomMarkov(mk, v, 0.4), k: 4},
		{name: "draft q near p, k=2", q: nearby(p, 0.2, mk), k: 2},
		{name: "draft q, k=1", q: randomMarkov(mk, v, 0.2), k: 1},
		// Point masses, as from n-gram lookup: a fixed guess per context.
		{name: "point mass, k=3", det: func(prev int32) int32 { return (prev*3 + 1) % v }, k: 3},
		{name: "point mass on target argmax, k=5", det: func(prev int32) int32 { return int32(argmaxF(p[prev])) }, k: 5},
	}
	const ctxTok = 2
	expFirst := p[ctxTok]
	expPair := make([]float64, v*v)
	for a := range v {
		for b := range v {
			expPair[a*v+b] = p[ctxTok][a] * p[a][b]
		}
	}
	for ci, c := range cases {
		rng := NewRNG(uint64(100 + ci))
		dr := NewRNG(uint64(200 + ci))
		first := make([]int, v)
		pair := make([]int, v*v)
		draft := make([]int32, 0, c.k)
		qbuf := make([]float32, c.k*v)
		pbuf := make([]float32, v)
		var em []int32
		for range trials {
			em = specTrial(p, c.q, c.det, ctxTok, c.k, &rng, &dr, draft, qbuf, pbuf, em)
			first[em[0]]++
			pair[em[0]*v+em[1]]++
		}
		s1, df1 := chi2(t, c.name+" first", first, expFirst, trials)
		s2, df2 := chi2(t, c.name+" pair", pair, expPair, trials)
		q1, q2 := chi2Quantile(0.999, df1), chi2Quantile(0.999, df2)
		t.Logf("%-34s first token chi2 = %6.2f (df %d, 0.999 quantile %.2f); first two chi2 = %6.2f (df %d, quantile %.2f)",
			c.name, s1, df1, q1, s2, df2, q2)
		if s1 > q1 {
			t.Errorf("%s: first token distribution differs from the target's: chi2 %.2f > %.2f", c.name, s1, q1)
		}
		if s2 > q2 {
			t.Errorf("%s: distribution of the first two tokens differs from the target's: chi2 %.2f > %.2f", c.name, s2, q2)
		}
	}
}

func nearby(p markov, eps float64, r *rand.Rand) markov {
	q := make(markov, len(p))
	for a := range p {
		q[a] = make([]float64, len(p[a]))
		z := 0.0
		for b := range p[a] {
			q[a][b] = p[a][b]*(1+eps*r.NormFloat64()) + 0.01
			q[a][b] = max(q[a][b], 0.001)
			z += q[a][b]
		}
		for b := range q[a] {
			q[a][b] /= z
		}
	}
	return q
}

func argmaxF(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// TestVerifierMatchesSampler runs Verifier with a real sample.Sampler whose
// settings include top-k, top-p, temperature and repetition and frequency
// penalties (so the target distribution at each position depends on the
// tokens accepted before it), and checks the first two emitted tokens
// against the distributions the Sampler itself gives.
func TestVerifierMatchesSampler(t *testing.T) {
	const v = 8
	trials := 200000
	if testing.Short() {
		trials = 40000
	}
	mk := rand.New(rand.NewPCG(3, 5))
	logits := make([][]float32, v) // logits row after each token
	for a := range logits {
		logits[a] = make([]float32, v)
		for b := range logits[a] {
			logits[a][b] = float32(1.5 * mk.NormFloat64())
		}
	}
	q := randomMarkov(mk, v, 0.2)
	params := sample.DefaultParams()
	params.Temperature = 0.8
	params.TopK = 6
	params.TopP = 0.95
	params.RepetitionPenalty = 1.5
	params.FrequencyPenalty = 0.7
	params.Seed, params.HasSeed = 42, true
	prompt := []int32{1, 2, 3}
	const ctxTok = 3

	newSampler := func() *sample.Sampler {
		s, err := sample.New(params, v)
		if err != nil {
			t.Fatal(err)
		}
		s.AcceptPrompt(prompt)
		return s
	}
	// Expected: P(a) from a fresh sampler, P(b | a) after accepting a.
	expFirst64 := make([]float64, v)
	expPair := make([]float64, v*v)
	p0 := newSampler().Probs(logits[ctxTok], nil)
	for a := range v {
		expFirst64[a] = float64(p0[a])
		sa := newSampler()
		sa.Accept(int32(a))
		p1 := sa.Probs(logits[a], nil)
		for b := range v {
			expPair[a*v+b] = float64(p0[a]) * float64(p1[b])
		}
	}

	s := newSampler()
	ver := NewVerifier(s)
	if ver.Greedy() {
		t.Fatal("sampled params reported as greedy")
	}
	dr := NewRNG(9)
	prop := Proposal{Tokens: make([]int32, 0, 4), Q: make([]float32, 4*v)}
	first := make([]int, v)
	pair := make([]int, v*v)
	var out []int32
	for trial := range trials {
		s.Reset()
		s.AcceptPrompt(prompt)
		out = out[:0]
		prev := int32(ctxTok)
		k := 1 + trial%4
		for len(out) < 2 {
			prop.Tokens, prop.Sampled = prop.Tokens[:0], true
			x := prev
			for i := range k {
				row := q.row(x, prop.Q[i*v:(i+1)*v])
				x = sample.SampleFrom(row, dr.Float64())
				prop.Tokens = append(prop.Tokens, x)
			}
			draft := prop.Tokens
			var err error
			var acc int
			before := len(out)
			out, acc, err = ver.Verify(s, draft, prop.Dists(), func(i int) []float32 {
				if i == 0 {
					return logits[prev]
				}
				return logits[draft[i-1]]
			}, out)
			if err != nil {
				t.Fatal(err)
			}
			if len(out)-before != acc+1 {
				t.Fatalf("emitted %d tokens for %d accepted", len(out)-before, acc)
			}
			prev = out[len(out)-1]
		}
		first[out[0]]++
		pair[out[0]*v+out[1]]++
	}
	s1, df1 := chi2(t, "first", first, expFirst64, trials)
	s2, df2 := chi2(t, "pair", pair, expPair, trials)
	q1, q2 := chi2Quantile(0.999, df1), chi2Quantile(0.999, df2)
	t.Logf("sampler with penalties: first token chi2 = %.2f (df %d, quantile %.2f); first two chi2 = %.2f (df %d, quantile %.2f)",
		s1, df1, q1, s2, df2, q2)
	if s1 > q1 || s2 > q2 {
		t.Errorf("emitted tokens are not distributed as the sampler's: chi2 %.2f (limit %.2f), %.2f (limit %.2f)", s1, q1, s2, q2)
	}
}

// TestVerifierGreedy checks the greedy path through a Sampler with a
// repetition penalty: the emitted tokens are what Sample would choose
// token by token.
func TestVerifierGreedy(t *testing.T) {
	const v = 6
	params := sample.DefaultParams()
	params.Temperature = 0
	params.RepetitionPenalty = 3
	s, err := sample.New(params, v)
	if err != nil {
		t.Fatal(err)
	}
	ver := NewVerifier(s)
	if !ver.Greedy() {
		t.Fatal("temperature 0 not reported as greedy")
	}
	// Every row prefers token 1, then 2: with the penalty, once 1 has
	// been emitted the argmax becomes 2, then 3 (1 and 2 penalised).
	row := []float32{0, 3, 2.5, 1.5, 0.5, 0}
	rows := func(int) []float32 { return row }
	out, acc, err := ver.Verify(s, []int32{1, 2, 4}, nil, rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acc != 2 || !slices.Equal(out, []int32{1, 2, 3}) {
		t.Fatalf("got %v (accepted %d), want [1 2 3] (accepted 2)", out, acc)
	}
	out, acc, err = ver.Verify(s, nil, nil, func(int) []float32 { return []float32{0, 0, 0, 0, 5, 0} }, out[:0])
	if err != nil || acc != 0 || !slices.Equal(out, []int32{4}) {
		t.Fatalf("no draft: got %v, %d, %v", out, acc, err)
	}
	inf := float32(math.Inf(-1))
	_, _, err = ver.Verify(s, nil, nil, func(int) []float32 { return []float32{inf, inf, inf, inf, inf, inf} }, out[:0])
	if err == nil {
		t.Fatal("all -Inf logits: no error")
	}
}

func TestVerifySampledEdgeCases(t *testing.T) {
	rng := NewRNG(1)
	// p one-hot on the draft: always accepted, whatever q.
	onehot := []float32{0, 1, 0}
	for range 1000 {
		acc, next := VerifySampled([]int32{1}, nil, func(i int) []float32 {
			return slices.Clone(onehot)
		}, &rng)
		if acc != 1 || next != 1 {
			t.Fatalf("one-hot target: accepted %d next %d", acc, next)
		}
	}
	// p zero on the draft: always rejected, and the replacement is never
	// the draft.
	for range 1000 {
		acc, next := VerifySampled([]int32{0}, []float32{0.9, 0.1, 0}, func(i int) []float32 {
			return []float32{0, 0.5, 0.5}
		}, &rng)
		if acc != 0 || next == 0 {
			t.Fatalf("zero-probability draft: accepted %d next %d", acc, next)
		}
	}
	// Out-of-vocabulary draft ids are rejected.
	acc, next := VerifySampled([]int32{7}, nil, func(i int) []float32 { return []float32{0.5, 0.5} }, &rng)
	if acc != 0 || next < 0 || next > 1 {
		t.Fatalf("out-of-range draft: accepted %d next %d", acc, next)
	}
	// No positive probability anywhere: -1.
	_, next = VerifySampled(nil, nil, func(i int) []float32 { return []float32{0, 0} }, &rng)
	if next != -1 {
		t.Fatalf("empty distribution: next %d, want -1", next)
	}
}

func TestVerifyNoAllocs(t *testing.T) {
	const v = 64
	params := sample.DefaultParams()
	params.Temperature = 0.7
	params.TopK = 20
	params.Seed, params.HasSeed = 1, true
	s, err := sample.New(params, v)
	if err != nil {
		t.Fatal(err)
	}
	ver := NewVerifier(s)
	r := rand.New(rand.NewPCG(1, 2))
	rows := make([][]float32, 5)
	for i := range rows {
		rows[i] = make([]float32, v)
		for j := range rows[i] {
			rows[i][j] = float32(r.NormFloat64())
		}
	}
	draft := []int32{3, 5, 7, 9}
	q := make([]float32, 4*v)
	for i := range q {
		q[i] = 1.0 / v
	}
	out := make([]int32, 0, 8)
	get := func(i int) []float32 { return rows[i] }
	allocs := testing.AllocsPerRun(200, func() {
		out, _, _ = ver.Verify(s, draft, q, get, out[:0])
		out, _, _ = ver.Verify(s, draft, nil, get, out[:0])
	})
	if allocs != 0 {
		t.Errorf("Verify allocates %.1f times per call", allocs)
	}
}
