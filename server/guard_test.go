package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
)

// rawRequest sends req on a fresh connection to the test server and
// returns its response.
func rawRequest(t *testing.T, ts *httptest.Server, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readResponse(t *testing.T, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// A Host header that is not allowed gets 403 with a JSON error on every
// endpoint (DNS rebinding); allowed names match with any port.
func TestAllowedHosts(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{AllowedHosts: []string{"localhost", "127.0.0.1", "::1"}}, m)
	for _, path := range []string{"/health", "/v1/models"} {
		resp := rawRequest(t, ts, "GET "+path+" HTTP/1.1\r\nHost: evil.example:8080\r\nConnection: close\r\n\r\n")
		e := checkError(t, readResponse(t, resp), http.StatusForbidden, "")
		if e["code"] != "host_not_allowed" || !strings.Contains(e["message"].(string), "--allowed-hosts") {
			t.Errorf("%s: %v", path, e)
		}
	}
	body := `{"prompt":"x","max_tokens":1}`
	req := "POST /v1/completions HTTP/1.1\r\nHost: rebound.example\r\nContent-Type: application/json\r\nContent-Length: " +
		itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
	checkError(t, readResponse(t, rawRequest(t, ts, req)), http.StatusForbidden, "")
	if n := len(m.requests()); n != 0 {
		t.Errorf("%d requests reached the engine", n)
	}
	for _, host := range []string{"localhost:9999", "LOCALHOST", "[::1]:80", "127.0.0.1"} {
		resp := rawRequest(t, ts, "GET /health HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if r := readResponse(t, resp); r.status != 200 {
			t.Errorf("Host %s: %d %s", host, r.status, r.body)
		}
	}
	_, ts = newTestServer(t, Options{AllowedHosts: []string{"*"}}, newFake("tiny"))
	if r := readResponse(t, rawRequest(t, ts, "GET /health HTTP/1.1\r\nHost: any.example\r\nConnection: close\r\n\r\n")); r.status != 200 {
		t.Errorf("with *: %d %s", r.status, r.body)
	}
}

// POST bodies must say they are JSON: a cross-site form or text/plain
// post never runs a generation.
func TestContentTypeRequired(t *testing.T) {
	m := newFake("tiny")
	_, ts := newTestServer(t, Options{}, m)
	body := `{"prompt":"x","max_tokens":1}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		for _, path := range []string{"/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"} {
			req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			e := checkError(t, readResponse(t, resp), http.StatusUnsupportedMediaType, "Content-Type")
			if !strings.Contains(e["message"].(string), "Content-Type: application/json") {
				t.Errorf("%s %q: message %q does not say what to send", path, ct, e["message"])
			}
		}
	}
	if n := len(m.requests()); n != 0 {
		t.Errorf("%d requests reached the engine", n)
	}
	req, _ := http.NewRequest("POST", ts.URL+"/v1/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r := readResponse(t, resp); r.status != 200 {
		t.Errorf("application/json with charset: %d %s", r.status, r.body)
	}
}

// Models' file paths are shown as base names unless ExposePaths.
func TestModelPaths(t *testing.T) {
	for _, expose := range []bool{false, true} {
		want := "a.gguf"
		if expose {
			want = "/models/a.gguf"
		}
		s, ts := newTestServer(t, Options{ExposePaths: expose}, newFake("a"))
		r := do(t, "GET", ts.URL+"/v1/models", "")
		if strings.Contains(string(r.body), "/models/") != expose {
			t.Errorf("expose=%v: /v1/models %s", expose, r.body)
		}
		card := decode[modelCard](t, do(t, "GET", ts.URL+"/v1/models/a", ""))
		if card.Path != want || card.Root != want {
			t.Errorf("expose=%v: card %+v", expose, card)
		}
		lm, err := pb.NewSluiceClient(newGRPC(t, s)).ListModels(context.Background(), &pb.ListModelsRequest{})
		if err != nil || len(lm.Models) != 1 || lm.Models[0].Path != want {
			t.Errorf("expose=%v: ListModels %v %v", expose, lm, err)
		}
	}
}

// newListenerServer serves s through Listener(ln, maxConns) with
// net/http's header limit set to maxHeader.
func newListenerServer(t *testing.T, s *Server, maxConns, maxHeader int) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Listener = Listener(ts.Listener, maxConns)
	ts.Config.MaxHeaderBytes = maxHeader
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// A client sending its body slowly is cut after the read timeout with a
// 408 JSON error while /health keeps answering; a generation running
// longer than the read timeout is not cut.
func TestReadTimeout(t *testing.T) {
	m := newFake("tiny")
	m.reply = "abc"
	s := New(Options{ReadTimeout: 100 * time.Millisecond})
	if err := s.AddModel("", m); err != nil {
		t.Fatal(err)
	}
	ts := newListenerServer(t, s, 0, 0)
	slow := make(chan response, 1)
	go func() {
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			slow <- response{}
			return
		}
		defer c.Close()
		io.WriteString(c, "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			slow <- response{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		slow <- response{resp.StatusCode, resp.Header, b}
	}()
	if r := do(t, "GET", ts.URL+"/health", ""); r.status != 200 {
		t.Errorf("/health while a body stalls: %d %s", r.status, r.body)
	}
	e := checkError(t, <-slow, http.StatusRequestTimeout, "")
	if e["code"] != "request_timeout" {
		t.Errorf("slow body: %v", e)
	}
	if n := len(m.requests()); n != 0 {
		t.Errorf("%d requests reached the engine", n)
	}

	m.block.Store(true)
	done := make(chan response, 1)
	go func() {
		r, _ := fetch("POST", ts.URL+"/v1/completions", `{"prompt":"x","stream":true}`)
		done <- r
	}()
	waitRunning(t, m, 1)
	time.Sleep(300 * time.Millisecond) // past the read timeout
	close(m.release)
	if evs := sseEvents(t, <-done); !strings.Contains(evs[len(evs)-1], `"finish_reason":"stop"`) {
		t.Errorf("a long stream was cut: %v", evs)
	}
}

// At most maxConns connections are served at once: one more waits until a
// connection closes, then /health answers it.
func TestConnectionCap(t *testing.T) {
	s := New(Options{})
	if err := s.AddModel("", newFake("tiny")); err != nil {
		t.Fatal(err)
	}
	ts := newListenerServer(t, s, 2, 0)
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Both idle connections hold their slots once accepted: make sure they are.
	for _, c := range held {
		io.WriteString(c, "GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	answered := make(chan int, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
		resp, err := client.Get(ts.URL + "/health")
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	select {
	case code := <-answered:
		t.Fatalf("a third connection was served (%d) while two held the cap", code)
	case <-time.After(200 * time.Millisecond):
	}
	held[0].Close()
	if code := <-answered; code != 200 {
		t.Errorf("/health under the cap: %d", code)
	}
}

// net/http's own 431 (header larger than MaxHeaderBytes) is a JSON error
// body, as is its 400 for a malformed request.
func TestHeaderTooLargeJSON(t *testing.T) {
	s := New(Options{})
	if err := s.AddModel("", newFake("tiny")); err != nil {
		t.Fatal(err)
	}
	ts := newListenerServer(t, s, 0, 1024)
	big := strings.Repeat("x", 16<<10)
	resp := rawRequest(t, ts, "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: "+big+"\r\n\r\n")
	e := checkError(t, readResponse(t, resp), http.StatusRequestHeaderFieldsTooLarge, "")
	if e["code"] != "request_header_too_large" {
		t.Errorf("431: %v", e)
	}
	resp = rawRequest(t, ts, "GET /health HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n")
	checkError(t, readResponse(t, resp), http.StatusBadRequest, "")
}
