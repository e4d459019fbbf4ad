package model

import (
	"fmt"

	"github.com/sluice-llm/sluice/gguf"
)

// graniteConfig reads granite's multipliers into c (1 when absent) and
// refuses them in other architectures, where they would change the math
// unnoticed. Granite is llama with these scales: the token embeddings
// times embedding_scale, each attention and FFN output times
// residual_scale before its residual add, the logits divided by
// logit_scale (required, as in llama.cpp), and q·k times attention.scale
// (read for every architecture as Config.AttnScale).
func graniteConfig(f *gguf.File, c *Config) error {
	c.EmbedScale, c.ResidualScale, c.LogitScale = 1, 1, 1
	keys := []string{"embedding_scale", "residual_scale", "logit_scale"}
	if c.Arch != "granite" {
		for _, k := range keys {
			if _, ok := f.Get(c.Arch + "." + k); ok {
				return fmt.Errorf("model: metadata key %s.%s (a granite multiplier) is not supported for %s", c.Arch, k, c.Arch)
			}
		}
		return nil
	}
	if _, ok := f.Get("granite.logit_scale"); !ok {
		return fmt.Errorf("model: metadata key granite.logit_scale is missing")
	}
	md := metaReader{f: f}
	for i, dst := range []*float32{&c.EmbedScale, &c.ResidualScale, &c.LogitScale} {
		// llama.cpp treats 0 as "no scaling" for the optional two.
		v := md.floatOpt("granite."+keys[i], 0)
		if !finite(v) || v < 0 || (v == 0 && i == 2) {
			return fmt.Errorf("model: granite.%s=%v must be a finite positive number", keys[i], v)
		}
		if v != 0 {
			*dst = v
		}
	}
	return md.err
}
