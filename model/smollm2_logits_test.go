package model

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
)

// smolLM2Tol is the allowed |ours − llama.cpp| for a logit in a step of
// scale max(|best logit|, |logsumexp|). The trained model turns the 8-bit
// rounding of activations (which differs between any two implementations
// wherever a value lands near a rounding step) into logit differences
// that do not follow the scale: up to 0.93 here with the CPU backend (0.88
// where the scale is 9), 1.31 with the ref-ggml backend, and an
// independent float64 forward pass differs from both by about 0.6. This
// catches gross errors only; the argmax check below is the sharper one.
func smolLM2Tol(scale float64) float64 { return 1 + 0.02*scale }

// smolLM2Tie is the top-two gap of llama.cpp below which the argmax may
// differ (the cases' near ties are 0.059, 0.087 and 0.15 apart).
const smolLM2Tie = 0.2

// TestSmolLM2Logits compares SmolLM2-135M-Instruct's logits, teacher-forced
// over each chat case's prompt and answer in one batch, with llama.cpp's
// (testdata/smollm2/README.md): every top-10 logit and the logsumexp
// within smolLM2Tol, and the same argmax wherever llama.cpp's top two are
// at least smolLM2Tie apart.
func TestSmolLM2Logits(t *testing.T) {
	path := testenv.SmolLM2(t)
	fh, err := os.Open(filepath.Join("testdata", "smollm2", "logits.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(f, testBackend(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var g archGolden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil || len(g.Steps) != len(g.Tokens) {
			t.Fatalf("logits.jsonl line %d: %v (%d steps, %d tokens)", line, err, len(g.Steps), len(g.Tokens))
		}
		got := allLogits(t, m, g.Tokens, SessionOptions{})
		var worst float64
		agree := 0
		for i, s := range g.Steps {
			scale := math.Max(math.Abs(s.Top[0][1]), math.Abs(s.LSE))
			d := math.Abs(logSumExp(got[i]) - s.LSE)
			for _, e := range s.Top {
				d = math.Max(d, math.Abs(float64(got[i][int(e[0])])-e[1]))
			}
			worst = math.Max(worst, d)
			if d > smolLM2Tol(scale) {
				t.Errorf("line %d position %d: logits differ from llama.cpp's by %.3g > %.3g", line, i, d, smolLM2Tol(scale))
			}
			if a := Argmax(got[i]); a == int32(s.Top[0][0]) {
				agree++
			} else if s.Top[0][1]-s.Top[1][1] >= smolLM2Tie {
				t.Errorf("line %d position %d: argmax %d, llama.cpp %d (top two %.3g apart)", line, i, a, int32(s.Top[0][0]), s.Top[0][1]-s.Top[1][1])
			}
		}
		t.Logf("line %d: argmax agrees at %d of %d positions, max |Δ| %.3g", line, agree, len(g.Steps), worst)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
