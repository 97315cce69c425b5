// gemm.cu: matrix products.
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C      (row-major, f32 C;
//                                                             bf16 C: _cbf16)
//
// op(A) is A stored [M,K] (lda >= K) or, transposed, A stored [K,M] (lda >= M);
// op(B) is B stored [K,N] or, transposed, [N,K] (the nn.Linear weight layout,
// so y = x W^T is matmul_nt). beta == 0 writes C without reading it (C may
// hold garbage or NaN); beta == 1 accumulates (gradient += rule).
//
// matmul_{nn,nt,tn,tt}_fwd_bf16: bf16 operands on tensor cores
// (mma.sync.m16n8k16, f32 accumulation). Block tile 128x128x32, 8 warps each
// owning 64x32 of C, a 4-stage cp.async ring in dynamic shared memory (80 KB
// at most). Shared rows are padded by 8 elements (16 bytes) so the 8 rows an
// ldmatrix reads fall in distinct banks. The layout of each operand in shared
// memory follows its layout in global memory (so the cp.async copies are
// contiguous 16-byte chunks); a transposed layout is read with ldmatrix.trans.
// Chunks that cross the matrix edge or are not 16-byte aligned (ragged K or
// odd leading dimensions) are loaded element by element with zero fill.
//
// matmul_nt_nf4_fwd_bf16: matmul_nt with B an NF4 weight (QLoRA): B is the
// whole [N,K] weight, packed two codes per byte (element 2i of the flattened
// weight in the high nibble), one float32 absmax per blocksize consecutive
// elements of the flattened weight (so with K % blocksize != 0 a block spans
// two rows). The B tile loader dequantizes code*absmax in float32, rounds it
// to bf16 (nearest even, as nf4_dequant_fwd_bf16) and stores it into the
// same shared tile the bf16 kernel fills by cp.async: no dequantized copy of
// the weight exists. The B loads are plain synchronous loads (A keeps its
// cp.async ring); groups of 8 codes use one 4-byte load when K and blocksize
// are multiples of 8, otherwise (ragged K or edges) element by element.
//
// matmul_nn_nf4_fwd_bf16: matmul_nn with B the NF4 weight stored [K,N] (the
// backward's dx = dy·W with W [out,in]: the GEMM's K is W's rows, its N W's
// row length; ldb is N). Same format and loader, in the nn orientation: a B
// tile is BK rows of the weight by BN codes along a row, 8 contiguous codes
// per 16-byte shared chunk (one 4-byte load when N and blocksize are
// multiples of 8), and blocks may span two rows when N % blocksize != 0.
//
// matmul_{nt,nn}_nf4dq_fwd_bf16: the same with bitsandbytes' double
// quantization of the scales (bnb_4bit_use_double_quant): one 8-bit code
// per block, decoded in the loader as dynmap[code] * nested[block / 256] +
// offset (float32 product, then float32 sum, no fma), so the device holds 1
// byte of scale per 64 weights (0.127 bits per parameter with the nested
// float32 per 256 blocks) instead of 4 (0.5 bits).
//
// matmul_*_cbf16_fwd_bf16 (matmul_{nn,nt,tn,tt}_cbf16, matmul_{nt,nn}_nf4_cbf16
// and matmul_{nt,nn}_nf4dq_cbf16): each tensor-core kernel above with C
// stored as bf16 (bf16 activations: no float32 output and no cast pass).
// The epilogue is the float32 one, alpha*acc + beta*C with C widened from
// bf16 (exact) when beta != 0, rounded once to bf16 (nearest even) at the
// store; everything before it is the same template code.
//
// matmul_{nt,nn}[_nf4|_nf4dq]_lr_cbf16_fwd_bf16: a LoRA layer's two products
// in one kernel, bf16 C: C = alpha * (op(A)·op(B) + scale2 * op(A2)·op(B2)) +
// beta * C, the second pair (the low-rank path: h = x·A_loraᵀ [M,K2] with
// B_lora [N,K2] in the forward, nt; dh [M,K2] with A_lora [K2,N] for the
// backward's dx, nn) with the first pair's transposes and a short K2 (the
// rank). Its K2 tiles run first through the same cp.async ring into the
// same accumulators, which are then multiplied by scale2 (one float32
// rounding), and the K tiles of the base product (bf16, NF4 or
// double-quantized NF4 B) follow. The unfused path writes C with the base
// product, then reads and writes it again to add the low-rank one (beta =
// 1): fused, C is written once, rounded to bf16 once, and one launch goes.
//
// matmul_nt_dropa_cbf16_fwd_bf16 and matmul_tn_dropb_{cbf16,splitk}_fwd_bf16:
// the products of LoRA dropout's dropped-out input without it: the mask
// (kernels/dropout's counter-based stream) drawn in the kernel and applied
// to the A tile (h = dropout(x)·A_loraᵀ) or the B tile (dA = dhᵀ·dropout(x),
// also in slices of K) in shared memory.
//
// matmul_fwd_f32: a plain SIMT product for the float32 parity path, 64x64
// tiles, 4x4 outputs per thread, transposes as run-time flags.
#include "common.cuh"

#define BM 128
#define BN 128
#define BK 32
#define STAGES 4
#define THREADS 256
#define PAD 8

// Tile geometry in shared memory: ROWS x COLS elements, COLS contiguous in
// global memory, row stride LD.
template <int ROWS, int COLS> struct Tile {
    static constexpr int LD = COLS + PAD;
    static constexpr int SIZE = ROWS * LD;
};

// load_tile copies rows [row0, row0+ROWS) x cols [col0, col0+COLS) of a
// row-major matrix g (leading dimension ld, bounds rowLim x colLim) into s.
template <int ROWS, int COLS>
__device__ __forceinline__ void load_tile(u16* s, const u16* g, int ld, int row0, int col0, int rowLim, int colLim) {
    constexpr int CPR = COLS / 8;  // 16-byte chunks per row
    constexpr int LD = Tile<ROWS, COLS>::LD;
#pragma unroll
    for (int i = threadIdx.x; i < ROWS * CPR; i += THREADS) {
        int r = i / CPR, c = (i % CPR) * 8;
        int gr = row0 + r, gc = col0 + c;
        u16* dst = s + r * LD + c;
        const u16* src = g + (size_t)gr * ld + gc;
        if (gr < rowLim && gc + 8 <= colLim && (((uintptr_t)src) & 15) == 0) {
            cp_async16(dst, src);
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) dst[e] = (gr < rowLim && gc + e < colLim) ? src[e] : (u16)0;
        }
    }
}

