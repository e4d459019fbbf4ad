package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/sluice-llm/sluice/api/sluice/v1"
	"github.com/sluice-llm/sluice/engine"
)

// GRPCServer returns a gRPC server with the sluice.v1.Sluice service, the
// standard grpc.health.v1 health service (NOT_SERVING once the server
// drains) and server reflection. The caller runs it with Serve and stops
// it (GracefulStop after Drain).
func (s *Server) GRPCServer(opt ...grpc.ServerOption) *grpc.Server {
	opt = append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryMetrics, s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamMetrics, s.streamAuth),
	}, opt...)
	gs := grpc.NewServer(opt...)
	pb.RegisterSluiceServer(gs, &grpcService{s: s})
	hs := health.NewServer()
	st := healthpb.HealthCheckResponse_SERVING
	if s.Draining() {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	hs.SetServingStatus("", st)
	hs.SetServingStatus(pb.Sluice_ServiceDesc.ServiceName, st)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	s.mu.Lock()
	s.onDrain = append(s.onDrain, func() {
		hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		hs.SetServingStatus(pb.Sluice_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	})
	s.mu.Unlock()
	return gs
}

func (s *Server) unaryMetrics(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	s.metrics.countGRPC(info.FullMethod, status.Code(err).String())
	return resp, err
}

func (s *Server) streamMetrics(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	err := h(srv, ss)
	s.metrics.countGRPC(info.FullMethod, status.Code(err).String())
	return err
}

// grpcError maps an error to a gRPC status with the HTTP API's semantics.
func (s *Server) grpcError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, "the request was cancelled")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, "the request's deadline passed")
	}
	ae := s.apiErr(err)
	msg := ae.Message
	if ae.Param != "" {
		msg = ae.Param + ": " + msg
	}
	var code codes.Code
	switch ae.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		code = codes.InvalidArgument
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusTooManyRequests:
		code = codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	default:
		code = codes.Internal
	}
	if ae.RetryAfter > 0 {
		grpc.SetHeader(ctx, metadata.Pairs("retry-after", strconv.Itoa(ae.RetryAfter)))
	}
	return status.Error(code, msg)
}

type grpcService struct {
	pb.UnimplementedSluiceServer
	s *Server
}

func f64(p *float32) *float64 {
	if p == nil {
		return nil
	}
	v := float64(*p)
	return &v
}

// params turns the request's fields into the HTTP API's, so both are
// validated by the same code.
func grpcParams(r *pb.GenerateRequest) *commonParams {
	p := &commonParams{Model: r.GetModel(), IgnoreEOS: r.GetIgnoreEos(), Priority: int(r.GetPriority())}
	if r.MaxTokens != 0 {
		v := int(r.MaxTokens)
		p.MaxTokens = &v
	}
	if r.N != 0 {
		v := int(r.N)
		p.N = &v
	}
	sp := r.GetSampling()
	if sp == nil {
		return p
	}
	p.Temperature, p.TopP, p.RepetitionPenalty = f64(sp.Temperature), f64(sp.TopP), f64(sp.RepetitionPenalty)
	if sp.TopK != 0 {
		v := int(sp.TopK)
		p.TopK = &v
	}
	if sp.MinP != 0 {
		p.MinP = f64(&sp.MinP)
	}
	if sp.PresencePenalty != 0 {
		p.PresencePenalty = f64(&sp.PresencePenalty)
	}
	if sp.FrequencyPenalty != 0 {
		p.FrequencyPenalty = f64(&sp.FrequencyPenalty)
	}
	p.Seed = sp.Seed
	if len(sp.Stop) > 0 {
		p.Stop, _ = json.Marshal(sp.Stop)
	}
	p.StopTokenIDs = sp.StopTokenIds
	if len(sp.LogitBias) > 0 {
		p.LogitBias = make(map[string]float64, len(sp.LogitBias))
		for k, v := range sp.LogitBias {
			p.LogitBias[strconv.Itoa(int(k))] = float64(v)
		}
	}
	return p
}

func checkTokenIDs(ids []int32, vocab int, param string) error {
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return badRequest(param, "%s[%d] = %d is not a token id (vocabulary of %d)", param, i, id, vocab)
		}
	}
	return nil
}

// maxRequestIDLen bounds a client's request_id: it is echoed in every
// message of the response.
const maxRequestIDLen = 256

