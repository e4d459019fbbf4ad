// Package engine is sluice's public, embeddable API: it owns one loaded
// model, its KV block pool, the scheduler and the step loop that joins them
// with the sampler. Callers (the HTTP/gRPC server, the CLI, Go programs)
// Generate (or Submit, the same call) requests of token ids and read a
// stream of events back:
//
//	e, err := engine.New(engine.Config{ModelPath: "model.gguf"})
//	...
//	defer e.Close()
//	s, err := e.Generate(ctx, &engine.Request{Prompt: e.Tokenizer().Encode(text, true, false), MaxTokens: 64})
//	...
//	for ev := range s.Events() {
//		fmt.Print(ev.Text) // ev.Done: ev.Finish, ev.Usage, ev.Timing
//	}
//
// Every Engine method is safe for concurrent use from many goroutines;
// the step loop batches whatever requests are running into each step.
//
// Ownership: the step loop goroutine owns the scheduler, the KV pool, the
// model's activation buffers and every per-request sampler; callers talk to
// it only through Generate/Submit, Stream, Abort (via context) and Stats.
package engine

import (
	"errors"
	"time"

	"github.com/sluice-llm/sluice/sample"
	"github.com/sluice-llm/sluice/spec"
)

// Speculation methods (Config.Spec).
const (
	SpecNGram = "ngram"
	SpecDraft = "draft"
)

// DefaultSpecMaxBatch is Config.SpecMaxBatch's default.
const DefaultSpecMaxBatch = 8

// Request is one generation request.
type Request struct {
	ID        string        // caller's id, for logs and metrics; optional
	Prompt    []int32       // token ids, BOS included if wanted (required, non-empty)
	MaxTokens int           // tokens to generate at most; 0 = up to the context length
	Sampling  sample.Params // validated by Submit
	Priority  int           // higher runs first; round-robin across Clients within a level
	IgnoreEOS bool          // keep generating past end-of-generation tokens
	Arrival   time.Time     // zero: time of Submit
	// NoSpeculation decodes this request one token per step even when
	// the engine speculates.
	NoSpeculation bool
	// Constraint, if set, restricts the output to a grammar (structured
	// output); see Constraint. Such a request does not speculate.
	Constraint Constraint
	// Client says who sent the request, for fairness: when sequence
	// slots are contended, waiting requests of one priority are admitted
	// round-robin across clients (FCFS within each), so one client's many
	// requests, or one request's many choices, cannot hold every slot
	// while another client's request waits. Requests with the same
	// Client share one turn order; "" is one shared client. The server
	// fills it from the OpenAI "user" field, else the remote address.
	Client string
}

// Event is one step of a request's output, in order. The last event of a
// stream has Done set.
type Event struct {
	Token       int32                 // generated token id (not set on a final event that carries no token)
	HasToken    bool                  // Token is meaningful
	Text        string                // newly decoded text: whole UTF-8 characters, stop strings held back and cut
	Logprob     float32               // log-probability of Token (if Sampling.Logprobs)
	TopLogprobs []sample.TokenLogprob // alternatives (if Sampling.TopLogprobs > 0); owned by the receiver
	// Elapsed is the time from the request's arrival (Submit, or
	// Request.Arrival) to the end of the forward pass that produced Token:
	// consecutive events' difference is the inter-token latency.
	Elapsed time.Duration
	Done    bool         // last event of the stream
	Finish  FinishReason // set when Done
	Err     error        // set when Finish == FinishError
	Usage   Usage        // set when Done
	Timing  Timing       // set when Done
}

// FinishReason says why a request ended (OpenAI's finish_reason values).
type FinishReason string

const (
	FinishStop   FinishReason = "stop"   // EOG token or stop string/token
	FinishLength FinishReason = "length" // MaxTokens or the context length reached
	FinishAbort  FinishReason = "abort"  // cancelled by the caller (context done)
	FinishError  FinishReason = "error"  // the engine failed (Err says why)
)

// Usage counts a request's tokens.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int // prompt tokens served from the prefix cache
}

// Errors returned by Submit. Use errors.Is; *InvalidRequestError carries the
// field at fault.
var (
	ErrOverloaded = errors.New("engine: too many waiting requests") // → HTTP 429 with Retry-After
	ErrDraining   = errors.New("engine: shutting down")             // → HTTP 503
	ErrClosed     = errors.New("engine: closed")
)

// InvalidRequestError is a request the engine refuses as given (→ HTTP 400).
type InvalidRequestError struct {
	Param string // the field at fault, OpenAI snake_case ("max_tokens", "prompt", "temperature")
	Msg   string
}

func (e *InvalidRequestError) Error() string {
	if e.Param == "" {
		return e.Msg
	}
	return e.Param + ": " + e.Msg
}

// Timing is a finished request's latency breakdown, carried by its final
// Event (for TTFT/TPOT/e2e histograms).
type Timing struct {
	Queued    time.Duration // Submit → first scheduled
	FirstTok  time.Duration // Submit → first token (TTFT)
	Total     time.Duration // Submit → done (e2e)
	PerOutput time.Duration // mean time per output token after the first (TPOT)
}

