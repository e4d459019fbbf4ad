package spec

// Proposal is a proposer's output for one request and one step. The caller
// owns it and reuses it from step to step, so proposing does not allocate
// once Tokens (and Q, for a sampling draft model) have grown to size.
type Proposal struct {
	// Tokens are the draft tokens, at most the k asked for, possibly none.
	Tokens []int32
	// Q holds, when Sampled is set, the distribution each draft token was
	// drawn from: row i = Q[i*V:(i+1)*V] over the vocabulary of V tokens.
	Q []float32
	// Sampled reports that the tokens were drawn at random from the rows
	// of Q; false means they are deterministic guesses (point masses), and
	// verification is to pass nil for q.
	Sampled bool
}

// Dists returns Q when the tokens were sampled and nil otherwise: the q
// argument of VerifySampled and Verifier.Verify.
func (p *Proposal) Dists() []float32 {
	if p.Sampled {
		return p.Q
	}
	return nil
}

// Proposer guesses how a request continues.
type Proposer interface {
	// Propose writes up to k draft tokens that continue ctx (the request's
	// prompt and output so far, without earlier drafts) into out,
	// replacing what it held. It never fails: a proposer that cannot
	// propose (no match, an error in a draft model) proposes nothing, and
	// the step decodes one token as without speculation.
	Propose(ctx []int32, k int, out *Proposal)
}
