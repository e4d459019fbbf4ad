package template

import (
	"errors"
	"fmt"
)

// TemplateError is the error a template raises itself with
// raise_exception(msg). Its Error() is exactly the message, so a server can
// hand it to the client unchanged (HTTP 400).
type TemplateError struct {
	Message string
	Line    int // line of the raise_exception call; 0 if unknown
}

func (e *TemplateError) Error() string { return e.Message }

// Error is any other failure to parse or render a template. Kind names the
// class of problem in Jinja's terms: "TemplateSyntaxError", "UndefinedError",
// "TypeError", "ValueError", "SecurityError", "LimitError".
type Error struct {
	Kind string
	Line int // 1-based source line; 0 if unknown
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("template: line %d: %s: %s", e.Line, e.Kind, e.Msg)
	}
	return fmt.Sprintf("template: %s: %s", e.Kind, e.Msg)
}

// ErrLimit is wrapped by every error caused by a safety limit (output size,
// loop iterations, recursion depth).
var ErrLimit = errors.New("template limit exceeded")

func (e *Error) Unwrap() error {
	if e.Kind == "LimitError" {
		return ErrLimit
	}
	return nil
}

func syntaxErr(line int, format string, args ...any) error {
	return &Error{Kind: "TemplateSyntaxError", Line: line, Msg: fmt.Sprintf(format, args...)}
}

func typeErr(format string, args ...any) error {
	return &Error{Kind: "TypeError", Msg: fmt.Sprintf(format, args...)}
}

func valueErr(format string, args ...any) error {
	return &Error{Kind: "ValueError", Msg: fmt.Sprintf(format, args...)}
}

func limitErr(format string, args ...any) error {
	return &Error{Kind: "LimitError", Msg: fmt.Sprintf(format, args...)}
}

// atLine attaches a line number to err if it has none yet.
func atLine(err error, line int) error {
	if err == nil || line <= 0 {
		return err
	}
	switch e := err.(type) {
	case *Error:
		if e.Line == 0 {
			e.Line = line
		}
		return e
	case *TemplateError:
		if e.Line == 0 {
			e.Line = line
		}
		return e
	}
	return &Error{Kind: "Error", Line: line, Msg: err.Error()}
}
