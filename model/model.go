// Package model runs decoder-only transformer architectures read from GGUF
// files on a kernels.Backend: the llama family, qwen2, qwen3, phi3, olmo2
// and granite. They share one decoder block (forward.go); what each adds
// to it (q/k norms, fused projections, post-norms, multipliers) is read
// and checked in its own arch_*.go file, and what an architecture's file
// may carry but this package does not compute is refused by name.
//
// Load builds a Model from a gguf.File: the hyperparameters come from the
// file's metadata (Config), and the weights stay in the file's memory
// mapping (Backend.Weight wraps them on the CPU; nothing is copied). A Model
// computes a forward pass over a flat Batch of tokens that may mix several
// sequences at different positions, reading and writing a paged KVCache, and
// leaves logits for the requested rows in a host buffer it owns.
//
// A Model is not safe for concurrent use: one goroutine (the engine's step
// loop) drives it.
package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

// Options configure Load.
type Options struct {
	// MaxBatch pre-sizes the activation buffers for batches of this many
	// tokens; larger batches grow them on demand. 0 means grow on demand.
	MaxBatch int
}

// layer holds the weights of one transformer block.
type layer struct {
	attnNorm       *kernels.Tensor // (1, dim) F32
	wq, wk, wv, wo *kernels.Tensor // (qDim, dim) (kvDim, dim) (kvDim, dim) (dim, qDim)
	bq, bk, bv, bo *kernels.Tensor // (1, qDim) (1, kvDim) (1, kvDim) (1, dim) F32; nil if absent
	qNorm, kNorm   *kernels.Tensor // (1, headDim) F32 per-head q/k RMS norms (qwen3), (1, qDim) (1, kvDim) per row (olmo2); nil if absent
	postAttnNorm   *kernels.Tensor // (1, dim) F32 applied to the attention output (olmo2); nil if absent
	postFFNNorm    *kernels.Tensor // (1, dim) F32 applied to the FFN output (olmo2); nil if absent
	ffnNorm        *kernels.Tensor // (1, dim) F32
	wGate, wUp     *kernels.Tensor // (ffn, dim)
	wDown          *kernels.Tensor // (dim, ffn)
}

// Model is a loaded model bound to a backend.
type Model struct {
	cfg         Config
	be          kernels.Backend
	fingerprint string

	tokEmbd *kernels.Tensor // (vocab, dim)
	outNorm *kernels.Tensor // (1, dim) F32
	output  *kernels.Tensor // (vocab, dim); == tokEmbd when tied
	layers  []layer
	rope    kernels.RopeParams

	act activations
}

