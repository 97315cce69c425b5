package cuda

import "fmt"

// WGMMALoads is how the sm_90a GEMMs bring their tiles into shared memory
// (gemm_sm90.cu): the three kernel families compute the same products,
// bit for bit; which is fastest is for a GPU run to say.
type WGMMALoads string

const (
	// WGMMACpAsync: every thread's cp.async (MatmulWGMMABF16To).
	WGMMACpAsync WGMMALoads = "cp.async"
	// WGMMATMA: the Tensor Memory Accelerator, thread 0 issuing
	// (MatmulWGMMATMABF16To).
	WGMMATMA WGMMALoads = "tma"
	// WGMMAWarpSpecialized: TMA from a producer warpgroup
	// (MatmulWGMMAWarpSpecializedBF16To).
	WGMMAWarpSpecialized WGMMALoads = "tma-ws"
)

// WGMMALoadsNames lists the loads by name, for flags and errors.
var WGMMALoadsNames = []string{string(WGMMACpAsync), string(WGMMATMA), string(WGMMAWarpSpecialized)}

// Valid reports whether l names one of the kernel families.
func (l WGMMALoads) Valid() bool {
	return l == WGMMACpAsync || l == WGMMATMA || l == WGMMAWarpSpecialized
}

// WGMMATakesWith says why the kernels of loads would refuse a product
// (WGMMATakes for cp.async, WGMMATMATakes for the TMA ones).
func (d *Device) WGMMATakesWith(l WGMMALoads, transB bool, N, K, lda, ldb int, a, b Ptr) error {
	if l == WGMMACpAsync {
		return d.WGMMATakes(false, transB, N, K, lda, ldb, a, b)
	}
	return d.WGMMATMATakes(false, lda, ldb, a, b)
}

// MatmulWGMMAWith runs MatmulWGMMABF16To's product on the kernels of loads.
func (d *Device) MatmulWGMMAWith(s Stream, l WGMMALoads, out DType, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32) error {
	switch l {
	case WGMMACpAsync:
		return d.MatmulWGMMABF16To(s, out, transB, M, N, K, a, lda, b, ldb, c, ldc, alpha, beta)
	case WGMMATMA, WGMMAWarpSpecialized:
		return d.matmulWGMMATMA(s, "MatmulWGMMAWith", l == WGMMAWarpSpecialized, out, transB, M, N, K, a, lda, b, ldb, nil, c, ldc, alpha, beta)
	}
	return badArg("wgmma loads %q: want one of %v", l, WGMMALoadsNames)
}

// WGMMALoRATakesWith says why MatmulLoRAWGMMAWith would refuse a fused
// product: the base pair and the low-rank pair under loads' conditions.
func (d *Device) WGMMALoRATakesWith(l WGMMALoads, transB bool, N, K, lda, ldb int, a, b Ptr, lr LowRank) error {
	if err := d.WGMMATakesWith(l, transB, N, K, lda, ldb, a, b); err != nil {
		return err
	}
	if err := d.WGMMATakesWith(l, transB, N, lr.K, lr.LDA, lr.LDB, lr.A, lr.B); err != nil {
		return fmt.Errorf("the low-rank pair: %w", err)
	}
	return nil
}

// MatmulLoRAWGMMAWith runs MatmulLoRAWGMMABF16's fused product on the
// kernels of loads.
func (d *Device) MatmulLoRAWGMMAWith(s Stream, l WGMMALoads, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, lr LowRank, c Ptr, ldc int, alpha, beta float32) error {
	switch l {
	case WGMMACpAsync:
		return d.MatmulLoRAWGMMABF16(s, transB, M, N, K, a, lda, b, ldb, lr, c, ldc, alpha, beta)
	case WGMMATMA, WGMMAWarpSpecialized:
		return d.MatmulLoRAWGMMATMABF16(s, l == WGMMAWarpSpecialized, transB, M, N, K, a, lda, b, ldb, lr, c, ldc, alpha, beta)
	}
	return badArg("wgmma loads %q: want one of %v", l, WGMMALoadsNames)
}
