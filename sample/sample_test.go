package sample

import (
	"errors"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
)

func mustNew(t testing.TB, p Params, vocab int) *Sampler {
	t.Helper()
	s, err := New(p, vocab)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func params(mod func(*Params)) Params {
	p := DefaultParams()
	p.HasSeed, p.Seed = true, 42
	if mod != nil {
		mod(&p)
	}
	return p
}

// softmax64 is the reference softmax of logits/temp in float64.
func softmax64(logits []float32, temp float64) []float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	out := make([]float64, len(logits))
	z := 0.0
	for i, v := range logits {
		out[i] = math.Exp((float64(v) - m) / temp)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

// testLogits returns deterministic pseudo-random logits: roughly normal
// with the given spread, plus a few boosted tokens like a real model's.
func testLogits(n int, seed uint64, spread float32, peaks int) []float32 {
	var r RNG
	r.Seed(seed)
	out := make([]float32, n)
	for i := range out {
		// sum of uniforms: cheap, roughly normal
		u := r.Float64() + r.Float64() + r.Float64() + r.Float64() - 2
		out[i] = float32(u) * spread
	}
	for i := 0; i < peaks; i++ {
		out[int(r.Uint64()%uint64(n))] += 12 - float32(i)
	}
	return out
}

func nonzero(p []float32) []int {
	var ids []int
	for i, v := range p {
		if v != 0 {
			ids = append(ids, i)
		}
	}
	return ids
}

func approx(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestGreedyArgmaxAndTies(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct {
		logits []float32
		want   int32
	}{
		{[]float32{1, 3, 3, 2}, 1},
		{[]float32{5, 5, 5}, 0},
		{[]float32{-1, -7, -0.5, -3}, 2},
		{[]float32{nan, 1, nan, 0.5}, 1},
		{[]float32{nan, float32(math.Inf(-1)), -100}, 2},
		{[]float32{1, inf, 2, inf}, 1},
	}
	for _, c := range cases {
		for _, withBias := range []bool{false, true} {
			p := params(func(p *Params) { p.Temperature = 0 })
			if withBias { // takes the general (copying) path, same answer
				p.LogitBias = map[int32]float32{int32(len(c.logits) - 1): 0}
			}
			s := mustNew(t, p, len(c.logits))
			res, err := s.Sample(c.logits)
			if err != nil || res.Token != c.want {
				t.Errorf("greedy(%v, bias=%v) = %d, %v; want %d", c.logits, withBias, res.Token, err, c.want)
			}
		}
	}
	// Bias creating a tie resolves to the lowest id.
	s := mustNew(t, params(func(p *Params) { p.Temperature = 0; p.LogitBias = map[int32]float32{3: 1} }), 4)
	if res, _ := s.Sample([]float32{0, 2, 1, 1}); res.Token != 1 {
		t.Errorf("bias tie: got %d, want 1", res.Token)
	}
	for _, temp := range []float32{0, 1} {
		s := mustNew(t, params(func(p *Params) { p.Temperature = temp }), 3)
		if _, err := s.Sample([]float32{nan, nan, float32(math.Inf(-1))}); !errors.Is(err, ErrNoFiniteLogits) {
			t.Errorf("T=%v all NaN: err = %v, want ErrNoFiniteLogits", temp, err)
		}
		if _, err := s.Sample([]float32{1, 2}); err == nil || !strings.Contains(err.Error(), "want 3") {
			t.Errorf("T=%v short row: err = %v", temp, err)
		}
	}
}

func TestNaNNeverChosen(t *testing.T) {
	nan := float32(math.NaN())
	logits := []float32{nan, 0, nan, 0.1, nan, -0.2, nan}
	s := mustNew(t, params(func(p *Params) { p.Temperature = 2; p.Logprobs = true; p.TopLogprobs = 7 }), len(logits))
	for i := 0; i < 2000; i++ {
		res, err := s.Sample(logits)
		if err != nil {
			t.Fatal(err)
		}
		if res.Token%2 == 0 {
			t.Fatalf("sampled NaN token %d", res.Token)
		}
		if math.IsNaN(float64(res.Logprob)) {
			t.Fatal("NaN logprob")
		}
	}
}

func TestTemperatureLimit(t *testing.T) {
	logits := []float32{0.5, 2, 1.9, -1, 1.95}
	for _, temp := range []float32{1e-3, 1e-6, 1e-40} {
		s := mustNew(t, params(func(p *Params) { p.Temperature = temp }), len(logits))
		for i := 0; i < 1000; i++ {
			if res, _ := s.Sample(logits); res.Token != 1 {
				t.Fatalf("T=%g draw %d: got %d, want argmax 1", temp, i, res.Token)
			}
		}
	}
	// The distribution tends to one-hot as T shrinks.
	prev := 0.0
	for _, temp := range []float32{1, 0.5, 0.1, 0.01, 0.005} {
		pr := Probs(logits, params(func(p *Params) { p.Temperature = temp }), nil)
		if float64(pr[1]) <= prev {
			t.Errorf("T=%g: p(argmax)=%v did not grow from %v", temp, pr[1], prev)
		}
		prev = float64(pr[1])
	}
	if prev < 0.99 {
		t.Errorf("T=0.005: p(argmax)=%v, want > 0.99", prev)
	}
	g := Probs(logits, params(func(p *Params) { p.Temperature = 0 }), nil)
	if !slices.Equal(g, []float32{0, 1, 0, 0, 0}) {
		t.Errorf("greedy Probs = %v, want one-hot at 1", g)
	}
}

func TestProbsMatchesSoftmax(t *testing.T) {
	logits := testLogits(300, 7, 2, 3)
	for _, temp := range []float32{0.3, 1, 1.7} {
		got := Probs(logits, params(func(p *Params) { p.Temperature = temp }), nil)
		want := softmax64(logits, float64(temp))
		sum := 0.0
		for i := range got {
			sum += float64(got[i])
			if !approx(float64(got[i]), want[i], 1e-6+1e-5*want[i]) {
				t.Fatalf("T=%g token %d: %v, want %v", temp, i, got[i], want[i])
			}
		}
		if !approx(sum, 1, 1e-5) {
			t.Errorf("T=%g: sum %v", temp, sum)
		}
	}
}

// topIDs returns the ids of the k largest logits (ties: lowest id).
func topIDs(logits []float32, k int) []int {
	ids := make([]int, len(logits))
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(a, b int) bool { return logits[ids[a]] > logits[ids[b]] })
	ids = ids[:k]
	sort.Ints(ids)
	return ids
}

func TestTopKKeepsExactlyK(t *testing.T) {
	logits := testLogits(5000, 3, 3, 0)
	for _, k := range []int{1, 2, 40, 257, 4999} {
		pr := Probs(logits, params(func(p *Params) { p.TopK = k }), nil)
		got := nonzero(pr)
		if want := topIDs(logits, k); !slices.Equal(got, want) {
			t.Fatalf("k=%d: kept %d tokens, want the %d largest", k, len(got), k)
		}
		// Renormalised softmax over the kept set.
		kept := make([]float32, 0, k)
		for _, id := range got {
			kept = append(kept, logits[id])
		}
		ref := softmax64(kept, 1)
		for j, id := range got {
			if !approx(float64(pr[id]), ref[j], 1e-6+1e-5*ref[j]) {
				t.Fatalf("k=%d token %d: %v want %v", k, id, pr[id], ref[j])
			}
		}
	}
	// Ties at the boundary: the lowest ids win, still exactly k.
	flat := make([]float32, 100)
	if got := nonzero(Probs(flat, params(func(p *Params) { p.TopK = 5 }), nil)); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("flat top-5 kept %v", got)
	}
	// Sampling never leaves the top k.
	s := mustNew(t, params(func(p *Params) { p.TopK = 3; p.Temperature = 2 }), len(logits))
	allowed := topIDs(logits, 3)
	for i := 0; i < 500; i++ {
		res, _ := s.Sample(logits)
		if !slices.Contains(allowed, int(res.Token)) {
			t.Fatalf("sampled %d outside top-3 %v", res.Token, allowed)
		}
	}
}

// refTopP returns the minimal set of most likely ids whose mass reaches p.
func refTopP(logits []float32, p float64) []int {
	pr := softmax64(logits, 1)
	ids := make([]int, len(logits))
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(a, b int) bool { return pr[ids[a]] > pr[ids[b]] })
	cum := 0.0
	for n, id := range ids {
		cum += pr[id]
		if cum >= p {
			ids = ids[:n+1]
			break
		}
	}
	sort.Ints(ids)
	return ids
}

