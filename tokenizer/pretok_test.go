package tokenizer

import (
	"slices"
	"testing"
)

func splitWith(t *testing.T, pre, text string) []string {
	t.Helper()
	p, _, _, err := preTokenizerFor(pre)
	if err != nil {
		t.Fatal(err)
	}
	r := []rune(text)
	s := &segmenter{r: r, cls: make([]uint8, len(r))}
	for i, c := range r {
		s.cls[i] = classOf(c)
	}
	var out []string
	start := 0
	for _, n := range p.split(s) {
		out = append(out, string(r[start:start+n]))
		start += n
	}
	if start != len(r) {
		t.Fatalf("%s: pieces cover %d of %d runes", pre, start, len(r))
	}
	return out
}

func TestPreTokenizers(t *testing.T) {
	cases := []struct {
		pre, text string
		want      []string
	}{
		{"llama-bpe", "Hello world  \n\n  x 12345", []string{"Hello", " world", "  \n\n", " ", " x", " ", "123", "45"}},
		{"llama-bpe", "I'VE 'll ?!\n\nok", []string{"I", "'VE", " '", "ll", " ?!\n\n", "ok"}},
		{"llama-bpe", "  end  ", []string{" ", " end", "  "}},
		{"qwen2", "x 123", []string{"x", " ", "1", "2", "3"}},
		{"gpt-2", "I've  got 12 apples!!", []string{"I", "'ve", " ", " got", " 12", " apples", "!!"}},
		{"gpt-2", "'VE", []string{"'", "VE"}},
		{"gpt-2", "a\t\tb", []string{"a", "\t", "\t", "b"}},
		{"starcoder", "x12 y", []string{"x", "1", "2", " y"}},
		{"falcon", "a+=1234567", []string{"a", "+=", "123", "456", "7"}},
		{"deepseek-coder", "ab c\nd12", []string{"ab", " c", "\n", "d", "1", "2"}},
		{"deepseek-llm", "Hi 中文  \n12 ", []string{"Hi", " ", "中文", "  ", "\n", "12", " "}},
	}
	for _, c := range cases {
		if got := splitWith(t, c.pre, c.text); !slices.Equal(got, c.want) {
			t.Errorf("%s %q:\n got %q\nwant %q", c.pre, c.text, got, c.want)
		}
	}
}

// tinySPM is a hand-made SentencePiece vocabulary.
func tinySPM(t *testing.T) *Tokenizer {
	t.Helper()
	toks := []string{"<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab", "<sep>"}
	scores := []float32{0, 0, 0, -1, -2, -2, -1.5, -1.2, -0.5, 0}
	types := []int32{2, 3, 3, 1, 1, 1, 1, 1, 1, 4}
	for b := 0; b < 256; b++ {
		toks = append(toks, "<0x"+string("0123456789ABCDEF"[b>>4])+string("0123456789ABCDEF"[b&15])+">")
		scores = append(scores, 0)
		types = append(types, typeByte)
	}
	tok, err := build(&vocabSpec{model: "llama", tokens: toks, scores: scores, types: types})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTinySPM(t *testing.T) {
	tok := tinySPM(t)
	id := func(s string) int32 { v, _ := tok.TokenID(s); return v }
	cases := []struct {
		text    string
		special bool
		want    []int32
	}{
		{"ab", false, []int32{id("▁ab")}},
		{"ab ab", false, []int32{id("▁ab"), id("▁ab")}},
		{"é", false, []int32{id("▁"), id("<0xC3>"), id("<0xA9>")}},
		{"a<sep>b", false, []int32{id("▁a"), id("<sep>"), id("▁"), id("b")}},
		{"a</s>", false, []int32{id("▁a"), id("<0x3C>"), id("<0x2F>"), id("<0x73>"), id("<0x3E>")}},
		{"a</s>b", true, []int32{id("▁a"), id("</s>"), id("▁"), id("b")}},
	}
	for _, c := range cases {
		got := tok.Encode(c.text, false, c.special)
		if !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q, %v) = %v, want %v", c.text, c.special, got, c.want)
		}
	}
	if got := tok.Decode([]int32{id("▁a"), id("<0xC3>"), id("<0xA9>")}); got != "aé" {
		t.Errorf("Decode = %q", got)
	}
	if got := tok.Encode("ab", true, false); !slices.Equal(got, []int32{1, id("▁ab")}) {
		t.Errorf("addSpecial: %v", got)
	}
}

