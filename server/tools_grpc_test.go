package server

import (
	"testing"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// gRPC carries tools, tool_choice, parsed calls and reasoning.
func TestGRPCToolCalls(t *testing.T) {
	reply := "<think>Weather.</think>Checking.<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>"
	s, _ := newTestServer(t, Options{}, toolFake(reply))
	c := pb.NewSluiceClient(newGRPC(t, s))
	msgs := &pb.GenerateRequest_MessagesJson{MessagesJson: `[{"role":"user","content":"Weather in Paris?"}]`}
	resps, err := generateAll(t, c, &pb.GenerateRequest{Prompt: msgs, ToolsJson: weatherTools, MaxTokens: 300})
	if err != nil {
		t.Fatal(err)
	}
	var text, reasoning string
	var calls []*pb.ToolCall
	for _, r := range resps {
		text += r.Text
		reasoning += r.Reasoning
		calls = append(calls, r.ToolCalls...)
	}
	last := resps[len(resps)-1]
	if text != "Checking." || reasoning != "Weather." || !last.Done || last.FinishReason != "tool_calls" {
		t.Errorf("text %q reasoning %q finish %q", text, reasoning, last.FinishReason)
	}
	if len(calls) != 1 || calls[0].Name != "get_weather" || calls[0].Arguments != `{"city":"Paris"}` || calls[0].Index != 0 || len(calls[0].Id) < 6 {
		t.Errorf("calls %v", calls)
	}
	_, err = generateAll(t, c, &pb.GenerateRequest{Prompt: msgs, ToolsJson: weatherTools, MaxTokens: 5,
		ToolChoiceJson: `{"type":"function","function":{"name":"nope"}}`})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("tool_choice naming an unknown tool: %v", err)
	}
}
