package toolcall

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Kind is what an Event carries.
type Kind int

const (
	Content Kind = iota
	Reasoning
	ToolCall
)

// Call is one parsed tool call: the function's name and its arguments as
// compact JSON text (an object).
type Call struct {
	Name      string
	Arguments string
}

// Event is a piece of parsed output: Text for Content and Reasoning, Call
// (numbered from 0 in Index) for ToolCall.
type Event struct {
	Kind  Kind
	Text  string
	Call  Call
	Index int
}

// Options configure a Parser.
type Options struct {
	// Reasoning separates <think> ... </think> from content.
	Reasoning bool
	// InThink: the prompt already opened <think> (DeepSeek R1 and Qwen 3
	// generation prompts), so output starts as reasoning.
	InThink bool
	// NoCalls leaves calls in content (tool_choice "none", no tools).
	NoCalls bool
}

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
)

type pstate int

const (
	inText pstate = iota
	inThink
	inCall
)

// Parser splits a model's output, fed in pieces of any size, into content,
// reasoning and tool calls. The events of any split of the same text
// concatenate to the same content and reasoning and the same calls. A
// Parser belongs to one goroutine.
type Parser struct {
	f        *Format
	opts     Options
	buf      string
	state    pstate
	bare     bool // the call being read started without Start (BareJSON)
	trimLead bool // whitespace after a call or reasoning is dropped
	started  bool // some non-space content was emitted
	calls    int
	out      []Event
}

// NewParser returns a parser of output written in format f.
func NewParser(f *Format, opts Options) *Parser {
	p := &Parser{f: f, opts: opts}
	if opts.Reasoning && opts.InThink {
		p.state = inThink
	}
	return p
}

// Calls is the number of calls parsed so far.
func (p *Parser) Calls() int { return p.calls }

// Feed adds output text and returns the events it completes. Text that
// may be the start of a marker is held until it is known.
func (p *Parser) Feed(s string) []Event {
	p.buf += s
	p.out = nil
	for p.step(false) {
	}
	return p.out
}

// Flush ends the output: held text is emitted, and an unfinished call is
// content as written.
func (p *Parser) Flush() []Event {
	p.out = nil
	for p.step(true) {
	}
	if p.buf != "" {
		if p.state == inThink {
			p.emit(Reasoning, p.buf)
		} else {
			p.emit(Content, p.buf)
		}
		p.buf = ""
	}
	return p.out
}

func (p *Parser) emit(k Kind, s string) {
	if s == "" {
		return
	}
	if k == Content && strings.TrimSpace(s) != "" {
		p.started = true
	}
	if n := len(p.out); n > 0 && p.out[n-1].Kind == k && k != ToolCall {
		p.out[n-1].Text += s
		return
	}
	p.out = append(p.out, Event{Kind: k, Text: s})
}

// step makes one move; it reports whether another may follow.
func (p *Parser) step(final bool) bool {
	switch p.state {
	case inThink:
		return p.stepThink(final)
	case inCall:
		return p.stepCall(final)
	}
	return p.stepText(final)
}

func (p *Parser) stepThink(final bool) bool {
	i, partial := find(p.buf, thinkClose)
	if i < 0 {
		keep := 0
		if !final {
			keep = partial
		}
		p.emit(Reasoning, p.buf[:len(p.buf)-keep])
		p.buf = p.buf[len(p.buf)-keep:]
		return false
	}
	p.emit(Reasoning, p.buf[:i])
	p.buf = p.buf[i+len(thinkClose):]
	p.state, p.trimLead = inText, true
	return true
}

// markers are what the text state looks for, in priority order.
func (p *Parser) markers() []string {
	var m []string
	if p.opts.Reasoning {
		m = append(m, thinkOpen)
	}
	if !p.opts.NoCalls {
		m = append(m, p.f.Start)
		if p.f.Open != "" {
			m = append(m, p.f.Open, p.f.Close)
		}
	}
	return m
}

