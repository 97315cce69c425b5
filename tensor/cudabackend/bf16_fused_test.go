package cudabackend

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// The fused ops with BF16 activations (the kernels' _bf16 variants) against
// the same ops' float32 path on this backend, fed the same bf16 values
// widened to float32, its outputs rounded to bf16.
//
// bf16ULPs is the tolerance on a bf16 output: the bf16 kernels widen every
// input exactly, compute in float32 with the float32 kernels' expressions
// and order (the same templates) and round each output once to nearest
// even, which is what the reference does. The two agree bit for bit unless
// the compiler contracted a multiply-add differently in the two
// instantiations; that moves the float32 value by about a float32 ulp,
// which moves the rounded bf16 by at most one bf16 ulp, and only when the
// float32 value lies next to a rounding boundary.
const bf16ULPs = 1

// f32RelTol is the tolerance on the float32 outputs of the bf16 paths
// (invRMS, dw), as a normalised error: the same float32 arithmetic as the
// reference on the same values, apart from the order of dw's atomic adds
// (≤ 2 blocks of 256 rows here) and any contraction difference, a few
// float32 ulps (1.2e-7 each) at most.
const f32RelTol = 1e-6

// bf16Fused holds one test's backend, random source and the worst
// differences seen, logged at the end.
type bf16Fused struct {
	t     *testing.T
	b     *Backend
	r     *rand.Rand
	ulps  map[string]int     // worst bf16 ulp distance per output
	rel32 map[string]float64 // worst normalised error per float32 output
}

func newBF16Fused(t *testing.T, seed uint64) *bf16Fused {
	f := &bf16Fused{t: t, b: open(t, Options{}), r: rand.New(rand.NewPCG(seed, 16)), ulps: map[string]int{}, rel32: map[string]float64{}}
	t.Cleanup(func() {
		if err := f.b.Sync(); err != nil {
			t.Error(err)
		}
		t.Logf("worst bf16 ulps vs the float32 path: %v; worst float32 normalised errors: %v", f.ulps, f.rel32)
	})
	return f
}

// bits returns n normal values times scale, rounded to bf16.
func (f *bf16Fused) bits(n int, scale float64) []uint16 {
	v := make([]uint16, n)
	for i := range v {
		v[i] = tensor.F32ToBF16(float32(f.r.NormFloat64() * scale))
	}
	return v
}

// bf uploads a copy of v as a BF16 tensor, f32 a copy of v as F32.
func (f *bf16Fused) bf(v []uint16, shape ...int) *tensor.Tensor {
	return tensor.FromHost(f.b, tensor.BF16, append([]uint16(nil), v...), shape...)
}

func (f *bf16Fused) f32(v []float32, shape ...int) *tensor.Tensor {
	return tensor.FromHost(f.b, tensor.F32, append([]float32(nil), v...), shape...)
}

// nanBF and nanF32 are outputs poisoned with NaN, so an element the op
// does not write fails the comparison.
func (f *bf16Fused) nanBF(shape ...int) *tensor.Tensor {
	v := make([]uint16, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = 0x7FC0
	}
	return f.bf(v, shape...)
}

