package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/server"
)

func init() {
	register(&command{
		name:    "serve",
		summary: "serve models over an OpenAI-compatible HTTP API (and gRPC)",
		run:     runServe,
	})
}

// serveOptions are the flags of `sluice serve`. Every flag can also be set
// with the environment variable in serveEnv; a flag on the command line
// wins over the variable.
type serveOptions struct {
	model            string
	models           stringList // NAME=REF
	name             string
	host             string
	port             int
	grpcPort         int
	kvMemory         string
	kvFraction       float64
	kvType           string
	blockSize        int
	maxNumSeqs       int
	maxBatchedTokens int
	maxQueue         int
	threads          int
	ctx              int
	backend          string
	noPrefixCache    bool
	offline          bool
	dryRun           bool
	asJSON           bool
	maxBody          string
	shutdownTimeout  time.Duration
	logLevel         string
	dummyDefault     bool // no model was given: serving defaultServeModel
	spec             string
	draftModel       string // reference as given; draftPath once resolved
	draftPath        string
	specTokens       int
	threadsForce     bool
	parseSpecial     bool // --parse-special-in-content
	readTimeout      time.Duration
	maxConnections   int
	allowedHosts     string
	exposePaths      bool
	apiKeys          stringList // --api-key
	apiKeyFile       string
	metricsAuth      bool
	keys             []string // apiKeys and apiKeyFile's keys, set by validate
	corsOrigins      stringList
	requestTimeout   time.Duration
	stallTimeout     time.Duration
	readyMaxTTFT     time.Duration
	readyMaxQueue    int
	clientPriority   bool // --allow-client-priority
	logFormat        string
	reasoningFormat  string
	tlsCert, tlsKey  string
}

// defaultMaxConnections is the default of --max-connections.
const defaultMaxConnections = 1024

// defaultStallTimeout is the default of --stall-timeout: far longer than
// any healthy step, even a long prefill on a slow CPU.
const defaultStallTimeout = 5 * time.Minute

// shutdownGrace is how long the HTTP and gRPC servers wait, once the
// drain has ended, for the last bytes of each reply to reach the clients.
const shutdownGrace = 2 * time.Second

// defaultServeModel is served when no model is given: a random-weight model
// of a tiny llama shape, generated in a second into the dummy model cache,
// so `sluice serve` answers requests on a fresh offline machine.
const defaultServeModel = "dummy:tiny-llama:Q8_0"

