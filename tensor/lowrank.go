package tensor

import "errors"

// LowRankBackend is implemented by backends that compute a LoRA layer's
// base and low-rank products in one pass (the CUDA backend's fused GEMM in
// bf16 mode). It is optional: MatMulLowRankInto runs the two products
// through MatMul on any other backend, and on this one for the operands it
// does not fuse.
type LowRankBackend interface {
	// MatMulLowRank: dst = a·op(w) + scale·h·op(l) + beta·dst, all rank 2
	// (op(x) = xᵀ when transB). An error wrapping ErrUnsupported says the
	// backend does not fuse these operands and wrote nothing.
	MatMulLowRank(dst, a, w, h, l *Tensor, transB bool, scale, beta float64) error
}

// MatMulLowRankInto computes dst = a·op(w) + scale·h·op(l) + beta·dst for
// rank-2 operands (op(x) = xᵀ when transB): a LoRA layer's two products,
// y = x·Wᵀ + s·h·Bᵀ in the forward (h = x·Aᵀ, transB) and dx = dy·W + dh·A
// in the backward. A LowRankBackend computes both in one pass, writing dst
// once; otherwise, and for the operands it does not fuse, it is
// MatMulInto(dst, a, w, 1, beta) then MatMulInto(dst, h, l, scale, 1).
func MatMulLowRankInto(dst, a, w, h, l *Tensor, transB bool, scale, beta float64) {
	be := sameBackend(dst, a, w, h, l)
	a, w, h, l = a.Contiguous(), w.Contiguous(), h.Contiguous(), l.Contiguous()
	if lb, ok := be.(LowRankBackend); ok {
		err := lb.MatMulLowRank(dst, a, w, h, l, transB, scale, beta)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrUnsupported) {
			check(err)
		}
	}
	check(be.MatMul(dst, a, w, false, transB, 1, beta))
	check(be.MatMul(dst, h, l, false, transB, scale, 1))
}
