package model

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sluice-llm/sluice/gguf"
)

// Config holds the hyperparameters of a model, read entirely from GGUF
// metadata (and, for the vocabulary size, from token_embd.weight's shape).
type Config struct {
	Arch string // GGUF general.architecture: "llama", "qwen2", "qwen3", "phi3", "olmo2" or "granite"
	Name string // general.name, informational; may be empty

	VocabSize     int // rows of token_embd.weight
	Dim           int // {arch}.embedding_length
	Layers        int // {arch}.block_count
	Heads         int // {arch}.attention.head_count
	KVHeads       int // {arch}.attention.head_count_kv (defaults to Heads)
	HeadDim       int // {arch}.attention.key_length (defaults to Dim/Heads)
	FFNDim        int // {arch}.feed_forward_length
	ContextLength int // {arch}.context_length (trained context; informational)

	NormEps   float32 // {arch}.attention.layer_norm_rms_epsilon
	AttnScale float32 // multiplies q·k; {arch}.attention.scale or 1/sqrt(HeadDim)

	RopeDims    int     // {arch}.rope.dimension_count (defaults to HeadDim)
	RopeBase    float32 // {arch}.rope.freq_base (defaults to 10000)
	RopeScale   float32 // positions are multiplied by this (1/linear factor; 1 = none)
	RopeNeoX    bool    // rotate (i, i+Dims/2) pairs (qwen2) instead of (2i, 2i+1) (llama)
	RopeScaling string  // "none", "linear", or "llama3" (rope_freqs.weight present)

	QKVBias   bool // attn_q/k/v.bias tensors present (qwen2 always)
	QKNorm    bool // RMS norms of q and k before rope, attn_q_norm/attn_k_norm: per head (qwen3) or per row (olmo2)
	PostNorms bool // RMS norms after attention and FFN (post_attention_norm, post_ffw_norm) instead of before (olmo2)

	// granite's multipliers; 1 (no scaling) for other architectures.
	EmbedScale    float32 // {arch}.embedding_scale: multiplies the token embeddings
	ResidualScale float32 // {arch}.residual_scale: multiplies each block's output before the residual add
	LogitScale    float32 // {arch}.logit_scale: divides the logits
	FusedQKV      bool    // one attn_qkv.weight (q rows, k rows, v rows) instead of attn_q/k/v (phi3)
	FusedFFN      bool    // ffn_up.weight holds gate rows then up rows; no ffn_gate (phi3)
	OutBias       bool    // attn_output.bias present
	TiedOutput    bool    // no output.weight: logits use token_embd.weight

	BOS int32   // tokenizer.ggml.bos_token_id, -1 if absent
	EOS []int32 // end-of-generation ids (eos, eot, eom) present in metadata
}

// QDim is the width of the concatenated query heads.
func (c *Config) QDim() int { return c.Heads * c.HeadDim }

// KVDim is the width of one K (or V) row in the KV cache.
func (c *Config) KVDim() int { return c.KVHeads * c.HeadDim }

// supportedArchs are the GGUF architectures this package can run.
var supportedArchs = map[string]bool{"llama": true, "qwen2": true, "qwen3": true, "phi3": true, "olmo2": true, "granite": true}

// missingArchs are architectures people run that this package does not
// support yet, with what is missing, for the error Load returns.
var missingArchs = map[string]string{
	"gemma2":   "needs sliding-window attention, attention and logit soft-capping and GELU",
	"gemma3":   "needs sliding-window attention and GELU",
	"mistral3": "needs YaRN rope scaling and attention temperature scaling",
	"qwen2moe": "needs mixture-of-experts layers",
	"qwen3moe": "needs mixture-of-experts layers",
}

