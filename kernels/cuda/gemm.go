package cuda

import (
	"errors"
	"fmt"
	"sync"
)

// Tile shape of gemm.cu's tensor-core kernels (keep in step with the .cu).
const (
	gemmBM, gemmBN, gemmBK = 128, 128, 32
	gemmStages, gemmPad    = 4, 8
)

var smemSet sync.Map // *Function -> int (dynamic smem limit already set)

// tensorCoreSmem is the dynamic shared memory of gemm.cu's tensor-core
// kernels: the cp.async ring of STAGES A and B tiles, each laid out as
// its operand is stored (padded rows).
func tensorCoreSmem(transA, transB bool) int {
	tileA := gemmBM * (gemmBK + gemmPad)
	if transA {
		tileA = gemmBK * (gemmBM + gemmPad)
	}
	tileB := gemmBK * (gemmBN + gemmPad)
	if transB {
		tileB = gemmBN * (gemmBK + gemmPad)
	}
	return gemmStages * (tileA + tileB) * 2
}

// ensureSmem raises f's dynamic shared memory limit to n once.
func ensureSmem(f *Function, n int) error {
	if n <= 48<<10 {
		return nil
	}
	if v, ok := smemSet.Load(f); ok && v.(int) >= n {
		return nil
	}
	if err := f.SetMaxDynamicSmem(n); err != nil {
		return err
	}
	smemSet.Store(f, n)
	return nil
}

func transName(transA, transB bool) string {
	b := []byte("nn")
	if transA {
		b[0] = 't'
	}
	if transB {
		b[1] = 't'
	}
	return string(b)
}

// gemmOut returns the kernel-name infix of the tensor-core GEMMs storing C
// as out: "" for F32, "_cbf16" for BF16 (gemm.cu builds no other).
func gemmOut(op string, out DType) (string, error) {
	switch out {
	case F32:
		return "", nil
	case BF16:
		return "_cbf16", nil
	}
	return "", badArg("%s: C of type %v: the tensor-core GEMM stores C as F32 or BF16 only", op, out)
}

func checkGemm(op string, transA, transB bool, M, N, K, lda, ldb, ldc int) error {
	if M < 0 || N < 0 || K < 0 {
		return badArg("%s: negative size M=%d N=%d K=%d", op, M, N, K)
	}
	ra, rb := K, N // minimum leading dimensions
	if transA {
		ra = M
	}
	if transB {
		rb = K
	}
	if lda < max(ra, 1) || ldb < max(rb, 1) || ldc < max(N, 1) {
		return badArg("%s %s: M=%d N=%d K=%d needs lda>=%d ldb>=%d ldc>=%d, got %d %d %d",
			op, transName(transA, transB), M, N, K, ra, rb, N, lda, ldb, ldc)
	}
	return nil
}

// MatmulBF16 computes C = alpha * op(A) * op(B) + beta * C on tensor cores:
// A and B bfloat16, C float32, all row-major. op(A) is [M,K]: A stored [M,K]
// with leading dimension lda, or [K,M] when transA. op(B) is [K,N]: B stored
// [K,N], or [N,K] when transB (the nn.Linear weight layout). beta == 0 never
// reads C. Sums are float32; the result differs from a float64 product of the
// same bf16 inputs by float32 rounding only.
func (d *Device) MatmulBF16(s Stream, transA, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32) error {
	return d.MatmulBF16To(s, F32, transA, transB, M, N, K, a, lda, b, ldb, c, ldc, alpha, beta)
}

// MatmulBF16To is MatmulBF16 with C of type out: F32 (MatmulBF16), or BF16
// (bf16 activations): the float32 result alpha·acc + beta·C, C widened
// exactly from bf16 when beta != 0, is rounded once to bf16 (nearest even)
// as it is stored, so C is the bf16 rounding of what MatmulBF16 would store.
// Any other out is ErrBadArgument: no such kernel is built.
func (d *Device) MatmulBF16To(s Stream, out DType, transA, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulTensorCore(s, "MatmulBF16To", out, transA, transB, M, N, K, a, lda, b, ldb, c, ldc, alpha, beta, nil)
}

// MatmulTNDropoutBBF16 computes C = alpha·Aᵀ·(mask ⊙ B) + beta·C, C bf16
// [M,N] (ldc), A bf16 stored [K,M] (lda), B bf16 [K,N] (ldb): a LoRA
// layer's dA = dhᵀ·dropout(x), the mask (m: kernels/dropout's stream,
// element (k, j) of B taking mask element k·m.LDM + j) applied to B's
// tiles in shared memory, each element rounded to bf16 once as
// DropoutApply rounds it, so the result is MatmulBF16To's on the
// dropped-out B without that tensor existing. Split in K as MatmulBF16To
// splits (dA's usual shape: M the rank, K every token of the batch).
func (d *Device) MatmulTNDropoutBBF16(s Stream, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32, m LowRankDropout) error {
	const op = "MatmulTNDropoutBBF16"
	if m.LDM < N {
		return badArg("%s: dropout mask row length %d < N=%d", op, m.LDM, N)
	}
	return d.matmulTensorCore(s, op, BF16, true, false, M, N, K, a, lda, b, ldb, c, ldc, alpha, beta, &m)
}

