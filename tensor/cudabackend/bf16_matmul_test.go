package cudabackend

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/half"
	"github.com/ftune/ftune/tensor"
)

// bf16Case is one MatMul of TestMatMulBF16Activations: a [aShape] times w
// [wShape] (kind F32, BF16, NF4 or NF4 with double-quantized scales).
type bf16Case struct {
	name           string
	aShape, wShape []int
	transA, transB bool
	w              string // "f32", "bf16", "nf4", "nf4dq"
	alpha, beta    float64
}

// The paths MatMul takes: one tall GEMM over the batches with a shared b
// (Linear's forward, and its backward dx = dy·W, on F32, BF16 and NF4
// weights: the NF4 ones on the dequantizing tile loaders); a transposed a
// with a shared b (dW = dyᵀ·x, per-batch launches; with an NF4 b the
// dequantize-then-GEMM path); a batched b (one launch per batch, dst
// advanced by its element size); K = 0 (dst = beta·dst). Sizes are ragged
// against the 128x128x32 tile and not multiples of 8; alpha != 1, beta 0
// (dst NaN-poisoned first) and beta != 0.
var bf16Cases = []bf16Case{
	{"linear_fwd_f32w", []int{2, 37, 72}, []int{130, 72}, false, true, "f32", 1, 0},
	{"linear_fwd_bf16w", []int{2, 37, 72}, []int{130, 72}, false, true, "bf16", 0.5, 1},
	{"linear_fwd_nf4", []int{2, 37, 75}, []int{130, 75}, false, true, "nf4", 1, 0},
	{"linear_fwd_nf4dq", []int{2, 37, 72}, []int{130, 72}, false, true, "nf4dq", -1.5, 1},
	{"linear_dx_bf16w", []int{2, 37, 130}, []int{130, 75}, false, false, "bf16", 1, 1},
	{"linear_dx_nf4", []int{2, 37, 130}, []int{130, 72}, false, false, "nf4", 2, 0},
	{"linear_dx_nf4dq", []int{2, 37, 130}, []int{130, 75}, false, false, "nf4dq", 1, 1},
	{"dw_transA", []int{37, 130}, []int{37, 75}, true, false, "f32", 1, 1},
	{"transA_nf4_dequant", []int{40, 19}, []int{40, 33}, true, false, "nf4", 0.75, 0},
	{"batched_nt", []int{3, 19, 40}, []int{3, 33, 40}, false, true, "bf16", -0.5, 1},
	{"batched_tt", []int{3, 40, 19}, []int{3, 33, 40}, true, true, "f32", 1, 0},
	{"k0_beta0", []int{2, 5, 0}, []int{7, 0}, false, true, "bf16", 1, 0},
	{"k0_beta", []int{2, 5, 0}, []int{7, 0}, false, true, "f32", 1, 0.3},
}

