// Package synth writes random-weight GGUF models with the exact tensor
// shapes of real architectures ("dummy" models), quantized by package quant
// the way llama.cpp's llama-quantize chooses types, with a real tokenizer
// copied from another GGUF or a built-in byte-level one.
//
// Dummy models let CI, benchmarks and offline demos run a model of a real
// size without downloading one. Their weights are deterministic pseudo-random
// numbers: the same shape, type and seed always give the same bytes.
package synth

import (
	"fmt"
	"sort"
	"strings"
)

// Shape is the hyperparameter set of an architecture: everything that fixes
// the tensor names and dimensions and the GGUF metadata.
type Shape struct {
	Name          string       // registry name, "llama-3.2-1b"
	Arch          string       // GGUF general.architecture: "llama", "qwen2", "qwen3", "phi3", "olmo2" or "granite"
	Dim           int          // embedding length (hidden size)
	Layers        int          // transformer blocks
	Heads         int          // attention heads
	KVHeads       int          // key/value heads (grouped-query attention)
	HeadDim       int          // per-head dimension; 0 means Dim/Heads
	FFN           int          // feed-forward (intermediate) length
	Vocab         int          // token embedding rows
	Tied          bool         // output projection shares token_embd.weight (no output.weight)
	Biases        bool         // Q/K/V projection biases (qwen2)
	QKNorm        bool         // per-head RMS norms of queries and keys, attn_q_norm/attn_k_norm (qwen3)
	Fused         bool         // fused attn_qkv and gate-up ffn_up (2·FFN rows, gate first) tensors (phi3)
	PostNorms     bool         // norms after attention and FFN instead of before, and q/k norms over whole rows (olmo2)
	Multipliers   *Multipliers // granite's scales; nil for other architectures
	RopeBase      float32      // rope.freq_base
	RopeScaling   *RopeScaling
	ContextLength int     // trained context length
	NormEps       float32 // attention.layer_norm_rms_epsilon
}

// RopeScaling describes Llama 3 style rope frequency scaling. llama.cpp's
// converter stores it not as metadata but as a rope_freqs.weight tensor of
// per-frequency factors, and so does this package.
type RopeScaling struct {
	Type            string  // "llama3"
	Factor          float64 // e.g. 32 for Llama 3.2, 8 for Llama 3.1
	LowFreqFactor   float64 // 1
	HighFreqFactor  float64 // 4
	OriginalContext int     // original_max_position_embeddings, 8192
}

// Multipliers are granite's scale factors, written as the GGUF keys
// granite.embedding_scale, residual_scale, logit_scale and attention.scale.
type Multipliers struct {
	Embedding float32 // multiplies the token embeddings
	Residual  float32 // multiplies each block's output before the residual add
	Logit     float32 // divides the logits
	Attention float32 // multiplies q·k (instead of 1/sqrt(head dim))
}

// HeadDimension returns the per-head dimension.
func (s Shape) HeadDimension() int {
	if s.HeadDim > 0 {
		return s.HeadDim
	}
	if s.Heads == 0 {
		return 0
	}
	return s.Dim / s.Heads
}

// Params returns the number of weights a model of this shape has.
func (s Shape) Params() int64 {
	hd := int64(s.HeadDimension())
	d, f := int64(s.Dim), int64(s.FFN)
	q, kv := int64(s.Heads)*hd, int64(s.KVHeads)*hd
	per := d + d*q + 2*d*kv + q*d + d + 3*d*f
	if s.Biases {
		per += q + 2*kv
	}
	if s.QKNorm {
		per += 2 * hd
	}
	if s.PostNorms { // q and k norms over whole rows
		per += q + kv
	}
	n := int64(s.Layers)*per + int64(s.Vocab)*d + d
	if !s.Tied {
		n += int64(s.Vocab) * d
	}
	if s.RopeScaling != nil {
		n += hd / 2
	}
	return n
}

