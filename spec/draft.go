package spec

import (
	"errors"
	"fmt"

	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/sample"
)

// CheckVocab checks that a draft model can propose for a target: the same
// number of tokens and the same token string at every id. target and draft
// are the tokenizers' token lists indexed by id (tokenizer.ggml.tokens).
// A mismatch is refused with an error naming the first differing id.
func CheckVocab(target, draft []string) error {
	n := min(len(target), len(draft))
	for i := range n {
		if target[i] != draft[i] {
			return fmt.Errorf("spec: draft model's vocabulary differs from the target's at token id %d: target has %q, draft has %q", i, target[i], draft[i])
		}
	}
	if len(target) != len(draft) {
		return fmt.Errorf("spec: draft model's vocabulary has %d tokens, the target's has %d (identical up to id %d)", len(draft), len(target), n-1)
	}
	return nil
}

// DraftOptions configure NewDraft.
type DraftOptions struct {
	// Slots is how many requests can hold a draft sequence at once.
	Slots int
	// MaxTokens is the context length of each slot; drafting stops for a
	// request whose context reaches it.
	MaxTokens int
	// BlockSize of the draft's KV cache (element type
	// model.DefaultKVType); 0 means 16.
	BlockSize int
	// Greedy makes the draft propose its argmax for every request; its
	// proposals are then point masses for verification. By default a
	// sampled request's drafts are sampled from the draft's distribution
	// under the request's temperature and truncation, which the target
	// accepts more often.
	Greedy bool
}

// Draft proposes with a smaller model that shares the target's vocabulary
// (check with CheckVocab). It keeps its own KV cache, one sequence slot per
// request (Acquire), which follows the request's context: each proposal
// first reconciles the slot with the context — keeps the longest common
// prefix, so rejected draft tokens are rolled back by cutting the slot's
// length and are overwritten, then computes the new tokens in one batch —
// and then decodes k tokens one at a time. ProposeBatch does this for many
// requests with one forward pass per draft position. Not safe for
// concurrent use; the draft model must not be used by anything else
// between calls.
type Draft struct {
	c      *slotCache
	vocab  int
	greedy bool
	free   []int

	one  [1]DraftJob
	jobs []jobState
	err  error
}

type jobState struct {
	k   int // tokens to propose (0: inactive)
	row int // logits row of the last forward, -1 if none
}

// NewDraft allocates a draft's KV cache for m.
func NewDraft(m *model.Model, opts DraftOptions) (*Draft, error) {
	if opts.Slots <= 0 || opts.MaxTokens <= 0 {
		return nil, fmt.Errorf("spec: draft needs at least one slot and a positive context length, got %d slots of %d tokens", opts.Slots, opts.MaxTokens)
	}
	c, err := newSlotCache(m, opts.Slots, opts.MaxTokens, opts.BlockSize)
	if err != nil {
		return nil, fmt.Errorf("spec: draft model: %w", err)
	}
	d := &Draft{c: c, vocab: m.Config().VocabSize, greedy: opts.Greedy}
	for s := opts.Slots - 1; s >= 0; s-- {
		d.free = append(d.free, s)
	}
	return d, nil
}

// Close frees the KV cache. The model stays usable.
func (d *Draft) Close() { d.c.close() }

// Vocab is the draft model's vocabulary size.
func (d *Draft) Vocab() int { return d.vocab }

// Free is the number of slots not held by a DraftSeq.
func (d *Draft) Free() int { return len(d.free) }

// ErrNoSlot is returned by Acquire when every slot is taken; the request
// then runs without a draft (or with another proposer).
var ErrNoSlot = errors.New("spec: every draft slot is in use")

// DraftSeq is one request's use of a Draft: a slot of its KV cache and the
// way the request's drafts are drawn. It implements Proposer.
type DraftSeq struct {
	d       *Draft
	slot    int
	sampler *sample.Sampler // nil: greedy drafts
	rng     RNG
	err     error
}

// Acquire takes a slot for a request sampled with p, whose seed (the
// request Sampler's Seed) seeds the draft's draws through DraftSeed. A
// greedy request (temperature 0) or a Greedy Draft gets argmax drafts;
// otherwise drafts are drawn from the draft model's distribution under p's
// logit bias, top-k, top-p, min-p and temperature (no penalties: the draft
// distribution need only be a good guess, verification makes the result
// exact). It fails with ErrNoSlot when all slots are taken.
func (d *Draft) Acquire(p sample.Params, seed uint64) (*DraftSeq, error) {
	if len(d.free) == 0 {
		return nil, ErrNoSlot
	}
	ds := &DraftSeq{d: d}
	if !d.greedy && p.Temperature != 0 {
		qp := sample.Params{
			Temperature:       p.Temperature,
			TopK:              p.TopK,
			TopP:              p.TopP,
			MinP:              p.MinP,
			RepetitionPenalty: 1,
			LogitBias:         p.LogitBias,
			Seed:              seed,
			HasSeed:           true,
		}
		s, err := sample.New(qp, d.vocab)
		if err != nil {
			return nil, fmt.Errorf("spec: draft sampling: %w", err)
		}
		ds.sampler = s
		ds.rng.Seed(DraftSeed(seed))
	}
	ds.slot = d.free[len(d.free)-1]
	d.free = d.free[:len(d.free)-1]
	d.c.truncate(ds.slot, 0)
	return ds, nil
}

