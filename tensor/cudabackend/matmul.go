package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// MatMul: dst = alpha·op(a)·op(b) + beta·dst over the last two axes, leading
// axes batched (b rank 2 is shared by every batch). dst and a are F32, or
// BF16 in BF16MatMul mode (bf16 activations); b is F32, BF16 or NF4 (a whole rank-2 weight: in BF16MatMul mode with
// untransposed a, dequantized inside the GEMM's tile loader, for y = x·Wᵀ
// and for the backward's dx = dy·W; otherwise, i.e. in float32 mode or with
// transA, dequantized to the GEMM's type in scratch first).
//
// Default (float32) mode: the SIMT GEMM on float32 operands; a BF16 b is
// widened to a float32 scratch copy first (exact), so results match the
// CPU backend to float32 rounding; a and dst must be F32 there. BF16MatMul
// mode: an F32 a (and an F32 b) are rounded to bf16 scratch copies (a BF16
// one is used as it is) and the tensor-core GEMM runs with float32
// accumulation; a BF16 dst is written by the GEMM's bf16-output kernels,
// alpha·acc + beta·dst in float32 rounded once to bf16 at the store, i.e.
// the bf16 rounding of what an F32 dst would hold (no float32 copy and no
// cast pass). A shared b with untransposed a is one tall GEMM over all
// batches (how every Linear layer calls it); otherwise one launch per batch.
//
// Who computes each product is Options.GEMMProvider's choice (ftune's
// kernels, cuBLASLt, or per shape the faster: provider.go), except the
// bf16-mode NF4 products: their dequantizing tile loaders are ftune's alone
// (cuBLASLt has no NF4 operand).
func (b *Backend) MatMul(dst, a, w *tensor.Tensor, transA, transB bool, alpha, beta float64) error {
	defer keep(dst, a, w)
	defer b.noteUnsplit(b.dev.UnsplitProducts(), dst)
	g, err := tensor.CheckMatMul(dst, a, w, transA, transB)
	if err != nil {
		return cudaErr(err)
	}
	wt, at, dt := w.DType(), a.DType(), dst.DType()
	act := func(t tensor.DType) bool { return t == tensor.F32 || t == tensor.BF16 }
	if !act(dt) || !act(at) || (wt != tensor.F32 && wt != tensor.BF16 && wt != tensor.NF4) {
		return fmt.Errorf("cuda: %w: MatMul %v·%v -> %v (a and dst F32 or BF16, b F32, BF16 or NF4)", tensor.ErrUnsupported, at, wt, dt)
	}
	if (at == tensor.BF16 || dt == tensor.BF16) && !b.opt.BF16MatMul {
		// The float32 parity path computes from float32 operands into a
		// float32 result (to match the CPU to float32 rounding); widening a
		// or narrowing dst around it would only hide a precision mismatch.
		return fmt.Errorf("cuda: %w: MatMul %v·%v -> %v: bf16 activations need precision bf16 (Options.BF16MatMul); the float32 path takes F32 a and dst", tensor.ErrUnsupported, at, wt, dt)
	}
	batch, m, n, k, shared := g.Batch, g.M, g.N, g.K, g.SharedB
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	p, err := b.ptrs(dst, a)
	if err != nil {
		return err
	}
	pd, pa := p[0], p[1]
	lda, ldb, ldc := g.LDA, g.LDB, g.LDC

	// Operands in the GEMM's type, converted into scratch where needed;
	// the launcher is the provider's (Options.GEMMProvider, provider.go).
	elem := 4
	want := cuda.F32
	if b.opt.BF16MatMul {
		elem, want = 2, cuda.BF16
	}
	out, _ := kdt(dt) // F32, or BF16 (BF16MatMul mode only, checked above)
	gemm := b.gemmFor(want, out)
	conv := func(src cuda.Ptr, from tensor.DType, count int) (cuda.Ptr, func(), error) {
		fk, _ := kdt(from)
		if fk == want {
			return src, func() {}, nil
		}
		q, release, err := b.temp(want, count)
		if err != nil {
			return 0, nil, err
		}
		if err := b.dev.Cast(b.s, q, want, src, fk, int64(count)); err != nil {
			release()
			return 0, nil, err
		}
		return q, release, nil
	}
	ga, relA, err := conv(pa, a.DType(), a.Numel())
	if err != nil {
		return err
	}
	defer relA()
	if wt == tensor.NF4 && b.opt.BF16MatMul && !transA && shared {
		// QLoRA's forward (y = x·Wᵀ) and backward (dx = dy·W), one tall
		// GEMM over the batches each: the tensor-core GEMM dequantizes W's
		// tiles while loading them, so no dequantized copy of the weight is
		// made. Per weight element and backward this saves the 2-byte bf16
		// scratch copy (2 bytes of peak device memory at the largest layer,
		// and the dequant kernel's 0.5625-byte read plus 2-byte write), and
		// each M-tile row of the GEMM reads 0.5625 bytes (a 4-bit code plus
		// 4/64 of a float32 absmax; 0.516 with double-quantized scales)
		// instead of 2.
		return b.matmulNF4(dst, w, out, transB, pd, ga, batch*m, n, k, lda, ldc, alpha, beta)
	}
	var gw cuda.Ptr
	if wt == tensor.NF4 {
		// Other NF4 products (float32 mode for parity, and transposed a):
		// W dequantized whole into GEMM-type scratch, which the caching
		// allocator hands back for the next layer.
		q, release, err := b.temp(want, w.Numel())
		if err != nil {
			return err
		}
		defer release()
		if err := b.dequantNF4(q, want, w); err != nil {
			return err
		}
		gw = q
	} else {
		pw, err := b.ptr(w)
		if err != nil {
			return err
		}
		var relW func()
		gw, relW, err = conv(pw, wt, w.Numel())
		if err != nil {
			return err
		}
		defer relW()
	}

	if k == 0 {
		// No products: dst = beta·dst.
		if beta == 0 {
			return b.Fill(dst, 0)
		}
		return b.Unary(tensor.OpScale, dst, dst, beta)
	}
	if shared && !transA {
		return gemm(b.s, false, transB, batch*m, n, k, ga, lda, gw, ldb, pd, ldc, float32(alpha), float32(beta))
	}
	sa, sw, sc := m*k, k*n, m*n
	if shared {
		sw = 0
	}
	for i := 0; i < batch; i++ {
		if err := gemm(b.s, transA, transB, m, n, k, ga.Add(i*sa*elem), lda, gw.Add(i*sw*elem), ldb, pd.Add(i*sc*out.Size()), ldc, float32(alpha), float32(beta)); err != nil {
			return err
		}
	}
	return nil
}

