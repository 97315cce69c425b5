package cuda

import (
	"fmt"
	"math"
	"testing"
)

// splitKCases: few output tiles and a long K, so the product is cut into
// slices of K: ragged K (not a multiple of the 32-element k-tile, so the
// last slice is short and loads element by element), odd and padded
// leading dimensions, beta 0 (NaN-poisoned C) and beta 1, and M = 16,
// LoRA's rank, against N of a few tiles.
var splitKCases = []gemmCase{
	{16, 200, 2100, 3, -0.75, 1}, {5, 7, 2048, 0, 1, 0}, {16, 130, 2309, 1, 2, 0}, {33, 64, 4096, 0, 0.5, 1},
}

// TestMatmulSplitK runs MatmulBF16To on the legacy stream (the only one
// that splits) for shapes that split on this device, every transpose, C
// float32 and bf16: the float32 C within the unsplit kernel's bound of the
// float64 product (1e-4·Σ|terms|: the slices are summed in float32 too),
// the bf16 C bit for bit the float32 one rounded (testGemmCBF16), and the
// launches counted to prove the split ran.
func TestMatmulSplitK(t *testing.T) {
	g := needGPU(t)
	var worst cbf16Worst
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		ta, tb := tr[0], tr[1]
		for _, c := range splitKCases {
			tiles := ((c.N + gemmBN - 1) / gemmBN) * ((c.M + gemmBM - 1) / gemmBM)
			slices, chunk := splitK(tiles, c.M, c.N, c.K, g.d.SMs)
			if slices < 2 {
				t.Fatalf("M%d N%d K%d: not split on %d SMs: the case tests nothing", c.M, c.N, c.K, g.d.SMs)
			}
			name := fmt.Sprintf("matmul_%s_splitk/M%d_N%d_K%d_pad%d_alpha%g_beta%g_slices%d_chunk%d", transName(ta, tb), c.M, c.N, c.K, c.pad, c.alpha, c.beta, slices, chunk)
			t.Run(name, func(t *testing.T) {
				rowsA, rowsB, lda, ldb, ldc := gemmLayout(ta, tb, c)
				a := g.randn(rowsA*lda, 1, BF16)
				b := g.randn(rowsB*ldb, 1, BF16)
				pa, pb := g.up(a, BF16), g.up(b, BF16)
				before := g.d.CallCounts()["cuLaunchKernel"]
				testGemmCBF16(t, g, c, ldc, name, &worst,
					func(out DType, pc Ptr) error {
						return g.d.MatmulBF16To(Stream{}, out, ta, tb, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta)
					},
					func(c0 []float32) ([]float64, []float64) {
						return matmulRef(ta, tb, c.M, c.N, c.K, a, lda, b, ldb, c0, ldc, float64(c.alpha), float64(c.beta))
					})
				if n := g.d.CallCounts()["cuLaunchKernel"] - before; n != 4 {
					t.Errorf("%d launches for two products, want 4 (the sliced product and the sum, twice)", n)
				}
			})
		}
	}
	worst.log(t)
	if worst.acc > 1e-4 {
		t.Errorf("float32 C: worst accumulation error %.3g·Σ|terms|, above the bound of 1e-4", worst.acc)
	}
}

// Products that fill the device, or have a short K, are not split; the
// slices cover K with none empty.
func TestSplitKChoice(t *testing.T) {
	for _, c := range []struct {
		tiles, M, N, K, sms, want int
	}{
		{132, 128 * 11, 128 * 12, 16384, 132, 1}, // a full grid
		{5, 16, 576, 2047, 132, 1},               // K under 64 k-tiles
		{5, 16, 576, 16384, 132, 52},             // LoRA's dA at SmolLM2's width, 8 × 2048 tokens
		{112, 16, 14336, 4096, 132, 3},           // Llama-3-8B's down projection, 2 × 2048 tokens
		{1, 16, 16, 1 << 20, 132, 64},            // at most 64 slices
	} {
		n, chunk := splitK(c.tiles, c.M, c.N, c.K, c.sms)
		if n != c.want {
			t.Errorf("tiles %d M%d N%d K%d on %d SMs: %d slices, want %d", c.tiles, c.M, c.N, c.K, c.sms, n, c.want)
		}
		if n > 1 && (chunk%gemmBK != 0 || (n-1)*chunk >= c.K || n*chunk < c.K) {
			t.Errorf("tiles %d K%d: %d slices of %d do not cover K with none empty", c.tiles, c.K, n, chunk)
		}
	}
}

// Under a device-memory cap that leaves no room for the partial products,
// a product that would split runs unsplit, with the same result up to the
// float32 sum's order, instead of failing.
func TestMatmulSplitKWithoutRoomRunsUnsplit(t *testing.T) {
	g := needGPU(t)
	const M, N, K = 16, 200, 2100
	if n, _ := splitK(2, M, N, K, g.d.SMs); n < 2 {
		t.Fatalf("M%d N%d K%d does not split on %d SMs", M, N, K, g.d.SMs)
	}
	a, b := g.randn(K*M, 1, BF16), g.randn(K*N, 1, BF16)
	pa, pb := g.up(a, BF16), g.up(b, BF16)
	pc := g.alloc(M * N * 4)
	al := g.d.Allocator()
	g.ok(al.Trim())
	g.ok(al.SetLimit(al.Stats().Reserved))
	before := g.d.CallCounts()["cuLaunchKernel"]
	err := g.d.MatmulBF16To(Stream{}, F32, true, false, M, N, K, pa, M, pb, N, pc, N, 1, 0)
	launches := g.d.CallCounts()["cuLaunchKernel"] - before
	g.ok(al.SetLimit(0))
	g.ok(err)
	if launches != 1 {
		t.Errorf("%d launches, want 1 (the unsplit product)", launches)
	}
	want, mag := matmulRef(true, false, M, N, K, a, M, b, N, nil, N, 1, 0)
	got := g.down(pc, M*N, F32)
	for i := range got {
		if e := math.Abs(float64(got[i]) - want[i]); !(e <= 1e-4*mag[i]) {
			t.Fatalf("C[%d] = %v, want %v (err %.3g, allowed %.3g)", i, got[i], want[i], e, 1e-4*mag[i])
		}
	}
}
