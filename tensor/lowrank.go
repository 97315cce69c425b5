package tensor

import "errors"

// LowRankBackend is implemented by backends that compute a LoRA layer's
// base and low-rank products in one pass (the CUDA backend's fused GEMM in
// bf16 mode). It is optional: MatMulLowRankInto runs the two products
// through MatMul on any other backend, and on this one for the operands it
// does not fuse.
type LowRankBackend interface {
	// MatMulLowRank: dst = a·op(w) + drop(scale·h·op(l)) + beta·dst, all
	// rank 2 (op(x) = xᵀ when transB; drop the identity when nil, else
	// Dropout's mask over dst's elements). An error wrapping
	// ErrUnsupported says the backend does not fuse these operands and
	// wrote nothing.
	MatMulLowRank(dst, a, w, h, l *Tensor, transB bool, scale, beta float64, drop *DropoutStream) error
}

// DropoutStream names a dropout mask by where it is drawn: Dropout(t, Key,
// Pos, P), kernels/dropout's counter-based stream at (Key, Pos) with
// probability P, over t's elements in row-major order. LoRA layers pass it
// instead of the mask, which is drawn again where it is used.
type DropoutStream struct {
	Key, Pos uint64
	P        float64
}

// Apply returns Dropout(t, s.Key, s.Pos, s.P).
func (s *DropoutStream) Apply(t *Tensor) *Tensor { return Dropout(t, s.Key, s.Pos, s.P) }

// MatMulLowRankInto computes dst = a·op(w) + drop(scale·h·op(l)) +
// beta·dst for rank-2 operands (op(x) = xᵀ when transB): a LoRA layer's
// two products, y = x·Wᵀ + s·h·Bᵀ in the forward (h = x·Aᵀ, transB) and
// dx = dy·W + dh·A in the backward (with LoRA dropout, dx = dy·W +
// mask ⊙ (dh·A): drop, the mask the forward applied to x). A
// LowRankBackend computes both in one pass, writing dst once; otherwise,
// and for the operands it does not fuse, the two products run apart:
// MatMulInto(dst, a, w, 1, beta), then MatMulInto(dst, h, l, scale, 1), or
// with drop the low-rank product into a temporary, Dropout, and an add.
func MatMulLowRankInto(dst, a, w, h, l *Tensor, transB bool, scale, beta float64, drop *DropoutStream) {
	be := sameBackend(dst, a, w, h, l)
	a, w, h, l = a.Contiguous(), w.Contiguous(), h.Contiguous(), l.Contiguous()
	if drop != nil && !dst.IsContiguous() {
		fail("MatMulLowRankInto: a dropout mask needs a contiguous dst, got strides %v", dst.Strides())
	}
	if lb, ok := be.(LowRankBackend); ok {
		err := lb.MatMulLowRank(dst, a, w, h, l, transB, scale, beta, drop)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrUnsupported) {
			check(err)
		}
	}
	check(be.MatMul(dst, a, w, false, transB, 1, beta))
	if drop == nil {
		check(be.MatMul(dst, h, l, false, transB, scale, 1))
		return
	}
	t := New(be, dst.dtype, dst.shape...)
	check(be.MatMul(t, h, l, false, transB, scale, 0))
	td := drop.Apply(t)
	check(Release(t)) // the mask's product is a new tensor
	AddInPlace(dst, td)
	check(Release(td))
}

// DropoutMatMulBackend is implemented by backends that multiply by a
// dropout mask inside a product (the CUDA backend in bf16 mode: LoRA's
// h = dropout(x)·Aᵀ and dA = dhᵀ·dropout(x) without the dropped-out x).
// Optional, like LowRankBackend.
type DropoutMatMulBackend interface {
	// MatMulDropoutA: dst = drop(a)·wᵀ, all rank 2, drop's mask over a's
	// elements (a contiguous). An error wrapping ErrUnsupported says the
	// backend does not fuse these operands and wrote nothing.
	MatMulDropoutA(dst, a, w *Tensor, drop *DropoutStream) error
	// MatMulTDropoutB: dst = aᵀ·drop(b), all rank 2, drop's mask over b's
	// elements (b contiguous). ErrUnsupported as MatMulDropoutA.
	MatMulTDropoutB(dst, a, b *Tensor, drop *DropoutStream) error
}

// MatMulDropoutA returns drop(a)·wᵀ for a [M,K] and w [N,K] (a LoRA layer's
// h = dropout(x)·Aᵀ): one product with the mask applied to a's tiles on a
// DropoutMatMulBackend, else drop.Apply(a) into a temporary and MatMul.
func MatMulDropoutA(a, w *Tensor, drop *DropoutStream) *Tensor {
	be := sameBackend(a, w)
	a, w = a.Contiguous(), w.Contiguous()
	if a.Rank() != 2 || w.Rank() != 2 || a.shape[1] != w.shape[1] {
		fail("MatMulDropoutA of %v and %v (want [M,K] and [N,K])", a.shape, w.shape)
	}
	out := New(be, a.dtype, a.shape[0], w.shape[0])
	if db, ok := be.(DropoutMatMulBackend); ok {
		err := db.MatMulDropoutA(out, a, w, drop)
		if err == nil {
			return out
		}
		if !errors.Is(err, ErrUnsupported) {
			check(err)
		}
	}
	ad := drop.Apply(a)
	check(be.MatMul(out, ad, w, false, true, 1, 0))
	check(Release(ad)) // dead now: queued work that reads it runs first on a device's one stream
	return out
}

// MatMulTDropoutB returns aᵀ·drop(b) for a [K,M] and b [K,N] (a LoRA
// layer's dA = dhᵀ·dropout(x), K the tokens): one product with the mask
// applied to b's tiles on a DropoutMatMulBackend, else drop.Apply(b) into
// a temporary and MatMul.
func MatMulTDropoutB(a, b *Tensor, drop *DropoutStream) *Tensor {
	be := sameBackend(a, b)
	a, b = a.Contiguous(), b.Contiguous()
	if a.Rank() != 2 || b.Rank() != 2 || a.shape[0] != b.shape[0] {
		fail("MatMulTDropoutB of %v and %v (want [K,M] and [K,N])", a.shape, b.shape)
	}
	out := New(be, a.dtype, a.shape[1], b.shape[1])
	if db, ok := be.(DropoutMatMulBackend); ok {
		err := db.MatMulTDropoutB(out, a, b, drop)
		if err == nil {
			return out
		}
		if !errors.Is(err, ErrUnsupported) {
			check(err)
		}
	}
	bd := drop.Apply(b)
	check(be.MatMul(out, a, bd, true, false, 1, 0))
	check(Release(bd)) // dead now, as in MatMulDropoutA
	return out
}
