package main

import (
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/sysmem"
)

// TestMemoryLimit: 90% of the memory the process may use, named after
// where that figure comes from; GOMEMLIMIT set by the user wins (nothing is
// set over it); an unknown machine gets no limit.
func TestMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		env             string
		mayUse, machine uint64
		want            int64
		desc            string
	}{
		{"", 20 << 30, 20 << 30, 18 << 30, "18.0 GiB (90% of the machine's memory; GOMEMLIMIT sets another)"},
		{"", 10 << 30, 20 << 30, 9 << 30, "9.0 GiB (90% of the cgroup's memory limit; GOMEMLIMIT sets another)"},
		{"6GiB", 20 << 30, 20 << 30, 0, "GOMEMLIMIT=6GiB"},
		{"", 0, 0, 0, "none (the machine's memory is not known)"},
	} {
		got, desc := memoryLimit(c.env, c.mayUse, c.machine)
		if got != c.want || desc != c.desc {
			t.Errorf("memoryLimit(%q, %d, %d) = %d, %q; want %d, %q", c.env, c.mayUse, c.machine, got, desc, c.want, c.desc)
		}
	}
}

// TestEnvReportsTheMemoryLimit: ftune env says what the collector's soft
// limit is.
func TestEnvReportsTheMemoryLimit(t *testing.T) {
	if sysmem.Total() == 0 {
		t.Skip("the machine's memory is not known here (not Linux): ftune env prints no memory lines")
	}
	out, err := run(t, "env")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "go heap:  soft limit ") {
		t.Errorf("ftune env does not report the Go heap's soft limit:\n%s", out)
	}
}