func (p *Parser) stepText(final bool) bool {
	if p.trimLead {
		p.buf = trimSpaceLeft(p.buf)
		if p.buf == "" {
			return false
		}
		p.trimLead = false
	}
	if !p.opts.NoCalls && p.f.BareJSON && !p.started {
		t := trimSpaceLeft(p.buf)
		if t == "" && !final {
			return false
		}
		if strings.HasPrefix(t, "{") {
			p.buf, p.state, p.bare = t, inCall, true
			return true
		}
	}
	at, which, hold := len(p.buf), "", 0
	for _, m := range p.markers() {
		i, partial := find(p.buf, m)
		if i >= 0 && i < at {
			at, which = i, m
		}
		hold = max(hold, partial)
	}
	if which == "" {
		if final {
			hold = 0
		}
		p.emit(Content, p.buf[:len(p.buf)-hold])
		p.buf = p.buf[len(p.buf)-hold:]
		return false
	}
	p.emit(Content, p.buf[:at])
	p.buf = p.buf[at+len(which):]
	switch which {
	case thinkOpen:
		p.state = inThink
	case p.f.Start:
		p.state, p.bare = inCall, false
	}
	return true
}

// find returns the index of m in s, or -1 and the length of the longest
// suffix of s that is a proper prefix of m (text to hold back).
func find(s, m string) (int, int) {
	if m == "" {
		return -1, 0
	}
	if i := strings.Index(s, m); i >= 0 {
		return i, 0
	}
	for k := min(len(m)-1, len(s)); k > 0; k-- {
		if strings.HasSuffix(s, m[:k]) {
			return -1, k
		}
	}
	return -1, 0
}

// stepCall reads one call (or, for Array, the list) after its Start.
func (p *Parser) stepCall(final bool) bool {
	body := p.buf
	name := ""
	if p.f.Shape == Named {
		j := strings.Index(body, p.f.NameEnd)
		if b := strings.IndexAny(body, "{}"); b >= 0 && (j < 0 || b < j) {
			return p.abandon() // a name has no braces
		}
		if j < 0 {
			if final {
				return p.abandon()
			}
			return false
		}
		name, body = strings.TrimSpace(body[:j]), body[j+len(p.f.NameEnd):]
	}
	end := jsonEnd(body)
	switch {
	case end == -2 || (end == -1 && final):
		return p.abandon()
	case end == -1:
		return false
	}
	value, rest := body[:end], body[end:]
	if endM := trimSpaceLeft(p.f.End); endM != "" {
		t := trimSpaceLeft(rest)
		if !final && len(t) < len(endM) && strings.HasPrefix(endM, t) {
			return false // the end marker may be coming
		}
		if strings.HasPrefix(t, endM) {
			rest = t[len(endM):]
		}
	}
	calls, ok := p.decode(name, value)
	if !ok {
		return p.abandon()
	}
	for _, c := range calls {
		p.out = append(p.out, Event{Kind: ToolCall, Call: c, Index: p.calls})
		p.calls++
	}
	p.buf, p.state, p.trimLead = rest, inText, true
	return true
}

// abandon gives up on a call that does not parse: its Start marker is
// content, and the text after it is read again as text (it may hold
// another call). The decision depends only on text already seen, so any
// split of the output gives the same result.
func (p *Parser) abandon() bool {
	if !p.bare {
		p.emit(Content, p.f.Start)
	}
	p.state, p.started = inText, true
	return true
}

// decode turns a call's JSON into calls; ok is false when it is not one.
func (p *Parser) decode(name, value string) ([]Call, bool) {
	if p.f.Shape == Named {
		args, ok := compact(json.RawMessage(value))
		return []Call{{Name: name, Arguments: args}}, ok && name != ""
	}
	var raws []json.RawMessage
	if p.f.Shape == Array {
		if json.Unmarshal([]byte(value), &raws) != nil || len(raws) == 0 {
			return nil, false
		}
	} else {
		raws = []json.RawMessage{json.RawMessage(value)}
	}
	var calls []Call
	for _, r := range raws {
		c, ok := p.object(r)
		if !ok {
			return nil, false
		}
		calls = append(calls, c)
	}
	return calls, true
}

// object reads {NameKey: name, ArgsKey: {...}} (arguments may also be a
// string holding JSON, as some models write them).
func (p *Parser) object(raw json.RawMessage) (Call, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return Call{}, false
	}
	var name string
	if json.Unmarshal(m[p.f.NameKey], &name) != nil || name == "" {
		return Call{}, false
	}
	for _, k := range p.f.ArgsKeys {
		a, ok := m[k]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(a, &s) == nil {
			a = json.RawMessage(s)
		}
		args, ok := compact(a)
		return Call{Name: name, Arguments: args}, ok
	}
	return Call{Name: name, Arguments: "{}"}, true
}

// compact returns raw as compact JSON if it is an object.
func compact(raw json.RawMessage) (string, bool) {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil || !bytes.HasPrefix(buf.Bytes(), []byte("{")) {
		return "", false
	}
	return buf.String(), true
}
