package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/ftune/ftune/internal/sysmem"
)

// memoryLimitShare is the share of the memory this process may use (the
// machine's, or its cgroup's) that Go's collector is asked to keep the
// heap under.
const memoryLimitShare = 0.9

// setMemoryLimit gives Go's collector a soft limit of memoryLimitShare of
// the memory this process may use, unless GOMEMLIMIT sets one. A run's
// weights, optimizer moments and activations are large and short or long
// lived by the gigabyte; Go's default pacing lets the heap grow to twice
// what is live before it collects (a 1B model training its embeddings:
// 9.3 GiB live, a 19.3 GiB heap), past the memory of a machine the live data
// fits in. Under the limit the collector works harder near it instead;
// far below it nothing changes. It returns what `ftune env` reports.
func setMemoryLimit() string {
	limit, desc := memoryLimit(os.Getenv("GOMEMLIMIT"), sysmem.Limit(), sysmem.Total())
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return desc
}

// memoryLimit is setMemoryLimit's choice: the limit to set (0: none) and
// its description, from GOMEMLIMIT's value, the memory this process may use
// and the machine's.
func memoryLimit(env string, mayUse, machine uint64) (int64, string) {
	switch {
	case env != "":
		return 0, fmt.Sprintf("GOMEMLIMIT=%s", env)
	case mayUse == 0:
		return 0, "none (the machine's memory is not known)"
	}
	limit := int64(math.Min(float64(mayUse)*memoryLimitShare, math.MaxInt64))
	of := "the machine's memory"
	if mayUse < machine {
		of = "the cgroup's memory limit"
	}
	return limit, fmt.Sprintf("%.1f GiB (%.0f%% of %s; GOMEMLIMIT sets another)", float64(limit)/(1<<30), memoryLimitShare*100, of)
}
