package server

import (
	"context"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/tokenizer"
)

// Model is what the server needs from one loaded model: the public API of
// *engine.Engine, seen through small interfaces so tests can serve a
// deterministic fake. Wrap a real engine with FromEngine.
type Model interface {
	// Submit starts a request. Cancelling ctx aborts it; the stream then
	// ends with a final event whose Finish is engine.FinishAbort.
	Submit(ctx context.Context, req *engine.Request) (Stream, error)
	Stats() engine.Stats
	Info() engine.ModelInfo
	Tokenizer() Tokenizer
	// ChatTemplate is the model's Jinja chat template source, "" if none.
	ChatTemplate() string
	// Drain refuses new requests and waits for running ones to finish.
	Drain(ctx context.Context) error
	Close() error
}

// queueLimited is implemented by models that refuse requests beyond a
// fixed number waiting (the engine's MaxQueue): a request with more
// choices than that can never be accepted.
type queueLimited interface {
	MaxQueue() int
}

// Stream is one request's output. Next blocks for the next event; it
// returns false once the stream is over (after the event with Done set).
type Stream interface {
	Next() (engine.Event, bool)
}

// Tokenizer is the part of *tokenizer.Tokenizer the server uses.
type Tokenizer interface {
	Encode(text string, addSpecial, parseSpecial bool) []int32
	// EncodeLiteral encodes a rendered chat prompt with special tokens
	// parsed except inside the literal spans (the messages' content).
	EncodeLiteral(text string, addSpecial bool, literal []tokenizer.Span) []int32
	// HasControlText reports whether text holds a control token's text.
	HasControlText(text string) bool
	Decode(ids []int32) string
	Piece(id int32) string
	Token(id int32) string
	BOS() int32
	EOS() int32
	VocabSize() int
}

var _ Tokenizer = (*tokenizer.Tokenizer)(nil)

// Engine is the method set of *engine.Engine that FromEngine adapts. S is
// the engine's concrete stream type (*engine.Stream).
type Engine[S Stream] interface {
	Submit(ctx context.Context, req *engine.Request) (S, error)
	Stats() engine.Stats
	Info() engine.ModelInfo
	Tokenizer() *tokenizer.Tokenizer
	ChatTemplate() string
	Drain(ctx context.Context) error
	Close() error
}

// FromEngine adapts an engine to Model:
//
//	m := server.FromEngine[*engine.Stream](eng)
func FromEngine[S Stream](e Engine[S]) Model { return engineModel[S]{e} }

type engineModel[S Stream] struct{ e Engine[S] }

func (m engineModel[S]) Submit(ctx context.Context, req *engine.Request) (Stream, error) {
	s, err := m.e.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (m engineModel[S]) Stats() engine.Stats             { return m.e.Stats() }
func (m engineModel[S]) Info() engine.ModelInfo          { return m.e.Info() }
func (m engineModel[S]) Tokenizer() Tokenizer            { return m.e.Tokenizer() }
func (m engineModel[S]) ChatTemplate() string            { return m.e.ChatTemplate() }
func (m engineModel[S]) Drain(ctx context.Context) error { return m.e.Drain(ctx) }
func (m engineModel[S]) Close() error                    { return m.e.Close() }

// MaxQueue is the engine's Config().MaxQueue, 0 (unknown) if the engine
// does not tell.
func (m engineModel[S]) MaxQueue() int {
	if c, ok := any(m.e).(interface{ Config() engine.Config }); ok {
		return c.Config().MaxQueue
	}
	return 0
}

// PrefixCaching reports whether the engine caches prompt prefixes (true
// when it does not tell).
func (m engineModel[S]) PrefixCaching() bool {
	if c, ok := any(m.e).(interface{ Config() engine.Config }); ok {
		return !c.Config().DisablePrefixCache
	}
	return true
}

// prefixCaching reports whether e's model caches prompt prefixes; models
// that do not say are taken to.
func (e *entry) prefixCaching() bool {
	if p, ok := e.m.(interface{ PrefixCaching() bool }); ok {
		return p.PrefixCaching()
	}
	return true
}