// matmulTensorCore launches the tensor-core product of MatmulBF16To (drop
// nil) or, with drop, its "_dropb" variant (tn only: B's tiles masked),
// split in K where splitK says so.
func (d *Device) matmulTensorCore(s Stream, op string, out DType, transA, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32, drop *LowRankDropout) error {
	suffix, err := gemmOut(op, out)
	if err != nil {
		return err
	}
	if err := checkGemm(op, transA, transB, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if M == 0 || N == 0 {
		return nil
	}
	f, err := d.Kernel("matmul_" + transName(transA, transB) + dropInfix(drop) + suffix + "_fwd_bf16")
	if err != nil {
		return err
	}
	smem := tensorCoreSmem(transA, transB)
	if err := ensureSmem(f, smem); err != nil {
		return err
	}
	grid := Dim3{(N + gemmBN - 1) / gemmBN, (M + gemmBM - 1) / gemmBM, 1}
	if slices, chunk := splitK(grid.X*grid.Y, M, N, K, d.SMs); slices > 1 && s.h == 0 {
		// The partial products' scratch comes from the allocator, under the
		// device-memory cap. When the cap leaves no room for it, the
		// product runs unsplit: slower, and equal up to the order of the
		// float32 sum, where an error would stop a run the memory plan
		// had fitted without this scratch.
		w, err := d.alloc.Alloc(slices * M * N * 4)
		if err == nil {
			defer func() { _ = d.alloc.Free(w) }()
			return d.matmulSplitK(s, out, transA, transB, M, N, K, a, lda, b, ldb, c, ldc, alpha, beta, w, slices, chunk, smem, drop)
		}
		if !errors.Is(err, ErrOutOfMemory) {
			return fmt.Errorf("%s: split-K scratch: %w", op, err)
		}
		d.unsplit.Add(1)
	}
	args := new(Args).Ptr(a).Ptr(b).Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldb).Int(ldc).F32(alpha).F32(beta)
	return f.Launch(s, grid, Dim3{256, 1, 1}, smem, maskArgs(args, drop))
}

// dropInfix names a product's dropout variant ("" for none).
func dropInfix(drop *LowRankDropout) string {
	if drop == nil {
		return ""
	}
	return "_dropb"
}

// maskArgs appends a dropout mask's kernel arguments (key, position,
// threshold, keep value, row length) to args; nothing for a nil mask.
func maskArgs(args *Args, m *LowRankDropout) *Args {
	if m == nil {
		return args
	}
	return args.I64(int64(m.Key)).I64(int64(m.Pos)).Int(int(m.Drop)).F32(m.Keep).I64(int64(m.LDM))
}

// UnsplitProducts counts the products that would have split K but ran
// unsplit because the allocator's cap left no room for their scratch (the
// CUDA backend says so in its log the first time).
func (d *Device) UnsplitProducts() int64 { return d.unsplit.Load() }

// splitK returns how many slices of K a tensor-core product of tiles
// output tiles is cut into (1: none) and each slice's length. A product
// with fewer tiles than the device has SMs, and a long K (LoRA's weight
// gradients: M = the rank, K = every token of the batch), would otherwise
// run on a few SMs while the rest idle. Only a K of 64 k-tiles or more is
// split (below that the extra launch and the partial products' round trip
// cost about what the split saves). Slices are cut to give about two
// blocks per SM (two 80 KB blocks fit one SM's shared memory), each at
// least 8 k-tiles long so the cp.async ring runs full, at most 64 of them,
// and at most 64 MiB of float32 partial products.
func splitK(tiles, M, N, K, sms int) (slices, chunk int) {
	const minChunk = 8 * gemmBK
	if sms <= 0 || tiles >= sms || K < 8*minChunk {
		return 1, K
	}
	n := min((2*sms+tiles-1)/tiles, K/minChunk, 64, (64<<20)/max(4*M*N, 1))
	if n < 2 {
		return 1, K
	}
	chunk = ((K+n-1)/n + gemmBK - 1) / gemmBK * gemmBK
	return (K + chunk - 1) / chunk, chunk
}

// matmulSplitK is MatmulBF16To in slices of K: float32 partial products
// into w, slices × M × N floats of scratch from the device's allocator
// (which the caller frees as soon as this returns: the allocator hands
// blocks out again in program order, which is why only the legacy stream,
// every other caller's, splits), then their sum with the epilogue.
func (d *Device) matmulSplitK(s Stream, out DType, transA, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32, w Ptr, slices, chunk, smem int, drop *LowRankDropout) error {
	f, err := d.Kernel("matmul_" + transName(transA, transB) + dropInfix(drop) + "_splitk_fwd_bf16")
	if err != nil {
		return err
	}
	if err := ensureSmem(f, smem); err != nil {
		return err
	}
	sum, err := d.Kernel("gemm_splitk_sum_fwd_" + map[DType]string{F32: "f32", BF16: "bf16"}[out])
	if err != nil {
		return err
	}
	grid := Dim3{(N + gemmBN - 1) / gemmBN, (M + gemmBM - 1) / gemmBM, slices}
	args := new(Args).Ptr(a).Ptr(b).Ptr(w).Int(M).Int(N).Int(K).Int(lda).Int(ldb).Int(chunk)
	if err := f.Launch(s, grid, Dim3{256, 1, 1}, smem, maskArgs(args, drop)); err != nil {
		return err
	}
	blocks := min((M*N+255)/256, 4*max(d.SMs, 1))
	args = new(Args).Ptr(c).Int(ldc).Ptr(w).Int(slices).Int(M).Int(N).F32(alpha).F32(beta)
	return sum.Launch(s, Dim3{blocks, 1, 1}, Dim3{256, 1, 1}, 0, args)
}

