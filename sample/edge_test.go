package sample

import (
	"math"
	"testing"
)

// This file holds the boundary cases a mutation run found untested.

func greedyParams() Params {
	p := DefaultParams()
	p.Temperature = 0
	p.PenaltyLastN = 0
	return p
}

// TestLogprobsNonFinite: NaN counts as −Inf and +Inf as the largest
// float32, in the logprob and among the top alternatives.
func TestLogprobsNonFinite(t *testing.T) {
	p := greedyParams()
	p.Logprobs, p.TopLogprobs = true, 3
	s, err := New(p, 4)
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	res, err := s.Sample([]float32{nan, float32(math.Inf(1)), 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Token != 1 || !(math.Abs(float64(res.Logprob)) < 1e-3) {
		t.Errorf("token %d, logprob %g; want 1 with logprob 0", res.Token, res.Logprob)
	}
	if len(res.TopLogprobs) != 3 || res.TopLogprobs[0].Token != 1 || res.TopLogprobs[1].Token != 3 || res.TopLogprobs[2].Token != 2 {
		t.Fatalf("top %+v, want tokens 1, 3, 2", res.TopLogprobs)
	}
	for _, tl := range res.TopLogprobs {
		if math.IsNaN(float64(tl.Logprob)) || tl.Logprob > 0 {
			t.Errorf("top %+v", tl)
		}
	}
}

// TestTopLogprobsSmallVocab: asking for more alternatives than the
// vocabulary has gives all of them, best first.
func TestTopLogprobsSmallVocab(t *testing.T) {
	p := greedyParams()
	p.Logprobs, p.TopLogprobs = true, 5
	for _, logits := range [][]float32{{1, 3, 2}, {3, 1, 2}, {2, 1, 3}} {
		s, err := New(p, len(logits))
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Sample(logits)
		if err != nil {
			t.Fatal(err)
		}
		top := res.TopLogprobs
		if len(top) != 3 || logits[top[0].Token] != 3 || logits[top[1].Token] != 2 || logits[top[2].Token] != 1 {
			t.Errorf("logits %v: top %+v, want all three best first", logits, top)
		}
	}
}

// TestOneTokenVocabulary: a vocabulary of one token is valid.
func TestOneTokenVocabulary(t *testing.T) {
	s, err := New(greedyParams(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Sample([]float32{0.5}); err != nil || res.Token != 0 {
		t.Errorf("Sample: %+v, %v", res, err)
	}
}

// TestStopTokenZero: id 0 can be a stop token.
func TestStopTokenZero(t *testing.T) {
	s, err := New(greedyParams(), 4)
	if err != nil {
		t.Fatal(err)
	}
	s.AddStopTokens(0)
	if !s.IsStopToken(0) || s.IsStopToken(1) {
		t.Errorf("IsStopToken(0) %v, IsStopToken(1) %v", s.IsStopToken(0), s.IsStopToken(1))
	}
}

// TestPenaltyWindowOfOne: with PenaltyLastN 1 only the last token is
// penalised.
func TestPenaltyWindowOfOne(t *testing.T) {
	p := greedyParams()
	p.RepetitionPenalty, p.PenaltyLastN = 4, 1
	s, err := New(p, 3)
	if err != nil {
		t.Fatal(err)
	}
	logits := []float32{3, 2.5, 1}
	s.Accept(0)
	if res, _ := s.Sample(logits); res.Token != 1 {
		t.Errorf("token 0 just accepted: chose %d, want 1", res.Token)
	}
	s.Accept(2) // token 0 leaves the window
	if res, _ := s.Sample(logits); res.Token != 0 {
		t.Errorf("token 0 out of the window: chose %d, want 0", res.Token)
	}
}

// TestSinglePenalisedToken: greedy decoding applies a penalty on one
// recorded token (the fast path must not skip it).
func TestSinglePenalisedToken(t *testing.T) {
	p := greedyParams()
	p.RepetitionPenalty, p.PenaltyLastN = 2, WholeContext
	s, err := New(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	s.AcceptPrompt([]int32{0})
	if res, _ := s.Sample([]float32{3, 2}); res.Token != 1 {
		t.Errorf("chose %d; token 0's logit 3 penalised to 1.5 is below 2", res.Token)
	}
}

// TestFrequencyAndPresenceTogether: both penalties apply when both are set.
func TestFrequencyAndPresenceTogether(t *testing.T) {
	p := greedyParams()
	p.FrequencyPenalty, p.PresencePenalty = 0.5, 0.75
	s, err := New(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	s.Accept(0)
	// Token 0: 3 - 0.5 - 0.75 = 1.75 < 2.
	if res, _ := s.Sample([]float32{3, 2}); res.Token != 1 {
		t.Errorf("chose %d, want 1", res.Token)
	}
	// Each alone applies too: 0.5 or 0.75 leaves token 0 ahead, 1.5
	// does not.
	for _, c := range []struct {
		freq, pres float32
		want       int32
	}{{0.5, 0, 0}, {0, 0.75, 0}, {1.5, 0, 1}, {0, 1.5, 1}} {
		p.FrequencyPenalty, p.PresencePenalty = c.freq, c.pres
		s, err := New(p, 2)
		if err != nil {
			t.Fatal(err)
		}
		s.Accept(0)
		if res, _ := s.Sample([]float32{3, 2}); res.Token != c.want {
			t.Errorf("frequency %g, presence %g: chose %d, want %d", c.freq, c.pres, res.Token, c.want)
		}
	}
}

// TestStopMatcherWholeCharacter: a complete multi-byte character at the
// end is emitted at once; a stop string that starts where another does
// is reported as the one listed first.
func TestStopMatcherWholeCharacter(t *testing.T) {
	m := NewStopMatcher([]string{"xyz"})
	if emit, stopped := m.Push("aé"); emit != "aé" || stopped {
		t.Errorf("Push(\"aé\") = %q, %v; want it all at once", emit, stopped)
	}
	if emit, _ := m.Push("\xe2\x82"); emit != "" {
		t.Errorf("half a character emitted: %q", emit)
	}
	// The earliest occurrence wins, also over one at index 0.
	m = NewStopMatcher([]string{"ab", "cd"})
	if emit, stopped := m.Push("abcd"); emit != "" || !stopped || m.Matched() != "ab" {
		t.Errorf("Push(\"abcd\"): %q, %v, matched %q; want \"\", true, \"ab\"", emit, stopped, m.Matched())
	}
	m = NewStopMatcher([]string{"ab", "abc"})
	if emit, stopped := m.Push("xxabc"); emit != "xx" || !stopped || m.Matched() != "ab" {
		t.Errorf("Push: %q, %v, matched %q; want \"xx\", true, \"ab\"", emit, stopped, m.Matched())
	}
}
