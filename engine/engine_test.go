package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/model"
)

// golden is one line of ../shared/golden/<model>.jsonl.
type golden struct {
	Prompt       string  `json:"prompt"`
	PromptTokens []int32 `json:"prompt_tokens"`
	Generated    []int32 `json:"generated"`
	Steps        []struct {
		Top [][]float64 `json:"top"` // [id, logit], best first
		Lse float64     `json:"lse"` // logsumexp of all logits
	} `json:"steps"`
}

// goldenMaxTokens is the length at which llama.cpp stopped generating.
const goldenMaxTokens = 48

func loadGolden(t *testing.T, name string) []golden {
	t.Helper()
	f, err := os.Open(testenv.Shared(t, "golden", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var g golden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("%s.jsonl line %d: %v", name, len(out)+1, err)
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s.jsonl: no prompts", name)
	}
	return out
}

// newTestEngine builds an engine on a shared model and closes it when the
// test ends. Threads defaults to 1 (the test machine is small and shared).
func newTestEngine(t *testing.T, name string, cfg Config) *Engine {
	t.Helper()
	return newTestEngineHook(t, name, cfg, nil)
}

func newTestEngineHook(t *testing.T, name string, cfg Config, hook func()) *Engine {
	t.Helper()
	cfg.ModelPath = testenv.Shared(t, "models", name+".gguf")
	if cfg.Backend == "" {
		// make gpu-check runs the engine tests on "cuda"; "" means cpu.
		cfg.Backend = os.Getenv("SLUICE_TEST_BACKEND")
	}
	if cfg.Threads == 0 {
		cfg.Threads = 1
	}
	e, err := newEngine(cfg, hook)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// result is a whole stream read back.
type result struct {
	tokens []int32
	text   string
	events int
	final  Event
}

// collect reads s to its end, failing the test if it takes too long. It
// may run on any goroutine.
func collect(t *testing.T, s *Stream) result {
	t.Helper()
	var r result
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, ok := s.Next()
			if !ok {
				return
			}
			r.events++
			if ev.HasToken {
				r.tokens = append(r.tokens, ev.Token)
			}
			r.text += ev.Text
			if ev.Done {
				r.final = ev
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Errorf("stream %d did not finish", s.id)
		return r
	}
	if !r.final.Done {
		t.Errorf("stream %d ended without a final event", s.id)
	}
	return r
}

func greedy(prompt []int32, maxTokens int) *Request {
	return &Request{Prompt: prompt, MaxTokens: maxTokens}
}

func submit(t *testing.T, e *Engine, req *Request) *Stream {
	t.Helper()
	s, err := e.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return s
}

// checkGolden compares a generation with the expected greedy
// continuation.
func checkGolden(t *testing.T, where string, g golden, r result, maxTokens int) {
	t.Helper()
	if !slices.Equal(r.tokens, g.Generated) {
		t.Errorf("%s: generated %v\n     want %v", where, r.tokens, g.Generated)
	}
	want := FinishLength
	if len(g.Generated) < maxTokens {
		want = FinishStop
	}
	if r.final.Finish != want {
		t.Errorf("%s: finish %q, want %q (err %v)", where, r.final.Finish, want, r.final.Err)
	}
	if u := r.final.Usage; u.PromptTokens != len(g.PromptTokens) || u.CompletionTokens != len(g.Generated) {
		t.Errorf("%s: usage %+v, want %d prompt and %d completion tokens", where, u, len(g.PromptTokens), len(g.Generated))
	}
}

var goldenModels = []string{"stories260K", "synth-llama-q4_0", "synth-qwen2-q8_0"}

// referenceGreedy is the model package's own single-sequence greedy
// generation (no batching, no chunking, contiguous blocks) of up to
// maxTokens tokens for each prompt: what the engine must reproduce exactly.
func referenceGreedy(t *testing.T, name string, prompts [][]int32, maxTokens int) [][]int32 {
	t.Helper()
	f, err := gguf.Open(testenv.Shared(t, "models", name+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be, err := kernels.Open("cpu", kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := make([][]int32, len(prompts))
	for i, p := range prompts {
		s, err := model.NewSession(m, 1, len(p)+maxTokens, model.SessionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[i], err = s.Generate(0, p, maxTokens, 0, nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func promptsOf(gs []golden) [][]int32 {
	out := make([][]int32, len(gs))
	for i, g := range gs {
		out[i] = g.PromptTokens
	}
	return out
}

// checkGreedy compares a generation with the expected greedy output of at
// most maxTokens tokens.
func checkGreedy(t *testing.T, where string, prompt, want []int32, maxTokens int, r result) {
	t.Helper()
	checkGolden(t, where, golden{PromptTokens: prompt, Generated: want}, r, maxTokens)
}

// nearTieTol is how close (absolute logit) llama.cpp's best two
// candidates must be for a greedy divergence to count as a near tie: the
// quantized models' logits differ from llama.cpp's by a few 1e-2, since
// llama.cpp also quantizes activations (see golden/README.md).
const nearTieTol = 0.03

// checkNearTie checks that the model's own greedy output equals
// llama.cpp's up to the first divergence, and that llama.cpp's logits
// there are a near tie between the two choices (after which the
// continuations are unrelated).
func checkNearTie(t *testing.T, i int, g golden, ours []int32) {
	t.Helper()
	k := 0
	for k < len(ours) && k < len(g.Generated) && ours[k] == g.Generated[k] {
		k++
	}
	if k == len(ours) && k == len(g.Generated) {
		return
	}
	if k >= len(g.Steps) || k >= len(ours) {
		t.Errorf("prompt %d: greedy output %v is a prefix of llama.cpp's %v or vice versa", i, ours, g.Generated)
		return
	}
	top := g.Steps[k].Top
	for _, c := range top {
		if int32(c[0]) == ours[k] && top[0][1]-c[1] <= nearTieTol {
			t.Logf("prompt %d: step %d: llama.cpp picks %d (%.5f), the model %d (%.5f): a near tie; expecting the model's own continuation",
				i, k, int32(top[0][0]), top[0][1], ours[k], c[1])
			return
		}
	}
	t.Errorf("prompt %d: step %d: the model picks %d, llama.cpp %d, which is not a near tie (top %v)", i, k, ours[k], g.Generated[k], top)
}

// TestGoldenGreedy checks the engine's greedy outputs against llama.cpp's
// (through the model's own single-sequence generation, which must equal
// llama.cpp's except after near ties), one request at a time and all at
// once, with a token budget small enough
// that long prompts are prefilled in chunks next to other requests'
// decodes.
func TestGoldenGreedy(t *testing.T) {
	for _, name := range goldenModels {
		t.Run(name, func(t *testing.T) {
			gs := loadGolden(t, name)
			ref := referenceGreedy(t, name, promptsOf(gs), goldenMaxTokens)
			for i := range gs {
				checkNearTie(t, i, gs[i], ref[i])
			}
			e := newTestEngine(t, name, Config{MaxNumBatchedTokens: 64, DisablePrefixCache: true})
			for i, g := range gs {
				r := collect(t, submit(t, e, greedy(g.PromptTokens, goldenMaxTokens)))
				checkGreedy(t, "sequential prompt "+itoa(i), g.PromptTokens, ref[i], goldenMaxTokens, r)
			}
			streams := make([]*Stream, len(gs))
			for i, g := range gs {
				streams[i] = submit(t, e, greedy(g.PromptTokens, goldenMaxTokens))
			}
			results := make([]result, len(gs))
			var wg sync.WaitGroup
			for i := range streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = collect(t, streams[i])
				}()
			}
			wg.Wait()
			for i := range gs {
				checkGreedy(t, "concurrent prompt "+itoa(i), gs[i].PromptTokens, ref[i], goldenMaxTokens, results[i])
			}
			waitIdle(t, e)
			if st := e.Stats(); st.KVUsage != 0 || st.Running != 0 || st.Waiting != 0 {
				t.Errorf("after all finished: %+v", st)
			}
		})
	}
}

// waitIdle waits until the loop has published a snapshot with nothing live.
func waitIdle(t *testing.T, e *Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.Stats()
		if st.Running == 0 && st.Waiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not idle: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func testModel(t *testing.T, name string) string {
	t.Helper()
	return testenv.Shared(t, "models", name+".gguf")
}

// loadModelConfig reads a model's hyperparameters through the model
// package.
func loadModelConfig(t *testing.T, path string) model.Config {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be, err := kernels.Open("cpu", kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.Config()
}
