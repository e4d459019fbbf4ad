package sample

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// stream pushes the chunks and returns the emitted text (with Flush when no
// stop fired) and whether it stopped, checking after every push that the
// text emitted so far contains no stop string.
func stream(t *testing.T, stops []string, chunks ...string) (string, bool) {
	t.Helper()
	m := NewStopMatcher(stops)
	var out strings.Builder
	for _, c := range chunks {
		emit, stopped := m.Push(c)
		out.WriteString(emit)
		for _, s := range stops {
			if s != "" && strings.Contains(out.String(), s) {
				t.Fatalf("emitted %q contains stop %q", out.String(), s)
			}
		}
		if stopped {
			if e, st := m.Push("more"); e != "" || !st {
				t.Fatalf("Push after stop = %q, %v", e, st)
			}
			if m.Flush() != "" {
				t.Fatal("Flush after stop returned text")
			}
			return out.String(), true
		}
	}
	out.WriteString(m.Flush())
	return out.String(), false
}

func TestStopMatcher(t *testing.T) {
	cases := []struct {
		name    string
		stops   []string
		chunks  []string
		want    string
		stopped bool
	}{
		{"no stops", nil, []string{"hello", " world"}, "hello world", false},
		{"within chunk", []string{"END"}, []string{"abcENDdef"}, "abc", true},
		{"split across pushes", []string{"END"}, []string{"abc E", "N", "D tail"}, "abc ", true},
		{"one byte at a time", []string{"</s>"}, strings.Split("hi</s>x", ""), "hi", true},
		{"prefix that fails", []string{"END"}, []string{"EN", "Dx"[1:], "EX"}, "ENxEX", false},
		{"held prefix flushed at end", []string{"END"}, []string{"abc EN"}, "abc EN", false},
		{"overlapping prefixes", []string{"aab"}, []string{"a", "a", "a", "b"}, "a", true},
		{"self-overlap", []string{"abab"}, []string{"xab", "aab", "ab"}, "xaba", true},
		{"multiple stops, earliest wins", []string{"world", "lo w"}, []string{"hel", "lo world"}, "hel", true},
		{"stop is prefix of another", []string{"ab", "abc"}, []string{"xa", "bc"}, "x", true},
		{"longer stop fails, shorter matches later", []string{"\n\nUser:", "\n\n\n"}, []string{"ok\n\n", "U", "\n"}, "ok\n\nU\n", false},
		{"newline stop", []string{"\n"}, []string{"line one", "\nline two"}, "line one", true},
		{"unicode stop", []string{"终了"}, []string{"これで終", "了です"}, "これで終了です", false},
		{"unicode stop matches", []string{"終了"}, []string{"これで終", "了です"}, "これで", true},
		{"emoji split bytes", []string{"🛑"}, []string{"go ", "\xf0\x9f", "\x9b", "\x91 no"}, "go ", true},
		{"empty pushes", []string{"x"}, []string{"", "a", "", "x"}, "a", true},
		{"empty stop ignored", []string{""}, []string{"abc"}, "abc", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, stopped := stream(t, c.stops, c.chunks...)
			if got != c.want || stopped != c.stopped {
				t.Errorf("got %q, %v; want %q, %v", got, stopped, c.want, c.stopped)
			}
		})
	}
}

func TestStopMatcherHoldsBack(t *testing.T) {
	m := NewStopMatcher([]string{"STOP", "xyz"})
	if e, _ := m.Push("abcST"); e != "abc" {
		t.Errorf("emit %q, want \"abc\" with \"ST\" held", e)
	}
	if e, _ := m.Push("O"); e != "" {
		t.Errorf("emit %q, want nothing while \"STO\" could still match", e)
	}
	if e, _ := m.Push("Px"); e != "" || !m.Stopped() || m.Matched() != "STOP" {
		t.Errorf("emit %q stopped=%v matched=%q", e, m.Stopped(), m.Matched())
	}
	m.Reset()
	if e, st := m.Push("ok x"); e != "ok " || st {
		t.Errorf("after Reset: %q, %v", e, st)
	}
	if f := m.Flush(); f != "x" {
		t.Errorf("Flush = %q, want \"x\"", f)
	}
	if f := m.Flush(); f != "" {
		t.Errorf("second Flush = %q", f)
	}
}

func TestStopMatcherUTF8Boundaries(t *testing.T) {
	// Feed a multi-byte text one byte at a time: every emitted piece must be
	// valid UTF-8 even though the pushes split characters.
	text := "naïve café — 日本語 🙂 done"
	m := NewStopMatcher([]string{"never"})
	var out strings.Builder
	for i := 0; i < len(text); i++ {
		e, _ := m.Push(text[i : i+1])
		if !utf8.ValidString(e) {
			t.Fatalf("emitted invalid UTF-8 %q at byte %d", e, i)
		}
		out.WriteString(e)
	}
	out.WriteString(m.Flush())
	if out.String() != text {
		t.Errorf("round trip %q", out.String())
	}
	// Invalid bytes are not held forever.
	m = NewStopMatcher(nil)
	if e, _ := m.Push("a\xe6"); e != "a" {
		t.Errorf("incomplete lead byte: emitted %q", e)
	}
	if e, _ := m.Push("b"); e != "\xe6b" {
		t.Errorf("invalid sequence: emitted %q, want it passed through", e)
	}
}