func TestTopPMinimalSet(t *testing.T) {
	logits := make([]float32, 4)
	for i, pr := range []float64{0.5, 0.25, 0.15, 0.1} {
		logits[i] = float32(math.Log(pr))
	}
	for _, c := range []struct {
		p    float32
		want []int
	}{
		{0.3, []int{0}},
		{0.5 - 1e-4, []int{0}},
		{0.7, []int{0, 1}},
		{0.8, []int{0, 1, 2}},
		{0.95, []int{0, 1, 2, 3}},
		{1, []int{0, 1, 2, 3}},
	} {
		pr := Probs(logits, params(func(p *Params) { p.TopP = c.p }), nil)
		got := nonzero(pr)
		if !slices.Equal(got, c.want) {
			t.Errorf("top_p=%v kept %v, want %v", c.p, got, c.want)
			continue
		}
		mass := 0.0
		for _, id := range got {
			mass += []float64{0.5, 0.25, 0.15, 0.1}[id]
		}
		for _, id := range got {
			want := []float64{0.5, 0.25, 0.15, 0.1}[id] / mass
			if !approx(float64(pr[id]), want, 1e-6) {
				t.Errorf("top_p=%v token %d: %v want %v", c.p, id, pr[id], want)
			}
		}
	}
	// Large flat vocabulary: the set needs several selection rounds, and
	// after top-k: the sorted path.
	big := testLogits(20000, 11, 1, 0)
	for _, p := range []float64{0.05, 0.5, 0.9, 0.999} {
		got := nonzero(Probs(big, params(func(q *Params) { q.TopP = float32(p) }), nil))
		want := refTopP(big, p)
		if d := len(got) - len(want); d < -1 || d > 1 || (d == 0 && !slices.Equal(got, want)) {
			t.Errorf("top_p=%v on 20000 tokens: kept %d, want %d", p, len(got), len(want))
		}
	}
	// Peaked rows, spread-out rows, rows with -Inf masks and ties.
	for seed := uint64(1); seed <= 12; seed++ {
		row := testLogits(3000+int(seed)*500, seed, float32(seed%4)+0.5, int(seed%3)*3)
		if seed%2 == 0 {
			for i := 0; i < len(row); i += 3 {
				row[i] = float32(math.Inf(-1))
			}
		}
		if seed%3 == 0 {
			for i := range row {
				row[i] = float32(math.Round(float64(row[i]) * 4)) // many exact ties
			}
		}
		for _, p := range []float64{0.1, 0.6, 0.95} {
			got := nonzero(Probs(row, params(func(q *Params) { q.TopP = float32(p) }), nil))
			want := refTopP(row, p)
			if d := len(got) - len(want); d < -1 || d > 1 || (d == 0 && seed%3 != 0 && !slices.Equal(got, want)) {
				t.Errorf("seed %d top_p=%v: kept %d, want %d", seed, p, len(got), len(want))
			}
		}
	}
	got := nonzero(Probs(big, params(func(q *Params) { q.TopK = 1000; q.TopP = 0.5 }), nil))
	topk := make([]float32, len(big))
	for i := range topk {
		topk[i] = float32(math.Inf(-1))
	}
	for _, id := range topIDs(big, 1000) {
		topk[id] = big[id]
	}
	if want := refTopP(topk, 0.5); !slices.Equal(got, want) {
		t.Errorf("top_k=1000 top_p=0.5: kept %d, want %d", len(got), len(want))
	}
}

