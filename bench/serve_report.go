package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown writes one table row per concurrency level.
func (r *ServeResult) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	desc := fmt.Sprintf("%d in / %d out", r.InputLen, r.OutputLen)
	switch r.Workload {
	case WorkloadSharedPrefix:
		desc = fmt.Sprintf("%d groups × %d questions, %d-token prefix + %d in / %d out", r.Groups, r.Questions, r.PrefixLen, r.InputLen, r.OutputLen)
	case WorkloadRepetitive:
		desc = fmt.Sprintf("%d in (a %d-token unit repeated) / %d out", r.InputLen, r.RepeatLen, r.OutputLen)
	}
	if r.Temperature > 0 {
		desc += fmt.Sprintf(", temperature %g", r.Temperature)
	}
	if r.NoSpeculation {
		desc += `, "speculative": false`
	}
	fmt.Fprintf(bw, "%s %s at %s: %s, %s\n\n", r.Endpoint, r.Model, r.URL, r.Workload, desc)
	header := []string{"conc", "reqs", "failed", "time s", "req/s", "out tok/s", "total tok/s", "cached %",
		"TTFT p50 ms", "TTFT p90 ms", "TTFT p99 ms", "TPOT p50 ms", "TPOT p99 ms", "e2e p50 ms", "e2e p99 ms"}
	// Speculation columns when the server drafted anything.
	spec := false
	for _, l := range r.Levels {
		spec = spec || l.SpecDraftTokens > 0
	}
	if spec {
		header = append(header, "drafted", "accepted", "accept %")
	}
	rows := make([][]string, 0, len(r.Levels))
	f1 := func(x float64) string {
		if x < 10 {
			return fmt.Sprintf("%.2f", x)
		}
		return fmt.Sprintf("%.1f", x)
	}
	for _, l := range r.Levels {
		cached := 0.0
		if l.InputTokens > 0 {
			cached = 100 * float64(l.CachedTokens) / float64(l.InputTokens)
		}
		rows = append(rows, []string{
			fmt.Sprint(l.Concurrency), fmt.Sprint(l.Requests), fmt.Sprint(l.Failed), fmt.Sprintf("%.2f", l.Duration),
			fmt.Sprintf("%.2f", l.RequestThroughput), f1(l.OutputThroughput), f1(l.TotalThroughput), f1(cached),
			f1(l.TTFT.P50), f1(l.TTFT.P90), f1(l.TTFT.P99), f1(l.TPOT.P50), f1(l.TPOT.P99), f1(l.E2E.P50), f1(l.E2E.P99),
		})
		if spec {
			rows[len(rows)-1] = append(rows[len(rows)-1], fmt.Sprint(l.SpecDraftTokens), fmt.Sprint(l.SpecAcceptedTokens), f1(100*l.SpecAcceptanceRate))
		}
	}
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
		for _, row := range rows {
			width[i] = max(width[i], len(row[i]))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			fmt.Fprintf(bw, "| %*s ", width[i], c)
		}
		fmt.Fprintln(bw, "|")
	}
	line(header)
	for i := range header {
		fmt.Fprintf(bw, "| %s: ", strings.Repeat("-", width[i]-1))
	}
	fmt.Fprintln(bw, "|")
	for _, row := range rows {
		line(row)
	}
	for _, l := range r.Levels {
		if l.ShortOutputs > 0 {
			fmt.Fprintf(bw, "\nconcurrency %d: %d requests did not generate exactly %d tokens (does the server honor ignore_eos?)\n", l.Concurrency, l.ShortOutputs, r.OutputLen)
		}
		for _, e := range l.Errors {
			fmt.Fprintf(bw, "\nconcurrency %d: error: %s\n", l.Concurrency, e)
		}
	}
	return bw.Flush()
}

// WriteJSON writes the result as indented JSON.
func (r *ServeResult) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
