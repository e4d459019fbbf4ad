package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
)

var (
	loadMu sync.Mutex
	loaded = map[string]*Tokenizer{}
)

// load returns the tokenizer of a GGUF file, cached across tests.
func load(tb testing.TB, path string) *Tokenizer {
	tb.Helper()
	loadMu.Lock()
	defer loadMu.Unlock()
	if t, ok := loaded[path]; ok {
		return t
	}
	f, err := gguf.Open(path)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	t, err := FromGGUF(f)
	if err != nil {
		tb.Fatalf("%s: %v", filepath.Base(path), err)
	}
	loaded[path] = t
	return t
}

func loadVocab(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	return load(tb, testenv.Shared(tb, "tokenizer", "ggml-vocab-"+name+".gguf"))
}

type vocabCase struct {
	text string
	want []int32
}

// readCases reads X.gguf.inp / X.gguf.out as llama.cpp's test-tokenizer-0
// does.
func readCases(tb testing.TB, base string) []vocabCase {
	tb.Helper()
	inp, err := os.ReadFile(base + ".inp")
	if err != nil {
		tb.Fatal(err)
	}
	out, err := os.ReadFile(base + ".out")
	if err != nil {
		tb.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var texts []string
	raw := string(inp)
	for pos := 0; pos < len(raw); {
		k := strings.Index(raw[pos:], sep)
		if k < 0 {
			texts = append(texts, raw[pos:])
			break
		}
		texts = append(texts, raw[pos:pos+k])
		pos += k + len(sep)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		tb.Fatalf("%s: %d inputs, %d outputs", base, len(texts), len(lines))
	}
	cases := make([]vocabCase, len(texts))
	for i, line := range lines {
		cases[i].text = texts[i]
		for _, f := range strings.Fields(line) {
			n, err := strconv.Atoi(f)
			if err != nil {
				tb.Fatalf("%s.out line %d: %v", base, i+1, err)
			}
			cases[i].want = append(cases[i].want, int32(n))
		}
	}
	return cases
}

// Families with llama.cpp test cases (bert-bge is WordPiece: unsupported).
var families = []string{
	"llama-spm", "llama3-bpe", "gpt-2", "phi-3", "falcon", "mpt",
	"starcoder", "refact", "deepseek-coder", "deepseek-llm",
}

func TestVocabCases(t *testing.T) {
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			base := testenv.Shared(t, "tokenizer", "ggml-vocab-"+fam+".gguf")
			tok := load(t, base)
			cases := readCases(t, base)
			fails := 0
			for _, c := range cases {
				got := tok.Encode(c.text, false, false)
				if !slices.Equal(got, c.want) {
					fails++
					t.Errorf("Encode(%q)\n got %v\nwant %v\n got %q\nwant %q", c.text, got, c.want, pieces(tok, got), pieces(tok, c.want))
				}
			}
			t.Logf("%s: %d/%d cases match", fam, len(cases)-fails, len(cases))
		})
	}
}

func pieces(t *Tokenizer, ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.Token(id)
	}
	return out
}

// TestDecodeRoundTrip checks that decoding gives back the text, both from
// our ids and from llama.cpp's.
func TestDecodeRoundTrip(t *testing.T) {
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			base := testenv.Shared(t, "tokenizer", "ggml-vocab-"+fam+".gguf")
			tok := load(t, base)
			for _, c := range readCases(t, base) {
				ids := tok.Encode(c.text, false, false)
				if got := tok.Decode(ids); got != c.text {
					t.Errorf("Decode(Encode(%q)) = %q", c.text, got)
				}
				// Decode of the expected ids agrees with llama.cpp's ids too.
				if got := tok.Decode(c.want); got != c.text {
					t.Errorf("Decode(want ids of %q) = %q", c.text, got)
				}
			}
		})
	}
}

type goldenLine struct {
	Prompt       string  `json:"prompt"`
	PromptTokens []int32 `json:"prompt_tokens"`
}

