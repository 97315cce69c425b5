package cudabackend

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// A value offloaded to pinned host memory comes back bit for bit after its
// device storage was released and the block written over by later work
// (the copies are ordered on the stream); the pinned buffer is reused for
// the next offload of the same size (no new pinning per step); views of
// part of a storage are not offloaded, NF4 weights are refused, and a copy
// restores once.
func TestOffloadToHostRoundTrip(t *testing.T) {
	b := open(t, Options{})
	b.collect()
	rng := rand.New(rand.NewPCG(5, 11))
	for _, tc := range []struct {
		dt tensor.DType
		n  int
	}{{tensor.F32, 1}, {tensor.F32, 100003}, {tensor.BF16, 7}, {tensor.BF16, 65537}} {
		want := make([]float32, tc.n)
		for i := range want {
			want[i] = float32(rng.NormFloat64())
		}
		x := tensor.FromHost(b, tensor.F32, want, tc.n).To(tc.dt)
		want = x.F32() // bf16-rounded for BF16
		before := b.PinnedBytes()
		off, err := tensor.Offload(x)
		if err != nil || off == nil {
			t.Fatalf("%v x %d: offload %v, %v", tc.dt, tc.n, off, err)
		}
		if err := tensor.Release(x); err != nil {
			t.Fatal(err)
		}
		// Later work takes the freed block and writes over it.
		junk := tensor.Full(b, tc.dt, -3, tc.n)
		y, err := off.Restore()
		if err != nil {
			t.Fatal(err)
		}
		if got := y.F32(); !slices.Equal(got, want) {
			t.Errorf("%v x %d: restored value differs", tc.dt, tc.n)
		}
		if junk.F32()[0] != -3 {
			t.Error("the restore wrote into another tensor")
		}
		grew := b.PinnedBytes() - before
		if grew > int64(tc.n*tc.dt.Size()) {
			t.Errorf("%v x %d: %d bytes pinned for %d", tc.dt, tc.n, grew, tc.n*tc.dt.Size())
		}
		// The same size again reuses the pooled buffer.
		again, err := tensor.Offload(y)
		if err != nil {
			t.Fatal(err)
		}
		if b.PinnedBytes() != before+grew {
			t.Errorf("%v x %d: a second offload pinned %d more bytes", tc.dt, tc.n, b.PinnedBytes()-before-grew)
		}
		if _, err := again.Restore(); err != nil {
			t.Fatal(err)
		}
		if _, err := again.Restore(); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("second restore: %v", err)
		}
	}
	whole := tensor.Full(b, tensor.F32, 1, 4, 8)
	if off, err := tensor.Offload(whole.Narrow(0, 1, 2)); off != nil || err != nil {
		t.Errorf("a view of part of a storage: offloaded %v, %v", off, err)
	}
	q := tensor.FromHost(b, tensor.NF4, tensor.NF4Data{Packed: make([]byte, 32), Absmax: []float32{1}, BlockSize: 64, Len: 64}, 64)
	if _, err := tensor.Offload(q); !errors.Is(err, tensor.ErrUnsupported) {
		t.Errorf("NF4: %v, want ErrUnsupported", err)
	}
}