// load_tile_nf4 dequantizes rows [row0, row0+ROWS) x cols [col0, col0+COLS)
// of the whole NF4 weight [rowLim, K] (row length K, no padding) into the
// bf16 tile s (layout of load_tile<ROWS, COLS>), zero outside the matrix
// (common.cuh's nf4_tile). The forward (nt) loads <BN, BK> tiles of W
// [N,K]; the backward (nn) loads <BK, BN> tiles of W stored [K,N], so there
// K is the GEMM's N.
template <int ROWS, int COLS, bool DQ>
__device__ __forceinline__ void load_tile_nf4(u16* s, const NF4Weight& w, const float* code, int row0, int col0,
                                              int rowLim, int K) {
    constexpr int LD = Tile<ROWS, COLS>::LD;
    nf4_tile<ROWS, COLS, THREADS, DQ>(w, code, row0, col0, rowLim, K,
                                      [&](int r, int c, uint4 v) { *reinterpret_cast<uint4*>(s + r * LD + 8 * c) = v; });
}

// mask_tile multiplies rows [row0, row0+ROWS) x cols [col0, col0+COLS) of
// a row-major operand's shared tile (load_tile's layout and partition:
// each thread the chunks it copied) by LoRA dropout's mask, element (r, c)
// taking mask element r·lr.ldm + c, each product rounded to bf16 once.
// Elements outside rowLim x colLim (zero-filled by load_tile) are left.
template <int ROWS, int COLS>
__device__ __forceinline__ void mask_tile(u16* s, const LowRank& lr, int row0, int col0, int rowLim, int colLim) {
    constexpr int CPR = COLS / 8;
    constexpr int LD = Tile<ROWS, COLS>::LD;
    DropoutCursor mc = dropout_cursor(lr.key, lr.pos, lr.drop, lr.keep);
#pragma unroll 1
    for (int i = threadIdx.x; i < ROWS * CPR; i += THREADS) {
        const int r = i / CPR, c = (i % CPR) * 8;
        const long long gr = row0 + r;
        if (gr >= rowLim) continue;
        u16* p = s + r * LD + c;
#pragma unroll 1
        for (int e = 0; e < 8 && col0 + c + e < colLim; e++) {
            const float m = dropout_at(mc, gr * lr.ldm + col0 + c + e);
            p[e] = bf16_bits(__uint_as_float((unsigned)p[e] << 16) * m);
        }
    }
}

