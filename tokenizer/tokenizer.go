// Package tokenizer turns text into token ids and back for the vocabularies
// stored in GGUF files (the tokenizer.ggml.* keys): SentencePiece-style
// vocabularies ("llama": scores, byte fallback, "▁" for spaces) and
// byte-level BPE vocabularies ("gpt2": ranked merges over GPT-2's
// byte-to-unicode alphabet, words split first by a pre-tokenizer chosen by
// tokenizer.ggml.pre). Tokenization matches llama.cpp's token for token.
//
// WordPiece ("bert"), Unigram ("t5") and RWKV vocabularies are not supported.
//
// A Tokenizer is immutable after construction and safe for concurrent use.
package tokenizer

import (
	"cmp"
	"slices"
	"sort"
	"strings"
)

// Token attributes, as llama.cpp derives them from tokenizer.ggml.token_type
// and from the token text.
type tokenAttr uint16

const (
	attrUnknown tokenAttr = 1 << iota
	attrUnused
	attrNormal
	attrControl
	attrUserDefined
	attrByte
	attrNormalized
	attrLStrip
	attrRStrip
	attrSingleWord
)

// Values of tokenizer.ggml.token_type.
const (
	typeUndefined   = 0
	typeNormal      = 1
	typeUnknown     = 2
	typeControl     = 3
	typeUserDefined = 4
	typeUnused      = 5
	typeByte        = 6
)

// Kinds of vocabulary, as named by tokenizer.ggml.model.
const (
	KindSPM = "llama"
	KindBPE = "gpt2"
)

// Tokenizer encodes and decodes text for one vocabulary.
type Tokenizer struct {
	kind string
	pre  string

	tokens []string
	scores []float32
	attrs  []tokenAttr
	index  map[string]int32
	pieces []string // Piece of every token

	bos, eos, eot, eom, unk int32
	eog                     map[int32]struct{}

	addBOS, addEOS, addSpacePrefix bool

	// specials are the tokens matched in raw text before tokenization
	// (control, user-defined and unknown), longest first.
	specials []int32
	trie     *specialTrie

	spm *spmModel
	bpe *bpeModel
}

// Kind returns the vocabulary type: "llama" (SentencePiece) or "gpt2"
// (byte-level BPE).
func (t *Tokenizer) Kind() string { return t.kind }

// Pre returns the pre-tokenizer name (tokenizer.ggml.pre; "default" when the
// file has none).
func (t *Tokenizer) Pre() string { return t.pre }

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence token, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence token, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOT returns the end-of-turn token (from metadata or recognized by its
// text, such as <|eot_id|> or <|im_end|>), or -1.
func (t *Tokenizer) EOT() int32 { return t.eot }

// AddBOS reports whether Encode with addSpecial prepends BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial appends EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether id ends generation: EOS, EOT, EOM and the tokens
// llama.cpp recognizes by their text (<|eot_id|>, <|im_end|>,
// <|endoftext|>, <end_of_turn>, ...).
func (t *Tokenizer) IsEOG(id int32) bool {
	_, ok := t.eog[id]
	return ok
}

// EOGs returns the end-of-generation tokens in increasing order.
func (t *Tokenizer) EOGs() []int32 {
	out := make([]int32, 0, len(t.eog))
	for id := range t.eog {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// TokenID returns the id of the token whose vocabulary text is exactly text
// (SentencePiece text uses "▁" for spaces, byte-level BPE text its byte
// alphabet, special tokens their literal text).
func (t *Tokenizer) TokenID(text string) (int32, bool) {
	id, ok := t.index[text]
	return id, ok
}

// Token returns the vocabulary text of id, or "" if id is out of range.
func (t *Tokenizer) Token(id int32) string {
	if !t.valid(id) {
		return ""
	}
	return t.tokens[id]
}

// IsSpecial reports whether id is a control or user-defined token (or the
// unknown token).
func (t *Tokenizer) IsSpecial(id int32) bool {
	return t.valid(id) && t.attrs[id]&(attrControl|attrUserDefined|attrUnknown) != 0
}

// IsControl reports whether id is a control (or unknown) token, one that
// Encode only matches in text when parseSpecial is set.
func (t *Tokenizer) IsControl(id int32) bool {
	return t.valid(id) && t.attrs[id]&(attrControl|attrUnknown) != 0
}

func (t *Tokenizer) valid(id int32) bool { return id >= 0 && int(id) < len(t.tokens) }

// Piece returns the text of token id as it appears in decoded output:
// spaces for "▁", the raw byte of byte tokens (which may be an incomplete
// UTF-8 sequence), special tokens as their literal text. It returns "" for
// ids out of range.
func (t *Tokenizer) Piece(id int32) string {
	if !t.valid(id) {
		return ""
	}
	return t.pieces[id]
}

// Decode joins the pieces of ids. As in llama.cpp, the leading space that
// SentencePiece vocabularies add to the text is removed from the first
// token. Special tokens are rendered as their text; ids out of range are
// skipped. Byte tokens are joined into the bytes they stand for; the result
// is not repaired if ids end in the middle of a UTF-8 sequence.
func (t *Tokenizer) Decode(ids []int32) string {
	var sb strings.Builder
	n := 0
	for _, id := range ids {
		n += len(t.Piece(id))
	}
	sb.Grow(n)
	for i, id := range ids {
		p := t.Piece(id)
		if i == 0 && t.addSpacePrefix {
			p = strings.TrimPrefix(p, " ")
		}
		sb.WriteString(p)
	}
	return sb.String()
}

// Encode tokenizes text. With addSpecial, BOS and EOS are added as the
// vocabulary's metadata says (AddBOS, AddEOS). With parseSpecial, control
// tokens written in text (such as "<|im_start|>") become their ids;
// user-defined tokens are always matched, as llama.cpp does.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	return t.encode(text, addSpecial, parseSpecial, nil)
}

// Span is the byte range [Start, End) of a text.
type Span struct{ Start, End int }

// EncodeLiteral is Encode with parseSpecial set, except that a control or
// unknown token is not matched where its text overlaps one of the literal
// spans: there the text is tokenized as plain text, as Encode without
// parseSpecial would (user-defined tokens still match). It is for a
// rendered chat prompt, whose template markup yields control tokens while
// the messages' content, written by users, must not. literal must be
// sorted by Start and not overlap. Text without control-token text inside
// the spans encodes exactly as Encode(text, addSpecial, true).
func (t *Tokenizer) EncodeLiteral(text string, addSpecial bool, literal []Span) []int32 {
	return t.encode(text, addSpecial, true, literal)
}

// HasControlText reports whether text contains the text of a control or
// unknown token: one that Encode matches only with parseSpecial.
func (t *Tokenizer) HasControlText(text string) bool {
	for _, k := range t.trie.present(t, text, true) {
		if t.attrs[t.specials[k]]&(attrControl|attrUnknown) != 0 {
			return true
		}
	}
	return false
}

func (t *Tokenizer) encode(text string, addSpecial, parseSpecial bool, literal []Span) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if addSpecial && t.addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	frags := t.partition(text, parseSpecial, literal)
	switch {
	case t.spm != nil:
		prevSpecial := true
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f.id)
				prevSpecial = true
				continue
			}
			out = t.spm.encode(t, text[f.start:f.end], t.addSpacePrefix && prevSpecial, out)
			prevSpecial = false
		}
	case t.bpe != nil:
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f.id)
				continue
			}
			out = t.bpe.encode(t, text[f.start:f.end], out)
		}
	}
	if addSpecial && t.addEOS && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

