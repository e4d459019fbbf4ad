package tokenizer

import (
	"fmt"
	"unicode"
)

// The byte-level BPE vocabularies split text into words before merging.
// Upstream tokenizers describe the split with regular expressions that use
// look-ahead and Unicode classes; here every expression is a scanner over
// runes. A pre-tokenizer is a list of stages. Each stage refines the current
// segmentation: it splits every segment into matches and the text between
// them, which stays as a segment of its own, so later stages never merge
// what earlier ones separated.

// segmenter holds the text being split and its per-rune classes.
type segmenter struct {
	r   []rune
	cls []uint8
}

// cutter accumulates the lengths of the pieces of one segment.
type cutter struct {
	prev int
	out  []int
}

func (c *cutter) cut(end int) {
	if end > c.prev {
		c.out = append(c.out, end-c.prev)
	}
	c.prev = end
}

// stage splits the segment [ini, end) and appends the piece lengths to out.
type stage func(s *segmenter, ini, end int, out []int) []int

// flagsAt is the class of rune i when it lies inside [ini, end), else 0.
func (s *segmenter) flagsAt(i, end int) uint8 {
	if i < end {
		return s.cls[i]
	}
	return 0
}

// gpt2Stage implements
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func gpt2Stage(s *segmenter, ini, end int, out []int) []int {
	c := cutter{prev: ini, out: out}
	r := s.r
	const lnp = clsLetter | clsNumber | clsSpace
	for pos := ini; pos < end; {
		ch, f := r[pos], s.cls[pos]
		if ch == '\'' && pos+1 < end {
			n := r[pos+1]
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += 2
				c.cut(pos)
				continue
			}
			if pos+2 < end {
				nn := r[pos+2]
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += 3
					c.cut(pos)
					continue
				}
			}
		}
		f2, has2 := f, true
		if ch == ' ' {
			f2, has2 = s.flagsAt(pos+1, end), pos+1 < end
		}
		switch {
		case f2&clsLetter != 0, f2&clsNumber != 0:
			want := f2 & (clsLetter | clsNumber)
			if ch == ' ' {
				pos++
			}
			for pos < end && s.cls[pos]&want != 0 {
				pos++
			}
			c.cut(pos)
			continue
		case has2 && f2&lnp == 0:
			if ch == ' ' {
				pos++
			}
			for pos < end && s.cls[pos]&lnp == 0 {
				pos++
			}
			c.cut(pos)
			continue
		}
		n := 0
		for pos+n < end && s.cls[pos+n]&clsSpace != 0 {
			n++
		}
		switch {
		case n > 1 && pos+n < end:
			pos += n - 1
		case n > 0:
			pos += n
		default:
			pos++
		}
		c.cut(pos)
	}
	return c.out
}

