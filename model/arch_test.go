package model

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/synth"
)

// writeSynth writes a random-weight F32 model of a registered synth shape
// into a temporary directory and opens it.
func writeSynth(t *testing.T, shape string) *gguf.File {
	t.Helper()
	s, err := synth.LookupShape(shape)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), shape+".gguf")
	if err := synth.Write(path, synth.Options{Shape: s, Type: "F32", Seed: 7}); err != nil {
		t.Fatalf("synth %s: %v", shape, err)
	}
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
	for _, shape := range []string{"tiny-llama", "tiny-qwen2", "tiny-qwen3"} {
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
