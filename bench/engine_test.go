package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
)

func openStories(t *testing.T) *gguf.File {
	t.Helper()
	f, err := gguf.Open(testenv.Shared(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestRunEngine(t *testing.T) {
	f := openStories(t)
	var progress bytes.Buffer
	res, err := RunEngine(context.Background(), EngineOptions{
		File: f, Path: "stories260K.gguf", Prompt: 16, Gen: 8,
		Batches: []int{1, 3}, BatchPrompt: 4, BatchGen: 5, Reps: 2, Threads: 2, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, kind   string
		tokens, seqs int
	}{
		{"pp16", "prefill", 16, 1},
		{"tg8", "decode", 8, 1},
		{"pp4+tg5 B=1", "batched", 5, 1},
		{"pp4+tg5 B=3", "batched", 15, 3},
	}
	if len(res.Tests) != len(want) {
		t.Fatalf("%d tests, want %d: %+v", len(res.Tests), len(want), res.Tests)
	}
	for i, w := range want {
		g := res.Tests[i]
		if g.Name != w.name || g.Kind != w.kind || g.Tokens != w.tokens || g.Seqs != w.seqs {
			t.Errorf("test %d = %s/%s/%d/%d, want %+v", i, g.Name, g.Kind, g.Tokens, g.Seqs, w)
		}
		if len(g.TokensPerSec) != 2 {
			t.Errorf("%s: %d samples, want 2", g.Name, len(g.TokensPerSec))
		}
		for _, v := range g.TokensPerSec {
			if !(v > 0) || v > 1e9 {
				t.Errorf("%s: insane throughput %v", g.Name, v)
			}
		}
		if !(g.Mean > 0) || g.Stddev < 0 {
			t.Errorf("%s: mean %v stddev %v", g.Name, g.Mean, g.Stddev)
		}
		if g.Kind == "batched" && !(g.PrefillTokensPerSec > 0) {
			t.Errorf("%s: no prefill throughput", g.Name)
		}
	}
	if res.Threads != 2 || !strings.HasPrefix(res.Backend, "cpu") || res.Params == 0 || res.Size == 0 || res.Arch != "llama" {
		t.Errorf("result header %+v", res)
	}
	if n := strings.Count(progress.String(), "\n"); n != 8 {
		t.Errorf("%d progress lines, want 8:\n%s", n, progress.String())
	}

	var md bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) != 2+len(want) {
		t.Fatalf("table has %d lines:\n%s", len(lines), md.String())
	}
	for _, col := range []string{"model", "size", "params", "backend", "threads", "test", "t/s"} {
		if !strings.Contains(lines[0], " "+col+" ") {
			t.Errorf("header lacks %q: %s", col, lines[0])
		}
	}
	if !strings.HasPrefix(lines[1], "| -") || !strings.Contains(lines[1], ": |") {
		t.Errorf("separator line %q", lines[1])
	}
	for i, l := range lines[2:] {
		if strings.Count(l, "|") != 8 || !strings.Contains(l, " "+want[i].name+" ") || !strings.Contains(l, " ± ") {
			t.Errorf("row %q", l)
		}
	}

	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	tests, _ := back["tests"].([]any)
	if len(tests) != len(want) {
		t.Fatalf("JSON has %d tests: %s", len(tests), js.String())
	}
	first, _ := tests[0].(map[string]any)
	for _, k := range []string{"test", "kind", "tokens", "seqs", "tokens_per_sec", "mean", "stddev"} {
		if _, ok := first[k]; !ok {
			t.Errorf("JSON test lacks %q: %v", k, first)
		}
	}
	for _, k := range []string{"model", "size_bytes", "params", "backend", "threads", "reps"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

func TestEngineOptionErrors(t *testing.T) {
	f := openStories(t)
	bad := []EngineOptions{
		{},
		{File: f},
		{File: f, Prompt: -1, Gen: 1},
		{File: f, Prompt: 1, Reps: -2},
		{File: f, Prompt: 1, Threads: -1},
		{File: f, Batches: []int{0}, BatchGen: 4},
		{File: f, Batches: []int{2}},
	}
	for i, o := range bad {
		if _, err := RunEngine(context.Background(), o); err == nil {
			t.Errorf("case %d: %+v accepted", i, o)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunEngine(ctx, EngineOptions{File: f, Prompt: 4, Gen: 4, Reps: 1}); err == nil {
		t.Error("cancelled run succeeded")
	}
}

func TestMeanStddev(t *testing.T) {
	m, s := MeanStddev([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || s < 2.13 || s > 2.14 {
		t.Errorf("mean %v sd %v", m, s)
	}
	if m, s := MeanStddev([]float64{3}); m != 3 || s != 0 {
		t.Errorf("one value: %v %v", m, s)
	}
}