// checkRequestID refuses a request_id that is too long or not printable
// ASCII.
func checkRequestID(id string) error {
	if len(id) > maxRequestIDLen {
		return badRequest("request_id", "request_id is %d bytes; at most %d are allowed", len(id), maxRequestIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return badRequest("request_id", "request_id has byte 0x%02x at %d; only printable ASCII is allowed", id[i], i)
		}
	}
	return nil
}

func (g *grpcService) prepare(r *pb.GenerateRequest) (*job, error) {
	s := g.s
	p := grpcParams(r)
	e, err := s.lookup(p.Model)
	if err != nil {
		return nil, err
	}
	if s.Draining() {
		return nil, errDraining()
	}
	req, n, err := p.request(e.tok.VocabSize())
	if err != nil {
		return nil, err
	}
	if err := s.applyPriority(p, &req); err != nil {
		return nil, err
	}
	if sp := r.GetSampling(); sp != nil {
		if sp.TopLogprobs < 0 || sp.TopLogprobs > maxTopLogprobs {
			return nil, badRequest("top_logprobs", "top_logprobs must be in [0, %d], got %d", maxTopLogprobs, sp.TopLogprobs)
		}
		if sp.TopLogprobs > 0 && !sp.Logprobs {
			return nil, badRequest("top_logprobs", "top_logprobs requires logprobs to be true")
		}
		req.Sampling.Logprobs, req.Sampling.TopLogprobs = sp.Logprobs, int(sp.TopLogprobs)
	}
	var prompt []int32
	var tj *toolSetup // the tools of a messages_json request
	param := "text"
	switch x := r.Prompt.(type) {
	case *pb.GenerateRequest_Text:
		prompt = e.tok.Encode(x.Text, true, true)
	case *pb.GenerateRequest_TokenIds:
		param = "token_ids"
		prompt = x.TokenIds.GetIds()
		if err := checkTokenIDs(prompt, e.tok.VocabSize(), param); err != nil {
			return nil, err
		}
	case *pb.GenerateRequest_MessagesJson:
		param = "messages_json"
		in, err := parseChat(json.RawMessage(x.MessagesJson), json.RawMessage(r.ToolsJson), nil, nil, nil)
		if err != nil {
			return nil, err
		}
		if prompt, err = e.renderChat(in); err != nil {
			return nil, err
		}
		if tj, err = grpcTools(e, r, in.prompt); err != nil {
			return nil, err
		}
	default:
		return nil, badRequest("prompt", "a prompt is required: text, token_ids or messages_json")
	}
	if err := checkLength(prompt, req.MaxTokens, e.info.ContextLength, param, "max_tokens"); err != nil {
		return nil, err
	}
	id := r.RequestId
	if id == "" {
		id = newID("gen-")
	} else if err := checkRequestID(id); err != nil {
		return nil, err
	}
	j := &job{e: e, id: id, prompts: [][]int32{prompt}, n: n, req: req, timeout: g.s.opts.RequestTimeout}
	if tj != nil {
		j.grammar, j.lazy = tj.grammar, tj.lazy
		if tj.parse {
			j.parsers = newChatParsers(e.format, tj.popts, n)
		}
	}
	return j, nil
}

