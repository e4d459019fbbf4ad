package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultAbortGrace is how long Drain waits, once its deadline has passed
// and the remaining requests are aborted, for their handlers to write
// their endings, when Options.AbortGrace is 0.
const DefaultAbortGrace = 2 * time.Second

// DrainError is Drain's error when its deadline passed with requests still
// running: they were aborted, each client got an ending (a stream's final
// chunk with finish_reason "abort" and [DONE], a 503 error body, a gRPC
// Unavailable status).
type DrainError struct {
	Cut int   // generation requests that were running at the deadline
	Err error // why the drain stopped waiting (the context's error)
}

func (e *DrainError) Error() string {
	return fmt.Sprintf("the drain deadline passed with %d requests running; they were aborted: %v", e.Cut, e.Err)
}

func (e *DrainError) Unwrap() error { return e.Err }

// errShutdown is the answer to a request that the drain deadline cut
// before it could finish.
func errShutdown() *apiError {
	return &apiError{Status: 503, Type: "service_unavailable_error", Code: "shutdown",
		Message: "the server shut down before the request finished; retry on another server", RetryAfter: 1}
}

// aborting reports whether the drain deadline has passed and the server is
// aborting what is left.
func (s *Server) aborting() bool { return s.abortCtx.Err() != nil }

// Drain refuses new requests, then waits until every running request has
// finished or ctx is done. When ctx ends first, the remaining requests are
// aborted in the engine and Drain waits up to Options.AbortGrace for their
// handlers to write the endings, then returns a *DrainError. Afterwards
// the caller shuts the HTTP and gRPC servers down (with a short grace so
// the last bytes reach the clients).
func (s *Server) Drain(ctx context.Context) error {
	s.StartDrain()
	merr := s.waitModels(ctx)
	if s.waitInflight(ctx) == nil && ctx.Err() == nil {
		return merr
	}
	cut := int(s.inflight.Load())
	s.abortAll()
	if cut == 0 {
		return nil // the models did not drain in time, but nothing was running here
	}
	gctx, cancel := context.WithTimeout(context.Background(), s.opts.AbortGrace)
	defer cancel()
	if werr := s.waitInflight(gctx); werr != nil {
		s.log.Warn("handlers still writing after the abort grace", "running", s.inflight.Load())
	}
	return &DrainError{Cut: cut, Err: ctx.Err()}
}

// waitModels drains every model in parallel.
func (s *Server) waitModels(ctx context.Context) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, e := range s.entries() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.m.Drain(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitInflight waits until no generation handler is running (they may
// still be writing their last bytes after the engine finished).
func (s *Server) waitInflight(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.inflight.Load() > 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
