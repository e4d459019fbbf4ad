package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
)

func ff(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// WriteCSV writes one row per test: model, backend, threads, test, kind,
// tokens, seqs, mean, stddev, median and spread_pct (tokens/s).
func (r *EngineResult) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"model", "backend", "threads", "test", "kind", "tokens", "seqs", "mean", "stddev", "median", "spread_pct"})
	for _, t := range r.Tests {
		cw.Write([]string{r.Model, r.Backend, fmt.Sprint(r.Threads), t.Name, t.Kind, fmt.Sprint(t.Tokens), fmt.Sprint(t.Seqs),
			ff(t.Mean), ff(t.Stddev), ff(t.Median), ff(t.SpreadPct)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteCSV writes one row per concurrency level: counts, throughputs
// (per second) and latency percentiles (milliseconds).
func (r *ServeResult) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"model", "workload", "concurrency", "requests", "completed", "failed",
		"request_throughput", "output_throughput", "total_token_throughput",
		"ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms", "e2e_p50_ms", "e2e_p99_ms"})
	for _, l := range r.Levels {
		cw.Write([]string{r.Model, r.Workload, fmt.Sprint(l.Concurrency), fmt.Sprint(l.Requests), fmt.Sprint(l.Completed), fmt.Sprint(l.Failed),
			ff(l.RequestThroughput), ff(l.OutputThroughput), ff(l.TotalThroughput),
			ff(l.TTFT.P50), ff(l.TTFT.P99), ff(l.TPOT.P50), ff(l.TPOT.P99), ff(l.E2E.P50), ff(l.E2E.P99)})
	}
	cw.Flush()
	return cw.Error()
}
