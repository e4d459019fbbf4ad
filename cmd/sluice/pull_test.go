package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pullTestGGUF is a valid GGUF v3 file with no tensors, made unique and
// larger by a description of pad bytes.
func pullTestGGUF(pad int) []byte {
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(uint64(0))
	w(uint64(2))
	str("general.architecture")
	w(uint32(8))
	str("llama")
	str("general.description")
	w(uint32(8))
	str(strings.Repeat("x", pad))
	return b.Bytes()
}

// pullTestHub is a minimal imitation of the Hugging Face Hub on loopback:
// the tree API, resolve addresses redirecting to a content server that
// supports ranges, and a gated repository that wants "Bearer hf_test".
func pullTestHub(t *testing.T, repos map[string]map[string][]byte, gated string) *httptest.Server {
	blobs := map[string][]byte{}
	for _, files := range repos {
		for _, data := range files {
			sum := sha256.Sum256(data)
			blobs[hex.EncodeToString(sum[:])] = data
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		if sha, ok := strings.CutPrefix(p, "cdn/"); ok {
			data, ok := blobs[sha]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("ETag", `"`+sha+`"`)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
			return
		}
		api := strings.HasPrefix(p, "api/models/")
		p = strings.TrimPrefix(p, "api/models/")
		parts := strings.SplitN(p, "/", 5)
		if len(parts) < 4 {
			http.NotFound(w, r)
			return
		}
		name := parts[0] + "/" + parts[1]
		files, ok := repos[name]
		if !ok {
			w.Header().Set("X-Error-Code", "RepoNotFound")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if name == gated && r.Header.Get("Authorization") != "Bearer hf_test" {
			w.Header().Set("X-Error-Code", "GatedRepo")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if api {
			type entry struct {
				Type string `json:"type"`
				Path string `json:"path"`
				Size int    `json:"size"`
			}
			var list []entry
			for n, d := range files {
				list = append(list, entry{"file", n, len(d)})
			}
			json.NewEncoder(w).Encode(list)
			return
		}
		data, ok := files[parts[4]]
		if !ok || parts[2] != "resolve" {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		sum := sha256.Sum256(data)
		sha := hex.EncodeToString(sum[:])
		w.Header().Set("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
		w.Header().Set("X-Linked-Etag", `"`+sha+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
		http.Redirect(w, r, "/cdn/"+sha, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// pullTestEnv points the store at a temporary SLUICE_HOME and the Hub at
// srv, with no token.
func pullTestEnv(t *testing.T, srv *httptest.Server) string {
	home := filepath.Join(t.TempDir(), "sluice")
	t.Setenv("SLUICE_HOME", home)
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("SLUICE_OFFLINE", "")
	return home
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = runMain(args, &o, &e)
	return code, o.String(), e.String()
}

func TestPullListRemove(t *testing.T) {
	data := pullTestGGUF(20000)
	srv := pullTestHub(t, map[string]map[string][]byte{
		"acme/tiny-GGUF": {"tiny-Q4_K_M.gguf": data, "tiny-Q8_0.gguf": pullTestGGUF(10)},
	}, "")
	home := pullTestEnv(t, srv)

	code, out, errOut := runCLI("list")
	if code != 0 || !strings.Contains(out, "no models in "+home) {
		t.Fatalf("list on an empty store: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI("pull", "acme/tiny-GGUF:q4_k_m")
	if code != 0 {
		t.Fatalf("pull: exit %d: %s", code, errOut)
	}
	sum := sha256.Sum256(data)
	blob := filepath.Join(home, "blobs", "sha256-"+hex.EncodeToString(sum[:]))
	if !strings.HasPrefix(out, "pulled acme/tiny-GGUF:Q4_K_M: 1 file, 19.6 KiB\n") || !strings.Contains(out, blob) {
		t.Errorf("pull output:\n%s", out)
	}
	if !strings.Contains(errOut, "using tiny-Q4_K_M.gguf") || !strings.Contains(errOut, "downloading tiny-Q4_K_M.gguf") {
		t.Errorf("pull progress:\n%s", errOut)
	}
	if got, err := os.ReadFile(blob); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob: %v", err)
	}

	// Flags may follow the reference; stored models pull again cheaply.
	code, out, errOut = runCLI("pull", "acme/tiny-GGUF:Q4_K_M", "--json")
	if code != 0 {
		t.Fatalf("pull --json: exit %d: %s", code, errOut)
	}
	var m struct {
		Ref   string   `json:"ref"`
		Paths []string `json:"paths"`
		Files []struct {
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Ref != "acme/tiny-GGUF:Q4_K_M" || len(m.Paths) != 1 || m.Paths[0] != blob {
		t.Errorf("pull --json: %v\n%s", err, out)
	}

	code, out, _ = runCLI("list")
	if code != 0 || !strings.Contains(out, "REF") || !strings.Contains(out, "acme/tiny-GGUF:Q4_K_M") || !strings.Contains(out, "main (01234567)") {
		t.Errorf("list:\n%s", out)
	}
	code, out, _ = runCLI("list", "--json")
	var ms []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &ms) != nil || len(ms) != 1 {
		t.Errorf("list --json:\n%s", out)
	}

	// --offline works for a stored model and fails clearly otherwise.
	if code, _, errOut = runCLI("pull", "--offline", "acme/tiny-GGUF:Q4_K_M"); code != 0 {
		t.Errorf("pull --offline of a stored model: %s", errOut)
	}
	code, _, errOut = runCLI("pull", "acme/tiny-GGUF:Q8_0", "--offline")
	if code != 1 || !strings.Contains(errOut, "offline mode forbids downloading") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("pull --offline of a missing model: %d %q", code, errOut)
	}

	code, out, errOut = runCLI("rm", "acme/tiny-GGUF:Q4_K_M")
	if code != 0 || out != "removed acme/tiny-GGUF:Q4_K_M (freed 19.6 KiB)\n" {
		t.Errorf("rm: %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("blob survived rm: %v", err)
	}
	code, _, errOut = runCLI("rm", "acme/tiny-GGUF:Q4_K_M")
	if code != 1 || !strings.Contains(errOut, "not in the store") {
		t.Errorf("rm of a missing model: %d %q", code, errOut)
	}
}

func TestPullErrors(t *testing.T) {
	srv := pullTestHub(t, map[string]map[string][]byte{
		"meta/gated-GGUF": {"g-Q4_K_M.gguf": pullTestGGUF(100)},
	}, "meta/gated-GGUF")
	pullTestEnv(t, srv)
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"pull"}, 2, []string{"sluice pull: usage: want one model reference"}},
		{[]string{"pull", "a/b:Q4_0", "c/d:Q4_0"}, 2, []string{"usage"}},
		{[]string{"pull", "acme/nope-GGUF:Q4_K_M"}, 1, []string{"sluice pull: acme/nope-GGUF:Q4_K_M: repository acme/nope-GGUF not found"}},
		{[]string{"pull", "hf://meta/gated-GGUF/missing.gguf"}, 1, []string{"sluice pull: hf://meta/gated-GGUF/missing.gguf: gated repository", "set HF_TOKEN"}},
		{[]string{"pull", "meta/gated-GGUF:Q4_K_M"}, 1, []string{"gated repository meta/gated-GGUF", "accept the model's terms at " + srv.URL + "/meta/gated-GGUF"}},
		{[]string{"pull", "dummy:tiny:f32"}, 1, []string{"dummy models are not supported yet"}},
		{[]string{"pull", "./local.gguf"}, 1, []string{"local files are used in place"}},
		{[]string{"rm"}, 2, []string{"usage"}},
		{[]string{"list", "extra"}, 2, []string{"usage"}},
	} {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line", c.args, code, errOut, c.code)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, errOut, w)
			}
		}
	}
	// HF_TOKEN opens the gated repository.
	t.Setenv("HF_TOKEN", "hf_test")
	if code, out, errOut := runCLI("pull", "meta/gated-GGUF:Q4_K_M"); code != 0 || !strings.HasPrefix(out, "pulled meta/gated-GGUF:Q4_K_M") {
		t.Errorf("gated pull with HF_TOKEN: %d %q %q", code, out, errOut)
	}
	// HF_HUB_OFFLINE forbids the network like --offline.
	t.Setenv("HF_HUB_OFFLINE", "1")
	if code, _, errOut := runCLI("pull", "meta/gated-GGUF:Q8_0"); code != 1 || !strings.Contains(errOut, "offline") {
		t.Errorf("HF_HUB_OFFLINE: %d %q", code, errOut)
	}
}

func TestResolveModelRef(t *testing.T) {
	data := pullTestGGUF(100)
	srv := pullTestHub(t, map[string]map[string][]byte{"acme/r-GGUF": {"r-Q4_0.gguf": data}}, "")
	home := pullTestEnv(t, srv)
	local := filepath.Join(t.TempDir(), "m.gguf")
	os.WriteFile(local, data, 0o644)
	if paths, err := resolveModelRef(context.Background(), local, true, nil); err != nil || len(paths) != 1 || paths[0] != local {
		t.Errorf("local: %v %v", paths, err)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("resolving a local model created the store")
	}
	if _, err := resolveModelRef(context.Background(), "acme/r-GGUF:Q4_0", true, nil); err == nil || !strings.Contains(err.Error(), "sluice pull acme/r-GGUF:Q4_0") {
		t.Errorf("offline, not stored: %v", err)
	}
	var progress bytes.Buffer
	paths, err := resolveModelRef(context.Background(), "acme/r-GGUF:Q4_0", false, &progress)
	if err != nil || len(paths) != 1 || !strings.HasPrefix(paths[0], filepath.Join(home, "blobs")) {
		t.Fatalf("first use: %v %v", paths, err)
	}
	if !strings.Contains(progress.String(), "downloading r-Q4_0.gguf") {
		t.Errorf("first use shows no progress: %q", progress.String())
	}
	srv.Close()
	if again, err := resolveModelRef(context.Background(), "acme/r-GGUF:Q4_0", true, nil); err != nil || again[0] != paths[0] {
		t.Errorf("second use: %v %v", again, err)
	}
}
