package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// This file finds what the machine lets the process use: the memory
// available to new allocations and the CPUs it may run on, with the cgroup
// (v2 or v1) limits of containers and systemd units applied. Every reader
// takes the file system root it reads under, so tests give it fake files.

// sysRoot is the root the readers read /proc and /sys/fs/cgroup under.
var sysRoot = "/"

// SysMemory is the memory available to the process.
type SysMemory struct {
	Available int64  `json:"available"` // bytes new allocations may take
	Source    string `json:"source"`    // what bounds Available, for messages
	// Known is false when nothing could be read and Available is
	// FallbackAvailableMemory.
	Known bool `json:"known"`
}

// AvailableMemory returns the memory available to the process: the least of
// MemAvailable in /proc/meminfo and, for each cgroup limit on the process
// (memory.max in v2, memory.limit_in_bytes in v1, on its cgroup and every
// ancestor), the limit less the cgroup's usage (less its inactive file
// cache, which the kernel reclaims first).
func AvailableMemory() SysMemory { return readMemory(sysRoot) }

func readMemory(root string) SysMemory {
	m := SysMemory{Available: math.MaxInt64}
	if n, err := memAvailable(filepath.Join(root, "proc/meminfo")); err == nil {
		m = SysMemory{Available: n, Source: "MemAvailable in /proc/meminfo", Known: true}
	}
	cg := readCgroups(root)
	if room, src, ok := cgroupMemoryRoom(cg.v2, "memory.max", "memory.current", "inactive_file"); ok && room < m.Available {
		m = SysMemory{Available: room, Source: src, Known: true}
	}
	if room, src, ok := cgroupMemoryRoom(cg.v1mem, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"); ok && room < m.Available {
		m = SysMemory{Available: room, Source: src, Known: true}
	}
	if !m.Known {
		return SysMemory{Available: FallbackAvailableMemory,
			Source: fmt.Sprintf("unknown on %s; assuming %s", runtime.GOOS, FormatBytes(FallbackAvailableMemory))}
	}
	return m
}

func memAvailable(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			n, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, err
			}
			if len(fields) >= 3 && strings.EqualFold(fields[2], "kB") {
				n *= 1024
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no MemAvailable in %s", path)
}

// cgroupDirs are the directories of the process's cgroups, leaf first up
// to the mount point, for each hierarchy that exists (nil otherwise).
type cgroupDirs struct {
	v2, v1mem, v1cpu []string
}

// readCgroups finds the process's cgroups from /proc/self/cgroup. A path
// that does not exist under the mount (a container that mounts its own
// cgroup at the root) is walked up to the deepest one that does.
func readCgroups(root string) cgroupDirs {
	paths := map[string]string{} // "" (v2), "memory", "cpu" -> cgroup path
	if data, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[0] == "0" && parts[1] == "" {
				paths[""] = parts[2]
			}
			for _, c := range strings.Split(parts[1], ",") {
				if c == "memory" || c == "cpu" {
					paths[c] = parts[2]
				}
			}
		}
	}
	cg := filepath.Join(root, "sys/fs/cgroup")
	v2mount := cg
	if !exists(filepath.Join(cg, "cgroup.controllers")) {
		v2mount = filepath.Join(cg, "unified") // hybrid layout
	}
	return cgroupDirs{
		v2:    cgroupChain(v2mount, paths[""]),
		v1mem: cgroupChain(filepath.Join(cg, "memory"), paths["memory"]),
		v1cpu: cgroupChain(filepath.Join(cg, "cpu"), paths["cpu"]),
	}
}

