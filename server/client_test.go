package server

import (
	"net/http"
	"testing"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
)

// TestClientKey: a request's fairness key is its "user" when given, else
// its remote address; every choice of an n > 1 request has the same key.
func TestClientKey(t *testing.T) {
	m := newChatFake()
	_, ts := newTestServer(t, Options{}, m)
	for _, body := range []string{
		`{"prompt":"x","max_tokens":1,"n":2,"user":"alice"}`,
		`{"prompt":"x","max_tokens":1}`,
	} {
		if r := post(t, ts.URL+"/v1/completions", body); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	if r := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":1,"user":"bob"}`); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var got []string
	for _, r := range m.requests() {
		got = append(got, r.Client)
	}
	want := []string{"user:alice", "user:alice", "addr:127.0.0.1", "user:bob"}
	if len(got) != len(want) {
		t.Fatalf("clients %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("clients %q, want %q", got, want)
			break
		}
	}
	if k := httpClientKey("", "", "[::1]:5000"); k != "addr:::1" {
		t.Errorf("IPv6 key %q", k)
	}
}

// TestGRPCClientKey: a gRPC call's fairness key is its peer's address.
func TestGRPCClientKey(t *testing.T) {
	m := newChatFake()
	s := New(Options{})
	if err := s.AddModel("", m); err != nil {
		t.Fatal(err)
	}
	c := pb.NewSluiceClient(newGRPC(t, s))
	if _, err := generateAll(t, c, &pb.GenerateRequest{Prompt: &pb.GenerateRequest_Text{Text: "hi"}, MaxTokens: 1}); err != nil {
		t.Fatal(err)
	}
	if reqs := m.requests(); len(reqs) != 1 || reqs[0].Client != "addr:127.0.0.1" {
		t.Errorf("engine requests %+v", reqs)
	}
}
