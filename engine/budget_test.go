package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
)

// withSysRoot points the system readers at a fake root for one test.
func withSysRoot(t *testing.T, files map[string]string) {
	t.Helper()
	old := sysRoot
	sysRoot = fakeRoot(t, files)
	t.Cleanup(func() { sysRoot = old })
}

func meminfo(avail int64) string {
	return fmt.Sprintf("MemTotal: %d kB\nMemAvailable: %d kB\n", 2*avail>>10, avail>>10)
}

// testPlans are base plans of n models of 100 MiB of weights and 20 MiB
// of packed copies each, with 1 MiB blocks.
func testPlans(n int, kv ...int64) ([]*Config, []*MemoryPlan) {
	var cfgs []*Config
	var plans []*MemoryPlan
	for i := range n {
		c := &Config{Name: fmt.Sprint("m", i), KVMemoryFraction: 0.5, BlockSize: 16, ContextLength: 1 << 20,
			MaxNumSeqs: 64, MaxNumBatchedTokens: 16, KVType: "f16"}
		if i < len(kv) {
			c.KVMemory = kv[i]
		}
		cfgs = append(cfgs, c)
		plans = append(plans, &MemoryPlan{Model: c.Name, WeightBytes: 100 << 20, PackedBytes: 20 << 20,
			KVBytesPerToken: 64 << 10, BlockSize: 16, BlockBytes: 1 << 20})
	}
	return cfgs, plans
}

// TestSizeGroupSplitsOneBudget: three models share the memory left after
// all their weights and copies instead of each taking half of it.
func TestSizeGroupSplitsOneBudget(t *testing.T) {
	cfgs, plans := testPlans(3)
	mem := SysMemory{Available: 1000 << 20, Source: "test", Known: true}
	pp, err := sizeGroup(cfgs, plans, mem)
	if err != nil {
		t.Fatal(err)
	}
	free := int64(1000<<20 - 3*120<<20)
	for _, p := range plans {
		if p.Budget != free/2/3 || p.Sharing != 3 || p.Free != free || p.Available != 1000<<20 {
			t.Errorf("%s: budget %d (sharing %d of %d free), want %d", p.Model, p.Budget, p.Sharing, p.Free, free/2/3)
		}
	}
	if pp.WeightBytes != 300<<20 || pp.PackedBytes != 60<<20 || pp.TotalBytes != pp.WeightBytes+pp.PackedBytes+pp.KVBytes ||
		pp.TotalBytes > mem.Available || pp.KVBytes != 3*(free/2/3>>20<<20) {
		t.Errorf("process plan %+v", pp)
	}

	// An explicit size is kept and taken out of what the others share.
	cfgs, plans = testPlans(3, 200<<20)
	if _, err := sizeGroup(cfgs, plans, mem); err != nil {
		t.Fatal(err)
	}
	if free := free - 200<<20; plans[0].Budget != 200<<20 || plans[0].KVBytes != 200<<20 || plans[1].Budget != free/2/2 || plans[2].Sharing != 2 {
		t.Errorf("budgets %d %d %d", plans[0].Budget, plans[1].Budget, plans[2].Budget)
	}
}