// cgroupChain lists mount/rel and its ancestors up to mount, starting at
// the deepest that exists; nil when mount does not exist.
func cgroupChain(mount, rel string) []string {
	if !exists(mount) {
		return nil
	}
	dir := filepath.Join(mount, filepath.Clean("/"+rel))
	for dir != mount && !exists(dir) {
		dir = filepath.Dir(dir)
	}
	chain := []string{dir}
	for dir != mount && len(dir) > len(mount) {
		dir = filepath.Dir(dir)
		chain = append(chain, dir)
	}
	return chain
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// cgroupMemoryRoom is the least, over the cgroups in dirs that set a
// limit, of limit - (usage - inactive file cache), with the file that set
// it. ok is false when no cgroup sets a limit.
func cgroupMemoryRoom(dirs []string, limitFile, usageFile, inactiveKey string) (room int64, src string, ok bool) {
	room = math.MaxInt64
	for _, d := range dirs {
		limit, err := readCgroupInt(filepath.Join(d, limitFile))
		// v1 writes "no limit" as a huge page-rounded number.
		if err != nil || limit <= 0 || limit >= 1<<62 {
			continue
		}
		usage, _ := readCgroupInt(filepath.Join(d, usageFile))
		usage -= statValue(filepath.Join(d, "memory.stat"), inactiveKey)
		r := max(limit-max(usage, 0), 0)
		if r < room {
			room, ok = r, true
			src = fmt.Sprintf("%s %s less %s in use (%s)", limitFile, FormatBytes(limit), FormatBytes(max(usage, 0)), d)
		}
	}
	return room, src, ok
}

// errNoLimit is readCgroupInt's answer for "max".
var errNoLimit = errors.New("no limit")

func readCgroupInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, errNoLimit
	}
	return strconv.ParseInt(s, 10, 64)
}

// statValue is the value of key in a memory.stat file, 0 when absent.
func statValue(path, key string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// UsableCPUs returns how many CPUs the process may keep busy: the CPUs in
// its affinity mask (runtime.NumCPU), capped by the cgroup CPU quota (v2
// cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us) rounded up; and a
// description of what set it.
func UsableCPUs() (int, string) { return usableCPUs(sysRoot, runtime.NumCPU()) }

func usableCPUs(root string, affinity int) (int, string) {
	n, src := max(affinity, 1), "CPUs in the affinity mask"
	cg := readCgroups(root)
	for _, d := range cg.v2 {
		if q, ok := cpuMaxQuota(filepath.Join(d, "cpu.max")); ok && q < n {
			n, src = q, "cgroup cpu.max of "+d
		}
	}
	for _, d := range cg.v1cpu {
		quota, err1 := readCgroupInt(filepath.Join(d, "cpu.cfs_quota_us"))
		period, err2 := readCgroupInt(filepath.Join(d, "cpu.cfs_period_us"))
		if err1 == nil && err2 == nil && quota > 0 && period > 0 {
			if q := int(min((quota+period-1)/period, math.MaxInt32)); q < n {
				n, src = q, "cgroup cpu.cfs_quota_us of "+d
			}
		}
	}
	return n, src
}

// cpuMaxQuota parses a cgroup v2 cpu.max file ("QUOTA PERIOD" in µs, or
// "max PERIOD") into whole CPUs, rounded up. ok is false for no limit or
// an unreadable file.
func cpuMaxQuota(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 || f[0] == "max" {
		return 0, false
	}
	quota, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || quota <= 0 {
		return 0, false
	}
	period := int64(100000) // the kernel's default when only a quota is written
	if len(f) > 1 {
		if period, err = strconv.ParseInt(f[1], 10, 64); err != nil || period <= 0 {
			return 0, false
		}
	}
	return int(min((quota+period-1)/period, math.MaxInt32)), true
}

// ResolveThreads turns a requested thread count into the one to run:
// requested ≤ 0 means the usable CPUs (UsableCPUs); a request beyond them
// is capped to them, with a note saying so, unless force is set (more
// threads than cores wait on each other at every op's barrier, and decode
// slows down many times over).
func ResolveThreads(requested int, force bool) (threads int, note string) {
	return resolveThreads(requested, force, sysRoot, runtime.NumCPU())
}

func resolveThreads(requested int, force bool, root string, affinity int) (int, string) {
	usable, src := usableCPUs(root, affinity)
	switch {
	case requested <= 0:
		return usable, ""
	case requested > usable && !force:
		return usable, fmt.Sprintf("%d threads requested but %d CPUs are usable (%s); using %d (--threads-force runs more)",
			requested, usable, src, usable)
	}
	return requested, ""
}
