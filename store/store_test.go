package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestStore opens a store in a temporary directory talking to hub, with
// no token, no retries and fast backoff.
func newTestStore(t *testing.T, hub *fakeHub) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoint = hub.srv.URL
	s.Token = ""
	s.Offline = false
	s.Client = hub.srv.Client()
	s.Retries = 0
	s.retryDelay = time.Millisecond
	return s
}

func checkBlob(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (got %d bytes, want %d)", p, len(got), len(want))
	}
	if base := filepath.Base(p); base != "sha256-"+sha256Hex(want) {
		t.Fatalf("blob named %s, want sha256-%s", base, sha256Hex(want))
	}
}

// noPartials fails if a partial download is left with content.
func noPartials(t *testing.T, s *Store) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(s.Home, "tmp"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".partial") {
			if st, err := os.Stat(filepath.Join(s.Home, "tmp", e.Name())); err == nil && st.Size() > 0 {
				t.Errorf("partial download left behind: %s (%d bytes)", e.Name(), st.Size())
			}
		}
	}
}

func TestParseRef(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "owner", "repo:Q4")
	os.MkdirAll(filepath.Dir(existing), 0o755)
	os.WriteFile(existing, []byte("x"), 0o644)
	cases := []struct {
		in   string
		want Ref
		str  string
	}{
		{"hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
			Ref{Kind: HFFile, Repo: "bartowski/SmolLM2-135M-Instruct-GGUF", File: "SmolLM2-135M-Instruct-Q4_K_M.gguf", Revision: "main"},
			"hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf"},
		{"hf://o/r/sub/dir/m-00001-of-00002.gguf@v1.0",
			Ref{Kind: HFFile, Repo: "o/r", File: "sub/dir/m-00001-of-00002.gguf", Revision: "v1.0"},
			"hf://o/r/sub/dir/m-00001-of-00002.gguf@v1.0"},
		{"Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m",
			Ref{Kind: HFQuant, Repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF", Quant: "Q4_K_M", Revision: "main"},
			"Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M"},
		{"o/r:Q8_0@abc123", Ref{Kind: HFQuant, Repo: "o/r", Quant: "Q8_0", Revision: "abc123"}, "o/r:Q8_0@abc123"},
		{"hf://o/r:IQ4_XS", Ref{Kind: HFQuant, Repo: "o/r", Quant: "IQ4_XS", Revision: "main"}, "o/r:IQ4_XS"},
		{"o/r", Ref{Kind: HFQuant, Repo: "o/r", Revision: "main"}, "o/r"},
		{"https://example.invalid/m/model.gguf?download=1", Ref{Kind: URL, URL: "https://example.invalid/m/model.gguf?download=1"}, "https://example.invalid/m/model.gguf?download=1"},
		{"dummy:7b:q4_0", Ref{Kind: Dummy, Shape: "7b", Type: "q4_0"}, "dummy:7b:q4_0"},
		{"models/x.gguf", Ref{Kind: Local, Path: "models/x.gguf"}, "models/x.gguf"},
		{"./o/r", Ref{Kind: Local, Path: "./o/r"}, "./o/r"},
		{"/abs/o/r:Q4", Ref{Kind: Local, Path: "/abs/o/r:Q4"}, "/abs/o/r:Q4"},
		{existing, Ref{Kind: Local, Path: existing}, existing},
		{"file:///m/x.gguf", Ref{Kind: Local, Path: "/m/x.gguf"}, "/m/x.gguf"},
	}
	for _, c := range cases {
		got, err := ParseRef(c.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", c.in, err)
			continue
		}
		c.want.Raw = c.in
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseRef(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if got.String() != c.str {
			t.Errorf("ParseRef(%q).String() = %q, want %q", c.in, got.String(), c.str)
		}
	}
	for _, bad := range []string{"", "hf://o", "hf://o/r/", "hf://o/r/../x.gguf", "hf://a/b/../../x.gguf", "hf://o/r/./x.gguf", "hf://o/r/.", "hf://o/r//x.gguf", "hf://o/r/x.gguf@", "dummy:x", "https://", "https://h/dir/", "o/r:Q4 K"} {
		if r, err := ParseRef(bad); err == nil && r.Kind != Local {
			t.Errorf("ParseRef(%q) = %+v, want an error", bad, r)
		}
	}
}

func TestHasTagAndSplitParts(t *testing.T) {
	for _, c := range []struct {
		name, tag string
		want      bool
	}{
		{"SmolLM2-135M-Instruct-Q4_K_M.gguf", "Q4_K_M", true},
		{"smollm2-135m-instruct-q4_k_m.gguf", "Q4_K_M", true},
		{"model-Q4_K_M.gguf", "Q4_K", false},
		{"model-Q4_K.gguf", "Q4_K", true},
		{"model-IQ4_XS.gguf", "Q4_XS", false},
		{"model-IQ4_XS.gguf", "IQ4_XS", true},
		{"model.Q8_0.gguf", "Q8_0", true},
		{"model-Q4_0_4_4.gguf", "Q4_0", false},
		{"Q4_K_M/model-Q4_K_M-00001-of-00002.gguf", "Q4_K_M", true},
		{"model-F16.gguf", "f16", true},
		{"model-BF16.gguf", "F16", false},
	} {
		if got := hasTag(c.name, c.tag); got != c.want {
			t.Errorf("hasTag(%q, %q) = %v, want %v", c.name, c.tag, got, c.want)
		}
	}
	if got := splitParts("m-00002-of-00003.gguf"); !reflect.DeepEqual(got, []string{"m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"}) {
		t.Errorf("splitParts = %v", got)
	}
	if got := splitParts("m.gguf"); !reflect.DeepEqual(got, []string{"m.gguf"}) {
		t.Errorf("splitParts = %v", got)
	}
}

func TestPullFull(t *testing.T) {
	hub := newFakeHub(t)
	q4 := tinyGGUF(1, 50_000)
	q8 := tinyGGUF(2, 60_000)
	hub.addRepo("acme/tiny-GGUF", map[string][]byte{
		"README.md":             []byte("# tiny\n"),
		"tiny-Q4_K_M.gguf":      q4,
		"tiny-Q8_0.gguf":        q8,
		"mmproj-tiny-F16.gguf":  tinyGGUF(3, 10),
		"config/other.json":     []byte("{}"),
		"config/more/deep.json": []byte("{}"),
	})
	s := newTestStore(t, hub)
	var progress bytes.Buffer
	m, err := s.Pull(context.Background(), "acme/tiny-GGUF:q4_k_m", ResolveOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if m.Ref != "acme/tiny-GGUF:Q4_K_M" || m.Repo != "acme/tiny-GGUF" || m.Revision != "main" || len(m.Commit) != 40 {
		t.Errorf("manifest = %+v", m)
	}
	if len(m.Files) != 1 || m.Files[0].Name != "tiny-Q4_K_M.gguf" || m.Files[0].Size != int64(len(q4)) ||
		m.Files[0].SHA256 != sha256Hex(q4) || m.Files[0].SHA256Source != "hub" || m.Size != int64(len(q4)) {
		t.Errorf("files = %+v", m.Files)
	}
	if !strings.Contains(m.Files[0].URL, "/resolve/"+m.Commit+"/tiny-Q4_K_M.gguf") {
		t.Errorf("download not pinned to the commit: %s", m.Files[0].URL)
	}
	checkBlob(t, m.Paths()[0], q4)
	noPartials(t, s)
	out := progress.String()
	for _, want := range []string{"using tiny-Q4_K_M.gguf", "downloading tiny-Q4_K_M.gguf (48.9 KiB)", "tiny-Q4_K_M.gguf: 48.9 KiB in"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%s", want, out)
		}
	}

	// Stored: Resolve needs no network.
	n := len(hub.requests())
	paths, err := s.Resolve(context.Background(), "acme/tiny-GGUF:Q4_K_M", ResolveOptions{})
	if err != nil || !reflect.DeepEqual(paths, m.Paths()) {
		t.Fatalf("Resolve = %v, %v", paths, err)
	}
	if len(hub.requests()) != n {
		t.Errorf("Resolve of a stored model made requests: %v", hub.requests()[n:])
	}
	// Pulling again checks the Hub but downloads nothing.
	if _, err := s.Pull(context.Background(), "acme/tiny-GGUF:Q4_K_M", ResolveOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := hub.gets(sha256Hex(q4)); got != 1 {
		t.Errorf("content fetched %d times, want 1", got)
	}
	// The same file under its full name reuses the blob.
	m2, err := s.Pull(context.Background(), "hf://acme/tiny-GGUF/tiny-Q4_K_M.gguf", ResolveOptions{})
	if err != nil || m2.Paths()[0] != m.Paths()[0] || hub.gets(sha256Hex(q4)) != 1 {
		t.Fatalf("second reference: %v %v (fetches %d)", m2, err, hub.gets(sha256Hex(q4)))
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Ref != "acme/tiny-GGUF:Q4_K_M" || list[1].Ref != "hf://acme/tiny-GGUF/tiny-Q4_K_M.gguf" {
		t.Fatalf("List = %v, %v", list, err)
	}
	// Removing one reference keeps the shared blob; removing the other frees it.
	if freed, err := s.Remove("acme/tiny-GGUF:q4_k_m"); err != nil || freed != 0 {
		t.Fatalf("Remove = %d, %v", freed, err)
	}
	checkBlob(t, m.Paths()[0], q4)
	if freed, err := s.Remove("hf://acme/tiny-GGUF/tiny-Q4_K_M.gguf"); err != nil || freed != int64(len(q4)) {
		t.Fatalf("Remove = %d, %v", freed, err)
	}
	if _, err := os.Stat(m.Paths()[0]); !os.IsNotExist(err) {
		t.Errorf("blob still there after the last reference was removed: %v", err)
	}
	if _, err := s.Remove("acme/tiny-GGUF:Q4_K_M"); !errors.Is(err, ErrNotStored) {
		t.Errorf("Remove of a removed model: %v", err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("List after removal = %v", list)
	}
}

func TestPullResumeAfterCuts(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			hub := newFakeHub(t)
			data := tinyGGUF(seed, 300_000+int(seed)*7919)
			hub.addRepo("acme/cut-GGUF", map[string][]byte{"cut-Q4_0.gguf": data})
			rng := rand.New(rand.NewSource(seed))
			cuts := 0
			hub.cut = func(name string, start, total int64) int64 {
				if cuts >= 4 {
					return -1
				}
				cuts++
				return rng.Int63n(total - start)
			}
			s := newTestStore(t, hub)
			var err error
			var m *Manifest
			fails := 0
			for try := 0; try < 10; try++ {
				m, err = s.Pull(context.Background(), "acme/cut-GGUF:Q4_0", ResolveOptions{})
				if err == nil {
					break
				}
				fails++
				if !strings.Contains(err.Error(), "interrupted") && !strings.Contains(err.Error(), "ended at") {
					t.Fatalf("pull failed with %v", err)
				}
				if _, e := s.Lookup("acme/cut-GGUF:Q4_0"); !errors.Is(e, ErrNotStored) {
					t.Fatalf("an interrupted pull is visible in the store: %v", e)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if fails != 4 {
				t.Errorf("%d failed pulls, want 4", fails)
			}
			checkBlob(t, m.Paths()[0], data)
			noPartials(t, s)
			// Every retry after the first asked for a range, never going back.
			var last int64 = -1
			ranged := 0
			for _, r := range hub.requests() {
				if !strings.HasPrefix(r, "GET /cdn/") {
					continue
				}
				var off int64
				if i := strings.Index(r, "range=bytes="); i >= 0 {
					fmt.Sscanf(r[i+len("range=bytes="):], "%d-", &off)
					ranged++
				}
				if off < last {
					t.Errorf("download went back from %d to %d", last, off)
				}
				last = off
			}
			if ranged == 0 {
				t.Errorf("no Range request was made: %v", hub.requests())
			}
		})
	}
}

func TestPullRetriesWithinOnePull(t *testing.T) {
	hub := newFakeHub(t)
	data := tinyGGUF(9, 200_000)
	hub.addRepo("acme/r-GGUF", map[string][]byte{"r-Q5_K_M.gguf": data})
	cuts := 0
	hub.cut = func(name string, start, total int64) int64 {
		if cuts < 3 {
			cuts++
			return (total - start) / 3
		}
		return -1
	}
	s := newTestStore(t, hub)
	s.Retries = 5
	var progress bytes.Buffer
	m, err := s.Pull(context.Background(), "hf://acme/r-GGUF/r-Q5_K_M.gguf", ResolveOptions{Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkBlob(t, m.Paths()[0], data)
	if !strings.Contains(progress.String(), "retrying in") || !strings.Contains(progress.String(), "resumed at") {
		t.Errorf("progress does not show the retries:\n%s", progress.String())
	}
}

func TestStalledDownloadIsResumed(t *testing.T) {
	hub := newFakeHub(t)
	data := tinyGGUF(10, 40_000)
	hub.addRepo("acme/s-GGUF", map[string][]byte{"s-Q4_0.gguf": data})
	s := newTestStore(t, hub)
	s.Retries = 10
	s.idleTimeout = 100 * time.Millisecond
	hub.stallOnce = 600 * time.Millisecond
	var progress bytes.Buffer
	m, err := s.Pull(context.Background(), "acme/s-GGUF:Q4_0", ResolveOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	checkBlob(t, m.Paths()[0], data)
	if !strings.Contains(progress.String(), errStalled.Error()) {
		t.Errorf("progress does not mention the stall:\n%s", progress.String())
	}
}

func TestIfRangeRestartsChangedFile(t *testing.T) {
	hub := newFakeHub(t)
	v1 := tinyGGUF(11, 100_000)
	v2 := tinyGGUF(12, 100_000)
	hub.plain["m.gguf"], hub.plainTag["m.gguf"] = v1, `"v1"`
	hub.cut = func(name string, start, total int64) int64 {
		if start == 0 && name == "m.gguf" {
			hub.cut = nil
			return total / 2
		}
		return -1
	}
	s := newTestStore(t, hub)
	url := hub.srv.URL + "/files/m.gguf"
	if _, err := s.Pull(context.Background(), url, ResolveOptions{}); err == nil {
		t.Fatal("cut pull succeeded")
	}
	// The file changes on the server: If-Range fails, the whole new file
	// comes back and replaces the partial.
	hub.mu.Lock()
	hub.plain["m.gguf"], hub.plainTag["m.gguf"] = v2, `"v2"`
	hub.mu.Unlock()
	m, err := s.Pull(context.Background(), url, ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkBlob(t, m.Paths()[0], v2)
	if m.Files[0].SHA256Source != "computed" || m.Files[0].ETag != "v2" || m.Kind != "url" {
		t.Errorf("manifest = %+v", m)
	}
	// Pulled again: the server says 304 Not Modified, nothing is downloaded.
	before := len(hub.requests())
	if _, err := s.Pull(context.Background(), url, ResolveOptions{}); err != nil {
		t.Fatal(err)
	}
	reqs := hub.requests()[before:]
	if len(reqs) != 1 {
		t.Errorf("re-pull made %d requests: %v", len(reqs), reqs)
	}
}

func TestChecksumMismatch(t *testing.T) {
	hub := newFakeHub(t)
	data := tinyGGUF(13, 30_000)
	hub.addRepo("acme/bad-GGUF", map[string][]byte{"bad-Q4_0.gguf": data})
	hub.corrupt[sha256Hex(data)] = true
	s := newTestStore(t, hub)
	_, err := s.Pull(context.Background(), "acme/bad-GGUF:Q4_0", ResolveOptions{})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	for _, want := range []string{"acme/bad-GGUF:Q4_0", "bad-Q4_0.gguf", "expected " + sha256Hex(data), "pull again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	noPartials(t, s)
	if ents, _ := os.ReadDir(filepath.Join(s.Home, "blobs")); len(ents) != 0 {
		t.Errorf("a corrupt blob was stored: %v", ents)
	}
	if _, err := s.Resolve(context.Background(), "acme/bad-GGUF:Q4_0", ResolveOptions{Offline: true}); !errors.Is(err, ErrOffline) {
		t.Errorf("offline Resolve after a failed pull: %v", err)
	}
	// Fixed on the server: the next pull succeeds.
	delete(hub.corrupt, sha256Hex(data))
	m, err := s.Pull(context.Background(), "acme/bad-GGUF:Q4_0", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkBlob(t, m.Paths()[0], data)
}

func TestResumedCorruptFileRestarts(t *testing.T) {
	hub := newFakeHub(t)
	data := tinyGGUF(16, 100_000)
	sha := sha256Hex(data)
	hub.addRepo("acme/rc-GGUF", map[string][]byte{"rc-Q4_0.gguf": data})
	s := newTestStore(t, hub)
	hub.cut = func(name string, start, total int64) int64 { return total / 2 }
	if _, err := s.Pull(context.Background(), "acme/rc-GGUF:Q4_0", ResolveOptions{}); err == nil {
		t.Fatal("cut pull succeeded")
	}
	// The rest now comes back damaged: the resumed file fails its check,
	// the download starts over once (and is cut and resumed again), and
	// the pull fails with ErrChecksum without keeping anything.
	hub.mu.Lock()
	hub.corrupt[sha] = true
	starts := 0
	hub.cut = func(name string, start, total int64) int64 {
		if start == 0 {
			starts++
			if starts == 1 {
				return total / 3
			}
		}
		return -1
	}
	hub.mu.Unlock()
	s.Retries = 3
	_, err := s.Pull(context.Background(), "acme/rc-GGUF:Q4_0", ResolveOptions{})
	if !errors.Is(err, ErrChecksum) || errors.Is(err, errRestart) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	if starts != 1 {
		t.Errorf("the download started over %d times, want 1", starts)
	}
	noPartials(t, s)
	// A damaged partial file (here: its first bytes overwritten) fails the
	// check after resuming; the download starts over and succeeds.
	hub.mu.Lock()
	delete(hub.corrupt, sha)
	hub.cut = func(name string, start, total int64) int64 {
		if start == 0 {
			hub.cut = nil
			return total / 2
		}
		return -1
	}
	hub.mu.Unlock()
	s.Retries = 0
	if _, err := s.Pull(context.Background(), "acme/rc-GGUF:Q4_0", ResolveOptions{}); err == nil {
		t.Fatal("cut pull succeeded")
	}
	partial := filepath.Join(s.Home, "tmp", "sha256-"+sha+".partial")
	f, err := os.OpenFile(partial, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("XXXX"), 100)
	f.Close()
	before := hub.gets(sha)
	m, err := s.Pull(context.Background(), "acme/rc-GGUF:Q4_0", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkBlob(t, m.Paths()[0], data)
	if got := hub.gets(sha) - before; got != 2 {
		t.Errorf("%d content requests, want 2 (resume, then start over)", got)
	}
}

func TestInvalidGGUFRefused(t *testing.T) {
	hub := newFakeHub(t)
	hub.addRepo("acme/html-GGUF", map[string][]byte{"html-Q4_0.gguf": []byte("<html>not a model</html>")})
	s := newTestStore(t, hub)
	_, err := s.Pull(context.Background(), "acme/html-GGUF:Q4_0", ResolveOptions{})
	if !errors.Is(err, ErrInvalidGGUF) || !strings.Contains(err.Error(), "acme/html-GGUF:Q4_0") {
		t.Fatalf("err = %v, want ErrInvalidGGUF naming the reference", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Home, "blobs")); len(ents) != 0 {
		t.Errorf("an invalid file was stored: %v", ents)
	}
}

func TestNotFoundErrors(t *testing.T) {
	hub := newFakeHub(t)
	hub.addRepo("acme/tiny-GGUF", map[string][]byte{"tiny-Q4_K_M.gguf": tinyGGUF(1, 100)})
	hub.addRepo("acme/safetensors", map[string][]byte{"model.safetensors": []byte("x"), "README.md": []byte("x")})
	s := newTestStore(t, hub)
	for _, c := range []struct {
		ref  string
		kind error
		want []string
	}{
		{"acme/nope-GGUF:Q4_K_M", ErrNotFound, []string{"acme/nope-GGUF:Q4_K_M", "repository acme/nope-GGUF not found", "check OWNER/REPO"}},
		{"hf://acme/nope-GGUF/x.gguf", ErrNotFound, []string{"hf://acme/nope-GGUF/x.gguf", "not found"}},
		{"hf://acme/tiny-GGUF/tiny-Q5_0.gguf", ErrNotFound, []string{"file tiny-Q5_0.gguf not found in acme/tiny-GGUF", "OWNER/REPO:QUANT"}},
		{"hf://acme/tiny-GGUF/tiny-Q4_K_M.gguf@v9", ErrNotFound, []string{"revision v9 not found"}},
		{"acme/tiny-GGUF:Q8_0", ErrNoGGUF, []string{`no GGUF file in acme/tiny-GGUF matches "Q8_0"`, "available: tiny-Q4_K_M.gguf"}},
		{"acme/safetensors", ErrNoGGUF, []string{"has no .gguf file"}},
		{hub.srv.URL + "/files/missing.gguf", ErrNotFound, []string{"/files/missing.gguf", "no such file"}},
	} {
		_, err := s.Pull(context.Background(), c.ref, ResolveOptions{})
		if !errors.Is(err, c.kind) {
			t.Errorf("%s: err = %v, want %v", c.ref, err, c.kind)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.ref, err, w)
			}
		}
	}
}

func TestGatedRepo(t *testing.T) {
	hub := newFakeHub(t)
	data := tinyGGUF(14, 1000)
	hub.addRepo("meta/gated-GGUF", map[string][]byte{"gated-Q4_K_M.gguf": data}).gated = true
	s := newTestStore(t, hub)
	_, err := s.Pull(context.Background(), "meta/gated-GGUF:Q4_K_M", ResolveOptions{})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	for _, w := range []string{"meta/gated-GGUF:Q4_K_M", "gated repository", "HTTP 401", "set HF_TOKEN", hub.srv.URL + "/meta/gated-GGUF"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	s.Token = "hf_wrong"
	_, err = s.Pull(context.Background(), "hf://meta/gated-GGUF/gated-Q4_K_M.gguf", ResolveOptions{})
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "token in HF_TOKEN has no access") {
		t.Fatalf("wrong token: %v", err)
	}
	s.Token = hub.token
	m, err := s.Pull(context.Background(), "meta/gated-GGUF:Q4_K_M", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkBlob(t, m.Paths()[0], data)
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if got := hub.auth["/api/models/meta/gated-GGUF/tree/main"]; got != "Bearer "+hub.token {
		t.Errorf("tree request Authorization = %q", got)
	}
}

func TestConcurrentPullsOfOneFile(t *testing.T) {
	hub := newFakeHub(t)
	data := tinyGGUF(15, 400_000)
	hub.addRepo("acme/c-GGUF", map[string][]byte{"c-Q4_K_M.gguf": data})
	hub.chunkDelay = 5 * time.Millisecond // about 0.5 s per download
	home := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	paths := make([][]string, 3)
	outs := make([]bytes.Buffer, 3)
	for i := range errs {
		// Separate Store values stand for separate processes: the lock is
		// a file lock, not a mutex.
		s := newTestStore(t, hub)
		s.Home = home
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := "acme/c-GGUF:Q4_K_M"
			if i == 2 {
				ref = "hf://acme/c-GGUF/c-Q4_K_M.gguf"
			}
			paths[i], errs[i] = s.Resolve(context.Background(), ref, ResolveOptions{Progress: &outs[i]})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		checkBlob(t, paths[i][0], data)
	}
	if n := hub.gets(sha256Hex(data)); n != 1 {
		t.Errorf("the file was downloaded %d times, want once", n)
	}
	waited := 0
	for i := range outs {
		if strings.Contains(outs[i].String(), "waiting for another download") {
			waited++
		}
	}
	if waited == 0 {
		t.Errorf("no pull reported waiting for the other")
	}
	s := newTestStore(t, hub)
	s.Home = home
	if list, err := s.List(); err != nil || len(list) != 2 {
		t.Errorf("List = %v, %v", list, err)
	}
	noPartials(t, s)
}

func TestSplitGGUF(t *testing.T) {
	hub := newFakeHub(t)
	parts := [][]byte{tinyGGUF(21, 20_000), tinyGGUF(22, 20_000), tinyGGUF(23, 5_000)}
	hub.addRepo("acme/big-GGUF", map[string][]byte{
		"Q8_0/big-Q8_0-00001-of-00003.gguf": parts[0],
		"Q8_0/big-Q8_0-00002-of-00003.gguf": parts[1],
		"Q8_0/big-Q8_0-00003-of-00003.gguf": parts[2],
		"big-Q2_K.gguf":                     tinyGGUF(24, 100),
	})
	s := newTestStore(t, hub)
	var progress bytes.Buffer
	m, err := s.Pull(context.Background(), "acme/big-GGUF:Q8_0", ResolveOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 3 || m.Size != int64(len(parts[0])+len(parts[1])+len(parts[2])) {
		t.Fatalf("manifest = %+v", m)
	}
	for i, p := range m.Paths() {
		checkBlob(t, p, parts[i])
		if want := fmt.Sprintf("Q8_0/big-Q8_0-%05d-of-00003.gguf", i+1); m.Files[i].Name != want {
			t.Errorf("file %d is %s, want %s", i, m.Files[i].Name, want)
		}
	}
	// Any part names the whole model.
	paths, err := s.Resolve(context.Background(), "hf://acme/big-GGUF/Q8_0/big-Q8_0-00002-of-00003.gguf", ResolveOptions{})
	if err != nil || !reflect.DeepEqual(paths, m.Paths()) {
		t.Errorf("Resolve(part 2) = %v, %v", paths, err)
	}
	// A missing part is a clear error.
	hub.addRepo("acme/broken-GGUF", map[string][]byte{
		"b-00001-of-00002.gguf": parts[0],
	})
	_, err = s.Pull(context.Background(), "acme/broken-GGUF", ResolveOptions{})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "part 2 of 2") {
		t.Errorf("broken split: %v", err)
	}
	// Local split files resolve to all parts.
	dir := t.TempDir()
	for i, p := range parts {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("x-%05d-of-00003.gguf", i+1)), p, 0o644)
	}
	paths, err = s.Resolve(context.Background(), filepath.Join(dir, "x-00001-of-00003.gguf"), ResolveOptions{Offline: true})
	if err != nil || len(paths) != 3 || filepath.Base(paths[2]) != "x-00003-of-00003.gguf" {
		t.Errorf("local split: %v, %v", paths, err)
	}
}

func TestQuantResolution(t *testing.T) {
	hub := newFakeHub(t)
	files := map[string][]byte{
		"m-Q4_K_M.gguf":                       tinyGGUF(31, 100),
		"m-Q4_K_S.gguf":                       tinyGGUF(32, 100),
		"m-IQ4_XS.gguf":                       tinyGGUF(33, 100),
		"m-Q8_0.gguf":                         tinyGGUF(34, 100),
		"alt/m-Q8_0.gguf":                     tinyGGUF(35, 100),
		"m-Q6_K-00001-of-00002.gguf":          tinyGGUF(36, 100),
		"m-Q6_K-00002-of-00002.gguf":          tinyGGUF(37, 100),
		"mmproj-m-Q4_K_M.gguf":                tinyGGUF(38, 100),
		"UD/m-UD-Q4_K_XL-00001-of-00001.gguf": tinyGGUF(39, 100),
	}
	hub.addRepo("acme/m-GGUF", files)
	s := newTestStore(t, hub)
	for _, c := range []struct{ ref, file string }{
		{"acme/m-GGUF:Q4_K_M", "m-Q4_K_M.gguf"},
		{"acme/m-GGUF:q4_k_s", "m-Q4_K_S.gguf"},
		{"acme/m-GGUF:IQ4_XS", "m-IQ4_XS.gguf"},
		{"acme/m-GGUF:Q6_K", "m-Q6_K-00001-of-00002.gguf"},
		{"acme/m-GGUF:UD-Q4_K_XL", "UD/m-UD-Q4_K_XL-00001-of-00001.gguf"},
		{"acme/m-GGUF", "m-Q4_K_M.gguf"}, // no tag: the Q4_K_M one
	} {
		m, err := s.Pull(context.Background(), c.ref, ResolveOptions{})
		if err != nil {
			t.Errorf("%s: %v", c.ref, err)
			continue
		}
		if m.Files[0].Name != c.file {
			t.Errorf("%s picked %s, want %s", c.ref, m.Files[0].Name, c.file)
		}
		checkBlob(t, m.Paths()[0], files[c.file])
	}
	_, err := s.Pull(context.Background(), "acme/m-GGUF:Q8_0", ResolveOptions{})
	var amb *AmbiguousError
	if !errors.As(err, &amb) || !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Q8_0: err = %v, want an AmbiguousError", err)
	}
	if !reflect.DeepEqual(amb.Choices, []string{"alt/m-Q8_0.gguf", "m-Q8_0.gguf"}) {
		t.Errorf("choices = %v", amb.Choices)
	}
	if !strings.Contains(err.Error(), "hf://OWNER/REPO/FILE.gguf") || !strings.Contains(err.Error(), "acme/m-GGUF:Q8_0") {
		t.Errorf("error %q does not say what to do", err)
	}
	// Without a Q4_K_M, a bare repository with several models is ambiguous.
	hub.addRepo("acme/two-GGUF", map[string][]byte{"a-Q8_0.gguf": files["m-Q8_0.gguf"], "a-F16.gguf": files["m-IQ4_XS.gguf"]})
	if _, err := s.Pull(context.Background(), "acme/two-GGUF", ResolveOptions{}); !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "a-F16.gguf, a-Q8_0.gguf") {
		t.Errorf("bare repo: %v", err)
	}
}

func TestOffline(t *testing.T) {
	hub := newFakeHub(t)
	data := tinyGGUF(41, 1000)
	hub.addRepo("acme/o-GGUF", map[string][]byte{"o-Q4_0.gguf": data})
	s := newTestStore(t, hub)
	for _, f := range []func() error{
		func() error {
			_, err := s.Resolve(context.Background(), "acme/o-GGUF:Q4_0", ResolveOptions{Offline: true})
			return err
		},
		func() error {
			_, err := s.Pull(context.Background(), "acme/o-GGUF:Q4_0", ResolveOptions{Offline: true})
			return err
		},
	} {
		err := f()
		if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "sluice pull acme/o-GGUF:Q4_0") {
			t.Errorf("err = %v, want ErrOffline with what to do", err)
		}
	}
	if n := len(hub.requests()); n != 0 {
		t.Errorf("offline mode made %d requests", n)
	}
	if _, err := s.Pull(context.Background(), "acme/o-GGUF:Q4_0", ResolveOptions{}); err != nil {
		t.Fatal(err)
	}
	hub.srv.Close()
	s.Offline = true
	paths, err := s.Resolve(context.Background(), "acme/o-GGUF:Q4_0", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkBlob(t, paths[0], data)
	// A blob deleted behind the store's back is noticed, not returned.
	os.Remove(paths[0])
	if _, err := s.Resolve(context.Background(), "acme/o-GGUF:Q4_0", ResolveOptions{}); !errors.Is(err, ErrOffline) {
		t.Errorf("missing blob: %v", err)
	}
}

func TestLocalAndDummy(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "m.gguf")
	os.WriteFile(p, tinyGGUF(1, 10), 0o644)
	paths, err := s.Resolve(context.Background(), p, ResolveOptions{})
	if err != nil || !reflect.DeepEqual(paths, []string{p}) {
		t.Errorf("local: %v, %v", paths, err)
	}
	if _, err := os.Stat(s.Home); !os.IsNotExist(err) {
		t.Errorf("resolving a local file created the store: %v", err)
	}
	if _, err := s.Resolve(context.Background(), "missing/model.gguf", ResolveOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing local file: %v", err)
	}
	if _, err := s.Pull(context.Background(), p, ResolveOptions{}); !errors.Is(err, ErrLocal) {
		t.Errorf("pull of a local file: %v", err)
	}
	if _, err := s.Resolve(context.Background(), "dummy:tiny:q4_0", ResolveOptions{}); !errors.Is(err, ErrDummyUnsupported) {
		t.Errorf("dummy: %v", err)
	}
}

func TestDiskFull(t *testing.T) {
	hub := newFakeHub(t)
	hub.addRepo("acme/d-GGUF", map[string][]byte{"d-Q4_0.gguf": tinyGGUF(51, 100_000)})
	s := newTestStore(t, hub)
	old := freeSpace
	freeSpace = func(string) int64 { return 4096 }
	defer func() { freeSpace = old }()
	_, err := s.Pull(context.Background(), "acme/d-GGUF:Q4_0", ResolveOptions{})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("err = %v, want ErrDiskFull", err)
	}
	for _, w := range []string{"acme/d-GGUF:Q4_0", "needs 97.8 KiB but only 4.0 KiB is free", "SLUICE_HOME"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if got := hub.gets(sha256Hex(tinyGGUF(51, 100_000))); got != 0 {
		t.Errorf("downloaded %d times despite no space", got)
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("SLUICE_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if h, _ := DefaultHome(); h != "/xdg/sluice" {
		t.Errorf("DefaultHome = %s", h)
	}
	t.Setenv("SLUICE_HOME", "/models")
	if h, _ := DefaultHome(); h != "/models" {
		t.Errorf("DefaultHome = %s", h)
	}
	t.Setenv("HF_ENDPOINT", "https://mirror.example.invalid/")
	t.Setenv("HF_TOKEN", "")
	tokDir := t.TempDir()
	os.WriteFile(filepath.Join(tokDir, "token"), []byte("hf_fromfile\n"), 0o600)
	t.Setenv("HF_HOME", tokDir)
	t.Setenv("HF_HUB_OFFLINE", "1")
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.Endpoint != "https://mirror.example.invalid" || s.Token != "hf_fromfile" || !s.Offline {
		t.Errorf("store = %+v", s)
	}
	t.Setenv("HF_TOKEN", "hf_env")
	if s, _ := Open(t.TempDir()); s.Token != "hf_env" {
		t.Errorf("HF_TOKEN not used: %q", s.Token)
	}
	// The token goes to the Hub endpoint only.
	if !s.isHubURL("https://mirror.example.invalid/o/r/resolve/main/x.gguf") || s.isHubURL("https://other.example.invalid/x.gguf") {
		t.Error("isHubURL")
	}
}

func TestProgressOutput(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	var plain bytes.Buffer
	p := &textProgress{w: &plain, now: clock}
	p.Start("m.gguf", 10<<20, 0)
	for i := 0; i < 10; i++ {
		now = now.Add(time.Second)
		p.Add(1 << 20)
	}
	p.Finish(nil)
	want := "downloading m.gguf (10.0 MiB)\n" +
		"m.gguf:  50% 5.0 MiB / 10.0 MiB, 1.0 MiB/s, ETA 5.0s\n" +
		"m.gguf:  100% 10.0 MiB / 10.0 MiB, 1.0 MiB/s\n" +
		"m.gguf: 10.0 MiB in 10.0s (1.0 MiB/s)\n"
	want = strings.Replace(want, "  100%", " 100%", 1)
	if plain.String() != want {
		t.Errorf("plain progress:\n%q\nwant\n%q", plain.String(), want)
	}
	var tty bytes.Buffer
	p = &textProgress{w: &tty, tty: true, now: clock}
	p.Start("dir/m.gguf", 4<<20, 1<<20)
	now = now.Add(time.Second)
	p.Add(1 << 20)
	p.Finish(nil)
	got := tty.String()
	for _, w := range []string{"\r\x1b[Km.gguf [======", "50% 2.0 MiB / 4.0 MiB, 1.0 MiB/s, ETA 2.0s", "m.gguf: 2.0 MiB in 1.0s (1.0 MiB/s), resumed at 1.0 MiB\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("terminal progress %q lacks %q", got, w)
		}
	}
	if NewProgress(&tty).(*textProgress).tty {
		t.Error("a buffer is not a terminal")
	}
}

// TestPickQuantSkipsEscapingPaths checks that a repository listing cannot
// make a pull request files outside the repository: names with "..", "."
// or empty segments, or absolute ones, are not candidates.
func TestPickQuantSkipsEscapingPaths(t *testing.T) {
	r := Ref{Kind: HFQuant, Repo: "o/r", Quant: "Q4_K_M", Revision: "main"}
	var files []hubFile
	for _, p := range []string{
		"../../other/private/resolve/main/m-Q4_K_M.gguf",
		"sub/../../x/m-Q4_K_M.gguf",
		"/m-Q4_K_M.gguf",
		"./m-Q4_K_M.gguf",
		"a//m-Q4_K_M.gguf",
		"ok/m-Q4_K_M.gguf",
	} {
		files = append(files, hubFile{Type: "file", Path: p})
	}
	got, err := pickQuant(r, files)
	if err != nil || got != "ok/m-Q4_K_M.gguf" {
		t.Fatalf("pickQuant = %q, %v; want ok/m-Q4_K_M.gguf", got, err)
	}
	if _, err := pickQuant(r, files[:5]); !errors.Is(err, ErrNoGGUF) {
		t.Fatalf("pickQuant of escaping paths only: %v, want ErrNoGGUF", err)
	}
}
