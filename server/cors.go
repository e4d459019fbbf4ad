package server

import (
	"fmt"
	"net/http"
	"strings"
)

// This file answers browsers' cross-origin requests (Options.CORSOrigins):
// preflights (OPTIONS with Access-Control-Request-Method) get 204 with the
// allowed method and headers, and the responses to allowed origins carry
// Access-Control-Allow-Origin. No credentials mode: browsers send the API
// key as an ordinary Authorization header, which the preflight allows.

// corsAllowHeaders are the request headers a browser may send.
const corsAllowHeaders = "Authorization, Content-Type, X-Request-Id, OpenAI-Organization, OpenAI-Project"

// corsExposeHeaders are the response headers a browser script may read.
const corsExposeHeaders = "X-Request-Id, Retry-After"

// corsOrigin returns the Access-Control-Allow-Origin value for origin,
// "" when it is not allowed.
func (s *Server) corsOrigin(origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range s.opts.CORSOrigins {
		if o == "*" {
			return "*"
		}
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return origin
		}
	}
	return ""
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// setCORS adds the CORS headers of an ordinary response to an allowed
// origin.
func (s *Server) setCORS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	if allow := s.corsOrigin(r.Header.Get("Origin")); allow != "" {
		h.Set("Access-Control-Allow-Origin", allow)
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	}
}

// preflight answers a CORS preflight for a route served with method:
// 204 with the allowed method and headers, or 403 naming the origin or
// the method that is not allowed.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, method string) error {
	origin := r.Header.Get("Origin")
	allow := s.corsOrigin(origin)
	if allow == "" {
		return &apiError{Status: http.StatusForbidden, Type: "permission_error", Code: "cors_origin_not_allowed",
			Message: fmt.Sprintf("cross-origin requests from %q are not allowed; start sluice serve with --cors-origin naming it (or '*')", origin)}
	}
	want := r.Header.Get("Access-Control-Request-Method")
	if want != method && !(method == http.MethodGet && want == http.MethodHead) {
		return &apiError{Status: http.StatusForbidden, Type: "permission_error", Code: "cors_method_not_allowed",
			Message: fmt.Sprintf("method %s is not allowed on %s; use %s", want, r.URL.Path, method)}
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", allow)
	h.Set("Access-Control-Allow-Methods", method+", OPTIONS")
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