func TestMinP(t *testing.T) {
	base := []float64{0.5, 0.3, 0.1, 0.05, 0.05}
	logits := make([]float32, len(base))
	for i, pr := range base {
		logits[i] = float32(math.Log(pr))
	}
	for _, c := range []struct {
		minP float32
		want []int
	}{
		{0.05, []int{0, 1, 2, 3, 4}},
		{0.15, []int{0, 1, 2}},
		{0.5, []int{0, 1}},
		{0.7, []int{0}},
		{1, []int{0}},
	} {
		pr := Probs(logits, params(func(p *Params) { p.MinP = c.minP }), nil)
		if got := nonzero(pr); !slices.Equal(got, c.want) {
			t.Errorf("min_p=%v kept %v, want %v", c.minP, got, c.want)
		}
	}
	// min-p runs after top-p, measured against the most likely token.
	pr := Probs(logits, params(func(p *Params) { p.TopP = 0.85; p.MinP = 0.3 }), nil)
	if got := nonzero(pr); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("top_p=0.85 min_p=0.3 kept %v, want [0 1]", got)
	}
	// Temperature applies after min-p: it reshapes but does not re-admit.
	pr = Probs(logits, params(func(p *Params) { p.MinP = 0.15; p.Temperature = 2 }), nil)
	ref := softmax64(logits[:3], 2)
	for i, w := range ref {
		if !approx(float64(pr[i]), w, 1e-6) {
			t.Errorf("min_p then T=2: token %d = %v, want %v", i, pr[i], w)
		}
	}
}

