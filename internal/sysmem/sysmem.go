// Package sysmem reads the machine's memory figures (Linux
// /proc/meminfo), for the run's environment record, `ftune env` and the
// pre-flight check that a training plan fits.
package sysmem

import (
	"bufio"
	"io"
	"os"
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
