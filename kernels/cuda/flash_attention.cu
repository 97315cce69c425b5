// flash_attention.cu: grouped-query attention with every mask of the tensor
// backend's contract on tensor cores (FlashAttention-2 style).
//
//   Q, O [B, T, Hq, D]; K, V [B, S, Hkv, D]; Hq = G * Hkv, query head h reads
//   key/value head h / G (K and V are never repeated). Query t sits at
//   position p = t + qoff among the S keys; it sees key s when
//       (!causal || s <= p) && (window <= 0 || p - s < window)
//       && (keymask == 0 || keymask[b, s] != 0)
//       && (segments == 0 || segments[b, s] == segments[b, S - T + t])
//   keymask, segments [B, S] int32 (or null). The math is attention_masked.cu's:
//
//   forward:  x_ts = scale q_t . k_s, soft-capped to c tanh(x_ts / c) when
//             cap != 0, then masked; lse_t = log sum_s exp(x_ts)  [B, Hq, T] f32;
//             o_t = sum_s exp(x_ts - lse_t) v_s. A query that sees no key
//             gets o_t = 0 and lse_t = -inf (attention_masked's convention;
//             the backward treats a non-finite lse as "no key": zero gradients).
//   backward (all =): p = exp(x - lse), delta_t = dO_t . o_t
//             (attention.cu's attention_delta_bwd kernel),
//             ds = p (dO_t . v_s - delta_t) (1 - tanh^2 when capped) scale
//             dq_t = sum_s ds k_s;  dk_s = sum_{h in group, t} ds q_t;
//             dv_s = sum_{h in group, t} p dO_t
//
// Precision: Q, K, V and dO are rounded to bf16 while they are staged into
// shared memory (F32 storage included, so float32 activations take the
// tensor cores at bf16 precision); every product is mma.sync.m16n8k16 bf16
// with float32 accumulation. The softmax (max, exp, sums, lse) is float32.
// P is rounded to bf16 as the A operand of P V (forward) and Pᵀ dO (dV), and
// ds is rounded to bf16 as the A operand of dS K (dQ) and dSᵀ Q (dK); the
// row sums l use the unrounded P. O, dQ, dK, dV are written in the storage
// type from float32 accumulators.
//
// Geometry: blocks of 4 warps (128 threads); each warp owns 16 rows of the
// block's tile (the M of m16n8k16). D is a template parameter, a multiple of
// 16 from 16 to 128, or 256 (Gemma's; one kernel per D, named
// flash_attention_d<D>_*). Shared rows are padded by 8 elements (16 bytes)
// as in gemm.cu, so the 8 rows an ldmatrix reads fall in distinct banks for
// every such D.
//   forward:  64 queries of one (b, h) per block, key tiles of 64; S = Q Kᵀ
//             and O = P V in registers (S 32 floats, O D/2 floats a thread).
//   dq:       64 queries per block, key tiles of 32: S = Q Kᵀ, dP = dO Vᵀ,
//             dQ += dS K.
//   dkv:      64 keys of one (b, kv head) per block, looping over the G query
//             heads of its group and query tiles of 32: Sᵀ = K Qᵀ, dPᵀ = V dOᵀ,
//             dV += Pᵀ dO, dK += dSᵀ Q.
// Each block's loop covers only the key (query) tiles that its causal and
// window bounds can see; other masks are applied per element. Dynamic shared
// memory: 192 padded rows of bf16, (192 (D + 8)) 2 bytes: 52 KB at D = 128,
// 101 KB at D = 256 (the forward there: 128 rows, 66 KB).
//
// D = 256 (FaTiles): the same kernels with two tile choices, so that the
// float32 accumulators fit in registers (ptxas: 232-240 a thread, no
// spills). The forward takes key tiles of 32 (O 128 floats, S 16). The dkv
// kernel's dK and dV would need 256 floats a thread, so each key tile gets
// two blocks (blockIdx.x = 2 tile + half), each owning 128 of D's dK/dV
// columns: both compute the full Sᵀ = K Qᵀ and dPᵀ = V dOᵀ (contractions
// over all of D) and then dV += Pᵀ dO, dK += dSᵀ Q over their half. The
// cost: the dkv kernel does 6 D-wide tile products per tile pair instead of
// 4 (1.5x its tensor-core FLOPs; the backward 9 instead of 7, 1.8x
// FlashAttention-2's 5) and each block stages the full K, V, Q, dO tiles
// (twice the dkv kernel's shared-memory fill and L2 reads). dq is
// unchanged (128 accumulator floats at D = 256).
// The forward copies bf16 tiles ahead of their use with cp.async (V while
// Q Kᵀ and the softmax run, the next K while P V does: FlashAttention-2's
// pipeline, in the same shared memory); F32 storage converts synchronously.
// The backward kernels copy the next tile into a second buffer while they
// use this one up to D = 128 (FaTiles' BWD_PIPE); at D = 256 the next tile
// is loaded after this one is used.
//
// Determinism: no atomics. Each output element is written by exactly one
// thread, which sums its terms in a fixed order, so a run reproduces bit for
// bit. The price: S = Q Kᵀ and dP = dO Vᵀ are computed twice, once in the dq
// kernel and once in the dkv kernel, so the backward does 7 tile products
// instead of FlashAttention-2's 5 (1.4x the backward's tensor-core FLOPs),
// and each dkv block walks the G heads of its group one after the other
// instead of in parallel.
//
// The ldmatrix / mma / fragment idioms are gemm.cu's (validated on H100);
// both use common.cuh's primitives.
#include "common.cuh"

