package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
)

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// accessLines parses the JSON log and returns its access-log records.
func accessLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

func postWithID(t *testing.T, url, id, body string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return response{resp.StatusCode, resp.Header, b.Bytes()}
}

// TestRequestIDAndAccessLog: every request gets an id (the client's
// X-Request-Id, else a new one), echoed in X-Request-Id and used as the
// response's id, and one JSON access-log line with the model, status,
// tokens, timings and finish reason; usage carries the same timings.
func TestRequestIDAndAccessLog(t *testing.T) {
	var logb lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logb, nil))
	_, ts := newTestServer(t, Options{Logger: log}, newFake("tiny"))

	r := postWithID(t, ts.URL+"/v1/completions", "trace-42", `{"prompt":"hey","max_tokens":3}`)
	resp := decode[completionResponse](t, r)
	if r.header.Get("X-Request-Id") != "trace-42" || resp.ID != "trace-42" {
		t.Errorf("given id: header %q, response id %q", r.header.Get("X-Request-Id"), resp.ID)
	}
	if resp.Usage.TTFT != 0.01 || resp.Usage.GenTime != 0.05 {
		t.Errorf("usage timings %+v", resp.Usage)
	}
	r = postWithID(t, ts.URL+"/v1/completions", "", `{"prompt":"hey","max_tokens":2,"stream":true}`)
	gen := r.header.Get("X-Request-Id")
	if !strings.HasPrefix(gen, "cmpl-") || !strings.Contains(string(r.body), `"id":"`+gen+`"`) {
		t.Errorf("generated id %q not the stream's id: %s", gen, r.body)
	}
	checkError(t, postWithID(t, ts.URL+"/v1/completions", strings.Repeat("x", maxRequestIDLen+1), `{"prompt":"x"}`), 400, "X-Request-Id")

	lines := accessLines(t, logb.String())
	if len(lines) != 3 {
		t.Fatalf("%d access-log lines, want 3:\n%s", len(lines), logb.String())
	}
	first := lines[0]
	for k, want := range map[string]any{"request_id": "trace-42", "model": "tiny", "status": 200.0, "path": "/v1/completions",
		"prompt_tokens": 4.0, "completion_tokens": 3.0, "cached_tokens": 0.0, "ttft_s": 0.01, "finish_reason": "length"} {
		if first[k] != want {
			t.Errorf("access log %s = %v, want %v (line %v)", k, first[k], want, first)
		}
	}
	for _, k := range []string{"queue_s", "total_s", "client", "method"} {
		if _, ok := first[k]; !ok {
			t.Errorf("access log lacks %s: %v", k, first)
		}
	}
	if lines[1]["request_id"] != gen || lines[2]["status"] != 400.0 {
		t.Errorf("access log lines %v", lines[1:])
	}
}

// TestGRPCAccessLog: a gRPC Generate call gets an access-log line too,
// with its request_id.
func TestGRPCAccessLog(t *testing.T) {
	var logb lockedBuffer
	s := New(Options{Logger: slog.New(slog.NewJSONHandler(&logb, nil))})
	if err := s.AddModel("", newChatFake()); err != nil {
		t.Fatal(err)
	}
	c := pb.NewSluiceClient(newGRPC(t, s))
	if _, err := generateAll(t, c, &pb.GenerateRequest{Prompt: &pb.GenerateRequest_Text{Text: "hi"}, MaxTokens: 2, RequestId: "g-1"}); err != nil {
		t.Fatal(err)
	}
	lines := accessLines(t, logb.String())
	if len(lines) != 1 || lines[0]["request_id"] != "g-1" || lines[0]["status"] != "OK" || lines[0]["completion_tokens"] != 2.0 {
		t.Errorf("gRPC access log %v", lines)
	}
}
