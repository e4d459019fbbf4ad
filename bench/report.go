package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// WriteMarkdown writes the result as llama-bench's markdown table: one row
// per test with the model, its size and parameter count, the backend, the
// thread count, the test label and the throughput as mean ± stddev.
func (r *EngineResult) WriteMarkdown(w io.Writer) error {
	header := []string{"model", "size", "params", "backend", "threads", "test", "t/s"}
	rows := [][]string{}
	for _, t := range r.Tests {
		rows = append(rows, []string{
			r.Model, humanSize(r.Size), humanParamsLong(r.Params), r.Backend, fmt.Sprint(r.Threads),
			t.Name, fmt.Sprintf("%.2f ± %.2f", t.Mean, t.Stddev),
		})
	}
	// Numbers are right-aligned, text left-aligned, as llama-bench does.
	right := []bool{false, true, true, false, true, true, true}
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], runeLen(c))
		}
	}
	bw := bufio.NewWriter(w)
	line := func(cells []string) {
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-runeLen(c))
			if right[i] {
				fmt.Fprintf(bw, "| %s%s ", pad, c)
			} else {
				fmt.Fprintf(bw, "| %s%s ", c, pad)
			}
		}
		fmt.Fprintln(bw, "|")
	}
	line(header)
	for i := range header {
		d := strings.Repeat("-", width[i])
		if right[i] {
			fmt.Fprintf(bw, "| %s: ", d[1:])
		} else {
			fmt.Fprintf(bw, "| %s ", d)
		}
	}
	fmt.Fprintln(bw, "|")
	for _, row := range rows {
		line(row)
	}
	return bw.Flush()
}

// WriteJSON writes the result as indented JSON.
func (r *EngineResult) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func runeLen(s string) int { return len([]rune(s)) }

// humanSize writes a byte count as llama-bench does ("729.75 MiB").
func humanSize(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
}

// humanParamsLong writes a parameter count as llama-bench does ("1.24 B").
func humanParamsLong(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	default:
		return fmt.Sprintf("%.2f K", float64(n)/1e3)
	}
}

// cpuName is the CPU's model name from /proc/cpuinfo ("" elsewhere).
func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
