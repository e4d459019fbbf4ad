// Package scheduler does continuous batching over a kvcache.Pool with one
// rule: every request has a target token count (prompt + confirmed output +
// draft tokens) and a computed count, and each step closes gaps within a
// token budget and a sequence limit. Prefill, chunked prefill, prefix cache
// hits, decoding and speculative verification are all that one rule.
//
// The engine's step loop drives it:
//
//	plan, err := s.Schedule() // who computes which token range, and where
//	... run the forward pass over plan.Seqs, sample where Logits is set ...
//	err = s.Update(results)   // sampled tokens, accepted drafts, stops
//
// (or s.Rollback() instead of Update when the forward pass failed).
//
// Submit and Abort may be called between steps, and Abort also while a step
// is in flight. A Scheduler is not safe for concurrent use: the step loop's
// goroutine owns it, along with the Pool it was given.
//
// Ownership: the Scheduler owns the requests (token streams, computed counts,
// queues); the Pool owns blocks and ref counts and is only asked for them.
// Invariants between calls: every running request holds blocks for at least
// its computed positions and computed < target; waiting requests hold no
// blocks and have computed = 0; len(running) <= MaxNumSeqs.
package scheduler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-llm/sluice/kvcache"
)

// Defaults for Config fields left at zero.
const (
	DefaultMaxNumBatchedTokens = 2048
	DefaultMaxNumSeqs          = 64
	DefaultMaxWaiting          = 1024
)

var (
	// ErrOverloaded: the waiting queue is full. Retry later (HTTP 429).
	ErrOverloaded = errors.New("scheduler: overloaded, waiting queue is full")
	// ErrTooLong: the request can never run here (past the context length,
	// or more KV blocks than the whole cache).
	ErrTooLong = errors.New("scheduler: request too long")
	// ErrInvalid: a malformed request or call.
	ErrInvalid = errors.New("scheduler: invalid request")
	// ErrNotFound: no live request has this id.
	ErrNotFound = errors.New("scheduler: no such request")
	// ErrSequence: Schedule and Update were called out of turn.
	ErrSequence = errors.New("scheduler: Schedule and Update must alternate")
)

// Config bounds each step and the queue.
type Config struct {
	MaxNumBatchedTokens int // tokens computed per step (default 2048)
	MaxNumSeqs          int // running requests (default 64)
	MaxWaiting          int // waiting requests before Submit fails (default 1024)
	MaxModelLen         int // prompt + MaxTokens limit; 0: only the pool's size limits
}

// Request is what Submit takes.
type Request struct {
	ID        uint64  // chosen by the caller, unique among live requests
	Prompt    []int32 // copied; at least one token
	MaxTokens int     // tokens to generate, at least 1
	Priority  int     // higher runs first; round-robin across clients within a priority
	// CacheKey, if set, separates this request's prefix cache entries from
	// those of requests with another key (an adapter id).
	CacheKey []byte
	// Client identifies who sent the request (a user, an API key, an
	// address). Within a priority, waiting requests are admitted
	// round-robin across clients, FCFS within each, so that one client's
	// many requests cannot hold every sequence slot while another's wait.
	// Requests with the same Client, "" included, share one turn order.
	Client string
}

// Scheduler is the continuous batching state machine. See the package doc.
type Scheduler struct {
	cfg  Config
	pool *kvcache.Pool

	byID     map[uint64]*req
	waiting  queue
	running  []*req // ordered by outranks: the preemption victim is last
	arrivals uint64
	clients  map[string]*client // clients with live requests
	round    uint64             // the highest turn admitted so far
	spare    []*req             // finished requests kept for reuse

	step     uint64
	inFlight bool // a plan with entries awaits Update
	plan     Plan
	planReqs []*req // planReqs[i] is plan.Seqs[i]'s request
	done     []Done // finished since the last Schedule
	maxLen   int    // longest prompt + MaxTokens the pool can ever hold
}

// New returns a Scheduler that takes blocks from pool.
func New(pool *kvcache.Pool, cfg Config) (*Scheduler, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: nil pool", ErrInvalid)
	}
	if cfg.MaxNumBatchedTokens == 0 {
		cfg.MaxNumBatchedTokens = DefaultMaxNumBatchedTokens
	}
	if cfg.MaxNumSeqs == 0 {
		cfg.MaxNumSeqs = DefaultMaxNumSeqs
	}
	if cfg.MaxWaiting == 0 {
		cfg.MaxWaiting = DefaultMaxWaiting
	}
	if cfg.MaxNumBatchedTokens < 1 || cfg.MaxNumSeqs < 1 || cfg.MaxWaiting < 1 || cfg.MaxModelLen < 0 {
		return nil, fmt.Errorf("%w: config %+v", ErrInvalid, cfg)
	}
	s := &Scheduler{
		cfg:     cfg,
		pool:    pool,
		byID:    make(map[uint64]*req),
		clients: make(map[string]*client),
		running: make([]*req, 0, cfg.MaxNumSeqs),
		// The last sampled token never needs a KV entry.
		maxLen: pool.NumBlocks()*pool.BlockSize() + 1,
	}
	s.waiting.init()
	return s, nil
}

// Config returns the effective configuration.
func (s *Scheduler) Config() Config { return s.cfg }

// NumWaiting returns the number of queued requests (vllm:num_requests_waiting).
func (s *Scheduler) NumWaiting() int { return s.waiting.n }

