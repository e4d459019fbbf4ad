package engine

import (
	"errors"
	"fmt"
	"math"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/model"
)

// ProcessPlan is the memory plan of every model one process serves, out of
// one budget: the memory available to the process (AvailableMemory: the
// machine's, or its cgroup's limit less usage) must hold every model's
// weights, the backends' repacked weight copies and every KV cache. Models
// with an explicit Config.KVMemory get exactly that; the others split
// KVMemoryFraction of what is left evenly. A plan that cannot fit is
// refused before anything is allocated.
type ProcessPlan struct {
	Available int64  `json:"available"` // memory available to the process
	Source    string `json:"source"`    // what bounds Available
	// Known is false when the available memory could not be read and
	// Available is FallbackAvailableMemory; explicit KV sizes are then
	// not checked against it.
	Known       bool          `json:"known"`
	WeightBytes int64         `json:"weight_bytes"` // all models' tensor data
	PackedBytes int64         `json:"packed_bytes"` // all repacked weight copies
	KVBytes     int64         `json:"kv_bytes"`     // all KV caches, as allocated
	TotalBytes  int64         `json:"total_bytes"`  // the sum of the three
	Models      []*MemoryPlan `json:"models"`
}

// PlanGroup computes the memory plans of cfgs as NewGroup would build them,
// without building engines: it opens each GGUF file, and a one-thread
// backend to learn the weight copies it makes, but allocates neither
// activations nor caches. lengths are as for Plan.
func PlanGroup(cfgs []Config, lengths ...int) (*ProcessPlan, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("engine: no model to plan")
	}
	filled := make([]*Config, len(cfgs))
	plans := make([]*MemoryPlan, len(cfgs))
	mem := AvailableMemory()
	for i := range cfgs {
		cfg := cfgs[i]
		if err := cfg.fill(); err != nil {
			return nil, err
		}
		p, err := planModel(&cfg, &mem)
		if err != nil {
			return nil, err
		}
		filled[i], plans[i] = &cfg, p
	}
	pp, err := sizeGroup(filled, plans, mem)
	if err != nil {
		return nil, err
	}
	for _, p := range plans {
		p.setFits(lengths)
	}
	return pp, nil
}

// planModel is the base plan of one model (defaults filled in cfg), with
// the packed copies its backend would make. A backend with memory of its
// own replaces *mem by it (deviceMemory).
func planModel(cfg *Config, mem *SysMemory) (*MemoryPlan, error) {
	f, err := openModel(cfg)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	be, err := kernels.Open(cfg.Backend, kernels.Options{Threads: 1})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	defer be.Close()
	deviceMemory(be, mem)
	m, err := model.Load(f, be, model.Options{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	mc := m.Config()
	p, err := basePlan(cfg, f, &mc)
	if err != nil {
		return nil, err
	}
	p.PackedBytes = m.PackedBytes()
	return p, nil
}

// deviceMemory replaces *mem by the free memory of be's device when be
// keeps tensors in memory of its own (a GPU backend): the weights and KV
// caches are allocated there. A process whose models use several such
// devices is planned against the last one's.
func deviceMemory(be kernels.Backend, mem *SysMemory) {
	if d, ok := be.(kernels.DeviceMemory); ok {
		free, _ := d.FreeDeviceMemory()
		*mem = SysMemory{Available: free, Source: "free memory of " + d.DeviceName(), Known: true}
	}
}

// sizeGroup gives each base plan its KV budget out of the memory mem that
// the process has, and sizes it (cfgs[i] is plans[i]'s Config, defaults
// filled). It refuses weights, copies and explicit KV sizes that together
// exceed mem.
func sizeGroup(cfgs []*Config, plans []*MemoryPlan, mem SysMemory) (*ProcessPlan, error) {
	pp := &ProcessPlan{Available: mem.Available, Source: mem.Source, Known: mem.Known, Models: plans}
	var explicitKV int64
	shared := 0
	for i, p := range plans {
		pp.WeightBytes = addSat(pp.WeightBytes, p.WeightBytes)
		pp.PackedBytes = addSat(pp.PackedBytes, p.PackedBytes)
		if cfgs[i].KVMemory > 0 {
			explicitKV = addSat(explicitKV, cfgs[i].KVMemory)
		} else {
			shared++
		}
	}
	fixed := addSat(addSat(pp.WeightBytes, pp.PackedBytes), explicitKV)
	if mem.Known && fixed > mem.Available {
		return nil, pp.refusal(explicitKV, len(plans))
	}
	free := max(mem.Available-fixed, 0)
	for i, p := range plans {
		cfg := cfgs[i]
		var err error
		if cfg.KVMemory > 0 {
			p.Budget = cfg.KVMemory
			err = p.sizePlan(cfg, true, 0)
		} else {
			p.Available, p.Fraction, p.Free, p.Sharing = mem.Available, cfg.KVMemoryFraction, free, shared
			p.Budget = int64(float64(free)*cfg.KVMemoryFraction) / int64(shared)
			err = p.sizePlan(cfg, false, free/int64(shared))
		}
		if err != nil {
			return nil, err
		}
		if !mem.Known {
			p.Notes = append(p.Notes, "available memory "+mem.Source+" (set KVMemory to choose)")
		}
		pp.KVBytes += p.KVBytes
	}
	pp.TotalBytes = addSat(fixed-explicitKV, pp.KVBytes)
	return pp, nil
}

// refusal says what the models would need and what is there.
func (pp *ProcessPlan) refusal(explicitKV int64, models int) error {
	who := fmt.Sprintf("%d models need", models)
	if models == 1 {
		who = "the model needs"
	}
	need := fmt.Sprintf("%s of weights + %s of repacked weight copies", FormatBytes(pp.WeightBytes), FormatBytes(pp.PackedBytes))
	advice := "serve fewer or smaller models, or give the process more memory"
	if explicitKV > 0 {
		need += fmt.Sprintf(" + %s of KV cache (--kv-memory)", FormatBytes(explicitKV))
		advice = "lower --kv-memory (or leave it unset to share what is free), " + advice
	}
	return fmt.Errorf("engine: %s %s but %s is available (%s); %s",
		who, need, FormatBytes(pp.Available), pp.Source, advice)
}

// addSat adds two non-negative sizes, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
