package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/kernels"
	_ "github.com/sluice-llm/sluice/kernels/cpu" // registers the "cpu" backend
	"github.com/sluice-llm/sluice/model"
	"github.com/sluice-llm/sluice/sample"
	"github.com/sluice-llm/sluice/tokenizer"
	"github.com/sluice-llm/sluice/tokenizer/template"
)

func init() {
	register(&command{
		name:    "run",
		summary: "generate text from a prompt and stream it to stdout",
		run:     runRun,
	})
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runSignals returns the context that Ctrl-C (SIGINT) or SIGTERM ends:
// generation stops and run exits with status 130 (tests replace it).
var runSignals = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// runOptions are the flags of `sluice run`.
type runOptions struct {
	model, prompt, promptFile, system, backend string
	maxTokens, ctx, threads, topK, lastN       int
	temp, topP, minP, repeat, freq, presence   float64
	seed                                       int64
	chat, quiet, offline, threadsForce         bool
	stops                                      stringList
}

func runFlags(fs *flag.FlagSet, o *runOptions) {
	fs.StringVar(&o.model, "m", "", "model `file` (GGUF) (required)")
	fs.StringVar(&o.prompt, "p", "", "prompt `text` (default: the positional arguments, or stdin)")
	fs.StringVar(&o.promptFile, "f", "", "read the prompt from `file` ('-' for stdin)")
	fs.BoolVar(&o.chat, "chat", false, "wrap the prompt as a user message in the model's chat template")
	fs.StringVar(&o.system, "system", "", "system message (with --chat)")
	fs.IntVar(&o.maxTokens, "n", 256, "maximum tokens to generate")
	fs.IntVar(&o.ctx, "c", 0, "context size in tokens (0: the model's, at most 4096, and at least the prompt plus -n)")
	fs.IntVar(&o.threads, "t", 0, "CPU threads (0: every usable CPU; more than that is capped unless --threads-force)")
	fs.StringVar(&o.backend, "backend", "cpu", "compute backend")
	fs.Float64Var(&o.temp, "temp", 0.8, "sampling temperature (0: greedy)")
	fs.IntVar(&o.topK, "top-k", 40, "top-k sampling (0: off)")
	fs.Float64Var(&o.topP, "top-p", 0.95, "top-p (nucleus) sampling (1: off)")
	fs.Float64Var(&o.minP, "min-p", 0.05, "min-p sampling (0: off)")
	fs.Float64Var(&o.repeat, "repeat-penalty", 1.0, "repetition penalty (1: off)")
	fs.IntVar(&o.lastN, "repeat-last-n", 64, "tokens the repetition penalty looks back over (-1: all)")
	fs.Float64Var(&o.freq, "frequency-penalty", 0, "frequency penalty, -2..2")
	fs.Float64Var(&o.presence, "presence-penalty", 0, "presence penalty, -2..2")
	fs.Int64Var(&o.seed, "seed", -1, "random seed (-1: random)")
	fs.Var(&o.stops, "stop", "stop sequence (repeatable)")
	fs.BoolVar(&o.quiet, "q", false, "do not print timings on stderr")
	fs.BoolVar(&o.offline, "offline", false, "never download: the model must be a local file or already stored")
	fs.BoolVar(&o.threadsForce, "threads-force", false, "run -t threads as given even beyond the usable CPUs (the affinity mask and cgroup CPU quota)")
}

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	var o runOptions
	runFlags(fs, &o)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sluice run -m MODEL.gguf [-p PROMPT | PROMPT... | < prompt.txt] [flags]")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if o.model == "" {
		return fmt.Errorf("%w: -m MODEL is required", errUsage)
	}
	if err := o.validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	prompt, err := readPrompt(&o, pos)
	if err != nil {
		return err
	}
	params := sample.DefaultParams()
	params.Temperature = float32(o.temp)
	params.TopK = o.topK
	params.TopP = float32(o.topP)
	params.MinP = float32(o.minP)
	params.RepetitionPenalty = float32(o.repeat)
	params.PenaltyLastN = o.lastN
	params.FrequencyPenalty = float32(o.freq)
	params.PresencePenalty = float32(o.presence)
	params.Stop = o.stops
	if o.seed >= 0 {
		params.Seed, params.HasSeed = uint64(o.seed), true
	}
	if err := params.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	f, _, err := openModel(o.model, o.offline, stderr)
	if err != nil {
		return err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return err
	}
	threads, note := engine.ResolveThreads(o.threads, o.threadsForce)
	if note != "" {
		fmt.Fprintf(stderr, "sluice run: %s\n", note)
	}
	be, err := kernels.Open(o.backend, kernels.Options{Threads: threads})
	if err != nil {
		return err
	}
	defer be.Close()
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		return err
	}
	defer m.Close()

	ids, err := promptTokens(f, tok, prompt, &o)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("the prompt is empty")
	}
	ctxLen, err := contextSize(o.ctx, m.Config().ContextLength, len(ids), o.maxTokens)
	if err != nil {
		return err
	}
	if err := checkRunMemory(f, m.Config(), ctxLen); err != nil {
		return err
	}
	sess, err := model.NewSession(m, 1, ctxLen, model.SessionOptions{})
	if err != nil {
		return err
	}
	defer sess.Close()
	smp, err := sample.New(params, m.Config().VocabSize)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	for id := int32(0); id < int32(tok.VocabSize()); id++ {
		if tok.IsEOG(id) {
			smp.AddStopTokens(id)
		}
	}
	smp.AcceptPrompt(ids)

	ctx, stop := runSignals()
	defer stop()
	dec := tok.NewStreamDecoder()
	stopper := sample.NewStopMatcher(o.stops)
	var (
		start       = time.Now()
		prefillDone time.Time
		generated   int
		sampleErr   error
	)
	next := func(logits []float32) (int32, bool) {
		if prefillDone.IsZero() {
			prefillDone = time.Now()
		}
		r, err := smp.Sample(logits)
		if err != nil {
			sampleErr = err
			return 0, true
		}
		smp.Accept(r.Token)
		generated++
		if r.Stop {
			return r.Token, true
		}
		text, stopped := stopper.Push(dec.Add(r.Token))
		io.WriteString(stdout, text)
		return r.Token, stopped || ctx.Err() != nil
	}
	// Generation ends at the context size at the latest.
	if maxNew := min(o.maxTokens, ctxLen-len(ids)); maxNew > 0 {
		if _, err := sess.Generate(0, ids, maxNew, 512, next); err != nil {
			return err
		}
	}
	if sampleErr != nil {
		return sampleErr
	}
	if ctx.Err() != nil {
		io.WriteString(stdout, "\n")
		return errInterrupted
	}
	if !stopper.Stopped() {
		text, _ := stopper.Push(dec.Flush())
		io.WriteString(stdout, text+stopper.Flush())
	}
	io.WriteString(stdout, "\n")
	end := time.Now()
	if !o.quiet && !prefillDone.IsZero() {
		pt := prefillDone.Sub(start)
		gt := end.Sub(prefillDone)
		fmt.Fprintf(stderr, "prompt: %d tokens in %s (%.1f tokens/s); generation: %d tokens in %s (%.1f tokens/s)\n",
			len(ids), pt.Round(time.Millisecond), float64(len(ids))/pt.Seconds(),
			generated, gt.Round(time.Millisecond), perSecond(generated-1, gt))
	}
	return nil
}

