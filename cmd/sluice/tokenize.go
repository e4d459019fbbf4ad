package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sluice-llm/sluice/tokenizer"
)

func init() {
	register(&command{
		name:    "tokenize",
		summary: "print the token ids and pieces of a text under a model's tokenizer",
		run:     runTokenize,
	})
}

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", stderr)
	modelRef := fs.String("m", "", "model `file` (GGUF) whose tokenizer to use (required)")
	asJSON := fs.Bool("json", false, "print the ids as a JSON array")
	bos := fs.Bool("bos", false, "add the BOS/EOS tokens the model's metadata asks for")
	offline := fs.Bool("offline", false, "never download: the model must be a local file or already stored")
	noSpecial := fs.Bool("no-special", false, "treat special token text (e.g. <|im_start|>) as plain text")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sluice tokenize -m MODEL.gguf [--json] [--bos] TEXT   (TEXT '-' or absent: read stdin)")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *modelRef == "" {
		return fmt.Errorf("%w: -m MODEL is required", errUsage)
	}
	var text string
	switch {
	case len(pos) == 0 || (len(pos) == 1 && pos[0] == "-"):
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		text = string(b)
	default:
		text = strings.Join(pos, " ")
	}
	f, _, err := openModel(*modelRef, *offline, stderr)
	if err != nil {
		return err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return err
	}
	ids := tok.Encode(text, *bos, !*noSpecial)
	if *asJSON {
		if ids == nil {
			ids = []int32{}
		}
		b, _ := json.Marshal(ids)
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	for _, id := range ids {
		fmt.Fprintf(stdout, "%6d  %q\n", id, tok.Piece(id))
	}
	fmt.Fprintf(stderr, "%d tokens\n", len(ids))
	return nil
}
