// Package store fetches models and keeps them on disk: `sluice pull`, model
// references (local paths, hf://OWNER/REPO/FILE.gguf[@REV], OWNER/REPO:QUANT,
// https:// URLs, dummy:SHAPE:TYPE) and the local model store.
//
// Layout under the store's home ($SLUICE_HOME, default ~/.cache/sluice):
//
//	blobs/sha256-<hex>        model files, named by their sha256, read-only
//	manifests/<ref>.json      one per pulled reference: files, sizes, sha256,
//	                          revision, commit, source URLs, pull time
//	sources/<key>.json        last download of a URL with no published sha256
//	                          (ETag, size, sha256), for conditional re-pulls
//	tmp/<key>.partial         downloads in progress, with a .json sidecar
//	                          (source URL, ETag, size) for safe resumption
//	tmp/<key>.lock            per-file locks; tmp/store.lock guards removal
//
// A download goes to tmp/, is resumed with HTTP Range requests (If-Range on
// the recorded ETag) after an interruption, is checked against the expected
// size and sha256 (the Hub's, or recorded when there is none) and GGUF
// header validation, and only then is renamed into blobs/. Concurrent pulls
// of the same file, in one process or several, serialize on a lock file:
// the second waits and reuses the first's blob. A partial or corrupt file is
// never returned.
//
// Split GGUFs (NAME-00001-of-0000N.gguf) are fetched part by part; Resolve
// returns all parts in order and loading them as one model is the model
// loader's job.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Store is a local model store rooted at Home. The exported fields are set
// by Open from the environment and may be changed before use.
type Store struct {
	// Home is the store's root directory.
	Home string
	// Endpoint is the Hugging Face Hub address (HF_ENDPOINT, default
	// DefaultEndpoint).
	Endpoint string
	// Token is the Hub access token sent to Endpoint (HF_TOKEN, else the
	// token file written by `hf auth login`).
	Token string
	// Offline forbids network access (HF_HUB_OFFLINE=1 or SLUICE_OFFLINE=1).
	Offline bool
	// Client performs HTTP requests. Open's client takes proxies from the
	// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
	Client *http.Client
	// Retries is how many times an interrupted download is resumed before
	// Pull gives up (the partial file is kept for the next pull).
	Retries int

	retryDelay  time.Duration // first backoff step
	idleTimeout time.Duration // a download with no bytes for this long is retried
}

// ResolveOptions controls Resolve and Pull.
type ResolveOptions struct {
	// Offline forbids network access: stored models and local files only.
	Offline bool
	// Progress receives progress (a bar on a terminal, plain lines
	// otherwise) and status messages; nil for none.
	Progress io.Writer
	// Reporter, when set, receives progress instead of Progress.
	Reporter Progress
}

// DefaultHome returns $SLUICE_HOME, else $XDG_CACHE_HOME/sluice, else
// ~/.cache/sluice.
func DefaultHome() (string, error) {
	if h := os.Getenv("SLUICE_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "sluice"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot locate the model store: set SLUICE_HOME (%v)", err)
	}
	return filepath.Join(home, ".cache", "sluice"), nil
}

// Open opens the store at home, or at DefaultHome when home is "". Nothing
// is created on disk until the first pull. It reads HF_ENDPOINT, HF_TOKEN (or the Hugging Face token
// file), HF_HUB_OFFLINE and SLUICE_OFFLINE.
func Open(home string) (*Store, error) {
	if home == "" {
		h, err := DefaultHome()
		if err != nil {
			return nil, err
		}
		home = h
	}
	s := &Store{
		Home:        home,
		Endpoint:    DefaultEndpoint,
		Token:       hfToken(),
		Offline:     envTrue("HF_HUB_OFFLINE") || envTrue("SLUICE_OFFLINE"),
		Client:      defaultClient,
		Retries:     5,
		retryDelay:  time.Second,
		idleTimeout: 60 * time.Second,
	}
	if e := strings.TrimSpace(os.Getenv("HF_ENDPOINT")); e != "" {
		s.Endpoint = strings.TrimRight(e, "/")
	}
	return s, nil
}

// ensureDirs creates the store's directories.
func (s *Store) ensureDirs() error {
	for _, d := range []string{"blobs", "manifests", "sources", "tmp"} {
		if err := os.MkdirAll(filepath.Join(s.Home, d), 0o755); err != nil {
			return fmt.Errorf("model store %s: %v (set SLUICE_HOME to a writable directory)", s.Home, diskError(s.Home, err))
		}
	}
	return nil
}