#define FA_THREADS 128
#define FA_PAD 8
#define FWD_BQ 64
#define FWD_BK 64
#define DQ_BQ 64
#define DQ_BK 32
#define DKV_BK 64
#define DKV_BQ 32

// FaTiles holds the choices that depend on D. Up to D = 128 they are the
// defaults above. At D = 256 the forward takes key tiles of 32 (S 16 floats
// a thread beside O's 128; 128 shared rows, 66 KB, two blocks fit an A100
// SM) and each dkv block owns half of D's dK/dV columns (DKV_COLS = 128:
// 128 accumulator floats a thread, as at D = 128), two blocks per key tile.
//
// BWD_PIPE: up to D = 128 the backward kernels keep two buffers of the
// tiles they loop over (dq: K and V; dkv: Q and dO), so that the next tile
// is copied while this one is used. The 64 more shared rows (70 KB a block
// at D = 128) cost no block per SM on an H100 (228 KB) at the occupancy
// the registers allow (ptxas 12.4, allocated in steps of 8 a thread: dq
// 3 blocks up to D = 112 and 2 at 128, dkv 2); on an A100 (164 KB) only dq
// at D = 112 loses one (3 -> 2). At D = 256 the second buffer would halve
// the blocks (135 KB), so those kernels load the next tile after using
// this one. flash_attention.go's flashSmem follows.
template <int D>
struct FaTiles {
    static constexpr int FWD_KEYS = D > 128 ? 32 : FWD_BK;
    static constexpr int DKV_COLS = D > 128 ? D / 2 : D;
    static constexpr int DKV_SPLIT = D / DKV_COLS;
    static constexpr bool BWD_PIPE = D <= 128;
};

// pack2 rounds two floats to bf16 (nearest even) into one register, lo in
// the low half: the element order of an mma fragment.
__device__ __forceinline__ unsigned pack2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}

// stage copies rows [0, ROWS) of a [rows, D] slab with row stride `stride`
// elements into shared memory as bf16 (row stride D + FA_PAD), rounding F32
// storage to bf16; rows at or past rowLim become zeros.
template <int ROWS, int D>
__device__ __forceinline__ void stage(u16* s, const float* g, size_t stride, int rowLim) {
    constexpr int CPR = D / 8, LDS = D + FA_PAD;
    for (int i = threadIdx.x; i < ROWS * CPR; i += FA_THREADS) {
        const int r = i / CPR, c = (i % CPR) * 8;
        uint4 w = make_uint4(0u, 0u, 0u, 0u);
        if (r < rowLim) {
            const float* src = g + (size_t)r * stride + c;
            float f[8];
            if ((((uintptr_t)src) & 15) == 0) {
                const float4 a = *reinterpret_cast<const float4*>(src);
                const float4 b = *reinterpret_cast<const float4*>(src + 4);
                f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
                f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) f[e] = src[e];
            }
            w = make_uint4(pack2(f[0], f[1]), pack2(f[2], f[3]), pack2(f[4], f[5]), pack2(f[6], f[7]));
        }
        *reinterpret_cast<uint4*>(s + r * LDS + c) = w;
    }
}

