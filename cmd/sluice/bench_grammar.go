package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/tokenizer"
)

const benchGrammarUsage = `Usage: sluice bench grammar --data DIR [--tokenizer VOCAB.gguf] [--sample N] [--seed S] [--timeout 60s] [--results FILE]

Runs MaskBench (github.com/guidance-ai/jsonschemabench, folder maskbench/data):
per schema file, compiles the schema, then tokenizes each test instance's
compact JSON and walks it token by token through a matcher, computing the
mask before every token. Prints schemas passing (compiled, every valid
instance accepted, every invalid one rejected), invalidation errors (an
invalid instance accepted), compile errors by cause, and compile and mask
times (single thread).`

func runBenchGrammar(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench grammar", stderr)
	dir := fs.String("data", "", "MaskBench data `dir` (one JSON file per schema; required)")
	vocab := fs.String("tokenizer", filepath.Join("..", "shared", "tokenizer", "ggml-vocab-llama3-bpe.gguf"), "GGUF `file` whose tokenizer to use")
	sample := fs.Int("sample", 0, "run a random sample of `n` schemas (0: all)")
	seed := fs.Uint64("seed", 1, "seed of the sample")
	timeout := fs.Duration("timeout", time.Minute, "time bound per schema (walking stops there; counted as a failure)")
	results := fs.String("results", "", "write one JSON line per schema to `file`")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), benchGrammarUsage)
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	switch {
	case err != nil:
		return err
	case len(pos) > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	case *dir == "":
		return fmt.Errorf("%w: --data DIR is required", errUsage)
	case *sample < 0 || *timeout <= 0:
		return fmt.Errorf("%w: --sample must be ≥ 0 and --timeout > 0", errUsage)
	}
	files, err := filepath.Glob(filepath.Join(*dir, "*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("%w: no *.json files in %s", errUsage, *dir)
	}
	sort.Strings(files)
	if *sample > 0 && *sample < len(files) {
		rng := rand.New(rand.NewPCG(*seed, 0))
		rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		files = files[:*sample]
		sort.Strings(files)
	}
	tok, err := loadTokenizer(*vocab)
	if err != nil {
		return err
	}
	var out io.Writer = io.Discard
	if *results != "" {
		f, err := os.Create(*results)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	var rs []mbResult
	enc := json.NewEncoder(out)
	for _, path := range files {
		r := runMaskBenchFile(tok, path, time.Now().Add(*timeout))
		if err := enc.Encode(&r); err != nil {
			return err
		}
		rs = append(rs, r)
	}
	writeMaskBenchSummary(stdout, rs)
	return nil
}

func loadTokenizer(path string) (*tokenizer.Tokenizer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return tokenizer.FromGGUF(f)
}

// writeMaskBenchSummary prints the table row, the failures by cause and
// every invalidation error.
func writeMaskBenchSummary(w io.Writer, rs []mbResult) {
	var passing, compileErrs, validation, invalidation, timeouts int
	var compiles, masks []time.Duration
	causes := map[string]int{}
	for i := range rs {
		r := &rs[i]
		switch {
		case r.passing():
			passing++
		case r.CompileErr != "":
			compileErrs++
			causes[r.Cause]++
		case r.Timeout:
			timeouts++
		}
		if len(r.Rejected) > 0 {
			validation++
		}
		if len(r.Accepted) > 0 {
			invalidation++
		}
		if r.CompileErr == "" {
			compiles = append(compiles, r.Compile)
		}
		masks = append(masks, r.masks...)
	}
	fmt.Fprintf(w, "| engine | schemas | passing | invalidation errors | mask time p50 / p99 | compile p50 / p99 |\n|---|--:|--:|--:|--:|--:|\n")
	fmt.Fprintf(w, "| sluice | %d | %d | %d | %s / %s | %s / %s |\n\n", len(rs), passing, invalidation,
		pct(masks, 50), pct(masks, 99), pct(compiles, 50), pct(compiles, 99))
	fmt.Fprintf(w, "compile errors: %d; schemas with validation errors (a valid instance rejected): %d; timeouts: %d; tokens masked: %d\n",
		compileErrs, validation, timeouts, len(masks))
	writeCauses(w, causes)
	for _, r := range rs {
		for _, a := range r.Accepted {
			fmt.Fprintf(w, "INVALIDATION ERROR: %s: invalid test %s accepted\n", r.Name, a)
		}
	}
}

func writeCauses(w io.Writer, causes map[string]int) {
	keys := make([]string, 0, len(causes))
	for k := range causes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if causes[keys[i]] != causes[keys[j]] {
			return causes[keys[i]] > causes[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > 0 {
		fmt.Fprintln(w, "compile errors by cause:")
	}
	for _, k := range keys {
		fmt.Fprintf(w, "  %6d  %s\n", causes[k], k)
	}
}

// pct is the p-th percentile of ds (nearest rank), "-" when empty.
func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)].Round(time.Microsecond / 10).String()
}
