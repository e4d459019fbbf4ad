// Package server exposes loaded models over an OpenAI-compatible HTTP API
// (completions, chat completions, models, tokenize/detokenize), Prometheus
// metrics with vLLM's metric names, health endpoints and a gRPC service. It
// is a thin adapter: all generation goes through the engine's public API.
//
// One Server serves several models; a request picks one with its "model"
// field (an empty field picks the first model registered).
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/tokenizer/template"
	"github.com/sluice-llm/sluice/toolcall"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes
// is 0.
const DefaultMaxBodyBytes = 32 << 20

// DefaultReadTimeout is the request body read limit when
// Options.ReadTimeout is 0.
const DefaultReadTimeout = 60 * time.Second

// Options configure a Server. Zero values mean the documented defaults.
type Options struct {
	Version      string // reported by /version; default "dev"
	Commit       string // VCS revision reported by /version; default "unknown"
	MaxBodyBytes int64  // request body limit (→ 413); default 32 MiB
	RetryAfter   int    // seconds in Retry-After on 429/503; default 1
	// AbortGrace bounds how long Drain waits for handlers to write their
	// endings after its deadline aborted the remaining requests; default
	// DefaultAbortGrace.
	AbortGrace time.Duration
	// ReadTimeout bounds reading a request's body, from the end of its
	// header (→ 408); it never limits how long the response takes.
	// Default DefaultReadTimeout; negative: no limit.
	ReadTimeout time.Duration
	// AllowedHosts are the Host header names accepted (ports ignored);
	// others get 403, a defence against DNS rebinding. "*" or an empty
	// list accepts any host.
	AllowedHosts []string
	// ExposePaths shows models' absolute file paths in /v1/models and
	// gRPC ListModels; by default only the file's base name is shown.
	ExposePaths bool
	Logger      *slog.Logger // default: discard
	// ParseSpecialInContent lets chat message content write special
	// tokens: "<|im_start|>" typed in a message becomes the control token,
	// as the template's markup does. Off (the default), content is
	// tokenized as plain text, so users cannot inject turns or roles.
	// Prompts of /v1/completions are the model's raw input and always
	// parse special tokens.
	ParseSpecialInContent bool

	// APIKeys, when not empty, are the keys a client must send as
	// "Authorization: Bearer KEY" (gRPC: the authorization metadata) on
	// every API route; /health, /ready, /version and the gRPC health
	// service never need one, /metrics only with MetricsAuth. Missing or
	// wrong keys get 401 (gRPC Unauthenticated).
	APIKeys     []string
	MetricsAuth bool
	// CORSOrigins are the browser origins ("https://app.example", or
	// "*" for any) allowed to call the API from scripts; preflights
	// from others get 403. Empty: no cross-origin access.
	CORSOrigins []string
	// RequestTimeout bounds every generation request, queueing
	// included; 0: no limit. A request's "timeout" field can only
	// shorten it. A request past its deadline is aborted in the engine
	// (its KV blocks freed at once) and ends with finish_reason
	// "timeout" (streams, gRPC) or a 504 error body.
	RequestTimeout time.Duration
	// StallTimeout: a model whose step loop has work (running or
	// waiting requests) but completed no step for this long is stalled,
	// and /health fails (so a liveness probe restarts the process).
	// 0: no stall detection.
	StallTimeout time.Duration
	// ReadyMaxTTFT and ReadyMaxQueue make /ready fail while a model's
	// recent p99 time to first token, or its waiting requests, exceed
	// them (so a load balancer sends new work elsewhere); 0: no limit.
	ReadyMaxTTFT  time.Duration
	ReadyMaxQueue int
	// AllowClientPriority lets requests set "priority" (lower runs
	// first, as in vLLM); without it a non-zero priority gets 400.
	AllowClientPriority bool
	// ReasoningFormat "none" leaves <think> ... </think> inline in
	// content; otherwise ("" or "auto") models whose template marks
	// reasoning get it in reasoning_content (and reasoning).
	ReasoningFormat string
}

// Server serves registered models over HTTP (Handler) and gRPC.
type Server struct {
	opts     Options
	log      *slog.Logger
	mu       sync.RWMutex
	models   map[string]*entry
	order    []string
	draining atomic.Bool
	inflight atomic.Int64 // generation requests being served
	metrics  *httpMetrics
	started  time.Time
	onDrain  []func() // run once by StartDrain (gRPC health → NOT_SERVING)
	// abortCtx is cancelled (by abortAll) when Drain's deadline passes:
	// every running request's engine context is derived from it too.
	abortCtx context.Context
	abortAll context.CancelFunc

	keys [][32]byte // SHA-256 digests of Options.APIKeys
}

// entry is one registered model.
type entry struct {
	name  string
	m     Model
	info  engine.ModelInfo
	tok   Tokenizer
	tmpl  *template.Template // nil when the model has no (valid) chat template
	terr  error              // why tmpl is nil
	bos   string
	eos   string
	hist  *modelHistograms
	added time.Time
	watch *watch // recent latencies and step progress, for /health and /ready

	// parseSpecialInContent is Options.ParseSpecialInContent.
	parseSpecialInContent bool
	// format is the tool-call format of the model's chat template
	// (toolcall.Generic when not recognised); thinks: the template marks
	// reasoning with <think>; reasoningInline is ReasoningFormat "none".
	format          *toolcall.Format
	thinks          bool
	reasoningInline bool
}