// tinyBPE is a hand-made byte-level BPE vocabulary.
func tinyBPE(t *testing.T, pre string) *Tokenizer {
	t.Helper()
	alpha := byteAlphabet()
	var toks []string
	for b := 0; b < 256; b++ {
		toks = append(toks, string(alpha[b]))
	}
	toks = append(toks, "Ġa", "ab", "Ġab", "<|end|>", "<x>")
	merges := []string{"a b", "Ġ a", "Ġa b", "Ġ ab"}
	types := make([]int32, len(toks))
	for i := range types {
		types[i] = typeNormal
	}
	types[len(toks)-2] = typeControl
	types[len(toks)-1] = typeUserDefined
	tok, err := build(&vocabSpec{model: "gpt2", pre: pre, tokens: toks, types: types, merges: merges,
		ids: map[string]int64{"eos_token_id": int64(len(toks) - 2)}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTinyBPE(t *testing.T) {
	tok := tinyBPE(t, "gpt-2")
	id := func(s string) int32 { v, _ := tok.TokenID(s); return v }
	// "ab" merges first (rank 0), then "Ġ ab" (rank 3).
	if got, want := tok.Encode(" ab", false, false), []int32{id("Ġab")}; !slices.Equal(got, want) {
		t.Errorf("Encode(\" ab\") = %v, want %v", got, want)
	}
	if got, want := tok.Encode("ab<x> a<|end|>", false, false), []int32{id("ab"), id("<x>"), id("Ġa"), id("<"), id("|"), id("end"[:1]), id("n"), id("d"), id("|"), id(">")}; !slices.Equal(got, want) {
		t.Errorf("user-defined split: %v, want %v", got, want)
	}
	if got, want := tok.Encode("a<|end|>", false, true), []int32{id("a"), id("<|end|>")}; !slices.Equal(got, want) {
		t.Errorf("parseSpecial: %v, want %v", got, want)
	}
	if !tok.IsEOG(id("<|end|>")) || tok.EOT() != id("<|end|>") {
		t.Errorf("EOG: %v EOT %d", tok.EOGs(), tok.EOT())
	}
	if got := tok.Decode(tok.Encode("x ñ\n", false, false)); got != "x ñ\n" {
		t.Errorf("round trip %q", got)
	}
}

func TestLoadOtherVocabs(t *testing.T) {
	bc := loadVocab(t, "baichuan")
	if bc.Kind() != KindSPM || bc.VocabSize() != 64000 || !bc.AddBOS() {
		t.Errorf("baichuan: %s %d %v", bc.Kind(), bc.VocabSize(), bc.AddBOS())
	}
	if got := bc.Decode(bc.Encode("Hello 世界", false, false)); got != "Hello 世界" {
		t.Errorf("baichuan round trip %q", got)
	}
	nx := loadVocab(t, "gpt-neox")
	if nx.Pre() != "default" || nx.BOS() != 0 || nx.EOS() != 0 {
		t.Errorf("gpt-neox: pre %q bos %d eos %d", nx.Pre(), nx.BOS(), nx.EOS())
	}
	if got := nx.Decode(nx.Encode("Hello,   world 1234!", false, false)); got != "Hello,   world 1234!" {
		t.Errorf("gpt-neox round trip %q", got)
	}

	// Phi-3 special tokens swallow the white space after them.
	phi := loadVocab(t, "phi-3")
	user, _ := phi.TokenID("<|user|>")
	got := phi.Encode("<|user|>\nHi", false, true)
	if len(got) == 0 || got[0] != user || !slices.Equal(got[1:], phi.Encode("Hi", false, false)) {
		t.Errorf("phi-3 rstrip: %v", got)
	}
}