// checkAdjusted checks that s's distribution for logits (temperature 1, no
// truncation) is the softmax of the expected adjusted logits want.
func checkAdjusted(t *testing.T, s *Sampler, logits, want []float32) {
	t.Helper()
	got := s.Probs(logits, nil)
	ref := softmax64(want, 1)
	for i := range ref {
		if !approx(float64(got[i]), ref[i], 1e-6) {
			t.Fatalf("token %d: p=%v, want %v (adjusted logits %v)", i, got[i], ref[i], want)
		}
	}
}

func TestRepetitionPenalty(t *testing.T) {
	logits := []float32{2, -2, 1, 0.5, 0}
	s := mustNew(t, params(func(p *Params) { p.RepetitionPenalty = 2 }), len(logits))
	checkAdjusted(t, s, logits, logits) // nothing recorded yet
	s.Accept(0)
	s.Accept(1)
	s.Accept(0) // counted once
	s.Accept(4) // zero logit stays zero
	checkAdjusted(t, s, logits, []float32{1, -4, 1, 0.5, 0})

	// Prompt tokens count for the repetition penalty.
	s.Reset()
	s.AcceptPrompt([]int32{2, 3})
	checkAdjusted(t, s, logits, []float32{2, -2, 0.5, 0.25, 0})

	// Window of 2: only the last two recorded tokens are penalised.
	s = mustNew(t, params(func(p *Params) { p.RepetitionPenalty = 2; p.PenaltyLastN = 2 }), len(logits))
	s.AcceptPrompt([]int32{0, 1, 2})
	s.Accept(2)
	checkAdjusted(t, s, logits, []float32{2, -2, 0.5, 0.5, 0}) // window [2 2]
	s.Accept(3)
	checkAdjusted(t, s, logits, []float32{2, -2, 0.5, 0.25, 0}) // window [2 3]

	// Whole context, and a penalty below 1 that boosts.
	s = mustNew(t, params(func(p *Params) { p.RepetitionPenalty = 0.5; p.PenaltyLastN = -1 }), len(logits))
	s.AcceptPrompt([]int32{0, 1, 2, 3})
	for i := 0; i < 100; i++ {
		s.Accept(4)
	}
	checkAdjusted(t, s, logits, []float32{4, -1, 2, 1, 0})

	// A window far larger than what is recorded costs nothing up front.
	s = mustNew(t, params(func(p *Params) { p.RepetitionPenalty = 2; p.PenaltyLastN = 1 << 30 }), len(logits))
	s.AcceptPrompt([]int32{0, 1})
	checkAdjusted(t, s, logits, []float32{1, -4, 1, 0.5, 0})

	// PenaltyLastN = 0 turns it off.
	s = mustNew(t, params(func(p *Params) { p.RepetitionPenalty = 2; p.PenaltyLastN = 0 }), len(logits))
	s.Accept(0)
	checkAdjusted(t, s, logits, logits)
}

func TestFrequencyAndPresencePenalty(t *testing.T) {
	logits := []float32{1, 1, 1, 1}
	s := mustNew(t, params(func(p *Params) { p.FrequencyPenalty = 0.5; p.PresencePenalty = 0.25 }), 4)
	s.AcceptPrompt([]int32{3, 3, 3}) // prompt tokens do not count
	s.Accept(0)
	s.Accept(0)
	s.Accept(1)
	checkAdjusted(t, s, logits, []float32{1 - 2*0.5 - 0.25, 1 - 0.5 - 0.25, 1, 1})

	// Negative penalties encourage repetition; counts are not windowed.
	s = mustNew(t, params(func(p *Params) { p.FrequencyPenalty = -0.1; p.PresencePenalty = -1; p.PenaltyLastN = 1 }), 4)
	for i := 0; i < 10; i++ {
		s.Accept(2)
	}
	s.Accept(1)
	checkAdjusted(t, s, logits, []float32{1, 1 + 0.1 + 1, 1 + 1 + 1, 1})

	// Combined with the repetition penalty, which applies first.
	s = mustNew(t, params(func(p *Params) { p.RepetitionPenalty = 2; p.FrequencyPenalty = 1 }), 4)
	s.Accept(0)
	checkAdjusted(t, s, []float32{3, 0, 0, 0}, []float32{3.0/2 - 1, 0, 0, 0})

	// Reset forgets the counts.
	s.Reset()
	checkAdjusted(t, s, []float32{3, 0, 0, 0}, []float32{3, 0, 0, 0})
}