// Release returns the slot. The DraftSeq must not be used afterwards.
func (ds *DraftSeq) Release() {
	if ds.d == nil {
		return
	}
	ds.d.c.truncate(ds.slot, 0)
	ds.d.free = append(ds.d.free, ds.slot)
	ds.d = nil
}

// Slot is the KV cache slot the sequence holds.
func (ds *DraftSeq) Slot() int { return ds.slot }

// Cached is the number of context (and draft) tokens in the slot's cache.
func (ds *DraftSeq) Cached() int { return ds.d.c.len(ds.slot) }

// Err returns the error of the last Propose, if it failed (it then
// proposed nothing).
func (ds *DraftSeq) Err() error { return ds.err }

// Prefill brings the slot's cache up to all of ctx but its last token, in
// forward passes of at most chunk tokens (chunk <= 0: one pass), so that a
// long prompt need not be computed in one go by the first Propose, which
// runs inside a decode step. The engine may call it alongside the target's
// prefill chunks. Tokens already cached that agree with ctx are kept.
func (ds *DraftSeq) Prefill(ctx []int32, chunk int) error {
	c := ds.d.c
	n := min(len(ctx)-1, c.maxTokens)
	if n <= 0 {
		return nil
	}
	if chunk <= 0 {
		chunk = n
	}
	have := c.toks[ds.slot]
	common := 0
	for common < min(len(have), n) && have[common] == ctx[common] {
		common++
	}
	c.truncate(ds.slot, common)
	for pos := common; pos < n; {
		end := min(pos+chunk, n)
		for i := pos; i < end; i++ {
			c.add(ds.slot, ctx[i], false)
		}
		if err := c.forward(); err != nil {
			return fmt.Errorf("spec: draft model: %w", err)
		}
		pos = end
	}
	return nil
}

// Propose implements Proposer for one request; ProposeBatch is the same
// for many at once.
func (ds *DraftSeq) Propose(ctx []int32, k int, out *Proposal) {
	d := ds.d
	if d == nil { // released
		out.Tokens, out.Sampled = out.Tokens[:0], false
		return
	}
	d.one[0] = DraftJob{Seq: ds, Ctx: ctx, K: k, Out: out}
	ds.err = d.ProposeBatch(d.one[:])
	d.one[0] = DraftJob{}
}

// DraftJob is one request's part of ProposeBatch.
type DraftJob struct {
	Seq *DraftSeq
	Ctx []int32   // the request's prompt and output so far
	K   int       // tokens to propose
	Out *Proposal // where they go (and their distributions, when sampled)
}

// ProposeBatch proposes for several requests (distinct DraftSeqs of d)
// with one forward pass of the draft model per draft position: the first
// computes every job's new context tokens, each later one a token per
// job still drafting. A job proposes fewer than K tokens when its context
// is empty or would outgrow the slot, and none if the forward pass fails;
// the error is returned, and the slots stay consistent (their caches are
// cut back to what is known to be computed).
func (d *Draft) ProposeBatch(jobs []DraftJob) error {
	c := d.c
	if cap(d.jobs) < len(jobs) {
		d.jobs = make([]jobState, len(jobs))
	}
	st := d.jobs[:len(jobs)]
	active := 0
	for j := range jobs {
		job := &jobs[j]
		out := job.Out
		out.Tokens = out.Tokens[:0]
		out.Sampled = job.Seq.sampler != nil
		// Positions len(ctx)-1 .. len(ctx)+k-2 are computed.
		k := min(job.K, c.maxTokens-len(job.Ctx)+1)
		st[j] = jobState{row: -1}
		if k <= 0 || len(job.Ctx) == 0 || job.Seq.d != d {
			continue
		}
		if out.Sampled {
			if cap(out.Q) < k*d.vocab {
				out.Q = make([]float32, k*d.vocab)
			}
			out.Q = out.Q[:k*d.vocab]
		}
		st[j] = jobState{k: k, row: c.sync(job.Seq.slot, job.Ctx)}
		active++
	}
	for active > 0 {
		if err := c.forward(); err != nil {
			for j := range jobs {
				jobs[j].Out.Tokens = jobs[j].Out.Tokens[:0]
			}
			return fmt.Errorf("spec: draft model: %w", err)
		}
		active = 0
		for j := range jobs {
			s := &st[j]
			if s.k == 0 {
				continue
			}
			tok := d.choose(jobs[j].Seq, c.row(s.row), jobs[j].Out)
			if tok < 0 {
				s.k = 0
				continue
			}
			out := jobs[j].Out
			out.Tokens = append(out.Tokens, tok)
			if len(out.Tokens) == s.k {
				s.k = 0
				continue
			}
			s.row = c.add(jobs[j].Seq.slot, tok, true)
			active++
		}
	}
	return nil
}

// choose draws the next draft token from the draft's logits row, writing
// its distribution into out.Q when the sequence samples. It returns -1 when
// nothing can be drawn.
func (d *Draft) choose(ds *DraftSeq, logits []float32, out *Proposal) int32 {
	if ds.sampler == nil {
		return model.Argmax(logits)
	}
	i := len(out.Tokens)
	q := ds.sampler.Probs(logits, out.Q[i*d.vocab:(i+1)*d.vocab])
	return sample.SampleFrom(q, ds.rng.Float64())
}