// llama3Stage returns the scanner for
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// with D = maxDigits; contractions=false drops the first alternative.
func llama3Stage(contractions bool, maxDigits int) stage {
	return func(s *segmenter, ini, end int, out []int) []int {
		c := cutter{prev: ini, out: out}
		r := s.r
		const lnp = clsLetter | clsNumber | clsSpace
		for pos := ini; pos < end; {
			ch, f := r[pos], s.cls[pos]
			if contractions && ch == '\'' && pos+1 < end {
				n := asciiLower(r[pos+1])
				if n == 's' || n == 't' || n == 'm' || n == 'd' {
					pos += 2
					c.cut(pos)
					continue
				}
				if pos+2 < end {
					nn := asciiLower(r[pos+2])
					if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
						pos += 3
						c.cut(pos)
						continue
					}
				}
			}
			if ch != '\r' && ch != '\n' && f&clsNumber == 0 {
				if f&clsLetter != 0 || s.flagsAt(pos+1, end)&clsLetter != 0 {
					pos++
					for pos < end && s.cls[pos]&clsLetter != 0 {
						pos++
					}
					c.cut(pos)
					continue
				}
			}
			if f&clsNumber != 0 {
				start := pos
				for pos < end && s.cls[pos]&clsNumber != 0 {
					pos++
					if pos-start >= maxDigits {
						c.cut(pos)
						start = pos
					}
				}
				c.cut(pos)
				continue
			}
			f2 := f
			if ch == ' ' {
				f2 = s.flagsAt(pos+1, end)
			}
			if f2&lnp == 0 {
				if ch == ' ' {
					pos++
				}
				for pos < end && s.cls[pos]&lnp == 0 {
					pos++
				}
				for pos < end && (r[pos] == '\r' || r[pos] == '\n') {
					pos++
				}
				c.cut(pos)
				continue
			}
			n, lastNL := 0, -1
			for pos+n < end && s.cls[pos+n]&clsSpace != 0 {
				if r[pos+n] == '\r' || r[pos+n] == '\n' {
					lastNL = pos + n + 1
				}
				n++
			}
			switch {
			case lastNL >= 0:
				pos = lastNL
			case n > 1 && pos+n < end:
				pos += n - 1
			case n > 0:
				pos += n
			default:
				pos++
			}
			c.cut(pos)
		}
		return c.out
	}
}

func asciiLower(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + ('a' - 'A')
	}
	return unicode.ToLower(r)
}

// matcher returns the length of the match of a pattern starting at rune i of
// the segment ending at end, or 0.
type matcher func(s *segmenter, i, end int) int

// searchStage splits a segment at the successive leftmost matches of m, as a
// regex iterator does; the text between matches is kept as pieces.
func searchStage(m matcher) stage {
	return func(s *segmenter, ini, end int, out []int) []int {
		c := cutter{prev: ini, out: out}
		for i := ini; i < end; {
			if n := m(s, i, end); n > 0 {
				c.cut(i)
				i += n
				c.cut(i)
				continue
			}
			i++
		}
		c.cut(end)
		return c.out
	}
}

// runePred tells whether a rune (with its class) belongs to a set.
type runePred func(r rune, cls uint8) bool

// oneOf matches a single rune of the set: [X].
func oneOf(p runePred) matcher {
	return func(s *segmenter, i, end int) int {
		if p(s.r[i], s.cls[i]) {
			return 1
		}
		return 0
	}
}

// runOf matches one or more runes of the set: [X]+.
func runOf(p runePred) matcher {
	return func(s *segmenter, i, end int) int {
		j := i
		for j < end && p(s.r[j], s.cls[j]) {
			j++
		}
		return j - i
	}
}

// spaceThenRun matches \s?[X]+.
func spaceThenRun(p runePred) matcher {
	run := runOf(p)
	return func(s *segmenter, i, end int) int {
		if s.cls[i]&clsSpace != 0 && i+1 < end {
			if n := run(s, i+1, end); n > 0 {
				return n + 1
			}
		}
		return run(s, i, end)
	}
}