// Pair<CT>::T is two adjacent elements of C's storage type, one access.
template <typename CT> struct Pair;
template <> struct Pair<float> { typedef float2 T; };
template <> struct Pair<bf16> { typedef __nv_bfloat162 T; };

// gemm_bf16 is the tensor-core product; with NF4, B is the NF4 weight w
// ([N,K] when TB, [K,N] otherwise; DQ: double-quantized scales) and the B
// pointer is unused. CT is C's storage type, float or bf16 (to_f/from_f of
// common.cuh: identity for float, so the float instantiations compile to the
// code they did before CT existed).
template <bool TA, bool TB, bool NF4, bool DQ = false, typename CT = float, bool LR = false, bool DROPA = false,
          bool DROPB = false>
__device__ void gemm_bf16(const u16* __restrict__ A, const u16* __restrict__ B, NF4Weight w, CT* __restrict__ C,
                          int M, int N, int K, int lda, int ldb, int ldc, float alpha, float beta,
                          LowRank lr = LowRank{}) {
    typedef Tile<TA ? BK : BM, TA ? BM : BK> TileA;
    typedef Tile<TB ? BN : BK, TB ? BK : BN> TileB;
    extern __shared__ __align__(16) u16 smem[];
    u16* sA = smem;
    u16* sB = smem + STAGES * TileA::SIZE;
    __shared__ float code[16];
    if (NF4) {
        nf4_codes(code);
        __syncthreads();
    }

    const int bm = blockIdx.y * BM, bn = blockIdx.x * BN;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = (warp & 1) * 64, wn = (warp >> 1) * 32;
    // With LR, k-tiles [0, nk2) are the low-rank pair's, [nk2, nk) the
    // base product's.
    const int nk2 = LR ? (lr.K + BK - 1) / BK : 0;
    const int nk = nk2 + (K + BK - 1) / BK;

    auto load = [&](int stage, int kt) {
        u16* a = sA + stage * TileA::SIZE;
        u16* b = sB + stage * TileB::SIZE;
        if (LR && kt < nk2) {
            const int k0 = kt * BK;
            if (TA) load_tile<BK, BM>(a, lr.A, lr.lda, k0, bm, lr.K, M);
            else load_tile<BM, BK>(a, lr.A, lr.lda, bm, k0, M, lr.K);
            if (TB) load_tile<BN, BK>(b, lr.B, lr.ldb, bn, k0, N, lr.K);
            else load_tile<BK, BN>(b, lr.B, lr.ldb, k0, bn, lr.K, N);
            return;
        }
        const int k0 = (kt - nk2) * BK;
        if (TA) load_tile<BK, BM>(a, A, lda, k0, bm, K, M);
        else load_tile<BM, BK>(a, A, lda, bm, k0, M, K);
        if (NF4 && TB) load_tile_nf4<BN, BK, DQ>(b, w, code, bn, k0, N, K);
        else if (NF4) load_tile_nf4<BK, BN, DQ>(b, w, code, k0, bn, K, N);
        else if (TB) load_tile<BN, BK>(b, B, ldb, bn, k0, N, K);
        else load_tile<BK, BN>(b, B, ldb, k0, bn, K, N);
    };

    // DROPA (A untransposed, no LR) and DROPB (B untransposed, no LR):
    // that operand's elements are multiplied by LoRA dropout's mask (lr's
    // dropout fields; element (i, k) of A is mask element i·ldm + k,
    // element (k, j) of B mask element k·ldm + j) in shared memory, each
    // thread on the chunks it loaded (load_tile's partition) once its
    // copies have landed, before the barrier that publishes the stage:
    // bf16(x·mask), rounded once, as dropout_apply_fwd_bf16 makes it, so
    // the product is the one of the dropped-out tensor without that
    // tensor existing.
    auto mask_stage = [&](int stage, int kt) {
        const int k0 = kt * BK;
        if (DROPA) mask_tile<BM, BK>(sA + stage * TileA::SIZE, lr, bm, k0, M, K);
        if (DROPB) mask_tile<BK, BN>(sB + stage * TileB::SIZE, lr, k0, bn, K, N);
    };

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < nk) load(s, s);
        cp_async_commit();
    }

    // scale_acc multiplies the low-rank product by its dropout mask (when
    // set) and its scale once it is complete, before the base product's
    // tiles add to the accumulators. Accumulator e of fragment (i, j) is
    // row bm + wm + 16i + lane/4 + 8(e/2), column bn + wn + 8j + 2(lane%4)
    // + e%2 (the epilogue's mapping).
    auto scale_acc = [&]() {
        if (lr.dropout) {
            // The 64 keep bits first, in a loop kept rolled (unrolled, the
            // draws' 64-bit products were scheduled side by side: 128-140
            // registers and spills instead of 94), then the accumulators.
            // Visited a row's two adjacent columns at a time (e = 0, 1, then
            // e = 2, 3 eight rows down): with an even mask row length each
            // pair lies in one draw.
            unsigned long long bits = 0;
            DropoutCursor mc = dropout_cursor(lr.key, lr.pos, lr.drop, 1.f);
#pragma unroll 1
            for (int k = 0; k < 64; k++) {
                const int i = k >> 4, j = (k >> 2) & 3, e = k & 3;
                const long long row = bm + wm + i * 16 + (lane >> 2) + 8 * (e >> 1);
                const long long col = bn + wn + j * 8 + 2 * (lane & 3) + (e & 1);
                if (dropout_at(mc, row * lr.ldm + col) != 0.f) bits |= 1ull << k;
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) acc[i][j][e] *= ((bits >> (16 * i + 4 * j + e)) & 1) ? lr.keep : 0.f;
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) acc[i][j][e] *= lr.scale;
    };

    const int idx = lane >> 3, r8 = lane & 7;
    for (int kt = 0; kt < nk; kt++) {
        if (LR && kt == nk2) scale_acc();
        cp_async_wait<STAGES - 2>();
        if (DROPA || DROPB) mask_stage(kt % STAGES, kt);
        __syncthreads();
        // Refill the stage consumed in the previous iteration; the barrier
        // above guarantees every warp is done reading it. (NF4's synchronous
        // B stores land there too; the barrier at the top of the iteration
        // that consumes the stage publishes them.)
        if (kt + STAGES - 1 < nk) load((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
        cp_async_commit();

        const u16* a = sA + (kt % STAGES) * TileA::SIZE;
        const u16* b = sB + (kt % STAGES) * TileB::SIZE;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            unsigned af[4][4], bfr[4][2];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) {
                int m0 = wm + mi * 16;
                if (TA) {
                    const u16* p = a + (kk + r8 + (idx >> 1) * 8) * TileA::LD + m0 + (idx & 1) * 8;
                    ldsm_x4_t(af[mi][0], af[mi][1], af[mi][2], af[mi][3], p);
                } else {
                    const u16* p = a + (m0 + (lane & 15)) * TileA::LD + kk + (lane >> 4) * 8;
                    ldsm_x4(af[mi][0], af[mi][1], af[mi][2], af[mi][3], p);
                }
            }
#pragma unroll
            for (int nj = 0; nj < 2; nj++) {
                int n0 = wn + nj * 16;
                if (TB) {
                    const u16* p = b + (n0 + r8 + (idx >> 1) * 8) * TileB::LD + kk + (idx & 1) * 8;
                    ldsm_x4(bfr[2 * nj][0], bfr[2 * nj][1], bfr[2 * nj + 1][0], bfr[2 * nj + 1][1], p);
                } else {
                    const u16* p = b + (kk + r8 + (idx & 1) * 8) * TileB::LD + n0 + (idx >> 1) * 8;
                    ldsm_x4_t(bfr[2 * nj][0], bfr[2 * nj][1], bfr[2 * nj + 1][0], bfr[2 * nj + 1][1], p);
                }
            }
#pragma unroll
            for (int mi = 0; mi < 4; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++) mma_bf16(acc[mi][ni], af[mi], bfr[ni]);
        }
    }
    cp_async_wait<0>();
    if (LR && nk == nk2) scale_acc();  // K == 0: the low-rank product alone

    // Each thread holds two adjacent columns of a row per fragment half:
    // stored (and, with beta, read) as one access when C's address allows
    // it, else one element at a time. The arithmetic is the same.
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int row = bm + wm + mi * 16 + g + h * 8;
                int col = bn + wn + ni * 8 + 2 * t;
                if (row >= M) continue;
                CT* p = C + (size_t)row * ldc + col;
                float v0 = alpha * acc[mi][ni][2 * h], v1 = alpha * acc[mi][ni][2 * h + 1];
                if (col + 1 < N && ((uintptr_t)p & (2 * sizeof(CT) - 1)) == 0) {
                    typedef typename Pair<CT>::T P;
                    P* pp = reinterpret_cast<P*>(p);
                    P out;
                    if (beta != 0.f) {
                        P old = *pp;
                        v0 = v0 + beta * to_f(old.x);
                        v1 = v1 + beta * to_f(old.y);
                    }
                    out.x = from_f<CT>(v0);
                    out.y = from_f<CT>(v1);
                    *pp = out;
                    continue;
                }
                if (col < N) p[0] = from_f<CT>(beta == 0.f ? v0 : v0 + beta * to_f(p[0]));
                if (col + 1 < N) p[1] = from_f<CT>(beta == 0.f ? v1 : v1 + beta * to_f(p[1]));
            }
}

