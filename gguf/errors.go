package gguf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors. Every error about file contents returned by this package
// is a *FormatError wrapping one of them, so callers can test the kind with
// errors.Is. ErrTruncated and ErrNotGGUF also match ErrCorrupt.
var (
	// ErrCorrupt: the file breaks the GGUF format.
	ErrCorrupt = errors.New("gguf: corrupt file")
	// ErrTruncated: the file ends before the data it declares.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
	// ErrNotGGUF: the file does not start with the GGUF magic.
	ErrNotGGUF = fmt.Errorf("%w: not a GGUF file", ErrCorrupt)
	// ErrUnsupported: a well-formed file using something this package does
	// not read (version 1, version 4 or later, big-endian byte order, an
	// unknown tensor type).
	ErrUnsupported = errors.New("gguf: unsupported file")
)

// FormatError describes a problem with the contents of a GGUF file.
type FormatError struct {
	Err    error  // ErrCorrupt, ErrTruncated, ErrNotGGUF or ErrUnsupported
	Path   string // file name, when known
	Offset int64  // absolute file offset of the offending field, or -1
	Key    string // metadata key at fault, if any
	Tensor string // tensor at fault, if any
	Msg    string // what is wrong
}

func (e *FormatError) Error() string {
	var sb strings.Builder
	sb.WriteString("gguf: ")
	if e.Path != "" {
		sb.WriteString(e.Path)
		sb.WriteString(": ")
	}
	sb.WriteString(strings.TrimPrefix(e.Err.Error(), "gguf: "))
	if e.Key != "" {
		sb.WriteString(": key ")
		sb.WriteString(strconv.Quote(e.Key))
	}
	if e.Tensor != "" {
		sb.WriteString(": tensor ")
		sb.WriteString(strconv.Quote(e.Tensor))
	}
	if e.Offset >= 0 {
		if e.Key == "" && e.Tensor == "" {
			sb.WriteString(":")
		}
		sb.WriteString(" at offset ")
		sb.WriteString(strconv.FormatInt(e.Offset, 10))
	}
	sb.WriteString(": ")
	sb.WriteString(e.Msg)
	return sb.String()
}

// Unwrap returns the sentinel kind of the error.
func (e *FormatError) Unwrap() error { return e.Err }
