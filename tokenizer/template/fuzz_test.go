package template

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/internal/testenv"
)

// FuzzParse feeds arbitrary template sources to Parse and, when they parse,
// renders them under small limits: neither may panic or hang.
func FuzzParse(f *testing.F) {
	for _, c := range compatCases {
		f.Add(c.src)
	}
	if dir, ok := testenv.SharedDir(); ok {
		files, _ := filepath.Glob(filepath.Join(dir, "templates", "*.jinja"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Add("{% for x in y recursive %}{{ loop(x) }}{% endfor %}")
	f.Add("{%- raw -%}{{ x }}{%- endraw -%}")
	f.Add("{{ '\\u00e9\\x41\\101\\N{x}' }}")
	vars := compatVars(f)
	limits := WithLimits(Limits{MaxOutput: 1 << 16, MaxSteps: 20000, MaxDepth: 20})
	now := WithNow(fixedNow)
	f.Fuzz(func(t *testing.T, src string) {
		start := time.Now()
		tpl, err := Parse(src)
		checkInternal(t, src, err)
		if err != nil {
			return
		}
		_, err = tpl.Execute(vars, limits, now)
		checkInternal(t, src, err)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("rendering %q took %v", src, d)
		}
	})
}

// checkInternal fails on an error that stands for a recovered panic.
func checkInternal(t *testing.T, src string, err error) {
	var e *Error
	if errors.As(err, &e) && e.Kind == "InternalError" {
		t.Fatalf("%q: %v", src, err)
	}
}

// BenchmarkLlama31MultiTurn renders a 20-message conversation with
// Llama 3.1's template.
func BenchmarkLlama31MultiTurn(b *testing.B) {
	path := testenv.Shared(b, "templates", "meta-llama-Llama-3.1-8B-Instruct.jinja")
	src, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	tpl, err := Parse(string(src))
	if err != nil {
		b.Fatal(err)
	}
	msgs := []any{}
	sys := NewMap()
	sys.Set("role", "system")
	sys.Set("content", "You are a helpful assistant. Answer briefly and precisely.")
	msgs = append(msgs, sys)
	for i := 0; i < 10; i++ {
		u := NewMap()
		u.Set("role", "user")
		u.Set("content", "Question number "+itoa(i)+": what is the capital of the country with the longest coastline?")
		a := NewMap()
		a.Set("role", "assistant")
		a.Set("content", "Canada has the longest coastline; its capital is Ottawa. Anything else?")
		msgs = append(msgs, u, a)
	}
	opts := ChatOptions{BOS: "<|begin_of_text|>", EOS: "<|eot_id|>", AddGenerationPrompt: true}
	out, err := tpl.RenderChat(msgs, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tpl.RenderChat(msgs, opts); err != nil {
			b.Fatal(err)
		}
	}
}
