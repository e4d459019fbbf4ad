package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRoot writes files (path relative to the root -> content) under a
// temporary directory and returns it.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const meminfo8G = "MemTotal:       16000000 kB\nMemAvailable:    8388608 kB\n"

func TestAvailableMemoryCgroups(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		src   string // in Source
	}{
		{"meminfo only", map[string]string{"proc/meminfo": meminfo8G}, 8 << 30, "MemAvailable"},
		{"nothing readable", map[string]string{}, FallbackAvailableMemory, "unknown"},
		{"v2 limit below meminfo, usage less inactive file", map[string]string{
			"proc/meminfo":                     meminfo8G,
			"proc/self/cgroup":                 "0::/app\n",
			"sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
			"sys/fs/cgroup/app/memory.max":     "4294967296\n",
			"sys/fs/cgroup/app/memory.current": "1610612736\n",
			"sys/fs/cgroup/app/memory.stat":    "anon 1\ninactive_file 536870912\nactive_file 5\n",
			"sys/fs/cgroup/memory.max":         "max\n",
		}, 3 << 30, "memory.max"}, // 4 GiB less 1.5 GiB used plus 0.5 GiB inactive file
		{"v2 ancestor limit is the tighter one", map[string]string{
			"proc/meminfo":                     meminfo8G,
			"proc/self/cgroup":                 "0::/a/b\n",
			"sys/fs/cgroup/cgroup.controllers": "memory\n",
			"sys/fs/cgroup/a/memory.max":       "2147483648\n",
			"sys/fs/cgroup/a/memory.current":   "1073741824\n",
			"sys/fs/cgroup/a/b/memory.max":     "max\n",
			"sys/fs/cgroup/a/b/memory.current": "1000\n",
		}, 1 << 30, "/a"},
		{"v2 namespaced: the process's path is absent under the mount", map[string]string{
			"proc/meminfo":                     meminfo8G,
			"proc/self/cgroup":                 "0::/kubepods/pod1/c1\n",
			"sys/fs/cgroup/cgroup.controllers": "memory\n",
			"sys/fs/cgroup/memory.max":         "3221225472\n",
			"sys/fs/cgroup/memory.current":     "0\n",
		}, 3 << 30, "memory.max"},
		{"v1 limit with usage", map[string]string{
			"proc/meminfo":     meminfo8G,
			"proc/self/cgroup": "4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "2147483648\n",
			"sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": "1073741824\n",
			"sys/fs/cgroup/memory/docker/abc/memory.stat":           "cache 9\ntotal_inactive_file 268435456\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n",
		}, 1<<30 + 256<<20, "memory.limit_in_bytes"}, // 2 GiB less 1 GiB used plus 256 MiB inactive file
		{"v1 unlimited", map[string]string{
			"proc/meminfo":     meminfo8G,
			"proc/self/cgroup": "4:memory:/x\n",
			"sys/fs/cgroup/memory/x/memory.limit_in_bytes": "9223372036854771712\n",
			"sys/fs/cgroup/memory/x/memory.usage_in_bytes": "100\n",
		}, 8 << 30, "MemAvailable"},
		{"usage beyond the limit leaves nothing", map[string]string{
			"proc/meminfo":                     meminfo8G,
			"sys/fs/cgroup/cgroup.controllers": "memory\n",
			"sys/fs/cgroup/memory.max":         "1000\n",
			"sys/fs/cgroup/memory.current":     "5000\n",
		}, 0, "memory.max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := readMemory(fakeRoot(t, tc.files))
			if m.Available != tc.want || !strings.Contains(m.Source, tc.src) {
				t.Errorf("available %d (%s), want %d from %q", m.Available, m.Source, tc.want, tc.src)
			}
			if m.Known != (tc.src != "unknown") {
				t.Errorf("Known %v", m.Known)
			}
		})
	}
}

func TestCPUMaxParsing(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    int
		ok      bool
	}{
		{"max 100000\n", 0, false},
		{"200000 100000\n", 2, true},
		{"150000 100000\n", 2, true}, // rounded up
		{"50000 100000\n", 1, true},
		{"100000\n", 1, true}, // default period
		{"-1 100000\n", 0, false},
		{"x 100000\n", 0, false},
		{"100000 0\n", 0, false},
		{"", 0, false},
	} {
		root := fakeRoot(t, map[string]string{"cpu.max": tc.content})
		got, ok := cpuMaxQuota(filepath.Join(root, "cpu.max"))
		if got != tc.want || ok != tc.ok {
			t.Errorf("cpu.max %q: %d %v, want %d %v", tc.content, got, ok, tc.want, tc.ok)
		}
	}
}

func TestUsableCPUs(t *testing.T) {
	v2 := fakeRoot(t, map[string]string{
		"proc/self/cgroup":                 "0::/svc\n",
		"sys/fs/cgroup/cgroup.controllers": "cpu\n",
		"sys/fs/cgroup/svc/cpu.max":        "250000 100000\n",
	})
	v1 := fakeRoot(t, map[string]string{
		"proc/self/cgroup":                    "3:cpu,cpuacct:/\n",
		"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "150000\n",
		"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
	})
	for _, tc := range []struct {
		name     string
		root     string
		affinity int
		want     int
	}{
		{"no cgroup", t.TempDir(), 8, 8},
		{"v2 quota below affinity", v2, 8, 3},
		{"affinity below v2 quota", v2, 2, 2},
		{"v1 quota", v1, 16, 2},
	} {
		if got, src := usableCPUs(tc.root, tc.affinity); got != tc.want {
			t.Errorf("%s: %d (%s), want %d", tc.name, got, src, tc.want)
		}
	}
}

func TestResolveThreads(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"sys/fs/cgroup/cgroup.controllers": "cpu\n",
		"sys/fs/cgroup/cpu.max":            "200000 100000\n",
	})
	for _, tc := range []struct {
		requested int
		force     bool
		want      int
		capped    bool
	}{
		{0, false, 2, false},
		{1, false, 1, false},
		{2, false, 2, false},
		{16, false, 2, true},
		{16, true, 16, false},
	} {
		got, note := resolveThreads(tc.requested, tc.force, root, 64)
		if got != tc.want || (note != "") != tc.capped {
			t.Errorf("%d threads (force %v): %d %q, want %d (capped %v)", tc.requested, tc.force, got, note, tc.want, tc.capped)
		}
		if tc.capped && !strings.Contains(note, "cpu.max") {
			t.Errorf("note %q does not say what capped it", note)
		}
	}
}