func TestGoldenPrompts(t *testing.T) {
	dir := testenv.Shared(t, "golden")
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s (%v)", dir, err)
	}
	for _, gf := range files {
		name := strings.TrimSuffix(filepath.Base(gf), ".jsonl")
		t.Run(name, func(t *testing.T) {
			tok := load(t, testenv.Shared(t, "models", name+".gguf"))
			fh, err := os.Open(gf)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			sc := bufio.NewScanner(fh)
			sc.Buffer(make([]byte, 1<<20), 64<<20)
			n := 0
			for sc.Scan() {
				var g goldenLine
				if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
					t.Fatal(err)
				}
				n++
				got := tok.Encode(g.Prompt, true, false)
				if !slices.Equal(got, g.PromptTokens) {
					t.Errorf("Encode(%q)\n got %v\nwant %v", g.Prompt, got, g.PromptTokens)
				}
				if got := tok.Decode(g.PromptTokens[1:]); got != g.Prompt {
					t.Errorf("Decode = %q, want %q", got, g.Prompt)
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("no prompts")
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	spm := loadVocab(t, "llama-spm")
	if spm.Kind() != "llama" || spm.VocabSize() != 32000 || spm.BOS() != 1 || spm.EOS() != 2 || !spm.AddBOS() || spm.AddEOS() {
		t.Errorf("llama-spm: kind %q size %d bos %d eos %d addBOS %v addEOS %v", spm.Kind(), spm.VocabSize(), spm.BOS(), spm.EOS(), spm.AddBOS(), spm.AddEOS())
	}
	if !spm.IsEOG(2) || spm.IsEOG(1) || !spm.IsSpecial(1) || spm.IsSpecial(100) {
		t.Error("llama-spm: EOG/special flags wrong")
	}
	if got := spm.Encode("Hello", true, false); !slices.Equal(got, []int32{1, 15043}) {
		t.Errorf("llama-spm Encode(Hello, addSpecial) = %v", got)
	}

	l3 := loadVocab(t, "llama3-bpe")
	if l3.Kind() != "gpt2" || l3.Pre() != "llama-bpe" || l3.BOS() != 128000 || l3.EOS() != 128009 || !l3.AddBOS() {
		t.Errorf("llama3: kind %q pre %q bos %d eos %d addBOS %v", l3.Kind(), l3.Pre(), l3.BOS(), l3.EOS(), l3.AddBOS())
	}
	eot, _ := l3.TokenID("<|eot_id|>")
	eot2, _ := l3.TokenID("<|end_of_text|>")
	if l3.EOT() != eot || !l3.IsEOG(eot) || !l3.IsEOG(eot2) {
		t.Errorf("llama3: EOT %d, want %d; EOGs %v", l3.EOT(), eot, l3.EOGs())
	}
	start, _ := l3.TokenID("<|start_header_id|>")
	if got := l3.Encode("<|start_header_id|>user", false, true); len(got) != 2 || got[0] != start {
		t.Errorf("parseSpecial: %v", got)
	}
	if got := l3.Encode("<|start_header_id|>", false, false); slices.Contains(got, start) {
		t.Errorf("control token parsed without parseSpecial: %v", got)
	}
	if got := l3.Decode([]int32{start}); got != "<|start_header_id|>" {
		t.Errorf("Decode special = %q", got)
	}

	g2 := loadVocab(t, "gpt-2")
	if g2.AddBOS() || g2.BOS() != 50256 || g2.EOS() != 50256 || !g2.IsEOG(50256) {
		t.Errorf("gpt-2: addBOS %v bos %d eos %d", g2.AddBOS(), g2.BOS(), g2.EOS())
	}
}

func TestStreamDecoder(t *testing.T) {
	for _, fam := range []string{"llama-spm", "llama3-bpe", "gpt-2"} {
		t.Run(fam, func(t *testing.T) {
			tok := loadVocab(t, fam)
			texts := []string{
				"🦙 llamas 🚀 and 😶‍🌫️ ✅",
				"нещо на Български 我想在apple工作1314151天～",
				"កាន់តែពិសេសអាចខលចេញ",
				"Cửa Việt",
			}
			for _, text := range texts {
				ids := tok.Encode(text, false, false)
				d := tok.NewStreamDecoder()
				var sb strings.Builder
				for _, id := range ids {
					s := d.Add(id)
					if !utf8.ValidString(s) {
						t.Fatalf("Add emitted invalid UTF-8 %q", s)
					}
					sb.WriteString(s)
				}
				sb.WriteString(d.Flush())
				want := tok.Decode(ids)
				if tok.addSpacePrefix {
					want = " " + want
				}
				if sb.String() != want {
					t.Errorf("stream %q, want %q", sb.String(), want)
				}
			}
			// A character split over byte tokens is held back, then emitted.
			d := tok.NewStreamDecoder()
			var ids []int32
			for _, b := range []byte("é") {
				ids = append(ids, byteToken(t, tok, b))
			}
			if s := d.Add(ids[0]); s != "" {
				t.Errorf("partial char emitted: %q", s)
			}
			if s := d.Add(ids[1]); s != "é" {
				t.Errorf("completed char: %q", s)
			}
			// A dangling lead byte becomes U+FFFD at Flush.
			d.Add(ids[0])
			if s := d.Flush(); s != "\uFFFD" {
				t.Errorf("Flush = %q", s)
			}
		})
	}
}

// byteToken returns the token that decodes to the single byte b.
func byteToken(tb testing.TB, t *Tokenizer, b byte) int32 {
	if t.spm != nil {
		return t.spm.byteTok[b]
	}
	id := t.bpe.byteID[b]
	if id < 0 {
		tb.Fatalf("no token for byte %#x", b)
	}
	return id
}

func TestErrors(t *testing.T) {
	_, err := build(&vocabSpec{model: "gpt2", tokens: []string{"a"}})
	if err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.merges") {
		t.Errorf("missing merges: %v", err)
	}
	_, err = build(&vocabSpec{model: "bert", tokens: []string{"a"}})
	if err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.model") {
		t.Errorf("bert: %v", err)
	}
	_, err = build(&vocabSpec{model: "gpt2", pre: "nope", tokens: []string{"a"}, merges: []string{}})
	if err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.pre") {
		t.Errorf("unknown pre: %v", err)
	}
	_, err = build(&vocabSpec{model: "llama"})
	if err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.tokens") {
		t.Errorf("no tokens: %v", err)
	}
}
