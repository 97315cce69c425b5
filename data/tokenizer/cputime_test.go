//go:build unix

package tokenizer

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used. Benchmarks report
// throughput per CPU second beside the wall-clock MB/s because the shared
// development machines are often oversubscribed (load 10+ on 2 cores), which
// makes wall-clock figures meaningless there.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