func TestLogitBias(t *testing.T) {
	logits := []float32{0, 0, 0, 1}
	s := mustNew(t, params(func(p *Params) { p.LogitBias = map[int32]float32{2: 5, 3: -1.5} }), 4)
	checkAdjusted(t, s, logits, []float32{0, 0, 5, -0.5})

	// -100 bans in practice, +100 forces.
	s = mustNew(t, params(func(p *Params) { p.LogitBias = map[int32]float32{3: -100}; p.Temperature = 2 }), 4)
	for i := 0; i < 1000; i++ {
		if res, _ := s.Sample(logits); res.Token == 3 {
			t.Fatal("banned token sampled")
		}
	}
	s = mustNew(t, params(func(p *Params) { p.LogitBias = map[int32]float32{1: 100}; p.Temperature = 2 }), 4)
	for i := 0; i < 1000; i++ {
		if res, _ := s.Sample(logits); res.Token != 1 {
			t.Fatalf("forced token not sampled: got %d", res.Token)
		}
	}
	// Bias applies after penalties: a penalised token can be rescued.
	s = mustNew(t, params(func(p *Params) { p.RepetitionPenalty = 2; p.LogitBias = map[int32]float32{3: 1} }), 4)
	s.Accept(3)
	checkAdjusted(t, s, logits, []float32{0, 0, 0, 1.5})
	// The caller's map is not retained.
	m := map[int32]float32{0: 3}
	s = mustNew(t, params(func(p *Params) { p.LogitBias = m }), 4)
	m[0] = -3
	checkAdjusted(t, s, logits, []float32{3, 0, 0, 1})
}

func draws(s *Sampler, logits []float32, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		res, err := s.Sample(logits)
		if err != nil {
			panic(err)
		}
		out[i] = res.Token
	}
	return out
}

func TestSeedDeterminism(t *testing.T) {
	logits := testLogits(1000, 5, 1, 0)
	for _, mod := range []func(*Params){
		func(p *Params) {},
		func(p *Params) { p.TopK = 40 },
		func(p *Params) { p.TopP = 0.9; p.Temperature = 0.7 },
		func(p *Params) { p.MinP = 0.05; p.RepetitionPenalty = 1.3 },
	} {
		p := params(mod)
		a := draws(mustNew(t, p, len(logits)), logits, 1000)
		b := draws(mustNew(t, p, len(logits)), logits, 1000)
		if !slices.Equal(a, b) {
			t.Fatal("same seed gave different sequences")
		}
		p.Seed++
		c := draws(mustNew(t, p, len(logits)), logits, 1000)
		same := 0
		for i := range a {
			if a[i] == c[i] {
				same++
			}
		}
		if same > 500 {
			t.Errorf("seeds 42 and 43 agree on %d of 1000 draws", same)
		}
		// Reset replays the stream.
		s := mustNew(t, params(mod), len(logits))
		draws(s, logits, 10)
		s.Reset()
		if d := draws(s, logits, 1000); !slices.Equal(a, d) {
			t.Error("Reset did not replay the sequence")
		}
	}
	// Without a seed: a random one, reported by Seed and reproducible.
	p := params(nil)
	p.HasSeed = false
	s1, s2 := mustNew(t, p, len(logits)), mustNew(t, p, len(logits))
	if s1.Seed() == s2.Seed() {
		t.Error("two unseeded samplers got the same seed")
	}
	p.HasSeed, p.Seed = true, s1.Seed()
	if !slices.Equal(draws(s1, logits, 200), draws(mustNew(t, p, len(logits)), logits, 200)) {
		t.Error("replaying Seed() did not reproduce the draws")
	}
}

func TestChiSquareMatchesSoftmax(t *testing.T) {
	logits := []float32{1.2, -0.3, 0.8, 2.0, -1.5, 0.0, 1.7, 0.4}
	const n = 200000
	for _, temp := range []float32{0.7, 1, 1.5} {
		s := mustNew(t, params(func(p *Params) { p.Temperature = temp; p.Seed = 1234 }), len(logits))
		var counts [8]int
		for i := 0; i < n; i++ {
			res, _ := s.Sample(logits)
			counts[res.Token]++
		}
		want := softmax64(logits, float64(temp))
		chi := 0.0
		for i, c := range counts {
			e := want[i] * n
			chi += (float64(c) - e) * (float64(c) - e) / e
		}
		// 7 degrees of freedom; 24.32 is the 0.999 quantile.
		if chi > 24.32 {
			t.Errorf("T=%v: chi-square %.2f > 24.32 (counts %v)", temp, chi, counts)
		}
	}
}

