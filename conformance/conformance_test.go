package conformance

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/server"
	"github.com/sluice-llm/sluice/synth"
)

// templates are the chat templates served, one per tool-call family.
var templates = []string{
	"Qwen-Qwen2.5-7B-Instruct.jinja",
	"meta-llama-Llama-3.1-8B-Instruct.jinja",
	"mistralai-Mistral-Nemo-Instruct-2407.jinja",
}

// TestClients runs suite.mjs and suite.py against each template. The
// clients are installed by `npm ci` and a virtual environment here (.ci/run
// does both); without them the test is skipped, except under CI=true where
// it fails.
func TestClients(t *testing.T) {
	const install = "`npm ci` and `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt` in conformance/ install the clients"
	for _, dir := range []string{"node_modules", ".venv"} {
		if _, err := os.Stat(dir); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("conformance/%s is missing: %s", dir, install)
			}
			t.Skipf("conformance/%s is missing: %s", dir, install)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v", err)
	}
	python, err := filepath.Abs(filepath.Join(".venv", "bin", "python"))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "rand.gguf")
	if err := synth.Write(base, synth.Options{Shape: synth.Shapes["tiny-qwen2"], Type: "Q8_0", Layers: 1, Seed: 5, Threads: 1}); err != nil {
		t.Fatal(err)
	}
	for _, name := range templates {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(testenv.Shared(t, "templates", name))
			if err != nil {
				t.Fatal(err)
			}
			url := serve(t, withTemplate(t, base, string(src)))
			runSuite(t, url, node, "suite.mjs")
			runSuite(t, url, python, "suite.py")
		})
	}
}

// runSuite runs a suite script against the server at url.
func runSuite(t *testing.T, url, interp, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, interp, script)
	cmd.Env = append(os.Environ(), "SLUICE_URL="+url+"/v1", "SLUICE_MODEL=m")
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", script, out)
	if err != nil {
		t.Errorf("%s: %v", script, err)
	}
}

// serve starts a server of the model at path; it returns its URL.
func serve(t *testing.T, path string) string {
	t.Helper()
	eng, err := engine.New(engine.Config{ModelPath: path, Name: "m", Threads: 1, KVMemory: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{})
	if err := srv.AddModel("m", server.FromEngine[*engine.Stream](eng)); err != nil {
		eng.Close()
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return ts.URL
}

// withTemplate writes a copy of the GGUF at src with tmpl as its chat
// template.
func withTemplate(t *testing.T, src, tmpl string) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KVs {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Set("tokenizer.chat_template", tmpl); err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "m.gguf")
	if err := w.WriteFile(dst); err != nil {
		t.Fatal(err)
	}
	return dst
}
