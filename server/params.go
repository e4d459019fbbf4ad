package server

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/engine"
)

// Limits on request fields beyond the sampler's own.
const (
	maxN           = 128  // choices per prompt
	maxChoices     = 1024 // choices per request: prompts × n
	maxStops       = 16   // stop strings
	maxTopLogprobs = 20
)

// commonParams are the request fields /v1/completions and
// /v1/chat/completions share. Pointers tell "absent" from zero.
type commonParams struct {
	Model               string             `json:"model"`
	MaxTokens           *int               `json:"max_tokens"`
	MaxCompletionTokens *int               `json:"max_completion_tokens"`
	Temperature         *float64           `json:"temperature"`
	TopP                *float64           `json:"top_p"`
	TopK                *int               `json:"top_k"`
	MinP                *float64           `json:"min_p"`
	Seed                *int64             `json:"seed"`
	N                   *int               `json:"n"`
	PresencePenalty     *float64           `json:"presence_penalty"`
	FrequencyPenalty    *float64           `json:"frequency_penalty"`
	RepetitionPenalty   *float64           `json:"repetition_penalty"`
	Stop                json.RawMessage    `json:"stop"`
	StopTokenIDs        []int32            `json:"stop_token_ids"`
	Stream              bool               `json:"stream"`
	StreamOptions       *streamOptions     `json:"stream_options"`
	User                string             `json:"user"`
	IgnoreEOS           bool               `json:"ignore_eos"`
	Speculative         *bool              `json:"speculative"` // false opts out of speculative decoding
	LogitBias           map[string]float64 `json:"logit_bias"`
	Priority            int                `json:"priority"`
	structuredParams
	// Timeout is the request's own deadline in seconds, queueing
	// included (an extension, as in several OpenAI-compatible servers).
	Timeout *float64 `json:"timeout"`

	// limit is the job's deadline: Timeout and the server's
	// RequestTimeout, the shorter (0: none); set by begin.
	limit time.Duration
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

func (p *commonParams) includeUsage() bool {
	return p.StreamOptions != nil && p.StreamOptions.IncludeUsage
}

// decodeBody decodes the JSON request body (already read whole by
// readBody) into v, mapping failures to 400.
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return badRequest("", "reading the request body: %v", err)
	}
	return decodeJSON(data, v)
}

func decodeJSON(data []byte, v any) error {
	if len(data) == 0 {
		return badRequest("", "the request body is empty; send a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			param := strings.TrimPrefix(te.Field, "commonParams.")
			if param == "" {
				return badRequest("", "the request body must be a JSON object, not %s", te.Value)
			}
			return badRequest(param, "%s must be %s, not %s", param, jsonTypeName(te.Type.Kind().String()), te.Value)
		case errors.As(err, &se):
			return badRequest("", "malformed JSON in the request body: %v (at byte %d)", se, se.Offset)
		}
		return badRequest("", "malformed JSON in the request body: %v", err)
	}
	return nil
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

// stringOrList decodes a field that is a string, an array of strings or
// null.
func stringOrList(raw json.RawMessage, param string) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest(param, "%s must be a string or an array of strings", param)
	}
	return list, nil
}

// newRequest returns a request with the sampler's defaults: temperature 1,
// no truncation, no penalties, a repetition-penalty window of 64 tokens.
func newRequest() engine.Request {
	var r engine.Request
	r.Sampling.Temperature = 1
	r.Sampling.TopP = 1
	r.Sampling.RepetitionPenalty = 1
	r.Sampling.PenaltyLastN = 64
	return r
}

func checkFloat(param string, v *float64, lo, hi float64, loOpen bool) (float32, error) {
	x := *v
	if math.IsNaN(x) || math.IsInf(x, 0) || x > hi || x < lo || (loOpen && x == lo) {
		open := "["
		if loOpen {
			open = "("
		}
		return 0, badRequest(param, "%s must be in %s%g, %g], got %g", param, open, lo, hi, x)
	}
	return float32(x), nil
}

