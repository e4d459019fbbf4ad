package toolcall

import (
	"strings"

	"github.com/sluice-llm/sluice/grammar"
	"github.com/sluice-llm/sluice/tokenizer"
)

// Lazy constrains output for tool_choice "auto": the model writes freely
// until its output contains the format's Start marker, then the rest must
// be valid calls of the tools (the call grammar after Start), so every
// call it starts parses. It implements engine.Constraint; it serves one
// request and belongs to the goroutine that drives it.
//
// A token that completes the marker and carries bytes the call grammar
// refuses leaves the output unconstrained (the parser then keeps that
// text as content).
type Lazy struct {
	tok   *tokenizer.Tokenizer
	g     *grammar.Grammar
	start string
	words int
	tail  string           // the output's last bytes, shorter than start
	m     *grammar.Matcher // nil until the marker is written
}

// LazyGrammar is the compiled lazy call grammar of some tools; it is
// immutable and makes one Lazy per request.
type LazyGrammar struct {
	tok   *tokenizer.Tokenizer
	g     *grammar.Grammar
	start string
}

// CompileLazy compiles the lazy call grammar of tools in format f for
// tok's vocabulary.
func CompileLazy(tok *tokenizer.Tokenizer, f *Format, tools []Tool, parallel bool) (*LazyGrammar, error) {
	g, err := afterStartGrammar(tok, f, tools, parallel)
	if err != nil {
		return nil, err
	}
	return &LazyGrammar{tok: tok, g: g, start: f.Start}, nil
}

// New returns a constraint at the start of the output.
func (lg *LazyGrammar) New() *Lazy {
	return &Lazy{tok: lg.tok, g: lg.g, start: lg.start, words: (lg.tok.VocabSize() + 63) / 64}
}

// Triggered reports whether the start marker was written.
func (l *Lazy) Triggered() bool { return l.m != nil }

// MaskWords is the length of the bitset Mask fills.
func (l *Lazy) MaskWords() int { return l.words }

// Mask allows every token before the marker, the call grammar's after.
func (l *Lazy) Mask(dst []uint64) {
	if l.m != nil {
		l.m.Mask(dst)
		return
	}
	for i := range dst {
		dst[i] = ^uint64(0)
	}
}

// Advance accepts the token sampled.
func (l *Lazy) Advance(tok int32) error {
	if l.m != nil {
		return l.m.Advance(tok)
	}
	text := l.tail + l.tok.Piece(tok)
	if i := strings.Index(text, l.start); i >= 0 {
		m := l.g.NewMatcher()
		if rest := text[i+len(l.start):]; rest == "" || m.AdvanceText(rest) == nil {
			l.m = m
			return nil
		}
	}
	if n := len(l.start) - 1; len(text) > n {
		text = text[len(text)-n:]
	}
	l.tail = text
	return nil
}

// Done reports whether the calls are complete and nothing may follow.
func (l *Lazy) Done() bool { return l.m != nil && l.m.Done() }
