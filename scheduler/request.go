package scheduler

import "github.com/sluice-llm/sluice/kvcache"

type state uint8

const (
	waiting state = iota + 1
	running
)

// req is the scheduler's record of one request. The scheduler owns it; the
// kvcache.Pool owns the ref counts behind kv.
//
// tokens holds the prompt, the confirmed output, then numDraft speculative
// tokens. target is len(tokens); positions [0, computed) have KV entries in
// kv's blocks, and kv holds blocks for at least computed positions.
// Drafts are only ever computed in the same chunk as the last confirmed
// token, so a chunk that reaches them also yields the logits that verify
// them.
type req struct {
	id        uint64
	priority  int
	arrival   uint64 // Submit order, kept across preemption
	turn      uint64 // round-robin turn among clients, kept across preemption
	client    *client
	promptLen int
	maxTokens int
	tokens    []int32
	numDraft  int
	computed  int
	key       []byte // Request.CacheKey
	kv        kvcache.Seq
	state     state

	prev, next *req // waiting list links (state == waiting)

	step    uint64 // last step whose plan scheduled it
	logits  bool   // that plan's chunk reached the target
	sampled bool   // Update got its result
	aborted bool   // aborted while its step was in flight
	finish  Reason // set by Update when the request is done
}

func (r *req) target() int    { return len(r.tokens) }
func (r *req) confirmed() int { return len(r.tokens) - r.numDraft }
func (r *req) generated() int { return r.confirmed() - r.promptLen }

// decoding reports whether only the last confirmed token (and drafts) are
// left to compute: the request is generating, not (re)filling its context.
func (r *req) decoding() bool { return r.computed >= r.confirmed()-1 }

// outranks orders requests: higher priority first, then earlier turn
// (round-robin across clients), then earlier arrival. A client's turns
// increase with its arrivals, so with one client this is FCFS.
func (r *req) outranks(o *req) bool {
	if r.priority != o.priority {
		return r.priority > o.priority
	}
	if r.turn != o.turn {
		return r.turn < o.turn
	}
	return r.arrival < o.arrival
}

// client is the round-robin state of one Request.Client with live
// requests: the turn its next request gets.
type client struct {
	key  string
	next uint64
	live int // requests waiting or running
}

// dropDrafts forgets the speculative tail.
func (r *req) dropDrafts() {
	r.tokens = r.tokens[:r.confirmed()]
	r.numDraft = 0
	r.computed = min(r.computed, len(r.tokens))
}

// queue is the waiting queue: an intrusive doubly linked list sorted by rank
// (outranks: priority, highest first, then turn, then arrival). A new
// request has the latest arrival and a turn no earlier than any admitted
// one, so it goes behind its priority level or, with other clients
// waiting, behind the requests of its turn; a preempted one keeps its turn
// and arrival, so it goes back ahead of later ones of its priority, in
// practice the front of its level. Finding the place walks from the nearer
// end: O(1) when all requests share a priority and a client.
type queue struct {
	head req // sentinel: head.next is the front
	n    int
}

func (q *queue) init() { q.head.next, q.head.prev = &q.head, &q.head }

func (q *queue) front() *req {
	if q.n == 0 {
		return nil
	}
	return q.head.next
}

// after returns the request behind r, nil at the end.
func (q *queue) after(r *req) *req {
	if r.next == &q.head {
		return nil
	}
	return r.next
}

func (q *queue) insertAfter(r, at *req) {
	r.prev, r.next = at, at.next
	at.next.prev = r
	at.next = r
	q.n++
}

// pushBack puts a newly submitted r in rank order, walking from the back.
func (q *queue) pushBack(r *req) {
	at := q.head.prev
	for at != &q.head && r.outranks(at) {
		at = at.prev
	}
	q.insertAfter(r, at)
}

// requeue puts a preempted r back in rank order.
func (q *queue) requeue(r *req) {
	at := &q.head
	for at.next != &q.head && at.next.outranks(r) {
		at = at.next
	}
	q.insertAfter(r, at)
}

func (q *queue) remove(r *req) {
	r.prev.next, r.next.prev = r.next, r.prev
	r.prev, r.next = nil, nil
	q.n--
}
