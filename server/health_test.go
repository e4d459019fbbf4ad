package server

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/engine"
)

type probeBody struct {
	Status string                 `json:"status"`
	Ready  bool                   `json:"ready"`
	Models map[string]modelHealth `json:"models"`
}

func probeOf(t *testing.T, url string) (int, probeBody) {
	t.Helper()
	r := do(t, "GET", url, "")
	var b probeBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("%s: %v: %s", url, err, r.body)
	}
	return r.status, b
}

// TestProbesReport: both probes report each model's queue, recent TTFT
// and step time; no model loaded yet is live but not ready.
func TestProbesReport(t *testing.T) {
	m := newFake("tiny")
	m.mu.Lock()
	m.stats.Waiting = 3
	m.stats.Steps = 10
	m.stats.StepTimeHist[3] = 10 // ≤ 5ms
	m.mu.Unlock()
	_, ts := newTestServer(t, Options{}, m)
	post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":2}`) // the fake's TTFT is 10ms
	for _, p := range []string{"/health", "/ready"} {
		code, b := probeOf(t, ts.URL+p)
		h := b.Models["tiny"]
		if code != 200 || h.Status != "ok" || h.Waiting != 3 || h.TTFTP50 != 0.01 || h.TTFTP99 != 0.01 || h.StepTimeP99 != 0.005 {
			t.Errorf("%s: %d %+v", p, code, b)
		}
	}
	_, empty := newTestServer(t, Options{})
	if code, _ := probeOf(t, empty.URL+"/health"); code != 200 {
		t.Errorf("/health with no model yet: %d", code)
	}
	if code, b := probeOf(t, empty.URL+"/ready"); code != 503 || b.Ready {
		t.Errorf("/ready with no model yet: %d %+v", code, b)
	}
}

// TestReadyThresholds: /ready fails while the queue or the recent p99
// TTFT is over its limit; /health stays 200.
func TestReadyThresholds(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{ReadyMaxQueue: 2, ReadyMaxTTFT: 5 * time.Millisecond}, m)
	if code, _ := probeOf(t, ts.URL+"/ready"); code != 200 {
		t.Fatalf("/ready idle: %d", code)
	}
	m.mu.Lock()
	m.stats.Waiting = 3
	m.mu.Unlock()
	if code, b := probeOf(t, ts.URL+"/ready"); code != 503 || b.Models["tiny"].Status != "overloaded" {
		t.Errorf("/ready with 3 waiting, limit 2: %d %+v", code, b)
	}
	if code, _ := probeOf(t, ts.URL+"/health"); code != 200 {
		t.Errorf("/health while overloaded: %d", code)
	}
	m.mu.Lock()
	m.stats.Waiting = 0
	m.mu.Unlock()
	post(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":2}`) // TTFT 10ms > 5ms
	if code, b := probeOf(t, ts.URL+"/ready"); code != 503 || b.Models["tiny"].Status != "overloaded" {
		t.Errorf("/ready with p99 TTFT 10ms, limit 5ms: %d %+v", code, b)
	}
}

// TestStallDetection: a model whose step loop has work but completes no
// step (a fake backend that blocks) fails /health after StallTimeout;
// a loop that steps again is live again.
func TestStallDetection(t *testing.T) {
	m := newFake("tiny")
	m.mu.Lock()
	m.stats.Waiting, m.stats.Steps = 1, 7 // work, and the step count never moves
	m.mu.Unlock()
	_, ts := newTestServer(t, Options{StallTimeout: 30 * time.Millisecond}, m)
	if code, _ := probeOf(t, ts.URL+"/health"); code != 200 {
		t.Fatalf("/health at first sight of the work: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, b := probeOf(t, ts.URL+"/health")
		if code == http.StatusServiceUnavailable && b.Models["tiny"].Status == "stalled" && b.Status == "unhealthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stall detected: %d %+v", code, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, _ := probeOf(t, ts.URL+"/ready"); code != 503 {
		t.Errorf("/ready while stalled: %d", code)
	}
	m.mu.Lock()
	m.stats.Steps++
	m.mu.Unlock()
	if code, b := probeOf(t, ts.URL+"/health"); code != 200 {
		t.Errorf("/health after a step: %d %+v", code, b)
	}
}

// TestStallNeedsWork: an idle loop never stalls, whatever its steps.
func TestStallNeedsWork(t *testing.T) {
	w := newWatch(time.Unix(0, 0))
	st := engine.Stats{Healthy: true, Steps: 5}
	for i := 0; i < 10; i++ {
		if h := w.observe(st, time.Unix(int64(i), 0), time.Second/2); !h.live {
			t.Fatalf("idle loop reported %+v", h)
		}
	}
	st.Running = 1
	w.observe(st, time.Unix(10, 0), 2*time.Second)
	if h := w.observe(st, time.Unix(11, 0), 2*time.Second); !h.live {
		t.Errorf("1s of work without a step, stall timeout 2s: %+v", h)
	}
	if h := w.observe(st, time.Unix(13, 0), 2*time.Second); h.live || h.Status != "stalled" {
		t.Errorf("3s of work without a step, stall timeout 2s: %+v", h)
	}
}
