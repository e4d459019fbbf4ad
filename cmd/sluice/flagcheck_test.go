package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/internal/testenv"
)

// TestServeFlagValues: absurd flag values are usage errors naming the flag,
// found at start before anything is loaded.
func TestServeFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-m", ""}, nil, "-m is empty"},
		{[]string{"-m="}, nil, "-m is empty"},
		{[]string{"--shutdown-timeout", "-1s"}, nil, "--shutdown-timeout"},
		{nil, map[string]string{"SLUICE_SHUTDOWN_TIMEOUT": "-5s"}, "--shutdown-timeout"},
		{[]string{"--kv-memory", "0"}, nil, "--kv-memory"},
		{[]string{"--kv-memory-fraction", "0"}, nil, "--kv-memory-fraction"},
		{[]string{"--kv-memory-fraction", "1.5"}, nil, "--kv-memory-fraction"},
		{[]string{"--kv-memory-fraction", "NaN"}, nil, "--kv-memory-fraction"},
		{[]string{"--kv-type", "q8"}, nil, "--kv-type"},
		{[]string{"--block-size", "0"}, nil, "--block-size"},
		{[]string{"--block-size", "4096"}, nil, "--block-size"},
		{[]string{"--max-num-seqs", "-3"}, nil, "--max-num-seqs"},
		{[]string{"--max-num-seqs", "0"}, nil, "--max-num-seqs"},
		{[]string{"--max-num-batched-tokens", "0"}, nil, "--max-num-batched-tokens"},
		{[]string{"--max-num-batched-tokens", "1000000000"}, nil, "--max-num-batched-tokens"},
		{[]string{"--max-queue", "-1"}, nil, "--max-queue"},
		{[]string{"--threads", "-1"}, nil, "--threads"},
		{[]string{"--threads", "5000", "--threads-force"}, nil, "--threads"},
		{[]string{"--threads", "5000"}, map[string]string{"SLUICE_THREADS_FORCE": "1"}, "--threads"},
		{[]string{"--ctx", "-1"}, nil, "--ctx"},
		{[]string{"--spec-tokens", "-1"}, nil, "--spec-tokens"},
		{[]string{"--spec", "magic"}, nil, "--spec"},
		{[]string{"--max-body", "0"}, nil, "--max-body"},
		{[]string{"--backend", ""}, nil, "--backend"},
	} {
		_, err := parseServe(tc.args, envOf(tc.env), io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: error %v, want a usage error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
	// Still accepted: no -m (the dummy), SLUICE_MODEL set empty (unset),
	// more threads than CPUs (capped at start), a zero shutdown timeout.
	for _, args := range [][]string{nil, {"--threads", "5000"}, {"--shutdown-timeout", "0s"}} {
		o, err := parseServe(args, envOf(map[string]string{"SLUICE_MODEL": ""}), io.Discard)
		if err != nil {
			t.Errorf("%q: %v", args, err)
		} else if !o.dummyDefault {
			t.Errorf("%q: not serving the dummy model", args)
		}
	}
	o, err := parseServe([]string{"-m", "a", "--threads-force"}, envOf(nil), io.Discard)
	if err != nil || !o.threadsForce || !o.engineConfig("a", "a.gguf").ThreadsForce {
		t.Errorf("--threads-force: %v %+v", err, o)
	}
	if o, _ := parseServe(nil, envOf(map[string]string{"SLUICE_SHUTDOWN_TIMEOUT": "0s"}), io.Discard); o == nil || o.shutdownTimeout != 0 {
		t.Errorf("zero shutdown timeout: %+v", o)
	}
}

// TestRunFlagValues: the same checks for the flags run shares with serve.
func TestRunFlagValues(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "-1"}, "-t -1"},
		{[]string{"-t", "5000", "--threads-force"}, "-t 5000"},
		{[]string{"-c", "-1"}, "-c -1"},
		{[]string{"-c", "1000000000"}, "-c 1000000000"},
		{[]string{"-n", "-1"}, "-n"},
	} {
		var errb bytes.Buffer
		args := append([]string{"run", "-m", path, "-p", "hi", "-q"}, tc.args...)
		if code := runMain(args, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d, %q; want a usage error naming %q", tc.args, code, errb.String(), tc.want)
		}
	}
	// More threads than CPUs run capped, with a line saying so.
	var errb bytes.Buffer
	usable, _ := engine.UsableCPUs()
	args := []string{"run", "-m", path, "-p", "hi", "-q", "-n", "2", "--temp", "0", "-t", itoa(usable + 1)}
	if code := runMain(args, io.Discard, &errb); code != 0 || !strings.Contains(errb.String(), "CPUs are usable") {
		t.Errorf("-t %d: exit %d, %q; want a run capped to %d threads", usable+1, code, errb.String(), usable)
	}
}

// TestServeSharedMemoryBudget: several models plan their KV caches out of
// one budget, and a set of explicit sizes that cannot fit together is
// refused with what it needs and what is there.
func TestServeSharedMemoryBudget(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	var out, errb bytes.Buffer
	args := []string{"serve", "--model", "a=" + path, "--model", "b=" + path, "--model", "c=" + path, "--dry-run"}
	if code := runMain(append(args, "--json"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var pp engine.ProcessPlan
	if err := json.Unmarshal(out.Bytes(), &pp); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(pp.Models) != 3 || pp.Available <= 0 || pp.Source == "" || pp.TotalBytes != pp.WeightBytes+pp.PackedBytes+pp.KVBytes {
		t.Fatalf("process plan %+v", pp)
	}
	free := pp.Available - pp.WeightBytes - pp.PackedBytes
	for _, p := range pp.Models {
		if want := int64(float64(free)*0.5) / 3; p.Sharing != 3 || p.Free != free || p.Budget != want {
			t.Errorf("%s: budget %d (sharing %d of %d free), want %d", p.Model, p.Budget, p.Sharing, p.Free, want)
		}
	}
	out.Reset()
	if code := runMain(args, &out, &errb); code != 0 || !strings.Contains(out.String(), "memory available:") ||
		strings.Count(out.String(), "split over 3 model(s)") != 3 {
		t.Errorf("exit %d, dry run:\n%s", code, out.String())
	}

	errb.Reset()
	code := runMain(append(args, "--kv-memory", "1000TiB"), &out, &errb)
	for _, want := range []string{"3 models need", "of KV cache (--kv-memory)", "is available", "lower --kv-memory"} {
		if code != 1 || !strings.Contains(errb.String(), want) {
			t.Errorf("3 × 1000 TiB: exit %d, %q; want it to say %q", code, errb.String(), want)
		}
	}
	// Serving refuses the same, before allocating.
	errb.Reset()
	if code := runMain([]string{"serve", "-m", path, "--port", "0", "--kv-memory", "1000TiB"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "the model needs") {
		t.Errorf("serve with 1000 TiB: exit %d, %q", code, errb.String())
	}
}
