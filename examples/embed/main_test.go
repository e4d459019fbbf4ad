package main

import (
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
)

func TestRun(t *testing.T) {
	model := testenv.Shared(t, "models", "stories260K.gguf")
	var out strings.Builder
	if err := run(&out, model, "16MiB", 1, 12, []string{"Once upon a time", "The little dog"}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"[1] Once upon a time, there was a little girl named Lily.",
		"[2] The little dog was a little girl named Lily.",
		"finish=length prompt=5 completion=12",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if err := run(&out, model, "lots", 1, 12, nil); err == nil {
		t.Errorf("a bad -kv-memory was accepted")
	}
}
