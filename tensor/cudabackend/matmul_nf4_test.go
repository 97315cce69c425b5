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
	d := tensor.NF4Data{Packed: make([]byte, N*K/2), Absmax: make([]float32, (N*K+bs-1)/bs), BlockSize: bs, Len: N * K}
	for i := range d.Packed {
		d.Packed[i] = byte(r.IntN(256))
	}
	for i := range d.Absmax {
		d.Absmax[i] = float32(r.Float64() + 0.1)
	}
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
