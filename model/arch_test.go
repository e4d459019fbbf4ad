package model

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/quant"
	"github.com/sluice-llm/sluice/synth"
)

// synthFile writes a random-weight F32 model of a registered synth shape
// into a temporary directory and returns its path.
func synthFile(t *testing.T, shape string) string {
	t.Helper()
	s, err := synth.LookupShape(shape)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), shape+".gguf")
	if err := synth.Write(path, synth.Options{Shape: s, Type: "F32", Seed: 7}); err != nil {
		t.Fatalf("synth %s: %v", shape, err)
	}
	return path
}

// writeSynth writes a model as synthFile does and opens it.
func writeSynth(t *testing.T, shape string) *gguf.File {
	t.Helper()
	return writeSynthOpen(t, synthFile(t, shape))
}

// writeSynthOpen opens a model file for the rest of the test.
func writeSynthOpen(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestArchReference checks each architecture's forward pass, teacher-forced
// over one sequence, against refForward on an F32 synth model of its shape.
// llama and qwen2 are here too: they have llama.cpp golden data, so they
// vouch for the reference that the other architectures rely on.
func TestArchReference(t *testing.T) {
	tokens := []int32{1, 17, 300, 42, 42, 7, 511, 256, 3, 99, 128, 64, 5, 200, 31, 450, 12, 8, 77, 160}
	for _, shape := range []string{"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-phi3", "tiny-olmo2", "tiny-granite"} {
		t.Run(shape, func(t *testing.T) {
			f := writeSynth(t, shape)
			m, err := Load(f, testBackend(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got := allLogits(t, m, tokens, SessionOptions{KVF32: true})
			want := refForward(t, f, tokens)
			var worst float64
			for i := range want {
				scale := 1.0
				for _, v := range want[i] {
					scale = math.Max(scale, math.Abs(v))
				}
				for j, v := range want[i] {
					d := math.Abs(float64(got[i][j]) - v)
					worst = math.Max(worst, d/scale)
					if d > 1e-4*scale {
						t.Fatalf("position %d logit %d: %.5f, reference %.5f (|Δ| %.2g, scale %.3g)", i, j, got[i][j], v, d, scale)
					}
				}
				if a, b := Argmax(got[i]), refArgmax(want[i]); a != b && want[i][b]-want[i][a] > 1e-3*scale {
					t.Errorf("position %d: argmax %d, reference %d", i, a, b)
				}
			}
			t.Logf("%s: max |Δ| %.2g of the row's largest logit", shape, worst)
		})
	}
}

func refArgmax(x []float64) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// TestQwen3Config checks what ReadConfig makes of a qwen3 file: NeoX rope,
// per-head q/k norms, and heads wider than dim/heads.
func TestQwen3Config(t *testing.T) {
	c, err := ReadConfig(writeSynth(t, "tiny-qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != "qwen3" || !c.QKNorm || !c.RopeNeoX || c.QKVBias || !c.TiedOutput {
		t.Errorf("config %+v: want qwen3 with q/k norms, NeoX rope, no biases, tied output", c)
	}
	if c.HeadDim != 128 || c.QDim() != 512 || c.Dim != 256 {
		t.Errorf("head dim %d, q dim %d, dim %d; want 128, 512, 256", c.HeadDim, c.QDim(), c.Dim)
	}
}

// TestPhi3Config checks what ReadConfig makes of a phi3 file: NeoX rope,
// fused QKV and gate-up projections.
func TestPhi3Config(t *testing.T) {
	c, err := ReadConfig(writeSynth(t, "tiny-phi3"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != "phi3" || !c.FusedQKV || !c.FusedFFN || !c.RopeNeoX || c.QKNorm || c.TiedOutput {
		t.Errorf("config %+v: want phi3 with fused projections, NeoX rope, untied output", c)
	}
}

// TestArchRefusals checks that what the new architectures' files may
// carry but Load does not compute is refused with the key or tensor named.
func TestArchRefusals(t *testing.T) {
	phi3, qwen3, llama := synthFile(t, "tiny-phi3"), synthFile(t, "tiny-qwen3"), synthFile(t, "tiny-llama")
	olmo2 := synthFile(t, "tiny-olmo2")
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	cases := []struct {
		name, path, want string
		editKV           func(string, gguf.Value) any
		editTensor       func(*gguf.TensorInfo, *[]byte) bool
		extra            func(*gguf.Writer)
	}{
		{name: "phi3 LongRoPE", path: phi3, want: "rope_factors_long.weight",
			extra: func(w *gguf.Writer) { w.AddTensor("rope_factors_long.weight", quant.F32, []uint64{32}, f32(32)) }},
		{name: "phi3 unfused ffn_up", path: phi3, want: "blk.0.ffn_up.weight has shape",
			editTensor: func(ti *gguf.TensorInfo, d *[]byte) bool {
				if ti.Name == "blk.0.ffn_up.weight" {
					ti.Dims[1] /= 2
					*d = (*d)[:len(*d)/2]
				}
				return true
			}},
		{name: "qwen3 without k norm", path: qwen3, want: "blk.1.attn_k_norm.weight is missing",
			editTensor: func(ti *gguf.TensorInfo, _ *[]byte) bool { return ti.Name != "blk.1.attn_k_norm.weight" }},
		{name: "olmo2 sliding window", path: olmo2, want: "olmo2.attention.sliding_window=4096",
			extra: func(w *gguf.Writer) {
				if err := w.Set("olmo2.attention.sliding_window", uint32(4096)); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "olmo2 per-head k norm", path: olmo2, want: "blk.0.attn_k_norm.weight has shape",
			editTensor: func(ti *gguf.TensorInfo, d *[]byte) bool {
				if ti.Name == "blk.0.attn_k_norm.weight" {
					ti.Dims[0] = 64
					*d = (*d)[:4*64]
				}
				return true
			}},
		{name: "llama with q norm", path: llama, want: "attn_q_norm.weight",
			extra: func(w *gguf.Writer) { w.AddTensor("blk.0.attn_q_norm.weight", quant.F32, []uint64{32}, f32(32)) }},
		{name: "llama with fused qkv", path: llama, want: "attn_qkv.weight",
			extra: func(w *gguf.Writer) { w.AddTensor("blk.0.attn_qkv.weight", quant.F32, []uint64{32}, f32(32)) }},
	}
	// Phi-3-mini-4k's sliding window (2047) is ignored, as llama.cpp does.
	_, err := loadPath(t, rewriteFile(t, phi3, nil, nil, func(w *gguf.Writer) {
		if err := w.Set("phi3.attention.sliding_window", uint32(512)); err != nil {
			t.Fatal(err)
		}
	}))
	if err != nil {
		t.Fatalf("phi3 with a sliding window: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadPath(t, rewriteFile(t, c.path, c.editKV, c.editTensor, c.extra))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load error %v, want one naming %q", err, c.want)
			}
		})
	}
}

// TestOlmo2Config checks what ReadConfig makes of an olmo2 file: post-norms,
// q/k norms, NeoX rope.
func TestOlmo2Config(t *testing.T) {
	c, err := ReadConfig(writeSynth(t, "tiny-olmo2"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != "olmo2" || !c.PostNorms || !c.QKNorm || !c.RopeNeoX || c.FusedQKV {
		t.Errorf("config %+v: want olmo2 with post-norms, q/k norms, NeoX rope", c)
	}
	if q, k := qkNormWidths(&c); q != c.QDim() || k != c.KVDim() {
		t.Errorf("q/k norm widths %d, %d; want whole rows %d, %d", q, k, c.QDim(), c.KVDim())
	}
}

// TestGraniteConfig checks granite's multipliers and their refusal
// elsewhere.
func TestGraniteConfig(t *testing.T) {
	c, err := ReadConfig(writeSynth(t, "tiny-granite"))
	if err != nil {
		t.Fatal(err)
	}
	if c.EmbedScale != 12 || c.ResidualScale != 0.22 || c.LogitScale != 8 || c.AttnScale != 0.015625 || c.RopeNeoX {
		t.Errorf("config %+v: want granite's multipliers 12, 0.22, 8, 1/64 and llama's rope", c)
	}
	granite, llama := synthFile(t, "tiny-granite"), synthFile(t, "tiny-llama")
	for _, c := range []struct {
		name, path, want string
		editKV           func(string, gguf.Value) any
		extra            func(*gguf.Writer)
	}{
		{name: "no logit scale", path: granite, want: "granite.logit_scale is missing",
			editKV: func(k string, v gguf.Value) any {
				if k == "granite.logit_scale" {
					return nil
				}
				return v
			}},
		{name: "negative residual scale", path: granite, want: "granite.residual_scale=-1",
			editKV: func(k string, v gguf.Value) any {
				if k == "granite.residual_scale" {
					return float32(-1)
				}
				return v
			}},
		{name: "llama with embedding scale", path: llama, want: "llama.embedding_scale",
			extra: func(w *gguf.Writer) {
				if err := w.Set("llama.embedding_scale", float32(12)); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadPath(t, rewriteFile(t, c.path, c.editKV, nil, c.extra))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load error %v, want one naming %q", err, c.want)
			}
		})
	}
}
