package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestServeFlagsDefaults(t *testing.T) {
	o, err := parseServe([]string{"-m", "m.gguf"}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.host != "127.0.0.1" || o.port != 8080 || o.grpcPort != 0 || o.kvMemory != "" || o.kvFraction != 0.5 || o.kvType != "f16" ||
		o.blockSize != 16 || o.maxNumSeqs != 64 || o.maxBatchedTokens != 2048 || o.maxQueue != 1024 || o.threads != 0 ||
		o.ctx != 0 || o.backend != "cpu" || o.noPrefixCache || o.dryRun || o.maxBody != "32MiB" || o.shutdownTimeout != 30*time.Second {
		t.Errorf("defaults %+v", o)
	}
	cfg := o.engineConfig("m", "/x/m.gguf")
	want := engine.Config{ModelPath: "/x/m.gguf", Name: "m", Backend: "cpu", KVMemoryFraction: 0.5, KVType: "f16", BlockSize: 16,
		MaxNumSeqs: 64, MaxNumBatchedTokens: 2048, MaxQueue: 1024}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("engine config %+v, want %+v", cfg, want)
	}
}

func TestServeFlagsEnv(t *testing.T) {
	env := envOf(map[string]string{
		"SLUICE_MODEL": "env.gguf", "SLUICE_HOST": "0.0.0.0", "SLUICE_PORT": "9000", "SLUICE_GRPC_PORT": "9001",
		"SLUICE_KV_MEMORY": "2GiB", "SLUICE_BLOCK_SIZE": "32", "SLUICE_MAX_NUM_SEQS": "8", "SLUICE_MAX_NUM_BATCHED_TOKENS": "512",
		"SLUICE_MAX_QUEUE": "10", "SLUICE_THREADS": "3", "SLUICE_CTX": "1024", "SLUICE_KV_TYPE": "f32",
		"SLUICE_NO_PREFIX_CACHE": "true", "SLUICE_SHUTDOWN_TIMEOUT": "5s", "SLUICE_SPEC": "ngram", "SLUICE_SPEC_TOKENS": "3",
	})
	// Flags on the command line win over the environment.
	o, err := parseServe([]string{"--port", "9100", "--model", "b=b.gguf", "--threads=4"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.model != "env.gguf" || o.host != "0.0.0.0" || o.port != 9100 || o.grpcPort != 9001 || o.threads != 4 || o.shutdownTimeout != 5*time.Second {
		t.Errorf("options %+v", o)
	}
	cfg := o.engineConfig("a", "a.gguf")
	if cfg.KVMemory != 2<<30 || cfg.BlockSize != 32 || cfg.MaxNumSeqs != 8 || cfg.MaxNumBatchedTokens != 512 || cfg.MaxQueue != 10 ||
		cfg.Threads != 4 || cfg.ContextLength != 1024 || cfg.KVType != "f32" || !cfg.DisablePrefixCache ||
		cfg.Spec != "ngram" || cfg.SpecTokens != 3 {
		t.Errorf("engine config %+v", cfg)
	}
	specs := o.specs()
	if len(specs) != 2 || specs[0] != (modelSpec{"", "env.gguf"}) || specs[1] != (modelSpec{"b", "b.gguf"}) {
		t.Errorf("specs %+v", specs)
	}
	if o.parseSpecial {
		t.Errorf("--parse-special-in-content is on by default")
	}
	if o, err := parseServe(nil, envOf(map[string]string{"SLUICE_PARSE_SPECIAL_IN_CONTENT": "true"}), io.Discard); err != nil || !o.parseSpecial {
		t.Errorf("SLUICE_PARSE_SPECIAL_IN_CONTENT: %+v, %v", o, err)
	}
	if o.reasoningFormat != "auto" {
		t.Errorf("--reasoning-format defaults to %q", o.reasoningFormat)
	}
	if o, err := parseServe(nil, envOf(map[string]string{"SLUICE_REASONING_FORMAT": "none"}), io.Discard); err != nil || o.reasoningFormat != "none" {
		t.Errorf("SLUICE_REASONING_FORMAT: %+v, %v", o, err)
	}
}

func TestServeFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-m", "a", "--model", "noequals"}, nil, "NAME=MODEL"},
		{[]string{"-m", "a", "--port", "70000"}, nil, "ports"},
		{[]string{"-m", "a", "--kv-memory", "lots"}, nil, "--kv-memory"},
		{[]string{"-m", "a"}, map[string]string{"SLUICE_PORT": "eighty"}, "$SLUICE_PORT"},
		{[]string{"-m", "a", "extra", "args"}, nil, "unexpected arguments"},
		{[]string{"-m", "a", "--bogus"}, nil, "bogus"},
		{[]string{"-m", "a", "--reasoning-format", "deepseek"}, nil, "--reasoning-format"},
	} {
		_, err := parseServe(tc.args, envOf(tc.env), io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want a usage error mentioning %q", tc.args, tc.env, err, tc.want)
		}
	}
	// -h lists the environment variables.
	var out bytes.Buffer
	if code := runMain([]string{"serve", "-h"}, io.Discard, &out); code != 0 || !strings.Contains(out.String(), "SLUICE_KV_MEMORY") {
		t.Errorf("serve -h: exit %d\n%s", code, out.String())
	}
}

