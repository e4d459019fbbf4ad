package toolcall

import (
	"encoding/json"
	"strings"

	"github.com/sluice-llm/sluice/tokenizer/template"
)

// Probe names the learner writes into a rendered conversation.
const (
	probeName = "sluice_probe_fn"
	probeArgs = `{"sluice_probe_arg": 7}`
	probeText = "SLUICE_PROBE_TEXT"
)

// Learn learns a template's tool-call format from the template itself, as
// llama.cpp's autoparser does: it renders one assistant turn with text and
// the same turn with a call, and reads the markers around the call's JSON
// (or around its name and arguments) from the difference. It returns the
// learned format and whether the template rendered a call it could read
// back; the format's Name is "learned".
func Learn(t *template.Template, bos, eos string) (*Format, bool) {
	for _, variant := range []struct{ stringArgs, nullContent bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		text, call, err := probeRenders(t, bos, eos, variant.stringArgs, variant.nullContent)
		if err != nil {
			continue
		}
		if f, ok := learnFrom(text, call); ok {
			return f, true
		}
	}
	return nil, false
}

// probeRenders renders the probe conversation with a text answer and with
// a call answer.
func probeRenders(t *template.Template, bos, eos string, stringArgs, nullContent bool) (string, string, error) {
	tools, _ := template.ParseJSON([]byte(`[{"type":"function","function":{"name":"` + probeName +
		`","description":"probe","parameters":{"type":"object","properties":{"sluice_probe_arg":{"type":"integer","description":"probe"}},"required":["sluice_probe_arg"]}}}]`))
	args := `{"sluice_probe_arg": 7}`
	if stringArgs {
		args = `"{\"sluice_probe_arg\": 7}"`
	}
	conv := func(assistant string) []any {
		v, _ := template.ParseJSON([]byte(`[{"role":"user","content":"Hi"},` + assistant + `]`))
		return v.([]any)
	}
	opts := template.ChatOptions{BOS: bos, EOS: eos, Tools: tools.([]any)}
	text, err := t.RenderChat(conv(`{"role":"assistant","content":"`+probeText+`"}`), opts)
	if err != nil {
		return "", "", err
	}
	content := `""`
	if nullContent {
		content = "null"
	}
	// The id has the 9 alphanumeric characters Mistral templates require.
	call, err := t.RenderChat(conv(`{"role":"assistant","content":`+content+`,"tool_calls":[{"id":"call00001","type":"function","function":{"name":"`+
		probeName+`","arguments":`+args+`}}]}`), opts)
	return text, call, err
}

// learnFrom reads the call markup out of call, the rendering that differs
// from text only in the assistant's answer.
func learnFrom(text, call string) (*Format, bool) {
	cp := 0
	for cp < len(text) && cp < len(call) && text[cp] == call[cp] {
		cp++
	}
	cs := 0
	for cs < len(text)-cp && cs < len(call)-cp && text[len(text)-1-cs] == call[len(call)-1-cs] {
		cs++
	}
	// Widen the difference to whole markers: back to a '<' or '[', or to
	// just after a '>', ']' or a space; on to just after a '>' or ']' (or
	// before a space).
	for cp > 0 && cp < len(call) && !strings.ContainsRune("<[", rune(call[cp])) && !strings.ContainsRune(" \n>]", rune(call[cp-1])) {
		cp--
	}
	end := len(call) - cs
	for end < len(call) && end > cp && !strings.ContainsRune(">]", rune(call[end-1])) && !strings.ContainsRune(" \n", rune(call[end])) {
		end++
	}
	mid := call[cp:end]
	at := strings.Index(mid, probeName)
	if at < 0 {
		return nil, false
	}
	f := &Format{Name: "learned", NameKey: "name", ArgsKeys: argsKeys, Sep: "\n"}
	if i, e, ok := enclosingObject(mid, at); ok {
		if !objectKeys(f, mid[i:e]) {
			return nil, false
		}
		f.Shape, f.Start, f.End = Object, strings.TrimSpace(mid[:i]), strings.TrimSpace(mid[e:])
		if strings.HasSuffix(f.Start, "[") && strings.HasPrefix(f.End, "]") {
			f.Shape, f.Start, f.End = Array, strings.TrimSpace(strings.TrimSuffix(f.Start, "[")), strings.TrimSpace(strings.TrimPrefix(f.End, "]"))
		}
	} else {
		a := strings.Index(mid[at:], "{")
		if a < 0 {
			return nil, false
		}
		a += at
		e := jsonEnd(mid[a:])
		if e < 0 {
			return nil, false
		}
		f.Shape, f.Start, f.NameEnd, f.End = Named, strings.TrimLeft(mid[:at], " \n"), mid[at+len(probeName):a], strings.TrimSpace(mid[a+e:])
	}
	if i := strings.IndexByte(f.End, '\n'); i >= 0 {
		f.End = strings.TrimSpace(f.End[:i]) // what follows is the next turn
	}
	if f.Start == "" || (f.Shape == Named && f.NameEnd == "") {
		return nil, false // a bare call cannot be told from text
	}
	return f, readsBack(f, mid)
}

// enclosingObject finds the JSON object of mid that contains offset at.
func enclosingObject(mid string, at int) (int, int, bool) {
	for i := at; i >= 0; i-- {
		if mid[i] != '{' {
			continue
		}
		if e := jsonEnd(mid[i:]); e > 0 && i+e > at && json.Valid([]byte(mid[i:i+e])) {
			return i, i + e, true
		}
	}
	return 0, 0, false
}

// objectKeys sets the name and arguments keys of f from a rendered call.
func objectKeys(f *Format, obj string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(obj), &m) != nil {
		return false
	}
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil && s == probeName {
			f.NameKey = k
		} else if strings.Contains(string(v), "sluice_probe_arg") {
			f.ArgsKeys = []string{k}
		}
	}
	return f.NameKey != "" && len(f.ArgsKeys) == 1 && m[f.NameKey] != nil
}

// readsBack checks that f parses the rendered call back.
func readsBack(f *Format, mid string) bool {
	p := NewParser(f, Options{})
	evs := append(p.Feed(mid), p.Flush()...)
	var calls []Call
	for _, ev := range evs {
		if ev.Kind == ToolCall {
			calls = append(calls, ev.Call)
		}
	}
	return len(calls) == 1 && calls[0].Name == probeName && calls[0].Arguments == `{"sluice_probe_arg":7}`
}
