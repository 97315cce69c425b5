package testutil

import (
	"fmt"
	"os"
	"testing"
)

// TestMemory is the address space a package's tests and fuzz workers get
// from LimitMemory in the packages that read untrusted input (data/chat,
// data/format, data/tokenizer): their tests reserve under 2.5 GiB (VmPeak)
// and use under 250 MiB, and a regression that allocates without bound
// stops here.
const TestMemory = 4 << 30

// MustLimitMemory is LimitMemory for TestMain: a failure to set the limit
// ends the test binary, as running unlimited is what it prevents.
func MustLimitMemory(bytes uint64) {
	if err := LimitMemory(bytes); err != nil {
		fmt.Fprintln(os.Stderr, "testutil:", err)
		os.Exit(2)
	}
}

// CheckMemoryLimited fails t unless the test binary runs under at most
// TestMemory of address space (a package whose TestMain forgot the limit,
// or a limit that did not take). It skips where no limit can be set.
func CheckMemoryLimited(t testing.TB) {
	t.Helper()
	if !MemoryLimited {
		t.Skip("no address-space limit in this build")
	}
	if lim, err := MemoryLimit(); err != nil || lim > TestMemory {
		t.Errorf("address space limit %d (%v), want at most %d", lim, err, uint64(TestMemory))
	}
}