// TestSizeGroupRefuses: weights, copies and explicit KV sizes beyond the
// available memory are refused with what was needed and what is there.
func TestSizeGroupRefuses(t *testing.T) {
	mem := SysMemory{Available: 1000 << 20, Source: "memory.max of /app", Known: true}
	cfgs, plans := testPlans(3, 1<<50, 1<<50, 1<<50)
	_, err := sizeGroup(cfgs, plans, mem)
	for _, want := range []string{"3 models need", "300.0 MiB of weights", "60.0 MiB of repacked", "3.0 PiB of KV", "1000.0 MiB is available", "memory.max of /app", "--kv-memory"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
	// Weights alone too large.
	cfgs, plans = testPlans(9)
	if _, err := sizeGroup(cfgs, plans, mem); err == nil || !strings.Contains(err.Error(), "9 models need 900.0 MiB of weights") ||
		strings.Contains(err.Error(), "--kv-memory") {
		t.Errorf("error %v", err)
	}
	// Shares too small for one block.
	cfgs, plans = testPlans(8, 39<<20)
	if _, err := sizeGroup(cfgs, plans, mem); err == nil || !strings.Contains(err.Error(), "split over 7 models") {
		t.Errorf("error %v", err)
	}
	// Unknown memory: explicit sizes are the caller's word.
	cfgs, plans = testPlans(1, 4<<30)
	if _, err := sizeGroup(cfgs, plans, SysMemory{Available: FallbackAvailableMemory, Source: "unknown"}); err != nil {
		t.Errorf("unknown memory: %v", err)
	}
}

// TestNewGroupSharesMemory builds three engines in one budget from a fake
// /proc/meminfo, and refuses a group whose explicit KV sizes exceed it
// before allocating them.
func TestNewGroupSharesMemory(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	withSysRoot(t, map[string]string{"proc/meminfo": meminfo(64 << 20)})
	cfg := Config{ModelPath: path, Threads: 1, ContextLength: 512, MaxNumSeqs: 4096}
	var cfgs []Config
	for _, n := range []string{"a", "b", "c"} {
		c := cfg
		c.Name = n
		cfgs = append(cfgs, c)
	}
	pp, err := PlanGroup(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	free := 64<<20 - pp.WeightBytes - pp.PackedBytes
	for _, p := range pp.Models {
		if p.Sharing != 3 || p.Budget != int64(float64(free)*0.5)/3 {
			t.Errorf("%s: budget %d sharing %d, want %d of %d free", p.Model, p.Budget, p.Sharing, int64(float64(free)*0.5)/3, free)
		}
	}
	es, err := NewGroup(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	var kv int64
	for _, e := range es {
		kv += e.Info().KVBytes
		if e.MemoryPlan().Budget != pp.Models[0].Budget {
			t.Errorf("%s: engine budget %d, plan %d", e.Info().Name, e.MemoryPlan().Budget, pp.Models[0].Budget)
		}
		e.Close()
	}
	if kv != pp.KVBytes || kv > free/2 {
		t.Errorf("engines hold %d bytes of KV, plan %d, half of free %d", kv, pp.KVBytes, free/2)
	}

	for i := range cfgs {
		cfgs[i].KVMemory = 32 << 20
	}
	if _, err := NewGroup(cfgs); err == nil || !strings.Contains(err.Error(), "3 models need") || !strings.Contains(err.Error(), "64.0 MiB is available") {
		t.Errorf("NewGroup of 3×32 MiB in 64 MiB: %v", err)
	}
	if _, err := New(Config{ModelPath: path, Threads: 1, KVMemory: 1000 << 40}); err == nil || !strings.Contains(err.Error(), "1000.0 TiB of KV") {
		t.Errorf("New with 1000 TiB of KV: %v", err)
	}
}

// TestThreadsDefaultAndCap: the default is the usable CPUs and more is
// capped to them unless forced.
func TestThreadsDefaultAndCap(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	withSysRoot(t, map[string]string{
		"proc/meminfo":                     meminfo(1 << 30),
		"sys/fs/cgroup/cgroup.controllers": "cpu\n",
		"sys/fs/cgroup/cpu.max":            "100000 100000\n",
	})
	for _, tc := range []struct {
		threads int
		force   bool
		want    int
		note    bool
	}{
		{0, false, 1, false},
		{3, false, 1, true},
		{3, true, 3, false},
	} {
		e, err := New(Config{ModelPath: path, Threads: tc.threads, ThreadsForce: tc.force, KVMemory: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		info, plan := e.Info(), e.MemoryPlan()
		e.Close()
		noted := strings.Contains(strings.Join(plan.Notes, "\n"), "threads requested")
		if info.Threads != tc.want || noted != tc.note {
			t.Errorf("Threads %d force %v: %d threads, note %v (%q); want %d, note %v",
				tc.threads, tc.force, info.Threads, noted, plan.Notes, tc.want, tc.note)
		}
	}
}