// Validate reports the first inconsistent field of s.
func (s Shape) Validate() error {
	switch s.Arch {
	case "llama", "qwen2", "qwen3", "phi3", "olmo2", "granite":
	default:
		return fmt.Errorf("synth: shape %q: unsupported architecture %q (supported: llama, qwen2, qwen3, phi3, olmo2, granite)", s.Name, s.Arch)
	}
	if (s.Multipliers != nil) != (s.Arch == "granite") {
		return fmt.Errorf("synth: shape %q: multipliers are granite's (and granite needs them), not %s's", s.Name, s.Arch)
	}
	if s.PostNorms != (s.Arch == "olmo2") {
		return fmt.Errorf("synth: shape %q: post-norms are olmo2's, not %s's", s.Name, s.Arch)
	}
	if s.Fused != (s.Arch == "phi3") || (s.Fused && s.Biases) {
		return fmt.Errorf("synth: shape %q: fused projections are phi3's (without biases), not %s's", s.Name, s.Arch)
	}
	if s.QKNorm != (s.Arch == "qwen3") {
		return fmt.Errorf("synth: shape %q: q/k norms are qwen3's, not %s's", s.Name, s.Arch)
	}
	pos := []struct {
		name string
		v    int
	}{{"dim", s.Dim}, {"layers", s.Layers}, {"heads", s.Heads}, {"kv heads", s.KVHeads}, {"ffn", s.FFN}, {"vocab", s.Vocab}, {"context length", s.ContextLength}}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("synth: shape %q: %s must be positive, got %d", s.Name, p.name, p.v)
		}
	}
	if s.HeadDim < 0 || s.HeadDimension() <= 0 || (s.HeadDim == 0 && s.Dim%s.Heads != 0) {
		return fmt.Errorf("synth: shape %q: dim %d is not a multiple of %d heads", s.Name, s.Dim, s.Heads)
	}
	if s.HeadDimension()%2 != 0 {
		return fmt.Errorf("synth: shape %q: head dimension %d is odd", s.Name, s.HeadDimension())
	}
	if s.Heads%s.KVHeads != 0 {
		return fmt.Errorf("synth: shape %q: %d heads is not a multiple of %d KV heads", s.Name, s.Heads, s.KVHeads)
	}
	// Every quantized row must hold whole 32-element blocks; llama.cpp's
	// fallbacks for rows that are not whole 256-element super-blocks are
	// applied per tensor (see Plan).
	for _, n := range []int{s.Dim, s.FFN, s.Heads * s.HeadDimension()} {
		if n%32 != 0 {
			return fmt.Errorf("synth: shape %q: row length %d is not a multiple of 32", s.Name, n)
		}
	}
	if s.RopeBase <= 0 {
		return fmt.Errorf("synth: shape %q: rope base must be positive", s.Name)
	}
	if s.NormEps <= 0 {
		return fmt.Errorf("synth: shape %q: norm epsilon must be positive", s.Name)
	}
	if r := s.RopeScaling; r != nil {
		if r.Type != "llama3" {
			return fmt.Errorf("synth: shape %q: unsupported rope scaling %q (supported: llama3)", s.Name, r.Type)
		}
		if r.Factor <= 0 || r.LowFreqFactor <= 0 || r.HighFreqFactor <= r.LowFreqFactor || r.OriginalContext <= 0 {
			return fmt.Errorf("synth: shape %q: invalid llama3 rope scaling %+v", s.Name, *r)
		}
	}
	return nil
}

var llama3Scaling = func(factor float64) *RopeScaling {
	return &RopeScaling{Type: "llama3", Factor: factor, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}
}

// graniteMultipliers are Granite 3.x's (embedding_multiplier 12,
// residual_multiplier 0.22, logits_scaling 8, attention_multiplier 1/64).
var graniteMultipliers = &Multipliers{Embedding: 12, Residual: 0.22, Logit: 8, Attention: 0.015625}

