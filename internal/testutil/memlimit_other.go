//go:build !linux || race || asan || msan

package testutil

import "math"

// MemoryLimited says whether LimitMemory caps anything in this build:
// not off Linux, nor in race or sanitizer builds (see memlimit_linux.go).
const MemoryLimited = false

// LimitMemory does nothing here.
func LimitMemory(bytes uint64) error { return nil }

// MemoryLimit reports no limit.
func MemoryLimit() (uint64, error) { return math.MaxUint64, nil }
