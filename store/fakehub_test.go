package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tinyGGUF returns a valid GGUF v3 file with no tensors and two metadata
// keys; the second, a string of pad random letters (seeded), makes the file
// as large as a test needs and its content unique.
func tinyGGUF(seed int64, pad int) []byte {
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(uint64(0)) // tensors
	w(uint64(2)) // metadata keys
	str("general.architecture")
	w(uint32(8))
	str("llama")
	str("general.description")
	w(uint32(8))
	r := rand.New(rand.NewSource(seed))
	desc := make([]byte, pad)
	for i := range desc {
		desc[i] = byte('a' + r.Intn(26))
	}
	str(string(desc))
	return b.Bytes()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fakeHub imitates the Hugging Face Hub: the tree API (paginated, with a
// Link header), resolve addresses that redirect (302) to a content server
// with X-Repo-Commit, X-Linked-Etag and X-Linked-Size, Range and If-Range
// support, gated repositories, and error codes. It also serves plain URLs
// under /files/. Faults (cut connections, corruption, slowness) are
// injected per test.
type fakeHub struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	repos    map[string]*fakeRepo
	plain    map[string][]byte // /files/NAME
	plainTag map[string]string // ETag per plain file
	token    string            // the token gated repos accept
	// cut, when set, gives the number of body bytes to send before the
	// connection is cut for a content request starting at start (< 0: no cut).
	cut func(name string, start, total int64) int64
	// corrupt lists content shas whose bytes are served damaged.
	corrupt map[string]bool
	// chunkDelay slows the content server down (per 4 KiB).
	chunkDelay time.Duration
	// stallOnce makes the next content response stall this long after its
	// first chunk.
	stallOnce time.Duration

	// what happened
	log        []string          // "METHOD PATH range=..." per request
	contentGet map[string]int    // content requests per sha
	auth       map[string]string // last Authorization per path prefix
}

type fakeRepo struct {
	commit string
	gated  bool
	files  map[string][]byte
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{
		t:          t,
		repos:      map[string]*fakeRepo{},
		plain:      map[string][]byte{},
		plainTag:   map[string]string{},
		corrupt:    map[string]bool{},
		contentGet: map[string]int{},
		auth:       map[string]string{},
		token:      "hf_secret",
	}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeHub) addRepo(name string, files map[string][]byte) *fakeRepo {
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := sha256.Sum256([]byte(name))
	r := &fakeRepo{commit: hex.EncodeToString(sum[:20]), files: files}
	h.repos[name] = r
	return r
}

func (h *fakeHub) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

func (h *fakeHub) gets(sha string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.contentGet[sha]
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.log = append(h.log, r.Method+" "+r.URL.Path+" range="+r.Header.Get("Range"))
	h.auth[r.URL.Path] = r.Header.Get("Authorization")
	h.mu.Unlock()
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/models/"):
		h.serveTree(w, r)
	case strings.HasPrefix(p, "/cdn/"):
		h.serveContent(w, r, strings.TrimPrefix(p, "/cdn/"))
	case strings.HasPrefix(p, "/files/"):
		name := strings.TrimPrefix(p, "/files/")
		h.mu.Lock()
		data, ok := h.plain[name]
		tag := h.plainTag[name]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", tag)
		h.serveBytes(w, r, name, data)
	default:
		h.serveResolve(w, r)
	}
}

