package template

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// Python repr() of each float (CPython's shortest round-trip form).
var floatReprCases = []struct {
	f    float64
	want string
}{
	{0.1, "0.1"},
	{0.2, "0.2"},
	{0.30000000000000004, "0.30000000000000004"},
	{1e+16, "1e+16"},
	{1000000000000000.0, "1000000000000000.0"},
	{1.2345678901234568e+17, "1.2345678901234568e+17"},
	{0.0001, "0.0001"},
	{1e-05, "1e-05"},
	{0.00012345, "0.00012345"},
	{5e-324, "5e-324"},
	{1.7976931348623157e+308, "1.7976931348623157e+308"},
	{2.5, "2.5"},
	{-1.5e-10, "-1.5e-10"},
	{1e+22, "1e+22"},
	{1e+21, "1e+21"},
	{9007199254740992.0, "9007199254740992.0"},
	{3.141592653589793, "3.141592653589793"},
	{100.0, "100.0"},
	{1234.5678, "1234.5678"},
	{-1.989032661366619e+244, "-1.989032661366619e+244"},
	{-698301.6521509961, "-698301.6521509961"},
	{6.509344730398538e-27, "6.509344730398538e-27"},
	{-1.9577373031172786e-264, "-1.9577373031172786e-264"},
	{-811739.9161206349, "-811739.9161206349"},
	{5.827880059033551e+27, "5.827880059033551e+27"},
	{6.294675241195386e-44, "6.294675241195386e-44"},
	{-925008.6831160302, "-925008.6831160302"},
	{4.336456836623859e-27, "4.336456836623859e-27"},
	{8.350439972224182e-197, "8.350439972224182e-197"},
	{102094.50758277159, "102094.50758277159"},
	{59110.50607898916, "59110.50607898916"},
	{-5.988180159386011e+243, "-5.988180159386011e+243"},
	{-553522.0707859709, "-553522.0707859709"},
	{6.274332224055893e+29, "6.274332224055893e+29"},
	{-1.346859533748178e-213, "-1.346859533748178e-213"},
	{171082.84528077347, "171082.84528077347"},
	{4.958931338977146e-18, "4.958931338977146e-18"},
	{-8.441872792105456e-239, "-8.441872792105456e-239"},
	{716936.9180973591, "716936.9180973591"},
	{2.896092863316762e-22, "2.896092863316762e-22"},
	{2.0518706419806528e-163, "2.0518706419806528e-163"},
	{141827.37929346878, "141827.37929346878"},
	{5602572770128.127, "5602572770128.127"},
	{1.3449551894627777e-181, "1.3449551894627777e-181"},
	{163200.32732493244, "163200.32732493244"},
	{6.38913468926184e-08, "6.38913468926184e-08"},
	{-8.722783496930154e-250, "-8.722783496930154e-250"},
	{424221.5314923073, "424221.5314923073"},
	{564368293.1333866, "564368293.1333866"},
	{1.441484839555994e+304, "1.441484839555994e+304"},
	{360799.9463635718, "360799.9463635718"},
	{4.275923056694029e-11, "4.275923056694029e-11"},
	{-3.7288635744050265e-203, "-3.7288635744050265e-203"},
	{846882.767277723, "846882.767277723"},
	{3.6158235594456634e-16, "3.6158235594456634e-16"},
	{5.326960081783017e-87, "5.326960081783017e-87"},
	{397988.8674591426, "397988.8674591426"},
	{244096.5107221529, "244096.5107221529"},
	{-1.3593855381697515e-277, "-1.3593855381697515e-277"},
	{-9767.280889488873, "-9767.280889488873"},
	{0.003434756899583733, "0.003434756899583733"},
	{-2.6202582260546103e-174, "-2.6202582260546103e-174"},
	{960349.6949851641, "960349.6949851641"},
	{1.1806577825496211e-05, "1.1806577825496211e-05"},
	{-1341389992.9211931, "-1341389992.9211931"},
	{-315888.3876802842, "-315888.3876802842"},
	{9.332702121806376e-05, "9.332702121806376e-05"},
	{-5.629271400715247e+261, "-5.629271400715247e+261"},
	{336431.71306879027, "336431.71306879027"},
	{764570.8662128131, "764570.8662128131"},
	{-1.0496248657652468e+155, "-1.0496248657652468e+155"},
	{636706.6847346353, "636706.6847346353"},
	{3.401223621911955e-09, "3.401223621911955e-09"},
	{3.0282415270685036e+304, "3.0282415270685036e+304"},
	{159790.40856498433, "159790.40856498433"},
	{4.56205331301413e+22, "4.56205331301413e+22"},
	{-2.3567736845445426e+240, "-2.3567736845445426e+240"},
	{-460121.4457437645, "-460121.4457437645"},
	{6.970420678269283e-27, "6.970420678269283e-27"},
}