// serveEnv maps flag names to their environment variables.
var serveEnv = []struct{ flag, env string }{
	{"m", "SLUICE_MODEL"},
	{"name", "SLUICE_MODEL_NAME"},
	{"host", "SLUICE_HOST"},
	{"port", "SLUICE_PORT"},
	{"grpc-port", "SLUICE_GRPC_PORT"},
	{"kv-memory", "SLUICE_KV_MEMORY"},
	{"kv-memory-fraction", "SLUICE_KV_MEMORY_FRACTION"},
	{"kv-type", "SLUICE_KV_TYPE"},
	{"block-size", "SLUICE_BLOCK_SIZE"},
	{"max-num-seqs", "SLUICE_MAX_NUM_SEQS"},
	{"max-num-batched-tokens", "SLUICE_MAX_NUM_BATCHED_TOKENS"},
	{"max-queue", "SLUICE_MAX_QUEUE"},
	{"threads", "SLUICE_THREADS"},
	{"ctx", "SLUICE_CTX"},
	{"backend", "SLUICE_BACKEND"},
	{"no-prefix-cache", "SLUICE_NO_PREFIX_CACHE"},
	{"offline", "SLUICE_OFFLINE"},
	{"max-body", "SLUICE_MAX_BODY"},
	{"shutdown-timeout", "SLUICE_SHUTDOWN_TIMEOUT"},
	{"log-level", "SLUICE_LOG_LEVEL"},
	{"spec", "SLUICE_SPEC"},
	{"draft-model", "SLUICE_DRAFT_MODEL"},
	{"spec-tokens", "SLUICE_SPEC_TOKENS"},
	{"threads-force", "SLUICE_THREADS_FORCE"},
	{"parse-special-in-content", "SLUICE_PARSE_SPECIAL_IN_CONTENT"},
	{"read-timeout", "SLUICE_READ_TIMEOUT"},
	{"max-connections", "SLUICE_MAX_CONNECTIONS"},
	{"allowed-hosts", "SLUICE_ALLOWED_HOSTS"},
	{"expose-paths", "SLUICE_EXPOSE_PATHS"},
	{"api-key", "SLUICE_API_KEY"},
	{"api-key-file", "SLUICE_API_KEY_FILE"},
	{"metrics-auth", "SLUICE_METRICS_AUTH"},
	{"cors-origin", "SLUICE_CORS_ORIGIN"},
	{"request-timeout", "SLUICE_REQUEST_TIMEOUT"},
	{"stall-timeout", "SLUICE_STALL_TIMEOUT"},
	{"ready-max-ttft", "SLUICE_READY_MAX_TTFT"},
	{"ready-max-queue", "SLUICE_READY_MAX_QUEUE"},
	{"allow-client-priority", "SLUICE_ALLOW_CLIENT_PRIORITY"},
	{"log-format", "SLUICE_LOG_FORMAT"},
	{"tls-cert", "SLUICE_TLS_CERT"},
	{"tls-key", "SLUICE_TLS_KEY"},
	{"reasoning-format", "SLUICE_REASONING_FORMAT"},
}

