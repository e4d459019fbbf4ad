package server

import (
	"encoding/json"
	"net/http"
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
