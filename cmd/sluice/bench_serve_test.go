package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/bench"
	"github.com/sluice-llm/sluice/internal/testenv"
)

func TestBenchServeFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--concurrency", "1,x"}, "not a positive integer"},
		{[]string{"--concurrency", ""}, "at least one level"},
		{[]string{"--input-len", "0"}, "must be ≥ 1"},
		{[]string{"--requests", "-1"}, "must be ≥ 0"},
		{[]string{"--workload", "zipf"}, `--workload "zipf"`},
		{[]string{"--workload", "shared-prefix", "--groups", "0"}, "--groups"},
		{[]string{"--workload", "repetitive", "--repeat-len", "-2"}, "--repeat-len"},
		{[]string{"--temperature", "-0.5"}, "--temperature"},
		{[]string{"--temperature", "NaN"}, "--temperature"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"bench", "serve"}, c.args...)
		if code := runMain(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", args, code, errb.String(), c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := runMain([]string{"bench", "serve", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "Usage: sluice bench serve") {
		t.Errorf("-h: exit %d, stderr %q", code, errb.String())
	}
	if code := runMain([]string{"bench"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "serve    load generator") {
		t.Errorf("bench usage does not list serve: %q", errb.String())
	}
}

// TestBenchServeRun runs `sluice bench serve` against `sluice serve` on
// stories260K, both in-process on loopback.
func TestBenchServeRun(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	sv := startServe(t, "-m", path, "--port", "0", "--threads", "1", "--kv-memory", "8MiB")
	var out, errb bytes.Buffer
	args := []string{"bench", "serve", "--url", sv.base, "--concurrency", "1,2", "--requests", "3", "--input-len", "16", "--output-len", "4", "--json"}
	if code := runMain(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res bench.ServeResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.Model != "stories260K" || len(res.Levels) != 2 || strings.Count(errb.String(), "requests in") != 2 {
		t.Fatalf("result %+v\nstderr %s", res, errb.String())
	}
	for i, l := range res.Levels {
		if l.Concurrency != i+1 || l.Completed != 3 || l.OutputTokens != 12 || l.InputTokens != 48 || l.TTFT.P50 <= 0 || l.OutputThroughput <= 0 {
			t.Errorf("level %+v", l)
		}
	}
	out.Reset()
	args = []string{"bench", "serve", "--url", sv.base, "--workload", "shared-prefix", "--groups", "2", "--prefix-len", "32", "--questions", "2",
		"--input-len", "8", "--output-len", "2", "-q"}
	if code := runMain(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "shared-prefix, 2 groups × 2 questions, 32-token prefix + 8 in / 2 out") ||
		!strings.Contains(out.String(), "|    1 |    4 |      0 |") {
		t.Errorf("table:\n%s", out.String())
	}
	// No speculation on this server: zero counts.
	for _, l := range res.Levels {
		if l.SpecDraftTokens != 0 || l.SpecAcceptedTokens != 0 {
			t.Errorf("level %+v", l)
		}
	}
}

// TestBenchServeSpec runs the repetitive workload against `sluice serve
// --spec ngram`: each level reports draft and accepted tokens.
func TestBenchServeSpec(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	sv := startServe(t, "-m", path, "--port", "0", "--threads", "1", "--kv-memory", "8MiB", "--spec", "ngram")
	var out, errb bytes.Buffer
	args := []string{"bench", "serve", "--url", sv.base, "--workload", "repetitive", "--concurrency", "1,2", "--requests", "2",
		"--input-len", "32", "--repeat-len", "8", "--output-len", "16", "--temperature", "0", "--seed", "7", "--json", "-q"}
	if code := runMain(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res bench.ServeResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !res.SpecMetrics || res.Workload != "repetitive" || res.RepeatLen != 8 || len(res.Levels) != 2 {
		t.Fatalf("result %+v", res)
	}
	// Whether the n-gram proposer finds a match depends on the prompts and
	// on what the model generates; over both levels it drafts something.
	var drafted uint64
	for _, l := range res.Levels {
		if l.Completed != 2 || l.OutputTokens != 32 || l.SpecAcceptedTokens > l.SpecDraftTokens {
			t.Errorf("level %+v", l)
		}
		drafted += l.SpecDraftTokens
	}
	if drafted == 0 {
		t.Errorf("no tokens drafted in any level: %+v", res.Levels)
	}
	out.Reset()
	args = []string{"bench", "serve", "--url", sv.base, "--workload", "repetitive", "--requests", "2", "--input-len", "32",
		"--output-len", "8", "--no-spec", "-q"}
	if code := runMain(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `repetitive, 32 in (a 8-token unit repeated) / 8 out, "speculative": false`) || strings.Contains(out.String(), "accept %") {
		t.Errorf("table:\n%s", out.String())
	}
}
