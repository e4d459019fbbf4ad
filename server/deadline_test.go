package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
)

// TestRequestDeadline: a request past its deadline (its "timeout" field or
// the server's RequestTimeout, the shorter) is aborted in the engine; a
// stream ends with finish_reason "timeout" and [DONE], a non-streaming
// request gets a 504 error body, and the metrics count both.
func TestRequestDeadline(t *testing.T) {
	m := newFake("tiny")
	m.block.Store(true) // each stream waits after its first token until cancelled
	_, ts := newTestServer(t, Options{RequestTimeout: time.Hour}, m)

	r := post(t, ts.URL+"/v1/completions", `{"prompt":"x","stream":true,"timeout":0.05}`)
	events := sseEvents(t, r) // checks the final [DONE]
	if len(events) < 2 || !strings.Contains(events[len(events)-1], `"finish_reason":"timeout"`) {
		t.Errorf("stream cut by its timeout ends with %q", events)
	}
	select {
	case <-m.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the engine request was not aborted at the deadline")
	}

	r = post(t, ts.URL+"/v1/completions", `{"prompt":"x","timeout":0.05}`)
	e := checkError(t, r, http.StatusGatewayTimeout, "")
	if e["type"] != "timeout_error" || e["code"] != "timeout" {
		t.Errorf("non-streaming timeout: %v", e)
	}

	for _, bad := range []string{`0`, `-1`, `"soon"`, `1e12`} {
		checkError(t, post(t, ts.URL+"/v1/completions", `{"prompt":"x","timeout":`+bad+`}`), http.StatusBadRequest, "timeout")
	}
	met := string(do(t, "GET", ts.URL+"/metrics", "").body)
	if !strings.Contains(met, `sluice_request_timeouts_total{model_name="tiny"} 2`) {
		t.Errorf("timeouts not counted:\n%s", grepLines(met, "timeout"))
	}

	// The server's limit applies when the request sets none, and wins
	// over a longer one.
	m2 := newFake("tiny")
	m2.block.Store(true)
	_, ts2 := newTestServer(t, Options{RequestTimeout: 50 * time.Millisecond}, m2)
	for _, body := range []string{`{"prompt":"x"}`, `{"prompt":"x","timeout":3600}`} {
		checkError(t, post(t, ts2.URL+"/v1/completions", body), http.StatusGatewayTimeout, "")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRequestDeadlineGRPC: the server's RequestTimeout also bounds gRPC
// Generate calls, whose last message says finish_reason "timeout"; a
// context deadline reaching the error mapping is a 504, not a 500.
func TestRequestDeadlineGRPC(t *testing.T) {
	m := newChatFake()
	m.block.Store(true)
	s := New(Options{RequestTimeout: 50 * time.Millisecond})
	if err := s.AddModel("", m); err != nil {
		t.Fatal(err)
	}
	c := pb.NewSluiceClient(newGRPC(t, s))
	out, err := generateAll(t, c, &pb.GenerateRequest{Prompt: &pb.GenerateRequest_Text{Text: "hi"}, MaxTokens: 20})
	if err != nil || len(out) == 0 || !out[len(out)-1].Done || out[len(out)-1].FinishReason != "timeout" {
		t.Errorf("gRPC call past the deadline: %v, %d messages, last %v", err, len(out), out[len(out)-1:])
	}
	if ae := toAPIError(fmt.Errorf("submit: %w", context.DeadlineExceeded), 1); ae.Status != http.StatusGatewayTimeout || ae.Code != "timeout" {
		t.Errorf("context.DeadlineExceeded maps to %d %s", ae.Status, ae.Code)
	}
}
