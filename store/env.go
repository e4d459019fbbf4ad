package store

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func envTrue(k string) bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(k))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// hfToken returns HF_TOKEN, else the token in $HF_TOKEN_PATH or
// $HF_HOME/token (default ~/.cache/huggingface/token).
func hfToken() string {
	if t := strings.TrimSpace(os.Getenv("HF_TOKEN")); t != "" {
		return t
	}
	p := os.Getenv("HF_TOKEN_PATH")
	if p == "" {
		hfHome := os.Getenv("HF_HOME")
		if hfHome == "" {
			if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
				hfHome = filepath.Join(x, "huggingface")
			} else if h, err := os.UserHomeDir(); err == nil {
				hfHome = filepath.Join(h, ".cache", "huggingface")
			}
		}
		if hfHome == "" {
			return ""
		}
		p = filepath.Join(hfHome, "token")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

var defaultClient = newHTTPClient()

// client returns s.Client, or a shared default one.
func (s *Store) client() *http.Client {
	if s.Client == nil {
		return defaultClient
	}
	return s.Client
}

func newHTTPClient() *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t}
}