// repoFor finds the repository of an /OWNER/REPO/... path and checks access.
func (h *fakeHub) repoFor(w http.ResponseWriter, r *http.Request, name string) *fakeRepo {
	h.mu.Lock()
	repo := h.repos[name]
	h.mu.Unlock()
	if repo == nil {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.Header().Set("X-Error-Message", "Repository not found")
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	if repo.gated {
		switch r.Header.Get("Authorization") {
		case "Bearer " + h.token:
		case "":
			w.Header().Set("X-Error-Code", "GatedRepo")
			w.Header().Set("X-Error-Message", "Access to model "+name+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		default:
			w.Header().Set("X-Error-Code", "GatedRepo")
			w.Header().Set("X-Error-Message", "Access to model "+name+" is restricted and you are not in the authorized list.")
			w.WriteHeader(http.StatusForbidden)
			return nil
		}
	}
	return repo
}

func (h *fakeHub) serveTree(w http.ResponseWriter, r *http.Request) {
	// /api/models/OWNER/REPO/tree/REV
	rest := strings.TrimPrefix(r.URL.Path, "/api/models/")
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) < 4 || parts[2] != "tree" {
		http.NotFound(w, r)
		return
	}
	repo := h.repoFor(w, r, parts[0]+"/"+parts[1])
	if repo == nil {
		return
	}
	if rev := parts[3]; rev != "main" && rev != repo.commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	var names []string
	for n := range repo.files {
		names = append(names, n)
	}
	sort.Strings(names)
	// Directories appear as entries of their own, as on the Hub.
	dirs := map[string]bool{}
	type lfs struct {
		OID         string `json:"oid"`
		Size        int64  `json:"size"`
		PointerSize int    `json:"pointerSize"`
	}
	type entry struct {
		Type string `json:"type"`
		OID  string `json:"oid"`
		Size int64  `json:"size"`
		Path string `json:"path"`
		LFS  *lfs   `json:"lfs,omitempty"`
	}
	var all []entry
	for _, n := range names {
		if i := strings.LastIndex(n, "/"); i > 0 && !dirs[n[:i]] {
			dirs[n[:i]] = true
			all = append(all, entry{Type: "directory", OID: "0000", Path: n[:i]})
		}
		data := repo.files[n]
		e := entry{Type: "file", OID: sha256Hex(data)[:40], Size: int64(len(data)), Path: n}
		if strings.HasSuffix(n, ".gguf") {
			e.LFS = &lfs{OID: sha256Hex(data), Size: int64(len(data)), PointerSize: 134}
		}
		all = append(all, e)
	}
	// Pages of 3 entries, linked by rel="next".
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(start+3, len(all))
	if end < len(all) {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", strconv.Itoa(end))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.String()))
	}
	w.Header().Set("Content-Type", "application/json")
	page := all[start:end]
	if page == nil {
		page = []entry{}
	}
	json.NewEncoder(w).Encode(page)
}

func (h *fakeHub) serveResolve(w http.ResponseWriter, r *http.Request) {
	// /OWNER/REPO/resolve/REV/FILE...
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	if len(parts) < 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repo := h.repoFor(w, r, parts[0]+"/"+parts[1])
	if repo == nil {
		return
	}
	if rev := parts[3]; rev != "main" && rev != repo.commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	data, ok := repo.files[parts[4]]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.Header().Set("X-Error-Message", "Entry not found")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	sha := sha256Hex(data)
	h.mu.Lock()
	h.plain["sha-"+sha] = data // the content server's store
	h.mu.Unlock()
	w.Header().Set("X-Repo-Commit", repo.commit)
	w.Header().Set("X-Linked-Etag", `"`+sha+`"`)
	w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
	w.Header().Set("ETag", `"`+sha+`"`)
	w.Header().Set("Location", "/cdn/"+sha+"?X-Amz-Signature=abc")
	w.WriteHeader(http.StatusFound)
}

func (h *fakeHub) serveContent(w http.ResponseWriter, r *http.Request, sha string) {
	h.mu.Lock()
	data, ok := h.plain["sha-"+sha]
	h.contentGet[sha]++
	bad := h.corrupt[sha]
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if bad {
		data = append([]byte(nil), data...)
		data[len(data)-1] ^= 0xff
	}
	w.Header().Set("ETag", `"cdn-`+sha[:16]+`"`)
	h.serveBytes(w, r, sha, data)
}

// serveBytes serves data with Range/If-Range support (http.ServeContent),
// slowed down and cut as configured.
func (h *fakeHub) serveBytes(w http.ResponseWriter, r *http.Request, name string, data []byte) {
	var start int64
	if rg := r.Header.Get("Range"); strings.HasPrefix(rg, "bytes=") {
		a, _, _ := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-")
		start, _ = strconv.ParseInt(a, 10, 64)
	}
	h.mu.Lock()
	cut, delay, stall := h.cut, h.chunkDelay, h.stallOnce
	h.stallOnce = 0
	h.mu.Unlock()
	limit := int64(-1)
	if cut != nil && r.Method == http.MethodGet {
		limit = cut(name, start, int64(len(data)))
	}
	cw := &cutWriter{ResponseWriter: w, limit: limit, delay: delay, stall: stall}
	http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(data))
	if cw.cut {
		panic(http.ErrAbortHandler)
	}
}

// cutWriter passes at most limit body bytes (limit < 0: all), flushing
// them, then drops the rest and reports cut.
type cutWriter struct {
	http.ResponseWriter
	limit   int64
	written int64
	delay   time.Duration
	stall   time.Duration
	cut     bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		chunk := p[:min(len(p), 4096)]
		if c.limit >= 0 {
			if room := c.limit - c.written; room < int64(len(chunk)) {
				chunk = chunk[:max(room, 0)]
				c.cut = true
			}
		}
		if len(chunk) > 0 {
			if _, err := c.ResponseWriter.Write(chunk); err != nil {
				return 0, err
			}
			c.written += int64(len(chunk))
		}
		if c.cut {
			c.ResponseWriter.(http.Flusher).Flush()
			return 0, fmt.Errorf("cut")
		}
		if c.delay > 0 || c.stall > 0 {
			c.ResponseWriter.(http.Flusher).Flush()
			time.Sleep(c.delay + c.stall)
			c.stall = 0
		}
		p = p[len(chunk):]
	}
	return n, nil
}