func serveFlags(fs *flag.FlagSet, o *serveOptions) {
	fs.StringVar(&o.model, "m", "", "model to serve: a GGUF `file`, a store reference (OWNER/REPO:QUANT, hf://, https://), pulled on first use, or dummy:SHAPE[:TYPE] (default: "+defaultServeModel+")")
	fs.Var(&o.models, "model", "another model to serve, as `NAME=REF` (repeatable); requests pick a model by name")
	fs.StringVar(&o.name, "name", "", "name clients use for the -m model (default: its file name without .gguf)")
	fs.StringVar(&o.host, "host", "127.0.0.1", "address to listen on; use 0.0.0.0 to accept connections from other machines (containers)")
	fs.IntVar(&o.port, "port", 8080, "HTTP port (0: pick a free one)")
	fs.IntVar(&o.grpcPort, "grpc-port", 0, "gRPC port (0: no gRPC)")
	fs.StringVar(&o.kvMemory, "kv-memory", "", "KV cache `size` per model, e.g. 2GiB; all models' weights and caches must fit in the available memory (default: a fraction of the memory left after every model's weights, split between the models)")
	fs.Float64Var(&o.kvFraction, "kv-memory-fraction", engine.DefaultKVMemoryFraction, "fraction of the memory left after the weights that the models' KV caches share when --kv-memory is not set")
	fs.StringVar(&o.kvType, "kv-type", "f16", "KV cache element type: f16 or f32")
	fs.IntVar(&o.blockSize, "block-size", engine.DefaultBlockSize, "tokens per KV cache block")
	fs.IntVar(&o.maxNumSeqs, "max-num-seqs", engine.DefaultMaxNumSeqs, "sequences per engine step")
	fs.IntVar(&o.maxBatchedTokens, "max-num-batched-tokens", engine.DefaultMaxNumBatchedTokens, "token budget per engine step")
	fs.IntVar(&o.maxQueue, "max-queue", engine.DefaultMaxQueue, "waiting requests per model before new ones get 429")
	fs.IntVar(&o.threads, "threads", 0, "CPU threads per model (0: every usable CPU; more than that is capped unless --threads-force)")
	fs.IntVar(&o.ctx, "ctx", 0, "context length in tokens per request (0: the model's)")
	fs.StringVar(&o.backend, "backend", "cpu", "compute backend")
	fs.BoolVar(&o.noPrefixCache, "no-prefix-cache", false, "disable prefix caching")
	fs.BoolVar(&o.offline, "offline", false, "never download: models must be local files or already stored")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the KV memory plan of every model and exit")
	fs.BoolVar(&o.asJSON, "json", false, "with --dry-run: print the plans as JSON")
	fs.StringVar(&o.maxBody, "max-body", "32MiB", "largest request body accepted (larger ones get 413)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long running requests may take to finish (0: abort them at once)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.spec, "spec", "", "speculative decoding: ngram (prompt lookup) or draft (a smaller model, --draft-model); empty: off")
	fs.StringVar(&o.draftModel, "draft-model", "", "draft `model` for --spec draft (a file or store reference); its vocabulary must be the served model's; implies --spec draft")
	fs.IntVar(&o.specTokens, "spec-tokens", 0, "tokens drafted per request and step (0: adapt to the acceptance rate)")
	fs.BoolVar(&o.threadsForce, "threads-force", false, "run --threads as given even beyond the usable CPUs (the affinity mask and cgroup CPU quota)")
	fs.BoolVar(&o.parseSpecial, "parse-special-in-content", false, "let chat message content write special tokens such as <|im_start|> (default: content is plain text, so users cannot inject roles)")
	fs.DurationVar(&o.readTimeout, "read-timeout", server.DefaultReadTimeout, "how long a client may take to send a request body (then 408); never limits the response")
	fs.IntVar(&o.maxConnections, "max-connections", defaultMaxConnections, "HTTP connections open at once; more wait until one closes (0: no limit)")
	fs.StringVar(&o.allowedHosts, "allowed-hosts", "", "comma-separated `names` accepted in the Host header (others get 403), '*' for any (default: localhost, 127.0.0.1, ::1 and --host when it is a loopback address; any host otherwise)")
	fs.BoolVar(&o.exposePaths, "expose-paths", false, "show models' absolute file paths in /v1/models and gRPC ListModels (default: file names only)")
	fs.Var(&o.apiKeys, "api-key", "require `KEY` as \"Authorization: Bearer KEY\" on every API route (repeatable; prefer --api-key-file or $SLUICE_API_KEY: arguments show in ps)")
	fs.StringVar(&o.apiKeyFile, "api-key-file", "", "`file` of accepted API keys, one per line (blank lines and # comments ignored)")
	fs.Var(&o.corsOrigins, "cors-origin", "browser `origin` (https://app.example) allowed to call the API, '*' for any (repeatable; $SLUICE_CORS_ORIGIN takes a comma-separated list); default: none")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 0, "longest a generation request may take, queueing included; then it ends with finish_reason timeout (a 504 without streaming) and its KV blocks are freed (0: no limit; a request's \"timeout\" field can only shorten it)")
	fs.DurationVar(&o.stallTimeout, "stall-timeout", defaultStallTimeout, "/health fails when a model's step loop has work but completed no step for this long (0: never)")
	fs.DurationVar(&o.readyMaxTTFT, "ready-max-ttft", 0, "/ready fails while a model's p99 time to first token over the last minute is above this (0: no limit)")
	fs.IntVar(&o.readyMaxQueue, "ready-max-queue", 0, "/ready fails while more requests than this wait for a model (0: no limit)")
	fs.BoolVar(&o.clientPriority, "allow-client-priority", false, "let requests set \"priority\" (lower runs first, as in vLLM); without it a non-zero priority gets 400")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text (key=value) or json (one object per line); either way one access-log line per request")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate `file` (chain) to serve HTTPS and gRPC over TLS; needs --tls-key; reloaded on SIGHUP")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.BoolVar(&o.metricsAuth, "metrics-auth", false, "with API keys, require one on /metrics too (probes /health, /ready never need one)")
	fs.StringVar(&o.reasoningFormat, "reasoning-format", "auto", "auto: models that think in <think>...</think> get it in reasoning_content (and reasoning); none: keep it inline in content")
}

