package model

import (
	"slices"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/tokenizer"
	"github.com/sluice-llm/sluice/tokenizer/template"
)

// smolLM2Chat renders one user message through SmolLM2's own chat template
// (which adds its default system prompt) and tokenizes it as llama.cpp
// does (special tokens parsed; the template writes the BOS text itself).
func smolLM2Chat(t *testing.T, f *gguf.File, tok *tokenizer.Tokenizer, user string) (string, []int32) {
	t.Helper()
	src, ok := f.String("tokenizer.chat_template")
	if !ok {
		t.Fatal("SmolLM2 has no tokenizer.chat_template")
	}
	tmpl, err := template.Parse(src)
	if err != nil {
		t.Fatalf("parse chat template: %v", err)
	}
	msg := template.NewMap()
	msg.Set("role", "user")
	msg.Set("content", user)
	text, err := tmpl.RenderChat([]any{msg}, template.ChatOptions{
		BOS: tok.Token(tok.BOS()), EOS: tok.Token(tok.EOS()), AddGenerationPrompt: true})
	if err != nil {
		t.Fatalf("render chat template: %v", err)
	}
	return text, tok.Encode(text, false, true)
}

// TestSmolLM2Chat runs the real trained SmolLM2-135M-Instruct (Q4_1) end
// to end: its tokenizer (pre "smollm"), its chat template, and a greedy
// answer on the CPU backend, which must equal smolLM2Want.
func TestSmolLM2Chat(t *testing.T) {
	path := testenv.SmolLM2(t)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Pre() != "smollm" {
		t.Errorf("tokenizer pre = %q, want smollm", tok.Pre())
	}
	m, err := Load(f, testBackend(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, c := range smolLM2Cases {
		text, prompt := smolLM2Chat(t, f, tok, c.user)
		if !slices.Equal(prompt, c.prompt) {
			t.Errorf("%q: prompt tokens\n got %v\nwant %v\n(text %q)", c.user, prompt, c.prompt, text)
			continue
		}
		s, err := NewSession(m, 1, len(prompt)+len(c.want), SessionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Generate(0, prompt, len(c.want), 0, nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: greedy answer\n got %v %q\nwant %v %q", c.user, got, tok.Decode(got), c.want, tok.Decode(c.want))
		}
	}
}
