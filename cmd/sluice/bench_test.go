package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
)

func TestBenchEngineFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "missing subcommand"},
		{[]string{"bench", "load"}, "unknown bench subcommand"},
		{[]string{"bench", "engine"}, "-m MODEL is required"},
		{[]string{"bench", "engine", "-m", "x.gguf", "-p", "-1"}, "must be ≥ 0"},
		{[]string{"bench", "engine", "-m", "x.gguf", "-r", "0"}, "-r must be ≥ 1"},
		{[]string{"bench", "engine", "-m", "x.gguf", "-t", "-2"}, "-t must be ≥ 0"},
		{[]string{"bench", "engine", "-m", "x.gguf", "-b", "4,x"}, "not a positive integer"},
		{[]string{"bench", "engine", "-m", "x.gguf", "-b", "0"}, "not a positive integer"},
		{[]string{"bench", "engine", "-m", "x.gguf", "-b", "4", "-nb", "0"}, "-b needs -nb"},
		{[]string{"bench", "engine", "-m", "x.gguf", "-p", "0", "-n", "0"}, "nothing to measure"},
		{[]string{"bench", "engine", "-m", "x.gguf", "extra"}, "unexpected arguments"},
		{[]string{"bench", "engine", "-m", "x.gguf", "--bogus"}, "flag provided but not defined"},
		{[]string{"bench", "engine", "-m", "dummy:no-such-shape:Q4_0"}, "unknown shape"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := runMain(c.args, &out, &errb)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", c.args, code, errb.String())
		}
		if !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: stderr %q lacks %q", c.args, errb.String(), c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := runMain([]string{"bench", "engine", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "Usage: sluice bench engine") {
		t.Errorf("-h: exit %d, stderr %q", code, errb.String())
	}
	if code := runMain([]string{"bench", "engine", "-m", "/nonexistent/model.gguf", "--offline"}, &out, &errb); code != 1 {
		t.Errorf("missing model: exit %d", code)
	}
}

func TestBenchEngineRun(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	var out, errb bytes.Buffer
	args := []string{"bench", "engine", "-m", path, "-p", "8", "-n", "4", "-b", "2", "-pb", "4", "-nb", "3", "-r", "2", "-t", "2"}
	if code := runMain(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "| model ") || !strings.Contains(lines[2], " pp8 ") ||
		!strings.Contains(lines[3], " tg4 ") || !strings.Contains(lines[4], " pp4+tg3 B=2 ") {
		t.Errorf("table:\n%s", out.String())
	}
	if !strings.Contains(errb.String(), "bench: pp8 rep 2/2") {
		t.Errorf("no progress on stderr: %q", errb.String())
	}

	out.Reset()
	errb.Reset()
	if code := runMain(append(args, "--json", "-q"), &out, &errb); code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errb.String())
	}
	if errb.Len() != 0 {
		t.Errorf("-q printed %q", errb.String())
	}
	var res struct {
		Threads int `json:"threads"`
		Tests   []struct {
			Test string    `json:"test"`
			Mean float64   `json:"mean"`
			TPS  []float64 `json:"tokens_per_sec"`
		} `json:"tests"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Threads != 2 || len(res.Tests) != 3 || res.Tests[2].Test != "pp4+tg3 B=2" || len(res.Tests[0].TPS) != 2 || !(res.Tests[1].Mean > 0) {
		t.Errorf("JSON %+v", res)
	}
}
