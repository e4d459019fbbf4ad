package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/synth"
)

// hermesTemplate writes tools and calls the way Hermes/Qwen templates do
// (the markers are what detection keys on) and marks reasoning.
const hermesTemplate = `{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}{% endif %}
{% endfor %}{% if tools %}<tools>{{ tools | tojson }}</tools>{% endif %}{% if add_generation_prompt %}<|assistant|>{% endif %}{# </think> #}`

const weatherTools = `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":8}},"required":["city"],"additionalProperties":false}}},
{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"enum":["CET","UTC"]}},"required":["zone"],"additionalProperties":false}}}]`

type toolCallOut struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string  `json:"name"`
		Arguments *string `json:"arguments"`
	} `json:"function"`
}

type toolMsg struct {
	Content          *string       `json:"content"`
	ReasoningContent *string       `json:"reasoning_content"`
	Reasoning        *string       `json:"reasoning"`
	ToolCalls        []toolCallOut `json:"tool_calls"`
}

type toolResp struct {
	Choices []struct {
		Message      toolMsg `json:"message"`
		Delta        toolMsg `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

func toolFake(reply string) *fakeModel {
	m := newFake("m")
	m.ctxLen, m.tmpl, m.reply = 4096, hermesTemplate, reply
	return m
}

func chatBody(extra string) string {
	return `{"model":"m","max_tokens":300,"messages":[{"role":"user","content":"Weather in Paris?"}]` + extra + `}`
}

// streamed reassembles a chat stream the way OpenAI clients do: content
// and reasoning concatenated, calls by index from their first delta (id,
// type, name) and their argument fragments. It checks each call's first
// delta carries id and name and empty arguments.
func streamed(t *testing.T, r response) (content, reasoning string, calls []toolCallOut, finish string) {
	t.Helper()
	for _, ev := range sseEvents(t, r) {
		if ev == "[DONE]" {
			break
		}
		var c toolResp
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			d := ch.Delta
			if d.Content != nil {
				content += *d.Content
			}
			if d.ReasoningContent != nil {
				reasoning += *d.ReasoningContent
				if d.Reasoning == nil || *d.Reasoning != *d.ReasoningContent {
					t.Errorf("delta reasoning %v differs from reasoning_content %q", d.Reasoning, *d.ReasoningContent)
				}
			}
			for _, tc := range d.ToolCalls {
				if tc.Index == nil {
					t.Fatalf("tool call delta without index: %s", ev)
				}
				i := *tc.Index
				if i == len(calls) {
					if !strings.HasPrefix(tc.ID, "call_") || tc.Type != "function" || tc.Function.Name == "" || tc.Function.Arguments == nil || *tc.Function.Arguments != "" {
						t.Fatalf("first delta of call %d is not {index, id, type, name, arguments:\"\"}: %s", i, ev)
					}
					empty := ""
					tc.Function.Arguments = &empty
					calls = append(calls, tc)
					continue
				}
				if i != len(calls)-1 || tc.ID != "" || tc.Function.Name != "" || tc.Function.Arguments == nil {
					t.Fatalf("argument delta out of shape: %s", ev)
				}
				s := *calls[i].Function.Arguments + *tc.Function.Arguments
				calls[i].Function.Arguments = &s
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	return
}

func TestToolCallsParsedAuto(t *testing.T) {
	reply := "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"CET\"}}\n</tool_call>"
	_, ts := newTestServer(t, Options{}, toolFake(reply))
	r := post(t, ts.URL+"/v1/chat/completions", chatBody(`,"tools":`+weatherTools))
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	resp := decode[toolResp](t, r)
	c := resp.Choices[0]
	if c.FinishReason == nil || *c.FinishReason != "tool_calls" {
		t.Errorf("finish_reason %v, want tool_calls", c.FinishReason)
	}
	if c.Message.Content == nil || *c.Message.Content != "Let me look.\n" {
		t.Errorf("content %v, want the text before the call", c.Message.Content)
	}
	want := [][2]string{{"get_weather", `{"city":"Paris"}`}, {"get_time", `{"zone":"CET"}`}}
	if len(c.Message.ToolCalls) != 2 {
		t.Fatalf("tool_calls %+v", c.Message.ToolCalls)
	}
	ids := map[string]bool{}
	for i, tc := range c.Message.ToolCalls {
		if !strings.HasPrefix(tc.ID, "call_") || ids[tc.ID] || tc.Type != "function" || tc.Function.Name != want[i][0] || *tc.Function.Arguments != want[i][1] {
			t.Errorf("call %d: %+v (arguments %q)", i, tc, *tc.Function.Arguments)
		}
		ids[tc.ID] = true
	}
	// Streaming (one byte per event) gives the same content and calls.
	content, _, calls, finish := streamed(t, post(t, ts.URL+"/v1/chat/completions", chatBody(`,"stream":true,"tools":`+weatherTools)))
	if content != "Let me look.\n" || finish != "tool_calls" || len(calls) != 2 {
		t.Fatalf("stream: content %q finish %q calls %+v", content, finish, calls)
	}
	for i, tc := range calls {
		if tc.Function.Name != want[i][0] || *tc.Function.Arguments != want[i][1] {
			t.Errorf("stream call %d: %s %s", i, tc.Function.Name, *tc.Function.Arguments)
		}
	}
	// tool_choice "none": the markup stays content.
	r = post(t, ts.URL+"/v1/chat/completions", chatBody(`,"tool_choice":"none","tools":`+weatherTools))
	c = decode[toolResp](t, r).Choices[0]
	if *c.FinishReason != "stop" || len(c.Message.ToolCalls) != 0 || *c.Message.Content != reply {
		t.Errorf("tool_choice none: %+v", c)
	}
}

func TestReasoningSeparated(t *testing.T) {
	reply := "<think>Paris is in France.</think>\n\nIt is sunny."
	for _, inline := range []bool{false, true} {
		opts := Options{}
		if inline {
			opts.ReasoningFormat = "none"
		}
		_, ts := newTestServer(t, opts, toolFake(reply))
		c := decode[toolResp](t, post(t, ts.URL+"/v1/chat/completions", chatBody(""))).Choices[0].Message
		content, reasoning, _, _ := streamed(t, post(t, ts.URL+"/v1/chat/completions", chatBody(`,"stream":true`)))
		if inline {
			if *c.Content != reply || c.ReasoningContent != nil || content != reply || reasoning != "" {
				t.Errorf("reasoning format none: message %+v, stream %q %q", c, content, reasoning)
			}
			continue
		}
		if *c.Content != "It is sunny." || c.ReasoningContent == nil || *c.ReasoningContent != "Paris is in France." || c.Reasoning == nil || *c.Reasoning != *c.ReasoningContent {
			t.Errorf("message %+v", c)
		}
		if content != "It is sunny." || reasoning != "Paris is in France." {
			t.Errorf("stream: content %q reasoning %q", content, reasoning)
		}
	}
}

func TestToolChoiceRefused(t *testing.T) {
	_, ts := newTestServer(t, Options{}, toolFake("x"))
	for _, c := range []struct{ extra, param string }{
		{`,"tools":` + weatherTools + `,"tool_choice":{"type":"function","function":{"name":"get_stock"}}`, "tool_choice"},
		{`,"tool_choice":"required"`, "tool_choice"},
		{`,"tools":` + weatherTools + `,"tool_choice":"always"`, "tool_choice"},
		{`,"tools":` + weatherTools + `,"tool_choice":{"type":"function"}`, "tool_choice"},
		{`,"tools":[{"type":"function","function":{"description":"no name"}}]`, "tools"},
		{`,"tools":[{"type":"retrieval"}]`, "tools"},
	} {
		r := post(t, ts.URL+"/v1/chat/completions", chatBody(c.extra))
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d %s", c.extra, r.status, r.body)
			continue
		}
		var e struct {
			Error struct{ Message, Type, Param string }
		}
		if json.Unmarshal(r.body, &e) != nil || e.Error.Param != c.param || e.Error.Message == "" || e.Error.Type != "invalid_request_error" {
			t.Errorf("%s: error body %s", c.extra, r.body)
		}
	}
}

// checkCall asserts a call is a valid call of weatherTools.
func checkCall(t *testing.T, name, args string) {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(args))
	d.DisallowUnknownFields()
	switch name {
	case "get_weather":
		var a struct{ City *string }
		if err := d.Decode(&a); err != nil || a.City == nil || utf8.RuneCountInString(*a.City) > 8 {
			t.Errorf("get_weather arguments %q: %v", args, err)
		}
	case "get_time":
		var a struct{ Zone string }
		if err := d.Decode(&a); err != nil || (a.Zone != "CET" && a.Zone != "UTC") {
			t.Errorf("get_time arguments %q: %v", args, err)
		}
	default:
		t.Errorf("call of unknown function %q", name)
	}
}

// familyTemplates are minimal templates with each family's markers (what
// detection keys on).
var familyTemplates = map[string]string{
	"hermes":  hermesTemplate,
	"mistral": `{% for m in messages %}[INST]{{ m['content'] }}[/INST]{% endfor %}{# [TOOL_CALLS] #}`,
	"llama3":  `{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>{{ m['content'] }}{% endfor %}{# <|python_tag|> #}`,
}

// Forced calls on a random-weight model (synth, temperature 1) are valid
// calls of the tools, streamed or not, in each family's format.
func TestToolChoiceForced(t *testing.T) {
	base := filepath.Join(t.TempDir(), "rand.gguf")
	if err := synth.Write(base, synth.Options{Shape: synth.Shapes["tiny-qwen2"], Type: "Q8_0", Layers: 1, Seed: 5, Threads: 1}); err != nil {
		t.Fatal(err)
	}
	for family, tmpl := range familyTemplates {
		t.Run(family, func(t *testing.T) { forcedCalls(t, copyWithTemplate(t, base, tmpl), family) })
	}
}

func forcedCalls(t *testing.T, path, family string) {
	eng, err := engine.New(engine.Config{ModelPath: path, Name: "m", Threads: 1, KVMemory: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{})
	if err := srv.AddModel("hermes", FromEngine[*engine.Stream](eng)); err != nil {
		t.Fatal(err)
	}
	if got := srv.models["hermes"].format.Name; got != family {
		t.Fatalf("detected %s, want %s", got, family)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	// "auto" on a model that does not write the marker: plain text, the
	// lazy constraint never triggered.
	r := post(t, ts.URL+"/v1/chat/completions", `{"model":"hermes","max_tokens":20,"temperature":1,"seed":1,"messages":[{"role":"user","content":"Once upon a time"}],"tools":`+weatherTools+`}`)
	if r.status != http.StatusOK {
		t.Fatalf("auto: %d %s", r.status, r.body)
	}
	if c := decode[toolResp](t, r).Choices[0]; c.Message.Content == nil || *c.Message.Content == "" || len(c.Message.ToolCalls) != 0 {
		t.Errorf("auto: %+v", c.Message)
	}
	for _, choice := range []string{`"required","parallel_tool_calls":false`, `{"type":"function","function":{"name":"get_time"}}`} {
		for seed := range 3 {
			body := `{"model":"hermes","max_tokens":200,"temperature":1,"seed":` + string(rune('0'+seed)) + `,"messages":[{"role":"user","content":"Once upon a time"}],"tools":` + weatherTools + `,"tool_choice":` + choice
			r := post(t, ts.URL+"/v1/chat/completions", body+`}`)
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			c := decode[toolResp](t, r).Choices[0]
			if c.FinishReason == nil || *c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) == 0 {
				t.Fatalf("%s seed %d: finish %v calls %+v (%s)", choice, seed, c.FinishReason, c.Message.ToolCalls, r.body)
			}
			for _, tc := range c.Message.ToolCalls {
				checkCall(t, tc.Function.Name, *tc.Function.Arguments)
				if strings.Contains(choice, "get_time") && tc.Function.Name != "get_time" {
					t.Errorf("named get_time, called %s", tc.Function.Name)
				}
			}
			_, _, calls, finish := streamed(t, post(t, ts.URL+"/v1/chat/completions", body+`,"stream":true}`))
			if finish != "tool_calls" || len(calls) != len(c.Message.ToolCalls) {
				t.Fatalf("%s seed %d: stream finish %q calls %+v", choice, seed, finish, calls)
			}
			for i, tc := range calls {
				if tc.Function.Name != c.Message.ToolCalls[i].Function.Name || *tc.Function.Arguments != *c.Message.ToolCalls[i].Function.Arguments {
					t.Errorf("stream call %d %s %s differs from %+v", i, tc.Function.Name, *tc.Function.Arguments, c.Message.ToolCalls[i])
				}
			}
		}
	}
}

// DeepSeek R1's generation prompt opens <think> itself: the output is
// reasoning up to </think>, and calls in its own format are parsed.
func TestReasoningOpenedByPrompt(t *testing.T) {
	src, err := os.ReadFile(testenv.Shared(t, "templates", "llama-cpp-deepseek-r1.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	m := toolFake("The user wants weather.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
	m.tmpl = string(src)
	_, ts := newTestServer(t, Options{}, m)
	r := post(t, ts.URL+"/v1/chat/completions", chatBody(`,"tools":`+weatherTools))
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	c := decode[toolResp](t, r).Choices[0]
	if c.Message.ReasoningContent == nil || *c.Message.ReasoningContent != "The user wants weather.\n" || c.Message.Content != nil {
		t.Errorf("message %+v", c.Message)
	}
	if len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Function.Name != "get_weather" || *c.Message.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` || *c.FinishReason != "tool_calls" {
		t.Errorf("calls %+v, finish %v", c.Message.ToolCalls, *c.FinishReason)
	}
	if !strings.Contains(string(r.body), `"content":null`) {
		t.Errorf("a message of calls only has no \"content\": null: %s", r.body)
	}
}

// A template of no known family that renders calls between its own
// markers: the format is learned from it, and calls in it are parsed.
func TestToolFormatLearned(t *testing.T) {
	m := toolFake(`Sure. <<CALL>>{"name": "get_weather", "arguments": {"city": "Paris"}}<</CALL>>`)
	m.tmpl = `{% for m in messages %}{{ m.role }}: {% if m.tool_calls %}{% for c in m.tool_calls %}<<CALL>>{{ c.function|tojson }}<</CALL>>{% endfor %}{% else %}{{ m.content }}{% endif %}
{% endfor %}`
	s, ts := newTestServer(t, Options{}, m)
	if f := s.models["m"].format; f.Name != "learned" || f.Start != "<<CALL>>" || f.End != "<</CALL>>" {
		t.Fatalf("format %+v", f)
	}
	c := decode[toolResp](t, post(t, ts.URL+"/v1/chat/completions", chatBody(`,"tools":`+weatherTools))).Choices[0]
	if *c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || *c.Message.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` || *c.Message.Content != "Sure. " {
		t.Errorf("%+v", c.Message)
	}
}
