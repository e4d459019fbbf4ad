// Package engine is sluice's public, embeddable API: it owns one loaded
// model, its KV block pool, the scheduler and the step loop that joins them
// with the sampler. Callers (the HTTP/gRPC server, the CLI, Go programs)
// Submit requests of token ids and read a stream of events back.
//
// Ownership: the step loop goroutine owns the scheduler, the KV pool, the
// model's activation buffers and every per-request sampler; callers talk to
// it only through Submit, Stream, Abort (via context) and Stats.
package engine

import (
	"errors"
	"time"

	"github.com/sluice-llm/sluice/sample"
)

// Config configures an Engine. Zero values mean the documented defaults.
type Config struct {
	ModelPath string // GGUF file (required)
	Name      string // name clients use for the model; default: file base name
	Backend   string // kernels backend, default "cpu"
	Threads   int    // CPU threads; 0 = all cores

	// KV memory: KVMemory bytes if > 0, else KVMemoryFraction (default
	// 0.5) of the memory available to the process after the weights.
	KVMemory         int64
	KVMemoryFraction float64
	KVType           string // "f16" (default) or "f32"
	BlockSize        int    // tokens per KV block, default 16
	ContextLength    int    // max tokens per request; default the model's context length

	MaxNumSeqs          int  // sequences per step, default 64
	MaxNumBatchedTokens int  // token budget per step, default 2048
	MaxQueue            int  // waiting requests before Submit fails with ErrOverloaded, default 1024
	DisablePrefixCache  bool // prefix caching is on by default
}

// Request is one generation request.
type Request struct {
	ID        string        // caller's id, for logs and metrics; optional
	Prompt    []int32       // token ids, BOS included if wanted (required, non-empty)
	MaxTokens int           // tokens to generate at most; 0 = up to the context length
	Sampling  sample.Params // validated by Submit
	Priority  int           // higher runs first; FCFS within a level
	IgnoreEOS bool          // keep generating past end-of-generation tokens
	Arrival   time.Time     // zero: time of Submit
}

// Event is one step of a request's output, in order. The last event of a
// stream has Done set.
type Event struct {
	Token       int32                 // generated token id (not set on a final event that carries no token)
	HasToken    bool                  // Token is meaningful
	Text        string                // newly decoded text: whole UTF-8 characters, stop strings held back and cut
	Logprob     float32               // log-probability of Token (if Sampling.Logprobs)
	TopLogprobs []sample.TokenLogprob // alternatives (if Sampling.TopLogprobs > 0); owned by the receiver
	Done        bool                  // last event of the stream
	Finish      FinishReason          // set when Done
	Err         error                 // set when Finish == FinishError
	Usage       Usage                 // set when Done
	Timing      Timing                // set when Done
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

// Stats is a snapshot of the engine for metrics and health.
type Stats struct {
	Running, Waiting  int
	KVUsage           float64 // fraction of KV blocks in use, 0..1
	KVBlocks          int     // blocks in the pool
	PrefixQueries     uint64  // prompt tokens looked up in the prefix cache
	PrefixHits        uint64  // of which found
	PromptTokens      uint64  // total prompt tokens computed
	GenerationTokens  uint64  // total tokens generated
	Preemptions       uint64
	Finished          map[FinishReason]uint64
	Steps             uint64
	Draining, Healthy bool
}

// ModelInfo describes the loaded model (for /v1/models and the registry).
type ModelInfo struct {
	Name          string
	Path          string
	Fingerprint   string
	Arch          string
	ContextLength int // max tokens per request (prompt + output)
	VocabSize     int
	QuantMix      string // e.g. "Q4_K:193 Q6_K:33 F32:65"
	LoadedAt      time.Time
	BlockSize     int
	KVBlocks      int
	KVBytes       int64
}
