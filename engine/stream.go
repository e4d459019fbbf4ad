package engine

import (
	"context"
	"sync"
)

// Stream is the output of one submitted request: its events in order, the
// last one with Done set. Read it with Next or with Events (not both).
//
// The step loop never waits for a reader: events go into a queue owned by
// the Stream, which grows as needed, so a slow reader delays nobody else.
type Stream struct {
	ctx context.Context
	id  uint64

	mu     sync.Mutex
	q      []Event // events not yet read; q[head:] are pending
	head   int
	closed bool          // the final event has been queued
	notify chan struct{} // signalled (capacity 1) when events are queued
	ended  bool          // Next returned the final event (reader side)

	once sync.Once
	ch   chan Event // Events' channel, once asked for
}

func newStream(ctx context.Context, id uint64) *Stream {
	return &Stream{ctx: ctx, id: id, notify: make(chan struct{}, 1)}
}

// push queues ev (called by the step loop; never blocks).
func (s *Stream) push(ev Event) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.q = append(s.q, ev)
	if ev.Done {
		s.closed = true
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// pop returns the next queued event, blocking until there is one. ok is
// false once the final event has been returned.
func (s *Stream) pop() (Event, bool) {
	for {
		s.mu.Lock()
		if s.head < len(s.q) {
			ev := s.q[s.head]
			s.q[s.head] = Event{}
			s.head++
			if s.head == len(s.q) {
				s.q, s.head = s.q[:0], 0
			}
			s.mu.Unlock()
			return ev, true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return Event{}, false
		}
		<-s.notify
	}
}

// Next returns the request's next event, blocking until one is ready. It
// returns false after the final event (the one with Done set) has been
// returned. Cancelling the context given to Submit ends the stream
// promptly with a final event whose Finish is FinishAbort.
func (s *Stream) Next() (Event, bool) {
	if s.ch != nil {
		ev, ok := <-s.ch
		return ev, ok
	}
	if s.ended {
		return Event{}, false
	}
	ev, ok := s.pop()
	if ok && ev.Done {
		s.ended = true
	}
	return ev, ok
}

// Events returns a channel carrying the request's events; it is closed
// after the final event. Once Events has been called, use only the
// channel (Next then reads from it too). Read it until it is closed, or
// cancel the request's context: after cancellation, events the reader has
// not taken may be dropped, but the final event is always left in the
// channel, and no goroutine outlives the request.
func (s *Stream) Events() <-chan Event {
	s.once.Do(func() {
		s.ch = make(chan Event, 16)
		go s.forward()
	})
	return s.ch
}

// forward moves events from the queue to the channel.
func (s *Stream) forward() {
	defer close(s.ch)
	done := s.ctx.Done()
	for {
		ev, ok := s.pop()
		if !ok {
			return
		}
		if ev.Done {
			s.deliverFinal(ev)
			return
		}
		select {
		case s.ch <- ev:
		case <-done:
			// The caller gave up: drop token events until the final one.
			for {
				ev, ok := s.pop()
				if !ok {
					return
				}
				if ev.Done {
					s.deliverFinal(ev)
					return
				}
			}
		}
	}
}

// deliverFinal puts the final event into the channel, waiting for the
// reader unless the request's context is done, in which case older events
// still buffered are dropped to make room.
func (s *Stream) deliverFinal(ev Event) {
	select {
	case s.ch <- ev:
		return
	case <-s.ctx.Done():
	}
	for {
		select {
		case s.ch <- ev:
			return
		default:
		}
		select {
		case <-s.ch:
		default:
		}
	}
}
