package spec

import "sync/atomic"

// MaxTrackedPos is how many draft positions Stats counts acceptances for.
const MaxTrackedPos = 16

// Stats counts speculative decoding outcomes for one proposer. The engine
// keeps one per proposer kind and exports them as
// vllm:spec_decode_num_drafts_total (Drafts),
// vllm:spec_decode_num_draft_tokens_total (DraftTokens),
// vllm:spec_decode_num_accepted_tokens_total (AcceptedTokens) and
// vllm:spec_decode_num_accepted_tokens_per_pos_total (AcceptedAt). The
// counters are atomic: Record from the step loop, read from anywhere. A
// Stats must not be copied after first use.
type Stats struct {
	Drafts         atomic.Uint64 // verifications with at least one draft token
	DraftTokens    atomic.Uint64 // draft tokens verified
	AcceptedTokens atomic.Uint64 // draft tokens accepted
	// AcceptedAt[i] counts acceptances of the draft token at position i
	// (0-based) of a proposal; positions past MaxTrackedPos are not
	// counted here.
	AcceptedAt [MaxTrackedPos]atomic.Uint64
}

// Record adds one verification of drafted tokens of which the first
// accepted were accepted. Calls with drafted = 0 are ignored.
func (s *Stats) Record(drafted, accepted int) {
	if drafted <= 0 {
		return
	}
	accepted = max(0, min(accepted, drafted))
	s.Drafts.Add(1)
	s.DraftTokens.Add(uint64(drafted))
	s.AcceptedTokens.Add(uint64(accepted))
	for i := range min(accepted, MaxTrackedPos) {
		s.AcceptedAt[i].Add(1)
	}
}

// StatsSnapshot is a copy of a Stats' counters.
type StatsSnapshot struct {
	Drafts, DraftTokens, AcceptedTokens uint64
	AcceptedAt                          [MaxTrackedPos]uint64
}

// Snapshot reads the counters (each atomically; not all at one instant).
func (s *Stats) Snapshot() StatsSnapshot {
	var o StatsSnapshot
	o.Drafts = s.Drafts.Load()
	o.DraftTokens = s.DraftTokens.Load()
	o.AcceptedTokens = s.AcceptedTokens.Load()
	for i := range s.AcceptedAt {
		o.AcceptedAt[i] = s.AcceptedAt[i].Load()
	}
	return o
}

// AcceptanceRate is AcceptedTokens/DraftTokens (0 with no drafts).
func (o StatsSnapshot) AcceptanceRate() float64 {
	if o.DraftTokens == 0 {
		return 0
	}
	return float64(o.AcceptedTokens) / float64(o.DraftTokens)
}