// TestMatMulBF16Activations: in BF16MatMul mode, MatMul with a BF16 a
// and/or a BF16 dst gives the bf16 rounding (nearest even) of the same
// product computed with F32 a and dst on the same backend: bit for bit,
// since an F32 a is rounded to the same bf16 operand first and the GEMM's
// bf16-output kernels round the float32 value the F32-output ones store
// (kernels/cuda's TestMatmulCBF16 checks that rounding against float64).
// The K = 0 cases (dst = beta·dst, elementwise) may differ by 1 bf16 ulp:
// a bf16 dst is scaled and rounded once, the reference's float32 result
// is rounded a second time to compare. a, b and dst's initial values are
// bf16-exact, so both sides start from the same numbers.
func TestMatMulBF16Activations(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	r := rand.New(rand.NewPCG(21, 22))
	worstUlps, total, inexact := 0.0, 0, 0
	for _, c := range bf16Cases {
		w := bf16Weight(t, b, r, c)
		av := bf16Exact(randF32(r, tensor.Shape(c.aShape).Numel()))
		aF32 := tensor.FromHost(b, tensor.F32, av, c.aShape...)
		aBF16 := tensor.FromHost(b, tensor.BF16, roundBF16(av), c.aShape...)
		dShape := matmulShape(c)
		d0 := bf16Exact(randF32(r, tensor.Shape(dShape).Numel()))
		// dstOf makes the destination: NaN-poisoned for beta = 0 (every
		// element must be written), d0 otherwise.
		dstOf := func(dt tensor.DType) *tensor.Tensor {
			if c.beta == 0 {
				return tensor.Full(b, dt, math.NaN(), dShape...)
			}
			if dt == tensor.BF16 {
				return tensor.FromHost(b, dt, roundBF16(d0), dShape...)
			}
			return tensor.FromHost(b, dt, append([]float32(nil), d0...), dShape...)
		}
		ref := dstOf(tensor.F32)
		if err := b.MatMul(ref, aF32, w, c.transA, c.transB, c.alpha, c.beta); err != nil {
			t.Fatalf("%s: the F32 reference: %v", c.name, err)
		}
		want := ref.F32()
		for i, v := range want {
			if math.IsNaN(float64(v)) { // a NaN on both sides would compare equal bit for bit
				t.Fatalf("%s: the F32 reference's element %d is NaN (unwritten)", c.name, i)
			}
		}
		for _, at := range []tensor.DType{tensor.F32, tensor.BF16} {
			for _, dt := range []tensor.DType{tensor.F32, tensor.BF16} {
				if at == tensor.F32 && dt == tensor.F32 {
					continue // the reference itself
				}
				name := fmt.Sprintf("%s/a_%v/dst_%v", c.name, at, dt)
				a := aF32
				if at == tensor.BF16 {
					a = aBF16
				}
				dst := dstOf(dt)
				if err := b.MatMul(dst, a, w, c.transA, c.transB, c.alpha, c.beta); err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				got := dst.F32()        // exact for a bf16 dst
				exact := innerK(c) != 0 // a GEMM ran: same float32 value, one rounding
				bad := 0
				for i, g := range got {
					wv := want[i]
					if dt == tensor.BF16 {
						wv = half.BF16ToF32(half.F32ToBF16(wv))
					}
					total++
					if math.Float32bits(g) == math.Float32bits(wv) {
						continue
					}
					inexact++
					ulps := math.Inf(1)
					if dt == tensor.BF16 && !math.IsNaN(float64(g)) {
						ulps = math.Abs(float64(g)-float64(wv)) / bf16UlpAt(max(math.Abs(float64(g)), math.Abs(float64(wv))))
					}
					worstUlps = max(worstUlps, ulps)
					if exact || ulps > 1 {
						if bad < 3 {
							t.Errorf("%s[%d] = %v, want %v (the F32 product's %v rounded to %v)", name, i, g, wv, want[i], dt)
						}
						bad++
					}
				}
				if bad > 0 {
					t.Errorf("%s: %d of %d elements differ", name, bad, len(got))
				}
			}
		}
	}
	t.Logf("%d outputs: %d not bit-identical to the F32 product rounded to bf16 (worst %.3g bf16 ulp; only the K = 0 cases may differ, by 1)", total, inexact, worstUlps)
}

// bf16Weight makes c's right-hand operand on b: F32 and BF16 values that
// are bf16-exact (so an F32 one rounds to the same operand), or an NF4
// weight (c.w "nf4dq": with double-quantized scales).
func bf16Weight(t *testing.T, b *Backend, r *rand.Rand, c bf16Case) *tensor.Tensor {
	t.Helper()
	n := tensor.Shape(c.wShape).Numel()
	switch c.w {
	case "f32":
		return tensor.FromHost(b, tensor.F32, bf16Exact(randF32(r, n)), c.wShape...)
	case "bf16":
		return tensor.FromHost(b, tensor.BF16, roundBF16(randF32(r, n)), c.wShape...)
	case "nf4", "nf4dq":
		const bs = 64
		d := randNF4(r, c.wShape[0], c.wShape[1], bs)
		if c.w == "nf4dq" {
			q := &tensor.NF4Nested{QAbsmax: make([]uint8, len(d.Absmax)), NestedAbsmax: make([]float32, (len(d.Absmax)+2)/3),
				NestedCode: make([]float32, 256), NestedBlockSize: 3, Offset: 0.25}
			for i := range q.QAbsmax {
				q.QAbsmax[i] = uint8(r.IntN(256))
			}
			for i := range q.NestedAbsmax {
				q.NestedAbsmax[i] = float32(r.Float64()*0.5 + 0.01)
			}
			for i := range q.NestedCode {
				q.NestedCode[i] = float32(r.Float64()*2 - 1)
			}
			for i := range d.Absmax { // the expanded scales, as bitsandbytes decodes them
				d.Absmax[i] = float32(float32(q.NestedCode[q.QAbsmax[i]]*q.NestedAbsmax[i/3]) + q.Offset)
			}
			d.Nested = q
		}
		return tensor.FromNF4(b, d, c.wShape...)
	}
	t.Fatalf("weight kind %q", c.w)
	return nil
}