func logSoftmax64(logits []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	z := 0.0
	for _, v := range logits {
		z += math.Exp(float64(v) - m)
	}
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = float64(v) - m - math.Log(z)
	}
	return out
}

func TestLogprobs(t *testing.T) {
	logits := testLogits(3000, 9, 2, 4)
	logits[17] = logits[topIDs(logits, 1)[0]] // a tie for first place
	ref := logSoftmax64(logits)
	ids := make([]int, len(logits)) // ids by decreasing logit, ties by id
	for j := range ids {
		ids[j] = j
	}
	sort.SliceStable(ids, func(a, b int) bool { return logits[ids[a]] > logits[ids[b]] })
	for _, mod := range []func(*Params){
		func(p *Params) { p.Temperature = 0 },
		func(p *Params) { p.Temperature = 0.5; p.TopK = 10 },
		// Raw logprobs: penalties and bias do not change them.
		func(p *Params) { p.RepetitionPenalty = 1.5; p.LogitBias = map[int32]float32{5: 20} },
	} {
		for _, k := range []int{0, 1, 5, 20} {
			p := params(mod)
			p.Logprobs, p.TopLogprobs = true, k
			s := mustNew(t, p, len(logits))
			s.AcceptPrompt([]int32{1, 2, 3})
			for i := 0; i < 20; i++ {
				res, err := s.Sample(logits)
				if err != nil {
					t.Fatal(err)
				}
				if !approx(float64(res.Logprob), ref[res.Token], 1e-5) {
					t.Fatalf("logprob of %d = %v, want %v", res.Token, res.Logprob, ref[res.Token])
				}
				if len(res.TopLogprobs) != k {
					t.Fatalf("got %d top logprobs, want %d", len(res.TopLogprobs), k)
				}
				// Sorted, most likely first, ties by id, matching the reference.
				for j, tl := range res.TopLogprobs {
					if int(tl.Token) != ids[j] || !approx(float64(tl.Logprob), ref[ids[j]], 1e-5) {
						t.Fatalf("top[%d] = %+v, want {%d %v}", j, tl, ids[j], ref[ids[j]])
					}
				}
				s.Accept(res.Token)
			}
		}
	}
	// Without Logprobs nothing is computed.
	s := mustNew(t, params(nil), len(logits))
	if res, _ := s.Sample(logits); res.Logprob != 0 || res.TopLogprobs != nil {
		t.Errorf("logprobs filled without being asked: %+v", res)
	}
	// Vocabulary smaller than TopLogprobs.
	s = mustNew(t, params(func(p *Params) { p.Logprobs = true; p.TopLogprobs = 5 }), 3)
	res, _ := s.Sample([]float32{0, 2, 1})
	if len(res.TopLogprobs) != 3 || res.TopLogprobs[0].Token != 1 || res.TopLogprobs[2].Token != 0 {
		t.Errorf("tiny vocab top logprobs = %+v", res.TopLogprobs)
	}
}