// New returns a Server with no models.
func New(opts Options) *Server {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Commit == "" {
		opts.Commit = "unknown"
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 1
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.AbortGrace <= 0 {
		opts.AbortGrace = DefaultAbortGrace
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:    opts,
		log:     log,
		models:  map[string]*entry{},
		metrics: newHTTPMetrics(),
		started: time.Now(),
	}
	s.abortCtx, s.abortAll = context.WithCancel(context.Background())
	s.keys = keyDigests(opts.APIKeys)
	return s
}

// AddModel registers m under name (default: m.Info().Name). Its chat
// template is parsed now; a model without one still serves completions.
func (s *Server) AddModel(name string, m Model) error {
	info := m.Info()
	if name == "" {
		name = info.Name
	}
	if name == "" {
		return errors.New("server: model has no name")
	}
	e := &entry{name: name, m: m, info: info, tok: m.Tokenizer(), hist: newModelHistograms(), added: time.Now(), watch: newWatch(time.Now()),
		parseSpecialInContent: s.opts.ParseSpecialInContent}
	if e.info.LoadedAt.IsZero() {
		e.info.LoadedAt = e.added
	}
	if e.tok == nil {
		return fmt.Errorf("server: model %s has no tokenizer", name)
	}
	if id := e.tok.BOS(); id >= 0 {
		e.bos = e.tok.Token(id)
	}
	if id := e.tok.EOS(); id >= 0 {
		e.eos = e.tok.Token(id)
	}
	if src := m.ChatTemplate(); src == "" {
		e.terr = fmt.Errorf("model %s has no chat template (tokenizer.chat_template in its GGUF); use /v1/completions", name)
	} else if t, err := template.Parse(src); err != nil {
		e.terr = fmt.Errorf("model %s: its chat template does not parse: %v", name, err)
	} else {
		e.tmpl = t
	}
	e.format, e.thinks, e.reasoningInline = toolFormat(e), toolcall.Thinks(m.ChatTemplate()), s.opts.ReasoningFormat == "none"
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.models[name]; dup {
		return fmt.Errorf("server: model %q registered twice", name)
	}
	s.models[name] = e
	s.order = append(s.order, name)
	return nil
}

// lookup returns the model a request names; "" picks the first one.
func (s *Server) lookup(name string) (*entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if name == "" {
		if len(s.order) == 0 {
			return nil, notFound("model_not_found", "no model is loaded")
		}
		return s.models[s.order[0]], nil
	}
	if e, ok := s.models[name]; ok {
		return e, nil
	}
	return nil, notFound("model_not_found", "the model %q does not exist; available: %s", name, strings.Join(s.order, ", "))
}

func (s *Server) entries() []*entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*entry, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.models[n])
	}
	return out
}

// StartDrain makes the server refuse new generation requests with 503
// (/ready turns 503 too, /health stays 200) while running ones continue.
func (s *Server) StartDrain() {
	if s.draining.Swap(true) {
		return
	}
	s.mu.RLock()
	hooks := append([]func(){}, s.onDrain...)
	s.mu.RUnlock()
	for _, h := range hooks {
		h()
	}
}

// Draining reports whether StartDrain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Close closes every model.
func (s *Server) Close() error {
	var errs []error
	for _, e := range s.entries() {
		if err := e.m.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) apiErr(err error) *apiError {
	ae := toAPIError(err, s.opts.RetryAfter)
	if ae.RetryAfter > 0 {
		ae.RetryAfter = s.opts.RetryAfter
	}
	if ae.Status == http.StatusTooManyRequests {
		s.metrics.countRejected("overloaded")
	} else if ae.Status == http.StatusServiceUnavailable {
		s.metrics.countRejected("draining")
	}
	return ae
}

// statusRecorder remembers the status written, for metrics and to know
// whether an error can still become a status code.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// newID returns prefix followed by 24 random hex digits.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// modelCard is one entry of GET /v1/models: OpenAI's fields, vLLM's
// max_model_len and sluice's registry details.
type modelCard struct {
	ID          string `json:"id"`
	Object      string `json:"object"`
	Created     int64  `json:"created"`
	OwnedBy     string `json:"owned_by"`
	Root        string `json:"root"`
	MaxModelLen int    `json:"max_model_len"`
	VocabSize   int    `json:"vocab_size"`
	Path        string `json:"path"`
	Fingerprint string `json:"fingerprint"`
	Arch        string `json:"architecture,omitempty"`
	QuantMix    string `json:"quant_mix,omitempty"`
	LoadedAt    string `json:"loaded_at"`
	ChatTmpl    bool   `json:"chat_template"`
}

// card describes e; path is its file as shown to clients (shownPath).
func (e *entry) card(path string) modelCard {
	return modelCard{
		ID: e.name, Object: "model", Created: e.info.LoadedAt.Unix(), OwnedBy: "sluice", Root: path,
		MaxModelLen: e.info.ContextLength, VocabSize: e.tok.VocabSize(), Path: path, Fingerprint: e.info.Fingerprint,
		Arch: e.info.Arch, QuantMix: e.info.QuantMix, LoadedAt: e.info.LoadedAt.UTC().Format(time.RFC3339),
		ChatTmpl: e.tmpl != nil,
	}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) error {
	cards := []modelCard{}
	for _, e := range s.entries() {
		cards = append(cards, e.card(s.shownPath(e.info.Path)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": cards})
	return nil
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("model")
	if name == "" {
		return notFound("model_not_found", "no model named")
	}
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e.card(s.shownPath(e.info.Path)))
	return nil
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) error {
	names := make([]string, 0)
	for _, e := range s.entries() {
		names = append(names, e.name)
	}
	sort.Strings(names)
	writeJSON(w, http.StatusOK, map[string]any{"version": s.opts.Version, "commit": s.opts.Commit, "models": names})
	return nil
}
