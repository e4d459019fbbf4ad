package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/store"
)

func init() {
	register(&command{
		name:    "pull",
		summary: "download a model into the local store (OWNER/REPO:QUANT, hf://..., URL)",
		run:     runPull,
	})
	register(&command{
		name:    "list",
		summary: "list the models in the local store",
		run:     runList,
	})
	register(&command{
		name:    "rm",
		summary: "remove models from the local store",
		run:     runRemove,
	})
}

const refHelp = `A model reference is one of:
  OWNER/REPO:QUANT                   the GGUF in a Hugging Face repo whose name carries QUANT (e.g. Q4_K_M)
  OWNER/REPO                         the repo's only GGUF model (or its Q4_K_M one)
  hf://OWNER/REPO/FILE.gguf[@REV]    one file (a split model's first part stands for all parts)
  https://HOST/PATH/FILE.gguf        a GGUF file on any web server
  PATH                               a local file, used in place
Models are stored in $SLUICE_HOME (default ~/.cache/sluice). HF_TOKEN is sent
for gated repos, HF_ENDPOINT selects a mirror, HTTPS_PROXY/NO_PROXY are honoured.`

// openStore opens the model store at $SLUICE_HOME (or the default). It
// creates nothing on disk until a model is pulled.
func openStore() (*store.Store, error) {
	return store.Open("")
}

// resolveModelRef turns a model reference given to run, serve, info or
// bench into local file paths (several, in order, for a split GGUF),
// pulling it into the store on first use with progress on stderr. With
// offline set it never touches the network and fails clearly when the
// model is not stored.
func resolveModelRef(ctx context.Context, ref string, offline bool, stderr io.Writer) ([]string, error) {
	st, err := openStore()
	if err != nil {
		return nil, err
	}
	return st.Resolve(ctx, ref, store.ResolveOptions{Offline: offline, Progress: stderr})
}

// storeModelJSON is the --json form of a pulled or listed model.
type storeModelJSON struct {
	*store.Manifest
	Paths []string `json:"paths"`
}

func runPull(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pull", stderr)
	offline := fs.Bool("offline", false, "no network: succeed only if the model is already stored")
	asJSON := fs.Bool("json", false, "print the stored model's manifest as JSON on stdout")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sluice pull REF [--offline] [--json]")
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), refHelp)
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	refs, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(refs) != 1 {
		return fmt.Errorf("%w: want one model reference (sluice pull OWNER/REPO:QUANT)", errUsage)
	}
	st, err := openStore()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m, err := st.Pull(ctx, refs[0], store.ResolveOptions{Offline: *offline, Progress: stderr})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: interrupted; run the same pull again to resume", refs[0])
		}
		return err
	}
	if *asJSON {
		return storeWriteJSON(stdout, storeModelJSON{m, m.Paths()})
	}
	what := "1 file"
	if len(m.Files) > 1 {
		what = fmt.Sprintf("%d files (split model)", len(m.Files))
	}
	fmt.Fprintf(stdout, "pulled %s: %s, %s\n", m.Ref, what, engine.FormatBytes(m.Size))
	for _, p := range m.Paths() {
		fmt.Fprintf(stdout, "  %s\n", p)
	}
	return nil
}

func runList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("list", stderr)
	asJSON := fs.Bool("json", false, "print the manifests as a JSON array")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sluice list [--json]")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: list takes no arguments", errUsage)
	}
	st, err := openStore()
	if err != nil {
		return err
	}
	ms, err := st.List()
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]storeModelJSON, 0, len(ms))
		for _, m := range ms {
			out = append(out, storeModelJSON{m, m.Paths()})
		}
		return storeWriteJSON(stdout, out)
	}
	if len(ms) == 0 {
		fmt.Fprintf(stdout, "no models in %s (get one with 'sluice pull OWNER/REPO:QUANT')\n", st.Home)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REF\tSIZE\tFILES\tREVISION\tPULLED")
	for _, m := range ms {
		rev := m.Revision
		if len(m.Commit) >= 8 {
			rev += " (" + m.Commit[:8] + ")"
		}
		if rev == "" {
			rev = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", m.Ref, engine.FormatBytes(m.Size), len(m.Files), rev, m.PulledAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func runRemove(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rm", stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sluice rm REF [REF...]")
		fmt.Fprintln(stderr, "Removes stored models (as 'sluice list' names them) and the files no other model uses.")
	}
	refs, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return fmt.Errorf("%w: want a model reference (see 'sluice list')", errUsage)
	}
	st, err := openStore()
	if err != nil {
		return err
	}
	var failed []string
	for _, ref := range refs {
		freed, err := st.Remove(ref)
		if err != nil {
			if len(refs) == 1 {
				return err
			}
			fmt.Fprintf(stderr, "sluice rm: %v\n", err)
			failed = append(failed, ref)
			continue
		}
		fmt.Fprintf(stdout, "removed %s (freed %s)\n", ref, engine.FormatBytes(freed))
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not remove %s", strings.Join(failed, ", "))
	}
	return nil
}

func storeWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
