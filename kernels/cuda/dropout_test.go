package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/ftune/ftune/kernels/dropout"
)

// dropoutCheck launches DropoutMask over n elements at byte offset off
// into a buffer poisoned with NaN, with 4 guard elements after the mask,
// and requires the mask to equal dropout.Mask bit for bit and the guard to
// stay poisoned (no element past n written).
func dropoutCheck(t *testing.T, g *gpu, name string, n, off int, key, pos uint64, p float64) {
	t.Helper()
	drop, keep := dropout.Threshold(p)
	const guard = 4
	buf := g.alloc(off + 4*(n+guard))
	m := buf + Ptr(off)
	g.ok(g.d.DropoutMask(g.s, m, key, pos, int64(n), drop, keep))
	got := g.down(m, n+guard, F32)
	want := make([]float32, n)
	dropout.Mask(want, key, pos, drop, keep)
	bad, kept := 0, 0
	for i, w := range want {
		if math.Float32bits(got[i]) != math.Float32bits(w) {
			if bad < 5 {
				t.Errorf("%s: m[%d] = %g (bits %#08x), want %g", name, i, got[i], math.Float32bits(got[i]), w)
			}
			bad++
		}
		if w != 0 {
			kept++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ from dropout.Mask", name, bad, n)
	}
	for i := n; i < n+guard; i++ {
		if b := math.Float32bits(got[i]); b != 0xFFFFFFFF {
			t.Errorf("%s: guard element %d past n written (bits %#08x)", name, i-n, b)
		}
	}
	// A mask that is all kept or all dropped would pass a broken comparison
	// of constants; at these sizes both kinds of element must appear.
	if n >= 1000 && (kept == 0 || kept == n) {
		t.Errorf("%s: %d of %d elements kept", name, kept, n)
	}
	record("dropout_mask_fwd_f32/"+name, n, 0, 0, 0, tol{}, bad == 0)
}

// TestDropoutMask checks dropout.cu against dropout.Mask bit for bit: ragged
// sizes (a partial last draw of 1, 2 or 3 elements, many blocks), position 0
// and one past 2^40 (the 64-bit g+pos and (g+1)·γ products), key 0 and a
// random one, p 0.05 and 0.5.
func TestDropoutMask(t *testing.T) {
	g := needGPU(t)
	keys := []uint64{0, g.rng.Uint64()}
	for _, n := range []int{1, 3, 4, 5, 7, 1023, 4097, 300001} {
		for _, pos := range []uint64{0, 1<<40 + 5} {
			for _, key := range keys {
				for _, p := range []float64{0.05, 0.5} {
					dropoutCheck(t, g, fmt.Sprintf("n%d/pos%d/key%#x/p%g", n, pos, key, p), n, 0, key, pos, p)
				}
			}
		}
	}
}

// TestDropoutMaskStrideAndViews covers the paths TestDropoutMask's sizes do
// not: more draws than the grid has threads (launch1D caps it at 8 blocks of
// 256 per SM, so threads loop), and masks that start 4, 8 or 12 bytes past a
// 16-byte boundary (a view into a larger tensor), where the kernel must not
// take its float4 stores.
func TestDropoutMaskStrideAndViews(t *testing.T) {
	g := needGPU(t)
	key := g.rng.Uint64()
	n := 4*g.d.SMs*8*256 + 4*1000 + 3
	dropoutCheck(t, g, fmt.Sprintf("stride/n%d", n), n, 0, key, 12345, 0.1)
	for _, off := range []int{4, 8, 12} {
		for _, n := range []int{1, 5, 4097} {
			dropoutCheck(t, g, fmt.Sprintf("view+%dB/n%d", off, n), n, off, key, 1<<40+5, 0.5)
		}
	}
}

// TestDropoutMaskArgs checks the launcher's refusals and no-op.
func TestDropoutMaskArgs(t *testing.T) {
	g := needGPU(t)
	m := g.alloc(16)
	if err := g.d.DropoutMask(g.s, m, 1, 0, -1, 100, 1); err == nil {
		t.Error("n = -1 accepted")
	}
	g.ok(g.d.DropoutMask(g.s, m, 1, 0, 0, 100, 1))
	got := g.down(m, 4, F32)
	for i, v := range got {
		if math.Float32bits(v) != 0xFFFFFFFF {
			t.Errorf("n = 0 wrote m[%d] = %g", i, v)
		}
	}
}

// applyCase is one DropoutApply launch: n elements of x at byte offset xOff
// into their buffer and of y at yOff into its own (in place: y is x, at
// xOff); specials puts NaN, ±Inf, ±0, a subnormal and the largest float
// in x between normal values; poison is the byte y's buffer is filled with
// first (0xFF: NaN); t is x's and y's type, F32 (the zero value) or BF16.
type applyCase struct {
	t             DType
	n, xOff, yOff int
	inPlace       bool
	key, pos      uint64
	p             float64
	specials      bool
	poison        uint8
}

func (c applyCase) String() string {
	where := fmt.Sprintf("y+%dB,x+%dB", c.yOff, c.xOff)
	if c.inPlace {
		where = fmt.Sprintf("inplace+%dB", c.xOff)
	}
	return fmt.Sprintf("%v/n%d/%s/pos%d/key%#x/p%g/specials%v/poison%#x", c.dtype(), c.n, where, c.pos, c.key, c.p, c.specials, c.poison)
}

func (c applyCase) dtype() DType {
	if c.t == BF16 {
		return BF16
	}
	return F32
}

// dropoutSpecials are the x values IEEE multiplication treats apart: under
// a dropped element NaN and ±Inf give NaN and -0 stays -0.
var dropoutSpecials = []float32{
	float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.Copysign(0, -1)), 0, math.SmallestNonzeroFloat32, -math.MaxFloat32,
}

