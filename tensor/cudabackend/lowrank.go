package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/kernels/dropout"
	"github.com/ftune/ftune/tensor"
)

// MatMulLowRank implements tensor.LowRankBackend: a LoRA layer's base and
// low-rank products, dst = a·op(w) + drop(scale·h·op(l)) + beta·dst, in one
// launch of ftune's fused GEMM (cuda.MatmulLoRABF16, cuda.MatmulLoRANF4BF16):
// dst is written once and rounded to bf16 once, where the two products
// apart write it, then read and write it again (with bf16 activations at
// SmolLM2-135M's 8 × 2048 tokens, 0.66 GB a layer over the seven
// projections' forward outputs and backward input gradients).
//
// It fuses in bf16 mode (Options.BF16MatMul, unless Options.UnfusedLoRA)
// with bf16 dst, a, h and l, all rank 2, and w bf16 or a whole NF4 weight
// on this backend. For other operands, for a bf16 w whose product would be
// split in K (few output tiles, long K: cuda.Device.SplitsK), for a
// dropout mask on the nt (forward) product, when the GEMM provider is
// cublaslt (forced: every product on cuBLASLt), and when (without a
// dropout mask, which cuBLASLt's pair would need two more passes for)
// auto measured cuBLASLt's two products faster than the fused one for the
// shape (timed like MatMul's shapes; provider.go), it returns an error
// wrapping tensor.ErrUnsupported and writes nothing: the caller runs the
// two products through MatMul.
func (b *Backend) MatMulLowRank(dst, a, w, h, l *tensor.Tensor, transB bool, scale, beta float64, drop *tensor.DropoutStream) error {
	defer keep(dst, a, w, h, l)
	unfused := func(why string) error {
		return fmt.Errorf("cuda: %w: the fused LoRA product: %s", tensor.ErrUnsupported, why)
	}
	if why := b.loraFusionOff(); why != "" {
		return unfused(why)
	}
	switch {
	case dst.DType() != tensor.BF16 || a.DType() != tensor.BF16 || h.DType() != tensor.BF16 || l.DType() != tensor.BF16:
		return unfused(fmt.Sprintf("operands %v·%v + %v·%v -> %v (bf16 activations only)", a.DType(), w.DType(), h.DType(), l.DType(), dst.DType()))
	case w.DType() != tensor.BF16 && w.DType() != tensor.NF4:
		return unfused(fmt.Sprintf("a %v base weight", w.DType()))
	case dst.Rank() != 2 || a.Rank() != 2 || w.Rank() != 2 || h.Rank() != 2 || l.Rank() != 2:
		return unfused("operands of rank other than 2")
	case drop != nil && transB:
		return unfused("a dropout mask on the forward's product (the mask acts on x before A there)")
	case drop != nil && (drop.P < 0 || drop.P >= 1 || !dst.IsContiguous()):
		return unfused(fmt.Sprintf("dropout p %v on a dst of strides %v", drop.P, dst.Strides()))
	}
	g, err := tensor.CheckMatMul(dst, a, w, false, transB)
	if err != nil {
		return cudaErr(err)
	}
	g2, err := tensor.CheckMatMul(dst, h, l, false, transB)
	if err != nil {
		return cudaErr(err)
	}
	M, N, K := g.M, g.N, g.K
	if M == 0 || N == 0 {
		return nil
	}
	pd, err := b.ptr(dst)
	if err != nil {
		return err
	}
	rd, err := b.readPtrs(a, h, l)
	if err != nil {
		return err
	}
	pa, ph, pl := rd[0], rd[1], rd[2]
	lr := cuda.LowRank{A: ph, LDA: g2.LDA, B: pl, LDB: g2.LDB, K: g2.K, Scale: float32(scale)}
	if drop != nil {
		d, keep := dropout.Threshold(drop.P)
		lr.Dropout = &cuda.LowRankDropout{Key: drop.Key, Pos: drop.Pos, Drop: d, Keep: keep, LDM: N}
	}

	if w.DType() == tensor.NF4 {
		// cuBLASLt has no NF4 operand and the NF4 product never splits K:
		// fused whatever the provider.
		s, err := b.nf4Storage(w) // a view: ErrUnsupported, the products apart
		if err != nil {
			return err
		}
		if b.opt.WGMMA && b.dev.WGMMANF4LoRATakes(transB, N, K, g.LDA, pa, lr) == nil {
			return b.dev.MatmulLoRAWGMMANF4BF16(b.s, transB, M, N, K, pa, g.LDA, s.p, s.absmax, s.blockSize, s.nested, lr, pd, g.LDC, 1, float32(beta))
		}
		return b.dev.MatmulLoRANF4BF16(b.s, transB, M, N, K, pa, g.LDA, s.p, s.absmax, s.blockSize, s.nested, lr, pd, g.LDC, 1, float32(beta))
	}
	pw, err := b.readPtr(w)
	if err != nil {
		return err
	}
	if b.dev.SplitsK(M, N, K) {
		return unfused(fmt.Sprintf("the base product %d×%d×%d splits K", M, N, K))
	}
	// Options.WGMMA: the sm_90a kernel where it takes the operands (else,
	// as without it, the sm_80 one).
	wgmma := b.opt.WGMMA && b.dev.WGMMALoRATakesWith(b.opt.WGMMALoads, transB, N, K, g.LDA, g.LDB, pa, pw, lr) == nil
	fused := func(m int, c cuda.Ptr, beta float32) error {
		if wgmma {
			return b.dev.MatmulLoRAWGMMAWith(b.s, b.opt.WGMMALoads, transB, m, N, K, pa, g.LDA, pw, g.LDB, lr, c, g.LDC, 1, beta)
		}
		return b.dev.MatmulLoRABF16(b.s, transB, m, N, K, pa, g.LDA, pw, g.LDB, lr, c, g.LDC, 1, beta)
	}
	// cuBLASLt in play: forced, the products go to it one by one; auto,
	// the fused kernel is timed against cuBLASLt's two products.
	if b.lt != nil && b.opt.GEMMProvider == GEMMCuBLASLt {
		return unfused("gemm provider cublaslt (forced)")
	}
	if b.lt == nil || drop != nil {
		// With a dropout mask cuBLASLt's pair would need the mask's own
		// pass and an addition besides (seven passes over dst's size to
		// the fused kernel's one): no trial.
		return fused(M, pd, float32(beta))
	}
	in, out := cuda.BF16, cuda.BF16
	pair := func(m int, c cuda.Ptr, beta float32) error {
		if err := b.lt.Matmul(b.s, in, out, false, transB, m, N, K, pa, g.LDA, pw, g.LDB, c, g.LDC, 1, beta); err != nil {
			return err
		}
		return b.lt.Matmul(b.s, in, out, false, transB, m, N, lr.K, ph, lr.LDA, pl, lr.LDB, c, g.LDC, lr.Scale, 1)
	}
	k := gemmKey{outBF16: true, transB: transB, N: N, K: K, lda: g.LDA, ldb: g.LDB, ldc: g.LDC, readC: beta != 0,
		align: min(alignOf(pa), alignOf(pw), alignOf(pd), alignOf(ph), alignOf(pl)), lowRank: lr.K}
	k.M, k.bucketed = mBucket(M)
	supports := func() error {
		if err := b.lt.Supports(in, out, false, transB, M, N, K, pa, g.LDA, pw, g.LDB, pd, g.LDC, float32(beta)); err != nil {
			return err
		}
		return b.lt.Supports(in, out, false, transB, M, N, lr.K, ph, lr.LDA, pl, lr.LDB, pd, g.LDC, 1)
	}
	trial := func() (float64, float64, error) { return b.trialGEMM(out, M, N, g.LDC, pd, float32(beta), fused, pair) }
	useLt, err := b.gemm.pick(k, supports, trial)
	if err != nil {
		return err
	}
	if useLt {
		return unfused("gemm provider auto measured cuBLASLt's two products faster for " + k.String())
	}
	return fused(M, pd, float32(beta))
}

