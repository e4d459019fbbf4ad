package grammar

// jsonBuilder adds JSON's lexical and structural rules to a builder. Rules
// it shares (a string character, any value, ...) are built once.
type jsonBuilder struct {
	*builder
	anyWS bool // whitespace allowed between tokens (else compact JSON)

	wsRule, char, anyString, integer, number, value, object, array sym
	haveChar, haveValue                                            bool
	keyRest                                                        sym // plain (unescaped) key characters, then the closing quote
	haveKeyRest                                                    bool
}

func newJSONBuilder(anyWS bool) *jsonBuilder {
	// Rule 0 is a placeholder, so the zero sym means "not built yet".
	return &jsonBuilder{builder: &builder{rules: [][][]sym{{nil}}}, anyWS: anyWS}
}

// ws is the whitespace between JSON tokens: nothing when compact.
func (j *jsonBuilder) ws() []sym {
	if !j.anyWS {
		return nil
	}
	if j.wsRule == (sym{}) {
		j.wsRule = j.star([]sym{symRange(' ', ' ', '\t', '\t', '\n', '\n', '\r', '\r')})
	}
	return []sym{j.wsRule}
}

// utf8Seqs are the well-formed multi-byte UTF-8 sequences: a lead byte
// range and the classes of the continuation bytes.
var utf8Seqs = []struct {
	lo, hi byte
	cont   [][2]byte
}{
	{0xC2, 0xDF, [][2]byte{{0x80, 0xBF}}},
	{0xE0, 0xE0, [][2]byte{{0xA0, 0xBF}, {0x80, 0xBF}}},
	{0xE1, 0xEC, [][2]byte{{0x80, 0xBF}, {0x80, 0xBF}}},
	{0xED, 0xED, [][2]byte{{0x80, 0x9F}, {0x80, 0xBF}}},
	{0xEE, 0xEF, [][2]byte{{0x80, 0xBF}, {0x80, 0xBF}}},
	{0xF0, 0xF0, [][2]byte{{0x90, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}},
	{0xF1, 0xF3, [][2]byte{{0x80, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}},
	{0xF4, 0xF4, [][2]byte{{0x80, 0x8F}, {0x80, 0xBF}, {0x80, 0xBF}}},
}

// plainChars are the alternatives for one unescaped string character whose
// first byte is not in excl: printable ASCII but '"' and '\\', and every
// well-formed multi-byte UTF-8 character.
func plainChars(excl *class) [][]sym {
	ascii := symRange(0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F)
	var alts [][]sym
	if excl != nil {
		for i := range ascii.cls {
			ascii.cls[i] &^= excl[i]
		}
	}
	if ascii.cls != (class{}) {
		alts = append(alts, []sym{ascii})
	}
	for _, u := range utf8Seqs {
		lead := symRange(u.lo, u.hi)
		if excl != nil {
			for i := range lead.cls {
				lead.cls[i] &^= excl[i]
			}
		}
		if lead.cls == (class{}) {
			continue
		}
		seq := []sym{lead}
		for _, c := range u.cont {
			seq = append(seq, symRange(c[0], c[1]))
		}
		alts = append(alts, seq)
	}
	return alts
}

// strChar is one JSON string character: plain, or an escape. \u escapes of
// UTF-16 surrogates are not generated (a pair would decode to one
// character, which would make length bounds wrong).
func (j *jsonBuilder) strChar() sym {
	if j.haveChar {
		return j.char
	}
	hex := symRange('0', '9', 'A', 'F', 'a', 'f')
	alts := plainChars(nil)
	alts = append(alts,
		[]sym{symRange('\\', '\\'), symRange('"', '"', '\\', '\\', '/', '/', 'b', 'b', 'f', 'f', 'n', 'n', 'r', 'r', 't', 't')},
		[]sym{symRange('\\', '\\'), symRange('u', 'u'), symRange('0', '9', 'A', 'C', 'a', 'c'), hex, hex, hex},
		[]sym{symRange('\\', '\\'), symRange('u', 'u'), symRange('D', 'D', 'd', 'd'), symRange('0', '7'), hex, hex},
		[]sym{symRange('\\', '\\'), symRange('u', 'u'), symRange('E', 'F', 'e', 'f'), hex, hex, hex},
	)
	j.char, j.haveChar = j.rule(alts...), true
	return j.char
}

// str is a JSON string of lo to hi characters (hi < 0: unbounded).
func (j *jsonBuilder) str(lo, hi int) sym {
	if lo == 0 && hi < 0 {
		if j.anyString == (sym{}) {
			j.anyString = j.rule(cat(bytesOf(`"`), []sym{j.star([]sym{j.strChar()})}, bytesOf(`"`)))
		}
		return j.anyString
	}
	return j.rule(cat(bytesOf(`"`), j.rep([]sym{j.strChar()}, lo, hi), bytesOf(`"`)))
}

// intSyms is -?(0|[1-9][0-9]*).
func (j *jsonBuilder) intSyms() []sym {
	digits := j.star([]sym{symRange('0', '9')})
	return []sym{j.opt(bytesOf("-")), j.rule(bytesOf("0"), []sym{symRange('1', '9'), digits})}
}

func (j *jsonBuilder) integerRule() sym {
	if j.integer == (sym{}) {
		j.integer = j.rule(j.intSyms())
	}
	return j.integer
}

func (j *jsonBuilder) numberRule() sym {
	if j.number == (sym{}) {
		j.number = j.rule(cat([]sym{j.opt(bytesOf("-"))}, j.unsignedNumber()))
	}
	return j.number
}

// unsignedNumber is a JSON number without its sign.
func (j *jsonBuilder) unsignedNumber() []sym {
	d := symRange('0', '9')
	frac := j.opt([]sym{symRange('.', '.'), d, j.star([]sym{d})})
	exp := j.opt([]sym{symRange('e', 'e', 'E', 'E'), j.opt([]sym{symRange('+', '+', '-', '-')}), d, j.star([]sym{d})})
	return []sym{j.rule(bytesOf("0"), []sym{symRange('1', '9'), j.star([]sym{d})}), frac, exp}
}

// list is open item (sep item)* close with lo to hi items (hi < 0:
// unbounded), whitespace where the policy allows.
func (j *jsonBuilder) list(open, sep, close string, item []sym, lo, hi int) sym {
	ws := j.ws()
	o, c := cat(bytesOf(open), ws), cat(ws, bytesOf(close))
	if hi == 0 {
		return j.rule(cat(bytesOf(open), ws, bytesOf(close)))
	}
	more := cat(ws, bytesOf(sep), ws, item)
	hiMore := hi - 1
	if hi < 0 {
		hiMore = -1
	}
	if lo == 0 {
		return j.rule(cat(o, []sym{j.opt(cat(item, j.rep(more, 0, hiMore)))}, c))
	}
	return j.rule(cat(o, item, j.rep(more, lo-1, hiMore), c))
}

// anyValue is any JSON value.
func (j *jsonBuilder) anyValue() sym {
	if j.haveValue {
		return j.value
	}
	j.haveValue = true
	j.value = j.newRule()
	ws := j.ws()
	member := cat([]sym{j.str(0, -1)}, ws, bytesOf(":"), ws, []sym{j.value})
	j.object = j.list("{", ",", "}", member, 0, -1)
	j.array = j.list("[", ",", "]", []sym{j.value}, 0, -1)
	j.setRule(j.value,
		[]sym{j.object}, []sym{j.array}, []sym{j.str(0, -1)}, []sym{j.numberRule()},
		bytesOf("true"), bytesOf("false"), bytesOf("null"))
	return j.value
}

// anyObject is any JSON object.
func (j *jsonBuilder) anyObject() sym {
	j.anyValue()
	return j.object
}

// keyRestRule is plain key characters then the closing quote.
func (j *jsonBuilder) keyRestRule() sym {
	if !j.haveKeyRest {
		j.keyRest = j.rule(cat([]sym{j.star([]sym{j.rule(plainChars(nil)...)})}, bytesOf(`"`)))
		j.haveKeyRest = true
	}
	return j.keyRest
}
