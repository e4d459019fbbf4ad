package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Resolve returns the local paths of the model ref names, in order (several
// for a split GGUF; loading them as one model is the loader's job):
//
//   - a local file is returned as is (with its sibling parts when it is part
//     of a split GGUF), never copied;
//   - a stored reference is returned from the store without network access;
//   - any other remote reference is pulled first, unless opts.Offline or the
//     store is offline, which fails with ErrOffline;
//   - dummy:SHAPE:TYPE fails with ErrDummyUnsupported.
func (s *Store) Resolve(ctx context.Context, ref string, opts ResolveOptions) ([]string, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	switch r.Kind {
	case Local:
		return resolveLocal(r)
	case Dummy:
		return nil, newRefError(ref, ErrDummyUnsupported, "", "use a GGUF file or a Hugging Face reference")
	}
	if m, err := s.lookup(r); err == nil {
		return m.Paths(), nil
	}
	m, err := s.pull(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	return m.Paths(), nil
}

func resolveLocal(r Ref) ([]string, error) {
	st, err := os.Stat(r.Path)
	if err != nil {
		hint := "check the path"
		if !filepath.IsAbs(r.Path) {
			hint += "; Hugging Face models are OWNER/REPO:QUANT or hf://OWNER/REPO/FILE.gguf"
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, newRefError(r.Raw, ErrNotFound, "no such file", hint)
		}
		return nil, fmt.Errorf("%s: %v", r.Raw, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory, not a GGUF file", r.Raw)
	}
	dir, base := filepath.Split(r.Path)
	parts := splitParts(base)
	if len(parts) == 1 {
		return []string{r.Path}, nil
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = filepath.Join(dir, p)
		if _, err := os.Stat(out[i]); err != nil {
			return nil, newRefError(r.Raw, ErrNotFound, fmt.Sprintf("split model part %d of %d (%s) is missing", i+1, len(parts), p), "put all parts in the same directory")
		}
	}
	return out, nil
}

// Pull downloads the model ref names into the store (again checking the
// server for a newer revision when it is already stored; unchanged files
// are not downloaded again) and returns its manifest.
func (s *Store) Pull(ctx context.Context, ref string, opts ResolveOptions) (*Manifest, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	return s.pull(ctx, r, opts)
}

func (s *Store) pull(ctx context.Context, r Ref, opts ResolveOptions) (*Manifest, error) {
	switch r.Kind {
	case Local:
		return nil, newRefError(r.Raw, ErrLocal, "a local file path (or no Hugging Face repository of that name)", "local files are used in place; pull takes OWNER/REPO:QUANT, hf://OWNER/REPO/FILE.gguf or an https:// URL")
	case Dummy:
		return nil, newRefError(r.Raw, ErrDummyUnsupported, "", "use a GGUF file or a Hugging Face reference")
	}
	if opts.Offline || s.Offline {
		if m, err := s.lookup(r); err == nil {
			return m, nil
		}
		return nil, newRefError(r.String(), ErrOffline, "not in the store, and offline mode forbids downloading it", "run 'sluice pull "+r.String()+"' with network access first (or drop --offline / HF_HUB_OFFLINE)")
	}
	prog := opts.Reporter
	if prog == nil {
		prog = NewProgress(opts.Progress)
	}
	if err := s.ensureDirs(); err != nil {
		return nil, err
	}
	pl, err := s.plan(ctx, r, prog)
	if err != nil {
		return nil, err
	}
	// Blobs are created under the shared store lock, so that a concurrent
	// Remove does not collect them before their manifest is written.
	unlock, err := s.lockStore(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m := &Manifest{
		Ref:      r.String(),
		Kind:     r.Kind.String(),
		Repo:     r.Repo,
		Revision: r.Revision,
		Commit:   pl.commit,
		PulledAt: time.Now().UTC().Truncate(time.Second),
	}
	for _, spec := range pl.files {
		fe, err := s.fetch(ctx, spec, prog)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, fe)
		m.Size += fe.Size
	}
	if err := s.writeManifest(m); err != nil {
		return nil, wrapRefError(m.Ref, errOf(err), err, "writing the manifest: "+err.Error(), "")
	}
	s.fillPaths(m)
	return m, nil
}

func errOf(err error) error {
	if errors.Is(err, ErrDiskFull) {
		return ErrDiskFull
	}
	return err
}

// plan is what to download for a reference.
type plan struct {
	files  []fetchSpec
	commit string
}

func (s *Store) plan(ctx context.Context, r Ref, prog Progress) (*plan, error) {
	ref := r.String()
	switch r.Kind {
	case URL:
		u := r.URL
		i := strings.LastIndex(u, "/")
		dirURL, base := u[:i+1], u[i+1:]
		if q := strings.IndexAny(base, "?#"); q >= 0 {
			base = base[:q] // a query string: no split detection
		}
		parts := []string{base}
		if !strings.ContainsAny(u[i+1:], "?#") {
			parts = splitParts(base)
		}
		pl := &plan{}
		for _, p := range parts {
			fu := u
			if len(parts) > 1 {
				fu = dirURL + p
			}
			pl.files = append(pl.files, fetchSpec{ref: ref, name: p, url: fu, size: -1})
		}
		return pl, nil
	case HFFile:
		return s.planHF(ctx, r, r.File, nil)
	case HFQuant:
		files, err := s.listRepo(ctx, ref, r.Repo, r.Revision)
		if err != nil {
			return nil, err
		}
		first, err := pickQuant(r, files)
		if err != nil {
			return nil, err
		}
		if prog != nil {
			prog.Message(fmt.Sprintf("%s: using %s", ref, first))
		}
		return s.planHF(ctx, r, first, files)
	}
	return nil, fmt.Errorf("%s: cannot be pulled", ref)
}

// planHF plans the download of file (with all its parts when it is part of
// a split GGUF) from the Hub. listing, when non-nil, is the repository's
// file list, used when the Hub's HEAD response lacks size or sha256.
func (s *Store) planHF(ctx context.Context, r Ref, file string, listing []hubFile) (*plan, error) {
	ref := r.String()
	dir, base := path.Split(file)
	parts := splitParts(base)
	byPath := map[string]hubFile{}
	for _, f := range listing {
		byPath[f.Path] = f
	}
	pl := &plan{}
	rev := r.Revision
	for i, p := range parts {
		name := dir + p
		meta, err := s.headFile(ctx, ref, r.Repo, rev, name)
		if err != nil {
			if len(parts) > 1 && errors.Is(err, ErrNotFound) {
				return nil, newRefError(ref, ErrNotFound, fmt.Sprintf("split model part %d of %d (%s) not found in %s", i+1, len(parts), name, r.Repo), "the repository's split upload is incomplete; choose another file")
			}
			return nil, err
		}
		if lf, ok := byPath[name]; ok {
			if meta.SHA256 == "" && lf.LFS != nil && hexSHA256.MatchString(lf.LFS.OID) {
				meta.SHA256 = lf.LFS.OID
			}
			if meta.Size < 0 {
				meta.Size = lf.Size
				if lf.LFS != nil {
					meta.Size = lf.LFS.Size
				}
			}
		}
		if i == 0 && meta.Commit != "" {
			// Pin the other parts (and the download) to the same commit.
			pl.commit = meta.Commit
			rev = meta.Commit
		}
		pl.files = append(pl.files, fetchSpec{
			ref:    ref,
			name:   name,
			url:    s.resolveURL(r.Repo, rev, name),
			size:   meta.Size,
			sha256: meta.SHA256,
		})
	}
	return pl, nil
}
