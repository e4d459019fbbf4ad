package toolcall

import "testing"

// TestLearnFromDifference: the markers are read from the difference of the
// text and call renderings alone — the common tail (here the end-of-turn
// token) is not part of them, a call that runs to the end of the rendering
// is read, and a bare call (no start marker) is refused as one that cannot
// be told from text.
func TestLearnFromDifference(t *testing.T) {
	const obj = `{"name":"` + probeName + `","arguments":` + probeArgs + `}`
	for _, c := range []struct {
		name, text, call string
		ok               bool
		start, end       string
	}{
		{"common tail", "<s>user: Hi</s>assistant: " + probeText + "</s>",
			"<s>user: Hi</s>assistant: <tool_call>" + obj + "</tool_call></s>", true, "<tool_call>", "</tool_call>"},
		{"call at the end", "user: Hi assistant: " + probeText,
			"user: Hi assistant: [CALLS]" + obj, true, "[CALLS]", ""},
		{"bare call", "user: Hi assistant: " + probeText + "</s>",
			"user: Hi assistant: " + obj + "</s>", false, "", ""},
	} {
		f, ok := learnFrom(c.text, c.call)
		if ok != c.ok {
			t.Errorf("%s: ok %v, want %v (%+v)", c.name, ok, c.ok, f)
			continue
		}
		if ok && (f.Shape != Object || f.Start != c.start || f.End != c.end) {
			t.Errorf("%s: shape %v, markers %q %q; want object, %q %q", c.name, f.Shape, f.Start, f.End, c.start, c.end)
		}
	}
}
