package server

import (
	"net/http"
	"testing"
)

func preflightReq(t *testing.T, url, origin, method string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return response{status: resp.StatusCode, header: resp.Header}
}

// TestCORS: a preflight from an allowed origin gets 204 with the method
// and headers allowed (no key needed), an actual request gets
// Access-Control-Allow-Origin; other origins get 403 naming the flag.
func TestCORS(t *testing.T) {
	_, ts := newTestServer(t, Options{CORSOrigins: []string{"https://app.example"}, APIKeys: []string{"k"}}, newFake("tiny"))
	r := preflightReq(t, ts.URL+"/v1/chat/completions", "https://app.example", "POST")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight: %d", r.status)
	}
	h := r.header
	if h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Methods") != "POST, OPTIONS" ||
		h.Get("Access-Control-Allow-Headers") == "" || h.Get("Access-Control-Max-Age") == "" {
		t.Errorf("preflight headers %v", h)
	}
	if r := preflightReq(t, ts.URL+"/v1/models", "https://app.example", "GET"); r.status != http.StatusNoContent {
		t.Errorf("preflight of GET /v1/models: %d", r.status)
	}
	if r := preflightReq(t, ts.URL+"/v1/completions", "https://evil.example", "POST"); r.status != http.StatusForbidden ||
		r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", r.status, r.header)
	}
	if r := preflightReq(t, ts.URL+"/v1/completions", "https://app.example", "DELETE"); r.status != http.StatusForbidden {
		t.Errorf("preflight for DELETE: %d", r.status)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v1/models", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Expose-Headers") == "" {
		t.Errorf("actual request: %d %v", resp.StatusCode, resp.Header)
	}

	_, any := newTestServer(t, Options{CORSOrigins: []string{"*"}}, newFake("tiny"))
	if r := preflightReq(t, any.URL+"/v1/completions", "http://x.example", "POST"); r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("'*': %d %v", r.status, r.header)
	}
	_, none := newTestServer(t, Options{}, newFake("tiny"))
	if r := preflightReq(t, none.URL+"/v1/completions", "http://x.example", "POST"); r.status != http.StatusForbidden {
		t.Errorf("no --cors-origin: %d", r.status)
	}
}
