package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// result is one request's measurements.
type result struct {
	err                  error
	ttft, e2e            time.Duration
	prompt, out, cached  int
	usageSeen, firstSeen bool
}

// level runs prompts with conc requests in flight.
func (c *serveClient) level(ctx context.Context, conc int, prompts []prompt) (ServeLevel, error) {
	results := make([]result, len(prompts))
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(conc, len(prompts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = c.do(ctx, prompts[i], c.o.OutputLen)
			}
		}()
	}
feed:
	for i := range prompts {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	dur := time.Since(start)
	if err := ctx.Err(); err != nil {
		return ServeLevel{}, err
	}
	return summarize(conc, results, dur, c.o.OutputLen)
}

func summarize(conc int, results []result, dur time.Duration, outputLen int) (ServeLevel, error) {
	lv := ServeLevel{Concurrency: conc, Requests: len(results), Duration: dur.Seconds()}
	var ttft, tpot, e2e []float64
	seen := map[string]bool{}
	for _, r := range results {
		if r.err != nil {
			lv.Failed++
			if msg := r.err.Error(); !seen[msg] && len(lv.Errors) < maxErrors {
				seen[msg] = true
				lv.Errors = append(lv.Errors, msg)
			}
			continue
		}
		lv.Completed++
		lv.InputTokens += r.prompt
		lv.OutputTokens += r.out
		lv.CachedTokens += r.cached
		if r.out != outputLen {
			lv.ShortOutputs++
		}
		ttft = append(ttft, ms(r.ttft))
		e2e = append(e2e, ms(r.e2e))
		if r.out > 1 {
			tpot = append(tpot, ms(r.e2e-r.ttft)/float64(r.out-1))
		}
	}
	if lv.Completed == 0 {
		return lv, fmt.Errorf("bench: every request at concurrency %d failed: %s", conc, strings.Join(lv.Errors, "; "))
	}
	if s := dur.Seconds(); s > 0 {
		lv.RequestThroughput = float64(lv.Completed) / s
		lv.OutputThroughput = float64(lv.OutputTokens) / s
		lv.TotalThroughput = float64(lv.InputTokens+lv.OutputTokens) / s
	}
	lv.TTFT, lv.TPOT, lv.E2E = summary(ttft), summary(tpot), summary(e2e)
	return lv, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summary is the mean and percentiles of xs (linear interpolation between
// closest ranks, as numpy.percentile).
func summary(xs []float64) Latency {
	if len(xs) == 0 {
		return Latency{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Latency{Mean: sum / float64(len(s)), P50: percentile(s, 50), P90: percentile(s, 90), P99: percentile(s, 99)}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(lo)
	return sorted[lo] + f*(sorted[lo+1]-sorted[lo])
}
