package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// This file holds the checks every HTTP request passes before its
// handler: the Host header (DNS rebinding), the content type of POST
// bodies (cross-site form posts) and the body read deadline.

func errHostNotAllowed(host string) *apiError {
	return &apiError{Status: http.StatusForbidden, Type: "permission_error", Code: "host_not_allowed",
		Message: fmt.Sprintf("the Host header %q is not allowed; start sluice serve with --allowed-hosts naming it (or '*')", host)}
}

// hostAllowed reports whether the Host header names an allowed host.
func (s *Server) hostAllowed(hostport string) bool {
	if len(s.opts.AllowedHosts) == 0 {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	for _, a := range s.opts.AllowedHosts {
		if a == "*" || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// checkJSONContentType refuses a POST body that does not say it is JSON:
// browsers send text/plain and form types cross-site without asking.
func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		return nil
	}
	got := "no Content-Type"
	if ct != "" {
		got = fmt.Sprintf("Content-Type %q", ct)
	}
	return &apiError{Status: http.StatusUnsupportedMediaType, Type: "invalid_request_error", Param: "Content-Type", Code: "unsupported_media_type",
		Message: fmt.Sprintf("the request body must be JSON sent with the header \"Content-Type: application/json\" (curl: -H 'Content-Type: application/json'); got %s", got)}
}

// readBody checks a POST request's content type and reads its body whole
// (at most MaxBodyBytes → 413) before the ReadTimeout deadline (→ 408),
// then lifts the deadline so that nothing limits the response (a
// connection's reads are otherwise unbounded once the header is in).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) error {
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	if s.opts.ReadTimeout > 0 {
		rc.SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		// The deadline stays: net/http's discarding of the rest of the
		// body then fails at once and the connection closes after the
		// reply.
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
				Message: fmt.Sprintf("the request body is larger than the limit of %d bytes", mbe.Limit)}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return &apiError{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: "request_timeout",
				Message: fmt.Sprintf("the request body was not received within %v", s.opts.ReadTimeout)}
		}
		return badRequest("", "reading the request body: %v", err)
	}
	if s.opts.ReadTimeout > 0 {
		rc.SetReadDeadline(time.Time{})
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	return nil
}

// shownPath is a model file's path as clients see it: the base name
// unless ExposePaths.
func (s *Server) shownPath(p string) string {
	if s.opts.ExposePaths || p == "" {
		return p
	}
	return filepath.Base(p)
}