// CT: C's storage type (float for the plain names, bf16 for _cbf16).
#define GEMM_ENTRY(name, ta, tb, CT)                                                                \
    extern "C" __global__ void __launch_bounds__(THREADS) name(                                    \
        const u16* A, const u16* B, CT* C, int M, int N, int K, int lda, int ldb, int ldc,          \
        float alpha, float beta) {                                                                  \
        gemm_bf16<ta, tb, false, false, CT>(A, B, NF4Weight{}, C, M, N, K, lda, ldb, ldc, alpha, beta); \
    }
GEMM_ENTRY(matmul_nn_fwd_bf16, false, false, float)
GEMM_ENTRY(matmul_nt_fwd_bf16, false, true, float)
GEMM_ENTRY(matmul_tn_fwd_bf16, true, false, float)
GEMM_ENTRY(matmul_tt_fwd_bf16, true, true, float)
GEMM_ENTRY(matmul_nn_cbf16_fwd_bf16, false, false, bf16)
GEMM_ENTRY(matmul_nt_cbf16_fwd_bf16, false, true, bf16)
GEMM_ENTRY(matmul_tn_cbf16_fwd_bf16, true, false, bf16)
GEMM_ENTRY(matmul_tt_cbf16_fwd_bf16, true, true, bf16)