// MatmulNF4BF16 computes C = alpha * A * Wᵀ + beta * C on tensor cores (the
// nt layout: y = x Wᵀ), with A bfloat16 [M,K] (leading dimension lda), C
// float32 [M,N] (ldc), and W the whole NF4 weight [N,K]: packed holds its
// N*K codes two per byte, element 2i of the flattened weight in the high
// nibble; absmax holds one float32 per blocksize consecutive elements of the
// flattened weight (a block may span two rows when K % blocksize != 0). The
// kernel dequantizes W's tiles to bf16 while loading them into shared memory
// (code·absmax in float32, rounded to nearest even), so the result equals
// MatmulBF16 on the bf16 dequantized weight without that copy existing.
// beta == 0 never reads C.
func (d *Device) MatmulNF4BF16(s Stream, M, N, K int, a Ptr, lda int, packed, absmax Ptr, blocksize int, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulNF4(s, "MatmulNF4BF16", false, F32, true, M, N, K, a, lda, packed, absmax, blocksize, nil, c, ldc, alpha, beta)
}

// MatmulNF4NNBF16 computes C = alpha * A * W + beta * C on tensor cores (the
// nn layout: the backward's dx = dy·W of y = x Wᵀ), with A bfloat16 [M,K]
// (lda), C float32 [M,N] (ldc), and W the whole NF4 weight stored [K,N]
// (K = the layer's output features, N = its input features), in
// MatmulNF4BF16's format: blocks run along W's rows of N and span two rows
// when N % blocksize != 0. Its tiles are dequantized while loading, as in
// MatmulNF4BF16, so the result equals MatmulBF16 (nn) on the bf16
// dequantized weight. beta == 0 never reads C.
func (d *Device) MatmulNF4NNBF16(s Stream, M, N, K int, a Ptr, lda int, packed, absmax Ptr, blocksize int, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulNF4(s, "MatmulNF4NNBF16", false, F32, false, M, N, K, a, lda, packed, absmax, blocksize, nil, c, ldc, alpha, beta)
}

// MatmulNF4BF16To is MatmulNF4BF16 (transB: W [N,K], C = alpha·A·Wᵀ +
// beta·C) or MatmulNF4NNBF16 (W [K,N], C = alpha·A·W + beta·C) with C of
// type out, F32 or BF16 (rounded once at the store, as MatmulBF16To).
func (d *Device) MatmulNF4BF16To(s Stream, out DType, transB bool, M, N, K int, a Ptr, lda int, packed, absmax Ptr, blocksize int, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulNF4(s, "MatmulNF4BF16To", false, out, transB, M, N, K, a, lda, packed, absmax, blocksize, nil, c, ldc, alpha, beta)
}

// MatmulNF4DQBF16 is MatmulNF4BF16 (transB: W [N,K], C = alpha·A·Wᵀ + beta·C)
// or MatmulNF4NNBF16 (W [K,N], C = alpha·A·W + beta·C) with W's scales
// double-quantized (bitsandbytes' bnb_4bit_use_double_quant): q replaces
// the float32 absmax, and the tile loader decodes each block's scale from
// its 8-bit code (see NF4Nested), so the device holds 1 byte of scale per
// block instead of 4. The result equals MatmulBF16 on the weight
// dequantized with those scales and rounded to bf16.
func (d *Device) MatmulNF4DQBF16(s Stream, transB bool, M, N, K int, a Ptr, lda int, packed Ptr, blocksize int, q NF4Nested, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulNF4(s, "MatmulNF4DQBF16", false, F32, transB, M, N, K, a, lda, packed, 0, blocksize, &q, c, ldc, alpha, beta)
}

// MatmulNF4DQBF16To is MatmulNF4DQBF16 with C of type out, F32 or BF16
// (rounded once at the store, as MatmulBF16To).
func (d *Device) MatmulNF4DQBF16To(s Stream, out DType, transB bool, M, N, K int, a Ptr, lda int, packed Ptr, blocksize int, q NF4Nested, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulNF4(s, "MatmulNF4DQBF16To", false, out, transB, M, N, K, a, lda, packed, 0, blocksize, &q, c, ldc, alpha, beta)
}

// matmulNF4 launches matmul_{nt,nn}_nf4[dq][_cbf16]_fwd_bf16 (W [N,K] when
// transB, [K,N] otherwise; its leading dimension is its row length; scales
// float32 absmax, or q's double-quantized ones when q is not nil; C of type
// out).
func (d *Device) matmulNF4(s Stream, op string, wgmma bool, out DType, transB bool, M, N, K int, a Ptr, lda int, packed, absmax Ptr, blocksize int, q *NF4Nested, c Ptr, ldc int, alpha, beta float32) error {
	suffix, err := gemmOut(op, out)
	if err != nil {
		return err
	}
	if err := checkNF4(op, transB, M, N, K, lda, ldc, blocksize, q); err != nil {
		return err
	}
	if wgmma {
		if err := d.WGMMANF4Takes(K, lda, a); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if M == 0 || N == 0 {
		return nil
	}
	if wgmma {
		name, args := nf4Args(transB, "_wgmma", suffix, a, packed, absmax, q)
		args.Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldc).Int(blocksize).F32(alpha).F32(beta)
		return d.launchWGMMA(s, name, M, N, args)
	}
	name, args := nf4Args(transB, "", suffix, a, packed, absmax, q)
	args.Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldc).Int(blocksize).F32(alpha).F32(beta)
	return d.launchTensorCore(s, name, transB, M, N, args)
}

