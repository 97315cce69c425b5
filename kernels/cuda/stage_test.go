package cuda

import (
	"bytes"
	"testing"
)

// TestStagerReusesSlabsOnlyAfterTheirCopies queues more uploads than the
// stager's pinned budget holds, on a non-blocking stream, refilling the
// caller's buffer between calls. On ptxsim that stream runs only when
// something waits for it, and a copy from pinned memory reads its source
// when it runs, so a slab refilled before its copies ran, or a source read
// late, gives wrong bytes on the device.
func TestStagerReusesSlabsOnlyAfterTheirCopies(t *testing.T) {
	g := needGPU(t)
	st, err := g.d.NewStager(g.s, 1024, 4096)
	g.ok(err)
	defer func() { g.ok(st.Close()) }()
	const chunk, chunks = 300, 40
	dev := g.alloc(chunk * chunks)
	want := make([]byte, chunk*chunks)
	src := make([]byte, chunk)
	for i := range chunks {
		for j := range src {
			src[j] = byte(g.rng.IntN(256))
		}
		copy(want[i*chunk:], src)
		g.ok(StageHtoD(st, dev.Add(i*chunk), src))
	}
	if p := st.PinnedBytes(); p > 4096 {
		t.Errorf("pinned %d bytes, over the budget of 4096", p)
	}
	// A copy over a quarter of the budget goes from the caller's memory.
	big := make([]byte, 2000)
	for j := range big {
		big[j] = byte(g.rng.IntN(256))
	}
	bigDev := g.alloc(len(big))
	g.ok(StageHtoD(st, bigDev, big))
	g.sync()
	got := make([]byte, len(want))
	g.ok(CopyDtoH(g.d, got, dev))
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("byte %d (chunk %d): %d, want %d", i, i/chunk, got[i], want[i])
			}
		}
	}
	gotBig := make([]byte, len(big))
	g.ok(CopyDtoH(g.d, gotBig, bigDev))
	if !bytes.Equal(gotBig, big) {
		t.Error("the large copy differs")
	}
}
