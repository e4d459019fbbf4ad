package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
)

// TestBenchGrammar runs 'bench grammar' over the grammar package's
// MaskBench-format sample (all passing) and over a directory with a
// mislabelled instance and an unsupported keyword, which the report must
// show as an invalidation error and a compile error by cause.
func TestBenchGrammar(t *testing.T) {
	vocab := testenv.Shared(t, "tokenizer", "ggml-vocab-llama3-bpe.gguf")
	var out, errb bytes.Buffer
	if code := runMain([]string{"bench", "grammar", "--data", "../../grammar/testdata/maskbench", "--tokenizer", vocab}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "| sluice | 50 | 50 | 0 |") {
		t.Errorf("sample report:\n%s", out.String())
	}

	dir := t.TempDir()
	for name, body := range map[string]string{
		"bad_label.json":   `{"schema":{"type":"integer"},"tests":[{"description":"mislabelled","valid":false,"data":7},{"valid":true,"data":8}]}`,
		"unsupported.json": `{"schema":{"type":"number","multipleOf":3},"tests":[]}`,
		"rejected.json":    `{"schema":{"type":"string","maxLength":2},"tests":[{"valid":true,"data":"abc"}]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	results := filepath.Join(dir, "results.jsonl")
	if code := runMain([]string{"bench", "grammar", "--data", dir, "--tokenizer", vocab, "--results", results}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"| sluice | 3 | 0 | 1 |", "INVALIDATION ERROR: bad_label.json: invalid test 0 mislabelled accepted",
		"compile errors: 1; schemas with validation errors (a valid instance rejected): 1", "      1  multipleOf"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if data, err := os.ReadFile(results); err != nil || bytes.Count(data, []byte("\n")) != 3 {
		t.Errorf("results file: %v, %q", err, data)
	}
	if code := runMain([]string{"bench", "grammar"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--data DIR is required") {
		t.Errorf("no --data: exit %d, stderr %q", code, errb.String())
	}
}
