package server

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
	"github.com/sluice-llm/sluice/engine"
)

// newGRPC serves s over gRPC on a loopback listener and returns a client
// connection.
func newGRPC(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := s.GRPCServer()
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func generateAll(t *testing.T, c pb.SluiceClient, req *pb.GenerateRequest) ([]*pb.GenerateResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Generate(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*pb.GenerateResponse
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

func TestGRPCGenerate(t *testing.T) {
	m := newChatFake()
	s := New(Options{})
	if err := s.AddModel("", m); err != nil {
		t.Fatal(err)
	}
	c := pb.NewSluiceClient(newGRPC(t, s))

	resps, err := generateAll(t, c, &pb.GenerateRequest{
		Model: "chat", Prompt: &pb.GenerateRequest_Text{Text: "hi"}, MaxTokens: 3, N: 2,
		Sampling: &pb.SamplingParams{Temperature: proto.Float32(0), Seed: proto.Int64(7), Stop: []string{"zz"}, Logprobs: true, TopLogprobs: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	texts := map[int32]string{}
	done := map[int32]*pb.GenerateResponse{}
	for _, r := range resps {
		texts[r.Index] += r.Text
		if r.Done {
			done[r.Index] = r
		} else if len(r.TokenIds) != 1 || len(r.Logprobs) != 1 || len(r.Logprobs[0].TopLogprobs) != 1 {
			t.Errorf("response %v", r)
		}
		if r.SystemFingerprint != "fp-chat" || r.Model != "chat" || !strings.HasPrefix(r.Id, "gen-") {
			t.Errorf("response %v", r)
		}
	}
	for i := int32(0); i < 2; i++ {
		d := done[i]
		if texts[i] != "abc" || d == nil || d.FinishReason != "length" || d.Usage.GetCompletionTokens() != 3 || d.Usage.GetPromptTokens() != 3 || d.Timing == nil {
			t.Errorf("choice %d: text %q final %v", i, texts[i], d)
		}
	}
	reqs := m.requests()
	if len(reqs) != 2 || reqs[0].Sampling.Temperature != 0 || !reqs[0].Sampling.HasSeed || reqs[0].Sampling.Stop[0] != "zz" || reqs[0].MaxTokens != 3 {
		t.Errorf("engine requests %+v", reqs)
	}

	// Chat messages through the template, and token ids.
	resps, err = generateAll(t, c, &pb.GenerateRequest{Prompt: &pb.GenerateRequest_MessagesJson{MessagesJson: `[{"role":"user","content":"q"}]`}, MaxTokens: 1})
	if err != nil || len(resps) != 2 || resps[0].Text != "a" {
		t.Fatalf("chat: %v %v", resps, err)
	}
	if got := (byteTok{}).Decode(m.requests()[2].Prompt); got != "<s><|user|>q\n<|assistant|>" {
		t.Errorf("chat prompt %q", got)
	}
	if _, err = generateAll(t, c, &pb.GenerateRequest{Prompt: &pb.GenerateRequest_TokenIds{TokenIds: &pb.TokenIds{Ids: []int32{5, 6}}}, MaxTokens: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestGRPCErrors(t *testing.T) {
	m := newChatFake()
	s := New(Options{})
	if err := s.AddModel("", m); err != nil {
		t.Fatal(err)
	}
	c := pb.NewSluiceClient(newGRPC(t, s))
	text := &pb.GenerateRequest_Text{Text: "x"}
	for _, tc := range []struct {
		name string
		req  *pb.GenerateRequest
		code codes.Code
		msg  string
	}{
		{"unknown model", &pb.GenerateRequest{Model: "nope", Prompt: text}, codes.NotFound, "nope"},
		{"no prompt", &pb.GenerateRequest{}, codes.InvalidArgument, "prompt"},
		{"temperature", &pb.GenerateRequest{Prompt: text, Sampling: &pb.SamplingParams{Temperature: proto.Float32(5)}}, codes.InvalidArgument, "temperature"},
		{"negative max_tokens", &pb.GenerateRequest{Prompt: text, MaxTokens: -1}, codes.InvalidArgument, "max_tokens"},
		{"bad token id", &pb.GenerateRequest{Prompt: &pb.GenerateRequest_TokenIds{TokenIds: &pb.TokenIds{Ids: []int32{999}}}}, codes.InvalidArgument, "token_ids"},
		{"over context", &pb.GenerateRequest{Prompt: &pb.GenerateRequest_Text{Text: strings.Repeat("x", 100)}}, codes.InvalidArgument, "context length"},
		{"template raises", &pb.GenerateRequest{Prompt: &pb.GenerateRequest_MessagesJson{MessagesJson: `[{"role":"bad","content":"x"}]`}}, codes.InvalidArgument, "must come from the user"},
		{"bad messages json", &pb.GenerateRequest{Prompt: &pb.GenerateRequest_MessagesJson{MessagesJson: `[{`}}, codes.InvalidArgument, "messages"},
	} {
		_, err := generateAll(t, c, tc.req)
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.code, tc.msg)
		}
	}

	m.setSubmit(func(*engine.Request, int) error { return engine.ErrOverloaded })
	var hdr metadata.MD
	st, err := c.Generate(context.Background(), &pb.GenerateRequest{Prompt: text}, grpc.Header(&hdr))
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("overloaded: %v", err)
	}
	if got := hdr.Get("retry-after"); len(got) != 1 || got[0] != "1" {
		t.Errorf("retry-after header %v", hdr)
	}
	m.setSubmit(nil)

	// Cancelling the call aborts the request in the engine.
	m.block.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	gst, err := c.Generate(ctx, &pb.GenerateRequest{Prompt: text, MaxTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gst.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-m.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the engine never saw the cancellation")
	}
	m.block.Store(false)

	s.StartDrain()
	if _, err := generateAll(t, c, &pb.GenerateRequest{Prompt: text}); status.Code(err) != codes.Unavailable {
		t.Errorf("draining: %v", err)
	}
}

func TestGRPCTokenizeListModelsHealth(t *testing.T) {
	s := New(Options{})
	for _, m := range []*fakeModel{newChatFake(), newFake("plain")} {
		if err := s.AddModel("", m); err != nil {
			t.Fatal(err)
		}
	}
	cc := newGRPC(t, s)
	c := pb.NewSluiceClient(cc)
	ctx := context.Background()

	tr, err := c.Tokenize(ctx, &pb.TokenizeRequest{Model: "chat", Input: &pb.TokenizeRequest_Text{Text: "ab"}})
	if err != nil || tr.Count != 3 || tr.MaxModelLen != 64 || tr.TokenIds[1] != 'a'+2 {
		t.Fatalf("tokenize %v %v", tr, err)
	}
	tr, err = c.Tokenize(ctx, &pb.TokenizeRequest{Input: &pb.TokenizeRequest_Text{Text: "ab"}, AddSpecialTokens: proto.Bool(false)})
	if err != nil || tr.Count != 2 {
		t.Fatalf("tokenize without special tokens %v %v", tr, err)
	}
	tr, err = c.Tokenize(ctx, &pb.TokenizeRequest{Input: &pb.TokenizeRequest_MessagesJson{MessagesJson: `[{"role":"user","content":"q"}]`}})
	if err != nil || (byteTok{}).Decode(tr.TokenIds) != "<s><|user|>q\n<|assistant|>" {
		t.Fatalf("chat tokenize %v %v", tr, err)
	}
	if _, err := c.Tokenize(ctx, &pb.TokenizeRequest{Model: "plain", Input: &pb.TokenizeRequest_MessagesJson{MessagesJson: `[{"role":"user","content":"q"}]`}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("chat tokenize without template: %v", err)
	}
	if _, err := c.Tokenize(ctx, &pb.TokenizeRequest{Model: "x", Input: &pb.TokenizeRequest_Text{Text: "a"}}); status.Code(err) != codes.NotFound {
		t.Errorf("tokenize unknown model: %v", err)
	}
	dr, err := c.Detokenize(ctx, &pb.DetokenizeRequest{TokenIds: []int32{99, 100}})
	if err != nil || dr.Text != "ab" {
		t.Fatalf("detokenize %v %v", dr, err)
	}
	if _, err := c.Detokenize(ctx, &pb.DetokenizeRequest{TokenIds: []int32{-1}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("detokenize bad id: %v", err)
	}

	lm, err := c.ListModels(ctx, &pb.ListModelsRequest{})
	if err != nil || len(lm.Models) != 2 {
		t.Fatalf("list models %v %v", lm, err)
	}
	if m := lm.Models[0]; m.Name != "chat" || m.Fingerprint != "fp-chat" || m.ContextLength != 64 || !m.ChatTemplate || m.QuantMix != "F32:3" || m.LoadedAtUnix != 1700000000 {
		t.Errorf("model %v", m)
	}
	if lm.Models[1].ChatTemplate {
		t.Errorf("model %v", lm.Models[1])
	}

	h := healthpb.NewHealthClient(cc)
	for _, svc := range []string{"", "sluice.v1.Sluice"} {
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", svc, r, err)
		}
	}
	s.StartDrain()
	if r, err := h.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health while draining: %v %v", r, err)
	}

	// Reflection lists the services.
	rc, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sv := range rr.GetListServicesResponse().GetService() {
		names = append(names, sv.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "sluice.v1.Sluice") || !strings.Contains(strings.Join(names, " "), "grpc.health.v1.Health") {
		t.Errorf("reflection services %v", names)
	}

	// gRPC calls are counted in /metrics.
	var sb strings.Builder
	if err := s.writeMetrics(&sb); err != nil {
		t.Fatal(err)
	}
	got := parseProm(t, sb.String())
	if got[`sluice_grpc_requests_total{method="/sluice.v1.Sluice/Tokenize",code="OK"}`] != 3 {
		t.Errorf("grpc metrics:\n%s", sb.String())
	}
}

// A request_id is echoed in every message: it is bounded in length and
// printable.
func TestGRPCRequestIDBounds(t *testing.T) {
	m := newFake("tiny")
	s := New(Options{})
	if err := s.AddModel("", m); err != nil {
		t.Fatal(err)
	}
	c := pb.NewSluiceClient(newGRPC(t, s))
	for _, id := range []string{strings.Repeat("x", maxRequestIDLen+1), "a\nb", "id\x00", "caf\u00e9"} {
		_, err := generateAll(t, c, &pb.GenerateRequest{RequestId: id, Prompt: &pb.GenerateRequest_Text{Text: "x"}, MaxTokens: 1})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "request_id") {
			t.Errorf("request_id of %d bytes: %v", len(id), err)
		}
	}
	if n := len(m.requests()); n != 0 {
		t.Errorf("%d requests reached the engine", n)
	}
	id := strings.Repeat("r", maxRequestIDLen)
	resps, err := generateAll(t, c, &pb.GenerateRequest{RequestId: id, Prompt: &pb.GenerateRequest_Text{Text: "x"}, MaxTokens: 2})
	if err != nil || len(resps) == 0 || resps[0].Id != id {
		t.Fatalf("a %d-byte request_id: %v %v", len(id), resps, err)
	}
}