func envTrue(k string) bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(k))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// hfToken returns HF_TOKEN, else the token in $HF_TOKEN_PATH or
// $HF_HOME/token (default ~/.cache/huggingface/token).
func hfToken() string {
	if t := strings.TrimSpace(os.Getenv("HF_TOKEN")); t != "" {
		return t
	}
	p := os.Getenv("HF_TOKEN_PATH")
	if p == "" {
		hfHome := os.Getenv("HF_HOME")
		if hfHome == "" {
			if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
				hfHome = filepath.Join(x, "huggingface")
			} else if h, err := os.UserHomeDir(); err == nil {
				hfHome = filepath.Join(h, ".cache", "huggingface")
			}
		}
		if hfHome == "" {
			return ""
		}
		p = filepath.Join(hfHome, "token")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

var defaultClient = newHTTPClient()

// client returns s.Client, or a shared default one.
func (s *Store) client() *http.Client {
	if s.Client == nil {
		return defaultClient
	}
	return s.Client
}

func newHTTPClient() *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t}
}

// Manifest records one pulled reference.
type Manifest struct {
	// Ref is the canonical reference (Ref.String), the manifest's key.
	Ref  string `json:"ref"`
	Kind string `json:"kind"` // "hf-file", "hf-quant" or "url"
	// Repo, Revision and Commit are set for Hugging Face references;
	// Commit is the commit the revision resolved to, when the Hub said.
	Repo     string `json:"repo,omitempty"`
	Revision string `json:"revision,omitempty"`
	Commit   string `json:"commit,omitempty"`
	// Files are the model's files; several for a split GGUF, in order.
	Files []FileEntry `json:"files"`
	// Size is the total size in bytes.
	Size     int64     `json:"size"`
	PulledAt time.Time `json:"pulled_at"`

	paths []string
}

// FileEntry is one file of a Manifest.
type FileEntry struct {
	// Name is the file's path in the repository, or its URL's base name.
	Name string `json:"name"`
	// URL is where the file was downloaded from.
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// SHA256Source is "hub" when the sha256 was published by the server and
	// verified, "computed" when it was only recorded at download.
	SHA256Source string `json:"sha256_source"`
	ETag         string `json:"etag,omitempty"`
}

// Paths returns the local paths of m's files, in order.
func (m *Manifest) Paths() []string { return append([]string(nil), m.paths...) }

func (s *Store) blobPath(sha string) string {
	return filepath.Join(s.Home, "blobs", "sha256-"+sha)
}

func (s *Store) fillPaths(m *Manifest) {
	m.paths = make([]string, len(m.Files))
	for i, f := range m.Files {
		m.paths[i] = s.blobPath(f.SHA256)
	}
}

// manifestName escapes a canonical reference into a file name.
func manifestName(ref string) string {
	var b strings.Builder
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.' || c == '-' || c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	name := b.String()
	if len(name) > 180 {
		sum := sha256.Sum256([]byte(ref))
		name = name[:100] + "~" + hex.EncodeToString(sum[:16])
	}
	return name + ".json"
}

func (s *Store) manifestPath(ref string) string {
	return filepath.Join(s.Home, "manifests", manifestName(ref))
}

// Lookup returns the manifest of a stored reference, or an error wrapping
// ErrNotStored. It does no network access and checks that the files exist
// with their recorded sizes.
func (s *Store) Lookup(ref string) (*Manifest, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	return s.lookup(r)
}

func (s *Store) lookup(r Ref) (*Manifest, error) {
	m, err := s.readManifest(s.manifestPath(r.String()))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, newRefError(r.String(), ErrNotStored, "", "run 'sluice pull "+r.String()+"'")
		}
		return nil, err
	}
	for i, f := range m.Files {
		st, err := os.Stat(m.paths[i])
		if err != nil || st.Size() != f.Size {
			return nil, newRefError(r.String(), ErrNotStored, "file "+f.Name+" is missing from the store", "run 'sluice pull "+r.String()+"' again")
		}
	}
	return m, nil
}

func (s *Store) readManifest(p string) (*Manifest, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	m := new(Manifest)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("corrupt manifest %s: %v (remove it and pull again)", p, err)
	}
	for _, f := range m.Files {
		if !hexSHA256.MatchString(f.SHA256) {
			return nil, fmt.Errorf("corrupt manifest %s: bad sha256 %q (remove it and pull again)", p, f.SHA256)
		}
	}
	s.fillPaths(m)
	return m, nil
}

func (s *Store) writeManifest(m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.manifestPath(m.Ref), append(b, '\n'))
}

// writeFileAtomic writes data to p through a temporary file and a rename.
func writeFileAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return diskError(p, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return diskError(p, err)
	}
	return nil
}

