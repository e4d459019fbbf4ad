// Package sample turns a row of logits into the next token: penalties, logit
// bias, top-k, top-p, min-p, temperature and a seeded draw, plus logprobs and
// stop-sequence matching over streamed text.
//
// A Sampler belongs to one request. It owns every scratch buffer it needs, so
// Sample does not allocate once the Sampler exists. A Sampler is not safe for
// concurrent use; distinct Samplers are independent and may run in parallel.
//
// Transform order (the llama.cpp default chain):
//
//	penalties → logit bias → top-k → top-p → min-p → temperature → draw
//
// Top-p and min-p therefore see the distribution at temperature 1, and
// temperature only reshapes the surviving candidates. Temperature 0 is greedy
// decoding: the argmax after penalties and bias, ties going to the lowest id.
//
// Penalty semantics:
//
//   - RepetitionPenalty (llama.cpp / CTRL): every distinct token among the last
//     PenaltyLastN tokens recorded by Accept or AcceptPrompt (prompt and
//     generated tokens alike) has its logit divided by the penalty when
//     positive and multiplied by it otherwise. PenaltyLastN = -1 covers every
//     recorded token; 0 turns the repetition penalty off.
//   - FrequencyPenalty and PresencePenalty (OpenAI): logit -= count*frequency +
//     (count > 0)*presence, where count is how often the token was generated,
//     i.e. recorded by Accept since New or Reset. Prompt tokens never count and
//     PenaltyLastN does not apply, exactly as in the OpenAI API and vLLM.
//
// When both kinds apply to a token, the repetition penalty goes first.
//
// Logprobs follow OpenAI (and vLLM's default): they are the log-softmax of the
// raw logits the model produced, before any penalty, bias, truncation or
// temperature. Non-finite logits are sanitised first: NaN counts as -Inf (the
// token can never be chosen) and +Inf as the largest float32.
package sample

import (
	"fmt"
	"math"
)

// Limits enforced by Validate.
const (
	MaxTemperature = 2
	MaxPenalty     = 2   // |FrequencyPenalty|, |PresencePenalty|
	MaxLogitBias   = 100 // |LogitBias[id]|
	MaxTopLogprobs = 20
	DefaultLastN   = 64 // PenaltyLastN set by DefaultParams
	WholeContext   = -1 // PenaltyLastN value that covers every recorded token
)

// Params are the sampling settings of one request. The zero value is not
// valid (TopP and RepetitionPenalty must be positive); start from
// DefaultParams and override what the request sets.
type Params struct {
	// Temperature in [0, 2]; 0 means greedy decoding.
	Temperature float32
	// TopK keeps the K most likely tokens; 0 turns it off. Values above the
	// vocabulary size act as off.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// mass reaches TopP; in (0, 1], 1 turns it off.
	TopP float32
	// MinP drops tokens whose probability is below MinP times that of the
	// most likely token; in [0, 1], 0 turns it off.
	MinP float32

	// RepetitionPenalty > 0; 1 turns it off. See the package comment.
	RepetitionPenalty float32
	// FrequencyPenalty and PresencePenalty in [-2, 2]; 0 turns them off.
	FrequencyPenalty float32
	PresencePenalty  float32
	// PenaltyLastN is the repetition-penalty window in tokens: -1 means every
	// recorded token, 0 turns the repetition penalty off. DefaultParams sets
	// 64.
	PenaltyLastN int

	// Seed makes the draws reproducible when HasSeed is true. Otherwise New
	// picks a random seed (readable through Sampler.Seed).
	Seed    uint64
	HasSeed bool

	// LogitBias is added to the logit of each listed token id after the
	// penalties; values in [-100, 100].
	LogitBias map[int32]float32

	// Logprobs asks for the chosen token's logprob; TopLogprobs (0..20, needs
	// Logprobs) for that many most likely alternatives as well.
	Logprobs    bool
	TopLogprobs int

	// Stop sequences over the detokenized text (see StopMatcher) and stop
	// token ids; the engine adds the model's end-of-generation tokens with
	// Sampler.AddStopTokens.
	Stop       []string
	StopTokens []int32
}

// DefaultParams returns the settings of a request that sets nothing:
// temperature 1, no truncation, no penalties, PenaltyLastN 64, random seed.
func DefaultParams() Params {
	return Params{
		Temperature:       1,
		TopP:              1,
		RepetitionPenalty: 1,
		PenaltyLastN:      DefaultLastN,
	}
}

