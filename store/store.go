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
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