// fragment is either a special token (id >= 0) or raw text [start, end).
type fragment struct {
	id         int32
	start, end int
}

// partition splits text on the special tokens it contains, longest token
// first, as llama.cpp does. Control and unknown tokens are only considered
// when parseSpecial is set, and never where they overlap a literal span;
// user-defined tokens always are. Tokens with the lstrip/rstrip attribute
// swallow the ASCII white space beside them.
func (t *Tokenizer) partition(text string, parseSpecial bool, literal []Span) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{id: -1, start: 0, end: len(text)}}
	for _, k := range t.trie.present(t, text, parseSpecial) {
		sid := t.specials[k]
		attr := t.attrs[sid]
		tok := t.tokens[sid]
		guarded := len(literal) > 0 && attr&(attrControl|attrUnknown) != 0
		var next []fragment
		for fi, f := range frags {
			if f.id >= 0 {
				if next != nil {
					next = append(next, f)
				}
				continue
			}
			start, end := f.start, f.end
			for from := start; from < end; {
				k := strings.Index(text[from:end], tok)
				if k < 0 {
					break
				}
				m := from + k
				if guarded && overlaps(literal, m, m+len(tok)) {
					from = m + 1
					continue
				}
				if next == nil {
					next = append(make([]fragment, 0, len(frags)+2), frags[:fi]...)
				}
				left := m
				if attr&attrLStrip != 0 {
					for left > start && isCSpace(text[left-1]) {
						left--
					}
				}
				if left > start {
					next = append(next, fragment{id: -1, start: start, end: left})
				}
				next = append(next, fragment{id: sid, start: m, end: m + len(tok)})
				start = m + len(tok)
				if attr&attrRStrip != 0 {
					for start < end && isCSpace(text[start]) {
						start++
					}
				}
				from = start
			}
			if next != nil && start < end {
				next = append(next, fragment{id: -1, start: start, end: end})
			}
		}
		if next != nil {
			frags = next
		}
	}
	return frags
}

// overlaps reports whether [start, end) overlaps one of the sorted,
// disjoint spans.
func overlaps(spans []Span, start, end int) bool {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].End > start })
	return i < len(spans) && spans[i].Start < end
}

// isCSpace is C's isspace in the "C" locale.
func isCSpace(b byte) bool { return b == ' ' || (b >= '\t' && b <= '\r') }

// sortSpecials lists the special tokens, longest text first (ties by id).
func (t *Tokenizer) sortSpecials() {
	t.specials = t.specials[:0]
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.specials = append(t.specials, int32(id))
		}
	}
	slices.SortStableFunc(t.specials, func(a, b int32) int {
		return cmp.Compare(len(t.tokens[b]), len(t.tokens[a]))
	})
}
