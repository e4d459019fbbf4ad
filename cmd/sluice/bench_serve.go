package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"time"

	"github.com/sluice-llm/sluice/bench"
)

const benchServeUsage = "Usage: sluice bench serve [--url http://127.0.0.1:8080] [--model NAME] [--concurrency 1,4,16] [--requests N]\n" +
	"                          [--input-len 256] [--output-len 128] [--workload random|shared-prefix|repetitive]\n" +
	"                          [--groups 8 --prefix-len 1024 --questions 8] [--repeat-len N] [--temperature 0]\n" +
	"                          [--no-spec] [--chat] [--repeat N] [--json|--csv] [--compare OLD.json [--max-regression 5]]"

// runBenchServe is `sluice bench serve`: a load generator for a running
// OpenAI-compatible server (sluice serve, vLLM, llama-server).
func runBenchServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench serve", stderr)
	o := bench.ServeOptions{}
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "base `URL` of the server")
	fs.StringVar(&o.Model, "model", "", "model `name` to ask for (default: the first one /v1/models lists)")
	conc := intList{1}
	fs.Var(&conc, "concurrency", "`list` of concurrency levels, e.g. 1,4,16: requests in flight at all times")
	fs.IntVar(&o.Requests, "requests", 0, "requests per level (default: 4 × concurrency, at least 8; shared-prefix: groups × questions)")
	fs.IntVar(&o.InputLen, "input-len", 256, "prompt `tokens` (shared-prefix: tokens after the prefix)")
	fs.IntVar(&o.OutputLen, "output-len", 128, "`tokens` generated per request (ignore_eos makes it exact)")
	fs.StringVar(&o.Workload, "workload", bench.WorkloadRandom, "random: independent random prompts; shared-prefix: groups of prompts sharing a prefix;\n"+
		"repetitive: a random unit repeated, for a model to quote back (speculative decoding)")
	fs.IntVar(&o.Groups, "groups", 8, "shared-prefix: prefix groups")
	fs.IntVar(&o.PrefixLen, "prefix-len", 1024, "shared-prefix: `tokens` of each group's prefix")
	fs.IntVar(&o.Questions, "questions", 8, "shared-prefix: prompts per group")
	fs.IntVar(&o.RepeatLen, "repeat-len", 0, "repetitive: `tokens` of the repeated unit (default: input-len/4, four copies)")
	fs.Float64Var(&o.Temperature, "temperature", 0, "sampling temperature of the requests (0: greedy)")
	fs.BoolVar(&o.NoSpeculation, "no-spec", false, `send "speculative": false: opt out of the server's speculative decoding (sluice)`)
	fs.BoolVar(&o.Chat, "chat", false, "send /v1/chat/completions (prompts made text by /detokenize) instead of /v1/completions")
	fs.IntVar(&o.Vocab, "vocab", 0, "draw token ids below `N` (default: the vocabulary size /v1/models reports)")
	seed := fs.Uint64("seed", 0, "random seed of the prompts (0: a fresh one, so a rerun does not hit the last run's prompts in the prefix cache)")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "limit per request")
	noWarmup := fs.Bool("no-warmup", false, "skip the untimed warm-up request")
	repeat := fs.Int("repeat", 1, "run every level this many `times` (the spread of the runs is --compare's noise estimate)")
	var out benchOut
	out.register(fs)
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, benchServeUsage)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Sends streaming requests with random token-id prompts and ignore_eos to a running")
		fmt.Fprintln(w, "OpenAI-compatible server and reports, per concurrency level, request and token")
		fmt.Fprintln(w, "throughput and TTFT, TPOT and end-to-end latency percentiles. It only talks HTTP:")
		fmt.Fprintln(w, "start the server first (sluice serve, vllm serve, llama-server).")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "When the server exports vLLM's vllm:spec_decode_* counters on /metrics (sluice serve")
		fmt.Fprintln(w, "--spec ngram or --draft-model, vLLM), each level also reports the draft tokens proposed")
		fmt.Fprintln(w, "and accepted and the acceptance rate; they count all of the server's traffic. On")
		fmt.Fprintln(w, "random-weight dummy models, n-gram acceptance on the repetitive workload reflects how")
		fmt.Fprintln(w, "much the model repeats itself, not the prompt: it does not learn to quote back.")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	switch {
	case len(conc) == 0:
		return fmt.Errorf("%w: --concurrency needs at least one level", errUsage)
	case o.InputLen < 1 || o.OutputLen < 1:
		return fmt.Errorf("%w: --input-len and --output-len must be ≥ 1", errUsage)
	case o.Requests < 0 || o.Vocab < 0:
		return fmt.Errorf("%w: --requests and --vocab must be ≥ 0", errUsage)
	case o.Workload != bench.WorkloadRandom && o.Workload != bench.WorkloadSharedPrefix && o.Workload != bench.WorkloadRepetitive:
		return fmt.Errorf("%w: --workload %q: want random, shared-prefix or repetitive", errUsage, o.Workload)
	case o.RepeatLen < 0:
		return fmt.Errorf("%w: --repeat-len must be ≥ 0", errUsage)
	case !(o.Temperature >= 0) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("%w: --temperature must be a number ≥ 0", errUsage)
	case o.Workload == bench.WorkloadSharedPrefix && (o.Groups < 1 || o.PrefixLen < 1 || o.Questions < 1):
		return fmt.Errorf("%w: --groups, --prefix-len and --questions must be ≥ 1", errUsage)
	case *repeat < 1:
		return fmt.Errorf("%w: --repeat must be ≥ 1, got %d", errUsage, *repeat)
	}
	if err := out.validate(); err != nil {
		return err
	}
	old := &bench.ServeResult{}
	if err := out.loadOld(old, "serve"); err != nil {
		return err
	}
	if o.Workload != bench.WorkloadSharedPrefix {
		o.Groups, o.PrefixLen, o.Questions = 0, 0, 0
	}
	if o.Workload != bench.WorkloadRepetitive {
		o.RepeatLen = 0
	}
	o.Concurrency = conc
	o.Seed = *seed
	o.NoWarmup = *noWarmup
	if !*quiet {
		o.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var runs []*bench.ServeResult
	for i := 0; i < *repeat; i++ {
		r, err := bench.RunServe(ctx, o)
		if err != nil {
			return err
		}
		runs = append(runs, r)
		o.NoWarmup = true
		if o.Seed != 0 {
			o.Seed++ // fresh prompts: no run hits the last one's prefix cache
		}
	}
	res := runs[0]
	if len(runs) > 1 {
		var err error
		if res, err = bench.MergeRuns(runs); err != nil {
			return err
		}
	}
	return out.write(res, old, stdout, stderr)
}