// List returns the manifests of all stored references, sorted by Ref.
func (s *Store) List() ([]*Manifest, error) {
	dir := filepath.Join(s.Home, "manifests")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Manifest
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		m, err := s.readManifest(filepath.Join(dir, e.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, err
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// Remove deletes a stored reference and every blob no other reference uses.
// It returns the bytes freed.
func (s *Store) Remove(ref string) (int64, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return 0, err
	}
	if !r.Remote() {
		return 0, newRefError(ref, ErrNotStored, "", "only pulled models (OWNER/REPO:QUANT, hf://..., URLs) are in the store; see 'sluice list'")
	}
	p := s.manifestPath(r.String())
	if _, err := os.Stat(p); err != nil {
		return 0, newRefError(r.String(), ErrNotStored, "", "see 'sluice list' for the stored models")
	}
	if err := s.ensureDirs(); err != nil {
		return 0, err
	}
	unlock, err := s.lockStore(context.Background(), true)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if _, err := os.Stat(p); err != nil {
		return 0, newRefError(r.String(), ErrNotStored, "", "see 'sluice list' for the stored models")
	}
	if err := os.Remove(p); err != nil {
		return 0, err
	}
	return s.gc()
}

// gc removes blobs that no manifest references. The caller holds the store
// lock exclusively.
func (s *Store) gc() (int64, error) {
	ms, err := s.List()
	if err != nil {
		return 0, err
	}
	used := map[string]bool{}
	for _, m := range ms {
		for _, f := range m.Files {
			used["sha256-"+f.SHA256] = true
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.Home, "blobs"))
	if err != nil {
		return 0, err
	}
	// No pull holds a file lock while the store lock is held exclusively,
	// so the lock files can go.
	if locks, err := filepath.Glob(filepath.Join(s.Home, "tmp", "*-*.lock")); err == nil {
		for _, l := range locks {
			os.Remove(l)
		}
	}
	var freed int64
	for _, e := range ents {
		if used[e.Name()] || !strings.HasPrefix(e.Name(), "sha256-") {
			continue
		}
		p := filepath.Join(s.Home, "blobs", e.Name())
		if st, err := os.Stat(p); err == nil {
			freed += st.Size()
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return freed, err
		}
	}
	return freed, nil
}

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

// pickQuant chooses the GGUF model in a repository listing that r's tag
// names, returning the path of its (first) file.
func pickQuant(r Ref, files []hubFile) (string, error) {
	ref := r.String()
	type cand struct {
		first string
		parts map[int]bool
		count int
	}
	cands := map[string]*cand{}
	var order []string
	var all []string
	for _, f := range files {
		if f.Type != "" && f.Type != "file" {
			continue
		}
		name := f.Path
		if !strings.HasSuffix(strings.ToLower(name), ".gguf") || !cleanRepoPath(name) {
			continue // not a model file, or a path that would leave the repository
		}
		all = append(all, name)
		base := path.Base(name)
		if strings.HasPrefix(strings.ToLower(base), "mmproj") {
			continue // vision projectors are not models
		}
		if r.Quant != "" && !hasTag(name, r.Quant) {
			continue
		}
		key, part, count := name, 1, 1
		if b, p, n, ok := splitInfo(base); ok {
			key = path.Join(path.Dir(name), b) + fmt.Sprintf("-of-%05d", n)
			part, count = p, n
		}
		c := cands[key]
		if c == nil {
			c = &cand{parts: map[int]bool{}, count: count}
			cands[key] = c
			order = append(order, key)
		}
		c.parts[part] = true
		if part == 1 {
			c.first = name
		}
	}
	var choices []string
	for _, k := range order {
		c := cands[k]
		if c.first == "" {
			continue // a split model without its first part
		}
		label := c.first
		choices = append(choices, label)
	}
	sort.Strings(choices)
	switch {
	case len(choices) == 1:
		return choices[0], nil
	case len(choices) == 0:
		if len(all) == 0 {
			return "", newRefError(ref, ErrNoGGUF, "repository "+r.Repo+" has no .gguf file at "+r.Revision, "pick a repository that publishes GGUF files (their names usually end in -GGUF)")
		}
		return "", newRefError(ref, ErrNoGGUF, fmt.Sprintf("no GGUF file in %s matches %q", r.Repo, r.Quant), "available: "+strings.Join(availableTags(all), ", "))
	}
	if r.Quant == "" {
		var q4 []string
		for _, c := range choices {
			if hasTag(c, "Q4_K_M") {
				q4 = append(q4, c)
			}
		}
		if len(q4) == 1 {
			return q4[0], nil
		}
	}
	return "", &AmbiguousError{Ref: ref, Quant: r.Quant, Choices: choices}
}

// hasTag reports whether name contains tag (case-insensitively) as a whole
// word: not preceded by a letter or digit, and followed by neither a letter,
// a digit nor an underscore (so Q4_K does not match Q4_K_M, nor Q4_0 match
// IQ4_0).
func hasTag(name, tag string) bool {
	ln, lt := strings.ToLower(name), strings.ToLower(tag)
	for i := 0; ; {
		j := strings.Index(ln[i:], lt)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(lt)
		before := j == 0 || !isAlnum(ln[j-1])
		after := end == len(ln) || !(isAlnum(ln[end]) || ln[end] == '_')
		if before && after {
			return true
		}
		i = j + 1
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// availableTags lists the GGUF files of a repository for an error message,
// naming split models once.
func availableTags(all []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range all {
		dir, base := path.Split(n)
		if b, p, _, ok := splitInfo(base); ok {
			if p != 1 {
				continue
			}
			n = dir + b + "-*.gguf"
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
