package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
)

func TestInfoStories(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	var out, errb bytes.Buffer
	if code := runMain([]string{"info", "--json", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var m modelInfo
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out.String())
	}
	if m.Architecture != "llama" || m.Tokenizer.Model != "llama" || m.Tokenizer.Vocab != 512 {
		t.Errorf("arch %q tokenizer %q vocab %d; want llama llama 512", m.Architecture, m.Tokenizer.Model, m.Tokenizer.Vocab)
	}
	if got := m.Hyper["block_count"]; toInt(got) != 5 {
		t.Errorf("block_count = %v, want 5", got)
	}
	// dim 64, 5 layers, 4 KV heads of 8 dims: 5 * 4*8 * 2 (K,V) * 2 bytes.
	if m.KVPerToken != 5*4*8*2*2 {
		t.Errorf("KV bytes per token = %d, want %d", m.KVPerToken, 5*4*8*2*2)
	}
	if m.WeightBytes == 0 || m.WeightBytes > uint64(m.FileBytes) || m.Params*4 != m.WeightBytes {
		t.Errorf("weights %d bytes for %d params in a %d-byte all-F32 file", m.WeightBytes, m.Params, m.FileBytes)
	}
	out.Reset()
	if code := runMain([]string{"info", path}, &out, &errb); code != 0 {
		t.Fatalf("text form: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"architecture:  llama", "tokenizer:     llama", "chat template:", "KV cache (F16)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case json.Number:
		n, _ := x.Int64()
		return n
	}
	return -1
}

func TestInfoBadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.gguf")
	if err := os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00trunc"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"info", bad}, {"info", filepath.Join(dir, "missing.gguf")}, {"tokenize", "-m", bad, "hi"}} {
		var out, errb bytes.Buffer
		code := runMain(args, &out, &errb)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		msg := errb.String()
		if strings.Count(msg, "\n") != 1 || strings.Contains(msg, "goroutine") {
			t.Errorf("%v: want a one-line error, got %q", args, msg)
		}
	}
	var out, errb bytes.Buffer
	if code := runMain([]string{"info"}, &out, &errb); code != 2 {
		t.Errorf("info without a file: exit %d, want 2", code)
	}
	if code := runMain([]string{"nosuch"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestTokenizeGolden(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	var out, errb bytes.Buffer
	// golden/stories260K.jsonl: "Once upon a time" -> [1, 403, 407, 261, 378] with BOS.
	if code := runMain([]string{"tokenize", "-m", path, "--json", "Once upon a time"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != "[403,407,261,378]" {
		t.Errorf("tokenize --json = %s, want [403,407,261,378]", got)
	}
	out.Reset()
	if code := runMain([]string{"tokenize", "-m", path, "--bos", "--json", "Once upon a time"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != "[1,403,407,261,378]" {
		t.Errorf("tokenize --bos --json = %s, want [1,403,407,261,378]", got)
	}
	out.Reset()
	if code := runMain([]string{"tokenize", "-m", path, "Once upon"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "403") {
		t.Errorf("text output lacks token 403:\n%s", out.String())
	}
}