// matmul_nt_nf4: B the NF4 weight [N,K] (packed bytes, absmax per blocksize
// elements of the flattened weight); ldb is K. matmul_nn_nf4: B the NF4
// weight stored [K,N] (the backward's dx = dy·W, W [out,in]); ldb is N.
#define NF4_ENTRY(name, tb, CT)                                                                               \
    extern "C" __global__ void __launch_bounds__(THREADS) name(                                              \
        const u16* A, const unsigned char* packed, const float* absmax, CT* C, int M, int N, int K, int lda,  \
        int ldc, int blocksize, float alpha, float beta) {                                                   \
        gemm_bf16<false, tb, true, false, CT>(A, nullptr, NF4Weight{packed, absmax, blocksize}, C, M, N, K,  \
                                              lda, tb ? K : N, ldc, alpha, beta);                            \
    }
NF4_ENTRY(matmul_nt_nf4_fwd_bf16, true, float)
NF4_ENTRY(matmul_nn_nf4_fwd_bf16, false, float)
NF4_ENTRY(matmul_nt_nf4_cbf16_fwd_bf16, true, bf16)
NF4_ENTRY(matmul_nn_nf4_cbf16_fwd_bf16, false, bf16)

// The double-quantized variants: qabsmax one byte per block, nested one
// float32 per nestedBlocksize blocks, dynmap the 256-entry map.
#define NF4DQ_ENTRY(name, tb, CT)                                                                             \
    extern "C" __global__ void __launch_bounds__(THREADS) name(                                              \
        const u16* A, const unsigned char* packed, const unsigned char* qabsmax, const float* nested,         \
        const float* dynmap, float offset, int nestedBlocksize, CT* C, int M, int N, int K, int lda,          \
        int ldc, int blocksize, float alpha, float beta) {                                                   \
        gemm_bf16<false, tb, true, true, CT>(                                                                \
            A, nullptr, NF4Weight{packed, nullptr, blocksize, qabsmax, nested, dynmap, offset, nestedBlocksize}, \
            C, M, N, K, lda, tb ? K : N, ldc, alpha, beta);                                                  \
    }