// ReadConfig returns the hyperparameters of the model in f as Load would
// (Model.Config), from its metadata and tensor index alone: no weight is
// read or wrapped, so it is cheap on any file, split or not. Unsupported
// architectures and bad or missing keys are refused with an error naming
// the key; a missing or mis-shaped tensor is only found by Load.
func ReadConfig(f *gguf.File) (Config, error) {
	c, err := readConfig(f)
	if err != nil {
		return c, err
	}
	// The vocabulary size is the number of rows of the embedding table.
	ti, ok := f.Tensor("token_embd.weight")
	if !ok {
		return c, fmt.Errorf("model: tensor token_embd.weight is missing")
	}
	if len(ti.Dims) != 2 || ti.Dims[1] > math.MaxInt32 {
		return c, fmt.Errorf("model: tensor token_embd.weight has shape %v, want [%d, vocab]", ti.Dims, c.Dim)
	}
	c.VocabSize = int(ti.Dims[1])
	// Every block has several tensors: a block count beyond the size of the
	// tensor index is corrupt, and Load must not size anything by it.
	if c.Layers > len(f.Tensors) {
		return c, fmt.Errorf("model: %s.block_count=%d but the file has only %d tensors", c.Arch, c.Layers, len(f.Tensors))
	}
	if v, ok := f.Uint32(c.Arch + ".vocab_size"); ok && int(v) != c.VocabSize {
		return c, fmt.Errorf("model: %s.vocab_size=%d but token_embd.weight has %d rows", c.Arch, v, c.VocabSize)
	}
	_, hasOutput := f.Tensor("output.weight")
	c.TiedOutput = !hasOutput
	_, c.QKVBias = f.Tensor("blk.0.attn_q.bias")
	if c.Arch == "qwen2" {
		c.QKVBias = true // required: Load reports a missing bias by name
	}
	_, c.OutBias = f.Tensor("blk.0.attn_output.bias")
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		c.RopeScaling = "llama3"
	}
	// Each architecture's own tensors (arch_*.go).
	for _, archConfig := range []func(*gguf.File, *Config) error{qkNormConfig, olmo2Config, phi3Config} {
		if err := archConfig(f, &c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// readConfig builds a Config from f's metadata. Tensor-derived fields
// (VocabSize, QKVBias, OutBias, TiedOutput, RopeScaling "llama3") are filled
// in by ReadConfig, which looks at the tensor index.
func readConfig(f *gguf.File) (Config, error) {
	arch := f.Arch()
	var c Config
	c.Arch = arch
	if arch == "" {
		return c, fmt.Errorf("model: general.architecture is missing")
	}
	if !supportedArchs[arch] {
		if why, ok := missingArchs[arch]; ok {
			return c, fmt.Errorf("model: unsupported architecture %q: %s (supported: llama, qwen2, qwen3, phi3, olmo2, granite)", arch, why)
		}
		return c, fmt.Errorf("model: unsupported architecture %q (supported: llama, qwen2, qwen3, phi3, olmo2, granite)", arch)
	}
	c.Name, _ = f.String("general.name")
	key := func(s string) string { return arch + "." + s }
	md := metaReader{f: f}

	c.Dim = md.intReq(key("embedding_length"))
	c.Layers = md.intReq(key("block_count"))
	c.Heads = md.intPerLayer(key("attention.head_count"), true)
	c.KVHeads = md.intPerLayer(key("attention.head_count_kv"), false)
	c.FFNDim = md.intPerLayer(key("feed_forward_length"), true)
	c.ContextLength = md.intOpt(key("context_length"), 0)
	if md.err != nil {
		return c, md.err
	}
	if n := md.intOpt(key("expert_count"), 0); n > 0 {
		return c, fmt.Errorf("model: %s with %d experts (mixture of experts) is not supported", arch, n)
	}
	if c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.FFNDim <= 0 {
		return c, fmt.Errorf("model: bad hyperparameters: %s=%d %s=%d %s=%d %s=%d",
			key("embedding_length"), c.Dim, key("block_count"), c.Layers,
			key("attention.head_count"), c.Heads, key("feed_forward_length"), c.FFNDim)
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.KVHeads < 0 || c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("model: %s=%d is not a divisor of %s=%d",
			key("attention.head_count_kv"), c.KVHeads, key("attention.head_count"), c.Heads)
	}
	c.HeadDim = md.intOpt(key("attention.key_length"), 0)
	if c.HeadDim == 0 {
		if c.Dim%c.Heads != 0 {
			return c, fmt.Errorf("model: %s=%d is not a multiple of %s=%d and %s is absent",
				key("embedding_length"), c.Dim, key("attention.head_count"), c.Heads, key("attention.key_length"))
		}
		c.HeadDim = c.Dim / c.Heads
	}
	if vl := md.intOpt(key("attention.value_length"), c.HeadDim); vl != c.HeadDim {
		return c, fmt.Errorf("model: %s=%d differs from key length %d; not supported",
			key("attention.value_length"), vl, c.HeadDim)
	}

	if _, ok := f.Get(key("attention.layer_norm_rms_epsilon")); !ok {
		return c, fmt.Errorf("model: metadata key %s is missing", key("attention.layer_norm_rms_epsilon"))
	}
	c.NormEps = md.floatOpt(key("attention.layer_norm_rms_epsilon"), 0)
	if md.err != nil {
		return c, md.err
	}
	if !finite(c.NormEps) || c.NormEps < 0 {
		return c, fmt.Errorf("model: %s=%v must be a finite non-negative number",
			key("attention.layer_norm_rms_epsilon"), c.NormEps)
	}
	c.AttnScale = md.floatOpt(key("attention.scale"), 0)
	if !finite(c.AttnScale) {
		return c, fmt.Errorf("model: %s=%v is not finite", key("attention.scale"), c.AttnScale)
	}
	if c.AttnScale == 0 {
		c.AttnScale = float32(1 / math.Sqrt(float64(c.HeadDim)))
	}

	c.RopeDims = md.intOpt(key("rope.dimension_count"), c.HeadDim)
	if c.RopeDims <= 0 || c.RopeDims > c.HeadDim || c.RopeDims%2 != 0 {
		return c, fmt.Errorf("model: %s=%d must be even and at most the head size %d",
			key("rope.dimension_count"), c.RopeDims, c.HeadDim)
	}
	c.RopeBase = md.floatOpt(key("rope.freq_base"), 10000)
	if !finite(c.RopeBase) || c.RopeBase <= 0 {
		return c, fmt.Errorf("model: %s=%v must be a finite positive number", key("rope.freq_base"), c.RopeBase)
	}
	c.RopeNeoX = arch == "qwen2" || arch == "qwen3" || arch == "phi3" || arch == "olmo2"
	c.RopeScale = 1
	c.RopeScaling = "none"
	scalingType, hasType := f.String(key("rope.scaling.type"))
	factor := md.floatOpt(key("rope.scaling.factor"), 0)
	if !hasType {
		// Older files carry only rope.scale_linear.
		if lin := md.floatOpt(key("rope.scale_linear"), 0); lin > 0 {
			scalingType, factor = "linear", lin
		} else {
			scalingType = "none"
		}
	}
	if !finite(factor) {
		return c, fmt.Errorf("model: rope scaling factor %v is not finite", factor)
	}
	switch strings.ToLower(scalingType) {
	case "none", "":
	case "linear":
		if factor > 0 && factor != 1 {
			c.RopeScale = 1 / factor
			c.RopeScaling = "linear"
		}
	default:
		return c, fmt.Errorf("model: %s=%q is not supported (supported: none, linear, llama3 rope_freqs)",
			key("rope.scaling.type"), scalingType)
	}
	if md.err != nil {
		return c, md.err
	}

	if err := graniteConfig(f, &c); err != nil {
		return c, err
	}

	c.BOS = -1
	if v, ok := f.Uint32("tokenizer.ggml.bos_token_id"); ok {
		c.BOS = int32(v)
	}
	for _, k := range []string{"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		if v, ok := f.Uint32(k); ok && !slices.Contains(c.EOS, int32(v)) {
			c.EOS = append(c.EOS, int32(v))
		}
	}
	return c, nil
}

func finite(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

// metaReader reads numeric metadata, remembering the first error.
type metaReader struct {
	f   *gguf.File
	err error
}

func (m *metaReader) fail(format string, args ...any) {
	if m.err == nil {
		m.err = fmt.Errorf(format, args...)
	}
}

// int reads an integer key of any integer width. A present key of another
// type is an error.
func (m *metaReader) int(k string) (int, bool) {
	v, ok := m.f.Get(k)
	if !ok {
		return 0, false
	}
	if v.Type == gguf.Array {
		return 0, false // per-layer arrays are handled by intPerLayer
	}
	if n, ok := v.Int64(); ok && n >= 0 && n <= math.MaxInt32 {
		return int(n), true
	}
	m.fail("model: metadata key %s = %v is not a non-negative integer", k, v)
	return 0, false
}

func (m *metaReader) intReq(k string) int {
	v, ok := m.int(k)
	if !ok {
		m.fail("model: metadata key %s is missing", k)
	}
	return v
}

func (m *metaReader) intOpt(k string, def int) int {
	if v, ok := m.int(k); ok {
		return v
	}
	return def
}

// intPerLayer reads a key that may be a scalar or a per-layer array; an
// array must hold the same value for every layer.
func (m *metaReader) intPerLayer(k string, required bool) int {
	if v, ok := m.int(k); ok {
		return v
	}
	if vs, ok := m.f.Int32s(k); ok && len(vs) > 0 {
		for _, x := range vs {
			if x != vs[0] {
				m.fail("model: %s varies per layer (%v); not supported", k, vs)
				return 0
			}
		}
		return int(vs[0])
	}
	if required {
		m.fail("model: metadata key %s is missing", k)
	}
	return 0
}

func (m *metaReader) floatOpt(k string, def float32) float32 {
	v, ok := m.f.Get(k)
	if !ok {
		return def
	}
	x, ok := v.Float64()
	if !ok {
		m.fail("model: metadata key %s = %v is not a number", k, v)
		return def
	}
	return float32(x)
}
