package cudabackend

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/kernels/dropout"
	"github.com/ftune/ftune/tensor"
)

// lowRankTol bounds the normalised error of a bf16 LoRA output against the
// float64 sum of its two products on the same bf16 operands: the output is
// rounded to bf16 (2⁻⁹ relative at most; measured 1.7e-3 normalised here)
// once by the fused kernel and twice by the products apart (2.3e-3), plus
// float32 accumulation (≈1e-6). 4e-3 holds both with room; a low-rank term
// dropped, doubled or unscaled moves the error by its share of the output,
// which every case keeps above 5% (checked).
const lowRankTol = 4e-3

// lowRankCase is one call of tensor.MatMulLowRankInto: the base product
// M×N×K with w [N,K] (transB, the forward) or [K,N] (the backward), a
// bf16 or NF4 w, and the rank-r pair.
type lowRankCase struct {
	M, N, K, r int
	transB     bool
	nf4        bool
	scale      float64
	beta       float64
	drop       float64 // LoRA dropout's p on the low-rank term (nn only; 0: none)
}

func (c lowRankCase) String() string {
	w := "bf16"
	if c.nf4 {
		w = "nf4"
	}
	return fmt.Sprintf("%s_trans%v_M%d_N%d_K%d_r%d_scale%g_beta%g_drop%g", w, c.transB, c.M, c.N, c.K, c.r, c.scale, c.beta, c.drop)
}

// TestMatMulLowRank: the fused LoRA product through the tensor API runs
// on the fused kernel (MatMulLowRank returns nil) for bf16 and NF4 weights
// in both orientations, and matches the float64 reference; with
// Options.UnfusedLoRA, in float32 mode, for float32 activations and for a
// product that splits K it declines (ErrUnsupported, nothing written) and
// MatMulLowRankInto's two products give the same result.
func TestMatMulLowRank(t *testing.T) {
	fused := open(t, Options{BF16MatMul: true})
	unfused := open(t, Options{BF16MatMul: true, UnfusedLoRA: true})
	r := rand.New(rand.NewPCG(11, 12))
	cases := []lowRankCase{
		{77, 130, 72, 16, true, false, 2, 0, 0},
		{77, 130, 72, 16, false, false, 1, 1, 0},
		{129, 64, 200, 33, true, false, 0.35, 1, 0},
		{77, 130, 128, 16, true, true, 2, 0, 0},
		{77, 72, 130, 8, false, true, 1, 1, 0},
		{77, 130, 72, 16, false, false, 1, 1, 0.3},
		{77, 72, 130, 8, false, true, 1, 0, 0.1},
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			for _, b := range []*Backend{fused, unfused} {
				got, ref, share := runLowRank(t, b, r, c, true)
				e := relErr64(got, ref)
				t.Logf("%s: normalised error %.3g against the float64 reference (low-rank share %.2f)", b.Name()+map[bool]string{true: " unfused", false: ""}[b.opt.UnfusedLoRA], e, share)
				if !(e <= lowRankTol) {
					t.Errorf("normalised error %.3g > %g", e, lowRankTol)
				}
				if share < 0.05 {
					t.Errorf("the low-rank product is %.3g of the output: too small to test it", share)
				}
			}
		})
	}

	// Declined cases: the products apart, same result.
	f32 := open(t, Options{})
	declined := []struct {
		name string
		b    *Backend
		c    lowRankCase
		bf16 bool
	}{
		{"unfused option", unfused, cases[0], true},
		{"float32 mode", f32, cases[0], false},
		{"float32 activations", fused, cases[1], false},
		// 1 output tile, K of 64 k-tiles: the product splits K.
		{"split K", fused, lowRankCase{16, 64, 2048, 16, true, false, 2, 0, 0}, true},
		{"dropout on the forward", fused, lowRankCase{77, 130, 72, 16, true, false, 2, 0, 0.2}, true},
	}
	for _, d := range declined {
		t.Run("declined/"+d.name, func(t *testing.T) {
			if d.name == "split K" && !fused.dev.SplitsK(d.c.M, d.c.N, d.c.K) {
				t.Fatalf("%v should split K on %d SMs", d.c, fused.dev.SMs)
			}
			got, ref, _ := runLowRank(t, d.b, r, d.c, d.bf16)
			if e := relErr64(got, ref); !(e <= lowRankTol) {
				t.Errorf("normalised error %.3g > %g", e, lowRankTol)
			}
		})
	}
}