NF4DQ_ENTRY(matmul_nt_nf4dq_fwd_bf16, true, float)
NF4DQ_ENTRY(matmul_nn_nf4dq_fwd_bf16, false, float)
NF4DQ_ENTRY(matmul_nt_nf4dq_cbf16_fwd_bf16, true, bf16)
NF4DQ_ENTRY(matmul_nn_nf4dq_cbf16_fwd_bf16, false, bf16)


// The fused LoRA products (bf16 C): the plain entries' arguments, then
// LR_ARGS (common.cuh).
#define GEMM_LR_ENTRY(name, tb)                                                                              \
    extern "C" __global__ void __launch_bounds__(THREADS) name(                                             \
        const u16* A, const u16* B, bf16* C, int M, int N, int K, int lda, int ldb, int ldc, float alpha,   \
        float beta, LR_ARGS) {                                                                               \
        gemm_bf16<false, tb, false, false, bf16, true>(A, B, NF4Weight{}, C, M, N, K, lda, ldb, ldc, alpha, \
                                                       beta, LR_PAIR);                                      \
    }
GEMM_LR_ENTRY(matmul_nt_lr_cbf16_fwd_bf16, true)
GEMM_LR_ENTRY(matmul_nn_lr_cbf16_fwd_bf16, false)

// matmul_nt_dropa_cbf16_fwd_bf16: C = alpha * (mask ⊙ A)·Bᵀ + beta * C,
// bf16 C: a LoRA layer's h = dropout(x)·A_loraᵀ with the mask of LoRA
// dropout drawn in the kernel (see DROPA in gemm_bf16).
extern "C" __global__ void __launch_bounds__(THREADS) matmul_nt_dropa_cbf16_fwd_bf16(
    const u16* A, const u16* B, bf16* C, int M, int N, int K, int lda, int ldb, int ldc, float alpha, float beta,
    unsigned long long mask_key, unsigned long long mask_pos, unsigned int mask_drop, float mask_keep, long long mask_ld) {
    gemm_bf16<false, true, false, false, bf16, false, true>(
        A, B, NF4Weight{}, C, M, N, K, lda, ldb, ldc, alpha, beta,
        LowRank{nullptr, nullptr, 0, 0, 0, 1.f, 1, mask_key, mask_pos, mask_drop, mask_keep, mask_ld});
}

// matmul_tn_dropb_cbf16_fwd_bf16: C = alpha * Aᵀ·(mask ⊙ B) + beta * C,
// bf16 C: a LoRA layer's dA = dhᵀ·dropout(x) with the mask drawn in the
// kernel (DROPB in gemm_bf16), for products too short to split K.
extern "C" __global__ void __launch_bounds__(THREADS) matmul_tn_dropb_cbf16_fwd_bf16(
    const u16* A, const u16* B, bf16* C, int M, int N, int K, int lda, int ldb, int ldc, float alpha, float beta,
    unsigned long long mask_key, unsigned long long mask_pos, unsigned int mask_drop, float mask_keep, long long mask_ld) {
    gemm_bf16<true, false, false, false, bf16, false, false, true>(
        A, B, NF4Weight{}, C, M, N, K, lda, ldb, ldc, alpha, beta,
        LowRank{nullptr, nullptr, 0, 0, 0, 1.f, 1, mask_key, mask_pos, mask_drop, mask_keep, mask_ld});
}

