package sample

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
)

// ErrNoFiniteLogits is returned when every logit, after penalties and bias,
// is -Inf or NaN, so no token can be chosen.
var ErrNoFiniteLogits = errors.New("sample: no finite logits to sample from")

// TokenLogprob is a token and its logprob.
type TokenLogprob struct {
	Token   int32
	Logprob float32
}

// Result is one sampled token.
type Result struct {
	Token int32
	// Stop reports that Token is one of the stop tokens (Params.StopTokens
	// and those added with AddStopTokens).
	Stop bool
	// Logprob is the log-softmax of the raw logits at Token; set only when
	// Params.Logprobs is true.
	Logprob float32
	// TopLogprobs holds the Params.TopLogprobs most likely tokens under the
	// raw logits, most likely first (ties: lowest id). It aliases a buffer
	// of the Sampler and is overwritten by the next Sample call.
	TopLogprobs []TokenLogprob
}

// Sampler samples the tokens of one request. See the package comment for
// the semantics. It is not safe for concurrent use.
type Sampler struct {
	p     Params
	vocab int
	seed  uint64
	rng   RNG
	ch    chain

	cands []cand    // vocab-sized working copy of the logits; nil when never needed
	hist  []float64 // top-p buckets
	topc  []cand    // TopLogprobs-sized heap
	top   []TokenLogprob

	biasTok []int32
	biasVal []float32
	stops   []int32 // sorted stop token ids

	// Repetition penalty: counts of each token in the window. ring is the
	// window itself when PenaltyLastN > 0 (unused for the whole context); it
	// grows up to ringCap entries, then wraps at ringPos.
	repOn    bool
	repCount map[int32]int32
	ring     []int32
	ringCap  int
	ringPos  int

	// Frequency/presence penalties: counts of generated tokens.
	genOn    bool
	genCount map[int32]int32
}

