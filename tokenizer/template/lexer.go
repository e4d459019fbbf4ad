package template

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The lexer follows Jinja2's with trim_blocks and lstrip_blocks on and
// keep_trailing_newline off, which is how Hugging Face renders chat
// templates:
//
//   - newlines (\r\n, \r, \n) are normalized to \n and one trailing newline
//     of the source is dropped;
//   - "{%-", "{{-", "{#-" strip all whitespace before the tag; "-%}", "-}}",
//     "-#}" strip all whitespace after it;
//   - trim_blocks: a single newline right after "%}" or "#}" is dropped
//     ("+%}" keeps it);
//   - lstrip_blocks: spaces and tabs from the start of a line up to "{%" or
//     "{#" are dropped ("{%+" keeps them); never for "{{".

type tokKind uint8

const (
	tkData tokKind = iota
	tkVarBegin
	tkVarEnd
	tkBlockBegin
	tkBlockEnd
	tkName
	tkString
	tkInt
	tkFloat
	tkOp
	tkEOF
)

type token struct {
	kind tokKind
	s    string // data, name, operator or decoded string literal
	i    int
	f    float64
	line int
}

func (t token) String() string {
	switch t.kind {
	case tkData:
		return "template data"
	case tkVarBegin:
		return "'{{'"
	case tkVarEnd:
		return "'}}'"
	case tkBlockBegin:
		return "'{%'"
	case tkBlockEnd:
		return "'%}'"
	case tkName:
		return "'" + t.s + "'"
	case tkString:
		return "string"
	case tkInt:
		return "integer"
	case tkFloat:
		return "float"
	case tkOp:
		return "'" + t.s + "'"
	case tkEOF:
		return "end of template"
	}
	return "token"
}

func normalizeSource(src string) string {
	if strings.IndexByte(src, '\r') >= 0 {
		src = strings.ReplaceAll(src, "\r\n", "\n")
		src = strings.ReplaceAll(src, "\r", "\n")
	}
	return strings.TrimSuffix(src, "\n")
}

type lexer struct {
	src  string
	line int
	toks []token
}

func (lx *lexer) emit(t token) { lx.toks = append(lx.toks, t) }

// advance moves the line counter over src[from:to].
func (lx *lexer) advance(from, to int) {
	lx.line += strings.Count(lx.src[from:to], "\n")
}

func isAllSpace(s string) bool {
	for _, r := range s {
		if !pyIsSpace(r) {
			return false
		}
	}
	return true
}

// stripText applies the whitespace control of a tag to the text before it.
func stripText(text string, sign byte, kind byte, lineStarting bool) string {
	if sign == '-' {
		return pyRStrip(text)
	}
	if sign == '+' || kind == '{' {
		return text
	}
	lpos := strings.LastIndexByte(text, '\n') + 1
	if lpos > 0 || lineStarting {
		if rest := text[lpos:]; rest != "" && isAllSpace(rest) {
			return text[:lpos]
		}
	}
	return text
}

// skipSpace returns the position after the whitespace at p.
func skipSpace(s string, p int) int {
	for p < len(s) {
		r, n := utf8.DecodeRuneInString(s[p:])
		if !pyIsSpace(r) {
			break
		}
		p += n
	}
	return p
}

func nextTagStart(s string, p int) int {
	for {
		i := strings.IndexByte(s[p:], '{')
		if i < 0 {
			return -1
		}
		p += i
		if p+1 < len(s) && (s[p+1] == '{' || s[p+1] == '%' || s[p+1] == '#') {
			return p
		}
		p++
	}
}

// matchWord matches optional whitespace, word, optional whitespace at p and
// returns the position after it, or -1.
func matchWord(s string, p int, word string) int {
	p = skipSpace(s, p)
	if !strings.HasPrefix(s[p:], word) {
		return -1
	}
	return skipSpace(s, p+len(word))
}

// matchRawBegin matches the rest of "{% raw %}" after "{%" and the sign.
func matchRawBegin(s string, p int) int {
	q := matchWord(s, p, "raw")
	if q < 0 {
		return -1
	}
	if strings.HasPrefix(s[q:], "-%}") {
		return skipSpace(s, q+3)
	}
	if strings.HasPrefix(s[q:], "%}") {
		return q + 2
	}
	return -1
}