// load8 reads 8 bf16 elements at src, one 16-byte load when aligned.
__device__ __forceinline__ uint4 load8(const u16* src) {
    if ((((uintptr_t)src) & 15) == 0) return *reinterpret_cast<const uint4*>(src);
    unsigned h[8];
#pragma unroll
    for (int e = 0; e < 8; e++) h[e] = src[e];
    return make_uint4(h[0] | h[1] << 16, h[2] | h[3] << 16, h[4] | h[5] << 16, h[6] | h[7] << 16);
}

template <int ROWS, int D>
__device__ __forceinline__ void stage(u16* s, const bf16* g, size_t stride, int rowLim) {
    constexpr int CPR = D / 8, LDS = D + FA_PAD;
    for (int i = threadIdx.x; i < ROWS * CPR; i += FA_THREADS) {
        const int r = i / CPR, c = (i % CPR) * 8;
        const u16* src = reinterpret_cast<const u16*>(g) + (size_t)r * stride + c;
        *reinterpret_cast<uint4*>(s + r * LDS + c) = r < rowLim ? load8(src) : make_uint4(0u, 0u, 0u, 0u);
    }
}

// stageAsync is stage for the tiles a loop copies ahead of their use: bf16
// rows go by cp.async (the caller commits the group and waits for it before
// the barrier that publishes the tile); rows past rowLim and unaligned
// rows are written directly. F32 storage is converted synchronously
// (stage): the same program order, without the overlap.
template <int ROWS, int D>
__device__ __forceinline__ void stageAsync(u16* s, const float* g, size_t stride, int rowLim) {
    stage<ROWS, D>(s, g, stride, rowLim);
}

template <int ROWS, int D>
__device__ __forceinline__ void stageAsync(u16* s, const bf16* g, size_t stride, int rowLim) {
    constexpr int CPR = D / 8, LDS = D + FA_PAD;
    for (int i = threadIdx.x; i < ROWS * CPR; i += FA_THREADS) {
        const int r = i / CPR, c = (i % CPR) * 8;
        u16* dst = s + r * LDS + c;
        const u16* src = reinterpret_cast<const u16*>(g) + (size_t)r * stride + c;
        if (r < rowLim && (((uintptr_t)src) & 15) == 0)
            cp_async16(dst, src);
        else
            *reinterpret_cast<uint4*>(dst) = r < rowLim ? load8(src) : make_uint4(0u, 0u, 0u, 0u);
    }
}

// store2 writes two adjacent output elements from float32.
__device__ __forceinline__ void store2(float* p, float a, float b) {
    p[0] = a;
    p[1] = b;
}
__device__ __forceinline__ void store2(bf16* p, float a, float b) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}

struct FlashMask {
    int T, S, causal, qoff, window;
    const int* keymask;
    const int* segments;
};

// sees reports whether position p (a query) sees key s, for the positional
// masks; key padding and segments are checked by the callers from shared
// memory or registers.
__device__ __forceinline__ bool sees(const FlashMask& m, int p, int s) {
    return (!m.causal || s <= p) && (m.window <= 0 || p - s < m.window);
}

// keyRange is the range [lo, hi) of keys that some query of [t0, t1) can
// see under the causal and window masks (lo >= hi: none).
__device__ __forceinline__ void keyRange(const FlashMask& m, int t0, int t1, int& lo, int& hi) {
    lo = 0;
    hi = m.S;
    if (m.causal) hi = min(hi, t1 - 1 + m.qoff + 1);
    if (m.window > 0) lo = max(lo, t0 + m.qoff - m.window + 1);
}

// queryRange is the range [lo, hi) of queries that can see some key of
// [s0, s1) under the causal and window masks.
__device__ __forceinline__ void queryRange(const FlashMask& m, int s0, int s1, int& lo, int& hi) {
    lo = 0;
    hi = m.T;
    if (m.causal) lo = max(lo, s0 - m.qoff);
    if (m.window > 0) hi = min(hi, s1 - 1 + m.window - m.qoff);
}

// score applies the scale and the cap to a raw dot product; slope is the
// derivative of the capped score by scale * dot (1 - tanh^2; 1 uncapped).
__device__ __forceinline__ float score(float dot, float scale, float cap, float& slope) {
    float x = dot * scale;
    slope = 1.f;
    if (cap != 0.f) {
        const float t = tanhf(x / cap);
        x = cap * t;
        slope = 1.f - t * t;
    }
    return x;
}

