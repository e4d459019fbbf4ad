package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/sluice-llm/sluice/engine"
)

type completionRequest struct {
	commonParams
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs *int            `json:"logprobs"`
	Echo     bool            `json:"echo"`
	Suffix   *string         `json:"suffix"`
	BestOf   *int            `json:"best_of"`
}

// prompts decodes "prompt": a string, an array of strings, an array of
// token ids or an array of arrays of token ids. Text is tokenized with the
// model's BOS (as its metadata says) and special tokens parsed; token ids
// are used as given.
func parsePrompts(raw json.RawMessage, tok Tokenizer) ([][]int32, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badRequest("prompt", "prompt is required")
	}
	vocab := tok.VocabSize()
	checkIDs := func(ids []int32) error {
		for i, id := range ids {
			if id < 0 || int(id) >= vocab {
				return badRequest("prompt", "prompt token %d is %d, not a token id (vocabulary of %d)", i, id, vocab)
			}
		}
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return [][]int32{tok.Encode(s, true, true)}, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, badRequest("prompt", "prompt must be a string, an array of strings, an array of token ids or an array of arrays of token ids")
	}
	if len(items) == 0 {
		return nil, badRequest("prompt", "prompt is an empty array")
	}
	var ids []int32
	if json.Unmarshal(raw, &ids) == nil {
		if err := checkIDs(ids); err != nil {
			return nil, err
		}
		return [][]int32{ids}, nil
	}
	out := make([][]int32, 0, len(items))
	for _, it := range items {
		if json.Unmarshal(it, &s) == nil {
			out = append(out, tok.Encode(s, true, true))
			continue
		}
		var one []int32
		if json.Unmarshal(it, &one) != nil {
			return nil, badRequest("prompt", "prompt must be a string, an array of strings, an array of token ids or an array of arrays of token ids")
		}
		if err := checkIDs(one); err != nil {
			return nil, err
		}
		out = append(out, one)
	}
	return out, nil
}

// completionLogprobs is the legacy completions logprobs object.
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

type completionChoice struct {
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

type completionResponse struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []completionChoice `json:"choices"`
	Usage             *usageJSON         `json:"usage"`
}

func (e *entry) completionLogprobs(tokens []int32, lps []float32, tops [][]topLogprob, offset int) *completionLogprobs {
	out := &completionLogprobs{
		Tokens: make([]string, len(tokens)), TokenLogprobs: lps,
		TopLogprobs: make([]map[string]float32, len(tokens)), TextOffset: make([]int, len(tokens)),
	}
	for i, id := range tokens {
		p := e.tok.Piece(id)
		out.Tokens[i] = p
		out.TextOffset[i] = offset
		offset += len(p)
		m := make(map[string]float32, len(tops[i]))
		for _, t := range tops[i] {
			m[e.tok.Piece(t.id)] = t.lp
		}
		out.TopLogprobs[i] = m
	}
	if out.TokenLogprobs == nil {
		out.TokenLogprobs = []float32{}
	}
	return out
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) error {
	var body completionRequest
	e, req, n, err := s.begin(r, &body, &body.commonParams)
	if err != nil {
		return err
	}
	g, err := body.compile(e.tok) // structured output
	if err != nil {
		return err
	}
	if body.Suffix != nil && *body.Suffix != "" {
		return badRequest("suffix", "suffix is not supported")
	}
	if body.BestOf != nil && *body.BestOf != n {
		return badRequest("best_of", "best_of is not supported (it must equal n)")
	}
	if body.Echo {
		return badRequest("echo", "echo is not supported")
	}
	wantLP := false
	if body.Logprobs != nil {
		k := *body.Logprobs
		if k < 0 || k > maxTopLogprobs {
			return badRequest("logprobs", "logprobs must be in [0, %d], got %d", maxTopLogprobs, k)
		}
		wantLP = true
		req.Sampling.Logprobs, req.Sampling.TopLogprobs = true, k
	}
	prompts, err := parsePrompts(body.Prompt, e.tok)
	if err != nil {
		return err
	}
	if len(prompts) > maxChoices/n {
		return badRequest("prompt", "at most %d choices are allowed per request; %d prompts with n = %d ask for %d",
			maxChoices, len(prompts), n, len(prompts)*n)
	}
	maxParam := "max_tokens"
	if body.MaxCompletionTokens != nil {
		maxParam = "max_completion_tokens"
	}
	for _, p := range prompts {
		if err := checkLength(p, req.MaxTokens, e.info.ContextLength, "prompt", maxParam); err != nil {
			return err
		}
	}
	j := &job{e: e, id: requestID(r.Context(), "cmpl-"), prompts: prompts, n: n, req: req, timeout: body.limit, rec: record(r.Context()), grammar: g}
	events, err := s.run(r.Context(), j)
	if err != nil {
		return err
	}
	resp := completionResponse{
		ID: j.id, Object: "text_completion", Created: time.Now().Unix(), Model: e.name,
		SystemFingerprint: e.info.Fingerprint,
	}
	if body.Stream {
		s.stream(r.Context(), w, events, len(j.prompts)*j.n, j.n, body.includeUsage(), &completionChunks{chunk: resp, j: j, wantLP: wantLP, offsets: make([]int, len(j.prompts)*j.n)})
		return nil
	}
	cs, err := s.collect(r.Context(), events, len(prompts)*n, wantLP)
	if err != nil {
		return err
	}
	for i, c := range cs {
		fr := finishReason(c.finish)
		ch := completionChoice{Index: i, Text: string(c.text), FinishReason: &fr}
		if wantLP {
			ch.Logprobs = e.completionLogprobs(c.tokens, c.logprobs, c.tops, 0)
		}
		resp.Choices = append(resp.Choices, ch)
	}
	u := sumUsage(cs, n)
	resp.Usage = &u
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// completionChunks writes a completion's stream: text deltas (with
// logprobs at each choice's text offset), then usage.
type completionChunks struct {
	chunk   completionResponse
	j       *job
	wantLP  bool
	offsets []int // per choice: bytes of text sent so far
}

func (c *completionChunks) open(*sseWriter) {}

func (c *completionChunks) event(out *sseWriter, index int, ev engine.Event) {
	if ev.Text == "" && !ev.Done && !(c.wantLP && ev.HasToken) {
		return
	}
	ch := completionChoice{Index: index, Text: ev.Text}
	if c.wantLP && ev.HasToken {
		ch.Logprobs = c.j.e.completionLogprobs([]int32{ev.Token}, []float32{ev.Logprob}, [][]topLogprob{tops(ev)}, c.offsets[index])
		c.offsets[index] += len(c.j.e.tok.Piece(ev.Token))
	}
	if ev.Done {
		fr := finishReason(ev.Finish)
		ch.FinishReason = &fr
	}
	c.chunk.Choices = []completionChoice{ch}
	out.send(c.chunk)
}

func (c *completionChunks) usage(out *sseWriter, u usageJSON) {
	c.chunk.Choices = []completionChoice{}
	c.chunk.Usage = &u
	out.send(c.chunk)
}