func lex(src string) ([]token, error) {
	src = normalizeSource(src)
	lx := &lexer{src: src, line: 1}
	pos := 0
	lineStarting := true
	for pos < len(src) {
		idx := nextTagStart(src, pos)
		if idx < 0 {
			lx.emit(token{kind: tkData, s: src[pos:], line: lx.line})
			lx.advance(pos, len(src))
			break
		}
		kind := src[idx+1]
		j := idx + 2
		var sign byte
		if j < len(src) && (src[j] == '-' || src[j] == '+') {
			sign = src[j]
			j++
		}
		text := stripText(src[pos:idx], sign, kind, lineStarting)
		if text != "" {
			lx.emit(token{kind: tkData, s: text, line: lx.line})
		}
		lx.advance(pos, idx)
		tagLine := lx.line

		switch kind {
		case '#':
			q := strings.Index(src[j:], "#}")
			if q < 0 {
				return nil, syntaxErr(tagLine, "missing end of comment tag")
			}
			end := j + q + 2
			switch {
			case q > 0 && src[j+q-1] == '-':
				end = skipSpace(src, end)
			case q > 0 && src[j+q-1] == '+':
			default:
				if end < len(src) && src[end] == '\n' {
					end++
				}
			}
			lx.advance(j, end)
			lineStarting = src[end-1] == '\n'
			pos = end
			continue
		case '%':
			if rb := matchRawBegin(src, j); rb >= 0 {
				lx.advance(j, rb)
				end, err := lx.lexRaw(rb, src[rb-1] == '\n')
				if err != nil {
					return nil, err
				}
				lineStarting = src[end-1] == '\n'
				pos = end
				continue
			}
			lx.emit(token{kind: tkBlockBegin, line: tagLine})
		default:
			lx.emit(token{kind: tkVarBegin, line: tagLine})
		}
		end, err := lx.lexTag(j, kind)
		if err != nil {
			return nil, err
		}
		lineStarting = src[end-1] == '\n'
		pos = end
	}
	lx.emit(token{kind: tkEOF, line: lx.line})
	return lx.toks, nil
}

// lexRaw handles the body of {% raw %} starting at p and returns the
// position after {% endraw %}.
func (lx *lexer) lexRaw(p int, lineStarting bool) (int, error) {
	src := lx.src
	startLine := lx.line
	search := p
	for {
		i := strings.Index(src[search:], "{%")
		if i < 0 {
			return 0, syntaxErr(startLine, "missing end of raw directive")
		}
		t := search + i
		j := t + 2
		var sign byte
		if j < len(src) && (src[j] == '-' || src[j] == '+') {
			sign = src[j]
			j++
		}
		q := matchWord(src, j, "endraw")
		end := -1
		if q >= 0 {
			switch {
			case strings.HasPrefix(src[q:], "+%}"):
				end = q + 3
			case strings.HasPrefix(src[q:], "-%}"):
				end = skipSpace(src, q+3)
			case strings.HasPrefix(src[q:], "%}"):
				end = q + 2
				if end < len(src) && src[end] == '\n' {
					end++
				}
			}
		}
		if end < 0 {
			search = t + 2
			continue
		}
		text := stripText(src[p:t], sign, '%', lineStarting)
		if text != "" {
			lx.emit(token{kind: tkData, s: text, line: lx.line})
		}
		lx.advance(p, end)
		return end, nil
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func scanDigits(s string, p int) int {
	for p < len(s) {
		if isDigit(s[p]) {
			p++
			continue
		}
		if s[p] == '_' && p+1 < len(s) && isDigit(s[p+1]) && p > 0 && isDigit(s[p-1]) {
			p++
			continue
		}
		break
	}
	return p
}

func isNameStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isNameChar(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)
}

var twoCharOps = []string{"//", "**", "==", "!=", ">=", "<="}

const oneCharOps = "+-/*%~[](){}><=.:|,;"

// lexTag tokenizes the inside of a {% %} or {{ }} tag starting at p and
// returns the position after the closing delimiter (and any whitespace it
// consumes).
func (lx *lexer) lexTag(p int, kind byte) (int, error) {
	src := lx.src
	var balance []byte
	for {
		if p >= len(src) {
			if kind == '%' {
				return 0, syntaxErr(lx.line, "unexpected end of template, expected '%%}'")
			}
			return 0, syntaxErr(lx.line, "unexpected end of template, expected '}}'")
		}
		if len(balance) == 0 {
			endKind := tkVarEnd
			closer := "}}"
			if kind == '%' {
				endKind = tkBlockEnd
				closer = "%}"
			}
			rest := src[p:]
			if strings.HasPrefix(rest, "-"+closer) {
				lx.emit(token{kind: endKind, line: lx.line})
				end := skipSpace(src, p+3)
				lx.advance(p, end)
				return end, nil
			}
			if kind == '%' && strings.HasPrefix(rest, "+"+closer) {
				lx.emit(token{kind: endKind, line: lx.line})
				return p + 3, nil
			}
			if strings.HasPrefix(rest, closer) {
				lx.emit(token{kind: endKind, line: lx.line})
				end := p + 2
				if kind == '%' && end < len(src) && src[end] == '\n' {
					end++
					lx.line++
				}
				return end, nil
			}
		}
		c := src[p]
		r, n := utf8.DecodeRuneInString(src[p:])
		switch {
		case pyIsSpace(r):
			if r == '\n' {
				lx.line++
			}
			p += n
		case isDigit(c):
			np, err := lx.lexNumber(p)
			if err != nil {
				return 0, err
			}
			p = np
		case isNameStart(r):
			q := p + n
			for q < len(src) {
				r2, n2 := utf8.DecodeRuneInString(src[q:])
				if !isNameChar(r2) {
					break
				}
				q += n2
			}
			lx.emit(token{kind: tkName, s: src[p:q], line: lx.line})
			p = q
		case c == '\'' || c == '"':
			q := p + 1
			for q < len(src) && src[q] != c {
				if src[q] == '\\' {
					q++
				}
				q++
			}
			if q >= len(src) {
				return 0, syntaxErr(lx.line, "unterminated string literal")
			}
			val, err := unescapePy(src[p+1 : q])
			if err != nil {
				return 0, syntaxErr(lx.line, "%v", err)
			}
			lx.emit(token{kind: tkString, s: val, line: lx.line})
			lx.advance(p, q+1)
			p = q + 1
		default:
			op := ""
			for _, o := range twoCharOps {
				if strings.HasPrefix(src[p:], o) {
					op = o
					break
				}
			}
			if op == "" && strings.IndexByte(oneCharOps, c) >= 0 {
				op = src[p : p+1]
			}
			if op == "" {
				return 0, syntaxErr(lx.line, "unexpected char %q", r)
			}
			switch op {
			case "(", "[", "{":
				balance = append(balance, op[0])
			case ")", "]", "}":
				want := map[string]byte{")": '(', "]": '[', "}": '{'}[op]
				if len(balance) == 0 || balance[len(balance)-1] != want {
					return 0, syntaxErr(lx.line, "unexpected '%s'", op)
				}
				balance = balance[:len(balance)-1]
			}
			lx.emit(token{kind: tkOp, s: op, line: lx.line})
			p += len(op)
		}
	}
}

func (lx *lexer) lexNumber(p int) (int, error) {
	src := lx.src
	start := p
	p = scanDigits(src, p)
	isFloat := false
	if start == 0 || src[start-1] != '.' {
		q := p
		if q+1 < len(src) && src[q] == '.' && isDigit(src[q+1]) {
			q = scanDigits(src, q+1)
			isFloat = true
		}
		if q < len(src) && (src[q] == 'e' || src[q] == 'E') {
			r := q + 1
			if r < len(src) && (src[r] == '+' || src[r] == '-') {
				r++
			}
			if r < len(src) && isDigit(src[r]) {
				q = scanDigits(src, r)
				isFloat = true
			}
		}
		if isFloat {
			p = q
		}
	}
	lit := strings.ReplaceAll(src[start:p], "_", "")
	if isFloat {
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
				return 0, syntaxErr(lx.line, "bad float literal %q", lit)
			}
		}
		lx.emit(token{kind: tkFloat, f: f, line: lx.line})
		return p, nil
	}
	i, err := strconv.Atoi(lit)
	if err != nil {
		return 0, syntaxErr(lx.line, "integer literal %s out of range", lit)
	}
	lx.emit(token{kind: tkInt, i: i, line: lx.line})
	return p, nil
}

