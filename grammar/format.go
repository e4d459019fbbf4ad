package grammar

import (
	"fmt"
)

// formats are the string formats the compiler expresses exactly or more
// strictly: dates with the days each month always has (February stops at
// 28), times without leap seconds, upper-case "T" and "Z".
var formats = map[string]func(j *jsonBuilder) []sym{
	"date":      func(j *jsonBuilder) []sym { return j.date() },
	"time":      func(j *jsonBuilder) []sym { return j.time() },
	"date-time": func(j *jsonBuilder) []sym { return cat(j.date(), bytesOf("T"), j.time()) },
	"uuid": func(j *jsonBuilder) []sym {
		var out []sym
		for i, n := range []int{8, 4, 4, 4, 12} {
			if i > 0 {
				out = append(out, bytesOf("-")...)
			}
			for range n {
				out = append(out, symRange('0', '9', 'a', 'f', 'A', 'F'))
			}
		}
		return out
	},
}

func digit(lo, hi byte) sym { return symRange(lo, hi) }

// date is YYYY-MM-DD.
func (j *jsonBuilder) date() []sym {
	d := digit('0', '9')
	day31 := j.rule([]sym{digit('0', '0'), digit('1', '9')}, []sym{digit('1', '2'), d}, []sym{digit('3', '3'), digit('0', '1')})
	day30 := j.rule([]sym{digit('0', '0'), digit('1', '9')}, []sym{digit('1', '2'), d}, bytesOf("30"))
	day28 := j.rule([]sym{digit('0', '0'), digit('1', '9')}, []sym{digit('1', '1'), d}, []sym{digit('2', '2'), digit('0', '8')})
	md := j.rule(
		cat([]sym{digit('0', '0'), symRange('1', '1', '3', '3', '5', '5', '7', '8')}, bytesOf("-"), []sym{day31}),
		cat([]sym{digit('1', '1'), symRange('0', '0', '2', '2')}, bytesOf("-"), []sym{day31}),
		cat([]sym{digit('0', '0'), symRange('4', '4', '6', '6', '9', '9')}, bytesOf("-"), []sym{day30}),
		cat(bytesOf("11-"), []sym{day30}),
		cat(bytesOf("02-"), []sym{day28}),
	)
	return cat([]sym{d, d, d, d}, bytesOf("-"), []sym{md})
}

// time is HH:MM:SS[.frac](Z|+HH:MM|-HH:MM).
func (j *jsonBuilder) time() []sym {
	d := digit('0', '9')
	hh := j.rule([]sym{digit('0', '1'), d}, []sym{digit('2', '2'), digit('0', '3')})
	mm := []sym{digit('0', '5'), d}
	frac := j.opt([]sym{symRange('.', '.'), d, j.star([]sym{d})})
	off := j.rule(bytesOf("Z"), cat([]sym{symRange('+', '+', '-', '-'), hh}, bytesOf(":"), mm))
	return cat([]sym{hh}, bytesOf(":"), mm, bytesOf(":"), mm, []sym{frac, off})
}

// standardFormats are the formats JSON Schema defines (drafts 4 to
// 2020-12); one the compiler cannot express is refused. Other format names
// are annotations and constrain nothing.
var standardFormats = map[string]bool{
	"date-time": true, "date": true, "time": true, "duration": true, "email": true,
	"idn-email": true, "hostname": true, "idn-hostname": true, "ipv4": true, "ipv6": true,
	"uri": true, "uri-reference": true, "iri": true, "iri-reference": true, "uuid": true,
	"uri-template": true, "json-pointer": true, "relative-json-pointer": true, "regex": true,
	"host-name": true, "ip-address": true, "color": true, "utc-millisec": true, "style": true, "phone": true,
}

// Parts of regexFormats: RFC 3986 URIs without IP literals, and RFC 1123
// host names.
const (
	uriChar    = `(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})`
	uriCharNC  = `(?:[A-Za-z0-9._~!$&'()*+,;=@-]|%[0-9A-Fa-f]{2})` // no ':' (a relative reference's first segment)
	uriSeg     = uriChar + `*`
	uriAuth    = `//(?:(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*@)?(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*(?::[0-9]*)?(?:/` + uriSeg + `)*`
	uriTail    = `(?:\?(?:` + uriChar + `|[/?])*)?(?:#(?:` + uriChar + `|[/?])*)?`
	hostLabel  = `[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?`
	ipv4Octet  = `(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])`
	emailAtext = `[A-Za-z0-9!#$%&'*+/=?^_{|}~-]`
)

