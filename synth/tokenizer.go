package synth

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice/gguf"
)

// GGUF token types (llama_token_type).
const (
	tokNormal  int32 = 1
	tokControl int32 = 3
	tokUnused  int32 = 5
)

// Built-in tokenizer special tokens, right after the 256 byte tokens.
const (
	BuiltinBOS      = "<|begin_of_text|>"
	BuiltinEOS      = "<|end_of_text|>"
	BuiltinIMStart  = "<|im_start|>"
	BuiltinIMEnd    = "<|im_end|>"
	builtinSpecials = 4
)

// BuiltinChatTemplate is the ChatML template of the built-in tokenizer.
const BuiltinChatTemplate = "{% for message in messages %}" +
	"{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// MinBuiltinVocab is the smallest vocabulary the built-in tokenizer fits.
const MinBuiltinVocab = 256 + builtinSpecials

// byteToUnicode is GPT-2's bytes_to_unicode: the printable character that
// stands for each byte in a byte-level BPE vocabulary.
func byteToUnicode() [256]rune {
	var m [256]rune
	var used [256]bool
	for _, r := range [][2]int{{'!', '~'}, {0xA1, 0xAC}, {0xAE, 0xFF}} {
		for b := r[0]; b <= r[1]; b++ {
			m[b], used[b] = rune(b), true
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !used[b] {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// builtinReserved is the number of <|reserved_N|> control tokens of the
// built-in tokenizer (as many as Llama 3 has).
const builtinReserved = 256

// builtinTokenizer returns the tokenizer.* metadata of the built-in
// byte-level BPE tokenizer with vocab tokens: the 256 byte tokens (id = byte
// value), <|begin_of_text|> (BOS), <|end_of_text|> (EOS), <|im_start|>,
// <|im_end|> (end of turn), up to 256 <|reserved_N|> control tokens, and
// then pseudo-words (" ba", " be", ..., " zuzu") as normal tokens. It has no
// merges, so text encodes to one token per byte; the pseudo-words are
// never produced by encoding but make a dummy model's random output read as
// words instead of control tokens.
func builtinTokenizer(vocab int) ([]gguf.KV, error) {
	if vocab < MinBuiltinVocab {
		return nil, fmt.Errorf("synth: vocabulary of %d tokens is too small for the built-in tokenizer (at least %d)", vocab, MinBuiltinVocab)
	}
	tokens := make([]string, 0, vocab)
	types := make([]int32, 0, vocab)
	b2u := byteToUnicode()
	for _, r := range b2u {
		tokens = append(tokens, string(r))
		types = append(types, tokNormal)
	}
	for _, s := range []string{BuiltinBOS, BuiltinEOS, BuiltinIMStart, BuiltinIMEnd} {
		tokens = append(tokens, s)
		types = append(types, tokControl)
	}
	for i := 0; i < builtinReserved && len(tokens) < vocab; i++ {
		tokens = append(tokens, "<|reserved_"+strconv.Itoa(i)+"|>")
		types = append(types, tokControl)
	}
	space := string(b2u[' '])
	for i := 0; len(tokens) < vocab; i++ {
		tokens = append(tokens, space+pseudoWord(i))
		types = append(types, tokNormal)
	}
	kvs := []struct {
		k string
		v any
	}{
		{"tokenizer.ggml.model", "gpt2"},
		{"tokenizer.ggml.pre", "default"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.merges", []string{}},
		{"tokenizer.ggml.bos_token_id", uint32(256)},
		{"tokenizer.ggml.eos_token_id", uint32(257)},
		{"tokenizer.ggml.eot_token_id", uint32(259)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
		{"tokenizer.chat_template", BuiltinChatTemplate},
	}
	out := make([]gguf.KV, len(kvs))
	for i, kv := range kvs {
		v, err := gguf.NewValue(kv.v)
		if err != nil {
			return nil, fmt.Errorf("synth: %s: %w", kv.k, err)
		}
		out[i] = gguf.KV{Key: kv.k, Value: v}
	}
	return out, nil
}

// isTokenizerKey reports whether key is one that copyTokenizer copies.
func isTokenizerKey(key string) bool {
	return strings.HasPrefix(key, "tokenizer.ggml.") || key == "tokenizer.chat_template" ||
		strings.HasPrefix(key, "tokenizer.chat_template.")
}

// tokenCount returns the number of tokens in src's vocabulary.
func tokenCount(src *gguf.File) (int, error) {
	toks, ok := src.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) == 0 {
		return 0, fmt.Errorf("synth: the tokenizer source has no tokenizer.ggml.tokens array")
	}
	return len(toks), nil
}

// copyTokenizer returns the tokenizer.ggml.* and tokenizer.chat_template*
// keys of src with their exact types. When the model's vocabulary is larger
// than src's, the token list is padded to vocab with [PAD<id>] tokens of
// type UNUSED (score 0), as llama.cpp's converter pads vocabularies.
func copyTokenizer(src *gguf.File, vocab int) ([]gguf.KV, error) {
	n, err := tokenCount(src)
	if err != nil {
		return nil, err
	}
	if n > vocab {
		return nil, fmt.Errorf("synth: tokenizer has %d tokens, more than the model's vocabulary of %d", n, vocab)
	}
	var out []gguf.KV
	for _, kv := range src.KVs {
		if !isTokenizerKey(kv.Key) {
			continue
		}
		if n < vocab {
			padded, err := padTokenArray(kv, n, vocab)
			if err != nil {
				return nil, err
			}
			kv.Value = padded
		}
		out = append(out, kv)
	}
	return out, nil
}

// padTokenArray pads the per-token arrays (tokens, scores, token_type) of
// kv from n to vocab entries; other keys are returned unchanged.
func padTokenArray(kv gguf.KV, n, vocab int) (gguf.Value, error) {
	var (
		v  any
		ok bool
	)
	switch kv.Key {
	case "tokenizer.ggml.tokens":
		var s []string
		if s, ok = kv.Value.Strings(); ok {
			for i := n; i < vocab; i++ {
				s = append(s, "[PAD"+strconv.Itoa(i)+"]")
			}
			v = s
		}
	case "tokenizer.ggml.scores":
		var s []float32
		if s, ok = kv.Value.Float32s(); ok && len(s) == n {
			v = append(s, make([]float32, vocab-n)...)
		}
	case "tokenizer.ggml.token_type":
		var s []int32
		if s, ok = kv.Value.Int32s(); ok && len(s) == n {
			for i := n; i < vocab; i++ {
				s = append(s, tokUnused)
			}
			v = s
		}
	default:
		return kv.Value, nil
	}
	if v == nil {
		return gguf.Value{}, fmt.Errorf("synth: tokenizer key %s is not an array of %d entries", kv.Key, n)
	}
	return gguf.NewValue(v)
}

// pseudoWord returns the i-th word over consonant-vowel syllables: all
// one-syllable words, then all two-syllable ones, and so on. Syllables are
// two letters, so distinct i give distinct words.
func pseudoWord(i int) string {
	const cons, vows = "bdfghklmnprstvz", "aeiou"
	const nsyl = len(cons) * len(vows)
	n, count := 1, nsyl
	for i >= count {
		i -= count
		n++
		count *= nsyl
	}
	b := make([]byte, 2*n)
	for k := n - 1; k >= 0; k-- {
		s := i % nsyl
		i /= nsyl
		b[2*k], b[2*k+1] = cons[s/len(vows)], vows[s%len(vows)]
	}
	return string(b)
}
