package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
)

type goldenLine struct {
	Prompt        string  `json:"prompt"`
	PromptTokens  []int32 `json:"prompt_tokens"`
	Generated     []int32 `json:"generated"`
	GeneratedText string  `json:"generated_text"`
}

func readGolden(t *testing.T, name string) []goldenLine {
	t.Helper()
	f, err := os.Open(testenv.Shared(t, "golden", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []goldenLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var g goldenLine
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, g)
	}
	return lines
}

// TestRunGolden: greedy `sluice run` on stories260K reproduces llama.cpp's
// generated_text for every golden prompt.
func TestRunGolden(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	for i, g := range readGolden(t, "stories260K") {
		var out, errb bytes.Buffer
		n := len(g.Generated)
		args := []string{"run", "-m", path, "--temp", "0", "-n", itoa(n), "-t", "2", "-p", g.Prompt}
		if code := runMain(args, &out, &errb); code != 0 {
			t.Fatalf("prompt %d: exit %d: %s", i, code, errb.String())
		}
		got := strings.TrimSuffix(out.String(), "\n")
		if got != g.GeneratedText {
			t.Errorf("prompt %d (%q):\n got %q\nwant %q", i, g.Prompt, got, g.GeneratedText)
		}
		if !strings.Contains(errb.String(), "tokens/s") {
			t.Errorf("prompt %d: no timings on stderr: %q", i, errb.String())
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestRunErrors(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "-p", "hi"}, 2, "-m MODEL is required"},
		{[]string{"run", "-m", path, "--temp", "-1", "-p", "hi"}, 2, "temperature"},
		{[]string{"run", "-m", path, "--top-p", "0", "-p", "hi"}, 2, "top_p"},
		{[]string{"run", "-m", path, "-n", "-3", "-p", "hi"}, 2, "-n"},
		{[]string{"run", "-m", path, "--bogus"}, 2, "bogus"},
		{[]string{"run", "-m", path, "-c", "4", "-p", "Once upon a time there was"}, 1, "context size"},
		{[]string{"run", "-m", path, "--chat", "-p", "hi"}, 1, "no chat template"},
		{[]string{"run", "-m", path + ".missing", "-p", "hi"}, 1, "no such file"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := runMain(c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and a one-line error mentioning %q", c.args[1:], code, errb.String(), c.code, c.want)
		}
	}
}

func TestRunSeedAndStop(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	gen := func(args ...string) string {
		var out, errb bytes.Buffer
		if code := runMain(append([]string{"run", "-m", path, "-q", "-n", "24"}, args...), &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	a, b := gen("--seed", "7", "-p", "Once upon a time"), gen("--seed", "7", "-p", "Once upon a time")
	if a != b {
		t.Errorf("same seed gave different text:\n%q\n%q", a, b)
	}
	// Greedy output contains "Lily"; stopping at it must cut it and what follows.
	full := gen("--temp", "0", "-p", "Once upon a time")
	cut := gen("--temp", "0", "--stop", "Lily", "-p", "Once upon a time")
	i := strings.Index(full, "Lily")
	if i < 0 {
		t.Fatalf("greedy text lacks Lily: %q", full)
	}
	if strings.TrimSuffix(cut, "\n") != full[:i] {
		t.Errorf("with --stop Lily got %q, want %q", cut, full[:i])
	}
}

// TestBackendCUDAWithoutGPU: on a machine without the NVIDIA driver every
// command that takes --backend cuda fails in one line naming libcuda.so.1.
func TestBackendCUDAWithoutGPU(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this machine has an NVIDIA GPU; make gpu-check covers the backend")
	}
	path := testenv.Shared(t, "models", "stories260K.gguf")
	for _, args := range [][]string{
		{"run", "--backend", "cuda", "-m", path, "-p", "hi", "-n", "2"},
		{"kv", "--backend", "cuda", "-m", path},
		{"serve", "--backend", "cuda", "-m", path, "--dry-run"},
		{"bench", "engine", "--backend", "cuda", "-m", path, "-p", "8", "-n", "0", "-q"},
	} {
		var out, errb bytes.Buffer
		code := runMain(args, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "libcuda.so.1") || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and a one-line error naming libcuda.so.1", args, code, errb.String())
		}
	}
}
