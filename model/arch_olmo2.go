package model

import (
	"fmt"

	"github.com/sluice-llm/sluice/gguf"
)

// olmo2Config checks what an olmo2 file may carry that Load does not
// compute. OLMo 2 normalizes after attention and after the FFN
// (post_attention_norm, post_ffw_norm; no attn_norm or ffn_norm) and
// normalizes the whole q and k rows (attn_q_norm (qDim), attn_k_norm
// (kvDim)) before rope; Config.PostNorms and QKNorm say so.
func olmo2Config(f *gguf.File, c *Config) error {
	if c.Arch != "olmo2" {
		return nil
	}
	c.PostNorms = true // Load reports missing post-norms by name
	// llama.cpp's olmo2 treats a positive window as sliding-window
	// attention on some layers (OLMo 3), which this package cannot do.
	if w, ok := f.Uint32("olmo2.attention.sliding_window"); ok && w > 0 {
		return fmt.Errorf("model: olmo2.attention.sliding_window=%d: sliding-window attention is not supported", w)
	}
	return nil
}
