package perf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/kernels"
	_ "github.com/sluice-llm/sluice/kernels/cpu" // registers the "cpu" backend
	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/synth"
	"github.com/sluice-llm/sluice/tokenizer"
)

// A Workload is one process's worth of measurements: an unmeasured setup
// (open a model, fill a KV cache) and a sequence of measured phases, each
// reported as "workload/phase". Workloads run one per process so that adding
// one never moves another's counts.
type Workload struct {
	Name string
	// prepare does the setup, reading models PrepareModels wrote in dir,
	// and returns the phases in order and a cleanup.
	prepare func(dir string) ([]Phase, func(), error)
}

// A Phase is one measured region.
type Phase struct {
	Name string
	Run  func() error
}

// modelSpec is a random-weight model the workloads read.
type modelSpec struct {
	file  string
	shape synth.Shape
	typ   string
}

// attnShape is a one-layer model with 64-dimension heads: prefilling 1024
// tokens of it (the attention workload's setup) is cheap under callgrind.
var attnShape = synth.Shape{
	Name: "perf-attn", Arch: "llama", Dim: 256, Layers: 1, Heads: 4, KVHeads: 2, FFN: 256, Vocab: 512,
	RopeBase: 10000, ContextLength: 2048, NormEps: 1e-5,
}

func models() []modelSpec {
	tiny := synth.Shapes["tiny-llama"]
	out := []modelSpec{}
	for _, t := range []string{"Q4_0", "Q8_0", "Q4_K_M", "F16"} {
		out = append(out, modelSpec{file: "tiny-llama-" + t + ".gguf", shape: tiny, typ: t})
	}
	return append(out, modelSpec{file: "perf-attn-F16.gguf", shape: attnShape, typ: "F16"})
}

// Workloads is the fixed set the gate measures, in order.
func Workloads() []Workload {
	var ws []Workload
	for _, t := range []string{"Q4_0", "Q8_0", "Q4_K_M", "F16"} {
		file := "tiny-llama-" + t + ".gguf"
		ws = append(ws, Workload{Name: "tiny-llama-" + t, prepare: func(dir string) ([]Phase, func(), error) {
			return prefillDecode(filepath.Join(dir, file), 128, 32)
		}})
	}
	ws = append(ws,
		Workload{Name: "attention-1k", prepare: func(dir string) ([]Phase, func(), error) {
			return attentionDepth(filepath.Join(dir, "perf-attn-F16.gguf"), 1024, 4)
		}},
		Workload{Name: "batch16", prepare: func(dir string) ([]Phase, func(), error) {
			return batchedStep(filepath.Join(dir, "tiny-llama-Q4_K_M.gguf"), 16, 4, 4)
		}},
		Workload{Name: "tokenizer", prepare: func(dir string) ([]Phase, func(), error) {
			return tokenizerEncode(filepath.Join(dir, "tiny-llama-Q8_0.gguf"))
		}},
	)
	return ws
}

// LookupWorkload returns the workload called name.
func LookupWorkload(name string) (Workload, error) {
	var names []string
	for _, w := range Workloads() {
		if w.Name == name {
			return w, nil
		}
		names = append(names, w.Name)
	}
	return Workload{}, fmt.Errorf("perf: unknown workload %q (known: %s)", name, strings.Join(names, ", "))
}

// PrepareModels writes the workloads' models into dir, skipping files that
// exist. The weights are deterministic (seed 0), so every machine measures
// the same bytes.
func PrepareModels(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, m := range models() {
		path := filepath.Join(dir, m.file)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := synth.Write(path, synth.Options{Shape: m.shape, Type: m.typ, Fast: true}); err != nil {
			return fmt.Errorf("perf: writing %s: %w", m.file, err)
		}
	}
	return nil
}

// loaded is a model on a one-thread CPU backend; the kernel path comes from
// $SLUICE_CPU_PATH, which the gate sets.
type loaded struct {
	f  *gguf.File
	be kernels.Backend
	m  *model.Model
}

func load(path string, maxBatch int) (*loaded, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("perf: %w (run the gate through 'sluice bench perfcheck', which writes the models)", err)
	}
	be, err := kernels.Open("cpu", kernels.Options{Threads: 1})
	if err != nil {
		f.Close()
		return nil, err
	}
	m, err := model.Load(f, be, model.Options{MaxBatch: maxBatch})
	if err != nil {
		be.Close()
		f.Close()
		return nil, err
	}
	return &loaded{f: f, be: be, m: m}, nil
}

func (l *loaded) close() {
	l.m.Close()
	l.be.Close()
	l.f.Close()
}