func TestStopTokens(t *testing.T) {
	s := mustNew(t, params(func(p *Params) { p.Temperature = 0; p.StopTokens = []int32{2} }), 4)
	s.AddStopTokens(3, 3, 99) // EOG from the engine; 99 is out of range and ignored
	for tok, want := range []bool{false, false, true, true} {
		if s.IsStopToken(int32(tok)) != want {
			t.Errorf("IsStopToken(%d) = %v", tok, !want)
		}
	}
	if res, _ := s.Sample([]float32{0, 0, 0, 1}); !res.Stop || res.Token != 3 {
		t.Errorf("EOG sample = %+v, want Stop", res)
	}
	if res, _ := s.Sample([]float32{0, 1, 0, 0}); res.Stop {
		t.Errorf("ordinary token marked Stop: %+v", res)
	}
}

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct {
		mod   func(*Params)
		param string
		msg   string
	}{
		{func(p *Params) { p.Temperature = -0.1 }, "temperature", "[0, 2]"},
		{func(p *Params) { p.Temperature = 2.5 }, "temperature", "got 2.5"},
		{func(p *Params) { p.Temperature = nan }, "temperature", "finite"},
		{func(p *Params) { p.TopK = -1 }, "top_k", ">= 0"},
		{func(p *Params) { p.TopP = 0 }, "top_p", "(0, 1]"},
		{func(p *Params) { p.TopP = 1.01 }, "top_p", "(0, 1]"},
		{func(p *Params) { p.TopP = inf }, "top_p", "finite"},
		{func(p *Params) { p.MinP = -0.5 }, "min_p", "[0, 1]"},
		{func(p *Params) { p.MinP = nan }, "min_p", "finite"},
		{func(p *Params) { p.RepetitionPenalty = 0 }, "repetition_penalty", "> 0"},
		{func(p *Params) { p.RepetitionPenalty = inf }, "repetition_penalty", "finite"},
		{func(p *Params) { p.FrequencyPenalty = 2.1 }, "frequency_penalty", "[-2, 2]"},
		{func(p *Params) { p.FrequencyPenalty = nan }, "frequency_penalty", "finite"},
		{func(p *Params) { p.PresencePenalty = -3 }, "presence_penalty", "[-2, 2]"},
		{func(p *Params) { p.PenaltyLastN = -2 }, "penalty_last_n", ">= -1"},
		{func(p *Params) { p.LogitBias = map[int32]float32{5: 0, -3: 1, -1: 1} }, "logit_bias", "token id -3 is negative"},
		{func(p *Params) { p.LogitBias = map[int32]float32{7: 101} }, "logit_bias", "token 7"},
		{func(p *Params) { p.LogitBias = map[int32]float32{7: nan} }, "logit_bias", "finite"},
		{func(p *Params) { p.Logprobs = true; p.TopLogprobs = 21 }, "top_logprobs", "[0, 20]"},
		{func(p *Params) { p.TopLogprobs = 3 }, "top_logprobs", "requires logprobs"},
		{func(p *Params) { p.Stop = []string{"a", ""} }, "stop", "stop[1] is empty"},
		{func(p *Params) { p.StopTokens = []int32{1, -2} }, "stop_token_ids", "stop_token_ids[1] = -2"},
	}
	for _, c := range cases {
		p := params(c.mod)
		err := p.Validate()
		var pe *ParamError
		if !errors.As(err, &pe) {
			t.Errorf("%s: got %v, want a *ParamError", c.param, err)
			continue
		}
		if pe.Param != c.param || !strings.Contains(err.Error(), c.param) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got param %q, error %q; want it to mention %q", c.param, pe.Param, err, c.msg)
		}
		if _, err := New(p, 100); err == nil {
			t.Errorf("%s: New accepted invalid params", c.param)
		}
	}
	if err := DefaultParams().Validate(); err != nil {
		t.Errorf("DefaultParams invalid: %v", err)
	}
	if err := (Params{}).Validate(); err == nil {
		t.Error("zero Params accepted")
	}
	for _, mod := range []func(*Params){
		nil,
		func(p *Params) { p.Temperature = 0; p.TopP = 1e-6; p.MinP = 1; p.TopK = 1e9 },
		func(p *Params) { p.Temperature = 2; p.FrequencyPenalty = -2; p.PresencePenalty = 2 },
		func(p *Params) {
			p.PenaltyLastN = -1
			p.RepetitionPenalty = 1e-3
			p.Logprobs = true
			p.TopLogprobs = 20
		},
		func(p *Params) { p.LogitBias = map[int32]float32{0: -100, 99: 100}; p.Stop = []string{"\n\n"} },
	} {
		if p := params(mod); p.Validate() != nil {
			t.Errorf("valid params rejected: %v", p.Validate())
		}
	}
	// Checks against the vocabulary happen in New.
	for _, c := range []struct {
		p   Params
		msg string
	}{
		{params(func(p *Params) { p.LogitBias = map[int32]float32{100: 1} }), "token id 100 is out of range"},
		{params(func(p *Params) { p.StopTokens = []int32{100} }), "stop_token_ids[0] = 100 is out of range"},
	} {
		if _, err := New(c.p, 100); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("New: got %v, want %q", err, c.msg)
		}
	}
	if _, err := New(params(nil), 0); err == nil || !strings.Contains(err.Error(), "vocabulary") {
		t.Errorf("New with vocab 0: %v", err)
	}
}

