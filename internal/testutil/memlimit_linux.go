//go:build !race && !asan && !msan

package testutil

import (
	"fmt"
	"syscall"
)

// MemoryLimited says whether LimitMemory caps anything in this build.
const MemoryLimited = true

// LimitMemory caps the virtual address space (RLIMIT_AS) of this process
// and of the processes it starts, which inherit it: go test -fuzz runs its
// workers as such children. A test input that allocates without bound
// then ends in Go's "out of memory" crash, which the fuzzer reports with
// the input, instead of taking the machine down (a chat template grew to
// 22 GB). A lower limit already in place is kept. Race, address and
// memory sanitizer builds reserve terabytes of shadow memory and are not
// limited (memlimit_other.go).
func LimitMemory(bytes uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		return fmt.Errorf("read RLIMIT_AS: %w", err)
	}
	if lim.Cur <= bytes {
		return nil
	}
	lim.Cur = bytes
	if lim.Max < bytes {
		lim.Cur = lim.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		return fmt.Errorf("set RLIMIT_AS to %d bytes: %w", bytes, err)
	}
	return nil
}

// MemoryLimit is the current cap on the address space.
func MemoryLimit() (uint64, error) {
	var lim syscall.Rlimit
	err := syscall.Getrlimit(syscall.RLIMIT_AS, &lim)
	return lim.Cur, err
}
