package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sluice-llm/sluice/engine"
)

func init() {
	register(&command{
		name:    "kv",
		summary: "plan KV memory: blocks, tokens, sequences that fit",
		run:     runKV,
	})
}

func runKV(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kv", stderr)
	var (
		modelRef, kvMem, kvType, lengths string
		fraction                         float64
		blockSize, ctx, maxSeqs, batched int
		asJSON, offline                  bool
		backend                          string
	)
	fs.StringVar(&modelRef, "m", "", "model `file` (GGUF) or reference (required; or as the argument)")
	fs.StringVar(&kvMem, "kv-memory", "", "KV cache `size`, e.g. 512MiB, 4GiB, 1.5G (default: a fraction of available memory)")
	fs.Float64Var(&fraction, "kv-fraction", engine.DefaultKVMemoryFraction, "fraction of available memory for the KV cache when --kv-memory is not set")
	fs.StringVar(&kvType, "kv-type", "f16", "KV cache element type: f16 or f32")
	fs.IntVar(&blockSize, "block-size", engine.DefaultBlockSize, "tokens per KV block")
	fs.IntVar(&ctx, "ctx", 0, "context length in tokens (0: the model's)")
	fs.IntVar(&maxSeqs, "max-seqs", engine.DefaultMaxNumSeqs, "sequences per step")
	fs.IntVar(&batched, "max-batched-tokens", engine.DefaultMaxNumBatchedTokens, "token budget per step")
	fs.StringVar(&lengths, "lengths", "", "comma-separated sequence `lengths` to fit (default: context/8, /4, /2 and the context)")
	fs.BoolVar(&asJSON, "json", false, "print machine-readable JSON")
	fs.BoolVar(&offline, "offline", false, "never download: the model must be a local file or already stored")
	fs.StringVar(&backend, "backend", "cpu", "compute backend; a GPU one (cuda) plans out of the GPU's free memory")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sluice kv -m MODEL [--kv-memory 4GiB] [--block-size 16] [--ctx N] [--json]")
		fmt.Fprintln(fs.Output(), "Plans the KV cache without loading the model for compute: blocks, tokens, and how many")
		fmt.Fprintln(fs.Output(), "sequences of each length fit at once.")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case modelRef == "" && len(pos) == 1:
		modelRef = pos[0]
	case modelRef == "" || len(pos) > 0:
		return fmt.Errorf("%w: want one model (-m MODEL), got -m %q and %d arguments", errUsage, modelRef, len(pos))
	}
	cfg := engine.Config{
		Backend:             backend,
		KVMemoryFraction:    fraction,
		KVType:              kvType,
		BlockSize:           blockSize,
		ContextLength:       ctx,
		MaxNumSeqs:          maxSeqs,
		MaxNumBatchedTokens: batched,
	}
	if kvMem != "" {
		if cfg.KVMemory, err = engine.ParseBytes(kvMem); err != nil {
			return fmt.Errorf("%w: --kv-memory: %v", errUsage, err)
		}
		if cfg.KVMemory <= 0 {
			return fmt.Errorf("%w: --kv-memory must be positive", errUsage)
		}
	}
	if blockSize < 1 || ctx < 0 || maxSeqs < 1 || batched < 1 || fraction <= 0 || fraction > 1 {
		return fmt.Errorf("%w: --block-size, --max-seqs and --max-batched-tokens must be positive, --ctx not negative, --kv-fraction in (0, 1]", errUsage)
	}
	var ls []int
	if lengths != "" {
		for _, s := range strings.Split(lengths, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return fmt.Errorf("%w: --lengths: %q is not a positive length", errUsage, s)
			}
			ls = append(ls, n)
		}
	}
	if cfg.ModelPath, err = resolveModel(modelRef, offline, stderr); err != nil {
		return err
	}
	pp, err := engine.PlanGroup([]engine.Config{cfg}, ls...)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(pp.Models[0])
	}
	printProcessPlan(stdout, pp)
	return nil
}

// printProcessPlan writes the process's memory budget, then each model's
// plan (sluice kv, sluice serve --dry-run).
func printProcessPlan(w io.Writer, pp *engine.ProcessPlan) {
	fmt.Fprintf(w, "memory available:  %s (%s)\n", engine.FormatBytes(pp.Available), pp.Source)
	fmt.Fprintf(w, "process needs:     %s: %s weights + %s repacked weight copies + %s KV cache, %d model(s)\n",
		engine.FormatBytes(pp.TotalBytes), engine.FormatBytes(pp.WeightBytes), engine.FormatBytes(pp.PackedBytes),
		engine.FormatBytes(pp.KVBytes), len(pp.Models))
	for _, p := range pp.Models {
		fmt.Fprintln(w)
		printPlan(w, p)
	}
}

// printPlan writes a KV memory plan (sluice kv, sluice serve --dry-run).
func printPlan(w io.Writer, p *engine.MemoryPlan) {
	fmt.Fprintf(w, "model:             %s (%s)\n", p.Path, p.Arch)
	fmt.Fprintf(w, "weights:           %s (memory-mapped) + %s repacked copies\n", engine.FormatBytes(p.WeightBytes), engine.FormatBytes(p.PackedBytes))
	fmt.Fprintf(w, "context length:    %d tokens\n", p.ContextLength)
	fmt.Fprintf(w, "KV per token:      %s (%s)\n", engine.FormatBytes(int64(p.KVBytesPerToken)), p.KVType)
	fmt.Fprintf(w, "block:             %d tokens, %s\n", p.BlockSize, engine.FormatBytes(p.BlockBytes))
	if p.Sharing > 0 {
		fmt.Fprintf(w, "budget:            %s (%.0f%% of the %s free after weights, split over %d model(s))\n",
			engine.FormatBytes(p.Budget), 100*p.Fraction, engine.FormatBytes(p.Free), p.Sharing)
	} else {
		fmt.Fprintf(w, "budget:            %s\n", engine.FormatBytes(p.Budget))
	}
	fmt.Fprintf(w, "KV cache:          %d blocks, %d tokens, %s\n", p.Blocks, p.TotalTokens, engine.FormatBytes(p.KVBytes))
	fmt.Fprintln(w, "sequences that fit at once:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  length\tsequences\t")
	for _, f := range p.Fits {
		fmt.Fprintf(tw, "  %d\t%d\t\n", f.Length, f.Sequences)
	}
	tw.Flush()
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
