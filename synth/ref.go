package synth

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-llm/sluice/gguf"
)

// RefPrefix starts a dummy model reference, "dummy:NAME:TYPE".
const RefPrefix = "dummy:"

// DefaultType is the file type of a reference that names none.
const DefaultType = "Q4_K_M"

// ParseRef parses a dummy model reference "dummy:NAME[:TYPE]" (TYPE defaults
// to Q4_K_M) into Options with the built-in tokenizer and seed 0. ok
// reports whether s is a dummy reference at all; err is set when it is one
// but names an unknown shape or type (the message lists the choices).
func ParseRef(s string) (opts Options, ok bool, err error) {
	if !strings.HasPrefix(s, RefPrefix) {
		return Options{}, false, nil
	}
	rest := s[len(RefPrefix):]
	name, typ, _ := strings.Cut(rest, ":")
	if typ == "" {
		typ = DefaultType
	}
	if name == "" {
		return Options{}, true, fmt.Errorf("synth: model reference %q names no shape; want dummy:NAME[:TYPE] with NAME one of %s", s, strings.Join(ShapeNames(), ", "))
	}
	shape, err := LookupShape(name)
	if err != nil {
		return Options{}, true, fmt.Errorf("synth: model reference %q: %s", s, strings.TrimPrefix(err.Error(), "synth: "))
	}
	ft, err := ParseFileType(typ)
	if err != nil {
		return Options{}, true, fmt.Errorf("synth: model reference %q: %s", s, strings.TrimPrefix(err.Error(), "synth: "))
	}
	return Options{Shape: shape, Type: ft.Name}, true, nil
}

// CanonicalRef returns the canonical form of a dummy reference,
// "dummy:NAME:TYPE" with the type's canonical name.
func CanonicalRef(opts Options) string {
	t := opts.Type
	if ft, err := ParseFileType(t); err == nil {
		t = ft.Name
	}
	return RefPrefix + opts.Shape.Name + ":" + t
}

// DefaultCacheDir returns where Cached keeps dummy models: $SLUICE_HOME/dummy,
// else $XDG_CACHE_HOME/sluice/dummy, else ~/.cache/sluice/dummy (the model
// store's home, see package store).
func DefaultCacheDir() (string, error) {
	if h := os.Getenv("SLUICE_HOME"); h != "" {
		return filepath.Join(h, "dummy"), nil
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "sluice", "dummy"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("synth: cannot locate the cache directory: set SLUICE_HOME (%v)", err)
	}
	return filepath.Join(home, ".cache", "sluice", "dummy"), nil
}

// Cached returns the path of the dummy model that ref ("dummy:NAME:TYPE")
// names, generating it into dir (DefaultCacheDir when "") on first use as
// NAME-TYPE.gguf and reusing it afterwards.
func Cached(ref, dir string) (string, error) {
	return CachedProgress(context.Background(), ref, dir, nil)
}

// CachedProgress is Cached with a context and a progress writer for the
// first generation.
func CachedProgress(ctx context.Context, ref, dir string, progress io.Writer) (string, error) {
	opts, ok, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("synth: %q is not a dummy model reference (want dummy:NAME:TYPE)", ref)
	}
	if dir == "" {
		if dir, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	path := filepath.Join(dir, opts.Shape.Name+"-"+opts.Type+".gguf")
	if _, err := os.Stat(path); err == nil {
		// Files appear only complete (atomic rename); a damaged one is
		// regenerated.
		if gguf.ValidateHeader(path) == nil {
			return path, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("synth: %w", err)
	}
	opts.Progress = progress
	if err := WriteContext(ctx, path, opts); err != nil {
		return "", err
	}
	return path, nil
}