// readPtrs is readPtr for several operands.
func (b *Backend) readPtrs(ts ...*tensor.Tensor) ([]cuda.Ptr, error) { return resolve(b.readPtr, ts) }

// MatMulDropoutA implements tensor.DropoutMatMulBackend: dst = drop(a)·wᵀ
// on cuda.Device.MatmulDropoutABF16, LoRA dropout's mask applied to a's
// tiles in the GEMM (bf16, rounded as the dropout kernel rounds), so the
// dropped-out [tokens, in] activation is neither written nor read (two
// passes over it a projection). It declines (ErrUnsupported) as
// dropoutProduct says and for a product that splits K.
func (b *Backend) MatMulDropoutA(dst, a, w *tensor.Tensor, drop *tensor.DropoutStream) error {
	defer keep(dst, a, w)
	g, m, err := b.dropoutProduct(dst, a, w, false, true, a, drop)
	if err != nil || g.M == 0 || g.N == 0 {
		return err
	}
	if b.dev.SplitsK(g.M, g.N, g.K) {
		return dropoutUnfused(fmt.Sprintf("the product %d×%d×%d splits K", g.M, g.N, g.K))
	}
	pd, rd, err := b.productPtrs(dst, a, w)
	if err != nil {
		return err
	}
	return b.dev.MatmulDropoutABF16(b.s, g.M, g.N, g.K, rd[0], g.LDA, rd[1], g.LDB, pd, g.LDC, 1, 0, m)
}

