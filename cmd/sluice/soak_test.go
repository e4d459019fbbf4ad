//go:build soak

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/engine"
)

// The soak test runs only with the soak build tag (`make soak`), never in
// `make test`: it serves the random-weight dummy model in-process on
// 127.0.0.1, sends a bounded mix of traffic (completions, chat, streams,
// n > 1, clients that hang up mid-stream, bad requests) and fails if the
// process's resident memory grows after a warm-up.
//
// Sizes come from the environment: SLUICE_SOAK_ROUNDS (rounds of traffic,
// default 5000, about four minutes on two loaded cores; the first fifth is
// the warm-up, long enough to touch every page of the KV pool), SLUICE_SOAK_TIME
// (a hard limit on the traffic, default 8m: past it the test stops early if
// at least as many rounds as the warm-up followed it, and fails otherwise)
// and SLUICE_SOAK_RSS_TOLERANCE (allowed RSS growth from the end of the
// warm-up to the end, default 6MiB; a flat run stays within about 1 MiB).

// soakMix is one round of traffic: every request is sent concurrently and
// must get its expected status.
var soakMix = []soakRequest{
	{"completion", "/v1/completions", `{"prompt":"Once upon a time","max_tokens":16,"temperature":0.8,"seed":ROUND}`, 200, false},
	{"completion greedy", "/v1/completions", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0,"ignore_eos":true}`, 200, false},
	{"chat", "/v1/chat/completions", `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello number ROUND"}],"max_tokens":12}`, 200, false},
	{"completion stream", "/v1/completions", `{"prompt":"A long time ago ROUND","max_tokens":16,"stream":true,"stream_options":{"include_usage":true}}`, 200, false},
	{"chat stream", "/v1/chat/completions", `{"messages":[{"role":"user","content":"Tell me ROUND"}],"max_tokens":16,"stream":true}`, 200, false},
	{"n=3", "/v1/completions", `{"prompt":"The cat ROUND","max_tokens":8,"n":3,"temperature":1,"logprobs":2}`, 200, false},
	{"n=2 chat stream", "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi ROUND"}],"max_tokens":8,"n":2,"stream":true}`, 200, false},
	{"hang up mid-stream", "/v1/completions", `{"prompt":"Abandoned ROUND","max_tokens":400,"ignore_eos":true,"stream":true}`, 200, true},
	{"hang up mid-stream chat", "/v1/chat/completions", `{"messages":[{"role":"user","content":"Gone ROUND"}],"max_tokens":400,"ignore_eos":true,"stream":true,"n":2}`, 200, true},
	{"bad json", "/v1/completions", `{"prompt":`, 400, false},
	{"bad param", "/v1/completions", `{"prompt":"x","temperature":-1}`, 400, false},
	{"bad token id", "/v1/completions", `{"prompt":[1,99999]}`, 400, false},
	{"unknown model", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, 404, false},
	{"no role", "/v1/chat/completions", `{"messages":[{"content":"x"}]}`, 400, false},
	{"prompt over context", "/v1/completions", `{"prompt":[` + strings.Repeat("5,", 4096) + `5],"max_tokens":1}`, 400, false},
}

type soakRequest struct {
	name, path, body string
	status           int
	hangUp           bool // read the first event, then close the connection
}

func TestSoak(t *testing.T) {
	rounds := soakEnvInt(t, "SLUICE_SOAK_ROUNDS", 5000)
	limit := soakEnvDuration(t, "SLUICE_SOAK_TIME", 8*time.Minute)
	tolerance := soakEnvBytes(t, "SLUICE_SOAK_RSS_TOLERANCE", 6<<20)
	warmup := max(rounds/5, 1)
	if rounds < 2*warmup {
		t.Fatalf("SLUICE_SOAK_ROUNDS=%d: need at least %d rounds after a %d-round warm-up", rounds, warmup, warmup)
	}

	t.Setenv("SLUICE_HOME", t.TempDir())
	sv := startServe(t, "--host", "127.0.0.1", "--port", "0", "--threads", "1", "--kv-memory", "8MiB",
		"--ctx", "1024", "--offline", "--log-level", "warn")
	if !strings.HasPrefix(sv.base, "http://127.0.0.1:") {
		t.Fatalf("serving on %s, want loopback", sv.base)
	}
	client := &http.Client{Timeout: time.Minute}

	deadline := time.Now().Add(limit)
	var samples []rssSample
	var warm rssSample
	start := time.Now()
	done := 0
	for r := 1; r <= rounds; r++ {
		if time.Now().After(deadline) {
			if r-1 < 2*warmup {
				t.Fatalf("SLUICE_SOAK_TIME=%v ran out after %d of %d rounds, before %d rounds followed the warm-up; samples:\n%s",
					limit, r-1, rounds, warmup, formatSamples(samples))
			}
			t.Logf("SLUICE_SOAK_TIME=%v ran out: stopping after %d of %d rounds", limit, r-1, rounds)
			break
		}
		soakRound(t, client, sv.base, r)
		done = r
		if r == warmup || r%max(rounds/10, 1) == 0 {
			s := takeSample(t, client, sv.base, r)
			samples = append(samples, s)
			if r == warmup {
				warm = s
			}
		}
	}
	if samples[len(samples)-1].round != done {
		samples = append(samples, takeSample(t, client, sv.base, done))
	}
	end := samples[len(samples)-1]
	t.Logf("%d rounds of %d requests in %v; RSS after the %d-round warm-up and later:\n%s",
		done, len(soakMix), time.Since(start).Round(time.Second), warmup, formatSamples(samples))
	if grew := end.rss - warm.rss; grew > tolerance {
		t.Errorf("RSS grew by %s after the warm-up (tolerance %s): %s -> %s",
			mib(grew), mib(tolerance), mib(warm.rss), mib(end.rss))
	}
	if end.goroutines > warm.goroutines+10 {
		t.Errorf("goroutines grew from %d after the warm-up to %d at the end", warm.goroutines, end.goroutines)
	}
	sv.stop(t)
}

// soakRound sends every request of soakMix at once and checks the answers.
func soakRound(t *testing.T, client *http.Client, base string, round int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(soakMix))
	for _, q := range soakMix {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.send(client, base, round); err != nil {
				errs <- fmt.Errorf("round %d, %s: %w", round, q.name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// send makes the request and checks its status and body.
func (q soakRequest) send(client *http.Client, base string, round int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := strings.ReplaceAll(q.body, "ROUND", strconv.Itoa(round))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+q.path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != q.status {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("status %d, want %d: %s", resp.StatusCode, q.status, b)
	}
	if q.hangUp {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "data: {") {
			return fmt.Errorf("first stream line %q: %v", line, err)
		}
		cancel() // the client goes away mid-stream
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return checkSoakBody(q, b)
}

// checkSoakBody checks the shape of a complete answer.
func checkSoakBody(q soakRequest, b []byte) error {
	s := string(b)
	switch {
	case q.status != 200:
		if !strings.Contains(s, `"error":{`) || !strings.Contains(s, `"message":"`) {
			return fmt.Errorf("not an OpenAI error body: %s", s)
		}
	case strings.Contains(q.body, `"stream":true`):
		if !strings.HasSuffix(strings.TrimSpace(s), "data: [DONE]") {
			return fmt.Errorf("stream does not end with [DONE]: %s", s)
		}
	case !strings.Contains(s, `"choices":[`) || !strings.Contains(s, `"usage":{`):
		return fmt.Errorf("no choices or usage: %s", s)
	}
	return nil
}

