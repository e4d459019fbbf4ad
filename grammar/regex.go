package grammar

import (
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/tokenizer"
)

// CompileRegex compiles "the whole output matches pattern" for tok's
// vocabulary (ECMAScript syntax, as JSON Schema and vLLM's guided_regex
// use it; a leading ^ and trailing $ are implied and may be written).
func CompileRegex(tok *tokenizer.Tokenizer, pattern string) (*Grammar, error) {
	b := &builder{}
	seq, err := regexSyms(b, pattern, b.rawChar, nil)
	if err != nil {
		return nil, err
	}
	return b.build(b.rule(seq), vocabFor(tok))
}

// regexSyms parses pattern into b's symbols; char writes one character,
// any (nil: the pattern is anchored at both ends) is the text an
// unanchored end may match.
func regexSyms(b *builder, pattern string, char func([]runeRange) []sym, any []sym) ([]sym, error) {
	if !utf8.ValidString(pattern) {
		return nil, &RegexError{Pattern: pattern, Msg: "the pattern is not valid UTF-8"}
	}
	p := &regexParser{src: []rune(pattern), pat: pattern, b: b, char: char, any: any}
	return p.parseTop()
}

// RegexError is a regular expression the regex front end refuses: a
// syntax error, or a feature a context-free grammar cannot express
// (backreferences, lookaround, word boundaries) or that is not supported.
type RegexError struct {
	Pattern string
	Offset  int // in runes
	Msg     string
}

func (e *RegexError) Error() string {
	return fmt.Sprintf("grammar: regex %q at offset %d: %s", e.Pattern, e.Offset, e.Msg)
}

// runeRange is the characters lo..hi.
type runeRange struct{ lo, hi rune }

// maxRegexDepth bounds group nesting.
const maxRegexDepth = 64

// regexParser compiles ECMAScript-style regular expressions (the syntax of
// JSON Schema's pattern and of vLLM's guided_regex) into builder symbols.
// char turns a character set into the symbols of one character in the
// output: raw UTF-8, or as it is written inside a JSON string.
type regexParser struct {
	src   []rune
	pat   string
	pos   int
	depth int
	b     *builder
	char  func(rs []runeRange) []sym
	any   []sym // any output text, for unanchored ends (nil: anchored)
}

