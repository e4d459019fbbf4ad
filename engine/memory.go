package engine

import (
	"fmt"
	"math"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/model"
)

// MemoryPlan is how an engine with a given Config lays out its KV cache:
// what New allocates, and what Plan reports without loading the model.
type MemoryPlan struct {
	Model string `json:"model"` // file base name or Config.Name
	Path  string `json:"path"`
	Arch  string `json:"arch"`

	WeightBytes int64 `json:"weight_bytes"` // tensor data of the file (memory-mapped, not copied)
	// PackedBytes are the backend's repacked copies of weights
	// (kernels.WeightPacker), made on first use, besides WeightBytes.
	PackedBytes int64 `json:"packed_bytes"`

	KVType          string `json:"kv_type"`            // "f16" or "f32"
	KVBytesPerToken int    `json:"kv_bytes_per_token"` // all layers, K and V
	BlockSize       int    `json:"block_size"`         // tokens per block
	BlockBytes      int64  `json:"block_bytes"`        // KVBytesPerToken * BlockSize

	// Budget is the KV memory asked for: Config.KVMemory, or this model's
	// share of the process budget: KVMemoryFraction of the memory free
	// after every model's weights, packed copies and explicit KV, split
	// evenly over the Sharing models sized that way (see ProcessPlan).
	Budget    int64   `json:"budget_bytes"`
	Fraction  float64 `json:"fraction,omitempty"`  // when sized from available memory
	Available int64   `json:"available,omitempty"` // memory available to the process, when sized from it
	Free      int64   `json:"free,omitempty"`      // Available less the process's weights, copies and explicit KV
	Sharing   int     `json:"sharing,omitempty"`   // models splitting Free, when sized from it

	Blocks      int   `json:"blocks"`       // blocks in the pool
	KVBytes     int64 `json:"kv_bytes"`     // Blocks * BlockBytes: what is allocated
	TotalTokens int   `json:"total_tokens"` // Blocks * BlockSize

	ContextLength       int `json:"context_length"` // max tokens per request (see RequestedContextLength)
	MaxNumSeqs          int `json:"max_num_seqs"`
	MaxNumBatchedTokens int `json:"max_num_batched_tokens"`

	// RequestedContextLength is the context asked for (Config.ContextLength,
	// else the model's). ContextLength is lower, TotalTokens+1, when the
	// pool holds fewer tokens for one sequence (the last sampled token
	// needs no KV slot).
	RequestedContextLength int `json:"requested_context_length"`

	// Fits says how many sequences of each length the pool holds at once.
	Fits []SeqFit `json:"fits"`
	// Notes explain adjustments (fallbacks, caps, floors).
	Notes []string `json:"notes,omitempty"`
}

// SeqFit is the number of sequences of Length tokens that fit in the pool
// at once.
type SeqFit struct {
	Length    int `json:"length"`
	Sequences int `json:"sequences"`
}

// Fit returns how many sequences of length tokens fit in the pool at once
// (each needs ceil(length/BlockSize) blocks).
func (p *MemoryPlan) Fit(length int) int {
	if length <= 0 || p.BlockSize <= 0 {
		return 0
	}
	return p.Blocks / ((length + p.BlockSize - 1) / p.BlockSize)
}

// Plan computes the KV memory plan of cfg without building an engine, as
// the only model of the process (PlanGroup with one Config): it opens the
// GGUF file and the backend to read the model's shape and the weight
// copies the backend would make, but allocates neither activations nor
// the cache. lengths are the sequence lengths to report in Fits; none
// means context/8, context/4, context/2 and context.
func Plan(cfg Config, lengths ...int) (*MemoryPlan, error) {
	pp, err := PlanGroup([]Config{cfg}, lengths...)
	if err != nil {
		return nil, err
	}
	return pp.Models[0], nil
}

// openModel opens the GGUF file of cfg (defaults filled): ModelFiles as
// one split model when set, else ModelPath, which must then not be one
// part of a split model.
func openModel(cfg *Config) (*gguf.File, error) {
	paths := cfg.ModelFiles
	if len(paths) == 0 {
		paths = []string{cfg.ModelPath}
	}
	f, err := gguf.OpenSplit(paths)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return f, nil
}

