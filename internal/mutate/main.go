// Command mutate is sluice's mutation tester: it plants one small bug at a
// time in a package's Go code (a flipped comparison or connective, an
// off-by-one, a dropped negation, a removed call), runs the package's tests
// against it through `go test -overlay` (the working tree is never
// written), and reports per package how many of the bugs the tests caught
// (killed), missed (survived) or that did not compile (not counted), with
// the survivors listed for a reader to judge: a test to write, or a change
// that cannot be observed (an equivalent mutant).
//
//	go run ./internal/mutate -pkgs kvcache,sample -max 150 -budget 30m
//
// The score is killed / (killed + survived). Run it from the module root;
// `make mutate` does, at low priority.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type options struct {
	pkgs    []string
	max     int
	budget  time.Duration
	timeout time.Duration
	run     string
	seed    uint64
	verbose bool
}

func main() {
	var o options
	pkgs := flag.String("pkgs", "kvcache,scheduler,sample,spec,engine", "comma-separated package directories, relative to the module root")
	flag.IntVar(&o.max, "max", 0, "mutants per package at most, chosen at random (0: all)")
	flag.DurationVar(&o.budget, "budget", 0, "stop starting mutants after this long in all (0: no limit)")
	flag.DurationVar(&o.timeout, "timeout", 0, "time limit of one mutant's test run (0: 10× the package's clean run, at least 30s); a mutant over it counts as killed")
	flag.StringVar(&o.run, "run", "", "go test -run pattern (default: every test)")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the random choice of mutants under -max")
	flag.BoolVar(&o.verbose, "v", false, "print every mutant's outcome")
	flag.Parse()
	for _, p := range strings.Split(*pkgs, ",") {
		if p = strings.Trim(strings.TrimSpace(p), "./"); p != "" {
			o.pkgs = append(o.pkgs, p)
		}
	}
	if err := runAll(o); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

// result counts one package's mutants.
type result struct {
	pkg                             string
	killed, survived, invalid, left int
	survivors                       []Mutant
}

func (r *result) score() float64 {
	if n := r.killed + r.survived; n > 0 {
		return float64(r.killed) / float64(n)
	}
	return 0
}

func runAll(o options) error {
	tmp, err := os.MkdirTemp("", "sluice-mutate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	deadline := time.Time{}
	if o.budget > 0 {
		deadline = time.Now().Add(o.budget)
	}
	var results []*result
	for _, pkg := range o.pkgs {
		r, err := runPackage(o, pkg, tmp, deadline)
		if err != nil {
			return fmt.Errorf("%s: %w", pkg, err)
		}
		results = append(results, r)
	}
	fmt.Println("\npackage      killed  survived  not compiled  not run  score")
	for _, r := range results {
		fmt.Printf("%-12s %6d  %8d  %12d  %7d  %5.1f%%\n", r.pkg, r.killed, r.survived, r.invalid, r.left, 100*r.score())
	}
	for _, r := range results {
		if len(r.survivors) == 0 {
			continue
		}
		fmt.Printf("\nsurvivors in %s:\n", r.pkg)
		for _, m := range r.survivors {
			fmt.Println("  " + m.String())
		}
	}
	return nil
}

// mutants lists pkg's mutants (a random choice of at most max).
func mutants(pkg string, max int, seed uint64) ([]Mutant, error) {
	files, err := filepath.Glob(filepath.Join(pkg, "*.go"))
	if err != nil {
		return nil, err
	}
	var all []Mutant
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ms, err := Sites(f)
		if err != nil {
			return nil, err
		}
		all = append(all, ms...)
	}
	if max > 0 && len(all) > max {
		rng := rand.New(rand.NewPCG(seed, 0x6d75746174650a))
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		all = all[:max]
		slices.SortStableFunc(all, func(a, b Mutant) int {
			if c := strings.Compare(a.File, b.File); c != 0 {
				return c
			}
			return a.Start - b.Start
		})
	}
	return all, nil
}

func runPackage(o options, pkg, tmp string, deadline time.Time) (*result, error) {
	r := &result{pkg: pkg}
	ms, err := mutants(pkg, o.max, o.seed)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if out, status := goTest(o, pkg, "", 0); status != passed {
		return nil, fmt.Errorf("the tests fail without a mutant:\n%s", out)
	}
	timeout := o.timeout
	if timeout == 0 {
		timeout = max(30*time.Second, 10*time.Since(t0))
	}
	fmt.Printf("%s: %d mutants, clean run %v, limit %v each\n", pkg, len(ms), time.Since(t0).Round(time.Millisecond), timeout)
	for i, m := range ms {
		if !deadline.IsZero() && time.Now().After(deadline) {
			r.left = len(ms) - i
			break
		}
		overlay, err := writeOverlay(tmp, m)
		if err != nil {
			return nil, err
		}
		_, status := goTest(o, pkg, overlay, timeout)
		switch status {
		case passed:
			r.survived++
			r.survivors = append(r.survivors, m)
		case failed, timedOut:
			r.killed++
		case noBuild:
			r.invalid++
		}
		if o.verbose {
			fmt.Printf("  %-9s %s\n", status, m)
		}
	}
	return r, nil
}

// writeOverlay writes m's mutated file and a go build -overlay file
// replacing the original with it, and returns the latter's path.
func writeOverlay(tmp string, m Mutant) (string, error) {
	src, err := os.ReadFile(m.File)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(m.File)
	if err != nil {
		return "", err
	}
	mut := filepath.Join(tmp, "mutant.go")
	if err := os.WriteFile(mut, m.Apply(src), 0o644); err != nil {
		return "", err
	}
	ov := filepath.Join(tmp, "overlay.json")
	js := fmt.Sprintf(`{"Replace":{%q:%q}}`, abs, mut)
	return ov, os.WriteFile(ov, []byte(js), 0o644)
}

type status string

const (
	passed   status = "survived"
	failed   status = "killed"
	timedOut status = "timeout"
	noBuild  status = "nobuild"
)

// goTest runs pkg's tests (with overlay, if set) and classifies the run.
func goTest(o options, pkg, overlay string, timeout time.Duration) (string, status) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	args := []string{"test", "-count=1", "-failfast", "-vet=off"}
	if overlay != "" {
		args = append(args, "-overlay="+overlay)
	}
	if o.run != "" {
		args = append(args, "-run="+o.run)
	}
	args = append(args, "./"+pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	s := string(out)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return s, passed
	case ctx.Err() != nil:
		return s, timedOut
	case strings.Contains(s, "[build failed]") || strings.Contains(s, "[setup failed]"):
		return s, noBuild
	case errors.As(err, &ee):
		return s, failed
	}
	return s, noBuild
}
