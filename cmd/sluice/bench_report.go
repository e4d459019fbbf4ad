package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/sluice-llm/sluice/bench"
)

// benchOut holds the output flags bench engine and bench serve share:
// --json, --csv, --compare and --max-regression.
type benchOut struct {
	json, csv     bool
	compare       string
	maxRegression float64
}

func (o *benchOut) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print machine-readable JSON instead of a table")
	fs.BoolVar(&o.csv, "csv", false, "print CSV instead of a table")
	fs.StringVar(&o.compare, "compare", "", "compare with an earlier --json result `file`: each figure's median, spread and ratio")
	fs.Float64Var(&o.maxRegression, "max-regression", 5, "with --compare: exit 1 when a figure is worse by more than this `percent` (and than the noise)")
}

func (o *benchOut) validate() error {
	switch {
	case o.json && o.csv:
		return fmt.Errorf("%w: --json and --csv exclude each other", errUsage)
	case !(o.maxRegression >= 0) || math.IsInf(o.maxRegression, 0):
		return fmt.Errorf("%w: --max-regression must be a number ≥ 0", errUsage)
	}
	return nil
}

// loadOld reads the --compare file into v, before the run, so a bad path
// fails at once.
func (o *benchOut) loadOld(v benchResult, kind string) error {
	if o.compare == "" {
		return nil
	}
	b, err := os.ReadFile(o.compare)
	if err != nil {
		return fmt.Errorf("%w: --compare: %v", errUsage, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: --compare %s: not a bench %s --json result: %v", errUsage, o.compare, kind, err)
	}
	if len(v.Figures()) == 0 {
		return fmt.Errorf("%w: --compare %s: no bench %s figures in it (is it another kind of result?)", errUsage, o.compare, kind)
	}
	return nil
}

type benchResult interface {
	WriteJSON(io.Writer) error
	WriteMarkdown(io.Writer) error
	WriteCSV(io.Writer) error
	Figures() []bench.Figure
}

// write prints the result and, with --compare, the comparison (on stderr
// when stdout carries JSON or CSV); regressions return an error.
func (o *benchOut) write(res, old benchResult, stdout, stderr io.Writer) error {
	var err error
	switch {
	case o.json:
		err = res.WriteJSON(stdout)
	case o.csv:
		err = res.WriteCSV(stdout)
	default:
		err = res.WriteMarkdown(stdout)
	}
	if err != nil || o.compare == "" {
		return err
	}
	w := stdout
	if o.json || o.csv {
		w = stderr
	} else {
		fmt.Fprintln(w)
	}
	ds := bench.CompareFigures(old.Figures(), res.Figures(), o.maxRegression)
	fmt.Fprintf(w, "Compared with %s (median ± half the range of the repetitions):\n\n", o.compare)
	if err := bench.WriteComparison(w, ds, o.maxRegression); err != nil {
		return err
	}
	if n := bench.Regressions(ds); n > 0 {
		return fmt.Errorf("%d figure(s) regressed by more than %.1f%% against %s", n, o.maxRegression, o.compare)
	}
	return nil
}

const benchReportUsage = "Usage: sluice bench report [--svg FILE] [--title TEXT] RESULT.json..."

// runBenchReport is `sluice bench report`: a Markdown table and an SVG
// chart of several --json results.
func runBenchReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench report", stderr)
	svg := fs.String("svg", "", "also write an SVG line chart to `file` (tokens/s by test or by concurrency)")
	title := fs.String("title", "", "chart title (default: the kind of benchmark)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), benchReportUsage)
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Renders results of 'bench engine --json' (tokens/s by test) or 'bench serve --json'")
		fmt.Fprintln(fs.Output(), "(output tokens/s by concurrency) side by side, one column and one line per file.")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: bench report needs at least one result file", errUsage)
	}
	rep, err := bench.LoadReport(pos)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	if err := rep.WriteMarkdown(stdout); err != nil {
		return err
	}
	if *svg == "" {
		return nil
	}
	t := *title
	if t == "" {
		t = map[string]string{"engine": "sluice bench engine: tokens/s by test", "serve": "sluice bench serve: output tokens/s by concurrency"}[rep.Kind]
	}
	var b strings.Builder
	if err := rep.WriteSVG(&b, t); err != nil {
		return err
	}
	return os.WriteFile(*svg, []byte(b.String()), 0o644)
}