// regexFormats are formats written as regular expressions; each matches a
// subset of its format (the common forms), never more.
var regexFormats = map[string]string{
	"email":    emailAtext + `+(?:\.` + emailAtext + `+)*@` + hostLabel + `(?:\.` + hostLabel + `)+`,
	"hostname": hostLabel + `(?:\.` + hostLabel + `)*`,
	"ipv4":     `(?:` + ipv4Octet + `\.){3}` + ipv4Octet,
	"uri":      `[A-Za-z][A-Za-z0-9+.-]*:(?:` + uriAuth + `|/?(?:` + uriChar + `+(?:/` + uriSeg + `)*)?)` + uriTail,
	"uri-reference": `(?:[A-Za-z][A-Za-z0-9+.-]*:(?:` + uriAuth + `|/?(?:` + uriChar + `+(?:/` + uriSeg + `)*)?)|` +
		uriAuth + `|/?(?:` + uriCharNC + `+(?:/` + uriSeg + `)*)?)` + uriTail,
}

// formatString is a JSON string in format f.
func (c *schemaCompiler) formatString(o *object, f any, path string) (sym, error) {
	name, _ := f.(string)
	gen, ok := formats[name]
	if !ok && !standardFormats[name] {
		// Not a format the specification defines: an annotation.
		lo, hi, err := bounds(o, "minLength", "maxLength", path)
		if err != nil {
			return sym{}, err
		}
		return c.str(lo, hi), nil
	}
	_, isRe := regexFormats[name]
	if !ok && !isRe {
		return sym{}, &SchemaError{Path: path, Keyword: "format", Msg: fmt.Sprintf("unsupported keyword \"format\" with value %q (supported: date, time, date-time, uuid, email, hostname, ipv4, uri, uri-reference)", name)}
	}
	for _, kw := range []string{"minLength", "maxLength"} {
		if _, has := o.get(kw); has {
			return sym{}, &SchemaError{Path: path, Keyword: kw, Msg: fmt.Sprintf("%s beside format is not supported", kw)}
		}
	}
	if isRe {
		seq, err := regexSyms(c.builder, regexFormats[name], c.jsonStrChar, nil)
		if err != nil {
			return sym{}, err // the patterns are constants: only a grammar too large
		}
		return c.rule(cat(bytesOf(`"`), seq, bytesOf(`"`))), nil
	}
	return c.rule(cat(bytesOf(`"`), gen(c.jsonBuilder), bytesOf(`"`))), nil
}

// patternString is a JSON string whose (decoded) text matches pattern
// somewhere, as JSON Schema's pattern says (unanchored unless the pattern
// writes ^ or $). Characters are written raw but for the escapes JSON
// requires; a string that escapes more (\u00e9 for é) is refused.
func (c *schemaCompiler) patternString(o *object, pat any, path string) (sym, error) {
	s, ok := pat.(string)
	if !ok {
		return sym{}, &SchemaError{Path: path, Keyword: "pattern", Msg: "pattern must be a string"}
	}
	if _, has := o.get("format"); has {
		return sym{}, &SchemaError{Path: path, Keyword: "format", Msg: "format beside pattern is not supported"}
	}
	_, hasMin := o.get("minLength")
	_, hasMax := o.get("maxLength")
	if hasMin || hasMax {
		return c.boundedPattern(o, s, path)
	}
	any := []sym{c.star([]sym{c.strChar()})}
	seq, err := regexSyms(c.builder, s, c.jsonStrChar, any)
	if err != nil {
		return sym{}, &SchemaError{Path: path, Keyword: "pattern", Msg: err.Error()}
	}
	return c.rule(cat(bytesOf(`"`), seq, bytesOf(`"`))), nil
}

// boundedPattern is a pattern beside minLength/maxLength: supported when
// the pattern is one character set repeated, anchored at both ends, whose
// repetition bounds the length bounds narrow, or when every string the
// pattern matches meets the bounds.
func (c *schemaCompiler) boundedPattern(o *object, pattern, path string) (sym, error) {
	minL, maxL, err := bounds(o, "minLength", "maxLength", path)
	if err != nil {
		return sym{}, err
	}
	rs, lo, hi, ok := singleClassRepeat(pattern)
	if !ok {
		// Bounds every string of the pattern meets already add nothing.
		pl, ph, err := patternLengths(pattern)
		if err == nil && minL <= pl && (maxL < 0 || (ph >= 0 && ph <= maxL)) {
			return c.patternString(without(without(o, "minLength"), "maxLength"), pattern, path)
		}
		kw := "minLength"
		if minL <= pl {
			kw = "maxLength"
		}
		return sym{}, &SchemaError{Path: path, Keyword: kw, Msg: fmt.Sprintf("%s beside pattern is supported only for a pattern like ^[set]{n,m}$ or when every string of the pattern meets it", kw)}
	}
	lo = max(lo, minL)
	if hi < 0 || (maxL >= 0 && maxL < hi) {
		hi = maxL
	}
	if hi >= 0 && lo > hi {
		return sym{}, &SchemaError{Path: path, Keyword: "minLength", Msg: "no string of the pattern lies within minLength and maxLength", empty: true}
	}
	char := c.rule(c.jsonStrChar(rs))
	return c.rule(cat(bytesOf(`"`), c.rep([]sym{char}, lo, hi), bytesOf(`"`))), nil
}
