package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// route is one endpoint: its method, its net/http ServeMux path pattern and
// its handler, which returns an error instead of writing one (endpoint
// writes it as an OpenAI error body).
type route struct {
	method string
	path   string
	h      func(http.ResponseWriter, *http.Request) error
}

// routes lists every endpoint; the table is the one owner of paths and
// methods.
func (s *Server) routes() []route {
	return []route{
		{http.MethodPost, "/v1/completions", s.handleCompletions},
		{http.MethodPost, "/v1/chat/completions", s.handleChat},
		{http.MethodGet, "/v1/models", s.handleModels},
		{http.MethodGet, "/v1/models/{model...}", s.handleModel},
		{http.MethodPost, "/tokenize", s.handleTokenize},
		{http.MethodPost, "/detokenize", s.handleDetokenize},
		{http.MethodGet, "/metrics", s.handleMetrics},
		{http.MethodGet, "/health", s.handleHealth},
		{http.MethodGet, "/ready", s.handleReady},
		{http.MethodGet, "/version", s.handleVersion},
	}
}

// Handler returns the HTTP handler of every endpoint: a ServeMux of
// "METHOD path" patterns (GET ones answer HEAD too), a method-less pattern
// per path for preflights and 405s, and "/" for 404s, all answering with
// OpenAI error bodies; frame wraps it with what every request goes
// through.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.method+" "+rt.path, s.endpoint(rt))
		mux.Handle(rt.path, s.otherMethod(rt))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, notFound("", "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s.frame(mux)
}

// call is what frame learns of a request before routing it, for the
// handlers the mux picks.
type call struct {
	acc     *reqRecord
	authErr error // a missing or wrong API key, on routes that need one
	idErr   error // an invalid X-Request-Id
}

type callKey struct{}

func callOf(r *http.Request) *call { return r.Context().Value(callKey{}).(*call) }

// frame runs around every request: the status recorder, the request id
// and access-log record, authentication, CORS headers and the Host check
// before routing; metrics and the access log after.
func (s *Server) frame(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		c := &call{}
		r, c.authErr = s.authHTTP(r)
		r, c.acc, c.idErr = beginRecord(rec, r)
		r = r.WithContext(context.WithValue(r.Context(), callKey{}, c))
		s.setCORS(rec, r)
		if !s.hostAllowed(r.Host) {
			writeError(rec, errHostNotAllowed(r.Host))
		} else {
			mux.ServeHTTP(rec, r)
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		s.metrics.countHTTP(metricLabel(r.Pattern), status)
		s.logAccess(r, c.acc, status)
	})
}

// metricLabel is the path part of the pattern that served a request
// ("other" for none or the 404 catch-all), so that metrics have one series
// per endpoint.
func metricLabel(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if pattern == "" || pattern == "/" {
		return "other"
	}
	return strings.Replace(pattern, "{model...}", "{model}", 1)
}

// endpoint adapts an error-returning handler: the request's API key and
// id are checked, a POST body is read under its deadline and size limit,
// and an error becomes an OpenAI error body while the status can still be
// written (after that, a log line).
func (s *Server) endpoint(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callOf(r)
		err := c.authErr
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
		} else if err = c.idErr; err == nil && rt.method == http.MethodPost {
			err = s.readBody(w, r)
		}
		if err == nil {
			err = rt.h(w, r)
		}
		if err == nil {
			return
		}
		if rec, ok := w.(*statusRecorder); ok && rec.status != 0 {
			s.log.Warn("request failed after the response started", "request_id", c.acc.id, "path", r.URL.Path, "err", err)
			return
		}
		writeError(w, s.apiErr(err))
	})
}

// otherMethod answers a known path with another method: a CORS preflight,
// else 401 where a key is needed, else 405 with Allow.
func (s *Server) otherMethod(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callOf(r)
		switch {
		case isPreflight(r):
			if err := s.preflight(w, r, rt.method); err != nil {
				writeError(w, err)
			}
		case c.authErr != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			writeError(w, c.authErr)
		default:
			w.Header().Set("Allow", rt.method)
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
				Message: fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, rt.method)})
		}
	})
}