// applyEnv sets the flags that the command line does not set from their
// environment variables.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, e := range serveEnv {
		v := getenv(e.env)
		if v == "" || set[e.flag] {
			continue
		}
		if err := fs.Set(e.flag, v); err != nil {
			return fmt.Errorf("%w: $%s=%q: %v", errUsage, e.env, v, err)
		}
	}
	return nil
}

// parseServe parses the command line and the environment.
func parseServe(args []string, getenv func(string) string, stderr io.Writer) (*serveOptions, error) {
	fs := newFlags("serve", stderr)
	o := &serveOptions{}
	serveFlags(fs, o)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "Usage: sluice serve -m MODEL [--model NAME=MODEL ...] [flags]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "MODEL is a GGUF file, a store reference (OWNER/REPO:QUANT, hf://, https://) or a")
		fmt.Fprintf(w, "random-weight dummy:SHAPE[:TYPE]; with no model, %s is served.\n", defaultServeModel)
		fmt.Fprintln(w, "Serves an OpenAI-compatible API: POST /v1/completions, /v1/chat/completions,")
		fmt.Fprintln(w, "/tokenize, /detokenize; GET /v1/models, /metrics, /health, /ready, /version.")
		fmt.Fprintln(w, "Every flag can also be set with an environment variable (the flag wins):")
		for _, e := range serveEnv {
			fmt.Fprintf(w, "  --%-24s $%s\n", e.flag, e.env)
		}
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["m"] && o.model == "" {
		return nil, fmt.Errorf("%w: -m is empty: give a model (a GGUF file, a store reference or dummy:SHAPE), or leave -m out to serve %s", errUsage, defaultServeModel)
	}
	if len(pos) == 1 && o.model == "" {
		o.model = pos[0]
	} else if len(pos) > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q (give the model with -m)", errUsage, pos)
	}
	if o.model == "" && len(o.models) == 0 {
		// Quick start: something to talk to without a download.
		o.model, o.dummyDefault = defaultServeModel, true
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return o, nil
}

// logger returns serve's logger (--log-level, --log-format) and say,
// which prints a notice for the operator: a "sluice serve: " line in text
// format, a log record in JSON format (so that every line parses).
func (o *serveOptions) logger(stderr io.Writer) (*slog.Logger, func(format string, args ...any)) {
	level, _ := parseLogLevel(o.logLevel)
	ho := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		log := slog.New(slog.NewJSONHandler(stderr, ho))
		return log, func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	}
	return slog.New(slog.NewTextHandler(stderr, ho)), func(format string, args ...any) {
		fmt.Fprintf(stderr, "sluice serve: "+format+"\n", args...)
	}
}

// lineLogger turns each line written to it into a log record, so that
// messages printed for a terminal fit a JSON log.
type lineLogger struct {
	log *slog.Logger
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexAny(l.buf, "\r\n")
		if i < 0 {
			return len(p), nil
		}
		if line := strings.TrimSpace(string(l.buf[:i])); line != "" {
			l.log.Info(line)
		}
		l.buf = l.buf[i+1:]
	}
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// modelSpec is one model to serve.
type modelSpec struct{ name, ref string }

func (o *serveOptions) specs() []modelSpec {
	var out []modelSpec
	if o.model != "" {
		out = append(out, modelSpec{o.name, o.model})
	}
	for _, m := range o.models {
		n, ref, _ := strings.Cut(m, "=")
		out = append(out, modelSpec{n, ref})
	}
	return out
}

