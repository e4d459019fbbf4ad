package bench

import (
	"bufio"
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// specCounts are the speculative decoding counters of vLLM's metrics.
type specCounts struct {
	drafts, draftTokens, accepted uint64
}

// The counters' names in the Prometheus text format, as vLLM and sluice
// export them.
const (
	metricSpecDrafts      = "vllm:spec_decode_num_drafts_total"
	metricSpecDraftTokens = "vllm:spec_decode_num_draft_tokens_total"
	metricSpecAccepted    = "vllm:spec_decode_num_accepted_tokens_total"
)

// specCounters reads the speculative decoding counters of the model from
// the server's /metrics; ok is false when the server has no /metrics or
// exports none of them.
func (c *serveClient) specCounters(ctx context.Context) (n specCounts, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.o.URL+"/metrics", nil)
	if err != nil {
		return n, false
	}
	resp, err := c.o.Client.Do(req)
	if err != nil {
		return n, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return n, false
	}
	return parseSpecCounters(io.LimitReader(resp.Body, 64<<20), c.model)
}

// parseSpecCounters sums the speculative decoding counters of the
// Prometheus text exposition in r whose model_name label is model (or
// that have no such label).
func parseSpecCounters(r io.Reader, model string) (n specCounts, ok bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ \t")
		if end < 0 {
			continue
		}
		var dst *uint64
		switch line[:end] {
		case metricSpecDrafts:
			dst = &n.drafts
		case metricSpecDraftTokens:
			dst = &n.draftTokens
		case metricSpecAccepted:
			dst = &n.accepted
		default:
			continue
		}
		rest := line[end:]
		if strings.HasPrefix(rest, "{") {
			rb := strings.LastIndexByte(rest, '}')
			if rb < 0 {
				continue
			}
			if name, found := labelValue(rest[1:rb], "model_name"); found && name != model {
				continue
			}
			rest = rest[rb+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		*dst += uint64(math.Round(v))
		ok = true
	}
	return n, ok
}

// labelValue finds a label's value in a Prometheus label set
// (name="value",...; values escape \\, \" and \n).
func labelValue(set, name string) (string, bool) {
	for set != "" {
		set = strings.TrimLeft(set, " ,")
		eq := strings.IndexByte(set, '=')
		if eq < 0 {
			return "", false
		}
		key := strings.TrimSpace(set[:eq])
		set = strings.TrimLeft(set[eq+1:], " ")
		if !strings.HasPrefix(set, `"`) {
			return "", false
		}
		var val strings.Builder
		i := 1
		for ; i < len(set) && set[i] != '"'; i++ {
			if set[i] == '\\' && i+1 < len(set) {
				i++
				if set[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(set[i])
		}
		if key == name {
			return val.String(), true
		}
		set = set[min(i+1, len(set)):]
	}
	return "", false
}

// setSpec sets the level's speculative decoding numbers from the counters
// before and after it (a counter that went down, a server restarted,
// counts from zero).
func (l *ServeLevel) setSpec(before, after specCounts) {
	diff := func(a, b uint64) uint64 {
		if b < a {
			return b
		}
		return b - a
	}
	l.SpecDrafts = diff(before.drafts, after.drafts)
	l.SpecDraftTokens = diff(before.draftTokens, after.draftTokens)
	l.SpecAcceptedTokens = diff(before.accepted, after.accepted)
	if l.SpecDraftTokens > 0 {
		l.SpecAcceptanceRate = float64(l.SpecAcceptedTokens) / float64(l.SpecDraftTokens)
	}
}
