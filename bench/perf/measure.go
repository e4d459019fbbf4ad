// Package perf is sluice's performance-regression gate: a fixed set of small
// workloads on random-weight models, measured in instructions retired under
// valgrind's callgrind and compared with the baselines committed in
// bench/baseline.json. Instruction counts do not depend on the machine's
// load, so the gate works on shared, noisy CI machines where wall-clock
// thresholds cannot.
//
// A measurement runs each workload in its own process (the sluice binary's
// 'bench perf-run' subcommand) under callgrind with collection off except
// inside measured, which wraps each phase; callgrind writes one dump per
// phase. The child runs with one kernel thread, GOMAXPROCS=1, GOGC=off and
// asynchronous preemption off, so the counts repeat run to run.
package perf

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// measuredSymbol is measured's symbol name, which callgrind's
// --toggle-collect and --dump-after match.
const measuredSymbol = "github.com/sluice-llm/sluice/bench/perf.measured"

// measured runs one phase: callgrind counts exactly the instructions
// executed between its entry and its return, on the calling thread.
//
//go:noinline
func measured(run func() error) error { return run() }

// RunWorkload runs the named workload in this process: its setup, then each
// phase inside measured, printing "phase NAME" to w after each one so the
// parent can pair callgrind's dumps with names. The goroutine stays on one
// OS thread so that callgrind's per-thread collection follows it.
func RunWorkload(name, dir string, w io.Writer) error {
	wl, err := LookupWorkload(name)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	debug.SetGCPercent(-1)
	phases, done, err := wl.prepare(dir)
	if err != nil {
		return err
	}
	defer done()
	for _, p := range phases {
		runtime.GC()
		growStack(stackDepth)
		if err := measured(p.Run); err != nil {
			return fmt.Errorf("perf: %s/%s: %w", name, p.Name, err)
		}
		if _, err := fmt.Fprintf(w, "phase %s\n", p.Name); err != nil {
			return err
		}
	}
	return nil
}

// stackDepth × 64 KiB is the goroutine stack growStack ensures.
const stackDepth = 16

// growStack grows the goroutine's stack to about depth × 64 KiB before a
// phase. Go grows a stack by copying it elsewhere; callgrind takes the jump
// of the stack pointer for returns from every frame, measured's included,
// and would stop counting early. With the stack grown in advance (and no
// garbage collection to shrink it, GOGC=off), no copy happens inside a
// phase.
//
//go:noinline
func growStack(depth int) byte {
	var buf [64 << 10]byte
	buf[depth%len(buf)] = byte(depth)
	if depth > 0 {
		return growStack(depth-1) + buf[(depth*7)%len(buf)]
	}
	return buf[0]
}

// MeasureOptions configure Measure.
type MeasureOptions struct {
	// Valgrind is the valgrind executable ("" means "valgrind" on PATH).
	Valgrind string
	// Child is the command that runs one workload: Measure appends "--dir
	// DIR NAME" (for sluice: [exe, "bench", "perf-run"]).
	Child []string
	// Dir holds the models (PrepareModels) and callgrind's output.
	Dir string
	// KernelPath is the CPU kernel path forced in the child.
	KernelPath string
	// Workloads to measure; empty means all.
	Workloads []string
	// Progress, when set, receives one line per workload.
	Progress io.Writer
}

// Measure runs each workload under callgrind and returns the instructions
// of each phase, keyed "workload/phase".
func Measure(ctx context.Context, o MeasureOptions) (map[string]uint64, error) {
	vg := o.Valgrind
	if vg == "" {
		vg = "valgrind"
	}
	if _, err := exec.LookPath(vg); err != nil {
		return nil, fmt.Errorf("perf: valgrind is needed to count instructions (Debian: apt-get install valgrind): %w", err)
	}
	names := o.Workloads
	if len(names) == 0 {
		for _, w := range Workloads() {
			names = append(names, w.Name)
		}
	}
	out := map[string]uint64{}
	for _, name := range names {
		if _, err := LookupWorkload(name); err != nil {
			return nil, err
		}
		counts, err := measureOne(ctx, vg, o, name)
		if err != nil {
			return nil, err
		}
		for k, v := range counts {
			out[name+"/"+k] = v
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "perfcheck: %s/%s: %d instructions\n", name, k, v)
			}
		}
	}
	return out, nil
}

// measureOne runs one workload's process under callgrind.
func measureOne(ctx context.Context, vg string, o MeasureOptions, name string) (map[string]uint64, error) {
	cgDir, err := os.MkdirTemp(o.Dir, "callgrind-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cgDir)
	cgOut := filepath.Join(cgDir, "cg.out")
	args := []string{"--tool=callgrind", "--collect-atstart=no",
		"--toggle-collect=" + measuredSymbol, "--dump-after=" + measuredSymbol,
		"--callgrind-out-file=" + cgOut}
	args = append(args, o.Child...)
	args = append(args, "--dir", o.Dir, name)
	cmd := exec.CommandContext(ctx, vg, args...)
	cmd.Env = append(os.Environ(), "GOGC=off", "GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1",
		"SLUICE_CPU_PATH="+o.KernelPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("perf: workload %s under callgrind: %v\n%s", name, err, tail(stderr.String(), 2000))
	}
	var phases []string
	for _, l := range strings.Split(string(stdout), "\n") {
		if p, ok := strings.CutPrefix(l, "phase "); ok {
			phases = append(phases, p)
		}
	}
	counts := map[string]uint64{}
	for i, p := range phases {
		n, err := readTotal(fmt.Sprintf("%s.%d", cgOut, i+1))
		if err != nil {
			return nil, fmt.Errorf("perf: workload %s phase %s: %w", name, p, err)
		}
		counts[p] = n
	}
	if len(phases) == 0 {
		return nil, fmt.Errorf("perf: workload %s reported no phases", name)
	}
	return counts, nil
}

// readTotal returns the "totals:" (or "summary:") instruction count of a
// callgrind dump.
func readTotal(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("callgrind wrote no dump: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		for _, key := range []string{"totals:", "summary:"} {
			if v, ok := strings.CutPrefix(l, key); ok {
				fields := strings.Fields(v)
				if len(fields) == 0 {
					return 0, fmt.Errorf("%s: empty %s line", path, key)
				}
				return strconv.ParseUint(fields[0], 10, 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New(path + ": no totals line")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
