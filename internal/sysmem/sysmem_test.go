package sysmem

import (
	"runtime"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const meminfo = "MemTotal:       24558120 kB\nMemFree:         1234 kB\nMemAvailable:   20000000 kB\n"
	for key, want := range map[string]uint64{"MemTotal": 24558120 * 1024, "MemAvailable": 20000000 * 1024, "SwapTotal": 0} {
		if got := parse(strings.NewReader(meminfo), key); got != want {
			t.Errorf("parse %s = %d, want %d", key, got, want)
		}
	}
	if got := parse(strings.NewReader("MemTotal: lots kB\n"), "MemTotal"); got != 0 {
		t.Errorf("a malformed figure read as %d", got)
	}
}

func TestThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("meminfo is Linux's")
	}
	total, avail := Total(), Available()
	if total == 0 || avail == 0 || avail > total {
		t.Fatalf("total %d, available %d", total, avail)
	}
}
