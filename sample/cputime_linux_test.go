package sample

import "syscall"

// threadCPU returns the CPU time consumed by the calling OS thread in
// nanoseconds, or -1 when unavailable. Benchmarks lock their goroutine to a
// thread and report it next to wall time, which on a shared, oversubscribed
// machine mostly measures waiting for a core.
func threadCPU() int64 {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