func (f *bf16Fused) nanF32(shape ...int) *tensor.Tensor {
	v := make([]float32, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return f.f32(v, shape...)
}

// must fails the test on an op's error.
func (f *bf16Fused) must(what string, err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
}

// checkULPs compares a bf16 output with the float32 reference rounded to
// bf16: at most bf16ULPs apart, NaN only where the reference is NaN.
func (f *bf16Fused) checkULPs(kind, name string, got []uint16, want []float32) {
	f.t.Helper()
	if len(got) != len(want) {
		f.t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	worst, bad := 0, 0
	for i, w := range want {
		g, wb := got[i], tensor.F32ToBF16(w)
		gNaN, wNaN := g&0x7FFF > 0x7F80, wb&0x7FFF > 0x7F80
		d := 0
		switch {
		case gNaN && wNaN:
		case gNaN || wNaN:
			d = math.MaxInt32
		default:
			d = bf16Order(g) - bf16Order(wb)
			d = max(d, -d)
		}
		worst = max(worst, d)
		if d > bf16ULPs {
			if bad < 5 {
				f.t.Errorf("%s[%d] = %g (%#04x), want %g rounded to %#04x: %d ulps", name, i, tensor.BF16ToF32(g), g, w, wb, d)
			}
			bad++
		}
	}
	if bad > 0 {
		f.t.Errorf("%s: %d of %d elements more than %d bf16 ulp from the float32 path", name, bad, len(want), bf16ULPs)
	}
	f.ulps[kind] = max(f.ulps[kind], worst)
}

// checkF32 compares a float32 output of the bf16 path (invRMS, dw) with
// the float32 path's at f32RelTol.
func (f *bf16Fused) checkF32(kind, name string, got, want []float32) {
	f.t.Helper()
	e := relErr(got, want)
	if !(e <= f32RelTol) {
		f.t.Errorf("%s: normalised error %.3g > %g", name, e, f32RelTol)
	}
	f.rel32[kind] = max(f.rel32[kind], e)
}

// bf16NormSizes: rows × row length; the lengths are not multiples of 32
// (one 256-thread block per row, the dw kernel's 32-column tiles), 77 not
// even of 8, and 260 rows leave the dw kernel's second 256-row chunk
// ragged.
var bf16NormSizes = [][2]int{{3, 77}, {5, 200}, {260, 45}}

type normWeight struct {
	name    string
	w, wRef *tensor.Tensor
}

// normWeights gives the three weight forms with BF16 activations: float32
// values (not bf16-representable: the op must use them as they are, as
// transformers applies Gemma's float32 (1 + w); a kernel that rounded them
// first differs from the reference), BF16, and nil; with the float32
// reference's weight (the same float32 values, the bf16 values widened,
// nil for nil).
func (f *bf16Fused) normWeights(d int) []normWeight {
	raw := make([]float32, d)
	for i := range raw {
		raw[i] = float32(1 + 0.3*f.r.NormFloat64())
	}
	wb := f.bits(d, 0.5)
	return []normWeight{
		{"wF32", f.f32(raw, d), f.f32(raw, d)},
		{"wBF16", f.bf(wb, d), f.f32(widen(wb), d)},
		{"wNil", nil, nil},
	}
}

// TestBF16RMSNorm: RMSNorm and RMSNormBackward on BF16 x, dst, dy, dx,
// with float32 invRMS and dw, for each weight form, dx and dw each
// present or nil.
func TestBF16RMSNorm(t *testing.T) {
	f := newBF16Fused(t, 1)
	const eps = 1e-5
	for _, sz := range bf16NormSizes {
		n, d := sz[0], sz[1]
		for _, wf := range f.normWeights(d) {
			name := fmt.Sprintf("%dx%d_%s", n, d, wf.name)
			// Rows of different scales, so invRMS varies.
			xb := f.bits(n*d, 2.5)
			x := f.bf(xb, n, d)
			y, inv := f.nanBF(n, d), f.nanF32(n)
			f.must(name+" RMSNorm", f.b.RMSNorm(y, inv, x, wf.w, eps))
			yRef, invRef := f.nanF32(n, d), f.nanF32(n)
			f.must(name+" RMSNorm (F32)", f.b.RMSNorm(yRef, invRef, f.f32(widen(xb), n, d), wf.wRef, eps))
			f.checkULPs("RMSNorm y", name+" y", hostCopy[uint16](f.t, f.b, y), hostCopy[float32](f.t, f.b, yRef))
			f.checkF32("RMSNorm invRMS", name+" invRMS", hostCopy[float32](f.t, f.b, inv), hostCopy[float32](f.t, f.b, invRef))

			dyb := f.bits(n*d, 1)
			dw0 := randF32(f.r, d) // dw accumulates (+=)
			for _, c := range []struct{ dx, dw bool }{{true, true}, {true, false}, {false, true}} {
				cname := fmt.Sprintf("%s dx%v dw%v", name, c.dx, c.dw)
				var dx, dw, dxRef, dwRef *tensor.Tensor
				if c.dx {
					dx, dxRef = f.nanBF(n, d), f.nanF32(n, d)
				}
				if c.dw {
					dw, dwRef = f.f32(dw0, d), f.f32(dw0, d)
				}
				f.must(cname+" RMSNormBackward", f.b.RMSNormBackward(dx, dw, f.bf(dyb, n, d), x, wf.w, inv))
				f.must(cname+" RMSNormBackward (F32)", f.b.RMSNormBackward(dxRef, dwRef, f.f32(widen(dyb), n, d), f.f32(widen(xb), n, d), wf.wRef, inv))
				if c.dx {
					f.checkULPs("RMSNormBackward dx", cname+" dx", hostCopy[uint16](f.t, f.b, dx), hostCopy[float32](f.t, f.b, dxRef))
				}
				if c.dw {
					f.checkF32("RMSNormBackward dw", cname+" dw", hostCopy[float32](f.t, f.b, dw), hostCopy[float32](f.t, f.b, dwRef))
				}
			}
		}
	}
}

// TestBF16AddRMSNorm: the fused residual add and norm on BF16 operands.
// The bf16 kernel normalises h rounded to bf16 (what it stores), so the
// reference for y and invRMS is RMSNorm's float32 path on the reference h
// rounded to bf16; h itself is the float32 path's h rounded. Also h = a
// (AddRMSNormInPlace's aliasing); the backward with a residual gradient
// (without one it is RMSNormBackward, tested above).
func TestBF16AddRMSNorm(t *testing.T) {
	f := newBF16Fused(t, 2)
	const eps = 1e-6
	for _, sz := range bf16NormSizes {
		n, d := sz[0], sz[1]
		for _, wf := range f.normWeights(d) {
			for _, inPlace := range []bool{false, true} {
				name := fmt.Sprintf("%dx%d_%s_inPlace%v", n, d, wf.name, inPlace)
				ab, bb := f.bits(n*d, 1.5), f.bits(n*d, 1)
				a := f.bf(ab, n, d)
				h := f.nanBF(n, d)
				if inPlace {
					h = a
				}
				y, inv := f.nanBF(n, d), f.nanF32(n)
				f.must(name+" AddRMSNorm", f.b.AddRMSNorm(h, y, inv, a, f.bf(bb, n, d), wf.w, eps))

				hRef, yRef32, invRef32 := f.nanF32(n, d), f.nanF32(n, d), f.nanF32(n)
				f.must(name+" AddRMSNorm (F32)", f.b.AddRMSNorm(hRef, yRef32, invRef32, f.f32(widen(ab), n, d), f.f32(widen(bb), n, d), wf.wRef, eps))
				hRound := widen(roundBF16(hostCopy[float32](f.t, f.b, hRef)))
				yRef, invRef := f.nanF32(n, d), f.nanF32(n)
				f.must(name+" RMSNorm of rounded h (F32)", f.b.RMSNorm(yRef, invRef, f.f32(hRound, n, d), wf.wRef, eps))
				hb := hostCopy[uint16](f.t, f.b, h)
				f.checkULPs("AddRMSNorm h", name+" h", hb, hostCopy[float32](f.t, f.b, hRef))
				f.checkULPs("AddRMSNorm y", name+" y", hostCopy[uint16](f.t, f.b, y), hostCopy[float32](f.t, f.b, yRef))
				f.checkF32("AddRMSNorm invRMS", name+" invRMS", hostCopy[float32](f.t, f.b, inv), hostCopy[float32](f.t, f.b, invRef))

				dhb, dyb := f.bits(n*d, 1), f.bits(n*d, 1)
				dw0 := randF32(f.r, d)
				for _, withDW := range []bool{true, false} {
					bname := fmt.Sprintf("%s dw%v", name, withDW)
					var dw, dwRef *tensor.Tensor
					if withDW {
						dw, dwRef = f.f32(dw0, d), f.f32(dw0, d)
					}
					dx, dxRef := f.nanBF(n, d), f.nanF32(n, d)
					f.must(bname+" AddRMSNormBackward", f.b.AddRMSNormBackward(dx, dw, f.bf(dhb, n, d), f.bf(dyb, n, d), f.bf(hb, n, d), wf.w, inv))
					f.must(bname+" AddRMSNormBackward (F32)", f.b.AddRMSNormBackward(dxRef, dwRef, f.f32(widen(dhb), n, d), f.f32(widen(dyb), n, d), f.f32(widen(hb), n, d), wf.wRef, inv))
					f.checkULPs("AddRMSNormBackward dx", bname+" dx", hostCopy[uint16](f.t, f.b, dx), hostCopy[float32](f.t, f.b, dxRef))
					if withDW {
						f.checkF32("AddRMSNormBackward dw", bname+" dw", hostCopy[float32](f.t, f.b, dw), hostCopy[float32](f.t, f.b, dwRef))
					}
				}
			}
		}
	}
}

// TestBF16RoPE: forward and inverse rotation of BF16 x into a new dst and
// in place, with float32 and float64 tables (the kernels read float32;
// other table dtypes are converted). [2,7,5,22]: 770 pairs, not a multiple
// of the 256-thread block, a head size whose half (11) is odd.
func TestBF16RoPE(t *testing.T) {
	f := newBF16Fused(t, 3)
	const B, T, H, D = 2, 7, 5, 22
	ang := make([]float64, B*T*D/2)
	for i := range ang {
		ang[i] = f.r.Float64() * 2 * math.Pi
	}
	cos64, sin64 := make([]float64, len(ang)), make([]float64, len(ang))
	cos32, sin32 := make([]float32, len(ang)), make([]float32, len(ang))
	for i, a := range ang {
		cos64[i], sin64[i] = math.Cos(a), math.Sin(a)
		cos32[i], sin32[i] = float32(cos64[i]), float32(sin64[i])
	}
	tables := []struct {
		name     string
		cos, sin *tensor.Tensor
	}{
		{"F32", f.f32(cos32, B, T, D/2), f.f32(sin32, B, T, D/2)},
		{"F64", tensor.FromHost(f.b, tensor.F64, cos64, B, T, D/2), tensor.FromHost(f.b, tensor.F64, sin64, B, T, D/2)},
	}
	for _, tab := range tables {
		for _, inverse := range []bool{false, true} {
			for _, inPlace := range []bool{false, true} {
				name := fmt.Sprintf("tables%s_inverse%v_inPlace%v", tab.name, inverse, inPlace)
				xb := f.bits(B*T*H*D, 2)
				x := f.bf(xb, B, T, H, D)
				dst := f.nanBF(B, T, H, D)
				if inPlace {
					dst = x
				}
				f.must(name+" RoPE", f.b.RoPE(dst, x, tab.cos, tab.sin, inverse))
				ref := f.nanF32(B, T, H, D)
				f.must(name+" RoPE (F32)", f.b.RoPE(ref, f.f32(widen(xb), B, T, H, D), tab.cos, tab.sin, inverse))
				f.checkULPs("RoPE", name, hostCopy[uint16](f.t, f.b, dst), hostCopy[float32](f.t, f.b, ref))
			}
		}
	}
}

// TestBF16GatedMLP: SwiGLU and GeGLU, forward and backward, on BF16
// operands of [7,333] (2331 elements: not a multiple of the 256-thread
// block, rows not of 8), with dgate and dup each given or nil (scratch).
// gate has σ 3, so the activations' curved part and both tails show.
func TestBF16GatedMLP(t *testing.T) {
	f := newBF16Fused(t, 4)
	const R, C = 7, 333
	type fwd func(dst, gate, up *tensor.Tensor) error
	type bwd func(dgate, dup, dy, gate, up *tensor.Tensor) error
	for _, op := range []struct {
		name string
		fwd  fwd
		bwd  bwd
	}{
		{"SwiGLU", f.b.SwiGLU, f.b.SwiGLUBackward},
		{"GeGLU", f.b.GeGLU, f.b.GeGLUBackward},
	} {
		gb, ub, dyb := f.bits(R*C, 3), f.bits(R*C, 1), f.bits(R*C, 1)
		gate, up := f.bf(gb, R, C), f.bf(ub, R, C)
		gate32, up32 := f.f32(widen(gb), R, C), f.f32(widen(ub), R, C)
		out, ref := f.nanBF(R, C), f.nanF32(R, C)
		f.must(op.name, op.fwd(out, gate, up))
		f.must(op.name+" (F32)", op.fwd(ref, gate32, up32))
		f.checkULPs(op.name, op.name+" out", hostCopy[uint16](f.t, f.b, out), hostCopy[float32](f.t, f.b, ref))

		for _, c := range []struct{ dg, du bool }{{true, true}, {false, true}, {true, false}} {
			name := fmt.Sprintf("%sBackward dgate%v dup%v", op.name, c.dg, c.du)
			var dg, du, dgRef, duRef *tensor.Tensor
			if c.dg {
				dg, dgRef = f.nanBF(R, C), f.nanF32(R, C)
			}
			if c.du {
				du, duRef = f.nanBF(R, C), f.nanF32(R, C)
			}
			f.must(name, op.bwd(dg, du, f.bf(dyb, R, C), gate, up))
			f.must(name+" (F32)", op.bwd(dgRef, duRef, f.f32(widen(dyb), R, C), gate32, up32))
			if c.dg {
				f.checkULPs(op.name+"Backward dgate", name+" dgate", hostCopy[uint16](f.t, f.b, dg), hostCopy[float32](f.t, f.b, dgRef))
			}
			if c.du {
				f.checkULPs(op.name+"Backward dup", name+" dup", hostCopy[uint16](f.t, f.b, du), hostCopy[float32](f.t, f.b, duRef))
			}
		}
	}
}

// TestBF16Softcap: Softcap and SoftcapBackward on BF16 operands of [7,333],
// into new outputs and in place (dst = x, dx = dy), cap 1.5 with x up to
// ~±9 (saturated and linear parts both); the backward's y has masked
// scores (-inf, below -c: dx 0).
func TestBF16Softcap(t *testing.T) {
	f := newBF16Fused(t, 5)
	const R, C, c = 7, 333, 1.5
	for _, inPlace := range []bool{false, true} {
		name := fmt.Sprintf("inPlace%v", inPlace)
		xb := f.bits(R*C, 3)
		x := f.bf(xb, R, C)
		y := f.nanBF(R, C)
		if inPlace {
			y = x
		}
		f.must(name+" Softcap", f.b.Softcap(y, x, c))
		ref := f.nanF32(R, C)
		f.must(name+" Softcap (F32)", f.b.Softcap(ref, f.f32(widen(xb), R, C), c))
		yb := hostCopy[uint16](f.t, f.b, y)
		f.checkULPs("Softcap", name+" y", yb, hostCopy[float32](f.t, f.b, ref))

		for i := 0; i < len(yb); i += 17 {
			yb[i] = 0xFF80 // -inf: a masked score
		}
		dyb := f.bits(R*C, 1)
		dy := f.bf(dyb, R, C)
		dx := f.nanBF(R, C)
		if inPlace {
			dx = dy
		}
		f.must(name+" SoftcapBackward", f.b.SoftcapBackward(dx, dy, f.bf(yb, R, C), c))
		dxRef := f.nanF32(R, C)
		f.must(name+" SoftcapBackward (F32)", f.b.SoftcapBackward(dxRef, f.f32(widen(dyb), R, C), f.f32(widen(yb), R, C), c))
		got := hostCopy[uint16](f.t, f.b, dx)
		f.checkULPs("SoftcapBackward", name+" dx", got, hostCopy[float32](f.t, f.b, dxRef))
		if got[0] != 0 {
			t.Errorf("%s: dx at a masked score = %#04x, want +0", name, got[0])
		}
	}
}

// TestBF16FusedRefusesMixed: mixed activation dtypes, and the float32-only
// operands (invRMS, dw) or a BF16 norm weight with F32 activations, are
// refused with tensor.ErrUnsupported naming the op and the dtypes.
func TestBF16FusedRefusesMixed(t *testing.T) {
	f := newBF16Fused(t, 6)
	const n, d = 3, 10
	xb := f.bf(f.bits(n*d, 1), n, d)
	x32 := f.f32(randF32(f.r, n*d), n, d)
	dy := f.bf(f.bits(n*d, 1), n, d)
	inv, inv16 := f.f32(randF32(f.r, n), n), f.bf(f.bits(n, 1), n)
	w16 := f.bf(f.bits(d, 1), d)
	dw16 := f.bf(f.bits(d, 1), d)
	rope32 := f.f32(randF32(f.r, 2*3*2*4), 2, 3, 2, 4)
	rope16 := f.bf(f.bits(2*3*2*4, 1), 2, 3, 2, 4)
	tab := f.f32(randF32(f.r, 2*3*2), 2, 3, 2)
	for _, c := range []struct {
		op  string
		err error
	}{
		{"RMSNorm", f.b.RMSNorm(f.nanF32(n, d), inv, xb, nil, 1e-5)},
		{"RMSNorm invRMS", f.b.RMSNorm(f.nanBF(n, d), inv16, xb, nil, 1e-5)},
		{"RMSNormBackward invRMS", f.b.RMSNormBackward(f.nanBF(n, d), nil, dy, xb, nil, inv16)},
		{"RMSNorm weight", f.b.RMSNorm(f.nanF32(n, d), inv, x32, w16, 1e-5)},
		{"RMSNormBackward", f.b.RMSNormBackward(f.nanF32(n, d), nil, dy, xb, nil, inv)},
		{"RMSNormBackward", f.b.RMSNormBackward(f.nanBF(n, d), nil, dy, x32, nil, inv)},
		{"RMSNormBackward dw", f.b.RMSNormBackward(f.nanBF(n, d), dw16, dy, xb, nil, inv)},
		{"AddRMSNorm", f.b.AddRMSNorm(f.nanBF(n, d), f.nanBF(n, d), inv, xb, x32, nil, 1e-5)},
		{"AddRMSNormBackward", f.b.AddRMSNormBackward(f.nanBF(n, d), nil, x32, dy, xb, nil, inv)},
		{"AddRMSNormBackward dw", f.b.AddRMSNormBackward(f.nanBF(n, d), dw16, dy, dy, xb, nil, inv)},
		{"RoPE", f.b.RoPE(rope32, rope16, tab, tab, false)},
		{"SwiGLU", f.b.SwiGLU(f.nanF32(n, d), xb, xb)},
		{"SwiGLUBackward", f.b.SwiGLUBackward(f.nanBF(n, d), f.nanF32(n, d), dy, xb, xb)},
		{"GeGLU", f.b.GeGLU(f.nanBF(n, d), x32, xb)},
		{"GeGLUBackward", f.b.GeGLUBackward(nil, nil, dy, xb, x32)},
		{"Softcap", f.b.Softcap(f.nanF32(n, d), xb, 1.5)},
		{"SoftcapBackward", f.b.SoftcapBackward(f.nanBF(n, d), dy, x32, 1.5)},
	} {
		if !errors.Is(c.err, tensor.ErrUnsupported) {
			t.Errorf("%s: error %v, want tensor.ErrUnsupported", c.op, c.err)
			continue
		}
		if msg := c.err.Error(); !strings.Contains(msg, c.op+" ") || !strings.Contains(msg, "BF16") || !strings.Contains(msg, "F32") {
			t.Errorf("%s: error %q does not name the op and both dtypes", c.op, msg)
		}
	}
}
