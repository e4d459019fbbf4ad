package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice/bench"
	"github.com/sluice-llm/sluice/synth"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "benchmarks: 'bench engine' (forward-pass speed), 'bench serve' (load on a server)",
		run:     runBench,
	})
}

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: sluice bench engine -m MODEL [-p 512] [-n 128] [-b 1,4,16] [-t THREADS] [-r REPS] [--json|--csv] [--compare OLD.json]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Subcommands:")
	fmt.Fprintln(w, "  engine   forward-pass throughput in tokens/s, as llama-bench and llama-batched-bench measure it")
	fmt.Fprintln(w, "  serve    load generator for a running OpenAI-compatible server: throughput, TTFT, TPOT, e2e latency")
	fmt.Fprintln(w, "  report   Markdown table and SVG chart of several --json results")
	fmt.Fprintln(w, "  perfcheck  instruction-count regression gate against bench/baseline.json (needs valgrind)")
	fmt.Fprintln(w, "  grammar  MaskBench: JSON Schema compile and token-mask correctness and speed (structured output)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, benchServeUsage)
}

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		benchUsage(stderr)
		return fmt.Errorf("%w: missing subcommand (engine or serve)", errUsage)
	}
	switch args[0] {
	case "engine":
		return runBenchEngine(args[1:], stdout, stderr)
	case "serve":
		return runBenchServe(args[1:], stdout, stderr)
	case "report":
		return runBenchReport(args[1:], stdout, stderr)
	case "perfcheck":
		return runBenchPerfcheck(args[1:], stdout, stderr)
	case "grammar":
		return runBenchGrammar(args[1:], stdout, stderr)
	case "perf-run":
		return runBenchPerfRun(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		benchUsage(stderr)
		return flag.ErrHelp
	}
	return fmt.Errorf("%w: unknown bench subcommand %q (want engine or serve)", errUsage, args[0])
}

// intList is a comma-separated list of positive integers flag ("1,4,16").
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = (*l)[:0]
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		*l = append(*l, n)
	}
	return nil
}

func runBenchEngine(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench engine", stderr)
	modelRef := fs.String("m", "", "model: a GGUF `file`, a store reference, or dummy:SHAPE:TYPE (required)")
	prompt := fs.Int("p", 512, "prompt `tokens` of the prefill test (0: skip)")
	gen := fs.Int("n", 128, "`tokens` decoded one at a time after the prompt (0: skip)")
	var batches intList
	fs.Var(&batches, "b", "`list` of sequence counts for the batched decode test, e.g. 1,4,16 (default: none)")
	batchPrompt := fs.Int("pb", 128, "prompt `tokens` per sequence before the batched decode")
	batchGen := fs.Int("nb", 64, "decode `steps` of the batched test (one token per sequence each)")
	threads := fs.Int("t", 0, "CPU threads (0: all cores)")
	reps := fs.Int("r", 5, "timed repetitions of each test (after one warm-up)")
	var out benchOut
	out.register(fs)
	backend := fs.String("backend", "cpu", "compute backend")
	kpath := fs.String("kernels", "", "CPU kernel path: portable, avx2 or avx512 (default: the fastest available)")
	kvF32 := fs.Bool("kv-f32", false, "F32 KV cache instead of F16")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	offline := fs.Bool("offline", false, "never download: the model must be a local file or already stored")
	dummyDir := fs.String("dummy-dir", "", "where dummy:SHAPE:TYPE models are generated and cached (default: the sluice cache)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sluice bench engine -m MODEL [-p 512] [-n 128] [-b 1,4,16] [-t THREADS] [-r REPS] [--json|--csv] [--compare OLD.json]")
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Measures prefill (ppP), decode after the prompt (tgN) and the aggregate decode")
		fmt.Fprintln(fs.Output(), "of B sequences together (ppPB+tgNB B=...), in tokens/s, mean ± stddev over -r runs.")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (the model is given with -m)", errUsage, pos)
	}
	switch {
	case *modelRef == "":
		return fmt.Errorf("%w: -m MODEL is required", errUsage)
	case *prompt < 0 || *gen < 0 || *batchPrompt < 0 || *batchGen < 0:
		return fmt.Errorf("%w: -p, -n, -pb and -nb must be ≥ 0", errUsage)
	case *reps < 1:
		return fmt.Errorf("%w: -r must be ≥ 1, got %d", errUsage, *reps)
	case *threads < 0:
		return fmt.Errorf("%w: -t must be ≥ 0, got %d", errUsage, *threads)
	case len(batches) > 0 && *batchGen == 0:
		return fmt.Errorf("%w: -b needs -nb ≥ 1", errUsage)
	case *prompt == 0 && *gen == 0 && len(batches) == 0:
		return fmt.Errorf("%w: nothing to measure: -p and -n are 0 and no -b given", errUsage)
	}
	if err := out.validate(); err != nil {
		return err
	}
	old := &bench.EngineResult{}
	if err := out.loadOld(old, "engine"); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	path := *modelRef
	if _, ok, err := synth.ParseRef(path); ok {
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if path, err = synth.CachedProgress(ctx, path, *dummyDir, progress); err != nil {
			return err
		}
	}
	f, path, err := openModel(path, *offline, stderr)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := bench.RunEngine(ctx, bench.EngineOptions{
		File: f, Path: path,
		Prompt: *prompt, Gen: *gen,
		Batches: batches, BatchPrompt: *batchPrompt, BatchGen: *batchGen,
		Reps: *reps, Backend: *backend, Threads: *threads, KernelPath: *kpath, KVF32: *kvF32,
		Progress: progress,
	})
	if err != nil {
		return err
	}
	return out.write(res, old, stdout, stderr)
}
