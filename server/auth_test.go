package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
)

// doAuth sends a request with the given Authorization header ("" none).
func doAuth(t *testing.T, method, url, auth, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// TestAPIKeyHTTP: with keys, every API route refuses a missing or wrong
// key with 401 and an OpenAI error body; the probes need none; /metrics
// needs one only with MetricsAuth; a valid key's holder is the fairness
// client when the user field is absent.
func TestAPIKeyHTTP(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{APIKeys: []string{"k1", "k2"}}, m)
	routes := []struct{ method, path, body string }{
		{"POST", "/v1/completions", `{"prompt":"x","max_tokens":1}`},
		{"POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`},
		{"GET", "/v1/models", ""},
		{"GET", "/v1/models/tiny", ""},
		{"POST", "/tokenize", `{"prompt":"x"}`},
		{"POST", "/detokenize", `{"tokens":[5]}`},
	}
	for _, rt := range routes {
		for _, auth := range []string{"", "Bearer wrong", "Basic azE=", "Bearer k1x", "k1"} {
			r := doAuth(t, rt.method, ts.URL+rt.path, auth, rt.body)
			e := checkError(t, r, http.StatusUnauthorized, "")
			if e["type"] != "authentication_error" || e["code"] != "invalid_api_key" {
				t.Errorf("%s %s with %q: error %v", rt.method, rt.path, auth, e)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: no WWW-Authenticate header", rt.method, rt.path)
			}
		}
	}
	if r := doAuth(t, "GET", ts.URL+"/v1/models", "Bearer k2", ""); r.status != 200 {
		t.Errorf("/v1/models with a valid key: %d %s", r.status, r.body)
	}
	if r := doAuth(t, "POST", ts.URL+"/v1/completions", "bearer  k1 ", `{"prompt":"x","max_tokens":1}`); r.status != 200 {
		t.Errorf("completion with a valid key: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/health", "/ready", "/version", "/metrics"} {
		if r := doAuth(t, "GET", ts.URL+p, "", ""); r.status != 200 {
			t.Errorf("%s without a key: %d %s", p, r.status, r.body)
		}
	}
	reqs := m.requests()
	if len(reqs) != 1 || !strings.HasPrefix(reqs[0].Client, "key:") || strings.Contains(reqs[0].Client, "k1") {
		t.Errorf("client key of a keyed request: %+v", reqs)
	}
	doAuth(t, "POST", ts.URL+"/v1/completions", "Bearer k2", `{"prompt":"x","max_tokens":1,"user":"u"}`)
	doAuth(t, "POST", ts.URL+"/v1/completions", "Bearer k2", `{"prompt":"x","max_tokens":1}`)
	reqs = m.requests()
	if len(reqs) != 3 || reqs[1].Client != "user:u" || reqs[2].Client == reqs[0].Client || !strings.HasPrefix(reqs[2].Client, "key:") {
		t.Errorf("client keys %q %q %q: want user:u and two different key: ids", reqs[0].Client, reqs[1].Client, reqs[2].Client)
	}

	_, ts2 := newTestServer(t, Options{APIKeys: []string{"k1"}, MetricsAuth: true}, newFake("tiny"))
	checkError(t, doAuth(t, "GET", ts2.URL+"/metrics", "", ""), http.StatusUnauthorized, "")
	if r := doAuth(t, "GET", ts2.URL+"/metrics", "Bearer k1", ""); r.status != 200 {
		t.Errorf("/metrics with a key and MetricsAuth: %d", r.status)
	}
	if r := doAuth(t, "GET", ts2.URL+"/health", "", ""); r.status != 200 {
		t.Errorf("/health with MetricsAuth: %d", r.status)
	}
}

// TestAPIKeyGRPC: gRPC calls need the key in the authorization metadata;
// the health service needs none.
func TestAPIKeyGRPC(t *testing.T) {
	m := newChatFake()
	s := New(Options{APIKeys: []string{"secret"}})
	if err := s.AddModel("", m); err != nil {
		t.Fatal(err)
	}
	cc := newGRPC(t, s)
	c := pb.NewSluiceClient(cc)
	req := &pb.GenerateRequest{Prompt: &pb.GenerateRequest_Text{Text: "hi"}, MaxTokens: 1}
	if _, err := generateAll(t, c, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Generate without a key: %v", err)
	}
	if _, err := c.ListModels(context.Background(), &pb.ListModelsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListModels without a key: %v", err)
	}
	bad := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer nope")
	if _, err := c.ListModels(bad, &pb.ListModelsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListModels with a wrong key: %v", err)
	}
	good := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer secret")
	if _, err := c.ListModels(good, &pb.ListModelsRequest{}); err != nil {
		t.Errorf("ListModels with the key: %v", err)
	}
	st, err := c.Generate(good, req)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("Generate with the key: %v", err)
			}
			break
		}
	}
	if reqs := m.requests(); len(reqs) != 1 || !strings.HasPrefix(reqs[0].Client, "key:") {
		t.Errorf("client of a keyed gRPC call: %+v", reqs)
	}
	h, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without a key: %v %v", h, err)
	}
}
