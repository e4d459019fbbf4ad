package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// archGolden is one file of testdata/archgolden (see its README.md):
// llama.cpp's logits, teacher-forced, for every position of Tokens.
type archGolden struct {
	Tokens []int32 `json:"tokens"`
	Steps  []struct {
		Top [][2]float64 `json:"top"` // 10 (id, logit), best first
		LSE float64      `json:"lse"`
	} `json:"steps"`
}

// archGoldenFiles maps each golden file to the sha256 of the synth model
// (shape, F32, seed 7) it was made from: a change in synth's output is
// reported as such, not as a wrong forward pass.
var archGoldenFiles = map[string]string{
	"tiny-llama":   "546bae3d71006f6539308a41fcfcbab7af0ce2eb51afcdad601daf2b478d3ea1",
	"tiny-qwen3":   "0cac546b72fcce78d650a4844ae01ebf76ce7528c1c16e4185479baea61fc977",
	"tiny-phi3":    "e2d202a7f0f937de7926c8b0dabc19262cf9088c4392450eda4981e456da62ae",
	"tiny-granite": "4d7b3356b278098c4d0e938a34893c88ba47d323841f7330dc1aa330927c8b9e",
	"tiny-olmo2":   "2db39d3e3fe431a972c351b6e993c593f7b2e089f4b6d81957d9afd126a4ef76",
}

// archGoldenTol is the allowed |ours − llama.cpp| per logit. The random
// weights give logits near 1 that differ by a few 1e-2 between tokens, so
// the relative 5e-3 of the shared golden test would let a missing q/k norm
// (2e-3 here) pass. llama.cpp's F16 rounding of the query, the softmax
// probabilities and the KV cache moves these logits by up to 4.1e-4
// (olmo2, whose whole-row q/k norms make sharper scores; 7e-5 against the
// ref-ggml backend, which rounds as llama.cpp does).
const archGoldenTol = 8e-4

// TestArchGolden compares the forward pass of each architecture with
// llama.cpp's on an F32 synth model of its shape, teacher-forced.
func TestArchGolden(t *testing.T) {
	for shape, sum := range archGoldenFiles {
		t.Run(shape, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "archgolden", shape+"-f32.json"))
			if err != nil {
				t.Fatal(err)
			}
			var g archGolden
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatalf("%s golden: %v", shape, err)
			}
			path := synthFile(t, shape)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
				t.Fatalf("synth %s F32 seed 7 has sha256 %x, the golden data was made from %s: synth's output changed; remake the golden (testdata/archgolden/README.md)", shape, h, sum)
			}
			f := writeSynthOpen(t, path)
			m, err := Load(f, testBackend(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got := allLogits(t, m, g.Tokens, SessionOptions{})
			var worst float64
			for i, st := range g.Steps {
				for _, e := range st.Top {
					d := math.Abs(float64(got[i][int(e[0])]) - e[1])
					worst = math.Max(worst, d)
					if d > archGoldenTol {
						t.Errorf("position %d logit %d: %.6f, llama.cpp %.6f", i, int(e[0]), got[i][int(e[0])], e[1])
					}
				}
				if d := math.Abs(logSumExp(got[i]) - st.LSE); d > archGoldenTol {
					t.Errorf("position %d: logsumexp %.6f, llama.cpp %.6f", i, logSumExp(got[i]), st.LSE)
				}
				if a := Argmax(got[i]); a != int32(st.Top[0][0]) && st.Top[0][1]-st.Top[1][1] > 2*archGoldenTol {
					t.Errorf("position %d: argmax %d, llama.cpp %d", i, a, int32(st.Top[0][0]))
				}
			}
			t.Logf("%s: max |Δ| %.2g over %d positions", shape, worst, len(g.Steps))
		})
	}
}