func TestServeDryRun(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	var out, errb bytes.Buffer
	if code := runMain([]string{"serve", "-m", path, "--dry-run", "--kv-memory", "4MiB", "--block-size", "32"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"stories260K.gguf", "budget:", "KV cache:", "32 tokens", "context length:", "sequences that fit"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := runMain([]string{"serve", "--model", "s=" + path, "--dry-run", "--json", "--kv-memory", "4MiB"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var pp engine.ProcessPlan
	if err := json.Unmarshal(out.Bytes(), &pp); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	plans := pp.Models
	if len(plans) != 1 || plans[0].Model != "s" || plans[0].Budget != 4<<20 || plans[0].Blocks == 0 || pp.KVBytes != plans[0].KVBytes {
		t.Errorf("plans %+v", plans)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// withChatTemplate writes a copy of the GGUF at src with a chat template
// that renders each message as BOS + content, so a one-message chat is the
// same prompt as a plain completion of that content.
func withChatTemplate(t *testing.T, src string) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KVs {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Set("tokenizer.chat_template", "{% for m in messages %}{{ bos_token }}{{ m['content'] }}{% endfor %}"); err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	dst := t.TempDir() + "/chat.gguf"
	if err := w.WriteFile(dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestServeEndToEnd runs `sluice serve` on stories260K on loopback ports,
// makes a greedy completion that must match llama.cpp's golden text, checks
// gRPC health, then shuts down as on SIGTERM.
func TestServeEndToEnd(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	g := readGolden(t, "stories260K")[0]
	chatPath := withChatTemplate(t, path)
	grpcPort := freePort(t)
	sv := startServe(t, "-m", path, "--name", "stories", "--host", "127.0.0.1", "--port", "0",
		"--grpc-port", strconv.Itoa(grpcPort), "--threads", "1", "--kv-memory", "4MiB", "--model", "chat="+chatPath)
	base, stderr := sv.base, sv.stderr
	body := `{"model":"stories","prompt":` + strconv.Quote(g.Prompt) + `,"temperature":0,"max_tokens":` + strconv.Itoa(len(g.Generated)) + `}`
	resp, err := http.Post(base+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var cr struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
	}
	err = json.NewDecoder(resp.Body).Decode(&cr)
	resp.Body.Close()
	if err != nil || len(cr.Choices) != 1 {
		t.Fatalf("completion: %v %+v", err, cr)
	}
	if cr.Choices[0].Text != g.GeneratedText {
		t.Errorf("completion\n got %q\nwant %q", cr.Choices[0].Text, g.GeneratedText)
	}

	// The second model serves chat through its template: a one-message
	// conversation renders to the same prompt, so the same continuation.
	body = `{"model":"chat","messages":[{"role":"user","content":` + strconv.Quote(g.Prompt) + `}],"temperature":0,"max_tokens":` + strconv.Itoa(len(g.Generated)) + `}`
	resp, err = http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var chat struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	err = json.NewDecoder(resp.Body).Decode(&chat)
	resp.Body.Close()
	if err != nil || len(chat.Choices) != 1 {
		t.Fatalf("chat: %v %+v", err, chat)
	}
	if chat.Choices[0].Message.Content != g.GeneratedText || chat.Usage.PromptTokens != len(g.PromptTokens) {
		t.Errorf("chat completion\n got %q (%d prompt tokens)\nwant %q (%d)", chat.Choices[0].Message.Content, chat.Usage.PromptTokens, g.GeneratedText, len(g.PromptTokens))
	}
	resp, err = http.Get(base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	models, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(models), `"id":"stories"`) || !strings.Contains(string(models), `"id":"chat"`) {
		t.Errorf("/v1/models: %s", models)
	}

	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hr, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health %v %v", hr, err)
	}

	sv.stop(t) // as SIGTERM
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", stderr.String())
	}
	if _, err := http.Get(base + "/health"); err == nil {
		t.Error("the HTTP server still answers after shutdown")
	}
}

// servedCLI is a `sluice serve` running in-process on loopback.
type servedCLI struct {
	base   string // http://127.0.0.1:PORT
	stderr *syncBuffer
	cancel func() // sends SIGTERM
	done   chan error
}

// startServe runs `sluice serve args...` in-process until it listens. The
// test's cleanup stops it if the test does not.
func startServe(t *testing.T, args ...string) *servedCLI {
	t.Helper()
	sigs := make(chan os.Signal, 4)
	old := serveSignals
	serveSignals = func() (<-chan os.Signal, func()) { return sigs, func() {} }
	// cancel sends a signal as SIGTERM does: the first starts the drain,
	// the second ends it.
	cancel := func() {
		select {
		case sigs <- syscall.SIGTERM:
		default:
		}
	}
	sv := &servedCLI{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { sv.done <- runServe(args, io.Discard, sv.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-sv.done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not shut down")
		}
		serveSignals = old
	})
	addrRE := regexp.MustCompile(`listening on (https?://[^\s"]+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := addrRE.FindStringSubmatch(sv.stderr.String()); m != nil {
			sv.base = m[1]
			return sv
		}
		select {
		case err := <-sv.done:
			sv.done <- err
			t.Fatalf("serve exited: %v\n%s", err, sv.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", sv.stderr.String())
		}
	}
}

// stop shuts the server down as SIGTERM does and checks it exits cleanly.
func (sv *servedCLI) stop(t *testing.T) {
	t.Helper()
	sv.cancel()
	select {
	case err := <-sv.done:
		sv.done <- err
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, sv.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
}

func TestServeDefaultModel(t *testing.T) {
	o, err := parseServe(nil, envOf(nil), io.Discard)
	if err != nil || o.model != defaultServeModel || !o.dummyDefault || len(o.specs()) != 1 {
		t.Fatalf("no model: %+v %v", o, err)
	}
	for _, args := range [][]string{{"-m", "x.gguf"}, {"--model", "a=x.gguf"}} {
		if o, err := parseServe(args, envOf(nil), io.Discard); err != nil || o.dummyDefault {
			t.Errorf("%q: %+v %v", args, o, err)
		}
	}
	if o, err := parseServe(nil, envOf(map[string]string{"SLUICE_MODEL": "x.gguf"}), io.Discard); err != nil || o.dummyDefault || o.model != "x.gguf" {
		t.Errorf("$SLUICE_MODEL: %+v %v", o, err)
	}
}

// TestServeQuickStart is the README's first step on a fresh machine with
// no network and no model: `sluice serve` alone generates the tiny dummy
// model into an empty cache, says so, and answers the OpenAI SDK's
// completions and chat completions (the dummy's ChatML template).
func TestServeQuickStart(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	start := time.Now()
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "8MiB", "--offline")
	took := time.Since(start)
	for _, want := range []string{
		"no model given: serving the random-weight dummy model dummy:tiny-llama:Q8_0",
		"pass -m MODEL.gguf for a real one",
		"model loaded", "name=tiny-llama-Q8_0",
	} {
		if !strings.Contains(sv.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, sv.stderr.String())
		}
	}
	t.Logf("generated, loaded and listening in %v", took.Round(time.Millisecond))

	client := openai.NewClient(option.WithBaseURL(sv.base+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0),
		option.WithRequestTimeout(time.Minute))
	ctx := context.Background()
	models, err := client.Models.List(ctx)
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != "tiny-llama-Q8_0" {
		t.Fatalf("models %+v %v", models, err)
	}
	p := openai.CompletionNewParams{Model: "tiny-llama-Q8_0", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Hello")},
		MaxTokens: openai.Int(8)}
	p.SetExtraFields(map[string]any{"ignore_eos": true})
	c, err := client.Completions.New(ctx, p)
	if err != nil || len(c.Choices) != 1 || c.Usage.CompletionTokens != 8 {
		t.Fatalf("completion %+v %v", c, err)
	}
	chat, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "tiny-llama-Q8_0", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi there")},
		MaxCompletionTokens: openai.Int(4),
	})
	if err != nil || len(chat.Choices) != 1 || chat.Usage.CompletionTokens == 0 || chat.Usage.PromptTokens < 5 {
		t.Fatalf("chat %+v %v", chat, err)
	}
	sv.stop(t)
}

func TestServeHTTPFlags(t *testing.T) {
	o, err := parseServe([]string{"-m", "m.gguf"}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.readTimeout != 60*time.Second || o.maxConnections != 1024 || o.exposePaths || o.allowedHosts != "" {
		t.Errorf("defaults %+v", o)
	}
	if h := o.hosts(); !reflect.DeepEqual(h, []string{"localhost", "127.0.0.1", "::1", "127.0.0.1"}) {
		t.Errorf("default hosts on loopback: %q", h)
	}
	env := envOf(map[string]string{"SLUICE_READ_TIMEOUT": "5s", "SLUICE_MAX_CONNECTIONS": "10",
		"SLUICE_ALLOWED_HOSTS": "a.example, b.example", "SLUICE_EXPOSE_PATHS": "true", "SLUICE_HOST": "0.0.0.0"})
	o, err = parseServe([]string{"-m", "m.gguf"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.readTimeout != 5*time.Second || o.maxConnections != 10 || !o.exposePaths || !reflect.DeepEqual(o.hosts(), []string{"a.example", "b.example"}) {
		t.Errorf("from the environment %+v (hosts %q)", o, o.hosts())
	}
	for host, want := range map[string][]string{"0.0.0.0": {"*"}, "::": {"*"}, "192.168.1.5": {"*"},
		"localhost": {"localhost", "127.0.0.1", "::1", "localhost"}, "::1": {"localhost", "127.0.0.1", "::1", "::1"}} {
		o := &serveOptions{host: host}
		if got := o.hosts(); !reflect.DeepEqual(got, want) {
			t.Errorf("--host %s: allowed hosts %q, want %q", host, got, want)
		}
	}
	for _, args := range [][]string{{"--read-timeout", "0s"}, {"--max-connections", "-1"}} {
		if _, err := parseServe(append([]string{"-m", "a"}, args...), envOf(nil), io.Discard); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestServeShutdownCutsRequests: when --shutdown-timeout passes with a
// generation running, its stream still ends properly (finish_reason
// "abort", then [DONE]), the log says how many requests were cut and the
// command fails, so the exit status is not 0.
func TestServeShutdownCutsRequests(t *testing.T) {
	t.Setenv("SLUICE_HOME", t.TempDir())
	sv := startServe(t, "--port", "0", "--threads", "1", "--kv-memory", "64MiB", "--offline", "--shutdown-timeout", "50ms")
	body := `{"prompt":"Hello","max_tokens":2000,"ignore_eos":true,"stream":true}`
	resp, err := http.Post(sv.base+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q", line)
	}
	sv.cancel() // as SIGTERM
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("the stream broke: %v", err)
	}
	events := strings.Split(strings.TrimSuffix(string(rest), "\n\n"), "\n\n")
	if len(events) < 2 || events[len(events)-1] != "data: [DONE]" || !strings.Contains(events[len(events)-2], `"finish_reason":"abort"`) {
		t.Errorf("the cut stream ends with %q", events[max(0, len(events)-2):])
	}
	select {
	case err := <-sv.done:
		sv.done <- err
		if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "1 requests were cut") {
			t.Errorf("serve returned %v, want an error saying 1 request was cut", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if !strings.Contains(sv.stderr.String(), "cut=1") {
		t.Errorf("no log line with the number of cut requests:\n%s", sv.stderr.String())
	}
}

// The connection cap fits the open file limit, with a warning.
func TestServeConnectionCap(t *testing.T) {
	for _, tc := range []struct {
		want  int
		limit uint64
		got   int
		warn  string
	}{
		{1024, 1 << 20, 1024, ""},
		{1024, 300, 236, "lowered to 236"},
		{0, 300, 0, "no limit"},
		{100, 300, 100, ""},
		{1024, 10, 1024, ""}, // a limit that small leaves nothing to fit
	} {
		got, warn := connectionCap(tc.want, tc.limit)
		if got != tc.got || (tc.warn == "") != (warn == "") || !strings.Contains(warn, tc.warn) {
			t.Errorf("connectionCap(%d, %d) = %d, %q; want %d, %q", tc.want, tc.limit, got, warn, tc.got, tc.warn)
		}
	}
}

func TestToolFormatNamed(t *testing.T) {
	for src, want := range map[string]string{
		"":                                    "none (no chat template)",
		"{{ '<tool_call>' }}":                 "hermes",
		"{{ messages[0]['content'] }}":        "generic (format not recognised from the chat template)",
		"{{ '[TOOL_CALLS]' + tools|tojson }}": "mistral",
		"{% for m in messages %}{% if m.tool_calls %}<<CALL>>{{ m.tool_calls[0].function|tojson }}{% else %}{{ m.content }}{% endif %}{% endfor %}": `learned from the chat template (calls start with "<<CALL>>")`,
	} {
		if got := toolFormat(src); got != want {
			t.Errorf("toolFormat(%q) = %q, want %q", src, got, want)
		}
	}
}