// MatMulTDropoutB implements tensor.DropoutMatMulBackend: dst = aᵀ·drop(bv)
// on cuda.Device.MatmulTNDropoutBBF16 (a LoRA layer's dA = dhᵀ·dropout(x),
// split in K over the tokens as the plain product would be), the mask
// applied to bv's tiles: the dropped-out x is neither written nor read
// (two passes over [tokens, in] a projection's backward). It declines as
// dropoutProduct says.
func (b *Backend) MatMulTDropoutB(dst, a, bv *tensor.Tensor, drop *tensor.DropoutStream) error {
	defer keep(dst, a, bv)
	g, m, err := b.dropoutProduct(dst, a, bv, true, false, bv, drop)
	if err != nil || g.M == 0 || g.N == 0 {
		return err
	}
	pd, rd, err := b.productPtrs(dst, a, bv)
	if err != nil {
		return err
	}
	return b.dev.MatmulTNDropoutBBF16(b.s, g.M, g.N, g.K, rd[0], g.LDA, rd[1], g.LDB, pd, g.LDC, 1, 0, m)
}

// dropoutProduct checks a product with dropout inside on operands x·y
// (transposes transA, transB; masked the operand whose row length the mask
// takes) and returns its shape and the kernel's mask, or an error wrapping
// ErrUnsupported when this backend does not fuse it: where MatMulLowRank
// would decline (float32 mode, Options.UnfusedLoRA), for operands other
// than bf16, a batched product, p outside [0, 1), and
// when cuBLASLt is forced.
func (b *Backend) dropoutProduct(dst, x, y *tensor.Tensor, transA, transB bool, masked *tensor.Tensor, drop *tensor.DropoutStream) (tensor.MatMulDims, cuda.LowRankDropout, error) {
	var none cuda.LowRankDropout
	if why := b.loraFusionOff(); why != "" {
		return tensor.MatMulDims{}, none, dropoutUnfused(why)
	}
	switch {
	case dst.DType() != tensor.BF16 || x.DType() != tensor.BF16 || y.DType() != tensor.BF16:
		return tensor.MatMulDims{}, none, dropoutUnfused(fmt.Sprintf("operands %v·%v -> %v (bf16 only)", x.DType(), y.DType(), dst.DType()))
	case drop.P < 0 || drop.P >= 1:
		return tensor.MatMulDims{}, none, dropoutUnfused(fmt.Sprintf("dropout p %v", drop.P))
	case b.lt != nil && b.opt.GEMMProvider == GEMMCuBLASLt:
		return tensor.MatMulDims{}, none, dropoutUnfused("gemm provider cublaslt (forced)")
	}
	g, err := tensor.CheckMatMul(dst, x, y, transA, transB)
	if err != nil {
		return g, none, cudaErr(err)
	}
	if g.Batch != 1 {
		return g, none, dropoutUnfused("a batched product")
	}
	d, keepv := dropout.Threshold(drop.P)
	return g, cuda.LowRankDropout{Key: drop.Key, Pos: drop.Pos, Drop: d, Keep: keepv, LDM: masked.Dim(1)}, nil
}

// dropoutUnfused is dropoutProduct's refusal.
func dropoutUnfused(why string) error {
	return fmt.Errorf("cuda: %w: the product with dropout inside: %s", tensor.ErrUnsupported, why)
}

// productPtrs resolves a product's output for writing and its operands for
// reading.
func (b *Backend) productPtrs(dst, x, y *tensor.Tensor) (cuda.Ptr, []cuda.Ptr, error) {
	pd, err := b.ptr(dst)
	if err != nil {
		return 0, nil, err
	}
	rd, err := b.readPtrs(x, y)
	return pd, rd, err
}

// loraFusionOff says why this backend runs no fused LoRA product ("": it
// may): the float32 parity path runs the products apart, and so does
// Options.UnfusedLoRA.
func (b *Backend) loraFusionOff() string {
	switch {
	case !b.opt.BF16MatMul:
		return "float32 mode (the parity path runs the products apart)"
	case b.opt.UnfusedLoRA:
		return "off (Options.UnfusedLoRA)"
	}
	return ""
}
