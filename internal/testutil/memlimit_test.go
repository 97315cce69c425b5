package testutil

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestLimitMemoryStopsRunawayAllocation: a process under LimitMemory that
// allocates past the limit dies with Go's out-of-memory error instead of
// getting the memory. It runs in a child (this test binary again) so the
// crash is observed, not suffered.
func TestLimitMemoryStopsRunawayAllocation(t *testing.T) {
	if !MemoryLimited {
		t.Skip("no address-space limit in this build (race/sanitizer or not Linux)")
	}
	if os.Getenv("FTUNE_MEMLIMIT_CHILD") == "1" {
		MustLimitMemory(1 << 30)
		var keep [][]byte
		for i := 0; i < 32; i++ { // 4 GiB in 128 MiB steps, touched
			b := make([]byte, 128<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		runtime.KeepAlive(keep) // every block stays live: the limit, not the collector, must stop this
		os.Stdout.WriteString("allocated 4 GiB under a 1 GiB limit\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLimitMemoryStopsRunawayAllocation$")
	cmd.Env = append(os.Environ(), "FTUNE_MEMLIMIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "out of memory") {
		t.Fatalf("child: %v\n%.2000s", err, out)
	}
}
