package tokenizer

import (
	"strings"
	"testing"
)

// benchText is a few KB of prose, code, numbers and non-Latin scripts.
var benchText = strings.Repeat(`The quick brown fox jumps over the lazy dog. It's 3:45pm on 2024-06-01,
and the temperature is 21.5°C — "perfect" weather, they'd say!

func (t *Tokenizer) Encode(text string) []int32 {
	for i := 0; i < len(text); i++ {
		if text[i] == ' ' { count++ } // spaces
	}
	return nil
}

Привет, мир! Как дела? 我想在apple工作1314151天～ こんにちは世界。 안녕하세요.
Emoji: 🦙🚀😶‍🌫️✅ and accents: Cửa Việt, Führer, naïve café.
    Indented line with	tabs	and   multiple   spaces.
`, 4)

func benchEncode(b *testing.B, name string) {
	tok := loadVocab(b, name)
	b.SetBytes(int64(len(benchText)))
	b.ResetTimer()
	for b.Loop() {
		tok.Encode(benchText, false, false)
	}
}

func BenchmarkEncodeSPM(b *testing.B)         { benchEncode(b, "llama-spm") }
func BenchmarkEncodeLlama3(b *testing.B)      { benchEncode(b, "llama3-bpe") }
func BenchmarkEncodeGPT2(b *testing.B)        { benchEncode(b, "gpt-2") }
func BenchmarkEncodeDeepseekLLM(b *testing.B) { benchEncode(b, "deepseek-llm") }

func BenchmarkDecodeLlama3(b *testing.B) {
	tok := loadVocab(b, "llama3-bpe")
	ids := tok.Encode(benchText, false, false)
	b.SetBytes(int64(len(benchText)))
	b.ResetTimer()
	for b.Loop() {
		tok.Decode(ids)
	}
}

func BenchmarkLoadLlama3(b *testing.B) {
	for b.Loop() {
		loadMu.Lock()
		loaded = map[string]*Tokenizer{}
		loadMu.Unlock()
		loadVocab(b, "llama3-bpe")
	}
}
