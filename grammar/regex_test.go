package grammar

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// regexCases are patterns in the syntax Go's regexp shares with
// ECMAScript, with texts to check the grammar against regexp's answer.
var regexCases = []struct {
	pattern string
	texts   []string
}{
	{`[a-z]+`, []string{"abc", "", "aB", "9", "zz"}},
	{`^\d{3}-\d{4}$`, []string{"555-1234", "55-1234", "5555-1234", "555-12345", "abc-defg"}},
	{`(ab|cd)*e?`, []string{"", "ab", "abcd", "abe", "abc", "e", "ee"}},
	{`[^"\\]{2,3}`, []string{"ab", "a", "abcd", `a"`, `a\`, "é!"}},
	{`colou?r`, []string{"color", "colour", "colouur", "xcolor"}},
	{`\w+@\w+\.com`, []string{"a@b.com", "a@b.org", "@b.com", "a_1@x.com"}},
	{`[à-ÿ]+\s?x`, []string{"àx", "ÿ x", "ax", "à  x"}},
	{`.{2}`, []string{"ab", "é€", "a\n", "abc", "a"}},
	{`(?:a|b)+c{0,2}`, []string{"abab", "abcc", "abccc", "c"}},
	{`\(\d+\)`, []string{"(12)", "12", "(x)"}},
}

// TestCompileRegexMatchesRegexp: CompileRegex accepts exactly the texts
// the whole of which Go's regexp matches.
func TestCompileRegexMatchesRegexp(t *testing.T) {
	tok := llama3(t)
	for _, c := range regexCases {
		g, err := CompileRegex(tok, c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		re := regexp.MustCompile(`^(?:` + c.pattern + `)$`)
		for _, s := range c.texts {
			if s == "" {
				continue // an empty output is not a token walk
			}
			if got, want := accepts(t, tok, g, s), re.MatchString(s); got != want {
				t.Errorf("%s: %q accepted %v, regexp says %v", c.pattern, s, got, want)
			}
		}
	}
}

// TestSchemaPattern: a JSON Schema pattern matches anywhere in the decoded
// string unless anchored, with JSON's escapes for '"', '\' and controls.
func TestSchemaPattern(t *testing.T) {
	tok := llama3(t)
	for _, c := range append(regexCases, struct {
		pattern string
		texts   []string
	}{`^a"b\\c\n$`, []string{"a\"b\\c\n", "a\"b\\c"}}) {
		schema, _ := json.Marshal(map[string]any{"type": "string", "pattern": c.pattern})
		g := compileSchema(t, tok, string(schema))
		re := regexp.MustCompile(c.pattern)
		for _, s := range c.texts {
			inst, _ := json.Marshal(s)
			if got, want := accepts(t, tok, g, string(inst)), re.MatchString(s); got != want {
				t.Errorf("%s: %s accepted %v, regexp says %v", c.pattern, inst, got, want)
			}
		}
	}
}

