package model

import (
	"fmt"

	"github.com/sluice-llm/sluice/gguf"
)

// phi3 is llama with NeoX rope and fused projections: attn_qkv.weight
// (qDim+2·kvDim, dim) holds the q, k and v rows, and ffn_up.weight
// (2·ffn, dim) the gate rows then the up rows. Load wraps those row
// ranges as separate weights (loader.weightRows), so the forward pass is
// the shared decoder block.

// phi3Config sets FusedQKV and FusedFFN from the tensor index: phi3
// files fuse the gate and up projections, and usually Q, K and V. It
// refuses what phi3 files may carry but this package does not compute:
// LongRoPE factors.
func phi3Config(f *gguf.File, c *Config) error {
	_, c.FusedQKV = f.Tensor("blk.0.attn_qkv.weight")
	if c.Arch != "phi3" {
		if c.FusedQKV {
			return fmt.Errorf("model: %s file has tensor blk.0.attn_qkv.weight (fused QKV), which %s does not use", c.Arch, c.Arch)
		}
		return nil
	}
	c.FusedFFN = true // ffn_up.weight is checked for 2·FFN rows by Load
	for _, name := range []string{"rope_factors_long.weight", "rope_factors_short.weight"} {
		if _, ok := f.Tensor(name); ok {
			return fmt.Errorf("model: phi3 tensor %s (LongRoPE scaling) is not supported", name)
		}
	}
	// phi3.attention.sliding_window (2047 in Phi-3-mini-4k files) is read
	// and not used: llama.cpp's phi3 loader sets it to none as well ("fix
	// conversion scripts to correctly populate n_swa"), so both attend over
	// the whole context.
	return nil
}