// NumRunning returns the number of requests holding KV blocks
// (vllm:num_requests_running).
func (s *Scheduler) NumRunning() int { return len(s.running) }

// Submit queues a request. It fails at once with ErrInvalid for a malformed
// request, ErrTooLong for one that could never run (prompt + MaxTokens past
// MaxModelLen, or needing more KV blocks than the pool has), and
// ErrOverloaded when the waiting queue is full.
func (s *Scheduler) Submit(r Request) error {
	if len(r.Prompt) == 0 {
		return fmt.Errorf("%w: request %d has an empty prompt", ErrInvalid, r.ID)
	}
	if r.MaxTokens < 1 {
		return fmt.Errorf("%w: request %d has max_tokens %d, need at least 1", ErrInvalid, r.ID, r.MaxTokens)
	}
	if _, dup := s.byID[r.ID]; dup {
		return fmt.Errorf("%w: request id %d is already live", ErrInvalid, r.ID)
	}
	if s.cfg.MaxModelLen > 0 && (r.MaxTokens > s.cfg.MaxModelLen || len(r.Prompt)+r.MaxTokens > s.cfg.MaxModelLen) {
		return fmt.Errorf("%w: prompt of %d tokens + max_tokens %d exceeds the context length %d",
			ErrTooLong, len(r.Prompt), r.MaxTokens, s.cfg.MaxModelLen)
	}
	if r.MaxTokens > s.maxLen || len(r.Prompt)+r.MaxTokens > s.maxLen {
		return fmt.Errorf("%w: prompt of %d tokens + max_tokens %d needs %d KV blocks of %d tokens, the cache has %d",
			ErrTooLong, len(r.Prompt), r.MaxTokens, s.pool.BlocksFor(len(r.Prompt)+r.MaxTokens-1),
			s.pool.BlockSize(), s.pool.NumBlocks())
	}
	if s.waiting.n >= s.cfg.MaxWaiting {
		return ErrOverloaded
	}
	q := s.newReq()
	q.id, q.priority, q.maxTokens = r.ID, r.Priority, r.MaxTokens
	q.arrival = s.arrivals
	s.arrivals++
	s.takeTurn(q, r.Client)
	q.promptLen = len(r.Prompt)
	// Room for the prompt and some output, so decoding rarely reallocates.
	q.tokens = slices.Grow(q.tokens[:0], len(r.Prompt)+min(r.MaxTokens, 256))
	q.tokens = append(q.tokens, r.Prompt...)
	if len(r.CacheKey) > 0 {
		if err := s.pool.SetKey(&q.kv, r.CacheKey); err != nil {
			s.leave(q)
			return err
		}
		q.key = append(q.key[:0], r.CacheKey...)
	}
	q.state = waiting
	s.waiting.pushBack(q)
	s.byID[q.id] = q
	return nil
}

// Abort cancels a request wherever it is. Its blocks are freed now, or, if
// the in-flight step computes it, when that step's Update comes; either way
// the next plan lists it in Finished with ReasonAborted and no later plan
// schedules it.
func (s *Scheduler) Abort(id uint64) error {
	r := s.byID[id]
	if r == nil || r.aborted {
		return fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	s.done = append(s.done, Done{ID: id, Reason: ReasonAborted})
	switch {
	case r.state == waiting:
		s.waiting.remove(r)
		s.retire(r)
	case s.inFlight && r.step == s.step:
		r.aborted = true
	default:
		s.removeRunning(r)
		s.retire(r)
	}
	return nil
}

func (s *Scheduler) newReq() *req {
	if n := len(s.spare); n > 0 {
		r := s.spare[n-1]
		s.spare = s.spare[:n-1]
		return r
	}
	return &req{}
}

// takeTurn registers r with its client and gives it the client's next
// turn, but none earlier than the current round: a client that has had
// nothing waiting joins the round being admitted instead of jumping ahead
// of it with old turns. Turns of one client increase with arrival.
func (s *Scheduler) takeTurn(r *req, key string) {
	c := s.clients[key]
	if c == nil {
		c = &client{key: key}
		s.clients[key] = c
	}
	c.live++
	r.client = c
	r.turn = max(c.next, s.round)
	c.next = r.turn + 1
}

// leave unregisters r from its client, forgetting clients with no live
// request.
func (s *Scheduler) leave(r *req) {
	if c := r.client; c != nil {
		if c.live--; c.live == 0 {
			delete(s.clients, c.key)
		}
		r.client = nil
	}
}

// retire frees r's blocks and forgets it, keeping its buffers for reuse.
// r must be in neither queue.
func (s *Scheduler) retire(r *req) {
	s.pool.Free(&r.kv)
	s.leave(r)
	delete(s.byID, r.id)
	kv, tokens := r.kv, r.tokens[:0]
	_ = kv.Reset()
	*r = req{kv: kv, tokens: tokens}
	s.spare = append(s.spare, r)
}

// insertRunning places r by rank.
func (s *Scheduler) insertRunning(r *req) {
	i := len(s.running)
	for i > 0 && r.outranks(s.running[i-1]) {
		i--
	}
	s.running = append(s.running, nil)
	copy(s.running[i+1:], s.running[i:])
	s.running[i] = r
	r.state = running
}

func (s *Scheduler) removeRunning(r *req) {
	for i, x := range s.running {
		if x == r {
			copy(s.running[i:], s.running[i+1:])
			s.running[len(s.running)-1] = nil
			s.running = s.running[:len(s.running)-1]
			return
		}
	}
}