// unescapePy decodes backslash escapes the way Python's unicode_escape
// codec does (which is what Jinja applies to string literals).
func unescapePy(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var sb strings.Builder
	var pendingHigh rune = -1
	flush := func() {
		if pendingHigh >= 0 {
			sb.WriteRune(utf8.RuneError)
			pendingHigh = -1
		}
	}
	writeRune := func(r rune) {
		if r >= 0xd800 && r < 0xdc00 {
			flush()
			pendingHigh = r
			return
		}
		if r >= 0xdc00 && r < 0xe000 {
			if pendingHigh >= 0 {
				r = 0x10000 + (pendingHigh-0xd800)<<10 + (r - 0xdc00)
				pendingHigh = -1
				sb.WriteRune(r)
				return
			}
			sb.WriteRune(utf8.RuneError)
			return
		}
		flush()
		sb.WriteRune(r)
	}
	hexVal := func(h string) (rune, bool) {
		v, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return 0, false
		}
		return rune(v), true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			flush()
			sb.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", errorString("\\ at end of string")
		}
		e := s[i+1]
		i += 2
		switch e {
		case '\n':
		case '\\':
			writeRune('\\')
		case '\'':
			writeRune('\'')
		case '"':
			writeRune('"')
		case 'a':
			writeRune(7)
		case 'b':
			writeRune(8)
		case 'f':
			writeRune(12)
		case 'n':
			writeRune('\n')
		case 'r':
			writeRune('\r')
		case 't':
			writeRune('\t')
		case 'v':
			writeRune(11)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := rune(e - '0')
			for k := 0; k < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; k++ {
				v = v*8 + rune(s[i]-'0')
				i++
			}
			writeRune(v)
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if i+n > len(s) {
				return "", errorString("truncated \\" + string(e) + " escape")
			}
			v, ok := hexVal(s[i : i+n])
			if !ok || v > unicode.MaxRune {
				return "", errorString("bad \\" + string(e) + " escape")
			}
			i += n
			writeRune(v)
		case 'N':
			return "", errorString("\\N{...} escapes are not supported")
		default:
			flush()
			sb.WriteByte('\\')
			i-- // the character after the backslash is kept as is
		}
	}
	flush()
	return sb.String(), nil
}

type errorString string

func (e errorString) Error() string { return string(e) }