// tokens returns n fixed token ids below vocab.
func tokens(n, seed, vocab int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32((i*7919 + seed*104729 + 13) % vocab)
	}
	return t
}

// prefillDecode measures a P-token prefill, then N single-token decode
// steps after it.
func prefillDecode(path string, P, N int) ([]Phase, func(), error) {
	l, err := load(path, P)
	if err != nil {
		return nil, nil, err
	}
	s, err := model.NewSession(l.m, 1, P+N, model.SessionOptions{})
	if err != nil {
		l.close()
		return nil, nil, err
	}
	v := l.m.Config().VocabSize
	prompt, gen := tokens(P, 0, v), tokens(N, 1, v)
	phases := []Phase{
		{Name: fmt.Sprintf("pp%d", P), Run: func() error {
			return s.Feed(model.Input{Seq: 0, Tokens: prompt, Want: model.WantLast})
		}},
		{Name: fmt.Sprintf("tg%d", N), Run: func() error { return decode(s, gen) }},
	}
	return phases, func() { s.Close(); l.close() }, nil
}

func decode(s *model.Session, gen []int32) error {
	for i := range gen {
		if err := s.Feed(model.Input{Seq: 0, Tokens: gen[i : i+1], Want: model.WantLast}); err != nil {
			return err
		}
	}
	return nil
}

// attentionDepth fills depth tokens of KV cache (unmeasured), then measures
// N decode steps whose attention reads all of it.
func attentionDepth(path string, depth, N int) ([]Phase, func(), error) {
	l, err := load(path, 256)
	if err != nil {
		return nil, nil, err
	}
	s, err := model.NewSession(l.m, 1, depth+N, model.SessionOptions{})
	if err != nil {
		l.close()
		return nil, nil, err
	}
	v := l.m.Config().VocabSize
	prompt := tokens(depth, 0, v)
	for i := 0; i < depth; i += 256 {
		if err := s.Feed(model.Input{Seq: 0, Tokens: prompt[i:min(i+256, depth)], Want: model.WantLast}); err != nil {
			s.Close()
			l.close()
			return nil, nil, err
		}
	}
	gen := tokens(N, 1, v)
	phases := []Phase{{Name: fmt.Sprintf("tg%d@%d", N, depth), Run: func() error { return decode(s, gen) }}}
	return phases, func() { s.Close(); l.close() }, nil
}

// batchedStep prefills B sequences of P tokens (unmeasured), then measures
// steps forward passes of B tokens, one per sequence.
func batchedStep(path string, B, P, steps int) ([]Phase, func(), error) {
	l, err := load(path, B*P)
	if err != nil {
		return nil, nil, err
	}
	s, err := model.NewSession(l.m, B, P+steps, model.SessionOptions{})
	if err != nil {
		l.close()
		return nil, nil, err
	}
	v := l.m.Config().VocabSize
	in := make([]model.Input, B)
	for i := range in {
		in[i] = model.Input{Seq: i, Tokens: tokens(P, 2+i, v), Want: model.WantLast}
	}
	if err := s.Feed(in...); err != nil {
		s.Close()
		l.close()
		return nil, nil, err
	}
	gen := tokens(B*steps, 99, v)
	run := func() error {
		for j := 0; j < steps; j++ {
			for i := range in {
				in[i] = model.Input{Seq: i, Tokens: gen[j*B+i : j*B+i+1], Want: model.WantLast}
			}
			if err := s.Feed(in...); err != nil {
				return err
			}
		}
		return nil
	}
	phases := []Phase{{Name: fmt.Sprintf("step%dx%d", B, steps), Run: run}}
	return phases, func() { s.Close(); l.close() }, nil
}

// encodeText is the tokenizer workload's input: prose, code and numbers.
var encodeText = strings.Repeat("The quick brown fox jumps over the lazy dog; "+
	"func main() { fmt.Println(\"héllo, wörld\", 3.14159, 0x2A) }\n"+
	"Once upon a time, in 1987, there were 42 engines -- and one of them was fast. ", 16)

// tokenizerEncode measures encoding a few kilobytes of text with the model's
// (built-in byte-level BPE) tokenizer.
func tokenizerEncode(path string) ([]Phase, func(), error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("perf: %w", err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	run := func() error {
		if len(tok.Encode(encodeText, true, false)) == 0 {
			return errors.New("perf: the tokenizer produced no tokens")
		}
		return nil
	}
	return []Phase{{Name: fmt.Sprintf("encode%dB", len(encodeText)), Run: run}}, func() { f.Close() }, nil
}
