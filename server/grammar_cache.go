package server

import (
	"sync"

	"github.com/sluice-llm/sluice/grammar"
	"github.com/sluice-llm/sluice/tokenizer"
)

// grammarCacheSize bounds the compiled grammars kept for reuse.
const grammarCacheSize = 128

// grammarKey names a compiled grammar: the vocabulary, the request field
// that asked for it, and the field's JSON as sent.
type grammarKey struct {
	tok   *tokenizer.Tokenizer
	field string
	raw   string
}

// grammarCache keeps recently compiled grammars, so that requests with the
// same constraint share one Grammar and with it the parser states and
// masks its matchers build (a Grammar is safe for concurrent use). Oldest
// entries go first once it is full. Only successful compiles are kept.
type grammarCache struct {
	mu    sync.Mutex
	m     map[grammarKey]*grammar.Grammar
	order []grammarKey
}

var grammars = &grammarCache{m: map[grammarKey]*grammar.Grammar{}}

// get returns the cached grammar for k, or compiles and keeps it.
func (c *grammarCache) get(k grammarKey, compile func() (*grammar.Grammar, error)) (*grammar.Grammar, error) {
	c.mu.Lock()
	g := c.m[k]
	c.mu.Unlock()
	if g != nil {
		return g, nil
	}
	g, err := compile()
	if err != nil || g == nil {
		return g, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.m[k]; prev != nil {
		return prev, nil // compiled concurrently: keep one
	}
	if len(c.order) >= grammarCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[k] = g
	c.order = append(c.order, k)
	return g, nil
}
