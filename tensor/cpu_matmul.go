package tensor

import (
	"fmt"

	"github.com/ftune/ftune/kernels/asm"
)

// MatMul on the CPU: float32 goes through kernels/asm SGEMM (BF16 weights
// converted while packing, NF4 weights dequantized while packing), or its
// bf16 GEMM on CPUBF16, float64 through asm.GemmRef, the plain loop that
// gradient checks and the backend conformance suite take as the reference.
func (c *CPUBackend) MatMul(dst, a, b *Tensor, transA, transB bool, alpha, beta float64) error {
	g, err := CheckMatMul(dst, a, b, transA, transB)
	if err != nil {
		return cpuErr(err)
	}
	batch, m, n, k, bShared := g.Batch, g.M, g.N, g.K, g.SharedB
	lda, ldb, ldc := g.LDA, g.LDB, g.LDC
	sa, sb, sc := m*k, k*n, m*n
	if bShared {
		sb = 0
	}
	// The products of the three weight formats: float32 SGEMM, or the bf16
	// GEMM on CPUBF16.
	gemmF32, gemmBF16, gemmSource := sgemm, sgemmBF16, asm.SgemmSource
	if c.bf16MatMul {
		gemmF32, gemmBF16, gemmSource = asm.GemmBF16Dot, asm.GemmBF16DotB, asm.GemmBF16DotSource
	}
	switch {
	case dst.dtype == F32 && a.dtype == F32 && b.dtype == F32:
		d, x, y := floats[float32](dst)[dst.offset:], floats[float32](a)[a.offset:], floats[float32](b)[b.offset:]
		if bShared && !transA && batch > 1 && sa == m*k {
			// One tall GEMM instead of many small ones: rows of all batches
			// share the weight.
			gemmF32(false, transB, batch*m, n, k, float32(alpha), x, lda, y, ldb, float32(beta), d, ldc)
			return nil
		}
		for i := 0; i < batch; i++ {
			gemmF32(transA, transB, m, n, k, float32(alpha), x[i*sa:], lda, y[i*sb:], ldb, float32(beta), d[i*sc:], ldc)
		}
	case dst.dtype == F32 && a.dtype == F32 && b.dtype == BF16:
		d, x, y := floats[float32](dst)[dst.offset:], floats[float32](a)[a.offset:], b.st.(*cpuStorage).u16[b.offset:]
		if bShared && !transA && batch > 1 {
			gemmBF16(false, transB, batch*m, n, k, float32(alpha), x, lda, y, ldb, float32(beta), d, ldc)
			return nil
		}
		for i := 0; i < batch; i++ {
			gemmBF16(transA, transB, m, n, k, float32(alpha), x[i*sa:], lda, y[i*sb:], ldb, float32(beta), d[i*sc:], ldc)
		}
	case dst.dtype == F32 && a.dtype == F32 && b.dtype == NF4:
		q := b.st.(*cpuStorage).nf4
		src := asm.NF4Source{Packed: q.Packed, Absmax: q.Absmax, BlockSize: q.BlockSize, Rows: b.shape[0], Cols: b.shape[1], Trans: transB}
		d, x := floats[float32](dst)[dst.offset:], floats[float32](a)[a.offset:]
		if !transA {
			gemmSource(false, batch*m, n, k, float32(alpha), x, lda, src, float32(beta), d, ldc)
			return nil
		}
		for i := 0; i < batch; i++ {
			gemmSource(true, m, n, k, float32(alpha), x[i*sa:], lda, src, float32(beta), d[i*sc:], ldc)
		}
	case dst.dtype == F64 && a.dtype == F64 && b.dtype == F64:
		d, x, y := floats[float64](dst)[dst.offset:], floats[float64](a)[a.offset:], floats[float64](b)[b.offset:]
		for i := 0; i < batch; i++ {
			asm.GemmRef(transA, transB, m, n, k, alpha, x[i*sa:], lda, y[i*sb:], ldb, beta, d[i*sc:], ldc)
		}
	default:
		return fmt.Errorf("cpu: %w: MatMul %v·%v -> %v", ErrUnsupported, a.dtype, b.dtype, dst.dtype)
	}
	return nil
}
