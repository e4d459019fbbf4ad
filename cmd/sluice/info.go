package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/quant"
	"github.com/sluice-llm/sluice/synth"
	"github.com/sluice-llm/sluice/tokenizer/template"
	"github.com/sluice-llm/sluice/toolcall"
)

func init() {
	register(&command{
		name:    "info",
		summary: "describe a GGUF model: architecture, tensors, tokenizer, memory",
		run:     runInfo,
	})
}

// modelInfo is what `sluice info` reports; its JSON form is for machines.
type modelInfo struct {
	Path          string         `json:"path"`
	FileBytes     int64          `json:"file_bytes"`
	GGUFVersion   uint32         `json:"gguf_version"`
	Architecture  string         `json:"architecture"`
	Name          string         `json:"name,omitempty"`
	Hyper         map[string]any `json:"hyperparameters"`
	Params        uint64         `json:"parameters"`
	Tensors       int            `json:"tensors"`
	TypeMix       []typeShare    `json:"tensor_types"`
	Tokenizer     tokenizerInfo  `json:"tokenizer"`
	ChatTemplate  bool           `json:"chat_template"`
	WeightBytes   uint64         `json:"weight_bytes"`
	ContextLength uint64         `json:"context_length,omitempty"`
	KVPerToken    uint64         `json:"kv_bytes_per_token,omitempty"`
	KVForContext  uint64         `json:"kv_bytes_for_context,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
	// ToolCalls is the tool-call format detected from the chat
	// template ("generic" when not recognised); Reasoning: the template
	// marks reasoning with <think>.
	ToolCalls string `json:"tool_call_format,omitempty"`
	Reasoning bool   `json:"reasoning,omitempty"`
}

type typeShare struct {
	Type    string `json:"type"`
	Tensors int    `json:"tensors"`
	Params  uint64 `json:"parameters"`
	Bytes   uint64 `json:"bytes"`
}

type tokenizerInfo struct {
	Model   string         `json:"model,omitempty"`
	Pre     string         `json:"pre,omitempty"`
	Vocab   int            `json:"vocab_size"`
	Special []specialToken `json:"special_tokens,omitempty"`
}

type specialToken struct {
	Role string `json:"role"`
	ID   uint32 `json:"id"`
	Text string `json:"text"`
}

func runInfo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("info", stderr)
	asJSON := fs.Bool("json", false, "print machine-readable JSON")
	offline := fs.Bool("offline", false, "never download: the model must be a local file or already stored")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sluice info [--json] MODEL.gguf")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want exactly one model file, got %d arguments", errUsage, len(pos))
	}
	f, path, err := openModel(pos[0], *offline, stderr)
	if err != nil {
		return err
	}
	defer f.Close()
	info := describe(path, f)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	printInfo(stdout, info)
	return nil
}

// openModel resolves a model reference (a path, OWNER/REPO:QUANT, hf://,
// https://) to local files, pulling it into the store on first use unless
// offline (progress goes to progress), and opens it; a split model opens as
// one File. It returns the path of the (first) file too.
func openModel(ref string, offline bool, progress io.Writer) (*gguf.File, string, error) {
	paths, err := resolveModelPaths(ref, offline, progress)
	if err != nil {
		return nil, "", err
	}
	f, err := gguf.OpenSplit(paths)
	if err != nil {
		return nil, "", err
	}
	return f, paths[0], nil
}

// resolveModel resolves a model reference like openModel but only returns
// the local path (the first part of a split model).
func resolveModel(ref string, offline bool, progress io.Writer) (string, error) {
	paths, err := resolveModelPaths(ref, offline, progress)
	if err != nil {
		return "", err
	}
	return paths[0], nil
}

// resolveModelPaths maps a reference to its local files: a path as is, a
// dummy:SHAPE:TYPE model generated once into the cache, anything else
// through the store.
func resolveModelPaths(ref string, offline bool, progress io.Writer) ([]string, error) {
	if _, err := os.Stat(ref); err == nil {
		return []string{ref}, nil
	}
	if _, ok, err := synth.ParseRef(ref); ok {
		if err != nil {
			return nil, err
		}
		path, err := synth.CachedProgress(context.Background(), ref, "", progress)
		if err != nil {
			return nil, err
		}
		return []string{path}, nil
	}
	return resolveModelRef(context.Background(), ref, offline, progress)
}

// describe gathers everything `sluice info` prints from the parsed file.
func describe(path string, f *gguf.File) *modelInfo {
	arch := f.Arch()
	info := &modelInfo{
		Path:         path,
		FileBytes:    f.Size(),
		GGUFVersion:  f.Version,
		Architecture: arch,
		Hyper:        map[string]any{},
		Tensors:      len(f.Tensors),
	}
	info.Name, _ = f.String("general.name")
	for _, kv := range f.KVs {
		if arch != "" && strings.HasPrefix(kv.Key, arch+".") {
			info.Hyper[strings.TrimPrefix(kv.Key, arch+".")] = kv.Value.Any()
		}
	}
	mix := map[quant.Type]*typeShare{}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		n := ti.Elems()
		info.Params += n
		info.WeightBytes += ti.Size
		s := mix[ti.Type]
		if s == nil {
			s = &typeShare{Type: ti.Type.String()}
			mix[ti.Type] = s
		}
		s.Tensors++
		s.Params += n
		s.Bytes += ti.Size
	}
	for _, s := range mix {
		info.TypeMix = append(info.TypeMix, *s)
	}
	sort.Slice(info.TypeMix, func(i, j int) bool { return info.TypeMix[i].Bytes > info.TypeMix[j].Bytes })
	for _, s := range info.TypeMix {
		if t, ok := quant.ParseType(s.Type); ok {
			if ti, _ := t.Info(); !ti.Dequant {
				info.Warnings = append(info.Warnings, fmt.Sprintf("tensor type %s is not supported for inference", s.Type))
			}
		}
	}

	info.Tokenizer.Model, _ = f.String("tokenizer.ggml.model")
	info.Tokenizer.Pre, _ = f.String("tokenizer.ggml.pre")
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	info.Tokenizer.Vocab = len(toks)
	for _, role := range []string{"bos", "eos", "eot", "eom", "unknown", "padding", "sep", "cls", "mask"} {
		id, ok := f.Uint32("tokenizer.ggml." + role + "_token_id")
		if !ok {
			continue
		}
		text := ""
		if int(id) < len(toks) {
			text = toks[id]
		}
		info.Tokenizer.Special = append(info.Tokenizer.Special, specialToken{Role: role, ID: id, Text: text})
	}
	src, ok := f.String("tokenizer.chat_template")
	info.ChatTemplate = ok
	if ok {
		info.ToolCalls = toolFormat(src)
		info.Reasoning = toolcall.Thinks(src)
	}

	// KV cache per token: K and V, per layer, KV heads × head dim, in F16.
	layers, _ := f.Uint64(arch + ".block_count")
	heads, _ := f.Uint64(arch + ".attention.head_count")
	kvHeads, ok := f.Uint64(arch + ".attention.head_count_kv")
	if !ok {
		kvHeads = heads
	}
	embd, _ := f.Uint64(arch + ".embedding_length")
	kDim, okK := f.Uint64(arch + ".attention.key_length")
	vDim, okV := f.Uint64(arch + ".attention.value_length")
	if heads > 0 {
		if !okK {
			kDim = embd / heads
		}
		if !okV {
			vDim = embd / heads
		}
	}
	info.KVPerToken = layers * kvHeads * (kDim + vDim) * 2
	info.ContextLength, _ = f.Uint64(arch + ".context_length")
	info.KVForContext = info.KVPerToken * info.ContextLength
	return info
}

func printInfo(w io.Writer, m *modelInfo) {
	fmt.Fprintf(w, "file:          %s (%s, GGUF v%d)\n", m.Path, engine.FormatBytes(m.FileBytes), m.GGUFVersion)
	if m.Name != "" {
		fmt.Fprintf(w, "name:          %s\n", m.Name)
	}
	fmt.Fprintf(w, "architecture:  %s\n", orNone(m.Architecture))
	fmt.Fprintf(w, "parameters:    %s (%d tensors)\n", humanCount(m.Params), m.Tensors)
	keys := make([]string, 0, len(m.Hyper))
	for k := range m.Hyper {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		fmt.Fprintln(w, "hyperparameters:")
		for _, k := range keys {
			fmt.Fprintf(w, "  %-40s %v\n", k, short(m.Hyper[k]))
		}
	}
	fmt.Fprintln(w, "tensor types:")
	for _, s := range m.TypeMix {
		fmt.Fprintf(w, "  %-8s %4d tensors  %10s params  %10s\n", s.Type, s.Tensors, humanCount(s.Params), engine.FormatBytes(int64(s.Bytes)))
	}
	fmt.Fprintf(w, "tokenizer:     %s", orNone(m.Tokenizer.Model))
	if m.Tokenizer.Pre != "" {
		fmt.Fprintf(w, " (pre: %s)", m.Tokenizer.Pre)
	}
	fmt.Fprintf(w, ", %d tokens\n", m.Tokenizer.Vocab)
	for _, s := range m.Tokenizer.Special {
		fmt.Fprintf(w, "  %-8s %6d  %q\n", s.Role, s.ID, s.Text)
	}
	fmt.Fprintf(w, "chat template: %s\n", yesNo(m.ChatTemplate))
	if m.ChatTemplate {
		fmt.Fprintf(w, "tool calls:    %s; reasoning in <think>: %s\n", m.ToolCalls, yesNo(m.Reasoning))
	}
	fmt.Fprintf(w, "memory:        weights %s", engine.FormatBytes(int64(m.WeightBytes)))
	if m.KVPerToken > 0 {
		fmt.Fprintf(w, ", KV cache (F16) %s per token", engine.FormatBytes(int64(m.KVPerToken)))
		if m.ContextLength > 0 {
			fmt.Fprintf(w, ", %s for the full context of %d tokens (total %s)", engine.FormatBytes(int64(m.KVForContext)), m.ContextLength, engine.FormatBytes(int64(m.WeightBytes+m.KVForContext)))
		}
	}
	fmt.Fprintln(w)
	for _, warn := range m.Warnings {
		fmt.Fprintf(w, "warning:       %s\n", warn)
	}
}

func short(v any) string {
	if a, ok := v.([]any); ok && len(a) > 8 {
		return fmt.Sprintf("%v … (%d values)", a[:8], len(a))
	}
	return fmt.Sprint(v)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// toolFormat names the tool-call format a chat template writes, saying
// when it was not recognised.
func toolFormat(src string) string {
	if src == "" {
		return "none (no chat template)"
	}
	f, known := toolcall.Detect(src)
	if known {
		return f.Name
	}
	if t, err := template.Parse(src); err == nil {
		if lf, ok := toolcall.Learn(t, "", ""); ok {
			return fmt.Sprintf("learned from the chat template (calls start with %q)", lf.Start)
		}
	}
	return f.Name + " (format not recognised from the chat template)"
}