#define NF4_LR_ENTRY(name, tb)                                                                                \
    extern "C" __global__ void __launch_bounds__(THREADS) name(                                              \
        const u16* A, const unsigned char* packed, const float* absmax, bf16* C, int M, int N, int K, int lda, \
        int ldc, int blocksize, float alpha, float beta, LR_ARGS) {                                           \
        gemm_bf16<false, tb, true, false, bf16, true>(A, nullptr, NF4Weight{packed, absmax, blocksize}, C, M, \
                                                      N, K, lda, tb ? K : N, ldc, alpha, beta, LR_PAIR);     \
    }
NF4_LR_ENTRY(matmul_nt_nf4_lr_cbf16_fwd_bf16, true)
NF4_LR_ENTRY(matmul_nn_nf4_lr_cbf16_fwd_bf16, false)

#define NF4DQ_LR_ENTRY(name, tb)                                                                              \
    extern "C" __global__ void __launch_bounds__(THREADS) name(                                              \
        const u16* A, const unsigned char* packed, const unsigned char* qabsmax, const float* nested,         \
        const float* dynmap, float offset, int nestedBlocksize, bf16* C, int M, int N, int K, int lda,        \
        int ldc, int blocksize, float alpha, float beta, LR_ARGS) {                                           \
        gemm_bf16<false, tb, true, true, bf16, true>(                                                        \
            A, nullptr, NF4Weight{packed, nullptr, blocksize, qabsmax, nested, dynmap, offset, nestedBlocksize}, \
            C, M, N, K, lda, tb ? K : N, ldc, alpha, beta, LR_PAIR);                                         \
    }
NF4DQ_LR_ENTRY(matmul_nt_nf4dq_lr_cbf16_fwd_bf16, true)
NF4DQ_LR_ENTRY(matmul_nn_nf4dq_lr_cbf16_fwd_bf16, false)

// ---- split K ---------------------------------------------------------------
//
// matmul_{nn,nt,tn,tt}_splitk_fwd_bf16: the tensor-core product of one slice
// of K per blockIdx.z, slice z covering k in [z*kchunk, min(K, (z+1)*kchunk)),
// written as float32 to W + z*M*N ([M,N], row stride N) with alpha 1 and
// beta 0. The operands are the same template's, their pointers moved to the
// slice's first k (kchunk is a multiple of BK, so aligned operands stay
// 16-byte aligned). For products with few output tiles and a long K (LoRA's
// weight gradients: [r, features] summed over every token of the batch) the
// unsplit grid has a handful of blocks looping over all of K while the
// other SMs idle.
//
// gemm_splitk_sum_fwd_{f32,bf16}: C = alpha * sum_z W[z] + beta * C, the
// slices summed in order z = 0, 1, ... (deterministic), then the epilogue of
// gemm_bf16 (C widened from bf16 when beta != 0, rounded once at the store).
#define SPLITK_ENTRY(name, ta, tb)                                                                             \
    extern "C" __global__ void __launch_bounds__(THREADS) name(const u16* A, const u16* B, float* W, int M, int N, \
                                                               int K, int lda, int ldb, int kchunk) {          \
        const long long k0 = (long long)blockIdx.z * kchunk;                                                   \
        const int kz = min(kchunk, K - (int)k0);                                                               \
        const u16* a = A + (ta ? k0 * lda : k0);                                                               \
        const u16* b = B + (tb ? k0 : k0 * ldb);                                                               \
        gemm_bf16<ta, tb, false, false, float>(a, b, NF4Weight{}, W + (size_t)blockIdx.z * M * N, M, N, kz, lda, \
                                               ldb, N, 1.f, 0.f);                                               \
    }
SPLITK_ENTRY(matmul_nn_splitk_fwd_bf16, false, false)
SPLITK_ENTRY(matmul_nt_splitk_fwd_bf16, false, true)
SPLITK_ENTRY(matmul_tn_splitk_fwd_bf16, true, false)
SPLITK_ENTRY(matmul_tt_splitk_fwd_bf16, true, true)

