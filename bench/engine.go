// Package bench holds sluice's benchmark harnesses. RunEngine measures the
// forward pass the way llama-bench and llama-batched-bench do: prompt
// processing (prefill) throughput for a P-token prompt, single-sequence
// decode throughput for N tokens after it, and the aggregate decode
// throughput of B sequences decoding together, each repeated and reported
// as mean ± standard deviation. Token ids are synthetic and fixed: no
// tokenization or sampling happens inside the timed region.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/kernels"
	_ "github.com/sluice-llm/sluice/kernels/cpu" // registers the "cpu" backend
	"github.com/sluice-llm/sluice/model"
)

// EngineOptions configure RunEngine.
type EngineOptions struct {
	// File is the model to run; it stays owned by the caller. Path is only
	// reported.
	File *gguf.File
	Path string

	// Prompt is the prompt length P of the prefill test (0: no prefill
	// test). Gen is the number N of tokens decoded one at a time after the
	// prompt (0: no decode test).
	Prompt, Gen int
	// Batches lists the sequence counts B of the batched decode test. Each
	// of the B sequences is first prefilled with BatchPrompt tokens (all
	// sequences in one batch), then BatchGen steps decode one token per
	// sequence, B tokens per forward pass.
	Batches               []int
	BatchPrompt, BatchGen int

	// Reps is the number of timed repetitions of each test (0 means 5),
	// after one untimed warm-up pass.
	Reps int

	// Backend names the compute backend ("" means "cpu"); Threads and
	// KernelPath are passed to it (0 and "" pick its defaults).
	Backend    string
	Threads    int
	KernelPath string
	// KVF32 uses an F32 KV cache instead of the default F16.
	KVF32 bool

	// Progress, when set, receives one line per timed repetition.
	Progress io.Writer
}

// EngineResult is the outcome of RunEngine.
type EngineResult struct {
	Model   string `json:"model"` // "llama 1.2B Q4_0"
	Path    string `json:"path,omitempty"`
	Arch    string `json:"architecture"`
	Type    string `json:"file_type"`  // llama.cpp file type name
	Size    uint64 `json:"size_bytes"` // bytes of tensor data
	Params  uint64 `json:"params"`
	Backend string `json:"backend"` // "cpu (avx512)"
	Threads int    `json:"threads"`
	Reps    int    `json:"reps"`
	// GoVersion and CPU describe the machine the numbers come from.
	GoVersion string       `json:"go_version"`
	CPU       string       `json:"cpu,omitempty"`
	Tests     []TestResult `json:"tests"`
}

// TestResult is one test's throughput over the repetitions.
type TestResult struct {
	// Name is llama-bench's test label: "pp512", "tg128", or for the
	// batched test "pp128+tg64 B=16".
	Name string `json:"test"`
	// Kind is "prefill", "decode" or "batched".
	Kind string `json:"kind"`
	// Tokens timed per repetition: P, N, or B × BatchGen.
	Tokens int `json:"tokens"`
	// Seqs is the number of sequences decoding together (1 except batched).
	Seqs int `json:"seqs"`
	// TokensPerSec holds one throughput per repetition; Mean and Stddev
	// summarize them (sample standard deviation, 0 for one repetition).
	TokensPerSec []float64 `json:"tokens_per_sec"`
	Mean         float64   `json:"mean"`
	Stddev       float64   `json:"stddev"`
	// Median and SpreadPct (half the range, in percent of the median) are
	// the robust summary --compare uses.
	Median    float64 `json:"median"`
	SpreadPct float64 `json:"spread_pct"`
	// PrefillTokensPerSec is, for the batched test, the throughput of the
	// B × BatchPrompt prompt tokens processed in one batch (mean).
	PrefillTokensPerSec float64 `json:"prefill_tokens_per_sec,omitempty"`
}

// Validate checks the options for a run.
func (o *EngineOptions) Validate() error {
	switch {
	case o.File == nil:
		return errors.New("bench: no model file")
	case o.Prompt < 0 || o.Gen < 0 || o.BatchPrompt < 0 || o.BatchGen < 0:
		return fmt.Errorf("bench: token counts must not be negative (prompt %d, gen %d, batch prompt %d, batch gen %d)",
			o.Prompt, o.Gen, o.BatchPrompt, o.BatchGen)
	case o.Reps < 0:
		return fmt.Errorf("bench: repetitions must not be negative, got %d", o.Reps)
	case o.Threads < 0:
		return fmt.Errorf("bench: threads must not be negative, got %d", o.Threads)
	}
	for _, b := range o.Batches {
		if b <= 0 {
			return fmt.Errorf("bench: batch sizes must be positive, got %d", b)
		}
	}
	if len(o.Batches) > 0 && o.BatchGen == 0 {
		return errors.New("bench: batched decode needs at least one decode step")
	}
	if o.Prompt == 0 && o.Gen == 0 && len(o.Batches) == 0 {
		return errors.New("bench: nothing to measure (prompt, gen and batches are all empty)")
	}
	return nil
}

