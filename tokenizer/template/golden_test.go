package template

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/internal/testenv"
)

type chatCase struct {
	name    string
	msgs    []any
	tools   []any
	addGen  bool
	hasTool bool
}

type goldenSet struct {
	dir      string
	bos, eos string
	now      time.Time
	cases    map[string]chatCase
}

func loadGolden(t testing.TB) *goldenSet {
	t.Helper()
	path := testenv.Shared(t, "templates", "cases.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseJSON(data)
	if err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	root := v.(*Map)
	g := &goldenSet{dir: filepath.Dir(path), cases: map[string]chatCase{}}
	special, _ := root.Get("special")
	bos, _ := special.(*Map).Get("bos_token")
	eos, _ := special.(*Map).Get("eos_token")
	g.bos, g.eos = bos.(string), eos.(string)
	nowS, _ := root.Get("strftime_now")
	g.now, err = time.Parse("2006-01-02T15:04:05", nowS.(string))
	if err != nil {
		t.Fatal(err)
	}
	list, _ := root.Get("cases")
	for _, c := range list.([]any) {
		m := c.(*Map)
		name, _ := m.Get("name")
		msgs, _ := m.Get("messages")
		agp, _ := m.Get("add_generation_prompt")
		cc := chatCase{name: name.(string), msgs: msgs.([]any), addGen: agp == true}
		if tools, ok := m.Get("tools"); ok {
			cc.tools = tools.([]any)
			cc.hasTool = true
		}
		g.cases[cc.name] = cc
	}
	return g
}

type goldenLine struct {
	Template string  `json:"template"`
	Case     string  `json:"case"`
	Output   *string `json:"output"`
	Error    *string `json:"error"`
}

func (g *goldenSet) lines(t testing.TB) []goldenLine {
	f, err := os.Open(filepath.Join(g.dir, "expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l goldenLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("expected.jsonl: %v", err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (g *goldenSet) render(tpl *Template, c chatCase) (string, error) {
	opts := ChatOptions{BOS: g.bos, EOS: g.eos, AddGenerationPrompt: c.addGen, Now: func() time.Time { return g.now }}
	if c.hasTool {
		opts.Tools = c.tools
	}
	return tpl.RenderChat(c.msgs, opts)
}

// TestGolden renders every (template, case) of the shared reference data:
// outputs must match byte for byte, raise_exception refusals must come back
// as *TemplateError with the same message, and other Python errors are
// "renders or refuses".
func TestGolden(t *testing.T) {
	g := loadGolden(t)
	parsed := map[string]*Template{}
	type tally struct{ exact, outputs, refusals, refusedOK, other int }
	tallies := map[string]*tally{}
	for _, l := range g.lines(t) {
		l := l
		tl := tallies[l.Template]
		if tl == nil {
			tl = &tally{}
			tallies[l.Template] = tl
		}
		t.Run(strings.TrimSuffix(l.Template, ".jinja")+"/"+l.Case, func(t *testing.T) {
			tpl, ok := parsed[l.Template]
			if !ok {
				src, err := os.ReadFile(filepath.Join(g.dir, l.Template))
				if err != nil {
					t.Fatal(err)
				}
				tpl, err = Parse(string(src))
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				parsed[l.Template] = tpl
			}
			c, ok := g.cases[l.Case]
			if !ok {
				t.Fatalf("unknown case %q", l.Case)
			}
			got, err := g.render(tpl, c)
			switch {
			case l.Output != nil:
				tl.outputs++
				if err != nil {
					t.Fatalf("render failed: %v", err)
				}
				if got != *l.Output {
					t.Fatalf("output mismatch\n got: %q\nwant: %q\n%s", got, *l.Output, firstDiff(got, *l.Output))
				}
				tl.exact++
			case l.Error != nil && strings.HasPrefix(*l.Error, "TemplateError: "):
				tl.refusals++
				want := strings.TrimPrefix(*l.Error, "TemplateError: ")
				var te *TemplateError
				if !errors.As(err, &te) {
					t.Fatalf("want TemplateError %q, got output=%q err=%v", want, got, err)
				}
				if te.Message != want || err.Error() != want {
					t.Fatalf("TemplateError message %q, want %q", te.Message, want)
				}
				tl.refusedOK++
			default:
				tl.other++
				t.Logf("python: %s; here: err=%v", *l.Error, err)
			}
		})
	}
	names := make([]string, 0, len(tallies))
	for n := range tallies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tl := tallies[n]
		t.Logf("%-55s outputs %d/%d byte-exact, refusals %d/%d, renders-or-refuses %d",
			n, tl.exact, tl.outputs, tl.refusedOK, tl.refusals, tl.other)
	}
}

func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := i - 40
	if lo < 0 {
		lo = 0
	}
	hiA, hiB := i+40, i+40
	if hiA > len(a) {
		hiA = len(a)
	}
	if hiB > len(b) {
		hiB = len(b)
	}
	return "first difference at byte " + itoa(i) + ":\n got: " + quote(a[lo:hiA]) + "\nwant: " + quote(b[lo:hiB])
}

func itoa(i int) string     { b, _ := json.Marshal(i); return string(b) }
func quote(s string) string { b, _ := json.Marshal(s); return string(b) }
