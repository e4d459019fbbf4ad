package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-llm/sluice/engine"
)

// The request decoders take arbitrary bytes from the network: decoding and
// validating a body must never panic, and every refusal must be an
// OpenAI error with a 4xx status. The fuzz targets run each body through
// the decode and validate functions directly, then through the whole HTTP
// handler against a fake model that refuses to generate (so a valid body
// ends at Submit with a 400 and nothing runs).

var completionSeeds = []string{
	`{"model":"chat","prompt":"x","max_tokens":1}`,
	`{"model":"tiny","prompt":"Hi","max_tokens":5,"temperature":0}`,
	`{"prompt":"x","max_tokens":10,"stop":"c"}`,
	`{"prompt":"x","max_tokens":2,"logprobs":2}`,
	`{"prompt":"x","max_tokens":2,"stream":true}`,
	`{"prompt":"x","max_tokens":3,"max_completion_tokens":4,"stop":"q","top_k":-1}`,
	`{"prompt":"x","max_tokens":3,"n":2,"seed":10}`,
	`{"prompt":"x","max_tokens":4,"stream":true,"n":2,"stream_options":{"include_usage":true}}`,
	`{"prompt":["a","b"],"n":2,"best_of":2}`,
	`{"prompt":[1,2,3],"ignore_eos":true,"stop_token_ids":[5]}`,
	`{"prompt":[[1,2],[3]],"logit_bias":{"5":-100,"7":2.5}}`,
	`{"prompt":"x","temperature":3}`,
	`{"prompt":"x","top_p":0,"min_p":1.5,"presence_penalty":2.5,"frequency_penalty":-3,"repetition_penalty":0}`,
	`{"prompt":"x","stop":["",""],"echo":true,"suffix":"s"}`,
	`{"prompt":{"a":1}}`,
	`{"prompt":[1,9999]}`,
	`{"prompt":[]}`,
	`{"prompt":"x","max_tokens":"many"}`,
	`{"prompt":"x","seed":-1,"priority":-5,"user":"u"}`,
	`{"prompt":`,
	`[1,2]`,
	``,
	`null`,
}

var chatSeeds = []string{
	`{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}`,
	`{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"logprobs":true,"top_logprobs":2}`,
	`{"model":"chat","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"there"}]}],"max_completion_tokens":3}`,
	`{"messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"z\": 1, \"a\": 2}"}}]},{"role":"tool","tool_call_id":"c1","content":"sunny"}],"tools":[{"type":"function","function":{"name":"get","parameters":{"zeta":{"type":"string"}}}}],"max_tokens":1}`,
	`{"messages":[{"role":"user","content":"x"}],"tools":[],"tool_choice":"none","chat_template_kwargs":{"enable_thinking":false},"add_generation_prompt":false}`,
	`{"messages":[{"role":"bad","content":"x"}]}`,
	`{"messages":[{"content":"x"}]}`,
	`{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`,
	`{"messages":[{"role":"user","content":{"a":1}}]}`,
	`{"messages":[]}`,
	`{"messages":"hi"}`,
	`{"messages":[{"role":"user","content":"x"}],"tools":{"a":1},"chat_template_kwargs":[1]}`,
	`{"messages":[{"role":"user","content":"x"}],"n":3,"seed":1,"stream":true,"stop":["a","b"]}`,
	`{"model":"chat"}`,
	`{`,
	``,
}

// fuzzServer serves a completions model and a chat model whose Submit
// refuses every request.
func fuzzServer(tb testing.TB) (*Server, *entry, *entry) {
	s := New(Options{MaxBodyBytes: 1 << 16})
	refuse := func(*engine.Request, int) error {
		return &engine.InvalidRequestError{Param: "prompt", Msg: "fuzzing: not generating"}
	}
	plain, chat := newFake("tiny"), newChatFake()
	plain.ctxLen, chat.ctxLen = 256, 256
	plain.setSubmit(refuse)
	chat.setSubmit(refuse)
	for _, m := range []*fakeModel{plain, chat} {
		if err := s.AddModel("", m); err != nil {
			tb.Fatal(err)
		}
	}
	return s, s.models["tiny"], s.models["chat"]
}

// checkRefusal fails unless err is nil or an OpenAI error with a 4xx
// status.
func checkRefusal(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = toAPIError(err, 1)
	}
	if ae.Status < 400 || ae.Status >= 500 || ae.Message == "" {
		t.Fatalf("%s: %d %q (%v)", what, ae.Status, ae.Message, err)
	}
}

// serveFuzz runs body through the handler at path and checks that the
// answer is an OpenAI error body with a 4xx status.
func serveFuzz(t *testing.T, s *Server, path string, body []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	s.Handler().ServeHTTP(rec, req)
	if rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
	}
	var eb errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Message == "" || eb.Error.Type == "" {
		t.Fatalf("error body %q for %q: %v", rec.Body.Bytes(), body, err)
	}
}

func FuzzCompletionRequest(f *testing.F) {
	for _, s := range completionSeeds {
		f.Add([]byte(s))
	}
	s, e, _ := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req completionRequest
		if err := decodeJSON(body, &req); err != nil {
			checkRefusal(t, "decode", err)
		} else {
			_, _, err := req.request(e.tok.VocabSize())
			checkRefusal(t, "params", err)
			prompts, err := parsePrompts(req.Prompt, e.tok)
			checkRefusal(t, "prompt", err)
			for _, p := range prompts {
				checkRefusal(t, "length", checkLength(p, 16, e.info.ContextLength, "prompt", "max_tokens"))
			}
		}
		serveFuzz(t, s, "/v1/completions", body)
	})
}

func FuzzChatRequest(f *testing.F) {
	for _, s := range chatSeeds {
		f.Add([]byte(s))
	}
	s, _, e := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req chatRequest
		if err := decodeJSON(body, &req); err != nil {
			checkRefusal(t, "decode", err)
		} else {
			_, _, err := req.request(e.tok.VocabSize())
			checkRefusal(t, "params", err)
			in, err := parseChat(req.Messages, req.Tools, req.ToolChoice, req.ChatTemplateKwargs, req.AddGenerationPrompt)
			checkRefusal(t, "messages", err)
			if err == nil {
				_, err := e.renderChat(in)
				checkRefusal(t, "template", err)
			}
		}
		serveFuzz(t, s, "/v1/chat/completions", body)
	})
}