// RunEngine loads the model on the backend and runs the prefill, decode and
// batched decode tests. ctx cancels between forward passes.
func RunEngine(ctx context.Context, opts EngineOptions) (*EngineResult, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	reps := opts.Reps
	if reps == 0 {
		reps = 5
	}
	name := opts.Backend
	if name == "" {
		name = "cpu"
	}
	be, err := kernels.Open(name, kernels.Options{Threads: opts.Threads, Path: opts.KernelPath})
	if err != nil {
		return nil, err
	}
	defer be.Close()

	maxSeqs := 1
	for _, b := range opts.Batches {
		maxSeqs = max(maxSeqs, b)
	}
	maxBatch := max(opts.Prompt, opts.Gen, 1)
	if len(opts.Batches) > 0 {
		maxBatch = max(maxBatch, maxSeqs*max(opts.BatchPrompt, 1))
	}
	m, err := model.Load(opts.File, be, model.Options{MaxBatch: maxBatch})
	if err != nil {
		return nil, err
	}
	defer m.Close()

	res := describe(opts.File, m, be, opts.Path)
	res.Reps = reps
	r := runner{ctx: ctx, m: m, opts: &opts, reps: reps}

	if opts.Prompt > 0 || opts.Gen > 0 {
		pp, tg, err := r.single()
		if err != nil {
			return nil, err
		}
		if pp != nil {
			res.Tests = append(res.Tests, *pp)
		}
		if tg != nil {
			res.Tests = append(res.Tests, *tg)
		}
	}
	for _, b := range opts.Batches {
		t, err := r.batched(b)
		if err != nil {
			return nil, err
		}
		res.Tests = append(res.Tests, *t)
	}
	return res, nil
}

// describe fills the model and machine columns of a result.
func describe(f *gguf.File, m *model.Model, be kernels.Backend, path string) *EngineResult {
	res := &EngineResult{Path: path, Arch: f.Arch(), GoVersion: runtime.Version(), CPU: cpuName()}
	for i := range f.Tensors {
		res.Size += f.Tensors[i].Size
		res.Params += f.Tensors[i].Elems()
	}
	if ft, ok := f.Uint32("general.file_type"); ok {
		res.Type = fileTypeName(ft)
	}
	res.Model = strings.TrimSpace(fmt.Sprintf("%s %s %s", res.Arch, humanParams(res.Params), res.Type))
	res.Backend = be.Name()
	type pathed interface{ Path() string }
	if p, ok := be.(pathed); ok {
		res.Backend += " (" + p.Path() + ")"
	}
	type threaded interface{ Threads() int }
	if t, ok := be.(threaded); ok {
		res.Threads = t.Threads()
	}
	return res
}

// runner runs the timed tests of one model.
type runner struct {
	ctx  context.Context
	m    *model.Model
	opts *EngineOptions
	reps int
}

// tokens returns n synthetic token ids inside the vocabulary, different per
// seed; a prompt's first token is BOS when the model has one.
func (r *runner) tokens(n, seed int, prompt bool) []int32 {
	cfg := r.m.Config()
	v := cfg.VocabSize
	toks := make([]int32, n)
	for i := range toks {
		toks[i] = int32((i*7919 + seed*104729 + 13) % v)
	}
	if prompt && n > 0 && cfg.BOS >= 0 && int(cfg.BOS) < v {
		toks[0] = cfg.BOS
	}
	return toks
}

func (r *runner) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "bench: "+format+"\n", args...)
	}
}

