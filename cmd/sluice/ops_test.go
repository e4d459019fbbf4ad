package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// getWith sends a request with an optional bearer key and returns the
// status and body.
func getWith(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeAuthFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	os.WriteFile(file, []byte("# keys\nfile-key\n\n  other  \n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# none\n\n"), 0o600)
	o, err := parseServe([]string{"-m", "m.gguf", "--api-key", "a", "--api-key", "b", "--api-key-file", file}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.keys, ",") != "a,b,file-key,other" {
		t.Errorf("keys %q", o.keys)
	}
	o, err = parseServe([]string{"-m", "m.gguf"}, envOf(map[string]string{"SLUICE_API_KEY": "env", "SLUICE_METRICS_AUTH": "1"}), io.Discard)
	if err != nil || strings.Join(o.keys, ",") != "env" || !o.metricsAuth {
		t.Errorf("from the environment: %+v %v", o, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--api-key", " "}, "--api-key is empty"},
		{[]string{"--api-key-file", empty}, "holds no key"},
		{[]string{"--api-key-file", filepath.Join(dir, "missing")}, "--api-key-file"},
		{[]string{"--metrics-auth"}, "--metrics-auth needs"},
	} {
		_, err := parseServe(append([]string{"-m", "m"}, tc.args...), envOf(nil), io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

// TestServeAuth runs sluice serve with a key file and a CORS origin: API
// routes answer 401 without the key and 200 with it; the probes and the
// browser's preflight need none.
func TestServeAuth(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	file := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(file, []byte("s3cret\n"), 0o600)
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "8MiB", "--offline", "--api-key-file", file, "--cors-origin", "https://app.example")
	body := `{"prompt":"Hello","max_tokens":2}`
	if code, b := getWith(t, "POST", sv.base+"/v1/completions", "", body); code != 401 || !strings.Contains(b, `"type":"authentication_error"`) {
		t.Errorf("no key: %d %s", code, b)
	}
	if code, b := getWith(t, "POST", sv.base+"/v1/completions", "wrong", body); code != 401 {
		t.Errorf("wrong key: %d %s", code, b)
	}
	if code, b := getWith(t, "POST", sv.base+"/v1/completions", "s3cret", body); code != 200 {
		t.Errorf("with the key: %d %s", code, b)
	}
	for _, p := range []string{"/health", "/ready", "/metrics"} {
		if code, b := getWith(t, "GET", sv.base+p, "", ""); code != 200 {
			t.Errorf("%s without a key: %d %s", p, code, b)
		}
	}
	pre, _ := http.NewRequest(http.MethodOptions, sv.base+"/v1/chat/completions", nil)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if strings.Contains(sv.stderr.String(), "s3cret") {
		t.Errorf("the key is in the log:\n%s", sv.stderr.String())
	}
	sv.stop(t)
}

func TestServeCORSFlag(t *testing.T) {
	o, err := parseServe([]string{"-m", "m", "--cors-origin", "https://a.example", "--cors-origin", "http://b.example:3000"}, envOf(nil), io.Discard)
	if err != nil || strings.Join(o.origins(), " ") != "https://a.example http://b.example:3000" {
		t.Errorf("origins %q %v", o.origins(), err)
	}
	o, err = parseServe([]string{"-m", "m"}, envOf(map[string]string{"SLUICE_CORS_ORIGIN": "*, https://c.example"}), io.Discard)
	if err != nil || strings.Join(o.origins(), " ") != "* https://c.example" {
		t.Errorf("origins from the environment %q %v", o.origins(), err)
	}
	if _, err := parseServe([]string{"-m", "m", "--cors-origin", "app.example"}, envOf(nil), io.Discard); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--cors-origin") {
		t.Errorf("origin without a scheme: %v", err)
	}
}

// metricValue returns the value of the first sample of name in the
// /metrics text, -1 when absent.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := getWith(t, "GET", base+"/metrics", "", "")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// TestServeRequestTimeout: a long stream past its "timeout" ends with
// finish_reason "timeout" and [DONE]; the engine frees its KV blocks at
// once (running requests and KV usage back to 0) and the timeout is
// counted; --request-timeout applies to requests that set none.
func TestServeRequestTimeout(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "64MiB", "--offline", "--request-timeout", "100ms")
	body := `{"prompt":"Hello","max_tokens":2000,"ignore_eos":true,"stream":true,"timeout":0.05}`
	code, out := getWith(t, "POST", sv.base+"/v1/completions", "", body)
	events := strings.Split(strings.TrimSuffix(out, "\n\n"), "\n\n")
	if code != 200 || len(events) < 2 || events[len(events)-1] != "data: [DONE]" || !strings.Contains(events[len(events)-2], `"finish_reason":"timeout"`) {
		t.Fatalf("stream past its timeout: %d, ends with %q", code, events[max(0, len(events)-2):])
	}
	code, out = getWith(t, "POST", sv.base+"/v1/completions", "", `{"prompt":"Hello","max_tokens":2000,"ignore_eos":true}`)
	if code != http.StatusGatewayTimeout || !strings.Contains(out, `"type":"timeout_error"`) {
		t.Errorf("non-streaming request past --request-timeout: %d %s", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, sv.base, "vllm:num_requests_running") != 0 || metricValue(t, sv.base, "vllm:kv_cache_usage_perc") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("KV blocks not freed: running %v, usage %v", metricValue(t, sv.base, "vllm:num_requests_running"),
				metricValue(t, sv.base, "vllm:kv_cache_usage_perc"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := metricValue(t, sv.base, "sluice_request_timeouts_total"); n != 2 {
		t.Errorf("sluice_request_timeouts_total %v, want 2", n)
	}
	sv.stop(t)
}

func TestServeProbeFlags(t *testing.T) {
	o, err := parseServe([]string{"-m", "m"}, envOf(map[string]string{"SLUICE_STALL_TIMEOUT": "1m", "SLUICE_READY_MAX_TTFT": "2s", "SLUICE_READY_MAX_QUEUE": "50"}), io.Discard)
	if err != nil || o.stallTimeout != time.Minute || o.readyMaxTTFT != 2*time.Second || o.readyMaxQueue != 50 {
		t.Errorf("from the environment: %+v %v", o, err)
	}
	if o, _ := parseServe([]string{"-m", "m"}, envOf(nil), io.Discard); o.stallTimeout != defaultStallTimeout || o.readyMaxTTFT != 0 || o.readyMaxQueue != 0 {
		t.Errorf("defaults %+v", o)
	}
	for _, args := range [][]string{{"--stall-timeout", "-1s"}, {"--ready-max-ttft", "-1s"}, {"--ready-max-queue", "-1"}, {"--request-timeout", "-1s"}} {
		if _, err := parseServe(append([]string{"-m", "m"}, args...), envOf(nil), io.Discard); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// TestServeProbesWhileDraining: during the drain after SIGTERM, /health
// stays 200 (liveness must not kill a pod finishing its requests) and
// /ready is 503; the running stream still finishes.
func TestServeProbesWhileDraining(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "64MiB", "--offline", "--shutdown-timeout", "1m")
	resp, err := http.Post(sv.base+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"Hello","max_tokens":1000,"ignore_eos":true,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q", line)
	}
	if code, b := getWith(t, "GET", sv.base+"/ready", "", ""); code != 200 {
		t.Fatalf("/ready before the drain: %d %s", code, b)
	}
	sv.cancel() // as SIGTERM
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := getWith(t, "GET", sv.base+"/ready", "", "")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready while draining: %d %s", code, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, b := getWith(t, "GET", sv.base+"/health", "", ""); code != 200 || !strings.Contains(b, `"status":"draining"`) {
		t.Errorf("/health while draining: %d %s", code, b)
	}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") || !strings.Contains(string(rest), `"finish_reason":"length"`) {
		t.Errorf("the running stream did not finish: %v %q", err, rest[max(0, len(rest)-200):])
	}
	select {
	case err := <-sv.done:
		sv.done <- err
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestServeSecondSignal: a second SIGTERM during the drain ends it at
// once; the requests still running are cut and their clients get an
// answer (a 503 error body, a stream's abort chunk and [DONE]), and the
// command fails naming the second signal.
func TestServeSecondSignal(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "64MiB", "--offline", "--shutdown-timeout", "10m")
	type result struct {
		code int
		body string
	}
	plain := make(chan result, 1)
	go func() {
		resp, err := http.Post(sv.base+"/v1/completions", "application/json",
			strings.NewReader(`{"prompt":"Hi","max_tokens":2000,"ignore_eos":true}`))
		if err != nil {
			plain <- result{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		plain <- result{resp.StatusCode, string(b)}
	}()
	resp, err := http.Post(sv.base+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"Hello","max_tokens":2000,"ignore_eos":true,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q", line)
	}
	waitFor(t, "both requests running", func() bool { return metricValue(t, sv.base, "vllm:num_requests_running") >= 2 })
	sv.cancel() // first SIGTERM: drain
	waitFor(t, "/ready 503 while draining", func() bool {
		code, _ := getWith(t, "GET", sv.base+"/ready", "", "")
		return code == http.StatusServiceUnavailable
	})
	sv.cancel() // second SIGTERM: end the drain now
	rest, err := io.ReadAll(br)
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") || !strings.Contains(string(rest), `"finish_reason":"abort"`) {
		t.Errorf("the stream's ending: %v %q", err, rest[max(0, len(rest)-300):])
	}
	select {
	case r := <-plain:
		if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, `"code":"shutdown"`) {
			t.Errorf("the non-streaming request got %d %s", r.code, r.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the non-streaming request got no answer")
	}
	select {
	case err := <-sv.done:
		sv.done <- err
		if err == nil || !strings.Contains(err.Error(), "2 requests were cut: a second signal ended the drain") {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after the second signal")
	}
}

// TestRunInterrupted: Ctrl-C stops `sluice run`'s generation and the
// command exits with status 130.
func TestRunInterrupted(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	old := runSignals
	t.Cleanup(func() { runSignals = old })
	runSignals = func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // as if Ctrl-C came at once
		return ctx, cancel
	}
	var out, errb bytes.Buffer
	code := runMain([]string{"run", "-m", "dummy:tiny-llama:Q8_0", "--offline", "-n", "500", "-t", "1", "-p", "Hello"}, &out, &errb)
	if code != 130 || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("exit %d, want 130; stderr %q", code, errb.String())
	}
}

// TestServeClientPriority: "priority" is refused unless
// --allow-client-priority (or its variable) is given.
func TestServeClientPriority(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	body := `{"prompt":"Hi","max_tokens":1,"priority":-1}`
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "8MiB", "--offline")
	if code, b := getWith(t, "POST", sv.base+"/v1/completions", "", body); code != 400 || !strings.Contains(b, "--allow-client-priority") {
		t.Errorf("priority without the flag: %d %s", code, b)
	}
	sv.stop(t)
	t.Setenv("SLUICE_ALLOW_CLIENT_PRIORITY", "true")
	sv = startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "8MiB", "--offline")
	if code, b := getWith(t, "POST", sv.base+"/v1/completions", "", body); code != 200 {
		t.Errorf("priority with $SLUICE_ALLOW_CLIENT_PRIORITY: %d %s", code, b)
	}
	sv.stop(t)
}

// TestServeJSONLogs: with --log-format json every line of stderr is a
// JSON object, and each request has an access-log line carrying its
// X-Request-Id.
func TestServeJSONLogs(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "8MiB", "--offline", "--log-format", "json")
	req, _ := http.NewRequest("POST", sv.base+"/v1/chat/completions",
		strings.NewReader(`{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "abc-123" || !strings.Contains(string(b), `"id":"abc-123"`) ||
		!strings.Contains(string(b), `"time_to_first_token_seconds":`) {
		t.Errorf("response %d %v %s", resp.StatusCode, resp.Header, b)
	}
	sv.stop(t)
	var access []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(sv.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line %q is not JSON: %v", line, err)
			continue
		}
		if m["msg"] == "request" {
			access = append(access, m)
		}
	}
	if len(access) != 1 || access[0]["request_id"] != "abc-123" || access[0]["status"] != 200.0 || access[0]["completion_tokens"] != 3.0 ||
		access[0]["model"] != "tiny-llama-Q8_0" || access[0]["finish_reason"] != "length" {
		t.Errorf("access log %v", access)
	}
}

// TestVersion: `sluice version`, `sluice --version` and /version report
// the same version and commit.
func TestVersion(t *testing.T) {
	want := readVersion()
	var a, b bytes.Buffer
	if code := runMain([]string{"version"}, &a, io.Discard); code != 0 {
		t.Fatalf("version: exit %d", code)
	}
	if code := runMain([]string{"--version"}, &b, io.Discard); code != 0 {
		t.Fatalf("--version: exit %d", code)
	}
	line := strings.TrimSpace(a.String())
	if line != strings.TrimSpace(b.String()) || !strings.HasPrefix(line, "sluice "+want.Version+" (commit "+want.commit()+", go") {
		t.Errorf("version %q, --version %q", a.String(), b.String())
	}
	if code := runMain([]string{"version", "extra"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
	old := linkVersion
	linkVersion = "v9.8.7"
	defer func() { linkVersion = old }()
	if v := readVersion(); v.Version != "v9.8.7" {
		t.Errorf("linked version %q", v.Version)
	}
	linkVersion = old

	t.Setenv("SLUICE_HOME", t.TempDir())
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "8MiB", "--offline")
	code, body := getWith(t, "GET", sv.base+"/version", "", "")
	var got struct{ Version, Commit string }
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 || got.Version != want.Version || got.Commit != want.commit() {
		t.Errorf("/version %d %s, want version %q commit %q", code, body, want.Version, want.commit())
	}
	sv.stop(t)
}

// TestReadmeOperatingExamples: every `sluice serve` command of README.md's
// "Operating sluice" section is accepted by serve's flag checks (files
// under /etc/sluice replaced by test files).
func TestReadmeOperatingExamples(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "## Operating sluice")
	if start < 0 {
		t.Fatal("README.md has no \"Operating sluice\" section")
	}
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keys"), []byte("k\n"), 0o600)
	var cmds []string
	lines := strings.Split(section, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "bin/sluice serve") {
			continue
		}
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, `\`) + " " + strings.TrimSpace(lines[i])
		}
		if c := strings.Index(l, "#"); c >= 0 {
			l = l[:c]
		}
		cmds = append(cmds, l)
	}
	if len(cmds) < 3 {
		t.Fatalf("found %d serve commands in the section", len(cmds))
	}
	for _, c := range cmds {
		args := strings.Fields(strings.ReplaceAll(c, "/etc/sluice/", dir+"/"))[2:]
		if _, err := parseServe(args, envOf(nil), io.Discard); err != nil {
			t.Errorf("README: %s: %v", c, err)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
