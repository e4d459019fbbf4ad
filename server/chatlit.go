package server

import (
	"strings"

	"github.com/sluice-llm/sluice/tokenizer"
	"github.com/sluice-llm/sluice/tokenizer/template"
)

// Chat message content is text users wrote: special-token text in it
// (a "<|im_start|>system" typed into a message) must not become control
// tokens, or a user could inject a turn of another role. The template's own
// markup must. So the prompt is rendered once as usual and, when some
// message's content holds control-token text, once more with that content
// wrapped in marker characters; removing the markers must give the same
// text, and where they stood are the spans the tokenizer keeps literal
// (tokenizer.EncodeLiteral). Templates that trim content are handled by a
// second try with trimmed content; a template that otherwise transforms
// such content (splits it, slices it, tests it) makes the request fail with
// a 400 rather than let the text through as control tokens.

// markerCandidates is how many pairs of private-use characters are tried
// as markers before giving up (each is refused if the prompt contains it).
const markerCandidates = 16

// literalSpans returns the byte spans of text (the rendering of msgs with
// opts) that hold message content with control-token text, sorted and
// disjoint; nil when no content has any. It fails with a 400 naming the
// first such message when the template transforms that content.
func (e *entry) literalSpans(text string, msgs []any, opts template.ChatOptions) ([]tokenizer.Span, error) {
	spans, bad := contentSpans(e.tmpl, text, msgs, opts, e.tok.HasControlText)
	if bad >= 0 {
		return nil, badRequest("messages", "messages[%d].content contains special-token text that the chat template transforms, "+
			"so it cannot be kept as plain text; remove it (or start the server with --parse-special-in-content to let content write special tokens)", bad)
	}
	return spans, nil
}

// contentSpans finds where in text, tmpl's rendering of msgs with opts,
// the string content of each message selected by want landed. bad is -1
// on success, else the index of the first selected message: then they
// could not be located. msgs are left as they were.
func contentSpans(tmpl *template.Template, text string, msgs []any, opts template.ChatOptions, want func(string) bool) (spans []tokenizer.Span, bad int) {
	type selected struct {
		m    *template.Map
		text string
	}
	var sel []selected
	bad = -1
	for i, m := range msgs {
		mm, ok := m.(*template.Map)
		if !ok {
			continue
		}
		if c, ok := mm.Get("content"); ok {
			if s, ok := c.(string); ok && want(s) {
				sel = append(sel, selected{mm, s})
				if bad < 0 {
					bad = i
				}
			}
		}
	}
	if len(sel) == 0 {
		return nil, -1
	}
	defer func() {
		for _, x := range sel {
			x.m.Set("content", x.text)
		}
	}()
	contents := make([]string, len(sel))
	for k, x := range sel {
		contents[k] = x.text
	}
	open, close, ok := pickMarkers(text, contents)
	if !ok {
		return nil, bad
	}
	for _, trim := range [2]bool{false, true} {
		for _, x := range sel {
			c := x.text
			if trim {
				c = strings.TrimSpace(c)
			}
			x.m.Set("content", open+c+close)
		}
		marked, err := tmpl.RenderChat(msgs, opts)
		if err != nil {
			continue
		}
		if spans, ok := stripMarkers(marked, open, close, text); ok {
			return spans, -1
		}
	}
	return nil, bad
}

// pickMarkers chooses an open and a close marker, each one private-use
// character, that occur neither in text nor in any of contents.
func pickMarkers(text string, contents []string) (open, close string, ok bool) {
	free := func(m string) bool {
		if strings.Contains(text, m) {
			return false
		}
		for _, c := range contents {
			if strings.Contains(c, m) {
				return false
			}
		}
		return true
	}
	for k := range markerCandidates {
		open, close = string(rune(0xF0000+2*k)), string(rune(0xF0001+2*k))
		if free(open) && free(close) {
			return open, close, true
		}
	}
	return "", "", false
}

// stripMarkers removes the open/close marker pairs from marked and returns
// the spans they enclosed, in the coordinates of the result, if the result
// is want and the markers pair up (open, close, open, close, ...).
func stripMarkers(marked, open, close, want string) ([]tokenizer.Span, bool) {
	var spans []tokenizer.Span
	var sb strings.Builder
	sb.Grow(len(want))
	rest := marked
	for {
		i := strings.Index(rest, open)
		if i < 0 {
			break
		}
		sb.WriteString(rest[:i])
		rest = rest[i+len(open):]
		j := strings.Index(rest, close)
		if j < 0 || strings.Contains(rest[:j], open) {
			return nil, false
		}
		start := sb.Len()
		sb.WriteString(rest[:j])
		if sb.Len() > start {
			spans = append(spans, tokenizer.Span{Start: start, End: sb.Len()})
		}
		rest = rest[j+len(close):]
	}
	if strings.Contains(rest, close) {
		return nil, false
	}
	sb.WriteString(rest)
	if sb.String() != want {
		return nil, false
	}
	return spans, true
}

// encodeChat tokenizes a rendered chat prompt: with content protected by
// spans, or, when the server was started with ParseSpecialInContent,
// parsing special tokens everywhere as the model's raw input.
func (e *entry) encodeChat(text string, addSpecial bool, spans []tokenizer.Span) []int32 {
	if len(spans) == 0 {
		return e.tok.Encode(text, addSpecial, true)
	}
	return e.tok.EncodeLiteral(text, addSpecial, spans)
}
