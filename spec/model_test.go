package spec

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/kernels"
	_ "github.com/sluice-llm/sluice/kernels/cpu"
	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/sample"
)

func testBackend(tb testing.TB) kernels.Backend {
	tb.Helper()
	threads := 1
	if v, err := strconv.Atoi(os.Getenv("SLUICE_TEST_THREADS")); err == nil {
		threads = v
	}
	be, err := kernels.Open("cpu", kernels.Options{Threads: threads})
	if err != nil {
		tb.Fatalf("open backend: %v", err)
	}
	tb.Cleanup(func() { be.Close() })
	return be
}

type loaded struct {
	m      *model.Model
	tokens []string
	eos    []int32
}

func loadModel(tb testing.TB, be kernels.Backend, file string) loaded {
	tb.Helper()
	f, err := gguf.Open(testenv.Shared(tb, "models", file))
	if err != nil {
		tb.Fatal(err)
	}
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		f.Close()
		tb.Fatalf("load %s: %v", file, err)
	}
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	tb.Cleanup(func() { m.Close(); f.Close() })
	return loaded{m: m, tokens: toks, eos: m.Config().EOS}
}

type golden struct {
	PromptTokens []int32 `json:"prompt_tokens"`
	Generated    []int32 `json:"generated"`
}

func readGolden(tb testing.TB, name string) []golden {
	tb.Helper()
	fh, err := os.Open(testenv.Shared(tb, "golden", name+".jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	var gs []golden
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var g golden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			tb.Fatal(err)
		}
		gs = append(gs, g)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(gs) == 0 {
		tb.Fatalf("%s.jsonl has no prompts", name)
	}
	return gs
}

// plainGreedy decodes with model.Session, one token per forward pass: the
// reference.
func plainGreedy(tb testing.TB, m *model.Model, prompt []int32, maxNew int) []int32 {
	tb.Helper()
	s, err := model.NewSession(m, 1, len(prompt)+maxNew+1, model.SessionOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	out, err := s.Generate(0, prompt, maxNew, 0, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

type specRun struct {
	out                         []int32
	forwards, drafted, accepted int
}

// specGreedy is speculative greedy decoding the way the engine does it:
// each step the target computes the tokens not yet in its cache plus the
// drafts in one forward pass, with logits at the last len(draft)+1
// positions; VerifyGreedy keeps the agreeing prefix and the target's next
// token; the cache is cut back to the confirmed tokens plus the accepted
// drafts, so rejected positions are overwritten by the next step.
func specGreedy(tb testing.TB, tc *slotCache, prop Proposer, prompt []int32, maxNew, k int, eos []int32) specRun {
	return specGreedyCtl(tb, tc, prop, prompt, maxNew, k, nil, eos)
}

// specGreedyCtl is specGreedy with k chosen by ctl when it is not nil.
func specGreedyCtl(tb testing.TB, tc *slotCache, prop Proposer, prompt []int32, maxNew, k int, ctl *Controller, eos []int32) specRun {
	tb.Helper()
	tc.truncate(0, 0)
	ctx := slices.Clone(prompt)
	var r specRun
	var p Proposal
	var st ReqState
	for len(r.out) < maxNew {
		p.Tokens = p.Tokens[:0]
		if ctl != nil {
			k = ctl.K(&st, 1)
		}
		if kk := min(k, maxNew-len(r.out)-1); kk > 0 {
			prop.Propose(ctx, kk, &p)
		}
		draft := p.Tokens
		base := -1
		for i := tc.len(0); i < len(ctx); i++ {
			base = tc.add(0, ctx[i], i == len(ctx)-1)
		}
		if base < 0 {
			tb.Fatalf("target cache holds %d tokens, context %d: nothing to compute", tc.len(0), len(ctx))
		}
		for _, d := range draft {
			tc.add(0, d, true)
		}
		if err := tc.forward(); err != nil {
			tb.Fatal(err)
		}
		r.forwards++
		acc, next := VerifyGreedy(draft, func(i int) int32 { return model.Argmax(tc.row(base + i)) })
		r.drafted += len(draft)
		r.accepted += acc
		if ctl != nil {
			ctl.Observe(&st, len(draft), acc)
		}
		tc.truncate(0, len(ctx)+acc)
		for _, t := range append(draft[:acc:acc], next) {
			r.out = append(r.out, t)
			ctx = append(ctx, t)
			if slices.Contains(eos, t) || len(r.out) == maxNew {
				return r
			}
		}
	}
	return r
}

func greedyParams() sample.Params {
	p := sample.DefaultParams()
	p.Temperature = 0
	return p
}

// TestSpecGreedyEquivalence: speculative greedy decoding with n-gram and
// draft-model proposers emits exactly plain greedy decoding's tokens for
// every golden prompt, for several k.
func TestSpecGreedyEquivalence(t *testing.T) {
	be := testBackend(t)
	for _, c := range []struct{ target, draft, golden string }{
		{"synth-llama-q8_0.gguf", "synth-llama-q4_0.gguf", "synth-llama-q8_0"},
		{"stories260K.gguf", "stories260K.gguf", "stories260K"},
	} {
		tgt := loadModel(t, be, c.target)
		dm := tgt
		if c.draft != c.target {
			dm = loadModel(t, be, c.draft)
		}
		if err := CheckVocab(tgt.tokens, dm.tokens); err != nil {
			t.Fatal(err)
		}
		gs := readGolden(t, c.golden)
		tc, err := newSlotCache(tgt.m, 1, 512, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.close()
		d, err := NewDraft(dm.m, DraftOptions{Slots: 2, MaxTokens: 512})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for gi, g := range gs {
			maxNew := len(g.Generated)
			want := plainGreedy(t, tgt.m, g.PromptTokens, maxNew)
			if n := commonLen(want, g.Generated); n < len(want) {
				t.Logf("%s prompt %d: plain greedy agrees with llama.cpp on %d of %d tokens", c.target, gi, n, len(want))
			}
			for _, k := range []int{1, 3, 6} {
				ng, _ := NewNGram(NGramConfig{})
				ds, err := d.Acquire(greedyParams(), 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, pc := range []struct {
					name string
					p    Proposer
				}{{"ngram", ng}, {"draft " + c.draft, ds}} {
					r := specGreedy(t, tc, pc.p, g.PromptTokens, maxNew, k, tgt.eos)
					if !slices.Equal(r.out, want) {
						t.Errorf("%s prompt %d, %s, k=%d: speculative output differs from plain greedy at token %d\n got %v\nwant %v",
							c.target, gi, pc.name, k, commonLen(r.out, want), r.out, want)
					}
					if k == 3 {
						t.Logf("%s prompt %d, %-26s k=3: %2d tokens in %2d target passes, accepted %2d/%2d drafts",
							c.target, gi, pc.name, len(r.out), r.forwards, r.accepted, r.drafted)
					}
					if c.draft == c.target && pc.p == Proposer(ds) && r.accepted != r.drafted {
						t.Errorf("%s drafting for itself accepted %d of %d drafts, want all", c.target, r.accepted, r.drafted)
					}
				}
				if ds.Err() != nil {
					t.Fatal(ds.Err())
				}
				ds.Release()
			}
		}
	}
}

func commonLen(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func TestCheckVocab(t *testing.T) {
	a := []string{"<unk>", "<s>", "</s>", "a", "b"}
	if err := CheckVocab(a, slices.Clone(a)); err != nil {
		t.Fatal(err)
	}
	b := slices.Clone(a)
	b[3] = "x"
	err := CheckVocab(a, b)
	if err == nil || !contains(err.Error(), "token id 3") || !contains(err.Error(), `"a"`) || !contains(err.Error(), `"x"`) {
		t.Errorf("differing token: %v", err)
	}
	err = CheckVocab(a, a[:4])
	if err == nil || !contains(err.Error(), "4 tokens") || !contains(err.Error(), "5") {
		t.Errorf("shorter draft: %v", err)
	}

	// Real files: synth-llama and synth-qwen2 were made with stories260K's
	// tokenizer, so any of them can draft for any other; a single changed
	// token is refused by id.
	be := testBackend(t)
	st := loadModel(t, be, "stories260K.gguf")
	for _, file := range []string{"synth-llama-q4_0.gguf", "synth-qwen2-q8_0.gguf"} {
		f, err := gguf.Open(testenv.Shared(t, "models", file))
		if err != nil {
			t.Fatal(err)
		}
		toks, _ := f.Strings("tokenizer.ggml.tokens")
		toks = slices.Clone(toks)
		f.Close()
		if err := CheckVocab(st.tokens, toks); err != nil {
			t.Errorf("stories260K vs %s: %v", file, err)
		}
		toks[300] += "!"
		if err := CheckVocab(st.tokens, toks); err == nil || !contains(err.Error(), "token id 300") {
			t.Errorf("stories260K vs altered %s: %v", file, err)
		} else {
			t.Logf("altered vocabulary: %v", err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestDraftBatchAndRollback: ProposeBatch over several requests gives the
// same proposals as each request alone in a fresh slot, also after the
// contexts diverge from the drafts (rollback of the slot's tail).
func TestDraftBatchAndRollback(t *testing.T) {
	be := testBackend(t)
	dm := loadModel(t, be, "synth-llama-q4_0.gguf")
	d, err := NewDraft(dm.m, DraftOptions{Slots: 4, MaxTokens: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctxs := [][]int32{{1, 403, 407, 261, 378}, {1, 20, 30}, {1, 5, 6, 7, 8, 9, 10, 11}}
	seqs := make([]*DraftSeq, len(ctxs))
	outs := make([]Proposal, len(ctxs))
	for i := range seqs {
		if seqs[i], err = d.Acquire(greedyParams(), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Acquire(greedyParams(), 0); err != nil {
		t.Fatal(err)
	} else if _, err := d.Acquire(greedyParams(), 0); err != ErrNoSlot {
		t.Fatalf("fifth Acquire of 4 slots: %v", err)
	}
	alone := func(ctx []int32, k int) []int32 {
		t.Helper()
		ref, err := NewDraft(dm.m, DraftOptions{Slots: 1, MaxTokens: 128})
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		rs, _ := ref.Acquire(greedyParams(), 0)
		var p Proposal
		rs.Propose(ctx, k, &p)
		if rs.Err() != nil {
			t.Fatal(rs.Err())
		}
		return p.Tokens
	}
	for round := range 4 {
		jobs := make([]DraftJob, len(ctxs))
		for i := range jobs {
			jobs[i] = DraftJob{Seq: seqs[i], Ctx: ctxs[i], K: 2 + i + round, Out: &outs[i]}
		}
		if err := d.ProposeBatch(jobs); err != nil {
			t.Fatal(err)
		}
		for i := range ctxs {
			want := alone(ctxs[i], jobs[i].K)
			if !slices.Equal(outs[i].Tokens, want) {
				t.Fatalf("round %d request %d: batched %v, alone %v", round, i, outs[i].Tokens, want)
			}
			if outs[i].Sampled {
				t.Fatal("greedy proposal marked sampled")
			}
			// Next context: accept some drafts, then a token of our own
			// (forces a rollback of the rest).
			acc := (round + i) % (len(want) + 1)
			ctxs[i] = append(ctxs[i], want[:acc]...)
			ctxs[i] = append(ctxs[i], int32(100+round*7+i))
		}
	}
	// Prefill in chunks, then propose: the same as proposing directly.
	pctx := append([]int32{1}, make([]int32, 60)...)
	for i := range pctx[1:] {
		pctx[i+1] = int32(50 + 3*i)
	}
	if err := seqs[1].Prefill(pctx, 7); err != nil {
		t.Fatal(err)
	}
	if seqs[1].Cached() != len(pctx)-1 {
		t.Fatalf("after Prefill %d cached, want %d", seqs[1].Cached(), len(pctx)-1)
	}
	var pp Proposal
	seqs[1].Propose(pctx, 4, &pp)
	if want := alone(pctx, 4); !slices.Equal(pp.Tokens, want) {
		t.Fatalf("after Prefill: %v, want %v", pp.Tokens, want)
	}

	// Context longer than the slot: k shrinks, then nothing.
	var p Proposal
	long := make([]int32, 127)
	seqs[0].Propose(long, 5, &p)
	if len(p.Tokens) != 2 || seqs[0].Err() != nil {
		t.Fatalf("context 127 of 128: %d tokens (%v), want 2", len(p.Tokens), seqs[0].Err())
	}
	seqs[0].Propose(make([]int32, 200), 5, &p)
	if len(p.Tokens) != 0 {
		t.Fatalf("context past the slot: %d tokens", len(p.Tokens))
	}
}

// TestDraftSampled: a sampled request's drafts come with distributions
// that are normalised and give the drawn token positive probability, and
// the draws follow them.
func TestDraftSampled(t *testing.T) {
	be := testBackend(t)
	dm := loadModel(t, be, "stories260K.gguf")
	d, err := NewDraft(dm.m, DraftOptions{Slots: 1, MaxTokens: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	params := sample.DefaultParams()
	params.Temperature = 0.9
	params.TopK = 40
	ds, err := d.Acquire(params, 5)
	if err != nil {
		t.Fatal(err)
	}
	ctx := []int32{1, 403, 407, 261, 378}
	var p Proposal
	v := d.Vocab()
	for range 20 {
		ds.Propose(ctx, 4, &p)
		if ds.Err() != nil {
			t.Fatal(ds.Err())
		}
		if !p.Sampled || len(p.Tokens) != 4 || len(p.Dists()) != 4*v {
			t.Fatalf("sampled=%v, %d tokens, %d q values", p.Sampled, len(p.Tokens), len(p.Dists()))
		}
		for i, tok := range p.Tokens {
			row := p.Q[i*v : (i+1)*v]
			sum, nz := 0.0, 0
			for _, x := range row {
				sum += float64(x)
				if x > 0 {
					nz++
				}
			}
			if math.Abs(sum-1) > 1e-4 || row[tok] <= 0 || nz > 40 {
				t.Fatalf("draft %d: q sums to %v, q(token) = %v, %d nonzero (top-k 40)", i, sum, row[tok], nz)
			}
		}
		ctx = append(ctx, p.Tokens[0])
	}
	ds.Release()
	if d.Free() != 1 {
		t.Fatalf("after Release %d free slots", d.Free())
	}
}

func TestDraftNoAllocs(t *testing.T) {
	be := testBackend(t)
	dm := loadModel(t, be, "stories260K.gguf")
	d, err := NewDraft(dm.m, DraftOptions{Slots: 2, MaxTokens: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	params := sample.DefaultParams()
	params.Temperature = 0.8
	a, _ := d.Acquire(params, 1)
	b, _ := d.Acquire(greedyParams(), 2)
	ctx := []int32{1, 403, 407, 261, 378, 300, 301}
	pa, pb := Proposal{}, Proposal{}
	jobs := []DraftJob{{Seq: a, Ctx: ctx, K: 4, Out: &pa}, {Seq: b, Ctx: ctx, K: 4, Out: &pb}}
	if err := d.ProposeBatch(jobs); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		jobs[0].Ctx = append(jobs[0].Ctx[:7], pa.Tokens[:1]...)
		if err := d.ProposeBatch(jobs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ProposeBatch allocates %.1f times per call", allocs)
	}
}

// benchSpec measures speculative greedy decoding over a golden file's
// prompts: acceptance rate and tokens per target forward pass.
func benchSpec(b *testing.B, target, golden string, mk func(tb testing.TB, be kernels.Backend) Proposer, k int, ctl *Controller) {
	be := testBackend(b)
	tgt := loadModel(b, be, target)
	gs := readGolden(b, golden)
	tc, err := newSlotCache(tgt.m, 1, 512, 16)
	if err != nil {
		b.Fatal(err)
	}
	defer tc.close()
	prop := mk(b, be)
	var tokens, forwards, drafted, accepted int
	b.ResetTimer()
	for range b.N {
		for _, g := range gs {
			if ng, ok := prop.(*NGram); ok {
				ng.Reset()
			}
			r := specGreedyCtl(b, tc, prop, g.PromptTokens, len(g.Generated), k, ctl, tgt.eos)
			tokens += len(r.out)
			forwards += r.forwards
			drafted += r.drafted
			accepted += r.accepted
		}
	}
	b.ReportMetric(float64(tokens)/float64(forwards), "tokens/pass")
	if drafted > 0 {
		b.ReportMetric(float64(accepted)/float64(drafted), "acceptance")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(tokens), "ns/token")
}

func ngramProposer(tb testing.TB, _ kernels.Backend) Proposer {
	g, err := NewNGram(NGramConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func draftProposer(file string) func(tb testing.TB, be kernels.Backend) Proposer {
	return func(tb testing.TB, be kernels.Backend) Proposer {
		dm := loadModel(tb, be, file)
		d, err := NewDraft(dm.m, DraftOptions{Slots: 1, MaxTokens: 512})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(d.Close)
		ds, err := d.Acquire(greedyParams(), 0)
		if err != nil {
			tb.Fatal(err)
		}
		return ds
	}
}

type noProposer struct{}

func (noProposer) Propose(_ []int32, _ int, out *Proposal) { out.Tokens = out.Tokens[:0] }

func BenchmarkSpecGreedy(b *testing.B) {
	for _, c := range []struct {
		name, target, golden string
		mk                   func(testing.TB, kernels.Backend) Proposer
		k                    int
		adaptive             bool
	}{
		{"synth-q8_0/none", "synth-llama-q8_0.gguf", "synth-llama-q8_0", func(testing.TB, kernels.Backend) Proposer { return noProposer{} }, 0, false},
		{"synth-q8_0/ngram-k4", "synth-llama-q8_0.gguf", "synth-llama-q8_0", ngramProposer, 4, false},
		{"synth-q8_0/ngram-adaptive", "synth-llama-q8_0.gguf", "synth-llama-q8_0", ngramProposer, 0, true},
		{"synth-q8_0/draft-q4_0-k4", "synth-llama-q8_0.gguf", "synth-llama-q8_0", draftProposer("synth-llama-q4_0.gguf"), 4, false},
		{"synth-q8_0/draft-q4_0-adaptive", "synth-llama-q8_0.gguf", "synth-llama-q8_0", draftProposer("synth-llama-q4_0.gguf"), 0, true},
		{"synth-q8_0/draft-q2_k-k4", "synth-llama-q8_0.gguf", "synth-llama-q8_0", draftProposer("synth-llama-q2_k.gguf"), 4, false},
		{"stories260K/none", "stories260K.gguf", "stories260K", func(testing.TB, kernels.Backend) Proposer { return noProposer{} }, 0, false},
		{"stories260K/ngram-k4", "stories260K.gguf", "stories260K", ngramProposer, 4, false},
		{"stories260K/ngram-adaptive", "stories260K.gguf", "stories260K", ngramProposer, 0, true},
		{"stories260K/self-k4", "stories260K.gguf", "stories260K", draftProposer("stories260K.gguf"), 4, false},
	} {
		var ctl *Controller
		if c.adaptive {
			var err error
			if ctl, err = NewController(ControllerConfig{}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(c.name, func(b *testing.B) { benchSpec(b, c.target, c.golden, c.mk, c.k, ctl) })
	}
}

// TestSpecSampledSelfDraft runs sampled speculative decoding end to end
// with the Verifier and a sampling draft: stories260K drafting for itself
// under the same settings proposes from exactly the target's
// distribution, so every draft is accepted (p/q = 1), and the run is
// reproducible from the seed.
func TestSpecSampledSelfDraft(t *testing.T) {
	be := testBackend(t)
	tgt := loadModel(t, be, "stories260K.gguf")
	gs := readGolden(t, "stories260K")
	tc, err := newSlotCache(tgt.m, 1, 256, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.close()
	d, err := NewDraft(tgt.m, DraftOptions{Slots: 1, MaxTokens: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	params := sample.DefaultParams()
	params.Temperature = 0.8
	params.TopP = 0.9
	params.Seed, params.HasSeed = 1234, true
	run := func(prompt []int32) ([]int32, int, int) {
		s, err := sample.New(params, tgt.m.Config().VocabSize)
		if err != nil {
			t.Fatal(err)
		}
		ver := NewVerifier(s)
		ds, err := d.Acquire(params, s.Seed())
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Release()
		tc.truncate(0, 0)
		ctx := slices.Clone(prompt)
		var out []int32
		var p Proposal
		drafted, accepted := 0, 0
		for len(out) < 40 {
			ds.Propose(ctx, 4, &p)
			base := -1
			for i := tc.len(0); i < len(ctx); i++ {
				base = tc.add(0, ctx[i], i == len(ctx)-1)
			}
			for _, x := range p.Tokens {
				tc.add(0, x, true)
			}
			if err := tc.forward(); err != nil {
				t.Fatal(err)
			}
			n := len(out)
			var acc int
			out, acc, err = ver.Verify(s, p.Tokens, p.Dists(), func(i int) []float32 { return tc.row(base + i) }, out)
			if err != nil {
				t.Fatal(err)
			}
			drafted += len(p.Tokens)
			accepted += acc
			tc.truncate(0, len(ctx)+acc)
			ctx = append(ctx, out[n:]...)
		}
		return out, drafted, accepted
	}
	for gi, g := range gs {
		out, drafted, accepted := run(g.PromptTokens)
		if accepted != drafted || drafted == 0 {
			t.Errorf("prompt %d: self-draft accepted %d of %d sampled drafts, want all", gi, accepted, drafted)
		}
		again, _, _ := run(g.PromptTokens)
		if !slices.Equal(out, again) {
			t.Errorf("prompt %d: same seed, different output:\n%v\n%v", gi, out, again)
		}
	}
}