// engineConfig is the engine configuration of one model stored in files
// (several for a split GGUF).
func (o *serveOptions) engineConfig(name string, files ...string) engine.Config {
	cfg := engine.Config{
		ModelPath: files[0], Name: name, Backend: o.backend, Threads: o.threads,
		KVMemoryFraction: o.kvFraction, KVType: o.kvType, BlockSize: o.blockSize, ContextLength: o.ctx,
		MaxNumSeqs: o.maxNumSeqs, MaxNumBatchedTokens: o.maxBatchedTokens, MaxQueue: o.maxQueue,
		DisablePrefixCache: o.noPrefixCache,
		Spec:               o.spec, DraftModelPath: o.draftPath, SpecTokens: o.specTokens,
		ThreadsForce: o.threadsForce,
	}
	if len(files) > 1 {
		cfg.ModelFiles = files
	}
	if o.kvMemory != "" {
		cfg.KVMemory, _ = engine.ParseBytes(o.kvMemory)
	}
	return cfg
}

// serveHUP returns a channel that receives every SIGHUP (reload the TLS
// certificate) and a function that stops the delivery (tests replace it).
var serveHUP = func() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// serveSignals returns a channel that receives every SIGINT and SIGTERM,
// and a function that stops the delivery (tests replace it). The first
// signal starts the drain, a second one ends it at once.
var serveSignals = func() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

