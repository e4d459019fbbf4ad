package server

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/engine"
)

// This file holds the probes. /health is liveness: 200 while every model
// can make progress, draining included; 503 when an engine failed or its
// step loop stalled (Options.StallTimeout). /ready is readiness: 503
// also while draining, before any model is loaded, and while a model is
// overloaded (Options.ReadyMaxTTFT, ReadyMaxQueue). Both report each
// model's recent latencies and queue.

// watchWindow is how far back "recent" latencies reach.
const watchWindow = time.Minute

// maxTTFTSamples bounds the recent TTFT samples kept per model.
const maxTTFTSamples = 512

// watch follows one model for the probes: recent TTFTs, the step time
// histogram at the start of the window, and the step loop's progress.
// It is fed by finished requests and by each probe's Stats snapshot.
type watch struct {
	mu      sync.Mutex
	ttft    []ttftSample // ring of the latest samples, oldest overwritten
	next    int
	base    [engine.NumStepTimeBuckets + 1]uint64 // StepTimeHist at baseAt
	baseAt  time.Time
	steps   uint64    // Stats.Steps when last seen
	moved   time.Time // when steps last changed, or the loop was last idle
	lastObs time.Time // the previous probe
}

type ttftSample struct {
	at time.Time
	d  time.Duration
}

func newWatch(now time.Time) *watch { return &watch{baseAt: now, moved: now, lastObs: now} }

// finished records a request's final event.
func (w *watch) finished(ev engine.Event, now time.Time) {
	if ev.Usage.CompletionTokens == 0 || ev.Timing.FirstTok <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	smp := ttftSample{now, ev.Timing.FirstTok}
	if len(w.ttft) < maxTTFTSamples {
		w.ttft = append(w.ttft, smp)
		return
	}
	w.ttft[w.next] = smp
	w.next = (w.next + 1) % maxTTFTSamples
}

// modelHealth is one model's part of a probe's answer.
type modelHealth struct {
	Status        string  `json:"status"` // ok, draining, unhealthy, stalled, overloaded
	Running       int     `json:"running"`
	Waiting       int     `json:"waiting"`
	TTFTP50       float64 `json:"ttft_p50_seconds"`
	TTFTP99       float64 `json:"ttft_p99_seconds"`
	StepTimeP99   float64 `json:"step_time_p99_seconds"`
	SinceProgress float64 `json:"seconds_since_progress"`
	live          bool
}

// observe takes a probe's Stats snapshot and returns the model's health.
// The loop made progress when its step count moved or it had no work;
// a stall is work with no step for longer than stall, seen by probes no
// further apart than stall (a long gap between probes restarts the
// clock rather than blaming the loop for time nobody watched).
func (w *watch) observe(st engine.Stats, now time.Time, stall time.Duration) modelHealth {
	w.mu.Lock()
	defer w.mu.Unlock()
	busy := st.Running+st.Waiting > 0
	if st.Steps != w.steps || !busy || (stall > 0 && now.Sub(w.lastObs) > stall) {
		w.steps, w.moved = st.Steps, now
	}
	w.lastObs = now
	h := modelHealth{Status: "ok", Running: st.Running, Waiting: st.Waiting, SinceProgress: now.Sub(w.moved).Seconds(), live: true}
	h.TTFTP50, h.TTFTP99 = w.ttftQuantiles(now)
	h.StepTimeP99 = w.stepP99(st, now)
	switch {
	case !st.Healthy:
		h.Status, h.live = "unhealthy", false
	case stall > 0 && busy && now.Sub(w.moved) > stall:
		h.Status, h.live = "stalled", false
	case st.Draining:
		h.Status = "draining"
	}
	return h
}

// ttftQuantiles returns the p50 and p99 of the TTFTs of the last
// watchWindow, in seconds (0 without samples).
func (w *watch) ttftQuantiles(now time.Time) (float64, float64) {
	var ds []time.Duration
	for _, s := range w.ttft {
		if now.Sub(s.at) <= watchWindow {
			ds = append(ds, s.d)
		}
	}
	if len(ds) == 0 {
		return 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 { return ds[min(len(ds)-1, int(p*float64(len(ds))))].Seconds() }
	return q(0.5), q(0.99)
}

// stepP99 is the upper bound of the bucket holding the 99th percentile
// of the steps since the window's start (the window restarts every
// watchWindow); +Inf past the last bound is reported as twice it.
func (w *watch) stepP99(st engine.Stats, now time.Time) float64 {
	var delta [engine.NumStepTimeBuckets + 1]uint64
	var n uint64
	for i := range delta {
		if st.StepTimeHist[i] >= w.base[i] {
			delta[i] = st.StepTimeHist[i] - w.base[i]
		}
		n += delta[i]
	}
	if now.Sub(w.baseAt) > watchWindow {
		w.base, w.baseAt = st.StepTimeHist, now
	}
	if n == 0 {
		return 0
	}
	bounds := engine.StepTimeBuckets()
	want := uint64(float64(n)*0.99 + 0.5)
	var cum uint64
	for i, c := range delta {
		if cum += c; cum >= max(want, 1) {
			if i < len(bounds) {
				return bounds[i].Seconds()
			}
			break
		}
	}
	return 2 * bounds[len(bounds)-1].Seconds()
}

// probe checks every model; live is false when one cannot make
// progress, ready also when the server drains, has no model yet or a
// model is over a readiness threshold.
func (s *Server) probe() (live, ready bool, models map[string]modelHealth) {
	now := time.Now()
	models = map[string]modelHealth{}
	es := s.entries()
	live, ready = true, !s.Draining() && len(es) > 0
	for _, e := range es {
		h := e.watch.observe(e.m.Stats(), now, s.opts.StallTimeout)
		if h.Status == "ok" && s.overloaded(h) {
			h.Status = "overloaded"
		}
		live = live && h.live
		ready = ready && h.Status == "ok"
		models[e.name] = h
	}
	return live, ready, models
}

// overloaded reports whether h is over a readiness threshold.
func (s *Server) overloaded(h modelHealth) bool {
	o := s.opts
	return (o.ReadyMaxQueue > 0 && h.Waiting > o.ReadyMaxQueue) ||
		(o.ReadyMaxTTFT > 0 && h.TTFTP99 > o.ReadyMaxTTFT.Seconds())
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	live, _, models := s.probe()
	code, st := http.StatusOK, "ok"
	switch {
	case !live:
		code, st = http.StatusServiceUnavailable, "unhealthy"
	case s.Draining():
		st = "draining"
	}
	writeJSON(w, code, map[string]any{"status": st, "models": models})
	return nil
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	_, ready, models := s.probe()
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ready, "draining": s.Draining(), "models": models})
	return nil
}