// begin decodes r's body into body (whose shared fields are p), finds the
// model it names, refuses work while draining, and builds the engine
// request and the number of choices per prompt.
func (s *Server) begin(r *http.Request, body any, p *commonParams) (*entry, engine.Request, int, error) {
	if err := decodeBody(r, body); err != nil {
		return nil, engine.Request{}, 0, err
	}
	e, err := s.lookup(p.Model)
	if err != nil {
		return nil, engine.Request{}, 0, err
	}
	record(r.Context()).setModel(e.name)
	if s.Draining() {
		return nil, engine.Request{}, 0, errDraining()
	}
	req, n, err := p.request(e.tok.VocabSize())
	if err != nil {
		return nil, engine.Request{}, 0, err
	}
	req.Client = httpClientKey(p.User, keyClient(r.Context()), r.RemoteAddr)
	if err := s.applyPriority(p, &req); err != nil {
		return nil, engine.Request{}, 0, err
	}
	if p.limit, err = p.deadline(s.opts.RequestTimeout); err != nil {
		return nil, engine.Request{}, 0, err
	}
	return e, req, n, nil
}

// request builds the engine request and the number of choices per prompt
// from the shared fields, validating each and naming the field at fault.
func (p *commonParams) request(vocab int) (engine.Request, int, error) {
	req := newRequest()
	sp := &req.Sampling
	var err error
	n := 1
	if p.N != nil {
		n = *p.N
		if n < 1 || n > maxN {
			return req, 0, badRequest("n", "n must be in [1, %d], got %d", maxN, n)
		}
	}
	switch {
	case p.MaxCompletionTokens != nil:
		if req.MaxTokens = *p.MaxCompletionTokens; req.MaxTokens < 1 {
			return req, 0, badRequest("max_completion_tokens", "max_completion_tokens must be at least 1, got %d", req.MaxTokens)
		}
	case p.MaxTokens != nil:
		if req.MaxTokens = *p.MaxTokens; req.MaxTokens < 1 {
			return req, 0, badRequest("max_tokens", "max_tokens must be at least 1, got %d", req.MaxTokens)
		}
	}
	if p.Temperature != nil {
		if sp.Temperature, err = checkFloat("temperature", p.Temperature, 0, 2, false); err != nil {
			return req, 0, err
		}
	}
	if p.TopP != nil {
		if sp.TopP, err = checkFloat("top_p", p.TopP, 0, 1, true); err != nil {
			return req, 0, err
		}
	}
	if p.MinP != nil {
		if sp.MinP, err = checkFloat("min_p", p.MinP, 0, 1, false); err != nil {
			return req, 0, err
		}
	}
	if p.TopK != nil {
		switch k := *p.TopK; {
		case k == -1 || k == 0:
			sp.TopK = 0
		case k > 0:
			sp.TopK = k
		default:
			return req, 0, badRequest("top_k", "top_k must be -1 or 0 (off) or a positive number, got %d", k)
		}
	}
	if p.PresencePenalty != nil {
		if sp.PresencePenalty, err = checkFloat("presence_penalty", p.PresencePenalty, -2, 2, false); err != nil {
			return req, 0, err
		}
	}
	if p.FrequencyPenalty != nil {
		if sp.FrequencyPenalty, err = checkFloat("frequency_penalty", p.FrequencyPenalty, -2, 2, false); err != nil {
			return req, 0, err
		}
	}
	if p.RepetitionPenalty != nil {
		if sp.RepetitionPenalty, err = checkFloat("repetition_penalty", p.RepetitionPenalty, 0, 100, true); err != nil {
			return req, 0, err
		}
	}
	if p.Seed != nil {
		sp.Seed, sp.HasSeed = uint64(*p.Seed), true
	}
	stops, err := stringOrList(p.Stop, "stop")
	if err != nil {
		return req, 0, err
	}
	if len(stops) > maxStops {
		return req, 0, badRequest("stop", "at most %d stop sequences are allowed, got %d", maxStops, len(stops))
	}
	for i, s := range stops {
		if s == "" {
			return req, 0, badRequest("stop", "stop[%d] is an empty string", i)
		}
	}
	sp.Stop = stops
	for i, t := range p.StopTokenIDs {
		if t < 0 || int(t) >= vocab {
			return req, 0, badRequest("stop_token_ids", "stop_token_ids[%d] = %d is not a token id (vocabulary of %d)", i, t, vocab)
		}
	}
	sp.StopTokens = p.StopTokenIDs
	if len(p.LogitBias) > 0 {
		sp.LogitBias = make(map[int32]float32, len(p.LogitBias))
		for k, b := range p.LogitBias {
			id, err := strconv.ParseInt(k, 10, 32)
			if err != nil || id < 0 || int(id) >= vocab {
				return req, 0, badRequest("logit_bias", "logit_bias key %q is not a token id (vocabulary of %d)", k, vocab)
			}
			if math.IsNaN(b) || b < -100 || b > 100 {
				return req, 0, badRequest("logit_bias", "logit_bias[%s] must be in [-100, 100], got %g", k, b)
			}
			sp.LogitBias[int32(id)] = float32(b)
		}
	}
	req.IgnoreEOS = p.IgnoreEOS
	req.NoSpeculation = p.Speculative != nil && !*p.Speculative
	return req, n, nil
}