func runServe(args []string, stdout, stderr io.Writer) error {
	o, err := parseServe(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	var certs *server.CertReloader // nil: plain HTTP and gRPC
	if o.tlsCert != "" {
		if certs, err = server.NewCertReloader(o.tlsCert, o.tlsKey); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	log, say := o.logger(stderr)
	progress := stderr // pull and synth messages
	if o.logFormat == "json" {
		progress = &lineLogger{log: log}
	}
	var threadNote string
	if o.threads, threadNote = engine.ResolveThreads(o.threads, o.threadsForce); threadNote != "" {
		log.Warn("threads capped", "detail", threadNote)
	}

	if o.dummyDefault {
		say("no model given: serving the random-weight dummy model %s (its output is noise) — pass -m MODEL.gguf for a real one", defaultServeModel)
	}
	// Resolve every model reference first (pulling on first use), so a bad
	// reference fails before anything is loaded.
	specs, paths, err := o.resolveModels(progress)
	if err != nil {
		return err
	}

	cfgs := make([]engine.Config, len(specs))
	for i, sp := range specs {
		cfgs[i] = o.engineConfig(sp.name, paths[i]...)
	}
	if o.dryRun {
		pp, err := engine.PlanGroup(cfgs)
		if err != nil {
			return err
		}
		if o.asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(pp)
		}
		printProcessPlan(stdout, pp)
		return nil
	}

	maxBody, _ := engine.ParseBytes(o.maxBody)
	bv := readVersion()
	srv := server.New(server.Options{Version: bv.Version, Commit: bv.commit(), MaxBodyBytes: maxBody, Logger: log,
		ReadTimeout: o.readTimeout, AllowedHosts: o.hosts(), ExposePaths: o.exposePaths, ParseSpecialInContent: o.parseSpecial,
		APIKeys: o.keys, MetricsAuth: o.metricsAuth, CORSOrigins: o.origins(),
		RequestTimeout: o.requestTimeout, StallTimeout: o.stallTimeout, ReadyMaxTTFT: o.readyMaxTTFT, ReadyMaxQueue: o.readyMaxQueue,
		AllowClientPriority: o.clientPriority, ReasoningFormat: o.reasoningFormat})
	defer srv.Close()
	start := time.Now()
	// One memory budget for every model: the group is planned, and
	// refused if it cannot fit, before any KV cache is allocated.
	engines, err := engine.NewGroup(cfgs)
	if err != nil {
		return err
	}
	for i, eng := range engines {
		sp := specs[i]
		if err := srv.AddModel(sp.name, server.FromEngine[*engine.Stream](eng)); err != nil {
			for _, e := range engines[i:] {
				e.Close()
			}
			return err
		}
		info, plan := eng.Info(), eng.MemoryPlan()
		log.Info("model loaded", "name", sp.name, "path", paths[i][0], "arch", info.Arch, "context", info.ContextLength,
			"kv_blocks", info.KVBlocks, "kv_memory", engine.FormatBytes(info.KVBytes), "packed_weights", engine.FormatBytes(plan.PackedBytes),
			"threads", info.Threads, "tool_calls", toolFormat(eng.ChatTemplate()), "took", time.Since(start).Round(time.Millisecond))
		if p := eng.MemoryPlan(); p.ContextLength < p.RequestedContextLength {
			log.Warn("context length lowered to what the KV cache holds for one sequence; raise --kv-memory for the full context",
				"name", sp.name, "context", p.ContextLength, "requested", p.RequestedContextLength)
		}
	}

	return o.listenAndServe(srv, certs, log, say)
}

// resolveModels resolves every model reference (and the draft model's),
// pulling on first use with messages to progress, and names the models
// that have no name. It returns the models and each one's files.
func (o *serveOptions) resolveModels(progress io.Writer) ([]modelSpec, [][]string, error) {
	var err error
	specs := o.specs()
	paths := make([][]string, len(specs))
	seen := map[string]bool{}
	for i, sp := range specs {
		if paths[i], err = resolveModelPaths(sp.ref, o.offline, progress); err != nil {
			return nil, nil, err
		}
		name := sp.name
		if name == "" {
			name = engine.ModelName(paths[i][0])
			specs[i].name = name
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("%w: two models are named %q; name them with --model NAME=MODEL or --name", errUsage, name)
		}
		seen[name] = true
	}

	if o.draftModel != "" {
		if o.spec == "" {
			o.spec = engine.SpecDraft
		}
		if o.draftPath, err = resolveModel(o.draftModel, o.offline, progress); err != nil {
			return nil, nil, fmt.Errorf("draft model: %w", err)
		}
	}
	return specs, paths, nil
}

// listenAndServe serves srv over HTTP (and gRPC with --grpc-port), over
// TLS when certs is not nil, until a server fails or a signal starts the
// shutdown; SIGHUP reloads certs.
func (o *serveOptions) listenAndServe(srv *server.Server, certs *server.CertReloader, log *slog.Logger, say func(string, ...any)) error {
	sigs, stopSignals := serveSignals()
	defer stopSignals()
	if certs != nil {
		hup, stopHUP := serveHUP()
		done := make(chan struct{})
		defer func() { stopHUP(); close(done) }()
		go reloadOnHUP(certs, hup, done, log)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		return err
	}
	// No ReadTimeout or WriteTimeout: the server bounds each body read
	// itself (--read-timeout), and a long generation must not be cut.
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 2)
	maxConns := o.maxConnections
	if limit, ok := openFileLimit(); ok {
		var warn string
		if maxConns, warn = connectionCap(maxConns, limit); warn != "" {
			log.Warn(warn)
		}
	}
	hl, scheme := server.Listener(ln, maxConns), "http"
	if certs != nil {
		hl, scheme = tls.NewListener(hl, certs.Config("h2", "http/1.1")), "https"
	}
	go func() { errc <- hs.Serve(hl) }()
	say("listening on %s://%s", scheme, ln.Addr())

	var grpcStop func(graceful bool)
	if o.grpcPort > 0 {
		gln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.grpcPort)))
		if err != nil {
			hs.Close()
			return err
		}
		var gopts []grpc.ServerOption
		if certs != nil {
			gopts = append(gopts, grpc.Creds(credentials.NewTLS(certs.Config("h2"))))
		}
		gs := srv.GRPCServer(gopts...)
		go func() { errc <- gs.Serve(gln) }()
		grpcStop = func(graceful bool) {
			if graceful {
				gs.GracefulStop()
			} else {
				gs.Stop()
			}
		}
		say("gRPC on %s", gln.Addr())
	}

	select {
	case err := <-errc:
		hs.Close()
		if grpcStop != nil {
			grpcStop(false)
		}
		return err
	case sig := <-sigs:
		log.Info("signal received: draining; a second signal ends the drain at once", "signal", sig.String())
	}
	return shutdown(srv, hs, grpcStop, o.shutdownTimeout, sigs, log)
}