// ParamError reports an invalid sampling parameter. Param is the
// OpenAI-style (snake_case) name of the field, for an error body's "param".
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return "sample: invalid " + e.Param + ": " + e.Msg }

func paramErr(param, format string, args ...any) error {
	return &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

func finite(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

// checkRange validates a float field against [lo, hi]; loOpen excludes lo.
func checkRange(param string, x float32, lo, hi float64, loOpen bool) error {
	if !finite(x) {
		return paramErr(param, "must be a finite number, got %v", x)
	}
	v := float64(x)
	if v > hi || v < lo || (loOpen && v == lo) {
		open := "["
		if loOpen {
			open = "("
		}
		return paramErr(param, "must be in %s%g, %g], got %g", open, lo, hi, v)
	}
	return nil
}

// Validate reports the first invalid field as a *ParamError. Checks that
// need the vocabulary size (token ids in LogitBias and StopTokens) are done
// again by New.
func (p Params) Validate() error {
	if err := checkRange("temperature", p.Temperature, 0, MaxTemperature, false); err != nil {
		return err
	}
	if p.TopK < 0 {
		return paramErr("top_k", "must be >= 0 (0 disables it), got %d", p.TopK)
	}
	if err := checkRange("top_p", p.TopP, 0, 1, true); err != nil {
		return err
	}
	if err := checkRange("min_p", p.MinP, 0, 1, false); err != nil {
		return err
	}
	if !finite(p.RepetitionPenalty) || p.RepetitionPenalty <= 0 {
		return paramErr("repetition_penalty", "must be a finite number > 0 (1 disables it), got %v", p.RepetitionPenalty)
	}
	if err := checkRange("frequency_penalty", p.FrequencyPenalty, -MaxPenalty, MaxPenalty, false); err != nil {
		return err
	}
	if err := checkRange("presence_penalty", p.PresencePenalty, -MaxPenalty, MaxPenalty, false); err != nil {
		return err
	}
	if p.PenaltyLastN < -1 {
		return paramErr("penalty_last_n", "must be >= -1 (-1 = whole context, 0 = off), got %d", p.PenaltyLastN)
	}
	if err := p.validateBias(-1); err != nil {
		return err
	}
	if p.TopLogprobs < 0 || p.TopLogprobs > MaxTopLogprobs {
		return paramErr("top_logprobs", "must be in [0, %d], got %d", MaxTopLogprobs, p.TopLogprobs)
	}
	if p.TopLogprobs > 0 && !p.Logprobs {
		return paramErr("top_logprobs", "requires logprobs to be true")
	}
	for i, s := range p.Stop {
		if s == "" {
			return paramErr("stop", "stop[%d] is empty", i)
		}
	}
	return p.validateStopTokens(-1)
}

// validateBias checks LogitBias; vocab < 0 skips the upper id bound. The
// smallest offending id is reported so the message does not depend on map
// order.
func (p Params) validateBias(vocab int) error {
	bad, found := int32(0), false
	for id, b := range p.LogitBias {
		if id < 0 || (vocab >= 0 && int(id) >= vocab) || !finite(b) || b < -MaxLogitBias || b > MaxLogitBias {
			if !found || id < bad {
				bad, found = id, true
			}
		}
	}
	if !found {
		return nil
	}
	b := p.LogitBias[bad]
	switch {
	case bad < 0:
		return paramErr("logit_bias", "token id %d is negative", bad)
	case vocab >= 0 && int(bad) >= vocab:
		return paramErr("logit_bias", "token id %d is out of range for a vocabulary of %d", bad, vocab)
	default:
		return paramErr("logit_bias", "bias for token %d must be a finite number in [-%d, %d], got %v", bad, MaxLogitBias, MaxLogitBias, b)
	}
}

func (p Params) validateStopTokens(vocab int) error {
	for i, t := range p.StopTokens {
		if t < 0 {
			return paramErr("stop_token_ids", "stop_token_ids[%d] = %d is negative", i, t)
		}
		if vocab >= 0 && int(t) >= vocab {
			return paramErr("stop_token_ids", "stop_token_ids[%d] = %d is out of range for a vocabulary of %d", i, t, vocab)
		}
	}
	return nil
}