// keyMeta fills the visibility (in range, not padded) and segment of keys
// [s0, s0 + n) into shared memory; keys at or past hi are invisible.
__device__ __forceinline__ void keyMeta(int* ok, int* seg, const FlashMask& m, int b, int s0, int hi, int n) {
    for (int i = threadIdx.x; i < n; i += FA_THREADS) {
        const int s = s0 + i;
        const bool in = s < hi;
        ok[i] = in && (m.keymask == nullptr || m.keymask[(size_t)b * m.S + s] != 0);
        seg[i] = (in && m.segments) ? m.segments[(size_t)b * m.S + s] : 0;
    }
}

// qseg is the segment of query t (0 without segments or out of range).
__device__ __forceinline__ int qseg(const FlashMask& m, int b, int t) {
    return (m.segments && t < m.T) ? m.segments[(size_t)b * m.S + (m.S - m.T) + t] : 0;
}

// rowsTimesTᵀ accumulates acc[N/8][4] += A Bᵀ for the warp's 16 rows of A
// (shared, row stride LDS, starting at row a0) and N rows of B (shared, row
// stride LDS): both operands are stored row-major over D, the QKᵀ layout.
template <int D, int N>
__device__ __forceinline__ void mmaABt(float (*acc)[4], const u16* A, const u16* Bm, int lane) {
    constexpr int LDS = D + FA_PAD;
    const int idx = lane >> 3, r8 = lane & 7;
#pragma unroll
    for (int kk = 0; kk < D; kk += 16) {
        unsigned a[4];
        ldsm_x4(a[0], a[1], a[2], a[3], A + (lane & 15) * LDS + kk + (lane >> 4) * 8);
#pragma unroll
        for (int nj = 0; nj < N / 16; nj++) {
            unsigned b0, b1, b2, b3;
            ldsm_x4(b0, b1, b2, b3, Bm + (nj * 16 + r8 + (idx >> 1) * 8) * LDS + kk + (idx & 1) * 8);
            mma_bf16(acc[2 * nj], a, b0, b1);
            mma_bf16(acc[2 * nj + 1], a, b2, b3);
        }
    }
}

// mmaPB accumulates acc[N/8][4] += P Bm for the warp's P (16 x K, float32
// accumulator fragments, rounded to bf16 here) and the first N columns of Bm
// (shared, K rows, row stride LDS = D + FA_PAD): the PV layout.
template <int D, int K, int N = D>
__device__ __forceinline__ void mmaPB(float (*acc)[4], const float (*p)[4], const u16* Bm, int lane) {
    constexpr int LDS = D + FA_PAD;
    const int idx = lane >> 3, r8 = lane & 7;
#pragma unroll
    for (int j = 0; j < K / 16; j++) {
        unsigned a[4];
        a[0] = pack2(p[2 * j][0], p[2 * j][1]);
        a[1] = pack2(p[2 * j][2], p[2 * j][3]);
        a[2] = pack2(p[2 * j + 1][0], p[2 * j + 1][1]);
        a[3] = pack2(p[2 * j + 1][2], p[2 * j + 1][3]);
#pragma unroll
        for (int nj = 0; nj < N / 16; nj++) {
            unsigned b0, b1, b2, b3;
            ldsm_x4_t(b0, b1, b2, b3, Bm + (j * 16 + r8 + (idx & 1) * 8) * LDS + nj * 16 + (idx >> 1) * 8);
            mma_bf16(acc[2 * nj], a, b0, b1);
            mma_bf16(acc[2 * nj + 1], a, b2, b3);
        }
    }
}

template <int R, int C>
__device__ __forceinline__ void zero(float (*a)[C]) {
#pragma unroll
    for (int i = 0; i < R; i++)
#pragma unroll
        for (int j = 0; j < C; j++) a[i][j] = 0.f;
}

#define FA_PARAMS int B, int T, int S, int Hq, int Hkv, float scale, int causal, int qoff, int window, \
                  const int *keymask, const int *segments, float cap
#define FA_MASK FlashMask mk = {T, S, causal, qoff, window, keymask, segments}

// ---- forward ----------------------------------------------------------------