func (p *regexParser) errf(format string, args ...any) error {
	return &RegexError{Pattern: p.pat, Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *regexParser) more() bool { return p.pos < len(p.src) }
func (p *regexParser) peek() rune { return p.src[p.pos] }

// parseTop parses the whole pattern: top-level alternatives, each anchored
// by ^ and $ or else surrounded by p.any.
func (p *regexParser) parseTop() ([]sym, error) {
	var alts [][]sym
	for {
		start := p.more() && p.peek() == '^'
		if start {
			p.pos++
		}
		seq, end, err := p.parseSeq(true)
		if err != nil {
			return nil, err
		}
		if p.any != nil && !start {
			seq = append(slices.Clone(p.any), seq...)
		}
		if p.any != nil && !end {
			seq = append(seq, p.any...)
		}
		alts = append(alts, seq)
		if !p.more() {
			break
		}
		if p.peek() != '|' {
			return nil, p.errf("unbalanced ')'")
		}
		p.pos++
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return []sym{p.b.rule(alts...)}, nil
}

// parseAlt parses alternatives up to ')' or the end.
func (p *regexParser) parseAlt() ([]sym, error) {
	var alts [][]sym
	for {
		seq, _, err := p.parseSeq(false)
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		if !p.more() || p.peek() != '|' {
			break
		}
		p.pos++
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return []sym{p.b.rule(alts...)}, nil
}

// parseSeq parses quantified atoms up to '|', ')' or the end; at the top
// level a final '$' anchors the end (end reports it).
func (p *regexParser) parseSeq(top bool) (seq []sym, end bool, err error) {
	for p.more() {
		switch p.peek() {
		case '|', ')':
			return seq, false, nil
		case '$':
			p.pos++
			if top && (!p.more() || p.peek() == '|') {
				return seq, true, nil
			}
			return nil, false, p.errf("'$' is supported only at the end of the pattern")
		case '^':
			return nil, false, p.errf("'^' is supported only at the start of the pattern")
		}
		atom, err := p.parseAtom()
		if err != nil {
			return nil, false, err
		}
		if atom, err = p.quantify(atom); err != nil {
			return nil, false, err
		}
		seq = append(seq, atom...)
		if p.b.err != nil {
			return nil, false, p.b.err
		}
	}
	return seq, false, nil
}

// quantify applies a quantifier after an atom, if any.
func (p *regexParser) quantify(atom []sym) ([]sym, error) {
	if !p.more() {
		return atom, nil
	}
	lo, hi := 0, 0
	switch p.peek() {
	case '*':
		lo, hi = 0, -1
	case '+':
		lo, hi = 1, -1
	case '?':
		lo, hi = 0, 1
	case '{':
		var ok bool
		if lo, hi, ok = p.braces(); !ok {
			return atom, nil // a literal '{', as ECMAScript reads it
		}
	default:
		return atom, nil
	}
	p.pos++
	if p.more() && p.peek() == '?' { // lazy: the same language
		p.pos++
	}
	if p.more() {
		save := p.pos
		_, _, braced := p.braces()
		p.pos = save
		if c := p.peek(); c == '*' || c == '+' || c == '?' || (c == '{' && braced) {
			return nil, p.errf("a quantifier follows a quantifier")
		}
	}
	if len(atom) == 0 {
		return atom, nil
	}
	grp := []sym{p.b.rule(atom)}
	return p.b.rep(grp, lo, hi), nil
}

// braces reads {n}, {n,} or {n,m} at p.pos, leaving p.pos on the closing
// brace; ok is false (p.pos unchanged) when the text is not a quantifier.
func (p *regexParser) braces() (lo, hi int, ok bool) {
	i := p.pos + 1
	num := func() (int, bool) {
		j := i
		for i < len(p.src) && p.src[i] >= '0' && p.src[i] <= '9' {
			i++
		}
		n, err := strconv.Atoi(string(p.src[j:i]))
		return n, err == nil && n <= 100000
	}
	lo, okLo := num()
	if !okLo {
		return 0, 0, false
	}
	hi = lo
	if i < len(p.src) && p.src[i] == ',' {
		i++
		if i < len(p.src) && p.src[i] == '}' {
			hi = -1
		} else if hi, ok = num(); !ok || hi < lo {
			return 0, 0, false
		}
	}
	if i >= len(p.src) || p.src[i] != '}' {
		return 0, 0, false
	}
	p.pos = i
	return lo, hi, true
}

// parseAtom parses a group, a class, '.', an escape or a literal.
func (p *regexParser) parseAtom() ([]sym, error) {
	c := p.peek()
	p.pos++
	switch c {
	case '(':
		return p.group()
	case '[':
		rs, err := p.class()
		if err != nil {
			return nil, err
		}
		return p.set(rs)
	case '.':
		return p.set(negate([]runeRange{{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}))
	case '\\':
		rs, err := p.escape(false)
		if err != nil {
			return nil, err
		}
		return p.set(rs)
	case '*', '+', '?':
		p.pos--
		return nil, p.errf("a quantifier has nothing to repeat")
	case ')':
		p.pos--
		return nil, p.errf("unbalanced ')'")
	}
	return p.set([]runeRange{{c, c}})
}

func (p *regexParser) set(rs []runeRange) ([]sym, error) {
	if len(rs) == 0 {
		return nil, p.errf("the character class matches nothing")
	}
	return p.char(rs), nil
}

// group parses the rest of (...), (?:...) or (?<name>...).
func (p *regexParser) group() ([]sym, error) {
	if p.more() && p.peek() == '?' {
		p.pos++
		switch {
		case p.more() && p.peek() == ':':
			p.pos++
		case p.more() && p.peek() == '<' && p.pos+1 < len(p.src) && p.src[p.pos+1] != '=' && p.src[p.pos+1] != '!':
			for p.more() && p.peek() != '>' {
				p.pos++
			}
			if !p.more() {
				return nil, p.errf("unterminated group name")
			}
			p.pos++
		default:
			return nil, p.errf("lookaround and group flags are not supported")
		}
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxRegexDepth {
		return nil, p.errf("groups nested too deeply")
	}
	seq, err := p.parseAlt()
	if err != nil {
		return nil, err
	}
	if !p.more() || p.peek() != ')' {
		return nil, p.errf("missing ')'")
	}
	p.pos++
	return []sym{p.b.rule(seq)}, nil
}
