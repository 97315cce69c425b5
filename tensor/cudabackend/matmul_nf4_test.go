package cudabackend

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestNF4MatMulBF16 checks MatMul with an NF4 weight in BF16MatMul mode,
// where y = x·Wᵀ runs on the GEMM that dequantizes W in its tile loader.
// N, K are ragged against the 128x128x32 tile and K (72) is not a multiple
// of the 64-element block, so blocks span two rows.
//   - Against the same product with W dequantized to a bf16 tensor first
//     (the scratch path's kernel): bit-identical, since both kernels hold the
//     same bf16 tiles and run the same mma sequence.
//   - Against the CPU backend's float32 product: BF16Tol's 1e-2 normalised
//     (x and W each rounded to bf16 once, 2⁻⁸ relative).
func TestNF4MatMulBF16(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(7, 8))
	const N, K, bs = 130, 72, 64 // 9360 elements: 147 blocks, the last partial
	d := randNF4(r, N, K, bs)
	wg, wc := tensor.FromNF4(b, d, N, K), tensor.FromNF4(cpu, d, N, K)
	av := randF32(r, 3*45*K)
	ag := tensor.FromHost(b, tensor.F32, append([]float32(nil), av...), 3, 45, K)
	ac := tensor.FromHost(cpu, tensor.F32, append([]float32(nil), av...), 3, 45, K)
	got := tensor.MatMul(ag, wg, false, true).F32()
	viaBF16 := tensor.MatMul(ag, wg.To(tensor.BF16), false, true).F32()
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(viaBF16[i]) {
			t.Fatalf("NF4 GEMM element %d is %g, the bf16 GEMM on the dequantized weight gives %g", i, got[i], viaBF16[i])
		}
	}
	e := relErr(got, tensor.MatMul(ac, wc, false, true).F32())
	t.Logf("NF4 matmul (bf16 mode) [3,45,%d]x[%d,%d]^T: relative error %.3g against the CPU", K, N, K, e)
	if !(e <= BF16Tol.MatMul) {
		t.Errorf("NF4 matmul (bf16 mode): relative error %.3g > %g", e, BF16Tol.MatMul)
	}
}

// randNF4 returns a random NF4 weight [rows, cols] (absmax in [0.1, 1.1)).
func randNF4(r *rand.Rand, rows, cols, bs int) tensor.NF4Data {
	n := rows * cols
	d := tensor.NF4Data{Packed: make([]byte, (n+1)/2), Absmax: make([]float32, (n+bs-1)/bs), BlockSize: bs, Len: n}
	for i := range d.Packed {
		d.Packed[i] = byte(r.IntN(256))
	}
	for i := range d.Absmax {
		d.Absmax[i] = float32(r.Float64() + 0.1)
	}
	return d
}

// TestNF4MatMulBF16Backward checks the backward's dx = dy·W with an NF4 W
// [out, in] in BF16MatMul mode, the GEMM that dequantizes W's tiles in its
// nn-orientation loader. in = 72 (a multiple of 8, not of the 64-element
// block: blocks span two rows) and 75 (odd: rows start mid-byte, the
// loader's element path); out = 130 is ragged against the 128 tile.
//   - Against the dequantize-then-GEMM product (W to a bf16 tensor by
//     nf4_dequant, then the bf16 nn GEMM): bit-identical, as in the
//     forward's test, since both kernels hold the same bf16 tiles (code·absmax
//     in float32, rounded to nearest even, zero outside W) and run the same
//     mma sequence.
//   - Against the CPU backend's float32 product: BF16Tol's 1e-2 normalised.
func TestNF4MatMulBF16Backward(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(9, 10))
	for _, in := range []int{72, 75} {
		const out, bs = 130, 64
		d := randNF4(r, out, in, bs)
		wg, wc := tensor.FromNF4(b, d, out, in), tensor.FromNF4(cpu, d, out, in)
		gv := randF32(r, 3*45*out)
		gg := tensor.FromHost(b, tensor.F32, append([]float32(nil), gv...), 3, 45, out)
		gc := tensor.FromHost(cpu, tensor.F32, append([]float32(nil), gv...), 3, 45, out)
		got := tensor.MatMul(gg, wg, false, false).F32()
		viaBF16 := tensor.MatMul(gg, wg.To(tensor.BF16), false, false).F32()
		if len(got) != 3*45*in {
			t.Fatalf("dx has %d elements, want %d", len(got), 3*45*in)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(viaBF16[i]) {
				t.Fatalf("in=%d: NF4 nn GEMM element %d is %g, the bf16 GEMM on the dequantized weight gives %g", in, i, got[i], viaBF16[i])
			}
		}
		e := relErr(got, tensor.MatMul(gc, wc, false, false).F32())
		t.Logf("NF4 backward (bf16 mode) [3,45,%d]x[%d,%d]: relative error %.3g against the CPU", out, out, in, e)
		if !(e <= BF16Tol.MatMul) {
			t.Errorf("NF4 backward (bf16 mode), in=%d: relative error %.3g > %g", in, e, BF16Tol.MatMul)
		}
	}
}

// TestNF4MatMulBF16NoWeightScratch checks that neither the forward
// y = x·Wᵀ nor the backward dx = dy·W of an NF4 weight allocates a
// W-sized scratch in BF16MatMul mode: the allocator's peak rises by the
// activation's bf16 copy only (32 tokens: 16 KiB at most), far below the
// 256 KiB a bf16 copy of W [512, 256] would take (what the dequantize-then-
// GEMM path allocated for the backward before).
func TestNF4MatMulBF16NoWeightScratch(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	r := rand.New(rand.NewPCG(11, 12))
	const tokens, out, in, bs = 32, 512, 256, 64
	w := tensor.FromNF4(b, randNF4(r, out, in, bs), out, in)
	cases := []struct {
		name   string
		x, dst *tensor.Tensor
		transB bool
		xBF16  int
	}{
		{"forward y = x·Wᵀ", tensor.FromHost(b, tensor.F32, randF32(r, tokens*in), tokens, in), tensor.New(b, tensor.F32, tokens, out), true, tokens * in * 2},
		{"backward dx = dy·W", tensor.FromHost(b, tensor.F32, randF32(r, tokens*out), tokens, out), tensor.New(b, tensor.F32, tokens, in), false, tokens * out * 2},
	}
	wBF16 := int64(out * in * 2)
	for _, c := range cases {
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		b.alloc.ResetPeak()
		live := b.Stats().Live
		if err := b.MatMul(c.dst, c.x, w, false, c.transB, 1, 0); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		rise := b.Stats().Peak - live
		t.Logf("%s: peak rose by %d bytes (x in bf16: %d; W in bf16 would be %d)", c.name, rise, c.xBF16, wBF16)
		if rise >= wBF16 {
			t.Errorf("%s: peak device memory rose by %d bytes, at least a bf16 copy of W (%d): a W-sized scratch was allocated", c.name, rise, wBF16)
		}
		for i, v := range c.dst.F32() {
			if v != v {
				t.Fatalf("%s: output element %d is NaN", c.name, i)
			}
		}
	}
}
