// Command embed shows sluice embedded in a Go program: it loads a GGUF
// model with engine.New, generates for several prompts at once (the engine
// batches them together), streams the first one's text to the terminal as
// it is produced, and prints each request's text, usage and timing.
//
//	go run ./examples/embed                      # ../shared/models/stories260K.gguf
//	go run ./examples/embed -model m.gguf -max-tokens 64 "Once upon a time" "The sea"
//
// Ctrl-C cancels the requests' context: their streams end at once with
// finish reason "abort".
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/engine"
)

func main() {
	modelPath := flag.String("model", "../shared/models/stories260K.gguf", "GGUF model file")
	maxTokens := flag.Int("max-tokens", 48, "tokens to generate per prompt")
	threads := flag.Int("threads", 0, "CPU threads (0: all cores)")
	kvMemory := flag.String("kv-memory", "256MiB", "KV cache memory")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: embed [flags] [prompt ...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	prompts := flag.Args()
	if len(prompts) == 0 {
		prompts = []string{"Once upon a time", "The little dog"}
	}
	if err := run(os.Stdout, *modelPath, *kvMemory, *threads, *maxTokens, prompts); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, modelPath, kvMemory string, threads, maxTokens int, prompts []string) error {
	if len(prompts) == 0 {
		return fmt.Errorf("no prompts")
	}
	kv, err := engine.ParseBytes(kvMemory)
	if err != nil {
		return err
	}
	e, err := engine.New(engine.Config{ModelPath: modelPath, KVMemory: kv, Threads: threads})
	if err != nil {
		return err
	}
	defer e.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	type outcome struct {
		text  strings.Builder
		final engine.Event
	}
	out := make([]outcome, len(prompts))
	var wg sync.WaitGroup
	fmt.Fprintf(w, "[1] %s", prompts[0])
	for i, p := range prompts {
		// Generate only queues the request; tokens arrive on its stream.
		s, err := e.Generate(ctx, &engine.Request{
			ID:        fmt.Sprint(i + 1),
			Prompt:    e.Tokenizer().Encode(p, true, false),
			MaxTokens: maxTokens,
		})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, ok := s.Next()
				if !ok {
					return
				}
				out[i].text.WriteString(ev.Text)
				if i == 0 {
					fmt.Fprint(w, ev.Text) // stream the first request live
				}
				if ev.Done {
					out[i].final = ev
				}
			}
		}()
	}
	wg.Wait()
	fmt.Fprintln(w)
	fmt.Fprintln(w)

	for i, p := range prompts {
		f := out[i].final
		fmt.Fprintf(w, "[%d] %s%s\n", i+1, p, out[i].text.String())
		fmt.Fprintf(w, "    finish=%s prompt=%d completion=%d cached=%d queued=%v ttft=%v total=%v per-token=%v\n",
			f.Finish, f.Usage.PromptTokens, f.Usage.CompletionTokens, f.Usage.CachedTokens,
			round(f.Timing.Queued), round(f.Timing.FirstTok), round(f.Timing.Total), round(f.Timing.PerOutput))
		if f.Err != nil {
			fmt.Fprintf(w, "    error: %v\n", f.Err)
		}
	}
	st := e.Stats()
	fmt.Fprintf(w, "engine: %d steps, %.1f tokens and %.1f sequences per step on average, mean step %v\n",
		st.Steps, st.MeanBatchTokens(), st.MeanBatchSeqs(), round(st.MeanStepTime()))
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