// matmul_tn_dropb_splitk_fwd_bf16: a slice of matmul_tn_dropb (dA over
// every token of the batch: M the rank, K the tokens). B's row k0 is mask
// row k0: the slice's first mask element k0·ldm is a multiple of four (k0 a
// multiple of BK), so the stream's position moves by whole draws.
extern "C" __global__ void __launch_bounds__(THREADS) matmul_tn_dropb_splitk_fwd_bf16(
    const u16* A, const u16* B, float* W, int M, int N, int K, int lda, int ldb, int kchunk,
    unsigned long long mask_key, unsigned long long mask_pos, unsigned int mask_drop, float mask_keep, long long mask_ld) {
    const long long k0 = (long long)blockIdx.z * kchunk;
    const int kz = min(kchunk, K - (int)k0);
    const unsigned long long pos = mask_pos + (unsigned long long)(k0 * mask_ld / 4);
    gemm_bf16<true, false, false, false, float, false, false, true>(
        A + k0 * lda, B + k0 * ldb, NF4Weight{}, W + (size_t)blockIdx.z * M * N, M, N, kz, lda, ldb, N, 1.f, 0.f,
        LowRank{nullptr, nullptr, 0, 0, 0, 1.f, 1, mask_key, pos, mask_drop, mask_keep, mask_ld});
}

template <typename CT>
__device__ void splitk_sum(CT* __restrict__ C, int ldc, const float* __restrict__ W, int slices, int M, int N,
                           float alpha, float beta) {
    const long long MN = (long long)M * N;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < MN; i += (long long)gridDim.x * blockDim.x) {
        float acc = 0.f;
        for (int z = 0; z < slices; z++) acc += W[z * MN + i];
        CT* p = C + (i / N) * ldc + i % N;
        const float v = alpha * acc;
        *p = from_f<CT>(beta == 0.f ? v : v + beta * to_f(*p));
    }
}

extern "C" __global__ void gemm_splitk_sum_fwd_f32(float* C, int ldc, const float* W, int slices, int M, int N,
                                                    float alpha, float beta) {
    splitk_sum<float>(C, ldc, W, slices, M, N, alpha, beta);
}

extern "C" __global__ void gemm_splitk_sum_fwd_bf16(bf16* C, int ldc, const float* W, int slices, int M, int N,
                                                     float alpha, float beta) {
    splitk_sum<bf16>(C, ldc, W, slices, M, N, alpha, beta);
}

// ---- float32 SIMT product ------------------------------------------------

#define FT 64
#define FK 16
extern "C" __global__ void __launch_bounds__(256) matmul_fwd_f32(
    const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, int M, int N, int K,
    int lda, int ldb, int ldc, int ta, int tb, float alpha, float beta) {
    __shared__ float As[FK][FT + 4], Bs[FK][FT + 4];
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int bm = blockIdx.y * FT, bn = blockIdx.x * FT;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += FK) {
        // Index order chosen so consecutive threads read consecutive addresses
        // whichever way the operand is stored.
        for (int i = threadIdx.x; i < FT * FK; i += 256) {
            int m, k;
            if (ta) { k = i / FT; m = i % FT; } else { m = i / FK; k = i % FK; }
            int gm = bm + m, gk = k0 + k;
            As[k][m] = (gm < M && gk < K) ? (ta ? A[(size_t)gk * lda + gm] : A[(size_t)gm * lda + gk]) : 0.f;
            int n;
            if (tb) { n = i / FK; k = i % FK; } else { k = i / FT; n = i % FT; }
            int gn = bn + n;
            gk = k0 + k;
            Bs[k][n] = (gn < N && gk < K) ? (tb ? B[(size_t)gn * ldb + gk] : B[(size_t)gk * ldb + gn]) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < FK; k++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[k][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int row = bm + ty + 16 * i, col = bn + tx + 16 * j;
            if (row < M && col < N) {
                float* p = C + (size_t)row * ldc + col;
                float v = alpha * acc[i][j];
                *p = beta == 0.f ? v : v + beta * *p;
            }
        }
}
