package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sluice-llm/sluice/bench/perf"
	"github.com/sluice-llm/sluice/kernels/cpu"
)

const benchPerfcheckUsage = "Usage: sluice bench perfcheck [--baseline bench/baseline.json] [--max-increase 3] [--only W1,W2] [--update [--kernels avx2]]"

// defaultPerfPath is the kernel path new baselines are measured on: the one
// valgrind emulates (it has no AVX-512) and CI machines have.
const defaultPerfPath = "avx2"

// runBenchPerfcheck is `sluice bench perfcheck`: the instruction-count
// regression gate (package bench/perf).
func runBenchPerfcheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench perfcheck", stderr)
	baseline := fs.String("baseline", filepath.Join("bench", "baseline.json"), "baseline `file`")
	maxInc := fs.Float64("max-increase", 3, "fail when a count grows by more than this `percent`")
	only := fs.String("only", "", "comma-separated `workloads` to measure (default: all)")
	update := fs.Bool("update", false, "measure and rewrite the baseline file instead of comparing (commit it saying why)")
	kpath := fs.String("kernels", "", "with --update: the CPU kernel path to measure (default: the file's, else "+defaultPerfPath+")")
	work := fs.String("work", "", "`dir` for the generated models and callgrind's output (default: a fresh temporary one, removed after)")
	valgrind := fs.String("valgrind", "valgrind", "valgrind `executable`")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, benchPerfcheckUsage)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Counts the instructions of fixed workloads on small random-weight models under")
		fmt.Fprintln(w, "valgrind's callgrind and fails when one grew by more than --max-increase percent")
		fmt.Fprintln(w, "over the baseline file. Workloads: "+strings.Join(workloadNames(), ", ")+".")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	case !(*maxInc >= 0):
		return fmt.Errorf("%w: --max-increase must be a number ≥ 0", errUsage)
	case *kpath != "" && !*update:
		return fmt.Errorf("%w: --kernels only applies with --update (the gate runs the baseline's path)", errUsage)
	}
	var names []string
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			if _, err := perf.LookupWorkload(n); err != nil {
				return fmt.Errorf("%w: --only: %v", errUsage, err)
			}
			names = append(names, n)
		}
	}
	if *update && len(names) > 0 {
		return fmt.Errorf("%w: --update measures every workload; drop --only", errUsage)
	}
	base, path, err := perfBaseline(*baseline, *update, *kpath)
	if err != nil {
		return err
	}
	if !cpu.PathAvailable(path) {
		return fmt.Errorf("perfcheck: the baselines are for CPU kernel path %q, which this CPU cannot run (available: %s); "+
			"counts from another path would not be comparable", path, strings.Join(cpu.AvailablePaths(), ", "))
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *work == "" {
		if *work, err = os.MkdirTemp("", "sluice-perf-"); err != nil {
			return err
		}
		defer os.RemoveAll(*work)
	}
	if err := perf.PrepareModels(*work); err != nil {
		return err
	}
	o := perf.MeasureOptions{Valgrind: *valgrind, Child: []string{exe, "bench", "perf-run"},
		Dir: *work, KernelPath: path, Workloads: names}
	if !*quiet {
		o.Progress = stderr
	}
	cur, err := perf.Measure(ctx, o)
	if err != nil {
		return err
	}
	if *update {
		nb := &perf.Baseline{Schema: perf.BaselineSchema, Tool: "callgrind", Unit: "instructions",
			KernelPath: path, GoVersion: runtime.Version(), Counts: cur}
		if err := nb.WriteFile(*baseline); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "perfcheck: wrote %d baselines to %s (kernel path %s)\n", len(cur), *baseline, path)
		return nil
	}
	rows := perf.Compare(base.Counts, cur, *maxInc, names)
	fmt.Fprintf(stdout, "Instructions retired (callgrind, kernel path %s, 1 thread); fails past +%.1f%%:\n\n", path, *maxInc)
	if err := perf.WriteTable(stdout, rows); err != nil {
		return err
	}
	if perf.AnyFailed(rows) {
		return errors.New("perfcheck: performance gate failed (see the table; if the change is intended, run 'make perfcheck-update' and say why in the commit message)")
	}
	return nil
}

// perfBaseline reads the baseline file and picks the kernel path: the
// file's, or for --update the flag's, the file's or the default.
func perfBaseline(file string, update bool, flagPath string) (*perf.Baseline, string, error) {
	base, err := perf.ReadBaseline(file)
	if !update {
		if err != nil {
			return nil, "", err
		}
		return base, base.KernelPath, nil
	}
	switch {
	case flagPath != "":
		return nil, flagPath, nil
	case err == nil:
		return nil, base.KernelPath, nil
	}
	return nil, defaultPerfPath, nil
}

// runBenchPerfRun is `sluice bench perf-run --dir DIR WORKLOAD`, the child
// process perfcheck runs under callgrind.
func runBenchPerfRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench perf-run", stderr)
	dir := fs.String("dir", "", "`dir` holding the workload models (written by perfcheck)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *dir == "" {
		return fmt.Errorf("%w: usage: sluice bench perf-run --dir DIR WORKLOAD (one of %s)", errUsage, strings.Join(workloadNames(), ", "))
	}
	return perf.RunWorkload(pos[0], *dir, stdout)
}

func workloadNames() []string {
	var n []string
	for _, w := range perf.Workloads() {
		n = append(n, w.Name)
	}
	return n
}
