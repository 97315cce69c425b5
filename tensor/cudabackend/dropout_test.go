package cudabackend

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/dropout"
	"github.com/ftune/ftune/tensor"
)

// TestDropoutClaimed: the backend draws and applies dropout itself (no GPU
// needed: the check is on the type), so tensor.DropoutMask and
// tensor.Dropout never copy a mask or x through the host.
func TestDropoutClaimed(t *testing.T) {
	var b tensor.Backend = (*Backend)(nil)
	if _, ok := b.(tensor.DropoutBackend); !ok {
		t.Error("the CUDA backend must implement tensor.DropoutBackend")
	}
}

// sameBits fails unless got and want are equal bit for bit, any NaN
// matching any NaN (a GPU writes its canonical NaN where the host's
// product keeps x's payload).
func sameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	bad := 0
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && (g == g || w == w) {
			if bad < 5 {
				t.Errorf("%s[%d] = %g (bits %#08x), want %g (bits %#08x)", name, i, g, math.Float32bits(g), w, math.Float32bits(w))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ from the CPU's", name, bad, len(want))
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

// dropoutInput is n normal values with NaN, ±Inf, -0 and the largest
// float at every fifth element, the values IEEE multiplication treats
// apart (under a dropped element NaN and ±Inf give NaN, -0 stays -0).
func dropoutInput(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), math.MaxFloat32}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		if i%5 == 0 {
			x[i] = specials[(i/5)%len(specials)]
		}
	}
	return x
}

// TestDropoutMatchesCPU: tensor.Dropout on the GPU gives the CPU backend's
// x·mask bit for bit (NaN for NaN), for shapes with a partial last draw,
// an empty one, a position past 2^32 draws, and a transposed x (made
// contiguous first by tensor.Dropout).
func TestDropoutMatchesCPU(t *testing.T) {
	b := open(t, Options{})
	const key, p = 0x5eed0fd20a11, 0.3
	for _, c := range []struct {
		pos        uint64
		shape      []int
		transposed bool
	}{
		{0, []int{1}, false},
		{7, []int{3, 5}, false},
		{1<<40 + 5, []int{2, 3, 4097}, false},
		{0, []int{64, 257}, true},
		{3, []int{0, 4}, false},
	} {
		n := 1
		for _, d := range c.shape {
			n *= d
		}
		host := dropoutInput(n, c.pos)
		xg := tensor.FromHost(b, tensor.F32, host, c.shape...)
		xc := tensor.FromHost(tensor.CPUDefault(), tensor.F32, host, c.shape...)
		if c.transposed {
			xg, xc = xg.Transpose(0, 1), xc.Transpose(0, 1)
		}
		got := tensor.Dropout(xg, key, c.pos, p)
		want := tensor.Dropout(xc, key, c.pos, p)
		if !got.Shape().Equal(want.Shape()) {
			t.Fatalf("shape %v: got %v", want.Shape(), got.Shape())
		}
		sameBits(t, "x·mask "+want.Shape().String(), got.F32(), want.F32())
		if !c.transposed {
			sameBits(t, "x after "+want.Shape().String(), xg.F32(), host)
		}
	}
}

// TestDropoutViews draws into and from contiguous views that start 72
// bytes into NaN-filled tensors (not 16-byte aligned: the kernels'
// element-by-element loads and stores): the mask, x·mask out of place and
// x·mask in place each equal the reference, and the elements around the
// view keep their values.
func TestDropoutViews(t *testing.T) {
	b := open(t, Options{})
	const key, pos = 42, 1000
	drop, keep := dropout.Threshold(0.1)
	host := dropoutInput(24, 9)
	mask := make([]float32, 24)
	dropout.Mask(mask, key, pos, drop, keep)
	applied := make([]float32, 24)
	dropout.Apply(applied, host, key, pos, drop, keep)

	view := func() (*tensor.Tensor, *tensor.Tensor) {
		parent := tensor.Full(b, tensor.F32, math.NaN(), 10, 6)
		v := parent.Narrow(0, 3, 4)
		if !v.IsContiguous() || v.Offset() != 18 {
			t.Fatalf("view: contiguous %v offset %d, want a contiguous view at 18", v.IsContiguous(), v.Offset())
		}
		return parent, v
	}
	untouched := func(name string, all []float32) {
		t.Helper()
		for _, i := range []int{0, 17, 42, 59} {
			if !math.IsNaN(float64(all[i])) {
				t.Errorf("%s: element %d outside the view written: %g", name, i, all[i])
			}
		}
	}

	parent, dst := view()
	if err := b.Dropout(dst, nil, key, pos, drop, keep); err != nil {
		t.Fatal(err)
	}
	sameBits(t, "mask view", parent.F32()[18:42], mask)
	untouched("mask", parent.F32())

	xparent, x := view()
	xs := tensor.FromHost(b, tensor.F32, host, 4, 6)
	if err := b.Copy(x, xs); err != nil {
		t.Fatal(err)
	}
	yparent, y := view()
	if err := b.Dropout(y, x, key, pos, drop, keep); err != nil {
		t.Fatal(err)
	}
	sameBits(t, "out-of-place view", yparent.F32()[18:42], applied)
	untouched("out of place", yparent.F32())
	sameBits(t, "x after", xparent.F32()[18:42], host)

	if err := b.Dropout(x, x, key, pos, drop, keep); err != nil {
		t.Fatal(err)
	}
	sameBits(t, "in-place view", xparent.F32()[18:42], applied)
	untouched("in place", xparent.F32())
}

// TestDropoutRefused: operands the kernels cannot take are refused with an
// error naming the op and what was expected, never a panic, a silent
// partial result or a race.
func TestDropoutRefused(t *testing.T) {
	b := open(t, Options{})
	drop, keep := dropout.Threshold(0.1)
	f32 := func(shape ...int) *tensor.Tensor { return tensor.New(b, tensor.F32, shape...) }
	shared := f32(4, 8)
	for _, c := range []struct {
		name   string
		dst, x *tensor.Tensor
		want   string
	}{
		{"bf16 dst", tensor.New(b, tensor.BF16, 4, 4), nil, "F32 expected"},
		{"strided dst", f32(4, 6).Transpose(0, 1), nil, "contiguous F32 expected"},
		{"host dst", tensor.New(tensor.CPUDefault(), tensor.F32, 8), nil, "not on backend"},
		{"bf16 x", f32(4, 4), tensor.New(b, tensor.BF16, 4, 4), "F32 expected"},
		{"strided x", f32(6, 4), f32(4, 6).Transpose(0, 1), "contiguous F32 expected"},
		{"host x", f32(8), tensor.New(tensor.CPUDefault(), tensor.F32, 8), "not on backend"},
		{"x of another size", f32(4, 4), f32(4, 5), "the same number expected"},
		{"shifted overlap", shared.Narrow(0, 1, 2), shared.Narrow(0, 0, 2), "overlap"},
	} {
		err := b.Dropout(c.dst, c.x, 1, 0, drop, keep)
		if err == nil || !strings.Contains(err.Error(), "Dropout") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: dst %v x %v: err %v, want one saying %q", c.name, c.dst, c.x, err, c.want)
		}
	}
}