// Shapes is the registry of known shapes, by name. The values are those of
// the published models' config.json files.
var Shapes = map[string]Shape{
	"llama-3.2-1b": {
		Arch: "llama", Dim: 2048, Layers: 16, Heads: 32, KVHeads: 8, FFN: 8192, Vocab: 128256,
		Tied: true, RopeBase: 500000, RopeScaling: llama3Scaling(32), ContextLength: 131072, NormEps: 1e-5,
	},
	"llama-3.2-3b": {
		Arch: "llama", Dim: 3072, Layers: 28, Heads: 24, KVHeads: 8, FFN: 8192, Vocab: 128256,
		Tied: true, RopeBase: 500000, RopeScaling: llama3Scaling(32), ContextLength: 131072, NormEps: 1e-5,
	},
	"llama-3.1-8b": {
		Arch: "llama", Dim: 4096, Layers: 32, Heads: 32, KVHeads: 8, FFN: 14336, Vocab: 128256,
		RopeBase: 500000, RopeScaling: llama3Scaling(8), ContextLength: 131072, NormEps: 1e-5,
	},
	"qwen2.5-0.5b": {
		Arch: "qwen2", Dim: 896, Layers: 24, Heads: 14, KVHeads: 2, FFN: 4864, Vocab: 151936,
		Tied: true, Biases: true, RopeBase: 1e6, ContextLength: 32768, NormEps: 1e-6,
	},
	"qwen2.5-1.5b": {
		Arch: "qwen2", Dim: 1536, Layers: 28, Heads: 12, KVHeads: 2, FFN: 8960, Vocab: 151936,
		Tied: true, Biases: true, RopeBase: 1e6, ContextLength: 32768, NormEps: 1e-6,
	},
	"qwen2.5-7b": {
		Arch: "qwen2", Dim: 3584, Layers: 28, Heads: 28, KVHeads: 4, FFN: 18944, Vocab: 152064,
		Biases: true, RopeBase: 1e6, ContextLength: 32768, NormEps: 1e-6,
	},
	"qwen3-0.6b": {
		Arch: "qwen3", Dim: 1024, Layers: 28, Heads: 16, KVHeads: 8, HeadDim: 128, FFN: 3072, Vocab: 151936,
		Tied: true, QKNorm: true, RopeBase: 1e6, ContextLength: 40960, NormEps: 1e-6,
	},
	"granite-3.3-2b": {
		Arch: "granite", Dim: 2048, Layers: 40, Heads: 32, KVHeads: 8, FFN: 8192, Vocab: 49159,
		Tied: true, Multipliers: graniteMultipliers, RopeBase: 10000000, ContextLength: 131072, NormEps: 1e-5,
	},
	"olmo-2-1b": {
		Arch: "olmo2", Dim: 2048, Layers: 16, Heads: 16, KVHeads: 16, FFN: 8192, Vocab: 100352,
		PostNorms: true, RopeBase: 500000, ContextLength: 4096, NormEps: 1e-6,
	},
	"phi-3-mini": {
		Arch: "phi3", Dim: 3072, Layers: 32, Heads: 32, KVHeads: 32, FFN: 8192, Vocab: 32064,
		Fused: true, RopeBase: 10000, ContextLength: 4096, NormEps: 1e-5,
	},
	"smollm2-135m": {
		Arch: "llama", Dim: 576, Layers: 30, Heads: 9, KVHeads: 3, FFN: 1536, Vocab: 49152,
		Tied: true, RopeBase: 100000, ContextLength: 8192, NormEps: 1e-5,
	},
	// The shapes of the synth-llama and synth-qwen2 test models: seconds to
	// generate, for CI and demos.
	"tiny-llama": {
		Arch: "llama", Dim: 256, Layers: 4, Heads: 8, KVHeads: 4, FFN: 768, Vocab: 512,
		RopeBase: 10000, ContextLength: 2048, NormEps: 1e-5,
	},
	"tiny-qwen2": {
		Arch: "qwen2", Dim: 256, Layers: 3, Heads: 2, KVHeads: 1, FFN: 512, Vocab: 512,
		Tied: true, Biases: true, RopeBase: 1e6, ContextLength: 2048, NormEps: 1e-5,
	},
	// qwen3-0.6b scaled down; its heads are wider than dim/heads, as there.
	"tiny-qwen3": {
		Arch: "qwen3", Dim: 256, Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 128, FFN: 512, Vocab: 512,
		Tied: true, QKNorm: true, RopeBase: 1e6, ContextLength: 2048, NormEps: 1e-6,
	},
	// granite-3.3-2b scaled down.
	"tiny-granite": {
		Arch: "granite", Dim: 256, Layers: 3, Heads: 4, KVHeads: 2, FFN: 512, Vocab: 512,
		Tied: true, Multipliers: graniteMultipliers, RopeBase: 10000, ContextLength: 2048, NormEps: 1e-5,
	},
	// olmo-2-1b scaled down.
	"tiny-olmo2": {
		Arch: "olmo2", Dim: 256, Layers: 3, Heads: 4, KVHeads: 2, FFN: 512, Vocab: 512,
		PostNorms: true, RopeBase: 500000, ContextLength: 2048, NormEps: 1e-6,
	},
	// phi-3-mini scaled down.
	"tiny-phi3": {
		Arch: "phi3", Dim: 256, Layers: 3, Heads: 4, KVHeads: 4, FFN: 512, Vocab: 512,
		Fused: true, RopeBase: 10000, ContextLength: 2048, NormEps: 1e-5,
	},
}

func init() {
	for name, s := range Shapes {
		s.Name = name
		Shapes[name] = s
	}
}

// ShapeNames returns the registered shape names, sorted.
func ShapeNames() []string {
	names := make([]string, 0, len(Shapes))
	for n := range Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupShape returns the registered shape called name (case-insensitive).
// The error lists the known names.
func LookupShape(name string) (Shape, error) {
	if s, ok := Shapes[strings.ToLower(name)]; ok {
		return s, nil
	}
	return Shape{}, fmt.Errorf("synth: unknown shape %q (known: %s)", name, strings.Join(ShapeNames(), ", "))
}