// launchTensorCore launches one of gemm.cu's tensor-core kernels (A
// untransposed) on its grid and shared memory, unsplit.
func (d *Device) launchTensorCore(s Stream, name string, transB bool, M, N int, args *Args) error {
	f, err := d.Kernel(name)
	if err != nil {
		return err
	}
	smem := tensorCoreSmem(false, transB)
	if err := ensureSmem(f, smem); err != nil {
		return err
	}
	grid := Dim3{(N + gemmBN - 1) / gemmBN, (M + gemmBM - 1) / gemmBM, 1}
	return f.Launch(s, grid, Dim3{256, 1, 1}, smem, args)
}

// checkNF4 checks an NF4 product's sizes (W [N,K] when transB, [K,N]
// otherwise, its row length its leading dimension) and block sizes.
func checkNF4(op string, transB bool, M, N, K, lda, ldc, blocksize int, q *NF4Nested) error {
	ldb := max(N, 1)
	if transB {
		ldb = max(K, 1)
	}
	if err := checkGemm(op, false, transB, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if blocksize <= 0 {
		return badArg("%s: blocksize=%d, want > 0", op, blocksize)
	}
	if q != nil && q.NestedBlockSize <= 0 {
		return badArg("%s: nested blocksize=%d, want > 0", op, q.NestedBlockSize)
	}
	return nil
}

// nf4Args returns the NF4 kernel's name,
// matmul_{nt,nn}<family>_nf4[dq]<infix>_fwd_bf16 (family "" for gemm.cu's,
// "_wgmma" for gemm_sm90.cu's; dq when q's double-quantized scales replace
// absmax), and its leading arguments: A, the packed codes and the scales.
func nf4Args(transB bool, family, infix string, a, packed, absmax Ptr, q *NF4Nested) (string, *Args) {
	if q != nil {
		return "matmul_" + transName(false, transB) + family + "_nf4dq" + infix + "_fwd_bf16",
			new(Args).Ptr(a).Ptr(packed).Ptr(q.QAbsmax).Ptr(q.NestedAbsmax).Ptr(q.NestedCode).F32(q.Offset).Int(q.NestedBlockSize)
	}
	return "matmul_" + transName(false, transB) + family + "_nf4" + infix + "_fwd_bf16", new(Args).Ptr(a).Ptr(packed).Ptr(absmax)
}

// MatmulF32 is MatmulBF16 with float32 A and B on the SIMT cores: the
// float32 parity path (results match a float64 product to float32 rounding).
func (d *Device) MatmulF32(s Stream, transA, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32) error {
	if err := checkGemm("MatmulF32", transA, transB, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if M == 0 || N == 0 {
		return nil
	}
	f, err := d.Kernel("matmul_fwd_f32")
	if err != nil {
		return err
	}
	ta, tb := 0, 0
	if transA {
		ta = 1
	}
	if transB {
		tb = 1
	}
	grid := Dim3{(N + 63) / 64, (M + 63) / 64, 1}
	args := new(Args).Ptr(a).Ptr(b).Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldb).Int(ldc).Int(ta).Int(tb).F32(alpha).F32(beta)
	return f.Launch(s, grid, Dim3{256, 1, 1}, 0, args)
}

// LowRank is the second operand pair of the fused LoRA products
// (MatmulLoRABF16, MatmulLoRANF4BF16): A [M,K] row-major with leading
// dimension LDA, and B [N,K] (LDB ≥ K) when the product's transB, [K,N]
// (LDB ≥ N) otherwise; its product is multiplied by Scale before the
// base product is added. K is the adapter's rank: the forward's h = x·Aᵀ
// with B the LoRA B [out,r] (transB), or the backward's dh = s·dy·B with
// B the LoRA A [r,in].
type LowRank struct {
	A     Ptr
	LDA   int
	B     Ptr
	LDB   int
	K     int
	Scale float32
	// Dropout, when set (the nn product only: LoRA dropout's backward,
	// dx = dy·W + mask ⊙ (dh·A_lora)), multiplies element (i, j) of the
	// low-rank product by element i·LDM + j of the mask kernels/dropout
	// draws at (Key, Pos) (DropoutMask's), before Scale.
	Dropout *LowRankDropout
}

// LowRankDropout is the dropout mask of a fused LoRA backward product:
// the stream position and the threshold and keep value of
// dropout.Threshold, LDM the mask's row length (the layer's input
// features: the mask covers the input activation [tokens, in]).
type LowRankDropout struct {
	Key, Pos uint64
	Drop     uint32
	Keep     float32
	LDM      int
}

// SplitsK reports whether MatmulBF16To would cut an M×N×K product into
// slices of K (few output tiles, long K: see splitK). The fused LoRA
// products never split, so a caller that would lose the split runs the
// products apart instead.
func (d *Device) SplitsK(M, N, K int) bool {
	slices, _ := splitK(((N+gemmBN-1)/gemmBN)*((M+gemmBM-1)/gemmBM), M, N, K, d.SMs)
	return slices > 1
}

// MatmulLoRABF16 computes a LoRA layer's two products in one launch, C
// bf16 [M,N] (ldc): C = alpha·(A·op(B) + lr.Scale·lr.A·op(lr.B)) + beta·C,
// with A bf16 [M,K] (lda) and B bf16 [N,K] when transB (the forward:
// y = x·Wᵀ + s·h·B_loraᵀ), [K,N] otherwise (the backward: dx = dy·W +
// dh·A_lora). The low-rank product accumulates first in float32, is
// scaled, the base product adds to the same accumulators, and C is
// rounded to bf16 once: within MatmulBF16To's float32 accumulation error
// of the exact sum, where the unfused pair rounds C twice (after the base
// product and after the addition) and reads and writes it twice. Never
// split in K (see SplitsK).
func (d *Device) MatmulLoRABF16(s Stream, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, lr LowRank, c Ptr, ldc int, alpha, beta float32) error {
	const op = "MatmulLoRABF16"
	if err := checkGemm(op, false, transB, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if err := checkLowRank(op, transB, M, N, lr); err != nil {
		return err
	}
	if M == 0 || N == 0 {
		return nil
	}
	args := new(Args).Ptr(a).Ptr(b).Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldb).Int(ldc).F32(alpha).F32(beta)
	return d.launchLoRA(s, "matmul_"+transName(false, transB)+"_lr_cbf16_fwd_bf16", transB, M, N, lr, args)
}

// MatmulLoRANF4BF16 is MatmulLoRABF16 with the base weight W NF4 (QLoRA),
// in MatmulNF4BF16To's format ([N,K] when transB, [K,N] otherwise; q not
// nil: double-quantized scales, MatmulNF4DQBF16To's), dequantized in the
// tile loader as there.
func (d *Device) MatmulLoRANF4BF16(s Stream, transB bool, M, N, K int, a Ptr, lda int, packed, absmax Ptr, blocksize int, q *NF4Nested, lr LowRank, c Ptr, ldc int, alpha, beta float32) error {
	return d.loraNF4(s, "MatmulLoRANF4BF16", false, transB, M, N, K, a, lda, packed, absmax, blocksize, q, lr, c, ldc, alpha, beta)
}

// loraNF4 launches a fused QLoRA product on gemm.cu's kernels or, with
// wgmma, gemm_sm90.cu's.
func (d *Device) loraNF4(s Stream, op string, wgmma, transB bool, M, N, K int, a Ptr, lda int, packed, absmax Ptr, blocksize int, q *NF4Nested, lr LowRank, c Ptr, ldc int, alpha, beta float32) error {
	if err := checkNF4(op, transB, M, N, K, lda, ldc, blocksize, q); err != nil {
		return err
	}
	if err := checkLowRank(op, transB, M, N, lr); err != nil {
		return err
	}
	if wgmma {
		if err := d.WGMMANF4LoRATakes(transB, N, K, lda, a, lr); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if M == 0 || N == 0 {
		return nil
	}
	family := ""
	if wgmma {
		family = "_wgmma"
	}
	name, args := nf4Args(transB, family, "_lr_cbf16", a, packed, absmax, q)
	args.Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldc).Int(blocksize).F32(alpha).F32(beta)
	if wgmma {
		return d.launchWGMMA(s, name, M, N, lowRankArgs(args, lr))
	}
	return d.launchLoRA(s, name, transB, M, N, lr, args)
}

// checkLowRank checks the second pair's sizes against the product's M and
// N: lr.A [M,lr.K], lr.B [N,lr.K] when transB, [lr.K,N] otherwise.
func checkLowRank(op string, transB bool, M, N int, lr LowRank) error {
	if lr.K < 0 {
		return badArg("%s: low-rank K=%d, want >= 0", op, lr.K)
	}
	rb := N
	if transB {
		rb = lr.K
	}
	if lr.LDA < max(lr.K, 1) || lr.LDB < max(rb, 1) {
		return badArg("%s %s: low-rank pair with M=%d N=%d K=%d needs lda>=%d ldb>=%d, got %d %d",
			op, transName(false, transB), M, N, lr.K, max(lr.K, 1), max(rb, 1), lr.LDA, lr.LDB)
	}
	if m := lr.Dropout; m != nil {
		if transB {
			return badArg("%s: a dropout mask on the nt product (the forward's dropout acts on x before A: only the nn product, the backward's dx, takes one)", op)
		}
		if m.LDM < N {
			return badArg("%s: dropout mask row length %d < N=%d", op, m.LDM, N)
		}
	}
	return nil
}

// launchLoRA appends the low-rank pair to args and launches name on the
// tensor-core GEMM's grid and shared memory (A untransposed).
func (d *Device) launchLoRA(s Stream, name string, transB bool, M, N int, lr LowRank, args *Args) error {
	return d.launchTensorCore(s, name, transB, M, N, lowRankArgs(args, lr))
}

// lowRankArgs appends the low-rank pair and its dropout mask (mask on,
// key, position, threshold, keep value, row length; off: zeros) to args,
// as gemm.cu's and gemm_sm90.cu's LoRA entries take them.
func lowRankArgs(args *Args, lr LowRank) *Args {
	args.Ptr(lr.A).Ptr(lr.B).Int(lr.K).Int(lr.LDA).Int(lr.LDB).F32(lr.Scale)
	if m := lr.Dropout; m != nil {
		return maskArgs(args.Int(1), m)
	}
	return args.Int(0).I64(0).I64(0).Int(0).F32(1).I64(0)
}

// The sm_90a GEMM's tile and shared memory (gemm_sm90.cu; keep in step).
const (
	wgmmaBM, wgmmaBN = 128, 128
	wgmmaSmem        = 4*2*128*64*2 + 1024 // 4 stages of A and B tiles, and the 1024-byte alignment
)

// WGMMATakes says why MatmulWGMMABF16To would refuse a product (nil: it
// runs it): the Hopper kernels compute C = alpha·A·op(B) + beta·C for A
// [M,K] untransposed and B [N,K] (transB: the nt product, every Linear
// layer's forward) or [K,N] (the nn product, its input gradient), on
// compute capability 9.0, with K, lda and ldb multiples of 8 (for nn N
// too: its B tiles are copied in 16-byte chunks along N) and A and B
// 16-byte aligned, so that each 16-byte chunk of a row is one copy.
func (d *Device) WGMMATakes(transA, transB bool, N, K, lda, ldb int, a, b Ptr) error {
	switch {
	case !d.Hopper():
		return badArg("the wgmma GEMM runs on compute capability 9.0 only (this GPU is %d.%d)", d.Major, d.Minor)
	case transA:
		return badArg("the wgmma GEMM computes the nt and nn products only (A [M,K]), not %s", transName(transA, transB))
	case K%8 != 0 || lda%8 != 0 || ldb%8 != 0:
		return badArg("the wgmma GEMM needs K, lda and ldb multiples of 8 (K=%d lda=%d ldb=%d)", K, lda, ldb)
	case !transB && N%8 != 0:
		return badArg("the wgmma GEMM's nn product needs N a multiple of 8 (N=%d)", N)
	case a%16 != 0 || b%16 != 0:
		return badArg("the wgmma GEMM needs A and B 16-byte aligned")
	}
	return nil
}

// MatmulWGMMABF16To is MatmulBF16To's nt (transB) or nn product (C =
// alpha·A·op(B) + beta·C, A bf16 [M,K], B bf16 [N,K] or [K,N], C of type
// out, F32 or BF16) on Hopper's warpgroup MMA (gemm_sm90.cu: wgmma
// m64n128k16 from 128-byte swizzled shared memory fed by cp.async, the nn
// product's B tiles MN-major, float32 accumulation), for the products
// WGMMATakes accepts; others are ErrBadArgument. Same contract and
// rounding as MatmulBF16To (beta == 0 never reads C; a bf16 C is rounded
// once); never split in K.
func (d *Device) MatmulWGMMABF16To(s Stream, out DType, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32) error {
	const op = "MatmulWGMMABF16To"
	suffix, err := gemmOut(op, out)
	if err != nil {
		return err
	}
	if err := checkGemm(op, false, transB, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if err := d.WGMMATakes(false, transB, N, K, lda, ldb, a, b); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if M == 0 || N == 0 {
		return nil
	}
	args := new(Args).Ptr(a).Ptr(b).Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldb).Int(ldc).F32(alpha).F32(beta)
	return d.launchWGMMA(s, "matmul_"+transName(false, transB)+"_wgmma"+suffix+"_fwd_bf16", M, N, args)
}

// launchWGMMA launches a gemm_sm90.cu kernel on its grid and shared memory.
func (d *Device) launchWGMMA(s Stream, name string, M, N int, args *Args) error {
	f, err := d.Kernel(name)
	if err != nil {
		return err
	}
	if err := ensureSmem(f, wgmmaSmem); err != nil {
		return err
	}
	grid := Dim3{(N + wgmmaBN - 1) / wgmmaBN, (M + wgmmaBM - 1) / wgmmaBM, 1}
	return f.Launch(s, grid, Dim3{256, 1, 1}, wgmmaSmem, args)
}

// WGMMALoRATakes says why MatmulLoRAWGMMABF16 would refuse a fused
// product (nil: it runs it): the base product as WGMMATakes says, and the
// low-rank pair under the same contract (its K, lda and ldb multiples of 8,
// A and B 16-byte aligned: LoRA's ranks 8, 16, 32, 64 are).
func (d *Device) WGMMALoRATakes(transB bool, N, K, lda, ldb int, a, b Ptr, lr LowRank) error {
	return d.WGMMALoRATakesWith(WGMMACpAsync, transB, N, K, lda, ldb, a, b, lr)
}

// MatmulLoRAWGMMABF16 is MatmulLoRABF16 (C = alpha·(A·op(B) +
// lr.Scale·lr.A·op(lr.B)) + beta·C, C bf16; the nn product with LoRA
// dropout's mask when lr.Dropout is set) on the sm_90a wgmma kernels, for
// the operands WGMMALoRATakes accepts (others are ErrBadArgument): the
// rank's k-tiles first into the accumulators, masked and scaled once they
// have retired, then the base product's; C written and rounded once.
// Never split in K.
func (d *Device) MatmulLoRAWGMMABF16(s Stream, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, lr LowRank, c Ptr, ldc int, alpha, beta float32) error {
	const op = "MatmulLoRAWGMMABF16"
	if err := checkGemm(op, false, transB, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if err := checkLowRank(op, transB, M, N, lr); err != nil {
		return err
	}
	if err := d.WGMMALoRATakes(transB, N, K, lda, ldb, a, b, lr); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if M == 0 || N == 0 {
		return nil
	}
	args := new(Args).Ptr(a).Ptr(b).Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldb).Int(ldc).F32(alpha).F32(beta)
	return d.launchWGMMA(s, "matmul_"+transName(false, transB)+"_wgmma_lr_cbf16_fwd_bf16", M, N, lowRankArgs(args, lr))
}

// WGMMATMATakes says why the TMA variants of the sm_90a GEMMs
// (MatmulWGMMATMABF16To, MatmulLoRAWGMMATMABF16) would refuse a product
// (nil: they run it): compute capability 9.0, A untransposed, and the
// tensor maps' own conditions, lda and ldb multiples of 8 (a row pitch of
// whole 16 bytes) and A and B 16-byte aligned. M, N and K are free: the
// TMA unit zero-fills a box past the matrix.
func (d *Device) WGMMATMATakes(transA bool, lda, ldb int, a, b Ptr) error {
	switch {
	case !d.Hopper():
		return badArg("the wgmma GEMM runs on compute capability 9.0 only (this GPU is %d.%d)", d.Major, d.Minor)
	case transA:
		return badArg("the wgmma GEMM computes the nt and nn products only (A [M,K])")
	case lda%8 != 0 || ldb%8 != 0:
		return badArg("the TMA loads need lda and ldb multiples of 8 (lda=%d ldb=%d)", lda, ldb)
	case a%16 != 0 || b%16 != 0:
		return badArg("the TMA loads need A and B 16-byte aligned")
	}
	return nil
}

// wgmmaMaps encodes the tensor maps of a TMA product's pair: A [M,K], B
// [N,K] (transB) or [K,N], in gemm_sm90.cu's boxes (A and nt's B a whole
// 128-row tile, nn's B one 64-column half of one).
func (d *Device) wgmmaMaps(transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int) (*TensorMap, *TensorMap, error) {
	mA, err := d.tensorMapBF16(a, M, K, lda, wgmmaBM, 64)
	if err != nil {
		return nil, nil, err
	}
	var mB *TensorMap
	if transB {
		mB, err = d.tensorMapBF16(b, N, K, ldb, wgmmaBN, 64)
	} else {
		mB, err = d.tensorMapBF16(b, K, N, ldb, 64, 64)
	}
	return mA, mB, err
}

// MatmulWGMMATMABF16To is MatmulWGMMABF16To with the tiles brought in by
// the Tensor Memory Accelerator (cp.async.bulk.tensor, one mbarrier a
// stage) instead of cp.async, for the products WGMMATMATakes accepts:
// same results, bit for bit.
func (d *Device) MatmulWGMMATMABF16To(s Stream, out DType, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulWGMMATMA(s, "MatmulWGMMATMABF16To", false, out, transB, M, N, K, a, lda, b, ldb, nil, c, ldc, alpha, beta)
}

// MatmulWGMMAWarpSpecializedBF16To is MatmulWGMMATMABF16To with the loads
// and the math in different warpgroups (gemm_sm90.cu's _ws kernels: 384
// threads, a producer that runs up to 4 tiles ahead, full and empty
// mbarriers a stage, no block-wide barrier in the main loop): same
// products and conditions, same results bit for bit.
func (d *Device) MatmulWGMMAWarpSpecializedBF16To(s Stream, out DType, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulWGMMATMA(s, "MatmulWGMMAWarpSpecializedBF16To", true, out, transB, M, N, K, a, lda, b, ldb, nil, c, ldc, alpha, beta)
}

// MatmulLoRAWGMMATMABF16 is MatmulLoRAWGMMABF16 with TMA loads (see
// MatmulWGMMATMABF16To; warpSpecialized: MatmulWGMMAWarpSpecializedBF16To's
// kernels), the low-rank pair under the same conditions.
func (d *Device) MatmulLoRAWGMMATMABF16(s Stream, warpSpecialized, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, lr LowRank, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulWGMMATMA(s, "MatmulLoRAWGMMATMABF16", warpSpecialized, BF16, transB, M, N, K, a, lda, b, ldb, &lr, c, ldc, alpha, beta)
}

// matmulWGMMATMA launches a TMA product of gemm_sm90.cu: plain (lr nil)
// or fused LoRA (bf16 C), by one block's 256 threads or warp-specialised
// (384).
func (d *Device) matmulWGMMATMA(s Stream, op string, ws bool, out DType, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, lr *LowRank, c Ptr, ldc int, alpha, beta float32) error {
	suffix, err := gemmOut(op, out)
	if err != nil {
		return err
	}
	if err := checkGemm(op, false, transB, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if lr != nil {
		if err := checkLowRank(op, transB, M, N, *lr); err != nil {
			return err
		}
	}
	if err := d.WGMMATMATakes(false, lda, ldb, a, b); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if lr != nil {
		if err := d.WGMMATMATakes(false, lr.LDA, lr.LDB, lr.A, lr.B); err != nil {
			return fmt.Errorf("%s: the low-rank pair: %w", op, err)
		}
	}
	if M == 0 || N == 0 {
		return nil
	}
	mA, mB, err := d.wgmmaMaps(transB, M, N, K, a, lda, b, ldb)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	args := new(Args).TensorMap(mA).TensorMap(mB)
	name, threads := "matmul_"+transName(false, transB)+"_wgmma_tma", 256
	if ws {
		name, threads = "matmul_"+transName(false, transB)+"_wgmma_ws", 384
	}
	if lr != nil {
		mA2, mB2, err := d.wgmmaMaps(transB, M, N, lr.K, lr.A, lr.LDA, lr.B, lr.LDB)
		if err != nil {
			return fmt.Errorf("%s: the low-rank pair: %w", op, err)
		}
		args.TensorMap(mA2).TensorMap(mB2)
		name += "_lr"
	}
	args.Ptr(c).Int(M).Int(N).Int(K).Int(ldc).F32(alpha).F32(beta)
	if lr != nil {
		lowRankArgs(args, *lr)
	}
	f, err := d.Kernel(name + suffix + "_fwd_bf16")
	if err != nil {
		return err
	}
	if err := ensureSmem(f, wgmmaSmem); err != nil {
		return err
	}
	grid := Dim3{(N + wgmmaBN - 1) / wgmmaBN, (M + wgmmaBM - 1) / wgmmaBM, 1}
	return f.Launch(s, grid, Dim3{threads, 1, 1}, wgmmaSmem, args)
}

// WGMMANF4Takes says why the sm_90a NF4 GEMMs (MatmulWGMMANF4BF16To,
// MatmulLoRAWGMMANF4BF16) would refuse a product (nil: they run it):
// compute capability 9.0, and A's tiles in whole 16-byte cp.async chunks
// (K and lda multiples of 8, A 16-byte aligned). The NF4 weight is
// dequantized by the threads' own loads, any size (checkNF4's format).
func (d *Device) WGMMANF4Takes(K, lda int, a Ptr) error {
	switch {
	case !d.Hopper():
		return badArg("the wgmma GEMM runs on compute capability 9.0 only (this GPU is %d.%d)", d.Major, d.Minor)
	case K%8 != 0 || lda%8 != 0:
		return badArg("the wgmma NF4 GEMM needs K and lda multiples of 8 (K=%d lda=%d)", K, lda)
	case a%16 != 0:
		return badArg("the wgmma NF4 GEMM needs A 16-byte aligned")
	}
	return nil
}

// MatmulWGMMANF4BF16To is matmulNF4's product (MatmulNF4BF16To,
// MatmulNF4DQBF16To: C = alpha·A·op(W) + beta·C, W the whole NF4 weight,
// q non-nil for double-quantized scales) on the sm_90a wgmma kernels
// (gemm_sm90.cu's NF4 variants: W's tiles dequantized by every thread into
// the swizzled layout wgmma reads), for the products WGMMANF4Takes accepts:
// the same bf16 weight values, so the result is MatmulWGMMABF16To's on the
// dequantized weight.
func (d *Device) MatmulWGMMANF4BF16To(s Stream, out DType, transB bool, M, N, K int, a Ptr, lda int, packed, absmax Ptr, blocksize int, q *NF4Nested, c Ptr, ldc int, alpha, beta float32) error {
	return d.matmulNF4(s, "MatmulWGMMANF4BF16To", true, out, transB, M, N, K, a, lda, packed, absmax, blocksize, q, c, ldc, alpha, beta)
}

// MatmulLoRAWGMMANF4BF16 is MatmulLoRANF4BF16 (QLoRA's fused products, bf16
// C; the nn product with LoRA dropout's mask when lr.Dropout is set) on
// the sm_90a wgmma kernels, the low-rank pair under WGMMATakes' cp.async
// conditions.
func (d *Device) MatmulLoRAWGMMANF4BF16(s Stream, transB bool, M, N, K int, a Ptr, lda int, packed, absmax Ptr, blocksize int, q *NF4Nested, lr LowRank, c Ptr, ldc int, alpha, beta float32) error {
	return d.loraNF4(s, "MatmulLoRAWGMMANF4BF16", true, transB, M, N, K, a, lda, packed, absmax, blocksize, q, lr, c, ldc, alpha, beta)
}

// WGMMANF4LoRATakes says why MatmulLoRAWGMMANF4BF16 would refuse a product:
// the base pair as WGMMANF4Takes says, the low-rank pair as WGMMATakes.
func (d *Device) WGMMANF4LoRATakes(transB bool, N, K, lda int, a Ptr, lr LowRank) error {
	if err := d.WGMMANF4Takes(K, lda, a); err != nil {
		return err
	}
	if err := d.WGMMATakes(false, transB, N, lr.K, lr.LDA, lr.LDB, lr.A, lr.B); err != nil {
		return fmt.Errorf("the low-rank pair: %w", err)
	}
	return nil
}

// MatmulDropoutABF16 computes C = alpha·(mask ⊙ A)·Bᵀ + beta·C, C bf16
// [M,N] (ldc), A bf16 [M,K] (lda), B bf16 [N,K] (ldb): a LoRA layer's
// h = dropout(x)·A_loraᵀ, the mask (m: kernels/dropout's stream, element
// (i, k) of A taking mask element i·m.LDM + k) applied to A's tiles in
// shared memory, each element rounded to bf16 once as DropoutApply rounds
// it, so the result is MatmulBF16To's on the dropped-out A without that
// tensor existing. Never split in K (see SplitsK).
func (d *Device) MatmulDropoutABF16(s Stream, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32, m LowRankDropout) error {
	const op = "MatmulDropoutABF16"
	if err := checkGemm(op, false, true, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if m.LDM < K {
		return badArg("%s: dropout mask row length %d < K=%d", op, m.LDM, K)
	}
	if M == 0 || N == 0 {
		return nil
	}
	args := new(Args).Ptr(a).Ptr(b).Ptr(c).Int(M).Int(N).Int(K).Int(lda).Int(ldb).Int(ldc).F32(alpha).F32(beta)
	return d.launchTensorCore(s, "matmul_nt_dropa_cbf16_fwd_bf16", true, M, N, maskArgs(args, &m))
}
