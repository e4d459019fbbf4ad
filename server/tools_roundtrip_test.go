package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/tokenizer/template"
)

// The tool-call round trip as OpenAI clients send it (an assistant
// message with content null and tool_calls whose arguments are a JSON
// string, then a tool message with tool_call_id, two rounds) renders on
// every template fixture, the arguments reaching the prompt.
func TestToolRoundTripEveryTemplate(t *testing.T) {
	dir := testenv.Shared(t, "templates")
	files, err := filepath.Glob(filepath.Join(dir, "*.jinja"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates in %s: %v", dir, err)
	}
	messages := `[{"role":"user","content":"Weather in Paris and Oslo?"},
	{"role":"assistant","content":null,"tool_calls":[{"id":"call_a1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
	{"role":"tool","tool_call_id":"call_a1","content":"{\"temp_c\": 18}"},
	{"role":"assistant","content":null,"tool_calls":[{"id":"call_b2","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Oslo\"}"}}]},
	{"role":"tool","tool_call_id":"call_b2","content":"{\"temp_c\": 4}"}]`
	tools := `[{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := template.Parse(string(src))
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		e := &entry{name: "m", tmpl: tmpl, bos: "<s>", eos: "</s>"}
		in, err := parseChat([]byte(messages), []byte(tools), nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		text, err := e.chatText(in)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if !strings.Contains(text, "Oslo") {
			t.Errorf("%s: the second call's arguments are not in the prompt:\n%s", filepath.Base(f), text)
		}
	}
}