// threeDigits matches [0-9][0-9][0-9].
func threeDigits(s *segmenter, i, end int) int {
	if i+3 <= end && isDigit(s.r[i]) && isDigit(s.r[i+1]) && isDigit(s.r[i+2]) {
		return 3
	}
	return 0
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// trailingSpaceStage implements \s+$: the white space that ends a segment is
// split off.
func trailingSpaceStage(s *segmenter, ini, end int, out []int) []int {
	j := end
	for j > ini && s.cls[j-1]&clsSpace != 0 {
		j--
	}
	c := cutter{prev: ini, out: out}
	c.cut(j)
	c.cut(end)
	return c.out
}

func isNewline(r rune, _ uint8) bool { return r == '\r' || r == '\n' }
func isLetter(_ rune, c uint8) bool  { return c&clsLetter != 0 }
func isNumber(_ rune, c uint8) bool  { return c&clsNumber != 0 }
func isPunct(_ rune, c uint8) bool   { return c&clsPunct != 0 }

// punctOrSymbols returns the set \p{P} plus the listed ASCII symbols.
func punctOrSymbols(extra string) runePred {
	var ascii [128]bool
	for _, r := range extra {
		ascii[r] = true
	}
	return func(r rune, c uint8) bool {
		return c&clsPunct != 0 || (r < 128 && r >= 0 && ascii[r])
	}
}

func inSet(rs []runeRange) runePred {
	return func(r rune, _ uint8) bool { return inRanges(r, rs) }
}

// preTokenizer is a named list of stages.
type preTokenizer struct {
	stages []stage
}

// split returns the words of text as rune-count lengths over runes.
func (p *preTokenizer) split(s *segmenter) []int {
	segs := []int{len(s.r)}
	if len(s.r) == 0 {
		return nil
	}
	for _, st := range p.stages {
		next := make([]int, 0, len(segs)+len(segs)/2+4)
		start := 0
		for _, n := range segs {
			next = st(s, start, start+n, next)
			start += n
		}
		segs = next
	}
	return segs
}

// preTokenizerFor returns the pre-tokenizer for a tokenizer.ggml.pre value
// of a byte-level BPE vocabulary, with whether whole words found in the
// vocabulary skip the merges and whether BOS is added by default.
func preTokenizerFor(pre string) (p *preTokenizer, ignoreMerges, addBOS bool, err error) {
	gpt2 := stage(gpt2Stage)
	switch pre {
	case "", "default":
		p = &preTokenizer{stages: []stage{
			searchStage(runOf(punctOrSymbols("$+<=>^~|"))),
			gpt2,
			searchStage(runOf(isNumber)),
			searchStage(threeDigits),
		}}
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
		"midm-2.0", "lfm2", "jina-v5-nano":
		p = &preTokenizer{stages: []stage{llama3Stage(true, 3)}}
		ignoreMerges, addBOS = true, true
	case "dbrx", "smaug-bpe", "glm4", "chatglm-bpe":
		p = &preTokenizer{stages: []stage{llama3Stage(true, 3)}}
	case "tekken":
		return nil, false, false, fmt.Errorf("pre-tokenizer %q is not supported", pre)
	case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2",
		"hunyuan", "solar-open", "grok-2":
		p = &preTokenizer{stages: []stage{llama3Stage(true, 1)}}
	case "ufakzeka":
		p = &preTokenizer{stages: []stage{llama3Stage(false, 1)}}
	case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
		"jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "exaone4",
		"jina-v1-en", "jina-v2-code", "roberta-bpe",
		"mpt", "olmo", "jais", "trillion", "granite-docling":
		p = &preTokenizer{stages: []stage{gpt2}}
	case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
		"minerva-7b", "mellum2":
		p = &preTokenizer{stages: []stage{searchStage(oneOf(isNumber)), gpt2}}
	case "falcon":
		p = &preTokenizer{stages: []stage{
			searchStage(runOf(punctOrSymbols("$+<=>^~|`"))),
			gpt2,
			searchStage(threeDigits),
		}}
	case "deepseek-coder":
		p = &preTokenizer{stages: []stage{
			searchStage(oneOf(isNewline)),
			searchStage(spaceThenRun(isLetter)),
			searchStage(spaceThenRun(isPunct)),
			searchStage(runOf(inSet(deepseekCJK))),
			searchStage(oneOf(isNumber)),
		}}
	case "deepseek-llm":
		p = &preTokenizer{stages: []stage{
			searchStage(oneOf(isNewline)),
			searchStage(spaceThenRun(inSet(deepseekLetters))),
			searchStage(spaceThenRun(inSet(deepseekPunct))),
			trailingSpaceStage,
			searchStage(runOf(inSet(deepseekCJK))),
			searchStage(runOf(isNumber)),
		}}
	default:
		return nil, false, false, fmt.Errorf("pre-tokenizer %q is not supported", pre)
	}
	return p, ignoreMerges, addBOS, nil
}