// New validates p and returns a Sampler for a vocabulary of vocab tokens,
// with every buffer Sample needs already allocated.
func New(p Params, vocab int) (*Sampler, error) {
	if vocab <= 0 {
		return nil, fmt.Errorf("sample: vocabulary size must be positive, got %d", vocab)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := p.validateBias(vocab); err != nil {
		return nil, err
	}
	if err := p.validateStopTokens(vocab); err != nil {
		return nil, err
	}
	s := &Sampler{p: p, vocab: vocab, ch: newChain(&p, vocab)}
	s.p.LogitBias = maps.Clone(p.LogitBias) // the caller's map and slices are not retained
	s.p.Stop = slices.Clone(p.Stop)
	s.p.StopTokens = slices.Clone(p.StopTokens)

	if p.HasSeed {
		s.seed = p.Seed
	} else {
		s.seed = rand.Uint64()
	}
	s.rng.Seed(s.seed)

	for id := range p.LogitBias {
		s.biasTok = append(s.biasTok, id)
	}
	slices.Sort(s.biasTok)
	for _, id := range s.biasTok {
		s.biasVal = append(s.biasVal, p.LogitBias[id])
	}
	s.AddStopTokens(p.StopTokens...)

	s.repOn = p.RepetitionPenalty != 1 && p.PenaltyLastN != 0
	if s.repOn {
		hint := 256
		if p.PenaltyLastN > 0 {
			s.ringCap = p.PenaltyLastN
			s.ring = make([]int32, 0, min(p.PenaltyLastN, 4096))
			hint = min(hint, p.PenaltyLastN)
		}
		s.repCount = make(map[int32]int32, hint)
	}
	s.genOn = p.FrequencyPenalty != 0 || p.PresencePenalty != 0
	if s.genOn {
		s.genCount = make(map[int32]int32, 256)
	}

	if !s.ch.greedy || s.repOn || s.genOn || len(s.biasTok) > 0 {
		s.cands = make([]cand, vocab)
	}
	if s.ch.topP < 1 && !s.ch.greedy {
		s.hist = make([]float64, topPBuckets)
	}
	if p.Logprobs && p.TopLogprobs > 0 {
		s.topc = make([]cand, 0, p.TopLogprobs)
		s.top = make([]TokenLogprob, p.TopLogprobs)
	}
	return s, nil
}

// Params returns a copy of the settings the Sampler was made with.
func (s *Sampler) Params() Params {
	p := s.p
	p.LogitBias = maps.Clone(p.LogitBias)
	p.Stop = slices.Clone(p.Stop)
	p.StopTokens = slices.Clone(p.StopTokens)
	return p
}

// Vocab returns the vocabulary size.
func (s *Sampler) Vocab() int { return s.vocab }

// Seed returns the seed in use: Params.Seed, or the random one New chose.
// Passing it back with HasSeed reproduces the request.
func (s *Sampler) Seed() uint64 { return s.seed }

// AddStopTokens adds token ids (typically the model's end-of-generation
// tokens) for which Result.Stop is reported. Ids outside the vocabulary are
// ignored.
func (s *Sampler) AddStopTokens(ids ...int32) {
	for _, id := range ids {
		if id < 0 || int(id) >= s.vocab {
			continue
		}
		if i, found := slices.BinarySearch(s.stops, id); !found {
			s.stops = slices.Insert(s.stops, i, id)
		}
	}
}

// IsStopToken reports whether id is a stop token.
func (s *Sampler) IsStopToken(id int32) bool {
	_, found := slices.BinarySearch(s.stops, id)
	return found
}

// Accept records a generated token: it enters the repetition-penalty window
// and the frequency/presence counts. Call it for every token the request
// emits, including ones chosen outside Sample (e.g. accepted draft tokens).
// Ids outside the vocabulary are ignored.
func (s *Sampler) Accept(token int32) { s.record(token, true) }

// AcceptPrompt records prompt tokens: they enter the repetition-penalty
// window only (frequency and presence penalties count generated tokens).
func (s *Sampler) AcceptPrompt(tokens []int32) {
	if !s.repOn {
		return
	}
	if s.ringCap > 0 && len(tokens) > s.ringCap {
		tokens = tokens[len(tokens)-s.ringCap:] // older ones would be evicted anyway
	}
	for _, t := range tokens {
		s.record(t, false)
	}
}

func (s *Sampler) record(t int32, generated bool) {
	if t < 0 || int(t) >= s.vocab {
		return
	}
	if s.repOn {
		if s.ringCap > 0 {
			if len(s.ring) < s.ringCap {
				s.ring = append(s.ring, t)
			} else {
				old := s.ring[s.ringPos]
				if n := s.repCount[old] - 1; n > 0 {
					s.repCount[old] = n
				} else {
					delete(s.repCount, old)
				}
				s.ring[s.ringPos] = t
				if s.ringPos++; s.ringPos == s.ringCap {
					s.ringPos = 0
				}
			}
		}
		s.repCount[t]++
	}
	if generated && s.genOn {
		s.genCount[t]++
	}
}

// Reset forgets every recorded token and restarts the random stream from
// the seed, so the Sampler behaves as it did right after New.
func (s *Sampler) Reset() {
	clear(s.repCount)
	clear(s.genCount)
	s.ring, s.ringPos = s.ring[:0], 0
	s.rng.Seed(s.seed)
}

// adjusting reports whether penalties or bias will change any logit.
func (s *Sampler) adjusting() bool {
	return len(s.repCount) > 0 || len(s.genCount) > 0 || len(s.biasTok) > 0
}

// adjust applies penalties then logit bias to c (in id order).
func (s *Sampler) adjust(c []cand) {
	if len(s.repCount) > 0 {
		rp := s.p.RepetitionPenalty
		for t := range s.repCount {
			v := c[t].val
			if v <= 0 {
				v *= rp
			} else {
				v /= rp
			}
			c[t].val = sanitize(v)
		}
	}
	if len(s.genCount) > 0 {
		fp, pp := s.p.FrequencyPenalty, s.p.PresencePenalty
		for t, n := range s.genCount {
			c[t].val = sanitize(c[t].val - (float32(n)*fp + pp))
		}
	}
	for i, t := range s.biasTok {
		c[t].val = sanitize(c[t].val + s.biasVal[i])
	}
}

// prepare fills the working candidates from logits and applies penalties
// and bias. It returns them and their maximum, which it computes only when
// needMax is set.
func (s *Sampler) prepare(logits []float32, needMax bool) ([]cand, float32) {
	c := s.cands[:s.vocab]
	m := fill(c, logits)
	if s.adjusting() {
		s.adjust(c)
		if needMax {
			m = maxOf(c)
		}
	}
	return c, m
}

// Sample chooses the next token from one row of logits (len == Vocab()).
// It does not modify or retain logits and does not allocate. It does not
// record the token: call Accept with the token the request keeps.
func (s *Sampler) Sample(logits []float32) (Result, error) {
	if len(logits) != s.vocab {
		return Result{}, fmt.Errorf("sample: got %d logits, want %d", len(logits), s.vocab)
	}
	var res Result
	tok, err := s.choose(logits)
	if err != nil {
		return Result{}, err
	}
	res.Token = tok
	res.Stop = s.IsStopToken(tok)
	if s.p.Logprobs {
		lse := s.rawLogprobs(logits)
		res.Logprob = sanitize(logits[tok]) - lse
		if len(s.top) > 0 {
			for i, c := range s.topc {
				s.top[i] = TokenLogprob{Token: c.id, Logprob: c.val - lse}
			}
			res.TopLogprobs = s.top[:len(s.topc)]
		}
	}
	return res, nil
}

func (s *Sampler) choose(logits []float32) (int32, error) {
	if s.ch.greedy && !s.adjusting() {
		best, m := -1, negInf
		for i, v := range logits {
			if v > m && v <= math.MaxFloat32 {
				best, m = i, v
			} else if v > math.MaxFloat32 && m < math.MaxFloat32 { // +Inf counts as MaxFloat32
				best, m = i, math.MaxFloat32
			}
		}
		if best < 0 {
			return 0, ErrNoFiniteLogits
		}
		return int32(best), nil
	}
	c, m := s.prepare(logits, !s.ch.greedy)
	if s.ch.greedy {
		if i := argmax(c); i >= 0 {
			return c[i].id, nil
		}
		return 0, ErrNoFiniteLogits
	}
	if m == negInf {
		return 0, ErrNoFiniteLogits
	}
	c = s.ch.truncate(c, m, s.hist)
	z := weigh(c, m, s.ch.invTemp)
	if tok := pick(c, z, s.rng.Float64()); tok >= 0 {
		return tok, nil
	}
	return 0, ErrNoFiniteLogits // unreachable: the maximum always weighs 1
}

// rawLogprobs returns log Σ e^logit over the sanitised raw logits and, when
// top logprobs are asked for, leaves the best of them in s.topc, best first,
// with their raw logits as values.
func (s *Sampler) rawLogprobs(logits []float32) float32 {
	n := cap(s.topc)
	h := s.topc[:0]
	m := negInf
	for i, v := range logits {
		if !(v <= math.MaxFloat32) {
			v = sanitize(v)
		}
		if v > m {
			m = v
		}
		if n == 0 {
			continue
		}
		if len(h) < n {
			h = append(h, cand{int32(i), v})
			if len(h) == n {
				for j := n/2 - 1; j >= 0; j-- {
					siftDown(h, j)
				}
			}
		} else if v > h[0].val { // a later id never wins a tie
			h[0] = cand{int32(i), v}
			siftDown(h, 0)
		}
	}
	if n > 0 {
		if len(h) < n { // vocabulary smaller than TopLogprobs
			for j := len(h)/2 - 1; j >= 0; j-- {
				siftDown(h, j)
			}
		}
		for end := len(h) - 1; end > 0; end-- {
			h[0], h[end] = h[end], h[0]
			siftDown(h[:end], 0)
		}
		s.topc = h
	}
	if m == negInf {
		return negInf
	}
	z := 0.0
	for _, v := range logits {
		if v <= math.MaxFloat32 { // NaN and +Inf are handled below
			z += float64(expNeg(v - m))
		} else if v > math.MaxFloat32 {
			z += float64(expNeg(math.MaxFloat32 - m))
		}
	}
	return m + float32(math.Log(z))
}

// Probs writes into dst (reused when its capacity is at least Vocab())
// the distribution Sample draws from for these logits and the tokens
// recorded so far: penalties, bias, top-k, top-p, min-p and temperature
// applied, normalised to sum to 1, zero outside the surviving candidates.
// Greedy settings give a one-hot vector. It does not draw, so the random
// stream is untouched. It does not allocate when dst is large enough,
// except on the first call of a greedy Sampler without penalties or bias,
// which New leaves without a working buffer. An all -Inf row gives all
// zeros.
func (s *Sampler) Probs(logits []float32, dst []float32) []float32 {
	if s.cands == nil {
		s.cands = make([]cand, s.vocab) // greedy without penalties never needed them
	}
	return probs(s.cands, s.hist, logits, s, &s.ch, dst)
}

// Probs is the pure form of Sampler.Probs for a Params and no token
// history, so penalties have no effect; it is meant for speculative
// decoding, which pairs it with SampleFrom. p should be valid (see
// Validate); bias for ids outside logits is ignored. It allocates a
// working buffer of len(logits) candidates per call.
func Probs(logits []float32, p Params, dst []float32) []float32 {
	s := &Sampler{p: p, vocab: len(logits)}
	for id, b := range p.LogitBias {
		if id >= 0 && int(id) < len(logits) {
			s.biasTok = append(s.biasTok, id)
			s.biasVal = append(s.biasVal, b)
		}
	}
	ch := newChain(&p, len(logits))
	var hist []float64
	if ch.topP < 1 && !ch.greedy && len(logits) > topPSortMax {
		hist = make([]float64, topPBuckets)
	}
	return probs(make([]cand, len(logits)), hist, logits, s, &ch, dst)
}

func probs(work []cand, hist []float64, logits []float32, s *Sampler, ch *chain, dst []float32) []float32 {
	n := len(logits)
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	clear(dst)
	if n != s.vocab {
		return dst
	}
	s.cands = work
	c, m := s.prepare(logits, true)
	if m == negInf {
		return dst
	}
	if ch.greedy {
		dst[c[argmax(c)].id] = 1
		return dst
	}
	c = ch.truncate(c, m, hist)
	z := weigh(c, m, ch.invTemp)
	inv := 1 / z
	for _, x := range c {
		dst[x.id] = float32(float64(x.val) * inv)
	}
	return dst
}

// Logprobs returns what Sample reports in Result.Logprob and
// Result.TopLogprobs, for a token chosen elsewhere (an accepted
// speculative draft token): the log-softmax of the raw logits at tok and
// the Params.TopLogprobs most likely tokens. The top list aliases a buffer
// of the Sampler that the next Sample or Logprobs call overwrites. It
// neither records tok nor draws.
func (s *Sampler) Logprobs(logits []float32, tok int32) (float32, []TokenLogprob) {
	lse := s.rawLogprobs(logits)
	var lp float32
	if tok >= 0 && int(tok) < len(logits) {
		lp = sanitize(logits[tok]) - lse
	}
	if len(s.topc) == 0 {
		return lp, nil
	}
	for i, c := range s.topc {
		s.top[i] = TokenLogprob{Token: c.id, Logprob: c.val - lse}
	}
	return lp, s.top[:len(s.topc)]
}
