package tokenizer

import (
	"slices"
	"testing"
)

// TestEncodeLiteral: inside literal spans a control token's text is plain
// text, outside it is the control token; user-defined tokens match
// everywhere; a control token straddling a span's edge is not matched.
func TestEncodeLiteral(t *testing.T) {
	tok := tinyBPE(t, "gpt-2")
	id := func(s string) int32 { v, _ := tok.TokenID(s); return v }
	end := id("<|end|>")
	plain := tok.Encode("<|end|>", false, false)
	if len(plain) < 2 || slices.Contains(plain, end) {
		t.Fatalf("plain encoding of <|end|>: %v", plain)
	}
	//        0123456789012345678901
	text := "a<|end|>b<|end|><x>a<|end|>"
	// The second <|end|> and the <x> after it are inside the span.
	lit := []Span{{Start: 9, End: 19}}
	var want []int32
	want = append(want, id("a"), end, id("b"))
	want = append(want, plain...)
	want = append(want, id("<x>"), id("a"), end)
	if got := tok.EncodeLiteral(text, false, lit); !slices.Equal(got, want) {
		t.Errorf("EncodeLiteral = %v, want %v", got, want)
	}
	// Without spans it is Encode with parseSpecial.
	if got, want := tok.EncodeLiteral(text, false, nil), tok.Encode(text, false, true); !slices.Equal(got, want) {
		t.Errorf("no spans: %v, want %v", got, want)
	}
	// A span covering only part of the token's text still protects it.
	if got := tok.EncodeLiteral("a<|end|>", false, []Span{{Start: 0, End: 3}}); slices.Contains(got, end) {
		t.Errorf("straddling span: %v has the control token", got)
	}
	// A span elsewhere leaves the token alone.
	if got, want := tok.EncodeLiteral("a<|end|>", false, []Span{{Start: 0, End: 1}}), []int32{id("a"), end}; !slices.Equal(got, want) {
		t.Errorf("span beside the token: %v, want %v", got, want)
	}
	if !tok.HasControlText("x<|end|>") || tok.HasControlText("x<x>y") || tok.HasControlText("<|end|") {
		t.Errorf("HasControlText")
	}
}