// single runs the prefill and decode tests on one sequence: each
// repetition prefills P tokens in one forward pass (timed as ppP), then
// decodes N tokens one forward pass each (timed as tgN).
func (r *runner) single() (pp, tg *TestResult, err error) {
	P, N := r.opts.Prompt, r.opts.Gen
	s, err := model.NewSession(r.m, 1, max(P+N, 1), model.SessionOptions{KVF32: r.opts.KVF32})
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	prompt := r.tokens(P, 0, true)
	gen := r.tokens(max(N, 1), 1, false)
	if P > 0 {
		pp = &TestResult{Name: fmt.Sprintf("pp%d", P), Kind: "prefill", Tokens: P, Seqs: 1}
	}
	if N > 0 {
		tg = &TestResult{Name: fmt.Sprintf("tg%d", N), Kind: "decode", Tokens: N, Seqs: 1}
	}
	// Rep 0 is the warm-up: it touches every weight page and sizes every
	// buffer; its times are dropped.
	for rep := 0; rep <= r.reps; rep++ {
		s.Reset(0)
		if P > 0 {
			t0 := time.Now()
			if err := s.Feed(model.Input{Seq: 0, Tokens: prompt, Want: model.WantLast}); err != nil {
				return nil, nil, err
			}
			if rep > 0 {
				pp.add(float64(P) / time.Since(t0).Seconds())
				r.progress("%s rep %d/%d: %.2f t/s", pp.Name, rep, r.reps, pp.last())
			}
		}
		if N > 0 {
			t0 := time.Now()
			for i := 0; i < N; i++ {
				if err := r.ctx.Err(); err != nil {
					return nil, nil, err
				}
				if err := s.Feed(model.Input{Seq: 0, Tokens: gen[i : i+1], Want: model.WantLast}); err != nil {
					return nil, nil, err
				}
			}
			if rep > 0 {
				tg.add(float64(N) / time.Since(t0).Seconds())
				r.progress("%s rep %d/%d: %.2f t/s", tg.Name, rep, r.reps, tg.last())
			}
		}
		if err := r.ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	pp.finish()
	tg.finish()
	return pp, tg, nil
}

// batched runs the batched decode test for B sequences, as
// llama-batched-bench does: all B prompts of BatchPrompt tokens in one
// forward pass, then BatchGen forward passes of B tokens, one per sequence.
// The decode throughput counts B × BatchGen tokens.
func (r *runner) batched(B int) (*TestResult, error) {
	PP, TG := r.opts.BatchPrompt, r.opts.BatchGen
	s, err := model.NewSession(r.m, B, PP+TG, model.SessionOptions{KVF32: r.opts.KVF32})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	res := &TestResult{Name: fmt.Sprintf("pp%d+tg%d B=%d", PP, TG, B), Kind: "batched", Tokens: B * TG, Seqs: B}
	prompts := make([]model.Input, B)
	steps := make([]model.Input, B)
	gen := make([][]int32, B)
	for i := range prompts {
		prompts[i] = model.Input{Seq: i, Tokens: r.tokens(PP, 2+i, true), Want: model.WantLast}
		gen[i] = r.tokens(TG, 2+B+i, false)
	}
	var ppSum float64
	for rep := 0; rep <= r.reps; rep++ {
		for i := 0; i < B; i++ {
			s.Reset(i)
		}
		if PP > 0 {
			t0 := time.Now()
			if err := s.Feed(prompts...); err != nil {
				return nil, err
			}
			if rep > 0 {
				ppSum += float64(B*PP) / time.Since(t0).Seconds()
			}
		}
		t0 := time.Now()
		for j := 0; j < TG; j++ {
			if err := r.ctx.Err(); err != nil {
				return nil, err
			}
			for i := range steps {
				steps[i] = model.Input{Seq: i, Tokens: gen[i][j : j+1], Want: model.WantLast}
			}
			if err := s.Feed(steps...); err != nil {
				return nil, err
			}
		}
		if rep > 0 {
			res.add(float64(B*TG) / time.Since(t0).Seconds())
			r.progress("%s rep %d/%d: %.2f t/s", res.Name, rep, r.reps, res.last())
		}
	}
	res.finish()
	if PP > 0 {
		res.PrefillTokensPerSec = ppSum / float64(r.reps)
	}
	return res, nil
}

func (t *TestResult) add(v float64) {
	t.TokensPerSec = append(t.TokensPerSec, v)
}

func (t *TestResult) last() float64 { return t.TokensPerSec[len(t.TokensPerSec)-1] }

// finish computes the mean and the sample standard deviation.
func (t *TestResult) finish() {
	if t == nil || len(t.TokensPerSec) == 0 {
		return
	}
	t.Mean, t.Stddev = MeanStddev(t.TokensPerSec)
	t.Median, t.SpreadPct = median(t.TokensPerSec), spreadPct(t.TokensPerSec)
}

// MeanStddev returns the mean and the sample standard deviation (n-1 in
// the denominator; 0 for fewer than two values) of v.
func MeanStddev(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return 0, 0
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// fileTypeName names llama.cpp's general.file_type values.
func fileTypeName(ft uint32) string {
	names := map[uint32]string{
		0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
		10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
		16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
	}
	if n, ok := names[ft]; ok {
		return n
	}
	return fmt.Sprintf("ftype%d", ft)
}

// humanParams writes a parameter count as llama.cpp labels models: "135M",
// "1.2B".
func humanParams(n uint64) string {
	switch {
	case n >= 1e9:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e9)) + "B"
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }
