package tokenizer

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/internal/testenv"
)

// FuzzEncode checks that encoding never panics and that decoding gives the
// text back, for a SentencePiece and a byte-level BPE vocabulary.
func FuzzEncode(f *testing.F) {
	spm := loadVocab(f, "llama-spm")
	bpe := loadVocab(f, "llama3-bpe")
	inp, err := os.ReadFile(testenv.Shared(f, "tokenizer", "ggml-vocab-llama3-bpe.gguf.inp"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(string(inp), "\n__ggml_vocab_test__\n") {
		f.Add(s)
	}
	f.Add("<s>hi</s><|begin_of_text|> \u00a0\u2028x\r\n\t 'S 'll ١٢٣٤")
	f.Add("\xff\xfe invalid \xe2\x82")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range []*Tokenizer{spm, bpe} {
			tok.Encode(s, true, true)
			ids := tok.Encode(s, false, false)
			if !utf8.ValidString(s) {
				continue
			}
			if tok.Kind() == KindSPM && strings.Contains(s, "▁") {
				continue // "▁" is how the vocabulary writes a space
			}
			if got := tok.Decode(ids); got != s {
				t.Fatalf("%s: Decode(Encode(%q)) = %q (ids %v)", tok.Kind(), s, got, ids)
			}
			d := tok.NewStreamDecoder()
			var sb strings.Builder
			for _, id := range ids {
				out := d.Add(id)
				if !utf8.ValidString(out) {
					t.Fatalf("stream emitted invalid UTF-8 %q", out)
				}
				sb.WriteString(out)
			}
			sb.WriteString(d.Flush())
			want := s
			if tok.addSpacePrefix && s != "" {
				want = " " + s
			}
			if sb.String() != want {
				t.Fatalf("%s: stream %q, want %q", tok.Kind(), sb.String(), want)
			}
		}
	})
}
