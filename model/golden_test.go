package model

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/kernels"
	_ "github.com/sluice-llm/sluice/kernels/cpu"
	_ "github.com/sluice-llm/sluice/kernels/cuda" // SLUICE_TEST_BACKEND=cuda (make gpu-check)
)

// testBackend is the backend the tests run on: $SLUICE_TEST_BACKEND, or
// "cpu" (the pure-Go "ref" backend of refbackend_test.go is the fallback
// and a second opinion).
func testBackend(t testing.TB) kernels.Backend {
	t.Helper()
	name := os.Getenv("SLUICE_TEST_BACKEND")
	if name == "" {
		name = "cpu"
	}
	threads := 2
	if v, err := strconv.Atoi(os.Getenv("SLUICE_TEST_THREADS")); err == nil {
		threads = v
	}
	be, err := kernels.Open(name, kernels.Options{Threads: threads})
	if err != nil {
		t.Fatalf("open backend: %v", err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// loadModel opens a shared test model on be.
func loadModel(t testing.TB, be kernels.Backend, file string) *Model {
	t.Helper()
	f, err := gguf.Open(testenv.Shared(t, "models", file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(f, be, Options{})
	if err != nil {
		f.Close()
		t.Fatalf("load %s: %v", file, err)
	}
	t.Cleanup(func() { m.Close(); f.Close() })
	return m
}

type goldenLine struct {
	Prompt       string  `json:"prompt"`
	PromptTokens []int32 `json:"prompt_tokens"`
	Steps        []struct {
		Top [][2]float64 `json:"top"`
		LSE float64      `json:"lse"`
	} `json:"steps"`
	Generated []int32 `json:"generated"`
}

func readGolden(t testing.TB, name string) []goldenLine {
	t.Helper()
	fh, err := os.Open(testenv.Shared(t, "golden", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var lines []goldenLine
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var g goldenLine
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("%s.jsonl line %d: %v", name, len(lines)+1, err)
		}
		if len(g.Steps) > len(g.Generated) {
			t.Fatalf("%s.jsonl line %d: %d steps but %d generated tokens", name, len(lines)+1, len(g.Steps), len(g.Generated))
		}
		lines = append(lines, g)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// goldenModels lists the models that have golden data.
func goldenModels(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testenv.Shared(t, "golden"), "*.jsonl"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".jsonl"))
	}
	return names
}

// tolerance is the allowed |ours − llama.cpp| for a logit of value v in a
// step whose logits have scale (max of |top logit| and |lse|).
type tolerance func(v, scale float64) float64

// backendTolerance is the tolerance for a real backend, by weight type:
//
//   - F32, F16: 5e-3 relative. Beyond summation order, llama.cpp (no flash
//     attention, F16 KV cache) rounds the query and the softmax
//     probabilities to F16 inside attention, and with an F16 cache a 1e-6
//     difference in a K or V value flips its F16 rounding now and then;
//     stories260K (a trained model with sharp attention) turns that into up
//     to 4e-3 relative late in its 193-token prompt. TestGoldenReference
//     checks 1e-3 against a backend that rounds the way llama.cpp does.
//   - BF16: llama.cpp rounds every matmul's activations to BF16 (8-bit
//     mantissa), so 1e-2 absolute plus 4e-3 relative.
//   - quantized: llama.cpp rounds activations to 8 bits; where a value lands
//     on the other side of a rounding step the whole row moves. The effect
//     scales with the logits (qwen2's random weights give logits ~150), so
//     6e-2 absolute plus 1e-2 of the step's scale.
func backendTolerance(model string) tolerance {
	switch weightType(model) {
	case "f32", "f16":
		return func(v, _ float64) float64 { return 5e-3 * math.Max(1, math.Abs(v)) }
	case "bf16":
		return func(v, _ float64) float64 { return 1e-2 + 4e-3*math.Abs(v) }
	default:
		return func(_, scale float64) float64 { return 6e-2 + 1e-2*scale }
	}
}

// weightType is the type suffix of a shared model name ("f32" for
// stories260K).
func weightType(model string) string {
	if model == "stories260K" {
		return "f32"
	}
	return model[strings.LastIndex(model, "-")+1:]
}

type goldenStats struct {
	steps, nearTies         int
	maxAbs, maxRel, maxLSE  float64
	maxAbsAt                string
	worstTieGap, worstRatio float64
}

var goldenTrace = os.Getenv("SLUICE_GOLDEN_TRACE") != ""

// checkStep compares one row of logits with a golden step.
func checkStep(t *testing.T, tol tolerance, st *goldenStats, where string, logits []float32,
	top [][2]float64, lse float64, want int32) {
	t.Helper()
	st.steps++
	scale := math.Max(math.Abs(top[0][1]), math.Abs(lse))
	var worst float64
	for _, e := range top {
		id, ref := int(e[0]), e[1]
		d := math.Abs(float64(logits[id]) - ref)
		worst = math.Max(worst, d)
		if d > st.maxAbs {
			st.maxAbs, st.maxAbsAt = d, where
		}
		st.maxRel = math.Max(st.maxRel, d/math.Max(1, math.Abs(ref)))
		st.worstRatio = math.Max(st.worstRatio, d/tol(ref, scale))
		if d > tol(ref, scale) {
			t.Errorf("%s: logit[%d] = %.5f, llama.cpp %.5f (|Δ| %.2g > tol %.2g)", where, id, logits[id], ref, d, tol(ref, scale))
		}
	}
	if goldenTrace {
		t.Logf("%s: max |Δ| %.2g", where, worst)
	}
	ours := logSumExp(logits)
	d := math.Abs(ours - lse)
	st.maxLSE = math.Max(st.maxLSE, d)
	st.worstRatio = math.Max(st.worstRatio, d/tol(lse, scale))
	if d > tol(lse, scale) {
		t.Errorf("%s: logsumexp %.5f, llama.cpp %.5f", where, ours, lse)
	}
	// Our best logit must be llama.cpp's best within tolerance, and the
	// argmax the same token unless llama.cpp's top two are that close.
	got := Argmax(logits)
	if d := float64(logits[got]) - top[0][1]; d > tol(top[0][1], scale) {
		t.Errorf("%s: our best logit %d = %.5f exceeds llama.cpp's best %.5f", where, got, logits[got], top[0][1])
	}
	if got != want {
		gap := top[0][1] - top[1][1]
		if gap > 2*tol(top[0][1], scale) {
			t.Errorf("%s: argmax %d (logit %.5f), llama.cpp %d (%.5f; runner-up gap %.3g)", where, got, logits[got], want, top[0][1], gap)
		} else {
			st.nearTies++
			st.worstTieGap = math.Max(st.worstTieGap, gap)
			t.Logf("%s: argmax %d vs llama.cpp %d: llama.cpp's top two are %.3g apart (tol %.3g)", where, got, want, gap, tol(top[0][1], scale))
		}
	}
}

func logSumExp(x []float32) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// runGolden feeds every golden prompt of model and its greedy continuation
// through the model (teacher forcing) and compares every step's logits with
// llama.cpp's. Even lines run the prompt as one prefill and then one token
// per step (the decode path); odd lines run prompt and continuation as one
// batch with logits for every step. The greedy continuation must match
// except at near-ties, which must be rare.
func runGolden(t *testing.T, be kernels.Backend, name string, tol tolerance) goldenStats {
	m := loadModel(t, be, name+".gguf")
	lines := readGolden(t, name)
	maxLen := 0
	for _, g := range lines {
		maxLen = max(maxLen, len(g.PromptTokens)+len(g.Generated))
	}
	s, err := NewSession(m, 1, maxLen, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var st goldenStats
	for li, g := range lines {
		s.Reset(0)
		where := func(step int) string { return fmt.Sprintf("%s line %d step %d", name, li, step) }
		if li%2 == 0 {
			logits, err := s.Prefill(0, g.PromptTokens, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, step := range g.Steps {
				if i > 0 {
					if err := s.Feed(Input{Seq: 0, Tokens: g.Generated[i-1 : i]}); err != nil {
						t.Fatal(err)
					}
					logits = s.Row(0)
				}
				checkStep(t, tol, &st, where(i), logits, step.Top, step.LSE, g.Generated[i])
			}
		} else {
			// Two inputs of one sequence in one batch: the prompt without
			// logits, then its last token and the continuation with.
			np := len(g.PromptTokens)
			rest := append([]int32{g.PromptTokens[np-1]}, g.Generated[:len(g.Steps)-1]...)
			if err := s.Feed(Input{Seq: 0, Tokens: g.PromptTokens[:np-1], Want: WantNone},
				Input{Seq: 0, Tokens: rest, Want: WantAll}); err != nil {
				t.Fatal(err)
			}
			for i, step := range g.Steps {
				checkStep(t, tol, &st, where(i), s.Row(i), step.Top, step.LSE, g.Generated[i])
			}
		}
	}
	t.Logf("%s: %d steps, max |Δlogit| %.3g (rel %.3g) at %s, max |Δlse| %.3g, worst %.2f of tolerance; argmax differs at %d near-tie steps (widest llama.cpp top-2 gap %.3g)",
		name, st.steps, st.maxAbs, st.maxRel, st.maxAbsAt, st.maxLSE, st.worstRatio, st.nearTies, st.worstTieGap)
	if limit := 2 + st.steps/10; st.nearTies > limit {
		t.Errorf("argmax differs at %d near-tie steps of %d: more than %d", st.nearTies, st.steps, limit)
	}
	return st
}

// TestGolden checks every shared model against llama.cpp's golden logits
// on the test backend.
func TestGolden(t *testing.T) {
	be := testBackend(t)
	for _, name := range goldenModels(t) {
		t.Run(name, func(t *testing.T) { runGolden(t, be, name, backendTolerance(name)) })
	}
}

// TestGoldenReference checks the float models against llama.cpp at 1e-3
// relative on the pure-Go reference backend that rounds inside attention
// the way llama.cpp does: the model's math, independent of kernel choices.
func TestGoldenReference(t *testing.T) {
	if testing.Short() {
		t.Skip("slow pure-Go backend")
	}
	be, err := kernels.Open("ref-ggml", kernels.Options{})
	if err != nil {
		t.Fatal(err)
	}
	strict := func(v, _ float64) float64 { return 1e-3 * math.Max(1, math.Abs(v)) }
	for _, name := range []string{"stories260K", "synth-llama-f32", "synth-qwen2-f32"} {
		t.Run(name, func(t *testing.T) {
			if st := runGolden(t, be, name, strict); st.nearTies != 0 {
				t.Errorf("argmax differs at %d steps", st.nearTies)
			}
		})
	}
}