// basePlan starts the memory plan of cfg (defaults filled) for a model of
// config mc in f: shape, weights, KV per token and block; sizePlan then
// gives it its KV budget. It sets ContextLength in cfg when it was left at
// zero.
func basePlan(cfg *Config, f *gguf.File, mc *model.Config) (*MemoryPlan, error) {
	p := &MemoryPlan{
		Model:               cfg.Name,
		Path:                cfg.ModelPath,
		Arch:                mc.Arch,
		KVType:              cfg.KVType,
		KVBytesPerToken:     mc.KVBytesPerToken(cfg.kvQuant()),
		BlockSize:           cfg.BlockSize,
		MaxNumSeqs:          cfg.MaxNumSeqs,
		MaxNumBatchedTokens: cfg.MaxNumBatchedTokens,
	}
	for i := range f.Tensors {
		p.WeightBytes += int64(f.Tensors[i].Size)
	}
	if cfg.ContextLength == 0 {
		cfg.ContextLength = mc.ContextLength
		if cfg.ContextLength <= 0 {
			cfg.ContextLength = 2048
			p.Notes = append(p.Notes, "the model declares no context length; using 2048")
		}
	} else if mc.ContextLength > 0 && cfg.ContextLength > mc.ContextLength {
		p.Notes = append(p.Notes, fmt.Sprintf("context length %d exceeds the model's trained %d", cfg.ContextLength, mc.ContextLength))
	}
	p.ContextLength = cfg.ContextLength
	if p.KVBytesPerToken <= 0 {
		return nil, fmt.Errorf("engine: cannot size the KV cache: %s model has %d bytes of KV per token", mc.Arch, p.KVBytesPerToken)
	}
	p.BlockBytes = int64(p.KVBytesPerToken) * int64(p.BlockSize)
	return p, nil
}

// sizePlan turns p.Budget, the KV memory given to the model (Config.KVMemory
// when explicit, else its share of free memory), into blocks. For a share
// (explicit false), blocks beyond every sequence at full context are not
// taken, and the pool is raised to one step's tokens if room (the most the
// model may take) allows.
func (p *MemoryPlan) sizePlan(cfg *Config, explicit bool, room int64) error {
	blocks := p.Budget / p.BlockBytes
	if blocks < 1 {
		if explicit {
			return fmt.Errorf("engine: KV memory of %s holds no block: one block of %d tokens takes %s (%d bytes per token, %s cache)",
				FormatBytes(p.Budget), p.BlockSize, FormatBytes(p.BlockBytes), p.KVBytesPerToken, cfg.KVType)
		}
		return fmt.Errorf("engine: %s: its KV share of %s (%.0f%% of the memory free after weights, split over %d models) holds no block: one block of %d tokens takes %s",
			p.Model, FormatBytes(p.Budget), 100*p.Fraction, p.Sharing, p.BlockSize, FormatBytes(p.BlockBytes))
	}
	if !explicit {
		// More blocks than every sequence slot at full context could use
		// only serve the prefix cache; don't take half the machine for it.
		perSeq := int64((cfg.ContextLength + p.BlockSize - 1) / p.BlockSize)
		if limit := int64(cfg.MaxNumSeqs) * perSeq; blocks > limit {
			blocks = limit
			p.Notes = append(p.Notes, fmt.Sprintf("capped at %d blocks: %d sequences of the full context length %d",
				limit, cfg.MaxNumSeqs, cfg.ContextLength))
		}
		// At least one step's worth of tokens, if memory allows.
		floor := int64((cfg.MaxNumBatchedTokens + p.BlockSize - 1) / p.BlockSize)
		if blocks < floor && floor*p.BlockBytes <= room {
			blocks = floor
			p.Notes = append(p.Notes, fmt.Sprintf("raised to %d blocks to hold one step of %d tokens", floor, cfg.MaxNumBatchedTokens))
		}
	}
	// Slots are int32 ids: the pool can never exceed 2^31-1 of them.
	if maxBlocks := int64(math.MaxInt32 / p.BlockSize); blocks > maxBlocks {
		blocks = maxBlocks
		p.Notes = append(p.Notes, fmt.Sprintf("capped at %d blocks (2^31 token slots)", maxBlocks))
	}
	p.Blocks = int(blocks)
	p.KVBytes = blocks * p.BlockBytes
	p.TotalTokens = p.Blocks * p.BlockSize
	p.limitContext(cfg)
	return nil
}

// limitContext lowers the context length of cfg and p to the tokens the
// pool can hold for one sequence, when that is fewer: its TotalTokens
// slots plus the last sampled token, which needs none. The effective
// context is what one request can really use, so Info().ContextLength
// (max_model_len) never promises more than a request gets.
// RequestedContextLength keeps what was asked for.
func (p *MemoryPlan) limitContext(cfg *Config) {
	p.RequestedContextLength = cfg.ContextLength
	perSeq := p.TotalTokens + 1
	if perSeq >= cfg.ContextLength {
		return
	}
	p.Notes = append(p.Notes, fmt.Sprintf(
		"context length lowered from %d to %d: the KV pool holds %d tokens (%d blocks of %d) and the last needs no slot; give it more memory for the full context",
		cfg.ContextLength, perSeq, p.TotalTokens, p.Blocks, p.BlockSize))
	cfg.ContextLength = perSeq
	p.ContextLength = perSeq
}

func (p *MemoryPlan) setFits(lengths []int) {
	if len(lengths) == 0 {
		c := p.ContextLength
		lengths = []int{max(c/8, 1), max(c/4, 1), max(c/2, 1), c}
	}
	p.Fits = p.Fits[:0]
	for _, l := range lengths {
		p.Fits = append(p.Fits, SeqFit{Length: l, Sequences: p.Fit(l)})
	}
}
