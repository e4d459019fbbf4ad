package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
)

// prompt is one request's prompt: token ids, or text for chat.
type prompt struct {
	ids  []int32
	text string
}

func randomIDs(rng *rand.Rand, n, vocab int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(rng.IntN(vocab))
	}
	return out
}

// repeated is n tokens: unit over and over, the last copy cut short.
func repeated(unit []int32, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = unit[i%len(unit)]
	}
	return out
}

// recordWords are the keys and values of the repetitive chat workload's
// JSON records.
var recordWords = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima
	mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu
	amber birch cedar dune ember fern glacier harbor island jasper lagoon meadow`)

// repetitiveChat is a chat prompt that asks a model to quote back a JSON
// record (about unitLen tokens) that it shows copies times.
func repetitiveChat(rng *rand.Rand, unitLen, copies int) string {
	var rec strings.Builder
	rec.WriteString("{\n")
	fields := max(2, unitLen/8)
	for i := range fields {
		sep := ","
		if i == fields-1 {
			sep = ""
		}
		fmt.Fprintf(&rec, "  \"%s_%d\": {\"name\": \"%s\", \"id\": %d}%s\n",
			recordWords[rng.IntN(len(recordWords))], i, recordWords[rng.IntN(len(recordWords))], rng.IntN(10000), sep)
	}
	rec.WriteString("}")
	var b strings.Builder
	fmt.Fprintf(&b, "Here is the same JSON record %d times.\n", copies)
	for range copies {
		fmt.Fprintf(&b, "\n```json\n%s\n```\n", rec.String())
	}
	b.WriteString("\nWrite the record out again, exactly as above, as many times as you can.")
	return b.String()
}

// prompts draws the prompts of level li.
func (c *serveClient) prompts(ctx context.Context, li uint64, conc, vocab int) ([]prompt, error) {
	o := c.o
	rng := rand.New(rand.NewPCG(o.Seed, li))
	var ids [][]int32
	if o.Workload == WorkloadSharedPrefix {
		for g := 0; g < o.Groups; g++ {
			prefix := randomIDs(rng, o.PrefixLen, vocab)
			for q := 0; q < o.Questions; q++ {
				ids = append(ids, append(slices.Clip(prefix), randomIDs(rng, o.InputLen, vocab)...))
			}
		}
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		if o.Requests > 0 && o.Requests < len(ids) {
			ids = ids[:o.Requests]
		}
	} else if o.Workload == WorkloadRepetitive {
		n := o.Requests
		if n == 0 {
			n = max(4*conc, 8)
		}
		unitLen := min(o.RepeatLen, o.InputLen)
		if o.Chat {
			out := make([]prompt, n)
			for i := range out {
				out[i] = prompt{text: repetitiveChat(rng, unitLen, max(2, o.InputLen/unitLen))}
			}
			return out, nil
		}
		for range n {
			ids = append(ids, repeated(randomIDs(rng, unitLen, vocab), o.InputLen))
		}
	} else {
		n := o.Requests
		if n == 0 {
			n = max(4*conc, 8)
		}
		for range n {
			ids = append(ids, randomIDs(rng, o.InputLen, vocab))
		}
	}
	out := make([]prompt, len(ids))
	for i, p := range ids {
		var err error
		if out[i], err = c.prompt(ctx, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// prompt turns token ids into a request prompt: as they are for
// completions, as the server's detokenized text for chat.
func (c *serveClient) prompt(ctx context.Context, ids []int32) (prompt, error) {
	if !c.o.Chat {
		return prompt{ids: ids}, nil
	}
	var out struct {
		Prompt  *string `json:"prompt"`  // sluice, vLLM
		Content *string `json:"content"` // llama-server
	}
	if err := c.getJSON(ctx, http.MethodPost, "/detokenize", map[string]any{"model": c.model, "tokens": ids}, &out); err != nil {
		return prompt{}, fmt.Errorf("bench: building chat prompts with /detokenize: %w", err)
	}
	switch {
	case out.Prompt != nil:
		return prompt{text: *out.Prompt}, nil
	case out.Content != nil:
		return prompt{text: *out.Content}, nil
	}
	return prompt{}, errors.New("bench: /detokenize answered neither prompt nor content")
}