// runLowRank makes the case's operands on b (bf16 activations, or float32
// ones), checks that the backend fuses them exactly when it should, runs
// MatMulLowRankInto and returns the output, the float64 reference and the
// low-rank product's share of the reference's norm.
func runLowRank(t *testing.T, b *Backend, r *rand.Rand, c lowRankCase, bf16 bool) (got []float32, ref []float64, share float64) {
	t.Helper()
	act := tensor.F32
	if bf16 {
		act = tensor.BF16
	}
	// Host values already bf16-exact, so both activation types hold them.
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = tensor.BF16ToF32(tensor.F32ToBF16(float32(r.NormFloat64())))
		}
		return v
	}
	up := func(v []float32, shape ...int) *tensor.Tensor {
		return tensor.FromHost(b, tensor.F32, append([]float32(nil), v...), shape...).To(act)
	}
	wRows, wCols := c.K, c.N
	lRows, lCols := c.r, c.N
	if c.transB {
		wRows, wCols, lRows, lCols = c.N, c.K, c.N, c.r
	}
	av, hv, lv, c0 := vals(c.M*c.K), vals(c.M*c.r), vals(lRows*lCols), vals(c.M*c.N)
	var wv []float32
	var w *tensor.Tensor
	if c.nf4 {
		d := randNF4(r, wRows, wCols, 64)
		w = tensor.FromNF4(b, d, wRows, wCols)
		wv = w.To(tensor.BF16).To(tensor.F32).F32() // as the kernel's tiles hold it
	} else {
		wv = vals(wRows * wCols)
		w = up(wv, wRows, wCols).To(tensor.BF16)
	}
	a, h, l := up(av, c.M, c.K), up(hv, c.M, c.r), up(lv, lRows, lCols).To(tensor.BF16)
	if !bf16 {
		l = up(lv, lRows, lCols)
	}
	dst := up(c0, c.M, c.N)

	var drop *tensor.DropoutStream
	var mask []float32
	if c.drop > 0 {
		drop = &tensor.DropoutStream{Key: r.Uint64(), Pos: r.Uint64() >> 8, P: c.drop}
		d, keep := dropout.Threshold(c.drop)
		mask = make([]float32, c.M*c.N)
		dropout.Mask(mask, drop.Key, drop.Pos, d, keep)
	}
	// Whether the backend fuses: a declined call must leave dst alone.
	before := dst.To(tensor.F32).F32()
	err := b.MatMulLowRank(dst, a, w, h, l, c.transB, c.scale, c.beta, drop)
	wantFused := bf16 && b.opt.BF16MatMul && !b.opt.UnfusedLoRA && (c.nf4 || !b.dev.SplitsK(c.M, c.N, c.K)) && (drop == nil || !c.transB)
	switch {
	case wantFused && err != nil:
		t.Fatalf("MatMulLowRank declined: %v", err)
	case !wantFused && !errors.Is(err, tensor.ErrUnsupported):
		t.Fatalf("MatMulLowRank: err %v, want ErrUnsupported", err)
	case !wantFused:
		after := dst.To(tensor.F32).F32()
		for i := range after {
			if math.Float32bits(after[i]) != math.Float32bits(before[i]) {
				t.Fatalf("a declined MatMulLowRank wrote dst[%d]: %v, was %v", i, after[i], before[i])
			}
		}
		tensor.MatMulLowRankInto(dst, a, w, h, l, c.transB, c.scale, c.beta, drop)
	}
	got = dst.To(tensor.F32).F32()

	ref = make([]float64, c.M*c.N)
	var low2, all2 float64
	for i := 0; i < c.M; i++ {
		for j := 0; j < c.N; j++ {
			var base, lr float64
			for k := 0; k < c.K; k++ {
				wk := wv[k*c.N+j]
				if c.transB {
					wk = wv[j*c.K+k]
				}
				base += float64(av[i*c.K+k]) * float64(wk)
			}
			for k := 0; k < c.r; k++ {
				lk := lv[k*c.N+j]
				if c.transB {
					lk = lv[j*c.r+k]
				}
				lr += float64(hv[i*c.r+k]) * float64(lk)
			}
			low := c.scale * lr
			if mask != nil {
				low *= float64(mask[i*c.N+j])
			}
			v := base + low + c.beta*float64(c0[i*c.N+j])
			ref[i*c.N+j] = v
			low2 += low * low
			all2 += v * v
		}
	}
	return got, ref, math.Sqrt(low2 / all2)
}

// relErr64 is relErr against a float64 reference.
func relErr64(got []float32, want []float64) float64 {
	var num, den float64
	for i := range got {
		d := float64(got[i]) - want[i]
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-30)
}