// rssSample is the process's resident memory and goroutine count after a
// round, taken once the engine is idle and the Go heap has been returned to
// the system, so what remains is live memory (Go and C).
type rssSample struct {
	round, goroutines int
	rss, heap         int64
}

func takeSample(t *testing.T, client *http.Client, base string, round int) rssSample {
	t.Helper()
	waitIdle(t, client, base)
	client.CloseIdleConnections()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rssSample{round: round, goroutines: runtime.NumGoroutine(), rss: readRSS(t), heap: int64(ms.HeapAlloc)}
}

// waitIdle waits (at most 30s) until the engine runs and queues nothing and
// holds no KV blocks: requests whose clients hung up must have been
// cancelled and freed.
func waitIdle(t *testing.T, client *http.Client, base string) {
	t.Helper()
	var last string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		last = idleMetrics(string(b))
		if last == "" {
			return
		}
	}
	t.Fatalf("the engine did not go idle after a round: %s", last)
}

var metricLine = regexp.MustCompile(`(?m)^(vllm:num_requests_running|vllm:num_requests_waiting|vllm:kv_cache_usage_perc)\{[^}]*\} (\S+)$`)

// idleMetrics returns the busy gauges in a /metrics page, or "" when the
// engine is idle.
func idleMetrics(page string) string {
	var busy []string
	found := 0
	for _, m := range metricLine.FindAllStringSubmatch(page, -1) {
		found++
		if v, err := strconv.ParseFloat(m[2], 64); err != nil || v != 0 {
			busy = append(busy, m[1]+"="+m[2])
		}
	}
	if found != 3 {
		return fmt.Sprintf("%d of the 3 gauges in /metrics", found)
	}
	return strings.Join(busy, " ")
}

// readRSS returns VmRSS from /proc/self/status in bytes.
func readRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("the soak test needs /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func formatSamples(samples []rssSample) string {
	var sb strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&sb, "  round %4d: RSS %s, Go heap %s, %d goroutines\n", s.round, mib(s.rss), mib(s.heap), s.goroutines)
	}
	return sb.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func soakEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("$%s=%q: want a positive integer", name, v)
	}
	return n
}

func soakEnvDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("$%s=%q: want a positive duration such as 3m", name, v)
	}
	return d
}

func soakEnvBytes(t *testing.T, name string, def int64) int64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := engine.ParseBytes(v)
	if err != nil {
		t.Fatalf("$%s=%q: %v", name, v, err)
	}
	return n
}
