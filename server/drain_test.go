package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
)

// fetch is do for goroutines: it reports failures as an error.
func fetch(method, url, body string) (response, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}, err
}

func waitRunning(t *testing.T, m *fakeModel, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.running.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests running, want %d", m.running.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDrainDeadlineEndings: when the drain deadline passes with slow
// generations running, each client gets a proper ending before the
// servers close: a stream its final chunk (finish_reason "abort") and
// [DONE], a non-streaming request a 503 error body, a gRPC call an
// Unavailable status; Drain reports how many were cut.
func TestDrainDeadlineEndings(t *testing.T) {
	m := newChatFake()
	m.block.Store(true) // each generation waits after every token
	s, ts := newTestServer(t, Options{}, m)
	c := pb.NewSluiceClient(newGRPC(t, s))

	type result struct {
		r   response
		err error
	}
	streamc, plainc, chatc := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	go func() {
		r, err := fetch("POST", ts.URL+"/v1/completions", `{"prompt":"x","stream":true}`)
		streamc <- result{r, err}
	}()
	go func() {
		r, err := fetch("POST", ts.URL+"/v1/completions", `{"prompt":"x"}`)
		plainc <- result{r, err}
	}()
	go func() {
		r, err := fetch("POST", ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
		chatc <- result{r, err}
	}()
	grpcc := make(chan error, 1)
	go func() {
		st, err := c.Generate(context.Background(), &pb.GenerateRequest{Prompt: &pb.GenerateRequest_Text{Text: "x"}})
		for err == nil {
			_, err = st.Recv()
		}
		grpcc <- err
	}()
	waitRunning(t, m, 4)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Drain(ctx)
	var de *DrainError
	if !errors.As(err, &de) || de.Cut != 4 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain: %v, want a DrainError with 4 requests cut", err)
	}

	r := <-streamc
	if r.err != nil {
		t.Fatal(r.err)
	}
	evs := sseEvents(t, r.r) // ends with [DONE]
	if last := evs[len(evs)-1]; !strings.Contains(last, `"finish_reason":"abort"`) {
		t.Errorf("the stream's last chunk %s has no finish_reason abort", last)
	}
	for _, ch := range []chan result{plainc, chatc} {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		e := checkError(t, r.r, http.StatusServiceUnavailable, "")
		if e["code"] != "shutdown" || r.r.header.Get("Retry-After") == "" {
			t.Errorf("cut request: %s (Retry-After %q)", r.r.body, r.r.header.Get("Retry-After"))
		}
	}
	if err := <-grpcc; status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC Generate ended with %v, want Unavailable", err)
	}
}

// A drain whose deadline passes with nothing running is not an error.
func TestDrainDeadlineIdle(t *testing.T) {
	s, _ := newTestServer(t, Options{}, newFake("tiny"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("Drain of an idle server: %v", err)
	}
}
