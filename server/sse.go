package server

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/sluice-llm/sluice/engine"
)

// sseWriter writes Server-Sent Events in OpenAI's framing: each event is
// "data: <json>\n\n" and the stream ends with "data: [DONE]\n\n".
type sseWriter struct {
	w       http.ResponseWriter
	f       http.Flusher
	started bool
	err     error // first write error (the client went away)
}

func newSSE(w http.ResponseWriter) *sseWriter {
	f, _ := w.(http.Flusher)
	return &sseWriter{w: w, f: f}
}

func (s *sseWriter) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
}

func (s *sseWriter) raw(data []byte) {
	if s.err != nil {
		return
	}
	s.start()
	buf := make([]byte, 0, len(data)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if _, err := s.w.Write(buf); err != nil {
		s.err = err
		return
	}
	if s.f != nil {
		s.f.Flush()
	}
}

// send writes v as one event.
func (s *sseWriter) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return
	}
	s.raw(b)
}

// fail writes an error event (the stream had already started, so the
// status code can no longer say it).
func (s *sseWriter) fail(err error) {
	s.send(toAPIError(err, 1).body())
}

func (s *sseWriter) done() { s.raw([]byte("[DONE]")) }

// chunker writes one endpoint's stream chunks: open before any event,
// event for each event of a choice, usage for the final usage chunk.
type chunker interface {
	open(out *sseWriter)
	event(out *sseWriter, index int, ev engine.Event)
	usage(out *sseWriter, u usageJSON)
}

// stream is the one SSE loop of every streaming endpoint, over the events
// of total choices (n per prompt): it keeps each choice's tally for the
// usage chunk, ends the stream with an error event when a choice fails,
// sends nothing more once the client is gone (the aborts it caused are
// skipped), and closes with the usage chunk when asked, then [DONE].
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, events <-chan choiceEvent, total, n int, includeUsage bool, ck chunker) {
	out := newSSE(w)
	cs := make([]*choice, total)
	for i := range cs {
		cs[i] = &choice{}
	}
	ck.open(out)
	for ce := range events {
		if out.err != nil {
			continue // client gone: ctx is cancelled, wait for the streams to end
		}
		c, ev := cs[ce.index], ce.ev
		c.add(ev, false)
		if ev.Done && ev.Finish == engine.FinishError {
			out.fail(finishError(c))
			continue
		}
		if ev.Done && ev.Finish == engine.FinishAbort && ctx.Err() != nil {
			continue
		}
		ck.event(out, ce.index, ev)
	}
	if out.err != nil || ctx.Err() != nil {
		return
	}
	if includeUsage {
		ck.usage(out, sumUsage(cs, n))
	}
	out.done()
}
