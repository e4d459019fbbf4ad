package sample

import (
	"strings"
	"unicode/utf8"
)

// StopMatcher finds stop sequences in streamed detokenized text. Push
// returns only text that can no longer become part of a stop sequence: it
// holds back any tail that is a prefix of a stop string, and a tail that is
// an incomplete UTF-8 sequence, until later text settles it. So the
// streamed output never contains a stop sequence or a part of one, and
// never splits a character.
//
// When a stop sequence appears, Push emits the text before it and reports
// stopped; the stop sequence and anything after it are dropped (OpenAI
// semantics) and every later Push returns ("", true). If several stop
// strings occur, the one starting earliest wins.
type StopMatcher struct {
	stops   []string
	pending []byte
	stopped bool
	matched string
}

// NewStopMatcher returns a matcher for the given stop strings; empty
// strings are ignored. With no stop strings it only holds back incomplete
// UTF-8 sequences.
func NewStopMatcher(stops []string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s != "" {
			m.stops = append(m.stops, s)
		}
	}
	return m
}

// Push adds text and returns the part of it (with any text held back
// earlier) that is safe to emit, and whether a stop sequence was found.
func (m *StopMatcher) Push(text string) (emit string, stopped bool) {
	if m.stopped {
		return "", true
	}
	m.pending = append(m.pending, text...)
	buf := string(m.pending) // one copy; also what is returned
	// Earliest stop occurrence. All text before pending was already checked,
	// and pending itself held no complete stop, so scanning all of it is
	// only a little redundant.
	at, which := -1, ""
	for _, s := range m.stops {
		if i := strings.Index(buf, s); i >= 0 && (at < 0 || i < at) {
			at, which = i, s
		}
	}
	if at >= 0 {
		m.stopped, m.matched = true, which
		m.pending = m.pending[:0]
		return buf[:at], true
	}
	keep := m.holdBack(buf)
	m.pending = append(m.pending[:0], buf[len(buf)-keep:]...)
	return buf[:len(buf)-keep], false
}

// holdBack returns the length of the longest tail of buf that must wait:
// a proper prefix of some stop string, or an incomplete UTF-8 sequence.
func (m *StopMatcher) holdBack(buf string) int {
	keep := 0
	for _, s := range m.stops {
		// Longest k < len(s) with buf ending in s[:k]; only k > keep matters.
		for k := min(len(s)-1, len(buf)); k > keep; k-- {
			if buf[len(buf)-k:] == s[:k] {
				keep = k
				break
			}
		}
	}
	// An incomplete multi-byte character at the very end.
	for k := 1; k <= utf8.UTFMax-1 && k <= len(buf); k++ {
		b := buf[len(buf)-k]
		if utf8.RuneStart(b) {
			if b >= utf8.RuneSelf && !utf8.FullRuneInString(buf[len(buf)-k:]) {
				keep = max(keep, k)
			}
			break
		}
	}
	return keep
}

// Flush returns the text still held back, at the end of generation, and
// empties the matcher's buffer. It returns "" after a stop.
func (m *StopMatcher) Flush() string {
	if m.stopped {
		return ""
	}
	s := string(m.pending)
	m.pending = m.pending[:0]
	return s
}

// Stopped reports whether a stop sequence has been found.
func (m *StopMatcher) Stopped() bool { return m.stopped }

// Matched returns the stop string that ended the text ("" if none), for
// responses that report which stop fired.
func (m *StopMatcher) Matched() string { return m.matched }

// Reset clears held-back text and the stopped state.
func (m *StopMatcher) Reset() {
	m.pending = m.pending[:0]
	m.stopped, m.matched = false, ""
}
