package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/engine"
)

// This file gives every HTTP request an id and one access-log line. The
// id is the client's X-Request-Id when it sends one (printable ASCII, at
// most maxRequestIDLen bytes; others get 400), else a new one with the
// OpenAI prefix of the route ("cmpl-", "chatcmpl-", "req-"); it is
// echoed in X-Request-Id and is the response's "id". The record collects
// what the line says as the request runs: its final events feed it from
// forward, the rest from serveHTTP.

// reqRecord is one HTTP request's access-log record. serveHTTP owns it;
// forward goroutines add final events under mu.
type reqRecord struct {
	id    string
	start time.Time

	mu     sync.Mutex
	model  string
	usage  usageJSON // summed as sumUsage does
	finish []string  // distinct finish reasons, in order seen
}

type recCtxKey struct{}

// record returns the request's record; a zero one outside serveHTTP
// (gRPC, tests calling handlers directly).
func record(ctx context.Context) *reqRecord {
	if r, ok := ctx.Value(recCtxKey{}).(*reqRecord); ok {
		return r
	}
	return &reqRecord{start: time.Now()}
}

// requestID returns the request's id, making one with prefix when the
// client sent none.
func requestID(ctx context.Context, prefix string) string {
	rec := record(ctx)
	if rec.id == "" {
		rec.id = newID(prefix)
	}
	return rec.id
}

// idPrefix is the OpenAI id prefix of path's responses.
func idPrefix(path string) string {
	switch path {
	case "/v1/completions":
		return "cmpl-"
	case "/v1/chat/completions":
		return "chatcmpl-"
	}
	return "req-"
}

// beginRecord makes r's record and id (X-Request-Id, checked), sets the
// X-Request-Id response header and returns r carrying the record.
func beginRecord(w http.ResponseWriter, r *http.Request) (*http.Request, *reqRecord, error) {
	rec := &reqRecord{start: time.Now()}
	var err error
	if id := r.Header.Get("X-Request-Id"); id != "" {
		if err = checkRequestID(id); err != nil {
			err = badRequest("X-Request-Id", "the X-Request-Id header is not a valid id: %s", strings.TrimPrefix(err.Error(), "request_id "))
		} else {
			rec.id = id
		}
	}
	if rec.id == "" {
		rec.id = newID(idPrefix(r.URL.Path))
	}
	w.Header().Set("X-Request-Id", rec.id)
	return r.WithContext(context.WithValue(r.Context(), recCtxKey{}, rec)), rec, err
}

// final records a choice's final event; index is its choice index, n the
// choices per prompt.
func (rec *reqRecord) final(index, n int, ev engine.Event) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	addUsage(&rec.usage, index%n == 0, ev.Usage, ev.Timing)
	f := finishReason(ev.Finish)
	for _, x := range rec.finish {
		if x == f {
			return
		}
	}
	rec.finish = append(rec.finish, f)
}

func (rec *reqRecord) setModel(name string) {
	rec.mu.Lock()
	rec.model = name
	rec.mu.Unlock()
}

// quietPaths are logged at debug level: probes and scrapes would drown
// the requests.
var quietPaths = map[string]bool{"/health": true, "/ready": true, "/metrics": true, "/version": true}

// logAccess writes rec's access-log line for an HTTP request.
func (s *Server) logAccess(r *http.Request, rec *reqRecord, status int) {
	level := slog.LevelInfo
	if quietPaths[r.URL.Path] {
		level = slog.LevelDebug
	}
	s.logRecord(level, rec, slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.String("client", hostOf(r.RemoteAddr)))
}

// logRecord writes an access-log line: head (how the request came and
// what it got), then what rec collected.
func (s *Server) logRecord(level slog.Level, rec *reqRecord, head ...slog.Attr) {
	ctx := context.Background()
	if !s.log.Enabled(ctx, level) {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	u := rec.usage
	attrs := append([]slog.Attr{slog.String("request_id", rec.id)}, head...)
	attrs = append(attrs, slog.String("model", rec.model),
		slog.Int("prompt_tokens", u.PromptTokens), slog.Int("cached_tokens", u.PromptTokensDetails.CachedTokens),
		slog.Int("completion_tokens", u.CompletionTokens), slog.Float64("queue_s", u.QueueTime),
		slog.Float64("ttft_s", u.TTFT), slog.Float64("total_s", time.Since(rec.start).Seconds()),
		slog.String("finish_reason", strings.Join(rec.finish, ",")))
	s.log.LogAttrs(ctx, level, "request", attrs...)
}
