package cudabackend

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/dropout"
	"github.com/ftune/ftune/tensor"
)

// bf16DropoutWant is the CPU backend's float32 x·mask on x widened, each
// element rounded to bf16 (to nearest even): what the bf16 kernel's
// float32 product and one rounding must give bit for bit.
func bf16DropoutWant(t *testing.T, xb []uint16, key, pos uint64, drop uint32, keep float32) []uint16 {
	t.Helper()
	cpu := tensor.CPUDefault()
	xs := make([]float32, len(xb))
	for i, u := range xb {
		xs[i] = tensor.BF16ToF32(u)
	}
	hx := tensor.FromHost(cpu, tensor.F32, xs, len(xs))
	host := tensor.New(cpu, tensor.F32, len(xs))
	if err := cpu.Dropout(host, hx, key, pos, drop, keep); err != nil {
		t.Fatal(err)
	}
	return roundBF16(host.F32())
}

// sameBF16 fails unless got and want are equal bit for bit, any NaN
// matching any NaN, and checks that got keeps exactly the elements
// dropout.Mask keeps at (key, pos): zero where the mask is 0, nonzero where
// it is not, for every finite nonzero x (the keep pattern on its own, so a
// wrong draw cannot hide behind a matching wrong reference). It returns
// how many elements were kept.
func sameBF16(t *testing.T, name string, got, want, xb []uint16, key, pos uint64, drop uint32, keep float32) int {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	mask := make([]float32, len(xb))
	dropout.Mask(mask, key, pos, drop, keep)
	bad, badKeep, kept := 0, 0, 0
	for i := range want {
		if ulpsBF16(got[i], want[i]) != 0 {
			if bad < 5 {
				t.Errorf("%s[%d] = %#04x (%g), want %#04x (%g) for x %g", name, i, got[i], tensor.BF16ToF32(got[i]), want[i], tensor.BF16ToF32(want[i]), tensor.BF16ToF32(xb[i]))
			}
			bad++
		}
		x := float64(tensor.BF16ToF32(xb[i]))
		if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		if gotKept := got[i]&0x7fff != 0; gotKept != (mask[i] != 0) {
			badKeep++
		}
		if mask[i] != 0 {
			kept++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ from the CPU's x·mask rounded to bf16", name, bad, len(want))
	}
	if badKeep > 0 {
		t.Errorf("%s: %d elements kept or dropped against dropout.Mask", name, badKeep)
	}
	return kept
}

// TestBF16DropoutMatchesCPU: Backend.Dropout on BF16 x and dst gives the
// CPU's float32 x·mask on x widened, rounded to bf16, bit for bit (NaN for
// NaN), and keeps exactly dropout.Mask's elements; dst is NaN-poisoned
// first, x is unchanged out of place, and dst == x in place gives the same.
// Ragged sizes (partial last draws of 1, 2 and 3 elements, many blocks of
// whole uint2 loads and stores), positions that are not multiples of
// 4 and one past 2^40, and p where keep (1/(1-p)) is not a bf16 value, so
// rounding scale first would show. x carries NaN, ±Inf, -0 and the largest
// float (+Inf in bf16) at every fifth element.
func TestBF16DropoutMatchesCPU(t *testing.T) {
	b := open(t, Options{})
	const key = 0x5eed0fd20a11
	for _, c := range []struct {
		pos uint64
		n   int
		p   float64
	}{
		{0, 1, 0.3}, {7, 15, 0.1}, {1<<40 + 5, 2 * 3 * 4097, 0.3}, {3, 64 * 257, 0.1}, {5, 6, 0.5},
	} {
		drop, keep := dropout.Threshold(c.p)
		if tensor.BF16ToF32(tensor.F32ToBF16(keep)) == keep && c.p != 0.5 {
			t.Fatalf("keep %g for p %g is a bf16 value; the case is meant to need the float32 scale", keep, c.p)
		}
		xb := roundBF16(dropoutInput(c.n, c.pos))
		want := bf16DropoutWant(t, xb, key, c.pos, drop, keep)

		x := tensor.FromHost(b, tensor.BF16, append([]uint16(nil), xb...), c.n)
		dst := tensor.Full(b, tensor.BF16, math.NaN(), c.n)
		if err := b.Dropout(dst, x, key, c.pos, drop, keep); err != nil {
			t.Fatal(err)
		}
		kept := sameBF16(t, "out of place", hostCopy[uint16](t, b, dst), want, xb, key, c.pos, drop, keep)
		if c.n >= 1000 && (kept == 0 || kept == c.n) {
			t.Errorf("n %d: %d kept", c.n, kept)
		}
		if after := hostCopy[uint16](t, b, x); ulpsSlice(after, xb) != 0 {
			t.Errorf("n %d: x changed out of place", c.n)
		}
		if err := b.Dropout(x, x, key, c.pos, drop, keep); err != nil {
			t.Fatal(err)
		}
		sameBF16(t, "in place", hostCopy[uint16](t, b, x), want, xb, key, c.pos, drop, keep)
	}
}

// ulpsSlice is how many elements of a and b differ (NaN matching NaN).
func ulpsSlice(a, b []uint16) int {
	n := 0
	for i := range a {
		if ulpsBF16(a[i], b[i]) != 0 {
			n++
		}
	}
	return n
}

// TestBF16DropoutViews: BF16 x and dst as contiguous views 36 bytes into
// NaN-filled tensors (4 bytes past an 8-byte boundary: the kernel's
// element-by-element path), out of place and in place, each equal to the
// reference with the elements around the view untouched.
func TestBF16DropoutViews(t *testing.T) {
	b := open(t, Options{})
	const key, pos = 42, 1001
	drop, keep := dropout.Threshold(0.1)
	xb := roundBF16(dropoutInput(24, 9))
	want := bf16DropoutWant(t, xb, key, pos, drop, keep)
	view := func() (*tensor.Tensor, *tensor.Tensor) {
		parent := tensor.Full(b, tensor.BF16, math.NaN(), 10, 6)
		v := parent.Narrow(0, 3, 4)
		if !v.IsContiguous() || v.Offset() != 18 {
			t.Fatalf("view: contiguous %v offset %d, want a contiguous view at 18", v.IsContiguous(), v.Offset())
		}
		return parent, v
	}
	untouched := func(name string, all []uint16) {
		t.Helper()
		for _, i := range []int{0, 17, 42, 59} {
			if all[i]&0x7fff <= 0x7f80 {
				t.Errorf("%s: element %d outside the view written: %#04x", name, i, all[i])
			}
		}
	}
	xparent, x := view()
	if err := b.Copy(x, tensor.FromHost(b, tensor.BF16, append([]uint16(nil), xb...), 4, 6)); err != nil {
		t.Fatal(err)
	}
	yparent, y := view()
	if err := b.Dropout(y, x, key, pos, drop, keep); err != nil {
		t.Fatal(err)
	}
	all := hostCopy[uint16](t, b, yparent)
	sameBF16(t, "out-of-place view", all[18:42], want, xb, key, pos, drop, keep)
	untouched("out of place", all)
	if err := b.Dropout(x, x, key, pos, drop, keep); err != nil {
		t.Fatal(err)
	}
	all = hostCopy[uint16](t, b, xparent)
	sameBF16(t, "in-place view", all[18:42], want, xb, key, pos, drop, keep)
	untouched("in place", all)
}

// TestBF16DropoutRefused: a BF16 mask (masks are drawn in F32), mixed x and
// dst dtypes, a dtype without a kernel, and a shifted BF16 overlap are
// refused with ErrUnsupported (the overlap with its own error) naming the
// op and what was expected.
func TestBF16DropoutRefused(t *testing.T) {
	b := open(t, Options{})
	drop, keep := dropout.Threshold(0.1)
	bf := func(shape ...int) *tensor.Tensor { return tensor.New(b, tensor.BF16, shape...) }
	shared := bf(4, 8)
	for _, c := range []struct {
		name        string
		dst, x      *tensor.Tensor
		want        string
		unsupported bool
	}{
		{"bf16 mask", bf(4, 4), nil, "mask into BF16 dst", true},
		{"bf16 x into f32 dst", tensor.New(b, tensor.F32, 4, 4), bf(4, 4), "x BF16 into dst F32", true},
		{"f32 x into bf16 dst", bf(4, 4), tensor.New(b, tensor.F32, 4, 4), "x F32 into dst BF16 (x of dst's dtype expected: BF16 expected)", true},
		{"f64", tensor.New(b, tensor.F64, 4), tensor.New(b, tensor.F64, 4), "F32 or BF16 expected", true},
		{"strided bf16 x", bf(6, 4), bf(4, 6).Transpose(0, 1), "contiguous BF16 expected", true},
		{"shifted bf16 overlap", shared.Narrow(0, 1, 2), shared.Narrow(0, 0, 2), "overlap", false},
	} {
		err := b.Dropout(c.dst, c.x, 1, 0, drop, keep)
		if err == nil || !strings.Contains(err.Error(), "Dropout") || !strings.Contains(err.Error(), c.want) ||
			errors.Is(err, tensor.ErrUnsupported) != c.unsupported {
			t.Errorf("%s: dst %v x %v: err %v, want one saying %q", c.name, c.dst, c.x, err, c.want)
		}
	}
}
