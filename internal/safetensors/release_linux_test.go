package safetensors

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// mappingRSS reads, from /proc/self/smaps, the resident kilobytes of the
// mapping that contains addr.
func mappingRSS(t *testing.T, addr uintptr) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inside := false
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			var lo, hi uintptr
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err == nil {
				inside = addr >= lo && addr < hi
			}
			continue
		}
		if inside && len(fields) >= 2 && fields[0] == "Rss:" {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no mapping in /proc/self/smaps holds %#x", addr)
	return 0
}

// Release drops a tensor's pages from the process (the mapping's resident
// size falls by the tensor's whole pages) and the data reads back the same.
func TestReleaseDropsResidentPages(t *testing.T) {
	const n = 1 << 20 // 4 MiB of float32: 1024 pages of 4 KiB
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i%1000) - 500
	}
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := Write(path, []Tensor{
		{Name: "a", DType: F32, Shape: []int{n}, Data: f32(vals...)},
		{Name: "b", DType: F32, Shape: []int{4}, Data: f32(1, 2, 3, 4)},
	}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ta, err := f.Tensor("a")
	if err != nil {
		t.Fatal(err)
	}
	addr := uintptr(unsafe.Pointer(&ta.Data[0]))
	got, err := Floats(ta) // touches every page of a
	if err != nil {
		t.Fatal(err)
	}
	before := mappingRSS(t, addr)
	if before < 4000 {
		t.Fatalf("after reading tensor a the mapping holds %d KiB resident, want its 4096 KiB", before)
	}
	f.Release("a")
	after := mappingRSS(t, addr)
	// At most the two pages a shares with the header and tensor b stay.
	if limit := 3 * os.Getpagesize() / 1024; after > limit {
		t.Errorf("after Release the mapping holds %d KiB resident (%d before), want at most %d KiB", after, before, limit)
	}
	again, err := Floats(ta)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if again[i] != vals[i] {
			t.Fatalf("element %d reads %v after Release, want %v", i, again[i], vals[i])
		}
	}
	tb, err := f.Tensor("b")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := Floats(tb); b[3] != 4 {
		t.Errorf("tensor b beside the released one reads %v, want [1 2 3 4]", b)
	}
	f.Release("no such tensor") // ignored
	f.Close()
	f.Release("a") // after Close: ignored, not a fault
}
