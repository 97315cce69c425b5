// Package sysmem reads the machine's memory figures (Linux
// /proc/meminfo, and the process's cgroup limit), for the run's
// environment record, `ftune env`, the pre-flight check that a training
// plan fits and the ftune command's soft memory limit for Go's collector.
package sysmem

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Total is MemTotal in bytes; 0 where the figure is not known (not Linux).
func Total() uint64 { return read("MemTotal") }

// Available is MemAvailable in bytes: what can be allocated without
// swapping; 0 where the figure is not known.
func Available() uint64 { return read("MemAvailable") }

func read(key string) uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	return parse(f, key)
}

// parse finds "key: N kB" in a meminfo listing.
func parse(r io.Reader, key string) uint64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == key+":" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// Limit is the memory this process may use, in bytes: MemTotal, or its
// cgroup's memory limit when that is lower (a container's --memory, a
// systemd unit's MemoryMax); 0 where neither is known.
func Limit() uint64 { return limit("/", Total()) }

// limit is Limit with the file system rooted at root (tests) and the
// machine's total memory given. The cgroup's limit is the smallest of the
// limits along its path: cgroup v2's memory.max, v1's
// memory.limit_in_bytes ("max", or v1's huge "unlimited", mean none).
func limit(root string, total uint64) uint64 {
	best := total
	data, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return best
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var base, file string
		switch {
		case parts[0] == "0" && parts[1] == "": // v2's unified hierarchy
			base, file = filepath.Join(root, "sys/fs/cgroup"), "memory.max"
		case slices.Contains(strings.Split(parts[1], ","), "memory"): // v1
			base, file = filepath.Join(root, "sys/fs/cgroup/memory"), "memory.limit_in_bytes"
		default:
			continue
		}
		// From the cgroup up to the hierarchy's root (inside a container
		// the cgroup's path may not exist: its root is the container's).
		for dir := filepath.Join(base, parts[2]); ; dir = filepath.Dir(dir) {
			if b, err := os.ReadFile(filepath.Join(dir, file)); err == nil {
				if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (best == 0 || n < best) {
					best = n
				}
			}
			if dir == base || !strings.HasPrefix(dir, base) {
				break
			}
		}
	}
	return best
}
