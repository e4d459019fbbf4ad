package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/kernels/cpu"
)

// Upper limits of numeric flags: far above any real use, low enough that
// the sizes derived from them cannot overflow or ask for absurd memory.
const (
	maxFlagSeqs          = 1 << 16
	maxFlagBatchedTokens = 1 << 20
	maxFlagQueue         = 1 << 24
	maxFlagCtx           = 1 << 24
	maxFlagSpecTokens    = 64
)

// maxThreads is the largest thread flag accepted: any count when it is
// capped to the usable CPUs anyway, the backend's limit when forced.
func maxThreads(force bool) int {
	if force {
		return cpu.MaxThreads
	}
	return math.MaxInt32
}

// intFlag checks that the value of --name is in lo..hi.
func intFlag(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("--%s %d: want %d..%d", name, v, lo, hi)
	}
	return nil
}

// validate checks the values of serve's flags (after the environment), so
// that a bad one is a usage error naming it, before anything is loaded.
func (o *serveOptions) validate() error {
	if o.port < 0 || o.port > 65535 || o.grpcPort < 0 || o.grpcPort > 65535 {
		return errors.New("ports must be in 0..65535")
	}
	for _, m := range o.models {
		if n, ref, ok := strings.Cut(m, "="); !ok || n == "" || ref == "" {
			return fmt.Errorf("--model %q: want NAME=MODEL", m)
		}
	}
	if o.kvMemory != "" {
		n, err := engine.ParseBytes(o.kvMemory)
		if err != nil {
			return fmt.Errorf("--kv-memory: %v", err)
		}
		if n <= 0 {
			return fmt.Errorf("--kv-memory %s: must be positive (leave it unset to share the available memory)", o.kvMemory)
		}
	}
	if !(o.kvFraction > 0 && o.kvFraction <= 1) {
		return fmt.Errorf("--kv-memory-fraction %g: want a fraction in (0, 1]", o.kvFraction)
	}
	if o.kvType != "f16" && o.kvType != "f32" {
		return fmt.Errorf("--kv-type %q: want f16 or f32", o.kvType)
	}
	for _, c := range []struct {
		name      string
		v, lo, hi int
	}{
		{"block-size", o.blockSize, 1, 1024},
		{"max-num-seqs", o.maxNumSeqs, 1, maxFlagSeqs},
		{"max-num-batched-tokens", o.maxBatchedTokens, 1, maxFlagBatchedTokens},
		{"max-queue", o.maxQueue, 1, maxFlagQueue},
		{"threads", o.threads, 0, maxThreads(o.threadsForce)},
		{"ctx", o.ctx, 0, maxFlagCtx},
		{"spec-tokens", o.specTokens, 0, maxFlagSpecTokens},
	} {
		if err := intFlag(c.name, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	switch o.spec {
	case "", engine.SpecNGram, engine.SpecDraft:
	default:
		return fmt.Errorf("--spec %q: want ngram or draft (or empty: off)", o.spec)
	}
	if o.backend == "" {
		return errors.New("--backend is empty")
	}
	if n, err := engine.ParseBytes(o.maxBody); err != nil {
		return fmt.Errorf("--max-body: %v", err)
	} else if n <= 0 {
		return fmt.Errorf("--max-body %s: must be positive", o.maxBody)
	}
	if o.readTimeout <= 0 {
		return fmt.Errorf("--read-timeout %v: must be positive", o.readTimeout)
	}
	if o.maxConnections < 0 {
		return fmt.Errorf("--max-connections %d: must be 0 (no limit) or positive", o.maxConnections)
	}
	if o.shutdownTimeout < 0 {
		return fmt.Errorf("--shutdown-timeout %v: must not be negative (0 aborts running requests at once)", o.shutdownTimeout)
	}
	if _, err := parseLogLevel(o.logLevel); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	return o.validateOps()
}

// validateOps checks the operating flags: logs, deadlines, probes, CORS,
// TLS and API keys.
func (o *serveOptions) validateOps() error {
	if o.logFormat != "text" && o.logFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	if o.reasoningFormat != "auto" && o.reasoningFormat != "none" {
		return fmt.Errorf("--reasoning-format %q: want auto or none", o.reasoningFormat)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"request-timeout", o.requestTimeout}, {"stall-timeout", o.stallTimeout}, {"ready-max-ttft", o.readyMaxTTFT}} {
		if d.v < 0 {
			return fmt.Errorf("--%s %v: must not be negative (0: off)", d.name, d.v)
		}
	}
	if err := intFlag("ready-max-queue", o.readyMaxQueue, 0, maxFlagQueue); err != nil {
		return err
	}
	for _, c := range o.origins() {
		if c != "*" && !strings.HasPrefix(c, "http://") && !strings.HasPrefix(c, "https://") {
			return fmt.Errorf("--cors-origin %q: want an origin such as https://app.example, or '*'", c)
		}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
	}
	return o.loadKeys()
}

// loadKeys collects the API keys of --api-key and --api-key-file into
// o.keys, refusing empty ones and a file that gives none.
func (o *serveOptions) loadKeys() error {
	o.keys = nil
	for _, k := range o.apiKeys {
		if strings.TrimSpace(k) == "" {
			return errors.New("--api-key is empty")
		}
		o.keys = append(o.keys, strings.TrimSpace(k))
	}
	if o.apiKeyFile != "" {
		data, err := os.ReadFile(o.apiKeyFile)
		if err != nil {
			return fmt.Errorf("--api-key-file: %v", err)
		}
		n := 0
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				o.keys = append(o.keys, line)
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("--api-key-file %s holds no key (one per line)", o.apiKeyFile)
		}
	}
	if o.metricsAuth && len(o.keys) == 0 {
		return errors.New("--metrics-auth needs --api-key or --api-key-file")
	}
	return nil
}

// validate checks the numeric flags of run.
func (o *runOptions) validate() error {
	switch {
	case o.maxTokens < 0:
		return fmt.Errorf("-n must be ≥ 0, got %d", o.maxTokens)
	case o.threads < 0 || o.threads > maxThreads(o.threadsForce):
		return fmt.Errorf("-t %d: want 0..%d threads (0: every usable CPU)", o.threads, maxThreads(o.threadsForce))
	case o.ctx < 0 || o.ctx > maxFlagCtx:
		return fmt.Errorf("-c %d: want 0..%d tokens (0: the model's)", o.ctx, maxFlagCtx)
	}
	return nil
}