func TestSampleFromAndProbs(t *testing.T) {
	if got := SampleFrom([]float32{0, 0.5, 0, 0.5}, 0); got != 1 {
		t.Errorf("u=0: %d", got)
	}
	if got := SampleFrom([]float32{0, 0.5, 0, 0.5}, 0.5); got != 3 {
		t.Errorf("u=0.5: %d", got)
	}
	if got := SampleFrom([]float32{1, 1, 1, 1}, 0.9999999); got != 3 {
		t.Errorf("u~1: %d", got)
	}
	if got := SampleFrom([]float32{float32(math.NaN()), -1, 2}, 0.1); got != 2 {
		t.Errorf("NaN/negative entries: %d", got)
	}
	if got := SampleFrom([]float32{0, 0}, 0.3); got != -1 {
		t.Errorf("all zero: %d", got)
	}
	// Probs + SampleFrom draw from the same distribution as Sample.
	logits := []float32{1.2, -0.3, 0.8, 2.0, -1.5, 0.0, 1.7, 0.4}
	p := params(func(p *Params) { p.Temperature = 0.8; p.TopK = 6; p.TopP = 0.9; p.MinP = 0.1 })
	pr := Probs(logits, p, make([]float32, 2))
	var r RNG
	r.Seed(7)
	s := mustNew(t, p, len(logits))
	var a, b [8]int
	const n = 100000
	for i := 0; i < n; i++ {
		a[SampleFrom(pr, r.Float64())]++
		res, _ := s.Sample(logits)
		b[res.Token]++
	}
	for i := range pr {
		if pr[i] == 0 && (a[i] != 0 || b[i] != 0) {
			t.Errorf("token %d has zero probability but was drawn", i)
		}
		if e := float64(pr[i]) * n; e > 0 && (math.Abs(float64(a[i])-e) > 5*math.Sqrt(e) || math.Abs(float64(b[i])-e) > 5*math.Sqrt(e)) {
			t.Errorf("token %d: expected %.0f, SampleFrom %d, Sample %d", i, e, a[i], b[i])
		}
	}
	// The method form includes the penalty history and matches the pure
	// form when there is none.
	s = mustNew(t, p, len(logits))
	if got := s.Probs(logits, nil); !slices.Equal(got, pr) {
		t.Errorf("Sampler.Probs %v != Probs %v", got, pr)
	}
}

func TestZeroAllocs(t *testing.T) {
	logits := testLogits(32000, 1, 2, 5)
	for name, mod := range map[string]func(*Params){
		"greedy":         func(p *Params) { p.Temperature = 0 },
		"greedy-penalty": func(p *Params) { p.Temperature = 0; p.RepetitionPenalty = 1.1 },
		"full":           func(p *Params) {},
		"top-k":          func(p *Params) { p.TopK = 40 },
		"top-p":          func(p *Params) { p.TopP = 0.9 },
		"min-p":          func(p *Params) { p.MinP = 0.05 },
		"everything": func(p *Params) {
			p.TopK = 50
			p.TopP = 0.95
			p.MinP = 0.01
			p.Temperature = 0.7
			p.RepetitionPenalty = 1.1
			p.FrequencyPenalty = 0.3
			p.PresencePenalty = 0.2
			p.LogitBias = map[int32]float32{5: 3, 9: -100}
			p.Logprobs = true
			p.TopLogprobs = 20
		},
	} {
		s := mustNew(t, params(mod), len(logits))
		s.AcceptPrompt([]int32{1, 2, 3, 4, 5, 6})
		for i := 0; i < 10; i++ {
			res, _ := s.Sample(logits)
			s.Accept(res.Token)
		}
		dst := make([]float32, len(logits))
		allocs := testing.AllocsPerRun(50, func() {
			if _, err := s.Sample(logits); err != nil {
				t.Fatal(err)
			}
			s.Probs(logits, dst)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Sample", name, allocs)
		}
	}
}

func TestRecordIgnoresOutOfRange(t *testing.T) {
	s := mustNew(t, params(func(p *Params) { p.RepetitionPenalty = 2; p.FrequencyPenalty = 1 }), 4)
	s.Accept(-1)
	s.Accept(4)
	s.AcceptPrompt([]int32{7, -9})
	checkAdjusted(t, s, []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4})
}

func TestExpNeg(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 0; x += 0.0007 {
		got, want := float64(expNeg(x)), math.Exp(float64(x))
		if d := math.Abs(got-want) / want; d > worst {
			worst = d
		}
	}
	if worst > 3e-7 {
		t.Errorf("expNeg worst relative error %g", worst)
	}
	for _, x := range []float32{float32(math.Inf(-1)), float32(math.NaN()), -88, -1e30} {
		if got := expNeg(x); got != 0 {
			t.Errorf("expNeg(%v) = %v, want 0", x, got)
		}
	}
	if expNeg(0) != 1 {
		t.Errorf("expNeg(0) = %v", expNeg(0))
	}
}