func TestPyFloatRepr(t *testing.T) {
	for _, c := range floatReprCases {
		if got := pyFloatRepr(c.f); got != c.want {
			t.Errorf("repr(%v) = %q, want %q", c.f, got, c.want)
		}
	}
	special := map[float64]string{math.Inf(1): "inf", math.Inf(-1): "-inf", 0: "0.0", math.Copysign(0, -1): "-0.0"}
	for f, want := range special {
		if got := pyFloatRepr(f); got != want {
			t.Errorf("repr(%v) = %q, want %q", f, got, want)
		}
	}
	if got := pyFloatRepr(math.NaN()); got != "nan" {
		t.Errorf("repr(nan) = %q", got)
	}
}

func mustParse(t testing.TB, src string) *Template {
	t.Helper()
	tpl, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return tpl
}

func render(t testing.TB, src string, vars map[string]any, opts ...Option) (string, error) {
	t.Helper()
	tpl, err := Parse(src)
	if err != nil {
		return "", err
	}
	return tpl.Execute(vars, opts...)
}

func TestParseJSONKeepsOrderAndTypes(t *testing.T) {
	v, err := ParseJSON([]byte(`{"z": 1, "a": [1, 2.0, 3e2, -4, 12345678901234567890, "s", true, false, null], "m": {"y": {}, "b": []}, "z": 5}`))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(*Map)
	if got := strings.Join(m.Keys(), ","); got != "z,a,m" {
		t.Fatalf("keys %q", got)
	}
	if z, _ := m.Get("z"); z != 5 {
		t.Fatalf("duplicate key should keep the last value, got %v", z)
	}
	a, _ := m.Get("a")
	l := a.([]any)
	if _, ok := l[0].(int); !ok {
		t.Errorf("1 decoded as %T", l[0])
	}
	for i := 1; i <= 2; i++ {
		if _, ok := l[i].(float64); !ok {
			t.Errorf("%v decoded as %T", l[i], l[i])
		}
	}
	if l[3] != -4 {
		t.Errorf("-4 decoded as %#v", l[3])
	}
	if _, ok := l[4].(float64); !ok {
		t.Errorf("huge integer decoded as %T", l[4])
	}
	out, err := mustParse(t, "{{ x|tojson }}").Execute(map[string]any{"x": v})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"z": 5, "a": [1, 2.0, 300.0, -4, 1.2345678901234567e+19, "s", true, false, null], "m": {"y": {}, "b": []}}`
	if out != want {
		t.Fatalf("tojson:\n got %s\nwant %s", out, want)
	}
	for _, bad := range []string{``, `{`, `{"a" 1}`, `[1,]`, `{"a":1} x`, `01`, strings.Repeat("[", 1000) + strings.Repeat("]", 1000)} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("ParseJSON(%.20q) succeeded", bad)
		}
	}
}

func TestMap(t *testing.T) {
	m := NewMap()
	for i := 0; i < 20; i++ {
		m.Set(string(rune('a'+i)), i)
	}
	m.Set("c", "x")
	if v, ok := m.Get("c"); !ok || v != "x" {
		t.Fatalf("Get c = %v %v", v, ok)
	}
	if !m.Delete("b") || m.Delete("b") {
		t.Fatal("Delete")
	}
	if m.Len() != 19 || m.Keys()[1] != "c" {
		t.Fatalf("after delete: %v", m.Keys())
	}
	if v, _ := m.Get("t"); v != 19 {
		t.Fatalf("Get t = %v", v)
	}
	b, err := m.MarshalJSON()
	if err != nil || !strings.HasPrefix(string(b), `{"a":0,"c":"x","d":3`) {
		t.Fatalf("MarshalJSON %s %v", b, err)
	}
}

func TestToJSONFormatting(t *testing.T) {
	v, _ := ParseJSON([]byte(`{"a": [], "b": {}, "c": [1, {"d": "é\u2028<>&'"}], "e": 1.0}`))
	vars := map[string]any{"v": v}
	cases := map[string]string{
		"{{ v|tojson }}":                      `{"a": [], "b": {}, "c": [1, {"d": "é` + "\u2028" + `<>&'"}], "e": 1.0}`,
		"{{ v|tojson(indent=2) }}":            "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1,\n    {\n      \"d\": \"é\u2028<>&'\"\n    }\n  ],\n  \"e\": 1.0\n}",
		"{{ v.c|tojson(ensure_ascii=true) }}": `[1, {"d": "\u00e9\u2028<>&'"}]`,
	}
	for src, want := range cases {
		got, err := render(t, src, vars)
		if err != nil || got != want {
			t.Errorf("%s:\n got %q %v\nwant %q", src, got, err, want)
		}
	}
}

func TestWhitespaceControl(t *testing.T) {
	cases := []struct{ src, want string }{
		{"{% if true %}\nA\n{% endif %}\n", "A\n"},
		{"  {% if true %}\n  A\n  {% endif %}\n", "  A\n"},
		{"x {%- if true -%} y {%- endif -%} z", "xyz"},
		{"[{{- ' a ' -}}]", "[ a ]"},
		{"  {{ 1 }}", "  1"},
		{"a\n  {#- c -#}\n  b", "ab"},
		{"{% for i in [1,2] %}\n{{ i }}\n{% endfor %}", "1\n2\n"},
		{"{%+ if true %}x{% endif +%}\n", "x\n"[:1]},
	}
	for _, c := range cases {
		got, err := render(t, c.src, nil)
		if err != nil || got != c.want {
			t.Errorf("%q: got %q %v, want %q", c.src, got, err, c.want)
		}
	}
}

func TestErrorsCarryLineNumbers(t *testing.T) {
	cases := []struct {
		src  string
		line int
		kind string
	}{
		{"a\nb\n{% if x %}\n", 3, "TemplateSyntaxError"},
		{"line1\n{{ 1 + }}", 2, "TemplateSyntaxError"},
		{"1\n2\n3\n{% frob %}", 4, "TemplateSyntaxError"},
		{"ok\n{{ 'a' + 1 }}", 2, "TypeError"},
		{"\n\n{% for x in 5 %}{% endfor %}", 3, "TypeError"},
		{"{% set x = {} %}\n\n{{ x.y.z }}", 3, "UndefinedError"},
		{"x\n{{ 1 // 0 }}", 2, "ZeroDivisionError"},
		{"{% macro m() %}\n{{ nope.attr }}\n{% endmacro %}\n{{ m() }}", 2, "UndefinedError"},
		{"{{ 'x'|nosuch }}", 1, "TemplateAssertionError"},
		{"{{ 'abc }}", 1, "TemplateSyntaxError"},
	}
	for _, c := range cases {
		_, err := render(t, c.src, nil)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: want *Error, got %v", c.src, err)
			continue
		}
		if e.Line != c.line || e.Kind != c.kind {
			t.Errorf("%q: got line %d kind %s (%v), want line %d kind %s", c.src, e.Line, e.Kind, err, c.line, c.kind)
		}
		if !strings.Contains(err.Error(), "line ") {
			t.Errorf("%q: message lacks the line: %v", c.src, err)
		}
	}
}

func TestRaiseException(t *testing.T) {
	_, err := render(t, "a\n{% if x %}{{ raise_exception('Bad role: ' + x) }}{% endif %}", map[string]any{"x": "tool"})
	var te *TemplateError
	if !errors.As(err, &te) {
		t.Fatalf("got %v", err)
	}
	if te.Message != "Bad role: tool" || err.Error() != "Bad role: tool" || te.Line != 2 {
		t.Fatalf("got %+v", te)
	}
}

func TestLimits(t *testing.T) {
	small := WithLimits(Limits{MaxOutput: 1 << 20, MaxSteps: 100000, MaxDepth: 50})
	cases := []string{
		"{% for i in range(100000000) %}{% endfor %}",
		"{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
		"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
		"{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
		"{{ 'x' * 100000000000 }}",
		"{{ [1] * 100000000000 }}",
		"{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}",
		"{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
		"{{ 'ab'|replace('', 'xxxxxxxxxx' * 100000) }}",
		"{{ range(10)|tojson(indent=100000) }}",
		"{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
		"{% for i in range(20000) %}{{ range(20000)|list|length }}{% endfor %}",
		"{% set a = [1]*1000 %}{% set b = [a]*1000 %}{% set c = [b]*1000 %}{{ c }}",
		"{% set a = [1]*1000 %}{% set b = [a]*1000 %}{% set c = [b]*1000 %}{{ c|length ~ c|string|length }}",
		"{% set l = range(20000)|list %}{% for i in l %}{{ i in l }}{% endfor %}",
		"{% set l = range(20000)|list %}{% for i in l %}{{ l.index(i) }}{% endfor %}",
		"{% set s = 'é' * 20000 %}{% for i in range(20000) %}{{ s[i] }}{% endfor %}",
		"{% set l = range(20000)|list %}{% for i in range(20000) %}{% set x = l|unique|list %}{% endfor %}",
		"{% set l = range(20000)|list %}{% for i in range(20000) %}{% set x = l|sort %}{% endfor %}",
	}
	for _, src := range cases {
		start := time.Now()
		_, err := render(t, src, nil, small)
		if !errors.Is(err, ErrLimit) {
			t.Errorf("%q: want a limit error, got %v", src, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q took %v", src, d)
		}
	}
}

func TestParserDepthLimit(t *testing.T) {
	deep := strings.Repeat("(", 10000) + "1" + strings.Repeat(")", 10000)
	if _, err := Parse("{{ " + deep + " }}"); err == nil {
		t.Fatal("deeply nested expression accepted")
	}
	blocks := strings.Repeat("{% if true %}", 5000) + strings.Repeat("{% endif %}", 5000)
	if _, err := Parse(blocks); err == nil {
		t.Fatal("deeply nested blocks accepted")
	}
}

func TestExecuteGoValues(t *testing.T) {
	vars := map[string]any{
		"m":  map[string]any{"b": int64(2), "a": float32(1.5), "l": []string{"x", "y"}},
		"u":  uint8(7),
		"ms": []map[string]any{{"role": "user"}},
	}
	got, err := render(t, "{{ m }} {{ u + 1 }} {{ ms[0].role }}", vars)
	if err != nil || got != "{'a': 1.5, 'b': 2, 'l': ['x', 'y']} 8 user" {
		t.Fatalf("got %q %v", got, err)
	}
	if _, err := render(t, "{{ x }}", map[string]any{"x": struct{}{}}); err == nil {
		t.Fatal("unsupported type accepted")
	}
}

func TestRenderChatTools(t *testing.T) {
	tpl := mustParse(t, "{{ bos_token }}{% if tools is defined %}T{{ tools|length }}{% endif %}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}{{ eos_token }}{{ extra }}")
	msgs := []any{map[string]any{"role": "user", "content": "hi"}}
	got, err := tpl.RenderChat(msgs, ChatOptions{BOS: "<s>", EOS: "</s>", AddGenerationPrompt: true, Extra: map[string]any{"extra": "!", "messages": "ignored"}})
	if err != nil || got != "<s>[user:hi]></s>!" {
		t.Fatalf("got %q %v", got, err)
	}
	got, err = tpl.RenderChat(msgs, ChatOptions{Tools: []any{map[string]any{"type": "function"}}})
	if err != nil || got != "T1[user:hi]" {
		t.Fatalf("got %q %v", got, err)
	}
}

func TestStrftimeNow(t *testing.T) {
	now := func() time.Time { return time.Date(2024, 7, 4, 9, 5, 3, 0, time.UTC) }
	got, err := render(t, "{{ strftime_now('%d %b %Y|%-d|%e|%I:%M %p|%A %B|%j|%%') }}", nil, WithNow(now))
	if err != nil || got != "04 Jul 2024|4| 4|09:05 AM|Thursday July|186|%" {
		t.Fatalf("got %q %v", got, err)
	}
}

func TestConcurrentExecute(t *testing.T) {
	tpl := mustParse(t, "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ m }}{% endfor %}{{ ns.n }}")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				got, err := tpl.Execute(map[string]any{"messages": []any{g, i}})
				want := strings.Repeat("", 0) + itoa(g) + itoa(i) + "2"
				if err != nil || got != want {
					t.Errorf("got %q %v want %q", got, err, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestDeepRecursionIsCapped(t *testing.T) {
	src := "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
	_, err := render(t, src, nil, WithLimits(Limits{MaxDepth: 1 << 30, MaxSteps: 1 << 30}))
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("got %v", err)
	}
}
