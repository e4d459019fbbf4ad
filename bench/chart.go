package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Report is a set of results of one kind (all engine or all serve) drawn
// as one table and one chart: a series per result file, tokens/s by test
// (engine) or output tokens/s by concurrency (serve).
type Report struct {
	Kind   string   // "engine" or "serve"
	XLabel string   // "test" or "concurrency"
	X      []string // the categories, in first-seen order
	Series []Series
}

// Series is one result file's values by category (NaN where it has none).
type Series struct {
	Label  string
	Values []float64
}

// LoadReport reads result files written by bench engine --json or bench
// serve --json. They must all be of one kind.
func LoadReport(paths []string) (*Report, error) {
	if len(paths) == 0 {
		return nil, errors.New("bench: no result files")
	}
	rep := &Report{}
	vals := make([]map[string]float64, len(paths))
	for i, p := range paths {
		kind, v, x, err := loadResult(p)
		if err != nil {
			return nil, err
		}
		if rep.Kind != "" && kind != rep.Kind {
			return nil, fmt.Errorf("bench: %s is a %s result, the others %s results; report one kind at a time", p, kind, rep.Kind)
		}
		rep.Kind, vals[i] = kind, v
		for _, c := range x {
			if !contains(rep.X, c) {
				rep.X = append(rep.X, c)
			}
		}
	}
	rep.XLabel = map[string]string{"engine": "test", "serve": "concurrency"}[rep.Kind]
	for i, p := range paths {
		s := Series{Label: strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))}
		for _, c := range rep.X {
			v, ok := vals[i][c]
			if !ok {
				v = math.NaN()
			}
			s.Values = append(s.Values, v)
		}
		rep.Series = append(rep.Series, s)
	}
	return rep, nil
}

// loadResult reads one result file: its kind, tokens/s by category, and
// the categories in order.
func loadResult(path string) (string, map[string]float64, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, nil, err
	}
	var probe struct {
		Tests  []TestResult `json:"tests"`
		Levels []ServeLevel `json:"levels"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return "", nil, nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	v := map[string]float64{}
	var x []string
	switch {
	case len(probe.Tests) > 0:
		for _, t := range probe.Tests {
			m := t.Median
			if m == 0 {
				m = median(t.TokensPerSec)
			}
			v[t.Name] = m
			x = append(x, t.Name)
		}
		return "engine", v, x, nil
	case len(probe.Levels) > 0:
		for _, l := range probe.Levels {
			c := fmt.Sprint(l.Concurrency)
			f := (&ServeResult{Levels: []ServeLevel{l}}).Figures()[0]
			v[c] = f.Median()
			x = append(x, c)
		}
		return "serve", v, x, nil
	}
	return "", nil, nil, fmt.Errorf("bench: %s has neither engine tests nor serve levels (not a bench --json result?)", path)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// WriteMarkdown writes the report as a table: a row per category, a
// column per result file, tokens/s.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	unit := map[string]string{"engine": "t/s", "serve": "output tok/s"}[r.Kind]
	fmt.Fprintf(bw, "| %s |", r.XLabel)
	for _, s := range r.Series {
		fmt.Fprintf(bw, " %s (%s) |", s.Label, unit)
	}
	fmt.Fprintf(bw, "\n| --- |%s\n", strings.Repeat(" ---: |", len(r.Series)))
	for i, c := range r.X {
		fmt.Fprintf(bw, "| %s |", c)
		for _, s := range r.Series {
			if math.IsNaN(s.Values[i]) {
				fmt.Fprint(bw, " — |")
			} else {
				fmt.Fprintf(bw, " %.2f |", s.Values[i])
			}
		}
		fmt.Fprintln(bw)
	}
	return bw.Flush()
}

// chartColors are the series colors, cycled.
var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// WriteSVG draws the report as a line chart (tokens/s against the
// categories, one line per result file) in a self-contained SVG.
func (r *Report) WriteSVG(w io.Writer, title string) error {
	const W, H, left, right, top, bottom = 720, 420, 70, 170, 40, 50
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	ymax := 0.0
	for _, s := range r.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				ymax = math.Max(ymax, v)
			}
		}
	}
	ymax = niceCeil(ymax)
	xAt := func(i int) float64 {
		if len(r.X) == 1 {
			return left + pw/2
		}
		return left + pw*float64(i)/float64(len(r.X)-1)
	}
	yAt := func(v float64) float64 { return top + ph*(1-v/ymax) }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">%s</text>`+"\n", left, html.EscapeString(title))
	for k := 0; k <= 4; k++ {
		v := ymax * float64(k) / 4
		y := yAt(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, left+pw, y, y, left-6, y+4, trimZero(fmt.Sprintf("%.1f", v)))
	}
	for i, c := range r.X {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", xAt(i), top+ph+18, html.EscapeString(c))
	}
	unit := map[string]string{"engine": "tokens/s", "serve": "output tokens/s"}[r.Kind]
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", left+pw/2, H-8, r.XLabel)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, unit)
	for si, s := range r.Series {
		col := chartColors[si%len(chartColors)]
		var pts []string
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xAt(i), yAt(v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", xAt(i), yAt(v), col)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), col)
		ly := top + 10 + 18*si
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/><text x="%.1f" y="%d">%s</text>`+"\n",
			left+pw+14, ly-10, col, left+pw+32, ly, html.EscapeString(s.Label))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