// matmulNF4 runs dst[M,N] = alpha·a·op(w) + beta·dst with a already bf16
// (ga), dst of type out (F32 or BF16) and w a whole NF4 weight on this
// backend, on the NF4 tensor-core GEMM: w [N,K] and op(w) = wᵀ when transB
// (the forward), w [K,N] and op(w) = w otherwise (the backward's dx).
func (b *Backend) matmulNF4(dst, w *tensor.Tensor, out cuda.DType, transB bool, pd, ga cuda.Ptr, M, N, K, lda, ldc int, alpha, beta float64) error {
	s, err := b.nf4Storage(w)
	if err != nil {
		return err
	}
	if K == 0 {
		// No products: dst = beta·dst.
		if beta == 0 {
			return b.Fill(dst, 0)
		}
		return b.Unary(tensor.OpScale, dst, dst, beta)
	}
	// Options.WGMMA: the sm_90a NF4 kernel where it takes the product (its
	// A loads are cp.async whatever WGMMALoads says: TMA cannot dequantize).
	if b.opt.WGMMA && b.dev.WGMMANF4Takes(K, lda, ga) == nil {
		return b.dev.MatmulWGMMANF4BF16To(b.s, out, transB, M, N, K, ga, lda, s.p, s.absmax, s.blockSize, s.nested, pd, ldc, float32(alpha), float32(beta))
	}
	if s.nested != nil {
		return b.dev.MatmulNF4DQBF16To(b.s, out, transB, M, N, K, ga, lda, s.p, s.blockSize, *s.nested, pd, ldc, float32(alpha), float32(beta))
	}
	return b.dev.MatmulNF4BF16To(b.s, out, transB, M, N, K, ga, lda, s.p, s.absmax, s.blockSize, pd, ldc, float32(alpha), float32(beta))
}

// noteUnsplit says in the log, the first time, that a product ran with K
// unsplit because the device-memory cap left no room for its split-K
// scratch (before: the device's count when the product began).
func (b *Backend) noteUnsplit(before int64, dst *tensor.Tensor) {
	if b.dev.UnsplitProducts() == before || !b.unsplitNoted.CompareAndSwap(false, true) || b.opt.Log == nil {
		return
	}
	fmt.Fprintf(b.opt.Log, "cuda: the product into %v ran with K unsplit: the device-memory cap (%d bytes) left no room for its float32 partial products; "+
		"it and any like it run slower, with the same result up to the order of a float32 sum (said once)\n", dst.Shape(), b.alloc.Limit())
}

// nf4Storage returns the storage of a whole NF4 weight on this backend, or
// why it cannot be a GEMM's NF4 operand (a view is ErrUnsupported).
func (b *Backend) nf4Storage(w *tensor.Tensor) (*storage, error) {
	s, ok := w.Storage().(*storage)
	if !ok || s.b != b || s.dt != tensor.NF4 {
		return nil, fmt.Errorf("cuda: tensor %v is not NF4 on backend %s", w, b.Name())
	}
	if s.released {
		return nil, fmt.Errorf("cuda: NF4 tensor %v used after its storage was released", w)
	}
	if w.Offset() != 0 || !w.IsContiguous() || w.Numel() != s.n {
		return nil, fmt.Errorf("cuda: %w: a view of an NF4 tensor (whole weights only)", tensor.ErrUnsupported)
	}
	return s, nil
}
