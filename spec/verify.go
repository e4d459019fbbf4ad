package spec

import (
	"math"

	"github.com/sluice-llm/sluice/sample"
)

// VerifyGreedy is the verification rule of greedy decoding. argmax(i) is
// the target's choice at draft position i, that is after the confirmed
// tokens and draft[:i]; argmax(len(draft)) is its choice after the whole
// draft. It accepts the longest prefix of draft that the target would have
// produced itself and returns its length and the target's token at the
// first mismatch (the correction) or after the last draft (the bonus), so
// the emitted tokens are draft[:accepted] followed by next, exactly what
// plain greedy decoding gives. argmax is called once per position, in
// increasing order, and only for positions 0..accepted.
func VerifyGreedy(draft []int32, argmax func(i int) int32) (accepted int, next int32) {
	for i, d := range draft {
		if t := argmax(i); t != d {
			return i, t
		}
	}
	return len(draft), argmax(len(draft))
}

// VerifySampled is the speculative rejection-sampling rule (Leviathan et
// al. 2023; Chen et al. 2023). p(i) is the target's final sampling
// distribution at draft position i (after the confirmed tokens and
// draft[:i]; p(len(draft)) after the whole draft), normalised, indexed by
// token id. q holds the distributions the draft tokens were drawn from,
// row i = q[i*V:(i+1)*V] with V = len(p(i)); nil means the drafts are point
// masses (a deterministic proposer such as NGram, or a greedy draft model).
//
// Draft token x = draft[i] is accepted with probability min(1, p(x)/q(x))
// (p(x) for a point mass). At the first rejection the next token is drawn
// from the residual max(0, p−q) renormalised (p without x for a point
// mass); if every draft is accepted it is drawn from p(len(draft)). The
// emitted tokens draft[:accepted] + next are then distributed exactly as
// len(emitted) tokens sampled one by one from the target.
//
// p is called once per position, in increasing order, and only for
// positions 0..accepted, so a caller whose distribution depends on the
// tokens so far (penalties) can record draft[i-1] before computing p(i).
// VerifySampled may overwrite the slices p returns (it builds the residual
// in place). Uniforms come from rng: one per draft position examined and
// one for next. next is -1 if the distribution it is drawn from has no
// positive entry. It does not allocate.
func VerifySampled(draft []int32, q []float32, p func(i int) []float32, rng *RNG) (accepted int, next int32) {
	for i, x := range draft {
		pi := p(i)
		v := len(pi)
		var px, qx float32
		if x >= 0 && int(x) < v {
			px = pi[x]
		}
		var qi []float32
		if q == nil {
			qx = 1
		} else {
			qi = q[i*v : (i+1)*v]
			if x >= 0 && int(x) < v {
				qx = qi[x]
			}
		}
		u := rng.Float64()
		// Accept when u < p/q, written without the division. A draft with
		// q(x) = 0 was not drawn from q; it is accepted only if p(x) > 0,
		// the limit of the rule.
		if float64(px) > u*float64(qx) {
			continue
		}
		return i, residualSample(pi, qi, x, rng.Float64())
	}
	return len(draft), sample.SampleFrom(p(len(draft)), rng.Float64())
}

// residualSample draws from norm(max(0, p−q)) (q nil: p with x removed),
// writing the residual over p. If rounding left the residual empty (only
// possible when p and q agree to within float precision) it draws from p.
func residualSample(p, q []float32, x int32, u float64) int32 {
	if q == nil {
		if x < 0 || int(x) >= len(p) {
			return sample.SampleFrom(p, u)
		}
		px := p[x]
		p[x] = 0
		if t := sample.SampleFrom(p, u); t >= 0 {
			return t
		}
		p[x] = px
		return sample.SampleFrom(p, u)
	}
	z := 0.0
	for j, pj := range p {
		if d := pj - q[j]; d > 0 {
			z += float64(d)
		}
	}
	if !(z > 0) || math.IsInf(z, 0) {
		return sample.SampleFrom(p, u)
	}
	for j, pj := range p {
		d := pj - q[j]
		if !(d > 0) {
			d = 0
		}
		p[j] = d
	}
	return sample.SampleFrom(p, u)
}

// Verifier verifies one request's drafts against the target's logits with
// the request's sample.Sampler: greedy requests (temperature 0) by
// VerifyGreedy on the sampler's choice (argmax after penalties and bias),
// others by VerifySampled on the sampler's final distribution
// (Sampler.Probs: penalties, bias, top-k, top-p, min-p, temperature). Make
// one per request; it owns a vocabulary-sized buffer and the request's
// verification random stream. Not safe for concurrent use.
type Verifier struct {
	rng    RNG
	seed   uint64
	greedy bool
	probs  []float32
}

// NewVerifier returns the Verifier of the request that s samples for. Its
// random stream is seeded with VerifierSeed(s.Seed()).
func NewVerifier(s *sample.Sampler) *Verifier {
	v := &Verifier{greedy: s.Params().Temperature == 0, seed: VerifierSeed(s.Seed())}
	v.rng.Seed(v.seed)
	if !v.greedy {
		v.probs = make([]float32, s.Vocab())
	}
	return v
}

// Greedy reports whether the request decodes greedily.
func (v *Verifier) Greedy() bool { return v.greedy }

// Reset restarts the random stream from its seed.
func (v *Verifier) Reset() { v.rng.Seed(v.seed) }

// Verify checks draft against the target. rows(i) is the target's logits
// row at draft position i: row 0 comes from the last confirmed token's
// position (it predicts draft[0]), row i from draft[i-1]'s, so a step that
// computed the confirmed tail plus the drafts asks for logits at its last
// len(draft)+1 positions. rows is called once per position, in order, for
// positions 0..accepted only. q are the drafts' distributions as for
// VerifySampled (nil: point masses); greedy requests ignore it.
//
// The emitted tokens, draft[:accepted] then one token of the target, are
// appended to out and returned; emitted token j was chosen from row j
// (for logprobs). Each emitted token is recorded in s with Accept, so the
// caller must not Accept them again; tokens that the caller then drops
// (after a stop token, past max_tokens) only matter if it keeps sampling,
// which it does not. Errors are sample.ErrNoFiniteLogits or a sampling
// error from s. It does not allocate when out has room for
// len(draft)+1 tokens.
func (v *Verifier) Verify(s *sample.Sampler, draft []int32, q []float32, rows func(i int) []float32, out []int32) (emitted []int32, accepted int, err error) {
	var next int32
	if v.greedy {
		accepted, next = VerifyGreedy(draft, func(i int) int32 {
			if i > 0 {
				s.Accept(draft[i-1])
			}
			res, e := s.Sample(rows(i))
			if e != nil {
				err = e
				return -1
			}
			return res.Token
		})
	} else {
		accepted, next = VerifySampled(draft, q, func(i int) []float32 {
			if i > 0 {
				s.Accept(draft[i-1])
			}
			v.probs = s.Probs(rows(i), v.probs)
			return v.probs
		}, &v.rng)
	}
	if err == nil && next < 0 {
		err = sample.ErrNoFiniteLogits
	}
	if err != nil {
		return out, 0, err
	}
	s.Accept(next)
	out = append(out, draft[:accepted]...)
	out = append(out, next)
	return out, accepted, nil
}
