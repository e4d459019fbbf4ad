package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/internal/testenv"
)

// modelPath is the GGUF file Example loads. TestExample points it at
// ../shared/models/stories260K.gguf and checks the output.
var modelPath = "stories260K.gguf"

// Example embeds sluice in a Go program: load a model, generate for two
// prompts at once (they share the engine's batches), stream the text and
// read the usage from each stream's final event.
func Example() {
	e, err := engine.New(engine.Config{
		ModelPath: modelPath,
		KVMemory:  16 << 20, // KV cache budget; 0 takes a share of free memory
		Threads:   1,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	prompts := []string{"Once upon a time", "The little dog"}
	texts := make([]string, len(prompts))
	usages := make([]engine.Usage, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		// The zero Sampling is greedy decoding; cancelling ctx aborts.
		s, err := e.Generate(context.Background(), &engine.Request{
			Prompt:    e.Tokenizer().Encode(p, true, false),
			MaxTokens: 24,
		})
		if err != nil {
			log.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b strings.Builder
			for ev := range s.Events() {
				b.WriteString(ev.Text) // a text delta, whole UTF-8 characters
				if ev.Done {
					usages[i] = ev.Usage
				}
			}
			texts[i] = b.String()
		}()
	}
	wg.Wait()
	for i, p := range prompts {
		fmt.Printf("%s%s\n", p, texts[i])
		fmt.Printf("(%d prompt tokens, %d generated)\n", usages[i].PromptTokens, usages[i].CompletionTokens)
	}
}

// exampleOutput is what Example prints on stories260K (greedy decoding,
// so it is fixed).
const exampleOutput = `Once upon a time, there was a little girl named Lily. She loved to play outside in the p
(5 prompt tokens, 24 generated)
The little dog was a little girl named Lily. She loved to play with her toys and her toys
(5 prompt tokens, 24 generated)
`

// TestExample runs Example on the shared stories260K model and checks
// what it prints. Example has no Output comment, so that go test only
// compiles it: an example cannot skip, and the shared models may be
// missing (this test then skips, or fails under CI=true).
func TestExample(t *testing.T) {
	modelPath = testenv.Shared(t, "models", "stories260K.gguf")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		out <- b.Bytes()
	}()
	stdout := os.Stdout
	os.Stdout = w
	func() {
		defer func() { os.Stdout = stdout }()
		Example()
	}()
	w.Close()
	got := string(<-out)
	r.Close()
	if got != exampleOutput {
		t.Errorf("Example printed:\n%s\nwant:\n%s", got, exampleOutput)
	}
}
