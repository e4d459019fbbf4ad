package perf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareFlagsRegressionsPastThreshold(t *testing.T) {
	base := map[string]uint64{"a/pp": 1000, "a/tg": 1000, "b/x": 1000, "c/gone": 50}
	cur := map[string]uint64{"a/pp": 1030, "a/tg": 1031, "b/x": 900, "d/new": 7}
	rows := Compare(base, cur, 3, nil)
	want := map[string]string{
		"a/pp": StatusOK, "a/tg": StatusRegressed, "b/x": StatusImproved,
		"c/gone": StatusMissing, "d/new": StatusNew,
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		if r.Status != want[r.Name] {
			t.Errorf("%s: status %q, want %q", r.Name, r.Status, want[r.Name])
		}
	}
	if !AnyFailed(rows) {
		t.Error("AnyFailed is false with a regression in the rows")
	}
	if AnyFailed(Compare(base, map[string]uint64{"a/pp": 1000, "a/tg": 970, "b/x": 1029, "c/gone": 50}, 3, nil)) {
		t.Error("counts within 3% failed the gate")
	}
}

func TestCompareOnlyRestrictsBaselineRows(t *testing.T) {
	base := map[string]uint64{"a/pp": 1000, "b/x": 1000}
	rows := Compare(base, map[string]uint64{"a/pp": 1000}, 3, []string{"a"})
	if len(rows) != 1 || rows[0].Name != "a/pp" || rows[0].Failed() {
		t.Fatalf("rows = %+v, want one passing a/pp row (b not selected)", rows)
	}
}

func TestWriteTableShowsWhatMoved(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, Compare(map[string]uint64{"a/pp": 1000000}, map[string]uint64{"a/pp": 1100000}, 3, nil)); err != nil {
		t.Fatal(err)
	}
	want := "| a/pp | 1,000,000 | 1,100,000 | +10.00% | REGRESSED |"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("table:\n%s\nwant the row %q", b.String(), want)
	}
}

func TestReadBaselineRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"schema": `{"schema":2,"tool":"callgrind","unit":"instructions","kernel_path":"avx2","instructions":{"a/b":1}}`,
		"tool":   `{"schema":1,"tool":"perf","unit":"instructions","kernel_path":"avx2","instructions":{"a/b":1}}`,
		"path":   `{"schema":1,"tool":"callgrind","unit":"instructions","instructions":{"a/b":1}}`,
		"empty":  `{"schema":1,"tool":"callgrind","unit":"instructions","kernel_path":"avx2"}`,
		"json":   `{"schema":`,
	} {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadBaseline(p); err == nil {
			t.Errorf("%s: ReadBaseline accepted %s", name, body)
		}
	}
	good := &Baseline{Schema: BaselineSchema, Tool: "callgrind", Unit: "instructions", KernelPath: "avx2", Counts: map[string]uint64{"a/b": 5}}
	p := filepath.Join(dir, "good.json")
	if err := good.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBaseline(p)
	if err != nil || got.Counts["a/b"] != 5 || got.KernelPath != "avx2" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestReadTotalParsesCallgrindDump(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cg.out.1")
	dump := "# callgrind format\nversion: 1\nevents: Ir\nfn=main\n1 5\nsummary: 123456\ntotals: 123456\n"
	if err := os.WriteFile(p, []byte(dump), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := readTotal(p)
	if err != nil || n != 123456 {
		t.Fatalf("readTotal = %d, %v; want 123456", n, err)
	}
	if err := os.WriteFile(p, []byte("events: Ir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readTotal(p); err == nil {
		t.Fatal("readTotal accepted a dump without totals")
	}
}

func TestWorkloadsAreKnownAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, w := range Workloads() {
		if seen[w.Name] || strings.Contains(w.Name, "/") {
			t.Errorf("workload name %q repeated or contains '/'", w.Name)
		}
		seen[w.Name] = true
	}
	if _, err := LookupWorkload("nope"); err == nil || !strings.Contains(err.Error(), "tiny-llama-Q4_0") {
		t.Fatalf("LookupWorkload(nope) = %v; want an error listing the workloads", err)
	}
}
