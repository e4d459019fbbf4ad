package spec

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func propose(t *testing.T, g *NGram, ctx []int32, k int) []int32 {
	t.Helper()
	var p Proposal
	g.Propose(ctx, k, &p)
	if p.Sampled {
		t.Fatal("n-gram proposal marked as sampled")
	}
	return p.Tokens
}

func newNGram(t testing.TB, minN, maxN int) *NGram {
	g, err := NewNGram(NGramConfig{MinN: minN, MaxN: maxN})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNGramCrafted(t *testing.T) {
	for _, c := range []struct {
		name       string
		minN, maxN int
		ctx        []int32
		k          int
		want       []int32
	}{
		{"no match", 1, 4, []int32{1, 2, 3, 4, 5}, 3, nil},
		{"empty context", 1, 4, nil, 3, nil},
		{"single token", 1, 4, []int32{7}, 3, nil},
		{"unigram", 1, 4, []int32{1, 2, 3, 1}, 2, []int32{2, 3}},
		{"k cap", 1, 4, []int32{1, 2, 3, 4, 5, 6, 1}, 3, []int32{2, 3, 4}},
		{"k zero", 1, 4, []int32{1, 2, 3, 1}, 0, nil},
		// 9 follows "3" most recently, but "2 3" (longer) is followed by 4.
		{"longest match wins", 1, 4, []int32{2, 3, 4, 0, 3, 9, 8, 2, 3}, 2, []int32{4, 0}},
		// "5 6" occurs twice; the most recent occurrence is followed by 8.
		{"most recent occurrence", 1, 4, []int32{5, 6, 7, 0, 5, 6, 8, 0, 5, 6}, 2, []int32{8, 0}},
		{"min n excludes short matches", 2, 4, []int32{1, 2, 3, 1}, 2, nil},
		{"max n caps match length", 1, 2, []int32{9, 1, 2, 5, 8, 1, 2, 6, 9, 1, 2}, 1, []int32{6}},
		// The continuation runs into the context's end and repeats.
		{"periodic", 1, 4, []int32{4, 1, 2, 1, 2}, 5, []int32{1, 2, 1, 2, 1}},
		{"constant run", 1, 4, []int32{3, 3, 3}, 4, []int32{3, 3, 3, 3}},
	} {
		g := newNGram(t, c.minN, c.maxN)
		if got := propose(t, g, c.ctx, c.k); !slices.Equal(got, c.want) {
			t.Errorf("%s: ctx %v k %d: got %v, want %v", c.name, c.ctx, c.k, got, c.want)
		}
	}
}

// bruteForce is the specification: for n from maxN down to minN, the
// latest e < len(ctx) with ctx[e-n:e] equal to the last n tokens.
func bruteForce(ctx []int32, minN, maxN, k int) []int32 {
	l := len(ctx)
	for n := min(maxN, l-1); n >= minN; n-- {
		for e := l - 1; e >= n; e-- {
			if slices.Equal(ctx[e-n:e], ctx[l-n:]) {
				return continuation(ctx, e, k, nil)
			}
		}
	}
	return nil
}

func TestNGramIncrementalMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for trial := range 60 {
		vocab := int32(2 + r.IntN(12))
		minN := 1 + r.IntN(3)
		maxN := minN + r.IntN(4)
		g := newNGram(t, minN, maxN)
		var ctx []int32
		var p Proposal
		for step := range 400 {
			// Append 1..4 tokens, sometimes copying an earlier span (like
			// quoted text), then propose.
			n := 1 + r.IntN(4)
			if len(ctx) > 8 && r.IntN(3) == 0 {
				s := r.IntN(len(ctx) - 4)
				ctx = append(ctx, ctx[s:s+n]...)
			} else {
				for range n {
					ctx = append(ctx, r.Int32N(vocab))
				}
			}
			k := r.IntN(7)
			g.Propose(ctx, k, &p)
			want := bruteForce(ctx, minN, maxN, k)
			if k == 0 {
				want = nil
			}
			if !slices.Equal(p.Tokens, want) && !(len(p.Tokens) == 0 && len(want) == 0) {
				t.Fatalf("trial %d step %d (n %d..%d, vocab %d, len %d, k %d): got %v, want %v",
					trial, step, minN, maxN, vocab, len(ctx), k, p.Tokens, want)
			}
		}
	}
}

func TestNGramReindexOnChange(t *testing.T) {
	g := newNGram(t, 1, 3)
	propose(t, g, []int32{1, 2, 3, 1}, 2)
	// A different, shorter context (a new request reusing the index).
	if got := propose(t, g, []int32{5, 6, 5}, 2); !slices.Equal(got, []int32{6, 5}) {
		t.Fatalf("after shrink: got %v", got)
	}
	// Same length, different last token.
	if got := propose(t, g, []int32{5, 6, 7}, 2); len(got) != 0 {
		t.Fatalf("after change: got %v, want none", got)
	}
	g.Reset()
	if got := propose(t, g, []int32{1, 2, 3, 1}, 2); !slices.Equal(got, []int32{2, 3}) {
		t.Fatalf("after Reset: got %v", got)
	}
}

func TestNGramConfig(t *testing.T) {
	for _, c := range []NGramConfig{{MinN: 3, MaxN: 2}, {MinN: -1}, {MaxN: MaxNGram + 1}} {
		if _, err := NewNGram(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	g, err := NewNGram(NGramConfig{MinN: 6})
	if err != nil || g.minN != 6 || g.maxN != 6 {
		t.Errorf("MinN 6 alone: %v, %d..%d", err, g.minN, g.maxN)
	}
}

func TestNGramNoAllocs(t *testing.T) {
	g := newNGram(t, 1, 4)
	r := rand.New(rand.NewPCG(2, 2))
	ctx := make([]int32, 0, 5000)
	for range 2000 {
		ctx = append(ctx, r.Int32N(50))
	}
	p := Proposal{Tokens: make([]int32, 0, 8)}
	g.Propose(ctx, 8, &p) // builds the index
	allocs := testing.AllocsPerRun(100, func() {
		ctx = append(ctx, ctx[len(ctx)-100:len(ctx)-98]...)
		g.Propose(ctx, 8, &p)
	})
	if allocs > 0.05 { // only table growth, amortised
		t.Errorf("Propose allocates %.2f times per call", allocs)
	}
}

func BenchmarkNGramPropose(b *testing.B) {
	g := newNGram(b, 1, 4)
	r := rand.New(rand.NewPCG(3, 3))
	base := make([]int32, 8192)
	for i := range base {
		base[i] = r.Int32N(32000)
	}
	p := Proposal{Tokens: make([]int32, 0, 8)}
	g.Propose(base[:4096], 8, &p)
	b.ResetTimer()
	n := 4096
	for i := 0; i < b.N; i++ {
		if n == len(base) {
			b.StopTimer()
			g.Reset()
			n = 4096
			g.Propose(base[:n], 8, &p)
			b.StartTimer()
		}
		n++
		g.Propose(base[:n], 8, &p)
	}
}
