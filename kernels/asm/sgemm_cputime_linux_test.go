package asm

import "syscall"

// processCPUSeconds is the CPU time (user+system) of all this process's
// threads. The benchmarks report GFLOP per CPU-second beside GFLOP/s of
// wall time because the machine's cores are shared: time slices lost to
// other processes inflate wall time but not CPU time.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