template <typename E, int D>
__device__ void flash_fwd(E* __restrict__ o, float* __restrict__ lse, const E* __restrict__ q,
                          const E* __restrict__ k, const E* __restrict__ v, FA_PARAMS) {
    FA_MASK;
    constexpr int LDS = D + FA_PAD, BK = FaTiles<D>::FWD_KEYS, NB = BK / 8, OB = D / 8;
    extern __shared__ __align__(16) u16 fa_smem[];
    u16* Qs = fa_smem;
    u16* Ks = Qs + FWD_BQ * LDS;
    u16* Vs = Ks + BK * LDS;
    __shared__ int kok[FWD_BK], kseg[FWD_BK];

    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * FWD_BQ;
    const int kh = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const size_t qStride = (size_t)Hq * D, kStride = (size_t)Hkv * D;
    stage<FWD_BQ, D>(Qs, q + ((size_t)b * T + q0) * qStride + (size_t)h * D, qStride, T - q0);

    int row[2], pos[2], seg[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        row[i] = q0 + warp * 16 + g + 8 * i;
        pos[i] = row[i] + qoff;
        seg[i] = qseg(mk, b, row[i]);
    }
    float oacc[OB][4];
    zero<OB, 4>(oacc);
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
    int lo, hi;
    keyRange(mk, q0, min(q0 + FWD_BQ, T), lo, hi);
    // FlashAttention-2's software pipeline: V_j is copied while S = Q K_jᵀ
    // and the softmax run, K_{j+1} and its key metadata while O += P V_j
    // (cp.async for bf16 storage; F32 storage converts synchronously at the
    // same points). Two barriers a tile, as without it; the same arithmetic.
    auto kvOff = [&](int s0) { return ((size_t)b * S + s0) * kStride + (size_t)kh * D; };
    if (lo < hi) {
        stageAsync<BK, D>(Ks, k + kvOff(lo), kStride, hi - lo);
        keyMeta(kok, kseg, mk, b, lo, hi, BK);
    }
    cp_async_commit();
    for (int s0 = lo; s0 < hi; s0 += BK) {
        cp_async_wait<0>();
        __syncthreads();  // K_j and its metadata are in; every warp is done with V_{j-1}
        stageAsync<BK, D>(Vs, v + kvOff(s0), kStride, hi - s0);
        cp_async_commit();

        float sacc[NB][4];
        zero<NB, 4>(sacc);
        mmaABt<D, BK>(sacc, Qs + warp * 16 * LDS, Ks, lane);

        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nb = 0; nb < NB; nb++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int i = e >> 1, c = nb * 8 + 2 * tq + (e & 1), s = s0 + c;
                float slope;
                const float x = score(sacc[nb][e], scale, cap, slope);
                const bool vis = kok[c] && sees(mk, pos[i], s) && (segments == nullptr || kseg[c] == seg[i]);
                sacc[nb][e] = vis ? x : -INFINITY;
                mx[i] = fmaxf(mx[i], sacc[nb][e]);
            }
        float mu[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
            const float mn = fmaxf(m[i], mx[i]);
            mu[i] = mn == -INFINITY ? 0.f : mn;  // a row that has seen nothing yet: p = exp(-inf) = 0
            const float corr = expf(m[i] - mu[i]);
            m[i] = mn;
            l[i] *= corr;
#pragma unroll
            for (int nb = 0; nb < OB; nb++) {
                oacc[nb][2 * i] *= corr;
                oacc[nb][2 * i + 1] *= corr;
            }
        }
#pragma unroll
        for (int nb = 0; nb < NB; nb++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float p = expf(sacc[nb][e] - mu[e >> 1]);
                sacc[nb][e] = p;
                l[e >> 1] += p;
            }
        cp_async_wait<0>();
        __syncthreads();  // V_j is in; every warp is done with K_j and its metadata
        if (s0 + BK < hi) {
            stageAsync<BK, D>(Ks, k + kvOff(s0 + BK), kStride, hi - s0 - BK);
            keyMeta(kok, kseg, mk, b, s0 + BK, hi, BK);
        }
        cp_async_commit();
        mmaPB<D, BK>(oacc, sacc, Vs, lane);
    }
    cp_async_wait<0>();

#pragma unroll
    for (int i = 0; i < 2; i++) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
        if (row[i] >= T) continue;
        const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
        E* orow = o + ((size_t)b * T + row[i]) * qStride + (size_t)h * D;
#pragma unroll
        for (int nb = 0; nb < OB; nb++)
            store2(orow + nb * 8 + 2 * tq, oacc[nb][2 * i] * inv, oacc[nb][2 * i + 1] * inv);
        if (tq == 0) lse[((size_t)b * Hq + h) * T + row[i]] = l[i] > 0.f ? m[i] + logf(l[i]) : -INFINITY;
    }
}

