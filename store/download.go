package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// fetchSpec is one file to download.
type fetchSpec struct {
	ref    string // the reference, for messages
	name   string // the file's name, for messages and the manifest
	url    string
	size   int64  // expected size, -1 when unknown
	sha256 string // expected sha256, "" when unknown
}

// sidecar is stored next to a partial download: what it is a prefix of.
type sidecar struct {
	URL    string `json:"url"`
	ETag   string `json:"etag,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// sourceRecord remembers the last complete download of a URL whose sha256
// the server does not publish.
type sourceRecord struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	Time         time.Time `json:"time"`
}

// key names a download's lock, partial and source record.
func (sp fetchSpec) key() string {
	if sp.sha256 != "" {
		return "sha256-" + sp.sha256
	}
	sum := sha256.Sum256([]byte(sp.url))
	return "url-" + hex.EncodeToString(sum[:20])
}

// blobOK reports whether the blob for sha exists with the given size (any
// size when size < 0).
func (s *Store) blobOK(sha string, size int64) bool {
	st, err := os.Stat(s.blobPath(sha))
	return err == nil && st.Mode().IsRegular() && (size < 0 || st.Size() == size)
}

// fetch makes sure the file sp describes is a blob in the store and returns
// its manifest entry.
func (s *Store) fetch(ctx context.Context, sp fetchSpec, prog Progress) (FileEntry, error) {
	entry := FileEntry{Name: sp.name, URL: sp.url, Size: sp.size, SHA256: sp.sha256, SHA256Source: "hub"}
	if sp.sha256 != "" && sp.size >= 0 && s.blobOK(sp.sha256, sp.size) {
		return entry, nil
	}
	key := sp.key()
	tmp := filepath.Join(s.Home, "tmp")
	unlock, err := lockPath(ctx, filepath.Join(tmp, key+".lock"), true, func() {
		prog.Message(fmt.Sprintf("%s: waiting for another download of %s to finish", sp.ref, sp.name))
	})
	if err != nil {
		return entry, err
	}
	defer unlock()
	// Another puller may have finished it while we waited.
	if sp.sha256 != "" && s.blobOK(sp.sha256, sp.size) {
		if st, err := os.Stat(s.blobPath(sp.sha256)); err == nil {
			entry.Size = st.Size()
		}
		return entry, nil
	}
	var rec *sourceRecord
	if sp.sha256 == "" {
		rec = s.readSource(key)
		if rec != nil && (rec.URL != sp.url || !s.blobOK(rec.SHA256, rec.Size)) {
			rec = nil
		}
	}
	d := &download{
		s:       s,
		sp:      sp,
		prog:    prog,
		partial: filepath.Join(tmp, key+".partial"),
		side:    filepath.Join(tmp, key+".partial.json"),
		cond:    rec,
	}
	delay := s.retryDelay
	restarted := false
	for attempt := 0; ; attempt++ {
		err = d.once(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errRestart) && !restarted {
			// A resumed file failed verification: the server's content may
			// have changed under the partial. Start over once.
			restarted = true
			continue
		}
		var te *transientError
		if !errors.As(err, &te) || attempt >= s.Retries || ctx.Err() != nil {
			var re *restartError
			if errors.As(err, &re) {
				err = re.err
			}
			return entry, err
		}
		prog.Message(fmt.Sprintf("%s: %v; retrying in %s", sp.name, te.err, fmtDuration(delay)))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return entry, context.Cause(ctx)
		case <-t.C:
		}
		if delay *= 2; delay > 30*time.Second {
			delay = 30 * time.Second
		}
	}
	entry.Size, entry.SHA256, entry.ETag = d.gotSize, d.gotSHA, unquoteETag(d.etag)
	if sp.sha256 == "" {
		entry.SHA256Source = "computed"
		if d.linkedSHA != "" && d.linkedSHA == d.gotSHA {
			entry.SHA256Source = "hub"
		}
	}
	return entry, nil
}

func (s *Store) readSource(key string) *sourceRecord {
	b, err := os.ReadFile(filepath.Join(s.Home, "sources", key+".json"))
	if err != nil {
		return nil
	}
	var r sourceRecord
	if json.Unmarshal(b, &r) != nil || !hexSHA256.MatchString(r.SHA256) {
		return nil
	}
	return &r
}

// errRestart wraps a verification failure of a resumed download.
var errRestart = errors.New("restart")

type restartError struct{ err error }

func (e *restartError) Error() string   { return e.err.Error() }
func (e *restartError) Unwrap() []error { return []error{errRestart, e.err} }

// download is one file's download, over possibly several attempts.
type download struct {
	s       *Store
	sp      fetchSpec
	prog    Progress
	partial string
	side    string
	cond    *sourceRecord // earlier download of the same URL, for If-None-Match

	// results
	gotSize      int64
	gotSHA       string
	etag         string // the raw ETag header of the file's response
	lastModified string
	linkedSHA    string
}

var errStalled = errors.New("no data received for too long")

// freeSpace is diskFree, replaceable in tests.
var freeSpace = diskFree

func (d *download) sizeMismatch(got, want int64) error {
	return newRefError(d.sp.ref, ErrChecksum,
		fmt.Sprintf("%s: the server sends %d bytes, the Hub's metadata says %d", d.sp.name, got, want),
		"the file may have changed during the pull; pull again")
}

// finish verifies the complete partial file f (size bytes, hashed in h)
// and renames it into blobs/. It closes f on success.
func (d *download) finish(f *os.File, h hash.Hash, size int64, resumed bool) error {
	sp := d.sp
	got := hex.EncodeToString(h.Sum(nil))
	if err := f.Sync(); err != nil {
		return diskError(d.partial, err)
	}
	discard := func() {
		f.Truncate(0)
		os.Remove(d.side)
	}
	if sp.sha256 != "" && got != sp.sha256 || d.linkedSHA != "" && got != d.linkedSHA {
		want := sp.sha256
		if want == "" {
			want = d.linkedSHA
		}
		discard()
		err := newRefError(sp.ref, ErrChecksum,
			fmt.Sprintf("%s: sha256 is %s, expected %s; the corrupt download was deleted", sp.name, got, want),
			"pull again; if it keeps failing, the server or a proxy is corrupting the file")
		if resumed {
			return &restartError{err}
		}
		return err
	}
	if err := validateGGUF(d.partial); err != nil {
		discard()
		why := strings.ReplaceAll(err.Error(), d.partial+": ", "")
		err := wrapRefError(sp.ref, ErrInvalidGGUF, err,
			fmt.Sprintf("%s is not a valid GGUF file (%s); it was deleted", sp.name, why),
			"check that the reference names a .gguf model file")
		if resumed {
			return &restartError{err}
		}
		return err
	}
	if err := f.Close(); err != nil {
		return diskError(d.partial, err)
	}
	blob := d.s.blobPath(got)
	os.Chmod(d.partial, 0o444)
	if err := os.Rename(d.partial, blob); err != nil {
		return diskError(blob, err)
	}
	syncDir(filepath.Dir(blob))
	os.Remove(d.side)
	d.gotSize, d.gotSHA = size, got
	if sp.sha256 == "" {
		rec := sourceRecord{URL: sp.url, ETag: d.etag, LastModified: d.lastModified, Size: size, SHA256: got, Time: time.Now().UTC().Truncate(time.Second)}
		if b, err := json.Marshal(rec); err == nil {
			writeFileAtomic(filepath.Join(d.s.Home, "sources", sp.key()+".json"), b)
		}
	}
	return nil
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// writeError marks a failure to write the local file (as opposed to a
// failure to read the network).
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// copyBody copies r to f (and h), reporting progress and pushing back the
// idle timer after each read.
func copyBody(f *os.File, r io.Reader, h hash.Hash, prog Progress, timer *time.Timer, idle time.Duration) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			timer.Reset(idle)
			if _, err := f.Write(buf[:m]); err != nil {
				return n, &writeError{err}
			}
			h.Write(buf[:m])
			n += int64(m)
			prog.Add(int64(m))
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// diskError turns a local file system error into a clear one, marking a
// full disk with ErrDiskFull.
func diskError(p string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return &refError{ref: p, kind: ErrDiskFull, detail: "disk full while writing", cause: err,
			hint: "free some space (sluice rm REF removes stored models) or set SLUICE_HOME to a larger disk; an interrupted download resumes on the next pull"}
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%v (set SLUICE_HOME to a writable directory)", err)
	}
	return err
}

// strongETag reports whether e is a strong entity tag, usable in If-Range.
func strongETag(e string) bool {
	return len(e) >= 2 && e[0] == '"' && e[len(e)-1] == '"'
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*",
// giving -1).
func parseContentRange(v string) (start, total int64, ok bool) {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "bytes ") {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(v[len("bytes "):], "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}
