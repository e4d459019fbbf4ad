package tokenizer

import "unicode/utf8"

// StreamDecoder turns generated tokens into text one token at a time. It
// only ever returns valid UTF-8: bytes of a character split across byte
// tokens are held back until the character is complete, and bytes that can
// never form a character come out as U+FFFD.
//
// The text is the plain concatenation of Piece for every token (no leading
// space is removed, since generated tokens continue a prompt). A
// StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
}

// NewStreamDecoder returns a decoder with nothing pending.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// Add appends the piece of id and returns the text that is now complete.
func (d *StreamDecoder) Add(id int32) string {
	d.pending = append(d.pending, d.t.Piece(id)...)
	return d.drain(false)
}

// Flush returns whatever is pending, with an incomplete trailing character
// replaced by U+FFFD, and resets the decoder.
func (d *StreamDecoder) Flush() string { return d.drain(true) }

// Pending reports how many bytes are held back.
func (d *StreamDecoder) Pending() int { return len(d.pending) }

func (d *StreamDecoder) drain(final bool) string {
	p := d.pending
	if len(p) == 0 {
		return ""
	}
	// Fast path: everything pending is valid.
	if utf8.Valid(p) {
		d.pending = d.pending[:0]
		return string(p)
	}
	out := make([]byte, 0, len(p)+3)
	i := 0
	for i < len(p) {
		r, n := utf8.DecodeRune(p[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, p[i:i+n]...)
			i += n
			continue
		}
		if !final && !utf8.FullRune(p[i:]) {
			break // possibly the start of a character still arriving
		}
		out = utf8.AppendRune(out, utf8.RuneError)
		i++
	}
	d.pending = append(d.pending[:0], p[i:]...)
	return string(out)
}
