package perf

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Baseline is bench/baseline.json: the instruction counts the gate compares
// with, and how they were measured. Counts are keyed "workload/phase".
type Baseline struct {
	Schema int `json:"schema"` // 1
	// Tool is "callgrind"; Unit is "instructions".
	Tool string `json:"tool"`
	Unit string `json:"unit"`
	// KernelPath is the CPU kernel path the counts were measured on; the
	// gate runs the same one or refuses.
	KernelPath string `json:"kernel_path"`
	// GoVersion is the toolchain that built the measured binary (a new
	// compiler can move the counts; update the baselines with it).
	GoVersion string            `json:"go_version"`
	Counts    map[string]uint64 `json:"instructions"`
}

// BaselineSchema is the schema version Baseline files carry.
const BaselineSchema = 1

// ReadBaseline reads and checks a baseline file.
func ReadBaseline(path string) (*Baseline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("perf: %w (create it with 'sluice bench perfcheck --update')", err)
	}
	var bl Baseline
	if err := json.Unmarshal(b, &bl); err != nil {
		return nil, fmt.Errorf("perf: %s: %w", path, err)
	}
	switch {
	case bl.Schema != BaselineSchema:
		return nil, fmt.Errorf("perf: %s: schema %d, want %d", path, bl.Schema, BaselineSchema)
	case bl.Tool != "callgrind" || bl.Unit != "instructions":
		return nil, fmt.Errorf("perf: %s: measured with %q in %q; this gate counts instructions with callgrind", path, bl.Tool, bl.Unit)
	case bl.KernelPath == "":
		return nil, fmt.Errorf("perf: %s: no kernel_path", path)
	case len(bl.Counts) == 0:
		return nil, fmt.Errorf("perf: %s: no instruction counts", path)
	}
	return &bl, nil
}

// WriteFile writes the baseline as indented JSON (keys sorted, so updates
// diff line by line).
func (b *Baseline) WriteFile(path string) error {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// Status of one row of a comparison.
const (
	StatusOK        = "ok"
	StatusRegressed = "REGRESSED"
	StatusImproved  = "improved"
	StatusNew       = "NO BASELINE"
	StatusMissing   = "NOT MEASURED"
)

// Row is one measurement compared with its baseline.
type Row struct {
	Name     string
	Base     uint64 // 0 when there is no baseline
	Current  uint64 // 0 when not measured
	DeltaPct float64
	Status   string
}

// Failed reports whether the row fails the gate.
func (r Row) Failed() bool {
	return r.Status == StatusRegressed || r.Status == StatusNew || r.Status == StatusMissing
}

// Compare compares current counts with the baseline's. A count more than
// maxPct percent above its baseline regresses; one more than maxPct below
// it is reported as improved (update the baselines to keep the gain). A
// measurement without a baseline, or a baseline of a selected workload that
// was not measured, fails too. only, when non-empty, restricts the
// baseline rows to those workloads. Rows are sorted by name.
func Compare(base map[string]uint64, cur map[string]uint64, maxPct float64, only []string) []Row {
	selected := func(name string) bool {
		if len(only) == 0 {
			return true
		}
		w, _, _ := strings.Cut(name, "/")
		for _, o := range only {
			if o == w {
				return true
			}
		}
		return false
	}
	var rows []Row
	for name, b := range base {
		if !selected(name) {
			continue
		}
		c, ok := cur[name]
		if !ok {
			rows = append(rows, Row{Name: name, Base: b, Status: StatusMissing})
			continue
		}
		r := Row{Name: name, Base: b, Current: c, Status: StatusOK}
		if b > 0 {
			r.DeltaPct = 100 * (float64(c) - float64(b)) / float64(b)
		}
		switch {
		case r.DeltaPct > maxPct:
			r.Status = StatusRegressed
		case r.DeltaPct < -maxPct:
			r.Status = StatusImproved
		}
		rows = append(rows, r)
	}
	for name, c := range cur {
		if _, ok := base[name]; !ok {
			rows = append(rows, Row{Name: name, Current: c, Status: StatusNew})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows
}

// AnyFailed reports whether any row fails the gate.
func AnyFailed(rows []Row) bool {
	for _, r := range rows {
		if r.Failed() {
			return true
		}
	}
	return false
}

// WriteTable writes the rows as a Markdown table.
func WriteTable(w io.Writer, rows []Row) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "| workload/phase | baseline | current | change | status |")
	fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | --- |")
	num := func(n uint64) string {
		if n == 0 {
			return "—"
		}
		return groupDigits(n)
	}
	for _, r := range rows {
		change := "—"
		if r.Base > 0 && r.Current > 0 {
			change = fmt.Sprintf("%+.2f%%", r.DeltaPct)
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s |\n", r.Name, num(r.Base), num(r.Current), change, r.Status)
	}
	return bw.Flush()
}

// groupDigits writes n with thousands separators: 1,234,567.
func groupDigits(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
