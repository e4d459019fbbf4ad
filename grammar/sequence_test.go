package grammar

import "testing"

func TestSequenceToolCalls(t *testing.T) {
	tok := llama3(t)
	obj := func(name string) []byte {
		return []byte(`{"type":"object","properties":{"name":{"const":"` + name + `"},"arguments":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}},"required":["name","arguments"],"additionalProperties":false}`)
	}
	g, err := CompileSequence(tok, Sequence{
		Sep:   "\n",
		Items: []Item{{Prefix: "<tool_call>\n", Schema: obj("get_weather"), Suffix: "\n</tool_call>"}, {Prefix: "<tool_call>\n", Schema: obj("get_time"), Suffix: "\n</tool_call>"}},
		Min:   1, Max: 2,
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	one := "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}\n</tool_call>"
	two := one + "\n<tool_call>\n{\"name\":\"get_time\",\"arguments\":{\"city\":\"Oslo\"}}\n</tool_call>"
	for _, c := range []struct {
		text string
		ok   bool
	}{
		{one, true},
		{two, true},
		{two + "\n" + one, false}, // three calls, Max is 2
		{"", false},
		{"<tool_call>\n{\"name\":\"other\",\"arguments\":{\"city\":\"Paris\"}}\n</tool_call>", false},
		{"<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{}}\n</tool_call>", false},
		{"Sure! " + one, false},
	} {
		if got := accepts(t, tok, g, c.text); got != c.ok {
			t.Errorf("%q: accepted %v, want %v", c.text, got, c.ok)
		}
	}
	if _, err := CompileSequence(tok, Sequence{Items: []Item{{Schema: []byte(`{"type":"object"}`)}}, Min: 0, Max: 1}, Options{}); err == nil {
		t.Error("Min 0 accepted")
	}
	if _, err := CompileSequence(tok, Sequence{Items: []Item{{Schema: []byte(`{"type":"array","uniqueItems":true}`)}}, Min: 1, Max: 1}, Options{}); err == nil {
		t.Error("unsupported keyword accepted")
	}
}
