package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/internal/testenv"
)

// TestMaxModelLenFromKVPool: with a KV pool smaller than the model's
// context, /v1/models advertises what the pool holds for one request, and
// a request over that gets the context-length 400 instead of a silent
// "length" finish.
func TestMaxModelLenFromKVPool(t *testing.T) {
	plan, err := engine.Plan(engine.Config{ModelPath: testenv.Shared(t, "models", "stories260K.gguf"), BlockSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	const limit = 4*16 + 1
	if plan.ContextLength <= limit {
		t.Fatalf("model context %d", plan.ContextLength)
	}
	s := newSDKServer(t, Options{}, false, func(c *engine.Config) { c.BlockSize, c.KVMemory = 16, 4*plan.BlockBytes })
	r := do(t, "GET", s.ts.URL+"/v1/models/stories", "")
	if card := decode[modelCard](t, r); card.MaxModelLen != limit {
		t.Fatalf("max_model_len %d, want %d (the pool's), model's %d", card.MaxModelLen, limit, plan.ContextLength)
	}
	prompt := strings.Repeat("Once upon a time ", 3)
	r = post(t, s.ts.URL+"/v1/completions", `{"model":"stories","prompt":"`+prompt+`","max_tokens":65}`)
	if e := checkError(t, r, http.StatusBadRequest, "max_tokens"); !strings.Contains(e["message"].(string), "maximum context length is 65") {
		t.Errorf("error %v", e)
	}
	// Within the limit it runs.
	r = post(t, s.ts.URL+"/v1/completions", `{"model":"stories","prompt":"`+prompt+`","max_tokens":4}`)
	var resp struct {
		Usage usageJSON `json:"usage"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil || r.status != http.StatusOK || resp.Usage.CompletionTokens > 4 {
		t.Errorf("%d %s", r.status, r.body)
	}
}
