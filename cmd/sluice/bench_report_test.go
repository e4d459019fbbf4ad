package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/bench"
	"github.com/sluice-llm/sluice/internal/testenv"
)

func TestBenchOutputFlagErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.json")
	engineJSON := filepath.Join(t.TempDir(), "engine.json")
	if err := os.WriteFile(engineJSON, []byte(`{"tests":[{"test":"pp8","tokens_per_sec":[1]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "engine", "-m", "x.gguf", "--json", "--csv"}, "exclude each other"},
		{[]string{"bench", "engine", "-m", "x.gguf", "--compare", "x.json", "--max-regression", "-1"}, "--max-regression must be"},
		{[]string{"bench", "engine", "-m", "x.gguf", "--compare", missing}, "--compare"},
		{[]string{"bench", "serve", "--repeat", "0"}, "--repeat must be ≥ 1"},
		{[]string{"bench", "serve", "--compare", engineJSON}, "no bench serve figures"},
		{[]string{"bench", "serve", "--compare", missing}, "--compare"},
		{[]string{"bench", "report"}, "at least one result file"},
		{[]string{"bench", "report", missing}, "no such file"},
		{[]string{"bench", "perfcheck", "--only", "nope"}, "unknown workload"},
		{[]string{"bench", "perfcheck", "--kernels", "avx2"}, "only applies with --update"},
		{[]string{"bench", "perfcheck", "--max-increase", "-3"}, "--max-increase must be"},
		{[]string{"bench", "perf-run"}, "usage: sluice bench perf-run"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		if code := runMain(c.args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", c.args, code, errb.String())
		}
		if !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: stderr %q lacks %q", c.args, errb.String(), c.want)
		}
	}
}

// TestBenchEngineCompare runs bench engine against fabricated earlier
// results: far faster ones must fail with a regression, far slower ones
// pass; the CSV output has a row per test.
func TestBenchEngineCompare(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	dir := t.TempDir()
	old := func(name string, tps float64) string {
		p := filepath.Join(dir, name)
		body := `{"tests":[{"test":"pp8","tokens_per_sec":[` + ftoa(tps) + `,` + ftoa(tps) + `]},{"test":"tg4","tokens_per_sec":[` + ftoa(tps) + `]}]}`
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"bench", "engine", "-m", path, "-p", "8", "-n", "4", "-r", "2", "-t", "1", "-q"}
	var out, errb bytes.Buffer
	if code := runMain(append(args, "--compare", old("fast.json", 1e12)), &out, &errb); code != 1 {
		t.Fatalf("against a far faster result: exit %d, want 1\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "| pp8 t/s |") || !strings.Contains(out.String(), "REGRESSED") || !strings.Contains(errb.String(), "2 figure(s) regressed") {
		t.Errorf("comparison:\n%s\nstderr %q", out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := runMain(append(args, "--csv", "--compare", old("slow.json", 1e-6)), &out, &errb); code != 0 {
		t.Fatalf("against a far slower result: exit %d\n%s", code, errb.String())
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "model,backend,threads,test") {
		t.Errorf("CSV:\n%s", out.String())
	}
	if !strings.Contains(errb.String(), "better") {
		t.Errorf("with --csv the comparison goes to stderr: %q", errb.String())
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// TestBenchServeRepeatCompareReport runs bench serve twice per level
// (--repeat), compares with a fabricated far faster result (a regression:
// exit 1), and renders the result with bench report as a table and an SVG.
func TestBenchServeRepeatCompareReport(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	sv := startServe(t, "-m", path, "--port", "0", "--threads", "1", "--kv-memory", "8MiB")
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"bench", "serve", "--url", sv.base, "--concurrency", "1,2", "--requests", "2", "--input-len", "8", "--output-len", "2", "-q"}
	if code := runMain(append(args, "--repeat", "2", "--json"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res bench.ServeResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Levels) != 2 || len(res.Levels[0].Runs) != 2 || len(res.Levels[1].Runs) != 2 || res.Levels[1].Runs[1].OutputThroughput <= 0 {
		t.Fatalf("levels %+v", res.Levels)
	}
	cur := filepath.Join(dir, "sluice.json")
	if err := os.WriteFile(cur, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fast := filepath.Join(dir, "fast.json")
	if err := os.WriteFile(fast, []byte(`{"levels":[{"concurrency":1,"output_throughput":1e12},{"concurrency":2,"output_throughput":1e12}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := runMain(append(args, "--compare", fast), &out, &errb); code != 1 {
		t.Fatalf("against a far faster result: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "| c=2 output tok/s |") || !strings.Contains(out.String(), "REGRESSED") {
		t.Errorf("comparison:\n%s", out.String())
	}
	out.Reset()
	svg := filepath.Join(dir, "chart.svg")
	if code := runMain([]string{"bench", "report", "--svg", svg, cur, fast}, &out, &errb); code != 0 {
		t.Fatalf("report: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "| concurrency | sluice (output tok/s) | fast (output tok/s) |") {
		t.Errorf("report table:\n%s", out.String())
	}
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<polyline") {
		t.Errorf("SVG: %v\n%s", err, b)
	}
}

// TestPerfcheckRefusesUnavailableKernelPath: baselines measured on a path
// this CPU cannot run fail the gate before anything is measured.
func TestPerfcheckRefusesUnavailableKernelPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "baseline.json")
	body := `{"schema":1,"tool":"callgrind","unit":"instructions","kernel_path":"neon","instructions":{"tokenizer/encode":1}}`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runMain([]string{"bench", "perfcheck", "--baseline", p}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), `kernel path "neon", which this CPU cannot run`) {
		t.Errorf("stderr %q", errb.String())
	}
}