// TestMatMulDropoutA: h = dropout(x)·Aᵀ with the mask applied inside the
// product (MatMulDropoutA returns nil) matches the float64 product of x
// dropped out on the host; with Options.UnfusedLoRA it declines and
// tensor.MatMulDropoutA's temporary gives the same.
func TestMatMulDropoutA(t *testing.T) {
	fused := open(t, Options{BF16MatMul: true})
	unfused := open(t, Options{BF16MatMul: true, UnfusedLoRA: true})
	r := rand.New(rand.NewPCG(31, 32))
	const M, N, K = 77, 16, 72
	stream := &tensor.DropoutStream{Key: r.Uint64(), Pos: r.Uint64() >> 8, P: 0.25}
	d, keep := dropout.Threshold(stream.P)
	mask := make([]float32, M*K)
	dropout.Mask(mask, stream.Key, stream.Pos, d, keep)
	av, wv := make([]float32, M*K), make([]float32, N*K)
	for i := range av {
		av[i] = tensor.BF16ToF32(tensor.F32ToBF16(float32(r.NormFloat64())))
	}
	for i := range wv {
		wv[i] = tensor.BF16ToF32(tensor.F32ToBF16(float32(r.NormFloat64())))
	}
	ref := make([]float64, M*N)
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var s float64
			for k := 0; k < K; k++ {
				xd := tensor.BF16ToF32(tensor.F32ToBF16(av[i*K+k] * mask[i*K+k])) // as the dropout kernel rounds
				s += float64(xd) * float64(wv[j*K+k])
			}
			ref[i*N+j] = s
		}
	}
	for _, b := range []*Backend{fused, unfused} {
		a := tensor.FromHost(b, tensor.F32, append([]float32(nil), av...), M, K).To(tensor.BF16)
		w := tensor.FromHost(b, tensor.F32, append([]float32(nil), wv...), N, K).To(tensor.BF16)
		dst := tensor.New(b, tensor.BF16, M, N)
		err := b.MatMulDropoutA(dst, a, w, stream)
		if b.opt.UnfusedLoRA != errors.Is(err, tensor.ErrUnsupported) || !b.opt.UnfusedLoRA && err != nil {
			t.Fatalf("unfused %v: MatMulDropoutA err %v", b.opt.UnfusedLoRA, err)
		}
		got := tensor.MatMulDropoutA(a, w, stream).To(tensor.F32).F32()
		if e := relErr64(got, ref); !(e <= lowRankTol) {
			t.Errorf("unfused %v: normalised error %.3g > %g", b.opt.UnfusedLoRA, e, lowRankTol)
		} else {
			t.Logf("unfused %v: normalised error %.3g", b.opt.UnfusedLoRA, e)
		}
	}
}

// TestMatMulTDropoutB: dA = dhᵀ·dropout(x) over 2100 tokens (the device
// splits K) with the mask applied inside the product matches the float64
// product of x dropped out on the host; with Options.UnfusedLoRA it
// declines and tensor.MatMulTDropoutB's temporary gives the same.
func TestMatMulTDropoutB(t *testing.T) {
	fused := open(t, Options{BF16MatMul: true})
	unfused := open(t, Options{BF16MatMul: true, UnfusedLoRA: true})
	r := rand.New(rand.NewPCG(33, 34))
	const tokens, rank, in = 2100, 16, 72
	stream := &tensor.DropoutStream{Key: r.Uint64(), Pos: r.Uint64() >> 8, P: 0.25}
	d, keep := dropout.Threshold(stream.P)
	mask := make([]float32, tokens*in)
	dropout.Mask(mask, stream.Key, stream.Pos, d, keep)
	bf16 := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = tensor.BF16ToF32(tensor.F32ToBF16(float32(r.NormFloat64())))
		}
		return v
	}
	dhv, xv := bf16(tokens*rank), bf16(tokens*in)
	ref := make([]float64, rank*in)
	for k := 0; k < tokens; k++ {
		for j := 0; j < in; j++ {
			xd := float64(tensor.BF16ToF32(tensor.F32ToBF16(xv[k*in+j] * mask[k*in+j]))) // as the dropout kernel rounds
			for i := 0; i < rank; i++ {
				ref[i*in+j] += float64(dhv[k*rank+i]) * xd
			}
		}
	}
	if !fused.dev.SplitsK(rank, in, tokens) {
		t.Fatalf("%d×%d×%d does not split K on this device: the test misses the slices", rank, in, tokens)
	}
	for _, b := range []*Backend{fused, unfused} {
		dh := tensor.FromHost(b, tensor.F32, append([]float32(nil), dhv...), tokens, rank).To(tensor.BF16)
		x := tensor.FromHost(b, tensor.F32, append([]float32(nil), xv...), tokens, in).To(tensor.BF16)
		dst := tensor.New(b, tensor.BF16, rank, in)
		err := b.MatMulTDropoutB(dst, dh, x, stream)
		if b.opt.UnfusedLoRA != errors.Is(err, tensor.ErrUnsupported) || !b.opt.UnfusedLoRA && err != nil {
			t.Fatalf("unfused %v: MatMulTDropoutB err %v", b.opt.UnfusedLoRA, err)
		}
		got := tensor.MatMulTDropoutB(dh, x, stream).To(tensor.F32).F32()
		if e := relErr64(got, ref); !(e <= lowRankTol) {
			t.Errorf("unfused %v: normalised error %.3g > %g", b.opt.UnfusedLoRA, e, lowRankTol)
		} else {
			t.Logf("unfused %v: normalised error %.3g", b.opt.UnfusedLoRA, e)
		}
	}
}