func TestRegexRefused(t *testing.T) {
	tok := llama3(t)
	for _, p := range []string{`(a`, `a)`, `[a-`, `(?=a)b`, `(a)\1`, `\bword`, `a**`, `[z-a]`, `a{2}{3}`, `x\`, `a^b`, `a$b`} {
		_, err := CompileRegex(tok, p)
		var re *RegexError
		if !errors.As(err, &re) {
			t.Errorf("%q: got %v, want a RegexError", p, err)
		}
	}
	_, err := CompileJSONSchema(tok, []byte(`{"type":"string","pattern":"(?<=a)b"}`), Options{})
	var se *SchemaError
	if !errors.As(err, &se) || se.Keyword != "pattern" {
		t.Errorf("lookbehind pattern: got %v, want a SchemaError naming pattern", err)
	}
}

// FuzzCompileRegex: any pattern compiles or is refused with an error,
// never a panic, and a compiled grammar's first mask agrees with Allowed.
func FuzzCompileRegex(f *testing.F) {
	for _, c := range regexCases {
		f.Add(c.pattern)
	}
	f.Add(`[^]`)
	f.Add(`a{3,1}`)
	f.Add(`(?<n>x)|\u00e9\x41[\d-z]`)
	tok := llama3(f)
	f.Fuzz(func(t *testing.T, pattern string) {
		g, err := CompileRegex(tok, pattern)
		if err != nil {
			return
		}
		m := g.NewMatcher()
		mask := make([]uint64, m.MaskWords())
		m.Mask(mask)
		for _, id := range []int32{0, 1, 15, 90, 220, 517} {
			if in := mask[id>>6]&(1<<(id&63)) != 0; in != m.Allowed(id) {
				t.Fatalf("token %d: mask %v, Allowed %v", id, in, !in)
			}
		}
	})
}

// TestRegexFormats: the formats written as regular expressions accept
// common values and refuse malformed ones.
func TestRegexFormats(t *testing.T) {
	tok := llama3(t)
	for format, c := range map[string]struct{ valid, invalid []string }{
		"email":         {[]string{"a@b.io", "first.last+tag@mail.example.com"}, []string{"a@b", "a b@c.io", "@b.io", "a..b@c.io", "a@-b.io"}},
		"hostname":      {[]string{"example.com", "a-b.c", "localhost"}, []string{"-a.com", "a_b.com", "a..b", ""}},
		"ipv4":          {[]string{"192.168.0.1", "0.0.0.0", "255.255.255.255"}, []string{"256.1.1.1", "1.2.3", "01.2.3.4"}},
		"uri":           {[]string{"https://example.com/a/b?c=d#e", "urn:isbn:0451450523", "mailto:a@b.io", "http://h:8080"}, []string{"/relative/path", "no scheme", "http://a b", "1http://x", "http://x/%zz"}},
		"uri-reference": {[]string{"/relative/path?q", "../up", "https://example.com", "#frag"}, []string{"a b", "1a:b", "%zz"}},
	} {
		schema := `{"type":"string","format":"` + format + `"}`
		g := compileSchema(t, tok, schema)
		for _, v := range c.valid {
			if inst, _ := json.Marshal(v); !accepts(t, tok, g, string(inst)) {
				t.Errorf("%s: valid %s rejected", format, inst)
			}
		}
		for _, v := range c.invalid {
			if inst, _ := json.Marshal(v); accepts(t, tok, g, string(inst)) {
				t.Errorf("%s: invalid %s accepted", format, inst)
			}
		}
	}
}

// TestSchemaPatternProperties: with additionalProperties false, keys
// beside the declared ones must match a pattern and their values its
// schema; the forms that would need more are refused.
func TestSchemaPatternProperties(t *testing.T) {
	tok := llama3(t)
	g := compileSchema(t, tok, `{"type":"object","properties":{"id":{"type":"integer"}},"patternProperties":{"^x-[a-z]+$":{"type":"string"},"^y_":{"type":"string"}},"additionalProperties":false}`)
	for _, v := range []string{`{"id":1,"x-ab":"s"}`, `{"x-a":"s","y_9":"t"}`, `{}`} {
		if !accepts(t, tok, g, v) {
			t.Errorf("valid %s rejected", v)
		}
	}
	for _, v := range []string{`{"x-a":1}`, `{"x-A":"s"}`, `{"z":"s"}`, `{"id":"1"}`} {
		if accepts(t, tok, g, v) {
			t.Errorf("invalid %s accepted", v)
		}
	}
	// Without additionalProperties false, keys matching no pattern are
	// left out (stricter); matching ones still take the pattern's schema.
	g = compileSchema(t, tok, `{"type":"object","patternProperties":{"^[a-z]+$":{"type":"integer"}}}`)
	if !accepts(t, tok, g, `{"ab":1,"c":2}`) || accepts(t, tok, g, `{"ab":"x"}`) || accepts(t, tok, g, `[]`) {
		t.Error("patternProperties without additionalProperties false not matched as expected")
	}
	for schema, msg := range map[string]string{
		`{"type":"object","patternProperties":{"^a":{"type":"string"},"^b":{}},"additionalProperties":false}`:                  "different schemas",
		`{"type":"object","properties":{"ab":{}},"patternProperties":{"^a":{"type":"string"}},"additionalProperties":false}`:   "declared",
		`{"type":"object","properties":{"q":{}},"patternProperties":{"(?=a)":{"type":"string"}},"additionalProperties":false}`: "lookaround",
	} {
		_, err := CompileJSONSchema(tok, []byte(schema), Options{})
		var se *SchemaError
		if !errors.As(err, &se) || se.Keyword != "patternProperties" || !strings.Contains(se.Msg, msg) {
			t.Errorf("%s: got %v, want a patternProperties error saying %q", schema, err, msg)
		}
	}
}

func TestPatternLengths(t *testing.T) {
	for _, c := range []struct {
		pattern string
		lo, hi  int
	}{
		{`^[0-9]{5}(-[0-9]{4})?$`, 5, 10},
		{`^a|bc$`, 1, -1},
		{`^(ab|c)$`, 1, 2},
		{`^\d+$`, 1, -1},
		{`x`, 1, -1},
		{`^$`, 0, 0},
	} {
		lo, hi, err := patternLengths(c.pattern)
		if err != nil || lo != c.lo || hi != c.hi {
			t.Errorf("%s: lengths %d..%d (%v), want %d..%d", c.pattern, lo, hi, err, c.lo, c.hi)
		}
	}
}