// reloadOnHUP reloads the TLS certificate on each signal from hup until
// done closes; a failed reload keeps the certificate in use.
func reloadOnHUP(certs *server.CertReloader, hup <-chan os.Signal, done <-chan struct{}, log *slog.Logger) {
	for {
		select {
		case <-hup:
		case <-done:
			return
		}
		if err := certs.Reload(); err != nil {
			log.Error("SIGHUP: TLS certificate not reloaded; the previous one stays in use", "err", err)
			continue
		}
		log.Info("SIGHUP: TLS certificate reloaded")
	}
}

// shutdown drains srv within timeout, or until a second signal arrives on
// sigs (requests still running then are aborted and their clients get an
// ending), then stops the HTTP and gRPC servers with a short grace for the
// last writes, and closes the models. It returns an error, so the command
// exits non-zero, when requests were cut.
func shutdown(srv *server.Server, hs *http.Server, grpcStop func(graceful bool), timeout time.Duration, sigs <-chan os.Signal, log *slog.Logger) error {
	log.Info("shutting down: refusing new requests, waiting for running ones", "timeout", timeout)
	dctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	why := fmt.Sprintf("the shutdown timeout of %v passed", timeout)
	var second atomic.Bool
	go func() {
		select {
		case <-sigs:
			second.Store(true)
			cancel()
		case <-dctx.Done():
		}
	}()
	var cut *server.DrainError
	if err := srv.Drain(dctx); errors.As(err, &cut) {
		if second.Load() {
			why = "a second signal ended the drain"
		}
		log.Warn("aborted the requests still running", "cut", cut.Cut, "why", why)
	} else if err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	gctx, gcancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer gcancel()
	if grpcStop != nil {
		stopped := make(chan struct{})
		go func() { grpcStop(true); close(stopped) }()
		select {
		case <-stopped:
		case <-gctx.Done():
			grpcStop(false)
		}
	}
	if err := hs.Shutdown(gctx); err != nil {
		hs.Close() // a client still sending a body, or not reading its reply
	}
	if err := srv.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
		return err
	}
	if cut != nil {
		return fmt.Errorf("%d requests were cut: %s", cut.Cut, why)
	}
	log.Info("stopped")
	return nil
}

// fdReserve is the number of open files kept for everything but HTTP
// connections: models, the gRPC server, logs.
const fdReserve = 64

// connectionCap fits --max-connections (want; 0: no limit) to the open
// file limit, so that /health still gets a file descriptor when the cap is
// reached. It returns the cap to use and a warning when it lowered it or
// cannot.
func connectionCap(want int, fdLimit uint64) (int, string) {
	if fdLimit <= fdReserve {
		return want, ""
	}
	room := fdLimit - fdReserve
	if want == 0 {
		return 0, fmt.Sprintf("--max-connections 0 (no limit) with an open file limit of %d: when it is reached, connections fail (raise ulimit -n or set --max-connections)", fdLimit)
	}
	if uint64(want) > room {
		return int(room), fmt.Sprintf("--max-connections %d lowered to %d to fit the open file limit of %d (raise ulimit -n to allow more)", want, room, fdLimit)
	}
	return want, ""
}

// hosts is the Host header allow-list: --allowed-hosts, or by default the
// localhost names (and --host) when listening on a loopback address, any
// host when listening on another address (other machines reach it by
// names we cannot know).
func (o *serveOptions) hosts() []string {
	if o.allowedHosts != "" {
		var out []string
		for _, h := range strings.Split(o.allowedHosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				out = append(out, h)
			}
		}
		return out
	}
	if !isLoopback(o.host) {
		return []string{"*"}
	}
	return []string{"localhost", "127.0.0.1", "::1", o.host}
}

// origins is --cors-origin with comma-separated lists split.
func (o *serveOptions) origins() []string {
	var out []string
	for _, v := range o.corsOrigins {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
