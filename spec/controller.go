package spec

import (
	"fmt"
	"math"
)

// ControllerConfig configures a Controller. The zero value is adaptive
// speculation between DefaultMinK and DefaultMaxK tokens with no batch
// limits.
type ControllerConfig struct {
	// FixedK, when positive, is the number of draft tokens for every
	// request (the --spec-tokens setting): no adaptation, only the batch
	// rules below.
	FixedK int
	// MinK and MaxK bound the adaptive choice. MinK may be 0: a request
	// whose drafts are rarely accepted then stops drafting, and its
	// estimate drifts back to Prior by Observe calls without drafts, so it
	// probes again later. Defaults DefaultMinK, DefaultMaxK.
	MinK, MaxK int
	// CostRatio is the cost of one more draft token (drafting it plus
	// verifying one more position) relative to a step of the target
	// without speculation, in (0, 1). A k-th draft token pays off when the
	// chance that it is accepted, a^k for a per-token acceptance rate a,
	// exceeds CostRatio, so k = ⌊ln CostRatio / ln a⌋. Default
	// DefaultCostRatio.
	CostRatio float64
	// HalfLife is how many observations it takes for an observation's
	// weight in the acceptance estimate to halve. Default 8.
	HalfLife float64
	// Prior is the acceptance rate assumed before (and, with decay,
	// between) observations, weighted as PriorWeight draft tokens.
	// Defaults 0.6 and 2.
	Prior, PriorWeight float64
	// MaxBatch turns speculation off when the step's decode batch has at
	// least this many sequences (large batches are compute bound, and
	// drafts only add work). 0 means no limit.
	MaxBatch int
	// TokenBudget caps k so that batchSize·(k+1) fits in it (the
	// scheduler's token budget); when not even k = 1 fits, speculation is
	// off. 0 means no limit.
	TokenBudget int
}

// Defaults of ControllerConfig.
const (
	DefaultMinK      = 1
	DefaultMaxK      = 8
	DefaultCostRatio = 0.25
)

// Controller decides how many tokens to draft per request per step. It is
// read-only after NewController and safe for concurrent use; the
// per-request state lives in a ReqState.
type Controller struct {
	cfg    ControllerConfig
	decay  float64 // weight factor per observation
	lnCost float64
}

// NewController validates cfg and fills in its defaults.
func NewController(cfg ControllerConfig) (*Controller, error) {
	if cfg.MinK == 0 && cfg.MaxK == 0 {
		cfg.MinK = DefaultMinK
	}
	if cfg.MaxK == 0 {
		cfg.MaxK = max(DefaultMaxK, cfg.MinK)
	}
	if cfg.CostRatio == 0 {
		cfg.CostRatio = DefaultCostRatio
	}
	if cfg.HalfLife == 0 {
		cfg.HalfLife = 8
	}
	if cfg.Prior == 0 {
		cfg.Prior = 0.6
	}
	if cfg.PriorWeight == 0 {
		cfg.PriorWeight = 2
	}
	switch {
	case cfg.FixedK < 0:
		return nil, fmt.Errorf("spec: fixed number of speculative tokens must be >= 0, got %d", cfg.FixedK)
	case cfg.MinK < 0 || cfg.MaxK < cfg.MinK:
		return nil, fmt.Errorf("spec: speculative token bounds must satisfy 0 <= min (%d) <= max (%d)", cfg.MinK, cfg.MaxK)
	case !(cfg.CostRatio > 0 && cfg.CostRatio < 1):
		return nil, fmt.Errorf("spec: cost ratio must be in (0, 1), got %v", cfg.CostRatio)
	case !(cfg.HalfLife > 0) || math.IsInf(cfg.HalfLife, 0):
		return nil, fmt.Errorf("spec: half-life must be a positive number, got %v", cfg.HalfLife)
	case !(cfg.Prior > 0 && cfg.Prior <= 1):
		return nil, fmt.Errorf("spec: prior acceptance rate must be in (0, 1], got %v", cfg.Prior)
	case !(cfg.PriorWeight > 0) || math.IsInf(cfg.PriorWeight, 0):
		return nil, fmt.Errorf("spec: prior weight must be a positive number, got %v", cfg.PriorWeight)
	case cfg.MaxBatch < 0 || cfg.TokenBudget < 0:
		return nil, fmt.Errorf("spec: batch limits must be >= 0, got max batch %d, token budget %d", cfg.MaxBatch, cfg.TokenBudget)
	}
	return &Controller{
		cfg:    cfg,
		decay:  math.Exp2(-1 / cfg.HalfLife),
		lnCost: math.Log(cfg.CostRatio),
	}, nil
}

// Config returns the configuration with defaults filled in.
func (c *Controller) Config() ControllerConfig { return c.cfg }

// ReqState is one request's acceptance history. The zero value is a request
// with no history (the prior).
type ReqState struct {
	hits, trials float64 // decayed counts of accepted and verified draft tokens
}

// Rate returns the request's estimated per-token acceptance rate.
func (c *Controller) Rate(st *ReqState) float64 {
	return (st.hits + c.cfg.Prior*c.cfg.PriorWeight) / (st.trials + c.cfg.PriorWeight)
}

// K returns how many tokens to draft for the request this step, given the
// number of sequences in the step's decode batch. 0 means no speculation.
// The caller further caps it by what the request can still use (at most
// max_tokens − generated − 1 drafts) and by the context length.
func (c *Controller) K(st *ReqState, batchSize int) int {
	cfg := &c.cfg
	if cfg.MaxBatch > 0 && batchSize >= cfg.MaxBatch {
		return 0
	}
	k := cfg.FixedK
	if k == 0 {
		a := c.Rate(st)
		switch {
		case a >= 1:
			k = cfg.MaxK
		case a <= 0:
			k = cfg.MinK
		default:
			f := c.lnCost / math.Log(a)
			k = cfg.MaxK
			if f < float64(cfg.MaxK) {
				k = max(cfg.MinK, int(f))
			}
		}
	}
	if cfg.TokenBudget > 0 {
		k = min(k, cfg.TokenBudget/max(batchSize, 1)-1)
	}
	return max(k, 0)
}

// Observe records a step's outcome: drafted draft tokens were verified and
// the first accepted of them accepted. The verification looked at
// accepted+1 tokens when one was rejected (the rest were never judged) and
// at all drafted when none was. A step without drafts (drafted = 0) only
// ages the history, pulling the estimate toward the prior.
func (c *Controller) Observe(st *ReqState, drafted, accepted int) {
	accepted = max(0, min(accepted, drafted))
	trials := accepted
	if accepted < drafted {
		trials++
	}
	st.hits = st.hits*c.decay + float64(accepted)
	st.trials = st.trials*c.decay + float64(trials)
}
