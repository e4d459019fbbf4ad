package model

import (
	"fmt"

	"github.com/sluice-llm/sluice/gguf"
)

// qwen3 is qwen2 without the q/k/v biases and with RMS norms of each query
// and key head before rope (attn_q_norm, attn_k_norm: (headDim)). olmo2
// normalizes q and k too, over whole rows (arch_olmo2.go).

// qkNormConfig sets QKNorm: required for qwen3 and olmo2 (Load reports
// missing norms by name), refused in other architectures, which would
// otherwise ignore tensors that change the math.
func qkNormConfig(f *gguf.File, c *Config) error {
	_, c.QKNorm = f.Tensor("blk.0.attn_q_norm.weight")
	if c.Arch == "qwen3" || c.Arch == "olmo2" {
		c.QKNorm = true
	} else if c.QKNorm {
		return fmt.Errorf("model: %s file has tensor blk.0.attn_q_norm.weight (q/k norms), which %s does not use", c.Arch, c.Arch)
	}
	return nil
}

// qkNormWidths returns the lengths of the attn_q_norm and attn_k_norm
// weights: one head for qwen3, whole rows for olmo2.
func qkNormWidths(c *Config) (q, k int) {
	if c.Arch == "olmo2" {
		return c.QDim(), c.KVDim()
	}
	return c.HeadDim, c.HeadDim
}
