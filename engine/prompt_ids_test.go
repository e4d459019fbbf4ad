package engine

import (
	"context"
	"errors"
	"testing"
)

// TestPromptTokenIDRange: every id from 0 to the vocabulary size − 1 is a
// valid prompt token; -1 and the vocabulary size are refused as prompt
// errors.
func TestPromptTokenIDRange(t *testing.T) {
	e := newTestEngine(t, stories, Config{})
	v := int32(e.Info().VocabSize)
	for _, p := range [][]int32{{0, 5}, {1, v - 1}} {
		s, err := e.Submit(context.Background(), &Request{Prompt: p, MaxTokens: 2})
		if err != nil {
			t.Fatalf("prompt %v (vocabulary %d): %v", p, v, err)
		}
		if r := collect(t, s); len(r.tokens) != 2 {
			t.Errorf("prompt %v: %d tokens, want 2", p, len(r.tokens))
		}
	}
	for _, p := range [][]int32{{1, -1}, {1, v}} {
		var bad *InvalidRequestError
		if _, err := e.Submit(context.Background(), &Request{Prompt: p, MaxTokens: 2}); !errors.As(err, &bad) || bad.Param != "prompt" {
			t.Errorf("prompt %v: %v, want a prompt error", p, err)
		}
	}
}
