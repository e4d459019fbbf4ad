package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/internal/testenv"
)

// TestServeSmolLM2Chat: `sluice serve` with the real SmolLM2-135M-Instruct
// answers a greedy chat request with llama.cpp's greedy text (the tokens
// of model.TestSmolLM2Chat's "Hello! Who are you?" case, which say how
// they were checked against llama.cpp).
func TestServeSmolLM2Chat(t *testing.T) {
	path := testenv.SmolLM2(t)
	sv := startServe(t, "--model", "smol="+path, "--port", "0", "--threads", "2", "--kv-memory", "64MiB", "--offline")
	body, _ := json.Marshal(map[string]any{
		"model":       "smol",
		"messages":    []map[string]string{{"role": "user", "content": "Hello! Who are you?"}},
		"temperature": 0,
		"max_tokens":  15,
	})
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Post(sv.base+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Choices) != 1 {
		t.Fatalf("status %d, %+v, %v", resp.StatusCode, out, err)
	}
	const want = "Hello! I'm here to help with any kind of creative writing project."
	if got := out.Choices[0].Message.Content; got != want {
		t.Errorf("answer %q, want %q", got, want)
	}
	// 36 prompt tokens: the template's default system prompt included.
	if out.Usage.PromptTokens != 36 || out.Usage.CompletionTokens != 15 {
		t.Errorf("usage %+v, want 36 prompt and 15 completion tokens", out.Usage)
	}
	sv.stop(t)
}
