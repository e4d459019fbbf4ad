package toolcall

import (
	"math/rand"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
)

func TestDetectFixtures(t *testing.T) {
	want := map[string]string{
		"CohereForAI-c4ai-command-r-plus-tool_use.jinja":      "generic",
		"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja": "command-r7b",
		"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": "hermes",
		"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja":   "hermes",
		"Qwen-Qwen2.5-7B-Instruct.jinja":                      "hermes",
		"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja":      "deepseek-r1",
		"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja":      "deepseek-r1",
		"fireworks-ai-llama-3-firefunction-v2.jinja":          "firefunction-v2",
		"google-gemma-2-2b-it.jinja":                          "generic",
		"llama-cpp-deepseek-r1.jinja":                         "deepseek-r1",
		"meetkai-functionary-medium-v3.1.jinja":               "functionary-v3.1",
		"meetkai-functionary-medium-v3.2.jinja":               "functionary-v3.2",
		"meta-llama-Llama-3.1-8B-Instruct.jinja":              "llama3",
		"meta-llama-Llama-3.2-3B-Instruct.jinja":              "llama3",
		"meta-llama-Llama-3.3-70B-Instruct.jinja":             "llama3",
		"microsoft-Phi-3.5-mini-instruct.jinja":               "generic",
		"mistralai-Mistral-Nemo-Instruct-2407.jinja":          "mistral",
	}
	for name, fam := range want {
		src, err := os.ReadFile(testenv.Shared(t, "templates", name))
		if err != nil {
			t.Fatal(err)
		}
		f, known := Detect(string(src))
		if f.Name != fam || known != (fam != "generic") {
			t.Errorf("%s: detected %s (known %v), want %s", name, f.Name, known, fam)
		}
		if thinks := Thinks(string(src)); thinks != strings.Contains(name, "deepseek") {
			t.Errorf("%s: Thinks %v", name, thinks)
		}
	}
}

// result is a whole parse: content, reasoning and calls.
type result struct {
	Content, Reasoning string
	Calls              []Call
}

func collect(r *result, evs []Event) {
	for _, e := range evs {
		switch e.Kind {
		case Content:
			r.Content += e.Text
		case Reasoning:
			r.Reasoning += e.Text
		case ToolCall:
			if e.Index != len(r.Calls) {
				panic("call index out of order")
			}
			r.Calls = append(r.Calls, e.Call)
		}
	}
}

func parseChunks(f *Format, opts Options, chunks []string) result {
	p := NewParser(f, opts)
	var r result
	for _, c := range chunks {
		collect(&r, p.Feed(c))
	}
	collect(&r, p.Flush())
	return r
}

// randomSplit cuts s into pieces of 0 to 6 bytes (bytes, not runes, as a
// stream decoder never does, to be strict).
func randomSplit(rng *rand.Rand, s string) []string {
	var out []string
	for len(s) > 0 {
		n := min(rng.Intn(7), len(s))
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

var weather = Call{Name: "get_weather", Arguments: `{"city":"Paris"}`}
var clock = Call{Name: "get_time", Arguments: `{"tz":"CET","x":[1,{"a":"}"}]}`}

var parseCases = []struct {
	name string
	f    *Format
	opts Options
	text string
	want result
}{
	{"hermes", Hermes, Options{}, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\", \"x\": [1, {\"a\": \"}\"}]}}\n</tool_call>",
		result{Content: "Let me check.\n", Calls: []Call{weather, clock}}},
	{"hermes-think", Hermes, Options{Reasoning: true}, "<think>I need the weather.</think>\n\n<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}</tool_call>",
		result{Reasoning: "I need the weather.", Calls: []Call{weather}}},
	{"hermes-think-inline", Hermes, Options{}, "<think>hm</think>ok", result{Content: "<think>hm</think>ok"}},
	{"hermes-broken", Hermes, Options{}, "a <tool_call>{\"name\": oops}</tool_call>", result{Content: "a <tool_call>{\"name\": oops}</tool_call>"}},
	{"hermes-unfinished", Hermes, Options{}, "<tool_call>{\"name\":\"get_", result{Content: "<tool_call>{\"name\":\"get_"}},
	{"hermes-nocalls", Hermes, Options{NoCalls: true}, "<tool_call>{}</tool_call>", result{Content: "<tool_call>{}</tool_call>"}},
	{"llama3-bare", Llama3, Options{}, " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
		result{Calls: []Call{weather}}},
	{"llama3-tag", Llama3, Options{}, "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
		result{Calls: []Call{weather}}},
	{"llama3-text", Llama3, Options{}, "The weather is {sunny}.", result{Content: "The weather is {sunny}."}},
	{"llama3-json-content", Llama3, Options{}, "{\"answer\": 4}", result{Content: "{\"answer\": 4}"}},
	{"mistral", Mistral, Options{}, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\", \"x\": [1, {\"a\": \"}\"}]}}]",
		result{Calls: []Call{weather, clock}}},
	{"deepseek-r1", DeepSeekR1, Options{Reasoning: true, InThink: true}, "Weather needed.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
		result{Reasoning: "Weather needed.\n", Calls: []Call{weather}}},
	{"functionary-v3.1", FunctionaryV31, Options{}, "<function=get_weather>{\"city\": \"Paris\"}</function>", result{Calls: []Call{weather}}},
	{"functionary-v3.2", FunctionaryV32, Options{}, ">>>get_weather\n{\"city\": \"Paris\"}", result{Calls: []Call{weather}}},
	{"command-r7b", CommandR7B, Options{}, "<|START_ACTION|>[{\"tool_call_id\": \"0\", \"tool_name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}]<|END_ACTION|>",
		result{Calls: []Call{weather}}},
	{"firefunction", Firefunction, Options{}, " functools[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]", result{Calls: []Call{weather}}},
	{"generic-string-args", Generic, Options{}, "{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}", result{Calls: []Call{weather}}},
	{"generic-tagged", Generic, Options{}, "Sure <tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call> done",
		result{Content: "Sure done", Calls: []Call{weather}}},
}

func TestParseFormats(t *testing.T) {
	for _, c := range parseCases {
		got := parseChunks(c.f, c.opts, []string{c.text})
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestParseRandomSplitsAgree(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range parseCases {
		for range 200 {
			chunks := randomSplit(rng, c.text)
			if got := parseChunks(c.f, c.opts, chunks); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("%s split %q: got %+v, want %+v", c.name, chunks, got, c.want)
			}
		}
	}
}

// Text with a marker's prefix that never completes comes out as content,
// and nothing is held once the text cannot be a marker any more.
func TestParseHoldsOnlyMarkerPrefixes(t *testing.T) {
	p := NewParser(Hermes, Options{Reasoning: true})
	var r result
	collect(&r, p.Feed("a <tool"))
	if r.Content != "a " {
		t.Fatalf("content %q before the marker is known, want %q", r.Content, "a ")
	}
	collect(&r, p.Feed("box> b"))
	if r.Content != "a <toolbox> b" {
		t.Fatalf("content %q, want all of it", r.Content)
	}
}
