package server

import (
	"net/http"
	"strings"
	"testing"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestPriority: "priority" runs lower values first, as in vLLM (the
// engine ranks higher first, so the server flips the sign), and only when
// the server allows clients to set it; otherwise a non-zero priority is a
// 400 naming the flag, never silently ignored.
func TestPriority(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{AllowClientPriority: true}, m)
	for _, body := range []string{`{"prompt":"x","max_tokens":1,"priority":-2}`, `{"prompt":"x","max_tokens":1,"priority":5}`, `{"prompt":"x","max_tokens":1}`} {
		if r := post(t, ts.URL+"/v1/completions", body); r.status != 200 {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
	}
	reqs := m.requests()
	if len(reqs) != 3 || reqs[0].Priority != 2 || reqs[1].Priority != -5 || reqs[2].Priority != 0 {
		t.Fatalf("engine priorities %d %d %d, want 2 -5 0 (vLLM's -2 runs before 0 before 5)", reqs[0].Priority, reqs[1].Priority, reqs[2].Priority)
	}
	if !(reqs[0].Priority > reqs[2].Priority && reqs[2].Priority > reqs[1].Priority) {
		t.Error("the engine would not run the lowest API priority first")
	}
	checkError(t, post(t, ts.URL+"/v1/completions", `{"prompt":"x","priority":2000000}`), http.StatusBadRequest, "priority")

	off := newFake("tiny")
	s, ts2 := newTestServer(t, Options{}, off)
	e := checkError(t, post(t, ts2.URL+"/v1/completions", `{"prompt":"x","priority":1}`), http.StatusBadRequest, "priority")
	if msg, _ := e["message"].(string); msg == "" || !strings.Contains(msg, "--allow-client-priority") {
		t.Errorf("message %q does not name the flag", msg)
	}
	if r := post(t, ts2.URL+"/v1/completions", `{"prompt":"x","max_tokens":1,"priority":0}`); r.status != 200 {
		t.Errorf("priority 0 without the flag: %d %s", r.status, r.body)
	}
	c := pb.NewSluiceClient(newGRPC(t, s))
	_, err := generateAll(t, c, &pb.GenerateRequest{Prompt: &pb.GenerateRequest_Text{Text: "hi"}, MaxTokens: 1, Priority: 3})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC priority without the flag: %v", err)
	}
}
