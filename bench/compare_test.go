package bench

import (
	"bytes"
	"encoding/csv"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFigureMedianAndSpread(t *testing.T) {
	f := Figure{Samples: []float64{90, 110, 100, 104}}
	if m := f.Median(); m != 102 {
		t.Errorf("median = %v, want 102", m)
	}
	if s := f.Spread(); math.Abs(s-100*10/102.0) > 1e-9 {
		t.Errorf("spread = %v, want half the range (10) over the median in percent", s)
	}
	if s := (Figure{Samples: []float64{5}}).Spread(); s != 0 {
		t.Errorf("spread of one sample = %v, want 0", s)
	}
}

func TestCompareFiguresNeedsThresholdAndNoise(t *testing.T) {
	old := []Figure{
		{Name: "tp", HigherBetter: true, Samples: []float64{100, 100, 100}},
		{Name: "noisy", HigherBetter: true, Samples: []float64{60, 100, 140}},
		{Name: "lat", Samples: []float64{10, 10}},
		{Name: "gone", HigherBetter: true, Samples: []float64{1}},
	}
	cur := []Figure{
		{Name: "tp", HigherBetter: true, Samples: []float64{90, 90, 90}},    // 10% slower, no noise
		{Name: "noisy", HigherBetter: true, Samples: []float64{90, 90, 90}}, // 10% slower, 40% noise
		{Name: "lat", Samples: []float64{10.2, 10.2}},                       // 2% slower: under 5%
	}
	ds := CompareFigures(old, cur, 5)
	got := map[string]Delta{}
	for _, d := range ds {
		got[d.Name] = d
	}
	if d := got["tp"]; !d.Regressed || math.Abs(d.Ratio-0.9) > 1e-9 || math.Abs(d.WorsePct-10) > 1e-9 {
		t.Errorf("tp: %+v, want regressed with ratio 0.9", d)
	}
	if d := got["noisy"]; d.Regressed {
		t.Errorf("noisy: regressed within a 40%% spread: %+v", d)
	}
	if d := got["lat"]; d.Regressed || math.Abs(d.WorsePct-2) > 1e-9 {
		t.Errorf("lat: %+v, want 2%% worse and not regressed", d)
	}
	if d := got["gone"]; !d.Missing || d.Regressed {
		t.Errorf("gone: %+v, want missing", d)
	}
	if n := Regressions(ds); n != 1 {
		t.Errorf("Regressions = %d, want 1", n)
	}
	var b bytes.Buffer
	if err := WriteComparison(&b, ds, 5); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| tp | 100.00 ± 0.0% (n=3) | 90.00 ± 0.0% (n=3) | 0.900 | -10.0% | ±0.0% | REGRESSED (> 5.0%) |",
		"worse, within noise", "only in one result"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMergeRunsKeepsEveryRun(t *testing.T) {
	run := func(tp float64) *ServeResult {
		return &ServeResult{Model: "m", Levels: []ServeLevel{{Concurrency: 4, OutputThroughput: tp, TTFT: Latency{P50: 1}}}}
	}
	res, err := MergeRuns([]*ServeResult{run(10), run(30), run(20)})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Figures()
	if len(f) != 4 || f[0].Name != "c=4 output tok/s" || f[0].Median() != 20 || len(f[0].Samples) != 3 {
		t.Fatalf("figures %+v", f)
	}
	bad := run(1)
	bad.Levels[0].Concurrency = 8
	if _, err := MergeRuns([]*ServeResult{run(1), bad}); err == nil {
		t.Fatal("MergeRuns accepted runs with different levels")
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	e := &EngineResult{Model: "llama 3M Q8_0", Backend: "cpu (avx2)", Threads: 1,
		Tests: []TestResult{{Name: "pp128", Kind: "prefill", Tokens: 128, Seqs: 1, Mean: 10.5, Median: 10, SpreadPct: 2}}}
	if err := e.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][3] != "pp128" || rows[1][7] != "10.5" || rows[1][9] != "10" {
		t.Fatalf("engine CSV %q, %v", rows, err)
	}
	b.Reset()
	s := &ServeResult{Model: "m", Workload: "random", Levels: []ServeLevel{{Concurrency: 16, OutputThroughput: 250.5, TPOT: Latency{P50: 3}}}}
	if err := s.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err = csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][2] != "16" || rows[1][7] != "250.5" || rows[1][11] != "3" {
		t.Fatalf("serve CSV %q, %v", rows, err)
	}
}

func TestReportTableAndChart(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r interface{ WriteJSON(w io.Writer) error }) string {
		p := filepath.Join(dir, name)
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("sluice.json", &ServeResult{Levels: []ServeLevel{{Concurrency: 1, OutputThroughput: 50}, {Concurrency: 4, OutputThroughput: 150}}})
	b := write("vllm.json", &ServeResult{Levels: []ServeLevel{{Concurrency: 4, OutputThroughput: 120}}})
	rep, err := LoadReport([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| concurrency | sluice (output tok/s) | vllm (output tok/s) |", "| 1 | 50.00 | — |", "| 4 | 150.00 | 120.00 |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, md.String())
		}
	}
	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg, "a <title>"); err != nil {
		t.Fatal(err)
	}
	s := svg.String()
	if !strings.HasPrefix(s, "<svg") || strings.Count(s, "<polyline") != 2 || !strings.Contains(s, "a &lt;title&gt;") || !strings.Contains(s, ">vllm<") {
		t.Errorf("SVG:\n%s", s)
	}
	e := write("engine.json", &EngineResult{Tests: []TestResult{{Name: "pp8", TokensPerSec: []float64{1, 3}}}})
	if _, err := LoadReport([]string{a, e}); err == nil || !strings.Contains(err.Error(), "one kind") {
		t.Errorf("mixing kinds: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"x":1}`), 0o644)
	if _, err := LoadReport([]string{bad}); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("non-result file: %v", err)
	}
}