// Stats is a snapshot of the engine for metrics and health, as of the
// step loop's last iteration (the loop publishes it once per iteration;
// taking it never waits for a step). Counters (uint64 and the totals) only
// grow; the vLLM metric each field feeds is named where there is one.
type Stats struct {
	Running int // requests holding KV blocks (vllm:num_requests_running)
	Waiting int // requests queued, preempted ones included (vllm:num_requests_waiting)

	KVUsage        float64 // fraction of KV blocks in use, 0..1 (vllm:kv_cache_usage_perc)
	KVBlocks       int     // blocks in the pool
	KVCachedBlocks int     // blocks holding a reusable prefix, in use or free

	PrefixQueries    uint64 // prompt tokens looked up in the prefix cache (vllm:prefix_cache_queries)
	PrefixHits       uint64 // of which found (vllm:prefix_cache_hits)
	PromptTokens     uint64 // prompt tokens computed, recomputation after preemption included (vllm:prompt_tokens)
	GenerationTokens uint64 // tokens generated (vllm:generation_tokens)
	Preemptions      uint64 // requests sent back to the queue for lack of KV blocks (vllm:num_preemptions)
	Finished         map[FinishReason]uint64

	// Steps counts the steps that ran the model. The step fields below
	// describe those steps only.
	Steps uint64
	// StepTime is the wall time of the last step: scheduling, building
	// the batch, the forward pass, sampling and the scheduler update.
	StepTime time.Duration
	// StepTimeTotal is StepTime summed over Steps (MeanStepTime).
	StepTimeTotal time.Duration
	// ForwardTimeTotal is the part of StepTimeTotal spent in the model's
	// forward pass.
	ForwardTimeTotal time.Duration
	// StepTimeHist counts steps by StepTime: StepTimeHist[i] those of at
	// most StepTimeBuckets()[i] (and more than the bucket before), the
	// last entry those longer than every bound. Counts are per bucket,
	// not cumulative.
	StepTimeHist [NumStepTimeBuckets + 1]uint64
	// BatchTokens and BatchSeqs are the last step's batch: tokens computed
	// and sequences in it.
	BatchTokens, BatchSeqs int
	// BatchTokensTotal and BatchSeqsTotal sum them over Steps
	// (MeanBatchTokens, MeanBatchSeqs).
	BatchTokensTotal, BatchSeqsTotal uint64

	// Speculative decoding (Config.Spec): SpecMethod is the proposer
	// ("ngram", "draft"; "" when off). SpecDrafts counts verifications of
	// at least one draft token (vllm:spec_decode_num_drafts_total),
	// SpecDraftTokens the draft tokens verified
	// (vllm:spec_decode_num_draft_tokens_total) and SpecAcceptedTokens
	// those accepted (vllm:spec_decode_num_accepted_tokens_total).
	SpecMethod                                      string
	SpecDrafts, SpecDraftTokens, SpecAcceptedTokens uint64
	// SpecAcceptedAt[i] counts accepted draft tokens at position i of
	// their proposal (vllm:spec_decode_num_accepted_tokens_per_pos_total).
	SpecAcceptedAt [spec.MaxTrackedPos]uint64

	Draining, Healthy bool
}

// SpecAcceptanceRate is SpecAcceptedTokens/SpecDraftTokens, 0 before any
// draft was verified.
func (s *Stats) SpecAcceptanceRate() float64 {
	if s.SpecDraftTokens == 0 {
		return 0
	}
	return float64(s.SpecAcceptedTokens) / float64(s.SpecDraftTokens)
}

// NumStepTimeBuckets is the number of bounds in StepTimeBuckets.
const NumStepTimeBuckets = 14

var stepTimeBuckets = [NumStepTimeBuckets]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
	5 * time.Second, 10 * time.Second,
}

// StepTimeBuckets returns the upper bounds of Stats.StepTimeHist's
// buckets, in increasing order (Prometheus "le" values).
func StepTimeBuckets() []time.Duration { return append([]time.Duration(nil), stepTimeBuckets[:]...) }

// stepBucket returns the StepTimeHist index of a step of duration d.
func stepBucket(d time.Duration) int {
	for i, b := range stepTimeBuckets {
		if d <= b {
			return i
		}
	}
	return NumStepTimeBuckets
}

// MeanStepTime is the mean wall time of a step, 0 before the first.
func (s *Stats) MeanStepTime() time.Duration {
	if s.Steps == 0 {
		return 0
	}
	return s.StepTimeTotal / time.Duration(s.Steps)
}

// MeanBatchTokens is the mean number of tokens computed per step.
func (s *Stats) MeanBatchTokens() float64 {
	if s.Steps == 0 {
		return 0
	}
	return float64(s.BatchTokensTotal) / float64(s.Steps)
}

// MeanBatchSeqs is the mean number of sequences per step.
func (s *Stats) MeanBatchSeqs() float64 {
	if s.Steps == 0 {
		return 0
	}
	return float64(s.BatchSeqsTotal) / float64(s.Steps)
}

// ModelInfo describes the loaded model (for /v1/models and the registry).
type ModelInfo struct {
	Name          string
	Path          string
	Fingerprint   string
	Arch          string
	ContextLength int // max tokens per request (prompt + output), at most what the KV pool holds for one sequence
	VocabSize     int
	QuantMix      string // e.g. "Q4_K:193 Q6_K:33 F32:65"
	LoadedAt      time.Time
	BlockSize     int
	KVBlocks      int
	KVBytes       int64
	Threads       int // CPU worker threads the backend runs, the caller's included
}
