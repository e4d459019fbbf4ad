package store

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned (wrapped) by the store. Test them with errors.Is; the
// messages name the reference and say what to do.
var (
	// ErrNotFound: the repository, revision or file does not exist (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrAuth: the server refused access (HTTP 401/403): a gated or private
	// repository and no (or an insufficient) HF_TOKEN.
	ErrAuth = errors.New("access denied")
	// ErrNoGGUF: the repository holds no GGUF file (matching the tag).
	ErrNoGGUF = errors.New("no GGUF file")
	// ErrAmbiguous: several GGUF models match; the error is an
	// *AmbiguousError listing them.
	ErrAmbiguous = errors.New("ambiguous reference")
	// ErrChecksum: the downloaded bytes do not match the expected size or
	// sha256. The bad file is deleted.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrDiskFull: the disk holding the store ran out of space.
	ErrDiskFull = errors.New("disk full")
	// ErrOffline: the model is not in the store and network access is
	// forbidden.
	ErrOffline = errors.New("not in the store and offline")
	// ErrNotStored: Remove or Lookup of a reference the store does not hold.
	ErrNotStored = errors.New("not in the store")
	// ErrInvalidGGUF: the downloaded file is not a valid GGUF file.
	ErrInvalidGGUF = errors.New("not a valid GGUF file")
	// ErrDummyUnsupported: dummy:SHAPE:TYPE references are parsed but there
	// is no dummy model generator yet.
	ErrDummyUnsupported = errors.New("dummy models are not supported yet")
	// ErrLocal: Pull was given a local file, which needs no pulling.
	ErrLocal = errors.New("is a local file")
)

// AmbiguousError is returned when a reference matches several GGUF models.
type AmbiguousError struct {
	Ref     string
	Quant   string
	Choices []string // one per model; a split model is listed by its first part
}

func (e *AmbiguousError) Error() string {
	var b strings.Builder
	if e.Quant == "" {
		fmt.Fprintf(&b, "%s: the repository holds %d GGUF models; add a quantization tag (OWNER/REPO:QUANT) or name the file (hf://OWNER/REPO/FILE.gguf): ", e.Ref, len(e.Choices))
	} else {
		fmt.Fprintf(&b, "%s: %d GGUF models match %q; name the file with hf://OWNER/REPO/FILE.gguf: ", e.Ref, len(e.Choices), e.Quant)
	}
	b.WriteString(strings.Join(e.Choices, ", "))
	return b.String()
}

// Is makes errors.Is(err, ErrAmbiguous) true.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// refError carries a sentinel, the reference and a hint on what to do.
type refError struct {
	ref    string
	kind   error
	detail string
	hint   string
	cause  error
}

func (e *refError) Error() string {
	var b strings.Builder
	b.WriteString(e.ref)
	b.WriteString(": ")
	if e.detail != "" {
		b.WriteString(e.detail)
	} else {
		b.WriteString(e.kind.Error())
	}
	if e.hint != "" {
		b.WriteString("; ")
		b.WriteString(e.hint)
	}
	return b.String()
}

func (e *refError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func newRefError(ref string, kind error, detail, hint string) error {
	return &refError{ref: ref, kind: kind, detail: detail, hint: hint}
}

func wrapRefError(ref string, kind, cause error, detail, hint string) error {
	return &refError{ref: ref, kind: kind, detail: detail, hint: hint, cause: cause}
}