func (g *grpcService) Generate(r *pb.GenerateRequest, stream grpc.ServerStreamingServer[pb.GenerateResponse]) (err error) {
	ctx := stream.Context()
	j, err := g.prepare(r)
	if err != nil {
		return g.s.grpcError(ctx, err)
	}
	j.req.Client = grpcClientKey(ctx)
	j.rec = &reqRecord{id: j.id, start: time.Now(), model: j.e.name}
	defer func() {
		g.s.logRecord(slog.LevelInfo, j.rec, slog.String("method", "gRPC"), slog.String("path", "/sluice.v1.Sluice/Generate"),
			slog.String("status", status.Code(err).String()), slog.String("client", grpcPeer(ctx)))
	}()
	events, err := g.s.run(ctx, j)
	if err != nil {
		return g.s.grpcError(ctx, err)
	}
	var failed, sendErr error
	for ce := range events {
		if sendErr != nil || failed != nil {
			continue // wait for the streams to end (the call's context is done)
		}
		ev := ce.ev
		if ev.Done && ev.Finish == engine.FinishError {
			msg := "generation failed"
			if ev.Err != nil {
				msg += ": " + ev.Err.Error()
			}
			failed = status.Error(codes.Internal, msg)
			continue
		}
		if ev.Done && ev.Finish == engine.FinishAbort && g.s.aborting() && ctx.Err() == nil {
			failed = status.Error(codes.Unavailable, errShutdown().Message)
			continue
		}
		resp := &pb.GenerateResponse{Id: j.id, Model: j.e.name, Index: int32(ce.index), Text: ev.Text, SystemFingerprint: j.e.info.Fingerprint}
		if j.parsers != nil {
			j.parsers.grpc(resp, ce.index, ev)
		}
		if ev.HasToken {
			resp.TokenIds = []int32{ev.Token}
			if j.req.Sampling.Logprobs {
				lp := &pb.TokenLogprob{TokenId: ev.Token, Token: j.e.tok.Piece(ev.Token), Logprob: ev.Logprob}
				for _, t := range ev.TopLogprobs {
					lp.TopLogprobs = append(lp.TopLogprobs, &pb.TopLogprob{TokenId: t.Token, Token: j.e.tok.Piece(t.Token), Logprob: t.Logprob})
				}
				resp.Logprobs = []*pb.TokenLogprob{lp}
			}
		}
		if ev.Done {
			resp.Done = true
			resp.FinishReason = finishReason(ev.Finish)
			if j.parsers != nil && j.parsers.ps[ce.index].Calls() > 0 && resp.FinishReason == "stop" {
				resp.FinishReason = "tool_calls"
			}
			resp.Usage = &pb.Usage{PromptTokens: int32(ev.Usage.PromptTokens), CompletionTokens: int32(ev.Usage.CompletionTokens),
				CachedTokens: int32(ev.Usage.CachedTokens)}
			t := ev.Timing
			resp.Timing = &pb.Timing{QueuedSeconds: t.Queued.Seconds(), TimeToFirstTokenSeconds: t.FirstTok.Seconds(),
				TotalSeconds: t.Total.Seconds(), TimePerOutputTokenSeconds: t.PerOutput.Seconds()}
		}
		sendErr = stream.Send(resp)
	}
	if failed != nil {
		return failed
	}
	if sendErr != nil {
		return sendErr
	}
	if err := ctx.Err(); err != nil {
		return g.s.grpcError(ctx, err)
	}
	return nil
}

func (g *grpcService) Tokenize(ctx context.Context, r *pb.TokenizeRequest) (*pb.TokenizeResponse, error) {
	e, err := g.s.lookup(r.Model)
	if err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	var ids []int32
	switch x := r.Input.(type) {
	case *pb.TokenizeRequest_Text:
		add := r.AddSpecialTokens == nil || *r.AddSpecialTokens
		ids = e.tok.Encode(x.Text, add, true)
	case *pb.TokenizeRequest_MessagesJson:
		in, err := parseChat(json.RawMessage(x.MessagesJson), json.RawMessage(r.ToolsJson), nil, nil, nil)
		if err == nil {
			ids, err = e.renderChat(in)
		}
		if err != nil {
			return nil, g.s.grpcError(ctx, err)
		}
	default:
		return nil, g.s.grpcError(ctx, badRequest("input", "text or messages_json is required"))
	}
	return &pb.TokenizeResponse{TokenIds: ids, Count: int32(len(ids)), MaxModelLen: int32(e.info.ContextLength)}, nil
}

func (g *grpcService) Detokenize(ctx context.Context, r *pb.DetokenizeRequest) (*pb.DetokenizeResponse, error) {
	e, err := g.s.lookup(r.Model)
	if err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	if err := checkTokenIDs(r.TokenIds, e.tok.VocabSize(), "token_ids"); err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	return &pb.DetokenizeResponse{Text: e.tok.Decode(r.TokenIds)}, nil
}

func (g *grpcService) ListModels(ctx context.Context, r *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	out := &pb.ListModelsResponse{}
	for _, e := range g.s.entries() {
		i := e.info
		out.Models = append(out.Models, &pb.ModelInfo{
			Name: e.name, Path: g.s.shownPath(i.Path), Fingerprint: i.Fingerprint, Arch: i.Arch, ContextLength: int32(i.ContextLength),
			VocabSize: int32(i.VocabSize), QuantMix: i.QuantMix, LoadedAtUnix: i.LoadedAt.Unix(), BlockSize: int32(i.BlockSize),
			KvBlocks: int32(i.KVBlocks), KvBytes: i.KVBytes, ChatTemplate: e.tmpl != nil,
		})
	}
	return out, nil
}