// Load builds a Model from f on be. Weights reference f's mapping, so f
// must stay open for the life of the Model. Unsupported architectures and
// missing or mis-shaped tensors are refused with an error naming the key or
// tensor at fault.
func Load(f *gguf.File, be kernels.Backend, opts Options) (*Model, error) {
	cfg, err := ReadConfig(f)
	if err != nil {
		return nil, err
	}
	m := &Model{be: be}
	l := loader{f: f, be: be, supported: be.SupportedWeights()}

	dim, qDim, kvDim, ffn := cfg.Dim, cfg.QDim(), cfg.KVDim(), cfg.FFNDim
	m.tokEmbd = l.weight("token_embd.weight", cfg.VocabSize, dim)
	m.outNorm = l.vector("output_norm.weight", dim)
	if cfg.TiedOutput {
		m.output = m.tokEmbd
	} else {
		m.output = l.weight("output.weight", cfg.VocabSize, dim)
	}

	m.layers = make([]layer, cfg.Layers)
	for i := range m.layers {
		p := fmt.Sprintf("blk.%d.", i)
		ly := &m.layers[i]
		if cfg.PostNorms {
			ly.postAttnNorm = l.vector(p+"post_attention_norm.weight", dim)
			ly.postFFNNorm = l.vector(p+"post_ffw_norm.weight", dim)
		} else {
			ly.attnNorm = l.vector(p+"attn_norm.weight", dim)
			ly.ffnNorm = l.vector(p+"ffn_norm.weight", dim)
		}
		if cfg.FusedQKV {
			// attn_qkv (qDim+2·kvDim, dim): q rows, then k rows, then v rows
			w := l.weightRows(p+"attn_qkv.weight", dim, qDim, kvDim, kvDim)
			ly.wq, ly.wk, ly.wv = w[0], w[1], w[2]
		} else {
			ly.wq = l.weight(p+"attn_q.weight", qDim, dim)
			ly.wk = l.weight(p+"attn_k.weight", kvDim, dim)
			ly.wv = l.weight(p+"attn_v.weight", kvDim, dim)
		}
		ly.wo = l.weight(p+"attn_output.weight", dim, qDim)
		if cfg.QKVBias {
			ly.bq = l.vector(p+"attn_q.bias", qDim)
			ly.bk = l.vector(p+"attn_k.bias", kvDim)
			ly.bv = l.vector(p+"attn_v.bias", kvDim)
		}
		if cfg.OutBias {
			ly.bo = l.vector(p+"attn_output.bias", dim)
		}
		if cfg.QKNorm {
			qw, kw := qkNormWidths(&cfg)
			ly.qNorm = l.vector(p+"attn_q_norm.weight", qw)
			ly.kNorm = l.vector(p+"attn_k_norm.weight", kw)
		}
		if cfg.FusedFFN {
			// ffn_up (2·ffn, dim): gate rows, then up rows
			w := l.weightRows(p+"ffn_up.weight", dim, ffn, ffn)
			ly.wGate, ly.wUp = w[0], w[1]
		} else {
			ly.wGate = l.weight(p+"ffn_gate.weight", ffn, dim)
			ly.wUp = l.weight(p+"ffn_up.weight", ffn, dim)
		}
		ly.wDown = l.weight(p+"ffn_down.weight", dim, ffn)
	}

	m.rope = kernels.RopeParams{
		HeadDim: cfg.HeadDim,
		Dims:    cfg.RopeDims,
		Base:    cfg.RopeBase,
		Scale:   cfg.RopeScale,
		NeoX:    cfg.RopeNeoX,
	}
	if cfg.RopeScaling == "llama3" {
		// llama3-style scaling: per-frequency factors that divide each
		// rotation frequency.
		m.rope.Freqs = l.hostVector("rope_freqs.weight", cfg.RopeDims/2)
	}
	if l.err != nil {
		l.freeAll()
		return nil, l.err
	}
	m.cfg = cfg
	m.fingerprint = fingerprint(f, cfg, l.names)
	if opts.MaxBatch > 0 {
		if err := m.act.grow(m, opts.MaxBatch, opts.MaxBatch); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// Config returns the model's hyperparameters.
func (m *Model) Config() Config { return m.cfg }

// Backend returns the backend the model runs on.
func (m *Model) Backend() kernels.Backend { return m.be }

// Fingerprint identifies the model's architecture, hyperparameters, tensor
// index and a sample of its weight bytes, as a hex sha256. Two files with
// the same fingerprint compute the same function; it keys prefix caches.
func (m *Model) Fingerprint() string { return m.fingerprint }

// Close frees the activation buffers and releases the weight tensors (on
// the CPU they are views of the file mapping, which the caller closes after
// the Model). The Model must not be used afterwards; KV caches it made
// should be freed first.
func (m *Model) Close() {
	m.act.free(m.be)
	for _, t := range m.allWeights() {
		m.be.Free(t)
	}
}

// PackedBytes is the memory the backend takes for repacked copies of the
// weights the forward pass multiplies by (kernels.WeightPacker), on top of
// the file's tensor data; 0 for backends that keep no copies. The copies
// are made on first use, so this is what a model takes once it has run.
func (m *Model) PackedBytes() int64 {
	wp, ok := m.be.(kernels.WeightPacker)
	if !ok {
		return 0
	}
	ws := []*kernels.Tensor{m.output}
	for i := range m.layers {
		ly := &m.layers[i]
		ws = append(ws, ly.wq, ly.wk, ly.wv, ly.wo, ly.wGate, ly.wUp, ly.wDown)
	}
	var n int64
	for _, w := range ws {
		if w != nil {
			n += wp.PackedBytes(w.Type, w.Rows, w.Cols)
		}
	}
	return n
}

func (m *Model) allWeights() []*kernels.Tensor {
	ts := []*kernels.Tensor{m.tokEmbd, m.outNorm}
	if m.output != m.tokEmbd {
		ts = append(ts, m.output)
	}
	for i := range m.layers {
		ly := &m.layers[i]
		ts = append(ts, ly.attnNorm, ly.wq, ly.wk, ly.wv, ly.wo, ly.bq, ly.bk, ly.bv, ly.bo,
			ly.qNorm, ly.kNorm, ly.postAttnNorm, ly.postFFNNorm, ly.ffnNorm, ly.wGate, ly.wUp, ly.wDown)
	}
	return slices.DeleteFunc(ts, func(t *kernels.Tensor) bool { return t == nil })
}

// loader wraps tensors of a file as backend weights, checking names, shapes
// and types, and remembering the first error.
type loader struct {
	f         *gguf.File
	be        kernels.Backend
	supported []quant.Type
	err       error
	names     []string
	made      []*kernels.Tensor
}

func (l *loader) fail(format string, args ...any) {
	if l.err == nil {
		l.err = fmt.Errorf(format, args...)
	}
}

// info finds a tensor and checks it holds rows rows of cols elements
// (GGUF dims [cols, rows], trailing 1s allowed).
func (l *loader) info(name string, rows, cols int) *gguf.TensorInfo {
	if l.err != nil {
		return nil
	}
	ti, ok := l.f.Tensor(name)
	if !ok {
		if rows == 1 {
			l.fail("model: tensor %s is missing (%s needs it with shape [%d])", name, l.f.Arch(), cols)
		} else {
			l.fail("model: tensor %s is missing (%s needs it with shape [%d, %d])", name, l.f.Arch(), cols, rows)
		}
		return nil
	}
	want := []uint64{uint64(cols), uint64(rows)}
	got := ti.Dims
	for len(got) > 2 && got[len(got)-1] == 1 {
		got = got[:len(got)-1]
	}
	if len(got) == 1 {
		got = []uint64{got[0], 1}
	}
	if !slices.Equal(got, want) {
		if rows == 1 {
			l.fail("model: tensor %s has shape %v, want [%d]", name, ti.Dims, cols)
		} else {
			l.fail("model: tensor %s has shape %v, want [%d, %d]", name, ti.Dims, cols, rows)
		}
		return nil
	}
	return ti
}

// data returns a tensor's bytes after checking their length.
func (l *loader) data(ti *gguf.TensorInfo, rows, cols int) []byte {
	rb, err := quant.RowBytes(ti.Type, cols)
	if err != nil {
		l.fail("model: tensor %s: %v", ti.Name, err)
		return nil
	}
	d := l.f.TensorData(ti)
	if len(d) != rb*rows {
		l.fail("model: tensor %s (%s %v) has %d bytes of data, want %d", ti.Name, ti.Type, ti.Dims, len(d), rb*rows)
		return nil
	}
	return d
}

// weight wraps a matrix of any type the backend supports.
func (l *loader) weight(name string, rows, cols int) *kernels.Tensor {
	ti := l.info(name, rows, cols)
	if ti == nil {
		return nil
	}
	if !slices.Contains(l.supported, ti.Type) {
		l.fail("model: tensor %s has type %s, which backend %s does not support (supported: %v)",
			name, ti.Type, l.be.Name(), l.supported)
		return nil
	}
	return l.wrap(ti, rows, cols)
}

// weightRows wraps consecutive row ranges of one fused matrix of cols
// columns as separate weights, parts[i] rows each (the tensor must have
// exactly sum(parts) rows). The weights share the file's bytes; nil
// entries on error.
func (l *loader) weightRows(name string, cols int, parts ...int) []*kernels.Tensor {
	out := make([]*kernels.Tensor, len(parts))
	total := 0
	for _, r := range parts {
		total += r
	}
	ti := l.info(name, total, cols)
	if ti == nil {
		return out
	}
	if !slices.Contains(l.supported, ti.Type) {
		l.fail("model: tensor %s has type %s, which backend %s does not support (supported: %v)",
			name, ti.Type, l.be.Name(), l.supported)
		return out
	}
	d := l.data(ti, total, cols)
	if d == nil {
		return out
	}
	rb := len(d) / total
	l.names = append(l.names, ti.Name)
	off := 0
	for i, r := range parts {
		t, err := l.be.Weight(ti.Type, r, cols, d[off*rb:(off+r)*rb])
		if err != nil {
			l.fail("model: tensor %s rows %d..%d: %v", name, off, off+r, err)
			return out
		}
		l.made = append(l.made, t)
		out[i], off = t, off+r
	}
	return out
}

// vector wraps a 1-D F32 tensor (norm weights, biases) as (1, n).
func (l *loader) vector(name string, n int) *kernels.Tensor {
	ti := l.info(name, 1, n)
	if ti == nil {
		return nil
	}
	if ti.Type != quant.F32 {
		l.fail("model: tensor %s has type %s, want F32", name, ti.Type)
		return nil
	}
	return l.wrap(ti, 1, n)
}

func (l *loader) wrap(ti *gguf.TensorInfo, rows, cols int) *kernels.Tensor {
	d := l.data(ti, rows, cols)
	if d == nil {
		return nil
	}
	t, err := l.be.Weight(ti.Type, rows, cols, d)
	if err != nil {
		l.fail("model: tensor %s (%s [%d, %d]): %v", ti.Name, ti.Type, cols, rows, err)
		return nil
	}
	l.names = append(l.names, ti.Name)
	l.made = append(l.made, t)
	return t
}

// hostVector copies a small 1-D F32 tensor to the host.
func (l *loader) hostVector(name string, n int) []float32 {
	ti := l.info(name, 1, n)
	if ti == nil {
		return nil
	}
	if ti.Type != quant.F32 {
		l.fail("model: tensor %s has type %s, want F32", name, ti.Type)
		return nil
	}
	d := l.data(ti, 1, n)
	if d == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
	}
	l.names = append(l.names, ti.Name)
	return out
}

func (l *loader) freeAll() {
	for _, t := range l.made {
		l.be.Free(t)
	}
}

// fingerprint hashes the architecture, the hyperparameters, the index of
// the tensors the model uses, and for each tensor a few sampled 64-byte
// windows of its data (cheap: a handful of pages per tensor, yet different
// fine-tunes of one architecture get different fingerprints).
func fingerprint(f *gguf.File, cfg Config, names []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "sluice-model-v1\x00%s\x00%d %d %d %d %d %d %d %d\x00",
		cfg.Arch, cfg.VocabSize, cfg.Dim, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.HeadDim, cfg.FFNDim, cfg.RopeDims)
	fmt.Fprintf(h, "%08x %08x %08x %08x %t %t %t %t\x00",
		math.Float32bits(cfg.NormEps), math.Float32bits(cfg.AttnScale), math.Float32bits(cfg.RopeBase),
		math.Float32bits(cfg.RopeScale), cfg.RopeNeoX, cfg.QKVBias, cfg.OutBias, cfg.TiedOutput)
	if cfg.QKNorm {
		h.Write([]byte("qk-norm\x00")) // only when set: llama/qwen2 fingerprints stay as they were
	}
	if cfg.PostNorms {
		h.Write([]byte("post-norms\x00"))
	}
	if cfg.Arch == "granite" {
		fmt.Fprintf(h, "granite %08x %08x %08x\x00", math.Float32bits(cfg.EmbedScale),
			math.Float32bits(cfg.ResidualScale), math.Float32bits(cfg.LogitScale))
	}
	const windows, win = 8, 64
	for _, name := range names {
		ti, _ := f.Tensor(name)
		fmt.Fprintf(h, "%s %d %v %d\x00", ti.Name, ti.Type, ti.Dims, ti.Size)
		d := f.TensorData(ti)
		if len(d) <= windows*win {
			h.Write(d)
			continue
		}
		step := (len(d) - win) / (windows - 1)
		for i := 0; i < windows; i++ {
			off := i * step
			h.Write(d[off : off+win])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
