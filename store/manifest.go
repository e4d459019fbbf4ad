package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

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