// bf16DropoutSpecials are dropoutSpecials as bf16 values: the smallest
// bf16 subnormal, and the largest finite bf16 (·keep overflows to -Inf).
var bf16DropoutSpecials = []float32{
	float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.Copysign(0, -1)), 0, math.Float32frombits(0x00010000), -math.Float32frombits(0x7f7f0000),
}

// sameFloat is bit equality, except that any NaN equals any NaN: a GPU
// writes its canonical NaN where the host's product keeps x's payload or
// sets the sign.
func sameFloat(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
}

// dropoutApplyCheck launches DropoutApply for c with 4 guard elements after
// y and requires y to equal dropout.Apply (for BF16: on x's values, each
// result rounded to bf16; the kernel's one rounding after a float32
// product), the guard to keep the poison, and (out of place) x to be
// unchanged.
func dropoutApplyCheck(t *testing.T, g *gpu, c applyCase) {
	t.Helper()
	name := c.String()
	drop, keep := dropout.Threshold(c.p)
	const guard = 4
	t0, size := c.dtype(), c.dtype().Size()
	specials := dropoutSpecials
	if t0 == BF16 {
		specials = bf16DropoutSpecials
	}
	x := g.randn(c.n, 1, t0)
	if c.specials {
		for i := 0; i < c.n; i += 3 {
			x[i] = specials[(i/3)%len(specials)]
		}
		// An infinity under a dropped element (Inf·0 = NaN) by
		// construction: with the key drawn per run, the every-third-element
		// pattern alone missed every dropped element about once in a
		// hundred runs at p = 0.05 and n = 1023 (0.95^97 ≈ 0.7% per mask).
		mask := make([]float32, c.n)
		dropout.Mask(mask, c.key, c.pos, drop, keep)
		for i, m := range mask {
			if m == 0 {
				x[i] = float32(math.Inf(1))
				break
			}
		}
	}
	xbuf := g.alloc(c.xOff + size*(c.n+guard))
	xp := xbuf + Ptr(c.xOff)
	if t0 == BF16 {
		g.ok(CopyHtoD(g.d, xp, toBF16s(x)))
	} else {
		g.ok(CopyHtoD(g.d, xp, x))
	}
	yp := xp
	if !c.inPlace {
		ybuf := g.alloc(c.yOff + size*(c.n+guard))
		g.ok(g.d.Memset8(ybuf, c.poison, c.yOff+size*(c.n+guard)))
		yp = ybuf + Ptr(c.yOff)
	}
	g.ok(g.d.DropoutApply(g.s, t0, yp, xp, c.key, c.pos, int64(c.n), drop, keep))
	got := g.down(yp, c.n+guard, t0)
	want := make([]float32, c.n)
	dropout.Apply(want, x, c.key, c.pos, drop, keep)
	if t0 == BF16 {
		want = fromBF16s(toBF16s(want))
	}
	bad, kept, nanDropped := 0, 0, 0
	for i, w := range want {
		if !sameFloat(got[i], w) {
			if bad < 5 {
				t.Errorf("%s: y[%d] = %g (bits %#08x), want %g (bits %#08x) for x %g",
					name, i, got[i], math.Float32bits(got[i]), w, math.Float32bits(w), x[i])
			}
			bad++
		}
		if w != 0 && x[i] == x[i] {
			kept++
		}
		if math.IsInf(float64(x[i]), 0) && w != w {
			nanDropped++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ from dropout.Apply", name, bad, c.n)
	}
	poison := uint32(c.poison) * 0x01010101
	if c.inPlace {
		poison = 0xFFFFFFFF // g.alloc's fill
	}
	if t0 == BF16 { // a bf16 guard element widened
		poison &= 0xFFFF0000
	}
	for i := c.n; i < c.n+guard; i++ {
		if b := math.Float32bits(got[i]); b != poison {
			t.Errorf("%s: guard element %d past n written (bits %#08x)", name, i-c.n, b)
		}
	}
	if !c.inPlace {
		after := g.down(xp, c.n, t0)
		for i := range x {
			if math.Float32bits(after[i]) != math.Float32bits(x[i]) {
				t.Errorf("%s: x[%d] changed from %g to %g out of place", name, i, x[i], after[i])
				break
			}
		}
	}
	// Neither an all-kept nor an all-dropped result may pass, and with
	// specials an infinity must meet a dropped element (the Inf·0 = NaN case).
	if c.n >= 1000 && (kept == 0 || kept == c.n) {
		t.Errorf("%s: %d of %d elements kept", name, kept, c.n)
	}
	if c.specials && c.n >= 1000 && nanDropped == 0 {
		t.Errorf("%s: no infinity under a dropped element", name)
	}
	record("dropout_apply_fwd_"+t0.String()+"/"+name, c.n, 0, 0, 0, tol{}, bad == 0)
}

// TestDropoutApply checks DropoutApply against dropout.Apply bit for bit
// (NaN for NaN), in F32 and in BF16 (against dropout.Apply rounded): the
// mask tests' ragged sizes and positions, out of place and in place, with
// and without the specials. Out of place, y is also
// poisoned with a finite pattern (0x7F7F7F7F), so a NaN the kernel must
// write cannot be mistaken for the NaN poison.
func TestDropoutApply(t *testing.T) {
	g := needGPU(t)
	key := g.rng.Uint64()
	for _, t0 := range []DType{F32, BF16} {
		for _, n := range []int{1, 3, 4, 5, 7, 1023, 4097, 300001} {
			for _, pos := range []uint64{0, 1<<40 + 5} {
				for _, p := range []float64{0.05, 0.5} {
					for _, inPlace := range []bool{false, true} {
						for _, specials := range []bool{false, true} {
							c := applyCase{t: t0, n: n, inPlace: inPlace, key: key, pos: pos, p: p, specials: specials, poison: 0xFF}
							dropoutApplyCheck(t, g, c)
							if !inPlace && specials {
								c.poison = 0x7F
								dropoutApplyCheck(t, g, c)
							}
						}
					}
				}
			}
		}
	}
}

// TestDropoutApplyStrideAndViews: more draws than the grid has threads,
// key 0, and views that start 4, 8 or 12 bytes past a 16-byte boundary
// for y, for x, for both (in place) and for both at different offsets,
// where the kernel must not take its float4 loads and stores; the same in
// BF16 with views 2, 4 or 6 bytes past an 8-byte boundary (its uint2
// loads and stores).
func TestDropoutApplyStrideAndViews(t *testing.T) {
	g := needGPU(t)
	key := g.rng.Uint64()
	n := 4*g.d.SMs*8*256 + 4*1000 + 3
	for _, t0 := range []DType{F32, BF16} {
		dropoutApplyCheck(t, g, applyCase{t: t0, n: n, key: key, pos: 12345, p: 0.1, specials: true, poison: 0xFF})
		dropoutApplyCheck(t, g, applyCase{t: t0, n: n, inPlace: true, key: 0, pos: 12345, p: 0.1, poison: 0xFF})
		// Offsets in whole elements past the vector loads' alignment (16
		// bytes for F32's float4, 8 for BF16's uint2).
		size, align := t0.Size(), 4*t0.Size()
		for _, off := range []int{size, 2 * size, 3 * size} {
			for _, n := range []int{1, 5, 4097} {
				for _, c := range []applyCase{
					{n: n, yOff: off},
					{n: n, xOff: off},
					{n: n, xOff: off, yOff: align - off},
					{n: n, xOff: off, inPlace: true},
				} {
					c.t, c.key, c.pos, c.p, c.specials, c.poison = t0, key, 1<<40+5, 0.5, true, 0xFF
					dropoutApplyCheck(t, g, c)
				}
			}
		}
	}
}

// TestDropoutApplyArgs checks the launcher's refusals of n < 0 and of a type
// without a kernel (F64), and its n = 0 no-op (nothing written).
func TestDropoutApplyArgs(t *testing.T) {
	g := needGPU(t)
	x := g.up([]float32{1, 2, 3, 4}, F32)
	y := g.alloc(16)
	if err := g.d.DropoutApply(g.s, F32, y, x, 1, 0, -1, 100, 1); err == nil {
		t.Error("n = -1 accepted")
	}
	g.ok(g.d.DropoutApply(g.s, F32, y, x, 1, 0, 0, 100, 1))
	if err := g.d.DropoutApply(g.s, F64, y, x, 1, 0, 4, 100, 1); err == nil {
		t.Error("F64 accepted")
	}
	for i, v := range g.down(y, 4, F32) {
		if math.Float32bits(v) != 0xFFFFFFFF {
			t.Errorf("n = 0 wrote y[%d] = %g", i, v)
		}
	}
}
