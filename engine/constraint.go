package engine

import (
	"fmt"
	"math"
)

// Constraint restricts a request's output to a grammar (structured
// output): before each token is sampled, the tokens it does not allow get
// -inf logits; the token chosen advances it; the request finishes with
// FinishStop once it is Done. *grammar.Matcher implements it. A Constraint
// serves one request: the step loop owns it from Submit on and calls it
// from the loop goroutine only. It must be built for the engine's
// tokenizer.
type Constraint interface {
	// MaskWords is the length of the bitset Mask fills.
	MaskWords() int
	// Mask sets dst to the allowed tokens: token t is bit t%64 of
	// dst[t/64]. End-of-generation tokens are allowed only where the
	// grammar may end.
	Mask(dst []uint64)
	// Advance accepts the token that was sampled.
	Advance(tok int32) error
	// Done reports that nothing more may follow.
	Done() bool
}

// reqConstraint is a constrained request's state: the constraint and its
// mask buffer, allocated once at Submit.
type reqConstraint struct {
	c    Constraint
	mask []uint64
}

func newReqConstraint(c Constraint, vocab int) *reqConstraint {
	return &reqConstraint{c: c, mask: make([]uint64, max(c.MaskWords(), (vocab+63)/64))}
}

// apply sets the logits of the tokens the constraint does not allow to
// -inf. It allocates nothing; it fails when no token is allowed.
func (rc *reqConstraint) apply(logits []float32) error {
	rc.c.Mask(rc.mask)
	ninf := float32(math.Inf(-1))
	allowed := false
	for i := range logits {
		if rc.mask[i>>6]&(1<<(i&63)) == 0 {
			logits[i] = ninf
		} else {
			allowed = true
		}
	}
	if !allowed {
		return fmt.Errorf("the output constraint allows no token here")
	}
	return nil
}