// innerK is c's K (a's last axis, or its second last when transposed).
func innerK(c bf16Case) int {
	if c.transA {
		return c.aShape[len(c.aShape)-2]
	}
	return c.aShape[len(c.aShape)-1]
}

// matmulShape is dst's shape for c.
func matmulShape(c bf16Case) []int {
	r := len(c.aShape)
	m, k := c.aShape[r-2], c.aShape[r-1]
	if c.transA {
		m = k
	}
	n := c.wShape[len(c.wShape)-1]
	if c.transB {
		n = c.wShape[len(c.wShape)-2]
	}
	return append(append([]int(nil), c.aShape[:r-2]...), m, n)
}

// bf16Exact rounds v to bf16 values (in place), returned as float32.
func bf16Exact(v []float32) []float32 {
	for i, x := range v {
		v[i] = half.BF16ToF32(half.F32ToBF16(x))
	}
	return v
}

// bf16UlpAt is the spacing of bf16 values at magnitude x (8 significant
// bits).
func bf16UlpAt(x float64) float64 {
	_, e := math.Frexp(x)
	return math.Ldexp(1, max(e-8, -133))
}

// TestMatMulBF16ActivationsRefusedF32 checks that the float32 parity path
// refuses bf16 activations (a or dst BF16) with ErrUnsupported and says
// what to set, rather than widening or narrowing around a float32 product.
func TestMatMulBF16ActivationsRefusedF32(t *testing.T) {
	b := open(t, Options{})
	r := rand.New(rand.NewPCG(23, 24))
	w := tensor.FromHost(b, tensor.F32, randF32(r, 8*6), 8, 6)
	aF := tensor.FromHost(b, tensor.F32, randF32(r, 4*6), 4, 6)
	aB := aF.To(tensor.BF16)
	for _, c := range []struct {
		name   string
		dst, a *tensor.Tensor
	}{
		{"a bf16", tensor.New(b, tensor.F32, 4, 8), aB},
		{"dst bf16", tensor.New(b, tensor.BF16, 4, 8), aF},
		{"both bf16", tensor.New(b, tensor.BF16, 4, 8), aB},
	} {
		err := b.MatMul(c.dst, c.a, w, false, true, 1, 0)
		if !errors.Is(err, tensor.ErrUnsupported) || !strings.Contains(err.Error(), "need precision bf16") {
			t.Errorf("float32 mode, %s: err %v, want ErrUnsupported saying bf16 activations need precision bf16", c.name, err)
		}
	}
	// Other activation types stay refused in bf16 mode too.
	b16 := open(t, Options{BF16MatMul: true})
	w16 := tensor.FromHost(b16, tensor.F32, randF32(r, 8*6), 8, 6)
	a64 := tensor.FromHost(b16, tensor.F64, make([]float64, 4*6), 4, 6)
	if err := b16.MatMul(tensor.New(b16, tensor.F32, 4, 8), a64, w16, false, true, 1, 0); !errors.Is(err, tensor.ErrUnsupported) {
		t.Errorf("bf16 mode, F64 a: err %v, want ErrUnsupported", err)
	}
}

// TestGEMMKeyOutputType: a product into a bf16 C is a shape of its own for
// the provider choice (timed and logged apart from the same product into a
// float32 C, since the two kernels' stores differ), named "->bf16".
func TestGEMMKeyOutputType(t *testing.T) {
	var log bytes.Buffer
	c := newChooser(GEMMAuto, "", &log)
	k16 := nt
	k16.outBF16 = true
	f := &fakeProviders{ours: 1.0, lt: 0.5}
	if lt, err := c.pick(nt, f.supports, f.trial); err != nil || !lt {
		t.Fatalf("f32 C: got %v, %v", lt, err)
	}
	f16 := &fakeProviders{ours: 0.5, lt: 1.0}
	if lt, err := c.pick(k16, f16.supports, f16.trial); err != nil || lt || f16.trialed != 1 {
		t.Fatalf("bf16 C: got %v, %v after %d trials; want its own trial choosing ftune", lt, err, f16.trialed)
	}
	if !strings.Contains(log.String(), "gemm nt bf16->bf16 M=16384 N=1536 K=576: ftune") {
		t.Errorf("log %q lacks the bf16-output shape", log.String())
	}
}
