package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
)

func TestSynthCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.gguf")
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"synth", "--shape", "smollm2-135m", "--type", "q4_k", "--layers", "1", "--vocab", "512", "--seed", "9", "-o", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "wrote "+out) {
		t.Errorf("stderr lacks the summary:\n%s", stderr.String())
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Uint32("llama.embedding_length"); n != 576 || f.Arch() != "llama" {
		t.Errorf("arch %s dim %d", f.Arch(), n)
	}
	if ft, _ := f.Uint32("general.file_type"); ft != 15 {
		t.Errorf("file type %d, want 15 (Q4_K_M)", ft)
	}
	f.Close()

	// The same model through a dummy reference, quietly: identical bytes.
	out2 := filepath.Join(dir, "m2.gguf")
	stderr.Reset()
	code = runMain([]string{"synth", "dummy:smollm2-135m:Q4_K_M", "-q", "--layers=1", "--vocab=512", "--seed=9", "-o", out2}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("dummy ref: exit %d: %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("-q printed %q", stderr.String())
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Error("--shape/--type and dummy:NAME:TYPE wrote different files")
	}
}

func TestSynthCommandErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	cases := []struct {
		args []string
		want string // in the one-line error
	}{
		{[]string{"--shape", "gpt-9", "-o", out}, "smollm2-135m"},
		{[]string{"--shape", "smollm2-135m", "--type", "Q9_K", "-o", out}, "Q4_K_M"},
		{[]string{"dummy:nope:Q4_0", "-o", out}, "llama-3.2-1b"},
		{[]string{"--shape", "smollm2-135m"}, "-o FILE.gguf is required"},
		{[]string{"-o", out}, "--shape is required"},
		{[]string{"model.gguf", "-o", out}, "not a dummy"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := runMain(append([]string{"synth"}, c.args...), &stdout, &stderr)
		msg := stderr.String()
		if code != 2 || !strings.Contains(msg, c.want) || strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "sluice synth: ") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line containing %q", c.args, code, msg, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed command wrote the output file")
	}
}

func TestSynthCommandList(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"synth", "--list"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"llama-3.2-1b", "llama-3.1-8b", "qwen2.5-0.5b", "smollm2-135m", "Q4_K_M", "Q6_K"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--list lacks %s:\n%s", want, stdout.String())
		}
	}
}
