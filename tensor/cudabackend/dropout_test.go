package cudabackend

import (
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/dropout"
	"github.com/ftune/ftune/tensor"
)

// TestDropoutMaskClaimed: the backend draws masks itself (no GPU needed:
// the check is on the type), so tensor.DropoutMask never uploads one.
func TestDropoutMaskClaimed(t *testing.T) {
	var b tensor.Backend = (*Backend)(nil)
	if _, ok := b.(tensor.DropoutMaskBackend); !ok {
		t.Error("the CUDA backend must implement tensor.DropoutMaskBackend")
	}
}

// sameBits fails unless got and want are equal bit for bit.
func sameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if bad < 5 {
				t.Errorf("%s[%d] = %g, want %g", name, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ from the CPU's mask", name, bad, len(want))
	}
}

// TestDropoutMaskMatchesCPU: tensor.DropoutMask on the GPU gives the CPU
// backend's mask bit for bit, for shapes with a partial last draw, an empty
// one, and a position past 2^32 draws.
func TestDropoutMaskMatchesCPU(t *testing.T) {
	b := open(t, Options{})
	const key, p = 0x5eed0fd20a11, 0.1
	for _, c := range []struct {
		pos   uint64
		shape []int
	}{
		{0, []int{1}},
		{7, []int{3, 5}},
		{1<<40 + 5, []int{2, 3, 4097}},
		{0, []int{64, 257}},
		{3, []int{0, 4}},
	} {
		got := tensor.DropoutMask(b, key, c.pos, p, c.shape...)
		want := tensor.DropoutMask(tensor.CPUDefault(), key, c.pos, p, c.shape...)
		if !got.Shape().Equal(want.Shape()) {
			t.Fatalf("shape %v: got %v", want.Shape(), got.Shape())
		}
		sameBits(t, want.Shape().String(), got.F32(), want.F32())
	}
}

// TestDropoutMaskView draws into a contiguous view that starts 72 bytes into
// a NaN-filled tensor (not 16-byte aligned: the kernel's element-by-element
// stores): the view equals the CPU's mask and the rows around it keep
// their NaN.
func TestDropoutMaskView(t *testing.T) {
	b := open(t, Options{})
	const key, pos = 42, 1000
	drop, keep := dropout.Threshold(0.1)
	parent := tensor.Full(b, tensor.F32, math.NaN(), 10, 6)
	view := parent.Narrow(0, 3, 4)
	if !view.IsContiguous() || view.Offset() != 18 {
		t.Fatalf("view: contiguous %v offset %d, want a contiguous view at 18", view.IsContiguous(), view.Offset())
	}
	if err := b.DropoutMask(view, key, pos, drop, keep); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 24)
	dropout.Mask(want, key, pos, drop, keep)
	all := parent.F32()
	sameBits(t, "view", all[18:42], want)
	for _, i := range []int{0, 17, 42, 59} {
		if !math.IsNaN(float64(all[i])) {
			t.Errorf("element %d outside the view written: %g", i, all[i])
		}
	}
}

// TestDropoutMaskRefused: a destination the kernel cannot fill is refused
// with an error naming the op, never a panic or a silent partial mask.
func TestDropoutMaskRefused(t *testing.T) {
	b := open(t, Options{})
	drop, keep := dropout.Threshold(0.1)
	for _, c := range []struct {
		name string
		dst  *tensor.Tensor
		want string
	}{
		{"bf16", tensor.New(b, tensor.BF16, 4, 4), "F32 expected"},
		{"strided", tensor.New(b, tensor.F32, 4, 6).Transpose(0, 1), "contiguous F32 expected"},
		{"host tensor", tensor.New(tensor.CPUDefault(), tensor.F32, 8), "not on backend"},
	} {
		err := b.DropoutMask(c.dst, 1, 0, drop, keep)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s dst %v: err %v, want one saying %q", c.name, c.dst, err, c.want)
		}
	}
}
