package server

import (
	"context"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/shared"
)

// The openai-go client reads forced tool calls, streamed (through its
// accumulator) or not, and their finish reason.
func TestSDKToolCalls(t *testing.T) {
	s := newSDKServer(t, Options{}, true, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tool := openai.ChatCompletionToolParam{Function: shared.FunctionDefinitionParam{
		Name: "get_weather",
		Parameters: shared.FunctionParameters{
			"type":                 "object",
			"properties":           map[string]any{"city": map[string]any{"enum": []string{"Paris", "Oslo"}}},
			"required":             []string{"city"},
			"additionalProperties": false,
		},
	}}
	p := openai.ChatCompletionNewParams{
		Model:             "chat",
		Messages:          []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Once upon a time")},
		Tools:             []openai.ChatCompletionToolParam{tool},
		MaxTokens:         openai.Int(100),
		Seed:              openai.Int(2),
		ParallelToolCalls: openai.Bool(false), // random weights would call until max_tokens
	}
	p.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}
	r, err := s.client.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Choices[0]
	if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) == 0 {
		t.Fatalf("finish %q, calls %+v", c.FinishReason, c.Message.ToolCalls)
	}
	tc := c.Message.ToolCalls[0]
	if tc.Function.Name != "get_weather" || (tc.Function.Arguments != `{"city":"Paris"}` && tc.Function.Arguments != `{"city":"Oslo"}`) || tc.ID == "" {
		t.Errorf("call %+v", tc)
	}
	p.ToolChoice = openai.ChatCompletionToolChoiceOptionParamOfChatCompletionNamedToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"})
	st := s.client.Chat.Completions.NewStreaming(ctx, p)
	acc := openai.ChatCompletionAccumulator{}
	finished := 0
	for st.Next() {
		acc.AddChunk(st.Current())
		if _, ok := acc.JustFinishedToolCall(); ok {
			finished++
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].ID == "" || acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("streamed: %+v, finish %q", calls, acc.Choices[0].FinishReason)
	}
	if finished != 1 {
		t.Errorf("the accumulator saw %d finished calls", finished)
	}
	s.waitIdle(t)
}
