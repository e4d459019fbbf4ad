package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-llm/sluice/grammar"
	"github.com/sluice-llm/sluice/tokenizer"
)

// mbCase is one MaskBench file: a schema and instances to accept or reject.
type mbCase struct {
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Tests       []struct {
		Description string          `json:"description"`
		Valid       bool            `json:"valid"`
		Data        json.RawMessage `json:"data"`
	} `json:"tests"`
}

// mbResult is the outcome of one schema.
type mbResult struct {
	Name       string        `json:"name"`
	CompileErr string        `json:"compile_error,omitempty"`
	Cause      string        `json:"cause,omitempty"` // the keyword a compile error names
	Compile    time.Duration `json:"compile_ns"`
	Timeout    bool          `json:"timeout,omitempty"`
	Rejected   []string      `json:"rejected_valid,omitempty"`   // valid instances refused (validation errors)
	Accepted   []string      `json:"accepted_invalid,omitempty"` // invalid instances accepted (invalidation errors)
	Tokens     int           `json:"tokens"`
	masks      []time.Duration
}

// passing reports MaskBench's criterion: compiled, every valid instance
// accepted and every invalid one rejected.
func (r *mbResult) passing() bool {
	return r.CompileErr == "" && !r.Timeout && len(r.Rejected) == 0 && len(r.Accepted) == 0
}

// runMaskBenchFile compiles one schema file for tok and walks its instances
// token by token, stopping at deadline.
func runMaskBenchFile(tok *tokenizer.Tokenizer, path string, deadline time.Time) mbResult {
	r := mbResult{Name: filepath.Base(path)}
	data, err := os.ReadFile(path)
	var c mbCase
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		r.CompileErr, r.Cause = err.Error(), "unreadable file"
		return r
	}
	start := time.Now()
	g, err := grammar.CompileJSONSchema(tok, c.Schema, grammar.Options{})
	r.Compile = time.Since(start)
	if err != nil {
		r.CompileErr, r.Cause = err.Error(), compileCause(err)
		return r
	}
	mask := make([]uint64, 0)
	for i, t := range c.Tests {
		var buf bytes.Buffer
		if err := json.Compact(&buf, t.Data); err != nil {
			continue
		}
		ids := tok.Encode(buf.String(), false, false)
		m := g.NewMatcher()
		if len(mask) == 0 {
			mask = make([]uint64, m.MaskWords())
		}
		ok, timedOut := walkInstance(m, ids, mask, &r, deadline)
		if timedOut {
			r.Timeout = true
			return r
		}
		label := fmt.Sprintf("%d %s", i, t.Description)
		switch {
		case t.Valid && !ok:
			r.Rejected = append(r.Rejected, label)
		case !t.Valid && ok:
			r.Accepted = append(r.Accepted, label)
		}
	}
	return r
}

// walkInstance masks and advances ids one by one, as decoding would, and
// reports whether the grammar accepted all of them and may end after them.
// Mask times go to r.masks.
func walkInstance(m *grammar.Matcher, ids []int32, mask []uint64, r *mbResult, deadline time.Time) (ok, timedOut bool) {
	for _, id := range ids {
		if time.Now().After(deadline) {
			return false, true
		}
		start := time.Now()
		m.Mask(mask)
		r.masks = append(r.masks, time.Since(start))
		r.Tokens++
		if mask[id>>6]&(1<<(id&63)) == 0 {
			return false, false
		}
		if err := m.Advance(id); err != nil {
			return false, false
		}
	}
	return m.CanEnd(), false
}

// compileCause names a compile error's cause: the keyword of a schema
// error, or the kind of failure.
func compileCause(err error) string {
	var se *grammar.SchemaError
	switch {
	case errors.As(err, &se) && se.Keyword != "":
		return se.Keyword
	case errors.As(err, &se):
		return se.Msg
	case errors.Is(err, grammar.ErrTooLarge):
		return "too large"
	}
	return err.Error()
}
