package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"

	"github.com/sluice-llm/sluice/synth"
)

func init() {
	register(&command{
		name:    "synth",
		summary: "write a random-weight GGUF with a real model's shapes (for tests, benchmarks, demos)",
		run:     runSynth,
	})
}

const synthHelp = `Usage: sluice synth --shape NAME [--type TYPE] -o FILE.gguf [flags]
       sluice synth dummy:NAME[:TYPE] -o FILE.gguf [flags]
       sluice synth --list

Writes a model with the exact tensor names, shapes and metadata of a real
architecture and deterministic random weights (N(0, 0.02²); norms 1 + noise),
quantized the way llama-quantize does it, Q4_K_M's Q6_K tensors included.
The tokenizer is copied from --tokenizer FILE.gguf (all tokenizer.ggml.* keys
and the chat template), or is a built-in byte-level one with a ChatML
template. Wherever a model is accepted, dummy:NAME:TYPE names such a model,
generated once into $SLUICE_HOME/dummy.

Flags:`

func runSynth(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("synth", stderr)
	shape := fs.String("shape", "", "architecture `NAME` to mirror (see --list)")
	typ := fs.String("type", "", "file `TYPE`: "+strings.Join(synth.FileTypeNames(), ", ")+" (Q4_K means Q4_K_M) (default "+synth.DefaultType+")")
	out := fs.String("o", "", "output `FILE`.gguf (required)")
	tok := fs.String("tokenizer", "", "copy the tokenizer of this GGUF `FILE` instead of the built-in byte-level one")
	seed := fs.Uint64("seed", 0, "weight `SEED`; the same flags always write the same bytes")
	layers := fs.Int("layers", 0, "write only `N` layers (0: the shape's)")
	vocab := fs.Int("vocab", 0, "vocabulary size `N` (0: the shape's, or the tokenizer's if larger)")
	threads := fs.Int("threads", 0, "quantizing goroutines (0: one per CPU)")
	fast := fs.Bool("fast", false, "build quantized matrices from a pool of pre-quantized blocks: much faster for K-quants, blocks repeat")
	list := fs.Bool("list", false, "list the shapes and types and exit")
	quiet := fs.Bool("q", false, "no progress output")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), synthHelp)
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *list {
		return listSynth(stdout)
	}
	var opts synth.Options
	switch {
	case len(pos) > 1 || (len(pos) == 1 && *shape != ""):
		return fmt.Errorf("%w: give --shape NAME or one dummy:NAME[:TYPE] reference, got %q", errUsage, append(pos, *shape))
	case len(pos) == 1:
		o, ok, err := synth.ParseRef(pos[0])
		if !ok {
			return fmt.Errorf("%w: %q is not a dummy:NAME[:TYPE] reference; use --shape NAME", errUsage, pos[0])
		}
		if err != nil {
			return synthUsage(err)
		}
		opts = o
	case *shape == "":
		return fmt.Errorf("%w: --shape is required (one of %s)", errUsage, strings.Join(synth.ShapeNames(), ", "))
	default:
		s, err := synth.LookupShape(*shape)
		if err != nil {
			return synthUsage(err)
		}
		opts.Shape, opts.Type = s, synth.DefaultType
	}
	if *typ != "" {
		ft, err := synth.ParseFileType(*typ)
		if err != nil {
			return synthUsage(err)
		}
		opts.Type = ft.Name
	}
	if *out == "" {
		return fmt.Errorf("%w: -o FILE.gguf is required", errUsage)
	}
	if *layers < 0 || *vocab < 0 || *threads < 0 {
		return fmt.Errorf("%w: --layers, --vocab and --threads must not be negative", errUsage)
	}
	opts.Seed = *seed
	opts.Layers = *layers
	opts.Vocab = *vocab
	opts.Threads = *threads
	opts.Fast = *fast
	opts.TokenizerPath = *tok
	if !*quiet {
		opts.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := synth.WriteContext(ctx, *out, opts); err != nil {
		return trimSynth(err)
	}
	return nil
}

// synthUsage turns a synth package error about a bad name into a usage
// error without the package prefix.
func synthUsage(err error) error {
	return fmt.Errorf("%w: %v", errUsage, trimSynth(err))
}

func trimSynth(err error) error {
	if msg := err.Error(); strings.HasPrefix(msg, "synth: ") {
		return fmt.Errorf("%s", strings.TrimPrefix(msg, "synth: "))
	}
	return err
}

func listSynth(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHAPE\tARCH\tPARAMS\tDIM\tLAYERS\tHEADS\tKV\tFFN\tVOCAB\tTIED\tROPE BASE")
	for _, n := range synth.ShapeNames() {
		s := synth.Shapes[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t%g\n", n, s.Arch, fmtParams(s.Params()),
			s.Dim, s.Layers, s.Heads, s.KVHeads, s.FFN, s.Vocab, s.Tied, s.RopeBase)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nTypes: %s (Q4_K means Q4_K_M)\n", strings.Join(synth.FileTypeNames(), ", "))
	return err
}

func fmtParams(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.1fM", float64(n)/1e6)
}
