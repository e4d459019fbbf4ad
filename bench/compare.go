package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
)

// Figure is one measured quantity of a benchmark result with its samples,
// one per repetition (engine tests) or per run (bench serve --repeat).
type Figure struct {
	Name         string // "pp512 t/s", "c=4 output tok/s"
	HigherBetter bool   // throughputs; latencies are lower-better
	Samples      []float64
}

// Median returns the median of the samples (0 with none).
func (f Figure) Median() float64 { return median(f.Samples) }

// Spread is the noise estimate of the samples: half their range as a
// percentage of the median (0 for one sample).
func (f Figure) Spread() float64 { return spreadPct(f.Samples) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func spreadPct(v []float64) float64 {
	m := median(v)
	if len(v) < 2 || m == 0 {
		return 0
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return 100 * (hi - lo) / 2 / math.Abs(m)
}

// Figures lists an engine result's figures: each test's tokens/s.
func (r *EngineResult) Figures() []Figure {
	var out []Figure
	for _, t := range r.Tests {
		out = append(out, Figure{Name: t.Name + " t/s", HigherBetter: true, Samples: t.TokensPerSec})
	}
	return out
}

// Figures lists a serve result's figures per concurrency level: output
// throughput and the median TTFT, TPOT and end-to-end latency, with one
// sample per run (Runs, from --repeat) or the level's own values.
func (r *ServeResult) Figures() []Figure {
	var out []Figure
	for _, l := range r.Levels {
		runs := l.Runs
		if len(runs) == 0 {
			runs = []RunFigures{l.runFigures()}
		}
		pick := func(f func(RunFigures) float64) []float64 {
			v := make([]float64, len(runs))
			for i, x := range runs {
				v[i] = f(x)
			}
			return v
		}
		c := fmt.Sprintf("c=%d ", l.Concurrency)
		out = append(out,
			Figure{Name: c + "output tok/s", HigherBetter: true, Samples: pick(func(x RunFigures) float64 { return x.OutputThroughput })},
			Figure{Name: c + "TTFT p50 ms", Samples: pick(func(x RunFigures) float64 { return x.TTFTP50 })},
			Figure{Name: c + "TPOT p50 ms", Samples: pick(func(x RunFigures) float64 { return x.TPOTP50 })},
			Figure{Name: c + "e2e p50 ms", Samples: pick(func(x RunFigures) float64 { return x.E2EP50 })},
		)
	}
	return out
}

// RunFigures are one run's headline figures of a concurrency level.
type RunFigures struct {
	OutputThroughput float64 `json:"output_throughput"`
	TTFTP50          float64 `json:"ttft_p50_ms"`
	TPOTP50          float64 `json:"tpot_p50_ms"`
	E2EP50           float64 `json:"e2e_p50_ms"`
}

func (l *ServeLevel) runFigures() RunFigures {
	return RunFigures{OutputThroughput: l.OutputThroughput, TTFTP50: l.TTFT.P50, TPOTP50: l.TPOT.P50, E2EP50: l.E2E.P50}
}

// MergeRuns joins repeated runs of the same bench serve configuration: the
// first run's result, with every run's figures in each level's Runs. The
// runs must have the same concurrency levels.
func MergeRuns(runs []*ServeResult) (*ServeResult, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("bench: no runs to merge")
	}
	out := *runs[0]
	out.Levels = append([]ServeLevel(nil), runs[0].Levels...)
	for i := range out.Levels {
		out.Levels[i].Runs = nil
		for j, r := range runs {
			if len(r.Levels) != len(out.Levels) || r.Levels[i].Concurrency != out.Levels[i].Concurrency {
				return nil, fmt.Errorf("bench: run %d has different concurrency levels", j+1)
			}
			out.Levels[i].Runs = append(out.Levels[i].Runs, r.Levels[i].runFigures())
		}
	}
	return &out, nil
}

// Delta is one figure of a new result compared with an old one.
type Delta struct {
	Name     string
	Old, New Figure
	// Ratio is new median / old median; WorsePct how much worse the new
	// median is in percent (negative: better), whichever way is better;
	// NoisePct the two spreads added.
	Ratio, WorsePct, NoisePct float64
	// Regressed: worse by more than the threshold and than the noise.
	Regressed bool
	// Missing: the figure is in only one of the two results.
	Missing bool
}

// CompareFigures pairs figures by name. A figure regresses when it is
// worse than the old one by more than maxRegression percent and by more
// than the combined spread of the two (a difference within the noise of
// the runs is not evidence). Figures found in only one result are listed
// as missing and do not fail.
func CompareFigures(old, cur []Figure, maxRegression float64) []Delta {
	byName := map[string]Figure{}
	for _, f := range old {
		byName[f.Name] = f
	}
	var out []Delta
	seen := map[string]bool{}
	for _, n := range cur {
		seen[n.Name] = true
		o, ok := byName[n.Name]
		if !ok || o.Median() == 0 {
			out = append(out, Delta{Name: n.Name, New: n, Missing: true})
			continue
		}
		d := Delta{Name: n.Name, Old: o, New: n, Ratio: n.Median() / o.Median(), NoisePct: o.Spread() + n.Spread()}
		if n.HigherBetter {
			d.WorsePct = 100 * (1 - d.Ratio)
		} else {
			d.WorsePct = 100 * (d.Ratio - 1)
		}
		d.Regressed = d.WorsePct > maxRegression && d.WorsePct > d.NoisePct
		out = append(out, d)
	}
	for _, o := range old {
		if !seen[o.Name] {
			out = append(out, Delta{Name: o.Name, Old: o, Missing: true})
		}
	}
	return out
}

// Regressions counts the regressed figures.
func Regressions(ds []Delta) int {
	n := 0
	for _, d := range ds {
		if d.Regressed {
			n++
		}
	}
	return n
}

// WriteComparison writes the deltas as a Markdown table: each figure's
// old and new median ± spread, the ratio, the noise and a verdict.
func WriteComparison(w io.Writer, ds []Delta, maxRegression float64) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "| figure | old (median ± spread) | new (median ± spread) | ratio | change | noise | status |")
	fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | ---: | ---: | --- |")
	cell := func(f Figure) string {
		if len(f.Samples) == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f ± %.1f%% (n=%d)", f.Median(), f.Spread(), len(f.Samples))
	}
	for _, d := range ds {
		if d.Missing {
			fmt.Fprintf(bw, "| %s | %s | %s | — | — | — | only in one result |\n", d.Name, cell(d.Old), cell(d.New))
			continue
		}
		status := "ok"
		switch {
		case d.Regressed:
			status = fmt.Sprintf("REGRESSED (> %.1f%%)", maxRegression)
		case d.WorsePct > maxRegression:
			status = "worse, within noise"
		case d.WorsePct < -d.NoisePct:
			status = "better"
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %.3f | %+.1f%% | ±%.1f%% | %s |\n",
			d.Name, cell(d.Old), cell(d.New), d.Ratio, -d.WorsePct, d.NoisePct, status)
	}
	return bw.Flush()
}