// perSecond is n/d, counting the decode steps after the first token (which
// came from the prefill).
func perSecond(n int, d time.Duration) float64 {
	if n <= 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// readPrompt takes the prompt from -p, -f, the positional arguments or
// stdin, in that order.
func readPrompt(o *runOptions, pos []string) (string, error) {
	switch {
	case o.prompt != "" && (len(pos) > 0 || o.promptFile != ""):
		return "", fmt.Errorf("%w: give the prompt once: -p, -f or positional arguments", errUsage)
	case o.prompt != "":
		return o.prompt, nil
	case o.promptFile != "" && o.promptFile != "-":
		b, err := os.ReadFile(o.promptFile)
		if err != nil {
			return "", fmt.Errorf("prompt file: %w", err)
		}
		return string(b), nil
	case len(pos) > 0:
		return strings.Join(pos, " "), nil
	}
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return "", fmt.Errorf("reading the prompt from stdin: %w", err)
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// promptTokens tokenizes the prompt, through the chat template with --chat.
func promptTokens(f *gguf.File, tok *tokenizer.Tokenizer, prompt string, o *runOptions) ([]int32, error) {
	if !o.chat {
		return tok.Encode(prompt, true, false), nil
	}
	src, ok := f.String("tokenizer.chat_template")
	if !ok {
		return nil, errors.New("--chat: the model has no chat template (tokenizer.chat_template)")
	}
	tmpl, err := template.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("the model's chat template: %w", err)
	}
	var msgs []any
	if o.system != "" {
		msgs = append(msgs, chatMessage("system", o.system))
	}
	msgs = append(msgs, chatMessage("user", prompt))
	bos, eos := "", ""
	if id := tok.BOS(); id >= 0 {
		bos = tok.Token(id)
	}
	if id := tok.EOS(); id >= 0 {
		eos = tok.Token(id)
	}
	text, err := tmpl.RenderChat(msgs, template.ChatOptions{BOS: bos, EOS: eos, AddGenerationPrompt: true})
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	// Templates usually write the BOS text themselves; add it only if not.
	addSpecial := bos == "" || !strings.HasPrefix(text, bos)
	return tok.Encode(text, addSpecial, true), nil
}

func chatMessage(role, content string) *template.Map {
	m := template.NewMap()
	m.Set("role", role)
	m.Set("content", content)
	return m
}

// checkRunMemory refuses a run whose weights and KV cache of ctxLen tokens
// cannot fit in the available memory, before the cache is allocated.
func checkRunMemory(f *gguf.File, mc model.Config, ctxLen int) error {
	mem := engine.AvailableMemory()
	if !mem.Known {
		return nil
	}
	kv := int64(mc.KVBytesPerToken(model.DefaultKVType)) * int64(ctxLen)
	weights := f.Size()
	if weights+kv > mem.Available {
		return fmt.Errorf("a context of %d tokens needs %s of KV cache besides %s of weights, but %s is available (%s); lower -c or -n",
			ctxLen, engine.FormatBytes(kv), engine.FormatBytes(weights), engine.FormatBytes(mem.Available), mem.Source)
	}
	return nil
}

// contextSize picks the KV capacity of a run.
func contextSize(flagCtx, modelCtx, promptLen, maxNew int) (int, error) {
	need := promptLen + maxNew
	if flagCtx > 0 {
		if promptLen >= flagCtx {
			return 0, fmt.Errorf("the prompt has %d tokens, more than the context size of %d (-c)", promptLen, flagCtx)
		}
		return flagCtx, nil
	}
	if modelCtx > 0 && promptLen >= modelCtx {
		return 0, fmt.Errorf("the prompt has %d tokens, more than the model's context length of %d", promptLen, modelCtx)
	}
	c := 4096
	if modelCtx > 0 && modelCtx < c {
		c = modelCtx
	}
	if need > c {
		c = need
		if modelCtx > 0 && c > modelCtx {
			c = modelCtx
		}
	}
	return c, nil
}
