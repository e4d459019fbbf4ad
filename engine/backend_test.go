package engine

import (
	"os"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/kernels/cpu"
)

// badBackendOptions are options every backend must refuse, with a word
// the error has to contain.
var badBackendOptions = []struct {
	name string
	opts kernels.Options
	env  string // value of SLUICE_CPU_PATH
	want string
}{
	{"threads 5000", kernels.Options{Threads: 5000}, "", "threads"},
	{"threads 1025", kernels.Options{Threads: 1025}, "", "threads"},
	{"unknown path", kernels.Options{Threads: 1, Path: "bogus"}, "", "bogus"},
	{"unknown path in the environment", kernels.Options{Threads: 1}, "bogus", "bogus"},
}

// TestBackendsRefuseBadOptions opens every registered backend with every
// bad option: the error names the problem and the Backend is a nil
// interface (not a typed nil that a deferred Close would call into).
func TestBackendsRefuseBadOptions(t *testing.T) {
	for _, name := range kernels.Names() {
		for _, tc := range badBackendOptions {
			if tc.env != "" && name != "cpu" {
				continue // SLUICE_CPU_PATH is read by the CPU backend only
			}
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				t.Setenv(cpu.EnvPath, tc.env)
				be, err := kernels.Open(name, tc.opts)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %v, want one naming %q", err, tc.want)
				}
				if be != nil {
					t.Errorf("Open returned a non-nil Backend %#v with the error", be)
					be.Close()
				}
			})
		}
	}
}

// TestNewReturnsBackendError checks that engine.New passes a backend's
// refusal on instead of crashing while it cleans up.
func TestNewReturnsBackendError(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	for _, tc := range badBackendOptions {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(cpu.EnvPath, tc.env)
			// Forced: more threads than CPUs are otherwise capped.
			cfg := Config{ModelPath: path, Threads: tc.opts.Threads, ThreadsForce: true, KVMemory: 1 << 20}
			if tc.opts.Path != "" {
				t.Setenv(cpu.EnvPath, tc.opts.Path)
			}
			e, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: error %v, want one naming %q", err, tc.want)
			}
			if e != nil {
				e.Close()
			}
		})
	}
}

// TestCUDABackendWithoutDriver asks for the CUDA backend on a machine
// without the NVIDIA driver: the error names the library that is missing
// instead of claiming there is no such backend.
func TestCUDABackendWithoutDriver(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this machine has an NVIDIA GPU; make gpu-check covers the backend")
	}
	path := testenv.Shared(t, "models", "stories260K.gguf")
	e, err := New(Config{ModelPath: path, Backend: "cuda", KVMemory: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Errorf("New with the cuda backend: error %v, want one naming libcuda.so.1", err)
	}
	if e != nil {
		e.Close()
	}
}

// deviceBackend is the CPU backend posing as one with 64 MiB of memory of
// its own, as the CUDA backend reports its GPU's.
type deviceBackend struct{ *cpu.Backend }

func (deviceBackend) FreeDeviceMemory() (free, total int64) { return 64 << 20, 80 << 20 }
func (deviceBackend) DeviceName() string                    { return "test device" }

func init() {
	kernels.Register("test-device", func(o kernels.Options) (kernels.Backend, error) {
		b, err := cpu.New(o)
		if err != nil {
			return nil, err
		}
		return deviceBackend{b}, nil
	})
}

// TestPlanUsesDeviceMemory: with a backend that has memory of its own, the
// weights and the KV pool are planned out of the device's free memory, for
// sluice kv / serve --dry-run (PlanGroup) and for a running engine alike.
func TestPlanUsesDeviceMemory(t *testing.T) {
	path := testenv.Shared(t, "models", "stories260K.gguf")
	pp, err := PlanGroup([]Config{{ModelPath: path, Backend: "test-device"}})
	if err != nil {
		t.Fatal(err)
	}
	if pp.Available != 64<<20 || !strings.Contains(pp.Source, "test device") {
		t.Errorf("plan: available %d from %q, want 64 MiB from the test device", pp.Available, pp.Source)
	}
	if b := pp.Models[0].Budget; b <= 0 || b > 64<<20-pp.WeightBytes {
		t.Errorf("plan: KV budget %d, want a share of the device's 64 MiB less %d of weights", b, pp.WeightBytes)
	}
	e, err := New(Config{ModelPath: path, Backend: "test-device", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.plan.Available != 64<<20 || e.plan.Budget > 64<<20 {
		t.Errorf("engine: available %d, KV budget %d; want them out of the device's 64 MiB", e.plan.Available, e.plan.Budget)
	}
}