// noKey maps the forward's lse of a query that saw no key (-inf) to +inf,
// so that p = exp(x - lse) is 0 without a branch.
__device__ __forceinline__ float noKey(float L) { return isfinite(L) ? L : INFINITY; }

// ---- dq ---------------------------------------------------------------------

template <typename E, int D>
__device__ void flash_dq(E* __restrict__ dq, const E* __restrict__ dout, const float* __restrict__ lse,
                         const float* __restrict__ delta, const E* __restrict__ q, const E* __restrict__ k,
                         const E* __restrict__ v, FA_PARAMS) {
    FA_MASK;
    constexpr int LDS = D + FA_PAD, NB = DQ_BK / 8, OB = D / 8;
    constexpr bool PIPE = FaTiles<D>::BWD_PIPE;
    extern __shared__ __align__(16) u16 fa_smem[];
    u16* Qs = fa_smem;
    u16* dOs = Qs + DQ_BQ * LDS;
    u16* KVs = dOs + DQ_BQ * LDS;  // buffer i: K at KVs + 2 i DQ_BK LDS, V after it
    __shared__ int kokb[2][DQ_BK], ksegb[2][DQ_BK];

    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * DQ_BQ;
    const int kh = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const size_t qStride = (size_t)Hq * D, kStride = (size_t)Hkv * D;
    const size_t qOff = ((size_t)b * T + q0) * qStride + (size_t)h * D;
    stage<DQ_BQ, D>(Qs, q + qOff, qStride, T - q0);
    stage<DQ_BQ, D>(dOs, dout + qOff, qStride, T - q0);

    int row[2], pos[2], seg[2];
    float L[2], dl[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        row[i] = q0 + warp * 16 + g + 8 * i;
        pos[i] = row[i] + qoff;
        seg[i] = qseg(mk, b, row[i]);
        const bool in = row[i] < T;
        L[i] = in ? noKey(lse[((size_t)b * Hq + h) * T + row[i]]) : INFINITY;
        dl[i] = in ? delta[((size_t)b * Hq + h) * T + row[i]] : 0.f;
    }
    float acc[OB][4];
    zero<OB, 4>(acc);
    int lo, hi;
    keyRange(mk, q0, min(q0 + DQ_BQ, T), lo, hi);
    // load queues key tile s0 (K, V, their metadata) into buffer buf.
    auto load = [&](int s0, int buf) {
        const size_t kOff = ((size_t)b * S + s0) * kStride + (size_t)kh * D;
        u16* Kb = KVs + buf * 2 * DQ_BK * LDS;
        stageAsync<DQ_BK, D>(Kb, k + kOff, kStride, hi - s0);
        stageAsync<DQ_BK, D>(Kb + DQ_BK * LDS, v + kOff, kStride, hi - s0);
        keyMeta(kokb[buf], ksegb[buf], mk, b, s0, hi, DQ_BK);
        cp_async_commit();
    };
    if (lo < hi) load(lo, 0);
    for (int s0 = lo, it = 0; s0 < hi; s0 += DQ_BK, it++) {
        // With PIPE the next tile goes to the other buffer now and is
        // copied while this one is used; without, to the same buffer after
        // the barrier that ends this one.
        const int buf = PIPE ? (it & 1) : 0;
        if (PIPE && s0 + DQ_BK < hi) {
            load(s0 + DQ_BK, buf ^ 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();  // this tile is in
        const u16* Ks = KVs + buf * 2 * DQ_BK * LDS;
        const u16* Vs = Ks + DQ_BK * LDS;
        const int* kok = kokb[buf];
        const int* kseg = ksegb[buf];

        float sacc[NB][4], pacc[NB][4];
        zero<NB, 4>(sacc);
        zero<NB, 4>(pacc);
        mmaABt<D, DQ_BK>(sacc, Qs + warp * 16 * LDS, Ks, lane);
        mmaABt<D, DQ_BK>(pacc, dOs + warp * 16 * LDS, Vs, lane);
#pragma unroll
        for (int nb = 0; nb < NB; nb++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int i = e >> 1, c = nb * 8 + 2 * tq + (e & 1), s = s0 + c;
                float slope;
                const float x = score(sacc[nb][e], scale, cap, slope);
                const bool vis = kok[c] && sees(mk, pos[i], s) && (segments == nullptr || kseg[c] == seg[i]);
                const float p = vis ? expf(x - L[i]) : 0.f;
                sacc[nb][e] = p * (pacc[nb][e] - dl[i]) * slope * scale;  // ds
            }
        mmaPB<D, DQ_BK>(acc, sacc, Ks, lane);
        __syncthreads();  // every warp is done with this buffer
        if (!PIPE && s0 + DQ_BK < hi) load(s0 + DQ_BK, 0);
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (row[i] >= T) continue;
        E* r = dq + ((size_t)b * T + row[i]) * qStride + (size_t)h * D;
#pragma unroll
        for (int nb = 0; nb < OB; nb++) store2(r + nb * 8 + 2 * tq, acc[nb][2 * i], acc[nb][2 * i + 1]);
    }
}

// ---- dk, dv -----------------------------------------------------------------

template <typename E, int D>
__device__ void flash_dkv(E* __restrict__ dk, E* __restrict__ dv, const E* __restrict__ dout,
                          const float* __restrict__ lse, const float* __restrict__ delta, const E* __restrict__ q,
                          const E* __restrict__ k, const E* __restrict__ v, FA_PARAMS) {
    FA_MASK;
    // This block owns dK/dV columns [c0, c0 + DC) of its key tile.
    constexpr int LDS = D + FA_PAD, NB = DKV_BQ / 8, DC = FaTiles<D>::DKV_COLS, SPLIT = FaTiles<D>::DKV_SPLIT,
                  OB = DC / 8;
    constexpr bool PIPE = FaTiles<D>::BWD_PIPE;
    extern __shared__ __align__(16) u16 fa_smem[];
    u16* Ks = fa_smem;
    u16* Vs = Ks + DKV_BK * LDS;
    u16* QdOs = Vs + DKV_BK * LDS;  // buffer i: Q at QdOs + 2 i DKV_BQ LDS, dO after it
    __shared__ float sLb[2][DKV_BQ], sDb[2][DKV_BQ];
    __shared__ int sSegb[2][DKV_BQ];

    const int b = blockIdx.z, kh = blockIdx.y, s0 = blockIdx.x / SPLIT * DKV_BK, c0 = blockIdx.x % SPLIT * DC;
    const int G = Hq / Hkv;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    const size_t qStride = (size_t)Hq * D, kStride = (size_t)Hkv * D;
    const size_t kOff = ((size_t)b * S + s0) * kStride + (size_t)kh * D;
    stage<DKV_BK, D>(Ks, k + kOff, kStride, S - s0);
    stage<DKV_BK, D>(Vs, v + kOff, kStride, S - s0);

    int key[2], kseg[2];
    bool kok[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        key[i] = s0 + warp * 16 + g + 8 * i;
        kok[i] = key[i] < S && (keymask == nullptr || keymask[(size_t)b * S + key[i]] != 0);
        kseg[i] = (key[i] < S && segments) ? segments[(size_t)b * S + key[i]] : 0;
    }
    float dka[OB][4], dva[OB][4];
    zero<OB, 4>(dka);
    zero<OB, 4>(dva);
    int lo, hi;
    queryRange(mk, s0, min(s0 + DKV_BK, S), lo, hi);
    // The query tiles of the G heads, one after the other: tile n is head
    // kh G + n / tiles, queries from lo + (n % tiles) DKV_BQ.
    const int tiles = lo < hi ? (hi - lo + DKV_BQ - 1) / DKV_BQ : 0;
    // load queues tile n (Q, dO, the rows' lse, delta, segment) into buffer buf.
    auto load = [&](int n, int buf) {
        const int h = kh * G + n / tiles, t0 = lo + n % tiles * DKV_BQ;
        const size_t qOff = ((size_t)b * T + t0) * qStride + (size_t)h * D;
        u16* Qb = QdOs + buf * 2 * DKV_BQ * LDS;
        stageAsync<DKV_BQ, D>(Qb, q + qOff, qStride, hi - t0);
        stageAsync<DKV_BQ, D>(Qb + DKV_BQ * LDS, dout + qOff, qStride, hi - t0);
        for (int i = threadIdx.x; i < DKV_BQ; i += FA_THREADS) {
            const int t = t0 + i;
            const bool in = t < hi;
            sLb[buf][i] = in ? noKey(lse[((size_t)b * Hq + h) * T + t]) : INFINITY;
            sDb[buf][i] = in ? delta[((size_t)b * Hq + h) * T + t] : 0.f;
            sSegb[buf][i] = qseg(mk, b, t);
        }
        cp_async_commit();
    };
    if (tiles > 0) load(0, 0);
    for (int n = 0; n < G * tiles; n++) {
        {
            // With PIPE the next tile goes to the other buffer now and is
            // copied while this one is used; without, to the same buffer
            // after the barrier that ends this one.
            const int buf = PIPE ? (n & 1) : 0;
            if (PIPE && n + 1 < G * tiles) {
                load(n + 1, buf ^ 1);
                cp_async_wait<1>();
            } else {
                cp_async_wait<0>();
            }
            __syncthreads();  // this tile (and, the first time, K and V) is in
            const int t0 = lo + n % tiles * DKV_BQ;
            const u16* Qs = QdOs + buf * 2 * DKV_BQ * LDS;
            const u16* dOs = Qs + DKV_BQ * LDS;
            const float* sL = sLb[buf];
            const float* sD = sDb[buf];
            const int* sSeg = sSegb[buf];

            float sacc[NB][4], pacc[NB][4];
            zero<NB, 4>(sacc);
            zero<NB, 4>(pacc);
            mmaABt<D, DKV_BQ>(sacc, Ks + warp * 16 * LDS, Qs, lane);
            mmaABt<D, DKV_BQ>(pacc, Vs + warp * 16 * LDS, dOs, lane);
#pragma unroll
            for (int nb = 0; nb < NB; nb++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int i = e >> 1, c = nb * 8 + 2 * tq + (e & 1), t = t0 + c;
                    float slope;
                    const float x = score(sacc[nb][e], scale, cap, slope);
                    const bool vis = kok[i] && sees(mk, t + qoff, key[i]) && (segments == nullptr || kseg[i] == sSeg[c]);
                    const float p = vis ? expf(x - sL[c]) : 0.f;
                    sacc[nb][e] = p;
                    pacc[nb][e] = p * (pacc[nb][e] - sD[c]) * slope * scale;  // ds
                }
            mmaPB<D, DKV_BQ, DC>(dva, sacc, dOs + c0, lane);
            mmaPB<D, DKV_BQ, DC>(dka, pacc, Qs + c0, lane);
            __syncthreads();  // every warp is done with this buffer
            if (!PIPE && n + 1 < G * tiles) load(n + 1, 0);
        }
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (key[i] >= S) continue;
        const size_t off = ((size_t)b * S + key[i]) * kStride + (size_t)kh * D + c0;
#pragma unroll
        for (int nb = 0; nb < OB; nb++) {
            store2(dk + off + nb * 8 + 2 * tq, dka[nb][2 * i], dka[nb][2 * i + 1]);
            store2(dv + off + nb * 8 + 2 * tq, dva[nb][2 * i], dva[nb][2 * i + 1]);
        }
    }
}

// ---- entry points -----------------------------------------------------------

#define FA_ARGS B, T, S, Hq, Hkv, scale, causal, qoff, window, keymask, segments, cap
#define FA_INST(D, name, Ty)                                                                                     \
    extern "C" __global__ void __launch_bounds__(FA_THREADS, 1) flash_attention_d##D##_fwd_##name(                  \
        Ty* o, float* lse, const Ty* q, const Ty* k, const Ty* v, FA_PARAMS) {                                   \
        flash_fwd<Ty, D>(o, lse, q, k, v, FA_ARGS);                                                              \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(FA_THREADS, 1) flash_attention_d##D##_dq_bwd_##name(               \
        Ty* dq, const Ty* dout, const float* lse, const float* delta, const Ty* q, const Ty* k, const Ty* v,     \
        FA_PARAMS) {                                                                                             \
        flash_dq<Ty, D>(dq, dout, lse, delta, q, k, v, FA_ARGS);                                                 \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(FA_THREADS, 1) flash_attention_d##D##_dkv_bwd_##name(              \
        Ty* dk, Ty* dv, const Ty* dout, const float* lse, const float* delta, const Ty* q, const Ty* k,          \
        const Ty* v, FA_PARAMS) {                                                                                \
        flash_dkv<Ty, D>(dk, dv, dout, lse, delta, q, k, v, FA_ARGS);                                            \
    }
#define FA_HEAD(D)        \
    FA_INST(D, f32, float) \
    FA_INST(D, bf16, bf16)
FA_HEAD(16)
FA_HEAD(32)
FA_HEAD(48)
FA_HEAD(64)
FA_HEAD(80)
FA_HEAD(96)
FA_HEAD(112)
FA_HEAD(128)
FA_HEAD(256)