// maxPriority bounds the priority field's magnitude.
const maxPriority = 1 << 20

// applyPriority sets req's engine priority from the request's priority
// field, where lower values run first, as in vLLM (the engine ranks
// higher first: the sign flips). Clients may set it only when the
// server allows it (Options.AllowClientPriority); otherwise a non-zero
// priority is refused rather than ignored.
func (s *Server) applyPriority(p *commonParams, req *engine.Request) error {
	if p.Priority == 0 {
		return nil
	}
	if !s.opts.AllowClientPriority {
		return badRequest("priority", "priority is not enabled on this server (start sluice serve with --allow-client-priority)")
	}
	if p.Priority < -maxPriority || p.Priority > maxPriority {
		return badRequest("priority", "priority must be in [%d, %d], got %d", -maxPriority, maxPriority, p.Priority)
	}
	req.Priority = -p.Priority
	return nil
}

// maxTimeout bounds the "timeout" field.
const maxTimeout = 7 * 24 * time.Hour

// deadline is the job's time limit: the "timeout" field (seconds, > 0)
// and server (0: none), the shorter; 0 when neither is set.
func (p *commonParams) deadline(server time.Duration) (time.Duration, error) {
	if p.Timeout == nil {
		return server, nil
	}
	v := *p.Timeout
	if math.IsNaN(v) || v <= 0 || v > maxTimeout.Seconds() {
		return 0, badRequest("timeout", "timeout must be a number of seconds in (0, %g], got %g", maxTimeout.Seconds(), v)
	}
	d := time.Duration(v * float64(time.Second))
	if server > 0 && server < d {
		d = server
	}
	return max(d, time.Millisecond), nil
}

// checkLength refuses prompts that do not fit the context with room for
// at least one generated token (or max_tokens, when set).
func checkLength(prompt []int32, maxTokens, ctxLen int, promptParam, maxParam string) error {
	if len(prompt) == 0 {
		return badRequest(promptParam, "the prompt is empty")
	}
	if ctxLen <= 0 {
		return nil
	}
	if len(prompt) >= ctxLen {
		return badRequest(promptParam, "this model's maximum context length is %d tokens, but the prompt has %d tokens", ctxLen, len(prompt))
	}
	if maxTokens > 0 && len(prompt)+maxTokens > ctxLen {
		return badRequest(maxParam, "this model's maximum context length is %d tokens; the prompt has %d tokens and %s asks for %d more (%d in all)",
			ctxLen, len(prompt), maxParam, maxTokens, len(prompt)+maxTokens)
	}
	return nil
}
