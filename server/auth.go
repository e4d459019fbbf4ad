package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// This file holds API key checks (Options.APIKeys). Keys are kept only as
// SHA-256 digests; a presented token is hashed and compared with every
// digest in constant time, so neither the comparison's duration nor the
// logs reveal a key. The digest's first bytes also name the key's holder
// as a fairness client (never the key itself).

// keyDigests hashes the configured keys; nil when auth is off.
func keyDigests(keys []string) [][sha256.Size]byte {
	var out [][sha256.Size]byte
	for _, k := range keys {
		if k != "" {
			out = append(out, sha256.Sum256([]byte(k)))
		}
	}
	return out
}

// authRequired reports whether path needs a key: every API route, but not
// the probes (/health, /ready, /version) nor /metrics unless
// Options.MetricsAuth.
func (s *Server) authRequired(path string) bool {
	if len(s.keys) == 0 {
		return false
	}
	switch path {
	case "/health", "/ready", "/version":
		return false
	case "/metrics":
		return s.opts.MetricsAuth
	}
	return true
}

// checkToken returns the client id of token ("key:" and 16 hex digits of
// its digest) when it is one of the keys, "" otherwise. Every digest is
// compared, whatever matched, so the time does not depend on which key.
func (s *Server) checkToken(token string) string {
	d := sha256.Sum256([]byte(token))
	ok := 0
	for i := range s.keys {
		ok |= subtle.ConstantTimeCompare(d[:], s.keys[i][:])
	}
	if ok == 0 || token == "" {
		return ""
	}
	return "key:" + hex.EncodeToString(d[:8])
}

// bearer extracts the token of an "Authorization: Bearer TOKEN" value.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func errUnauthorized(given bool) *apiError {
	msg := "this server requires an API key: send the header \"Authorization: Bearer KEY\" (OpenAI SDKs: api_key=KEY)"
	if given {
		msg = "the API key sent in the Authorization header is not valid"
	}
	return &apiError{Status: http.StatusUnauthorized, Type: "authentication_error", Code: "invalid_api_key", Message: msg}
}

type keyCtxKey struct{}

// withKeyClient records the client id of the key that authorized a
// request in its context.
func withKeyClient(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, keyCtxKey{}, id)
}

// keyClient is the client id withKeyClient recorded, "" without auth.
func keyClient(ctx context.Context) string {
	id, _ := ctx.Value(keyCtxKey{}).(string)
	return id
}

// authHTTP checks r's key when its path needs one. It returns r with the
// key's client id in its context, or an error for a 401.
func (s *Server) authHTTP(r *http.Request) (*http.Request, error) {
	if !s.authRequired(r.URL.Path) {
		return r, nil
	}
	h := r.Header.Get("Authorization")
	id := s.checkToken(bearer(h))
	if id == "" {
		return r, errUnauthorized(h != "")
	}
	return r.WithContext(withKeyClient(r.Context(), id)), nil
}

// grpcAuth checks the "authorization: Bearer KEY" metadata of a call; the
// health service and reflection need no key.
func (s *Server) grpcAuth(ctx context.Context, method string) (context.Context, error) {
	if len(s.keys) == 0 || strings.HasPrefix(method, "/grpc.health.v1.") || strings.HasPrefix(method, "/grpc.reflection.") {
		return ctx, nil
	}
	var h string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			h = v[0]
		}
	}
	id := s.checkToken(bearer(h))
	if id == "" {
		return ctx, status.Error(codes.Unauthenticated, errUnauthorized(h != "").Message)
	}
	return withKeyClient(ctx, id), nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := s.grpcAuth(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.grpcAuth(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &ctxStream{ss, ctx})
}

// ctxStream is a ServerStream with another context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }
