package engine

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice/internal/term"
	"github.com/sluice-llm/sluice/quant"
)

// Config configures an Engine. Zero values mean the documented defaults.
type Config struct {
	ModelPath string // GGUF file (required unless ModelFiles is set)
	// ModelFiles are the parts of a split GGUF model
	// (NAME-00001-of-0000N.gguf, ...), in order, opened together as one
	// model. When set, ModelPath may be empty; if given it must be the
	// first part. Defaults fill ModelPath with the first part.
	ModelFiles []string
	Name       string // name clients use for the model; default: file base name
	Backend    string // kernels backend, default "cpu"
	// Threads is the CPU worker threads; 0 means every usable CPU
	// (UsableCPUs: the affinity mask and cgroup CPU quota). More than
	// that is capped to it (with a note in the MemoryPlan) unless
	// ThreadsForce is set.
	Threads      int
	ThreadsForce bool

	// KV memory: KVMemory bytes if > 0, else KVMemoryFraction (default
	// 0.5) of the memory available to the process after the weights and
	// the backend's repacked weight copies, shared with the other models
	// of a NewGroup (see ProcessPlan).
	KVMemory         int64
	KVMemoryFraction float64
	KVType           string // "f16" (default) or "f32"
	BlockSize        int    // tokens per KV block, default 16
	// ContextLength is the max tokens per request; default the model's
	// context length. The engine lowers it to what the KV pool holds for
	// one sequence when that is less (MemoryPlan.Notes says so).
	ContextLength int

	MaxNumSeqs          int  // sequences per step, default 64
	MaxNumBatchedTokens int  // token budget per step, default 2048
	MaxQueue            int  // waiting requests before Submit fails with ErrOverloaded, default 1024
	DisablePrefixCache  bool // prefix caching is on by default

	// Speculative decoding. Spec picks the proposer: "" (off), "ngram"
	// (prompt lookup over each request's own tokens) or "draft" (the
	// smaller model in DraftModelPath, whose vocabulary must be the
	// target's, token for token). Greedy outputs are the same as without
	// speculation; sampled ones are distributed the same.
	Spec           string
	DraftModelPath string
	// SpecTokens is the number of tokens drafted per request and step;
	// 0 adapts it to each request's recent acceptance (1..8).
	SpecTokens int
	// SpecMaxBatch turns speculation off for a step whose batch has at
	// least this many decoding sequences (drafts stop paying when the
	// target is busy anyway). Default DefaultSpecMaxBatch. With "draft",
	// min(MaxNumSeqs, SpecMaxBatch) requests hold a draft slot at once.
	SpecMaxBatch int
}

// Defaults for Config fields left at zero.
const (
	DefaultKVMemoryFraction    = 0.5
	DefaultBlockSize           = 16
	DefaultMaxNumSeqs          = 64
	DefaultMaxNumBatchedTokens = 2048
	DefaultMaxQueue            = 1024
	// FallbackAvailableMemory is assumed where the available memory cannot
	// be read (systems without /proc/meminfo).
	FallbackAvailableMemory = 2 << 30
)

// splitSuffix is the part suffix of split GGUF names (gguf-split's
// NAME-00001-of-00003.gguf).
var splitSuffix = regexp.MustCompile(`-[0-9]{5}-of-[0-9]{5}$`)

// ModelName is the name a model file is known by when none is given: its
// base name without ".gguf" and without a split part's suffix
// ("/m/llama-00001-of-00002.gguf" → "llama").
func ModelName(path string) string {
	return splitSuffix.ReplaceAllString(strings.TrimSuffix(filepath.Base(path), ".gguf"), "")
}

// fill applies defaults and checks the configuration's ranges.
func (c *Config) fill() error {
	if len(c.ModelFiles) > 0 {
		for i, p := range c.ModelFiles {
			if p == "" {
				return fmt.Errorf("engine: Config.ModelFiles[%d] is empty", i)
			}
		}
		if c.ModelPath == "" {
			c.ModelPath = c.ModelFiles[0]
		} else if c.ModelPath != c.ModelFiles[0] {
			return fmt.Errorf("engine: Config.ModelPath %q is not the first of ModelFiles (%q); set one or make them agree",
				c.ModelPath, c.ModelFiles[0])
		}
		c.ModelFiles = append([]string(nil), c.ModelFiles...)
	}
	if c.ModelPath == "" {
		return fmt.Errorf("engine: Config.ModelPath (or ModelFiles) is required")
	}
	if c.Name == "" {
		c.Name = ModelName(c.ModelPath)
	}
	if c.Backend == "" {
		c.Backend = "cpu"
	}
	if c.KVType == "" {
		c.KVType = "f16"
	}
	c.KVType = strings.ToLower(c.KVType)
	if c.KVType != "f16" && c.KVType != "f32" {
		return fmt.Errorf("engine: KVType %q: want \"f16\" or \"f32\"", c.KVType)
	}
	if c.KVMemoryFraction == 0 {
		c.KVMemoryFraction = DefaultKVMemoryFraction
	}
	if c.KVMemoryFraction < 0 || c.KVMemoryFraction > 1 || math.IsNaN(c.KVMemoryFraction) {
		return fmt.Errorf("engine: KVMemoryFraction %g: want a fraction in (0, 1]", c.KVMemoryFraction)
	}
	if c.KVMemory < 0 {
		return fmt.Errorf("engine: KVMemory %d: must not be negative", c.KVMemory)
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.BlockSize < 1 || c.BlockSize > 1024 {
		return fmt.Errorf("engine: BlockSize %d: want 1..1024 tokens", c.BlockSize)
	}
	if c.ContextLength < 0 {
		return fmt.Errorf("engine: ContextLength %d: must not be negative", c.ContextLength)
	}
	if c.MaxNumSeqs == 0 {
		c.MaxNumSeqs = DefaultMaxNumSeqs
	}
	if c.MaxNumBatchedTokens == 0 {
		c.MaxNumBatchedTokens = DefaultMaxNumBatchedTokens
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	switch c.Spec {
	case "", SpecNGram, SpecDraft:
	default:
		return fmt.Errorf("engine: Spec %q: want \"\" (off), %q or %q", c.Spec, SpecNGram, SpecDraft)
	}
	if c.Spec == SpecDraft && c.DraftModelPath == "" {
		return fmt.Errorf("engine: Spec %q needs DraftModelPath, the draft model's GGUF file", SpecDraft)
	}
	if c.SpecTokens < 0 || c.SpecMaxBatch < 0 {
		return fmt.Errorf("engine: SpecTokens %d, SpecMaxBatch %d: must not be negative", c.SpecTokens, c.SpecMaxBatch)
	}
	if c.SpecMaxBatch == 0 {
		c.SpecMaxBatch = DefaultSpecMaxBatch
	}
	if c.MaxNumSeqs < 1 || c.MaxNumBatchedTokens < 1 || c.MaxQueue < 1 || c.Threads < 0 {
		return fmt.Errorf("engine: MaxNumSeqs %d, MaxNumBatchedTokens %d, MaxQueue %d, Threads %d: must be positive",
			c.MaxNumSeqs, c.MaxNumBatchedTokens, c.MaxQueue, c.Threads)
	}
	return nil
}

func (c *Config) kvQuant() quant.Type {
	if c.KVType == "f32" {
		return quant.F32
	}
	return quant.F16
}

// ParseBytes parses a memory size: a number with an optional unit, case
// insensitive: binary KiB, MiB, GiB, TiB and their one-letter forms K, M,
// G, T (as in -Xmx4g), or decimal KB, MB, GB, TB; e.g. "512MiB", "4GiB",
// "1.5G", "1073741824".
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit like 512MiB, 4GiB or 1.5G", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
		"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, t[i:])
	}
	b := v * mult
	if b >= math.MaxInt64 || math.IsInf(b, 0) {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(b), nil
}

// FormatBytes renders n bytes with a binary unit ("1.5 GiB"), as every
// command of the project prints sizes.
func FormatBytes(n int64) string { return term.FormatBytes(n) }
