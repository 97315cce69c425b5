// attention.cu: causal grouped-query attention with a key padding mask,
// flash style: an online softmax over key tiles, so no T x T matrix exists.
//
//   Q [B, T, Hq, D], K and V [B, T, Hkv, D], O [B, T, Hq, D]; Hq = G * Hkv and
//   query head h reads key/value head h / G. mask [B, T] int32 (nonzero = real
//   token; null = no padding). Key j is visible to query i when j <= i and
//   mask[b, j] != 0.
//
//   forward:  s_ij = scale * q_i . k_j;  lse_i = log sum_j exp(s_ij)
//             o_i = sum_j exp(s_ij - lse_i) v_j
//             lse [B, Hq, T] float32 is kept for the backward. A query that
//             sees no key gets o_i = 0 and lse_i = +inf (so every p_ij is 0).
//   backward (all =, dK and dV summed over the G query heads of a group):
//             p_ij = exp(s_ij - lse_i),  delta_i = dO_i . o_i
//             ds_ij = p_ij (dO_i . v_j - delta_i)
//             dq_i = scale sum_j ds_ij k_j;  dk_j = scale sum_i ds_ij q_i;
//             dv_j = sum_i p_ij dO_i
//
// Soft-capped variants (attention_softcap_*, Gemma 2's attn_logit_softcapping,
// template flag CAP): the scores become s_ij = c tanh(scale q_i . k_j / c)
// before masking, and the backward multiplies ds_ij by the slope
// 1 - tanh^2 before the scale: ds_ij = p_ij (dO_i . v_j - delta_i)(1 - t_ij^2).
// With CAP false the code (and its PTX) is exactly the uncapped kernels'.
//
// SIMT kernels (no tensor cores yet): D a multiple of 32 and at most 128,
// float32 arithmetic with bf16 or f32 storage. Blocks of 4 warps. Forward and
// dQ: 16 queries per block (4 per warp), each lane owning one key of a 32-key
// tile for the scores and D/32 output dimensions for the accumulation.
// dK/dV: 16 keys per block (4 per warp), each lane owning one query of a
// 32-query tile. Shared rows read lane-by-row are padded to D+1 floats so the
// 32 lanes hit 32 banks. Launch shapes are in the Go launchers
// (attention.go); dynamic shared memory is at most 50 KB (D = 128).
#include "common.cuh"

#define QPW 4       // queries (or keys) per warp
#define ROWS 16     // queries (or keys) per block
#define TILE 32     // keys (or queries) per tile

template <typename T>
__device__ __forceinline__ void load_rows(float* dst, int dstLd, const T* src, size_t srcStride, int rows, int rowLim, int D) {
    for (int i = threadIdx.x; i < rows * D; i += blockDim.x) {
        int r = i / D, d = i % D;
        dst[r * dstLd + d] = r < rowLim ? to_f(src[(size_t)r * srcStride + d]) : 0.f;
    }
}

// capped returns the (soft-capped when CAP) score of the raw dot product
// and, through slope, d score / d(scale dot): 1 - tanh^2, 1 uncapped.
template <bool CAP>
__device__ __forceinline__ float capped(float dot, float scale, float cap, float& slope) {
    float s = dot * scale;
    slope = 1.f;
    if (CAP) {
        const float t = tanhf(s / cap);
        s = cap * t;
        slope = 1.f - t * t;
    }
    return s;
}

template <typename T, bool CAP>
__device__ void attn_fwd(T* __restrict__ O, float* __restrict__ lse, const T* __restrict__ Q, const T* __restrict__ K,
                         const T* __restrict__ V, const int* __restrict__ mask, int T_, int Hq, int Hkv, int D, float scale,
                         float cap) {
    extern __shared__ float sh[];
    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * ROWS;
    const int hk = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, DC = D / 32;
    float* Qs = sh;                    // [ROWS][D]
    float* Ks = Qs + ROWS * D;         // [TILE][D+1]
    float* Vs = Ks + TILE * (D + 1);   // [TILE][D]
    const size_t qStride = (size_t)Hq * D, kStride = (size_t)Hkv * D;
    load_rows(Qs, D, Q + ((size_t)b * T_ + q0) * qStride + (size_t)h * D, qStride, ROWS, T_ - q0, D);

    float o[QPW][4], m[QPW], l[QPW];
#pragma unroll
    for (int u = 0; u < QPW; u++) {
        m[u] = -INFINITY;
        l[u] = 0.f;
#pragma unroll
        for (int c = 0; c < 4; c++) o[u][c] = 0.f;
    }
    const int qLast = min(T_ - 1, q0 + ROWS - 1);
    for (int k0 = 0; k0 <= qLast; k0 += TILE) {
        __syncthreads();
        const size_t kOff = ((size_t)b * T_ + k0) * kStride + (size_t)hk * D;
        load_rows(Ks, D + 1, K + kOff, kStride, TILE, T_ - k0, D);
        load_rows(Vs, D, V + kOff, kStride, TILE, T_ - k0, D);
        __syncthreads();
        const int j = k0 + lane;
        const bool kvalid = j < T_ && (mask == nullptr || mask[(size_t)b * T_ + j] != 0);
#pragma unroll
        for (int u = 0; u < QPW; u++) {
            const int qi = q0 + warp * QPW + u;
            if (qi >= T_ || k0 > qi) continue;  // warp-uniform
            const float* q = Qs + (warp * QPW + u) * D;
            const float* k = Ks + lane * (D + 1);
            float s = 0.f;
            for (int d = 0; d < D; d++) s = fmaf(q[d], k[d], s);
            const bool valid = kvalid && j <= qi;
            float slope;
            s = valid ? capped<CAP>(s, scale, cap, slope) : -INFINITY;
            const float mn = fmaxf(m[u], warp_max(s));
            if (mn == -INFINITY) continue;
            const float p = valid ? expf(s - mn) : 0.f;
            const float corr = expf(m[u] - mn);
            l[u] = l[u] * corr + warp_sum(p);
            m[u] = mn;
#pragma unroll
            for (int c = 0; c < 4; c++) o[u][c] *= corr;
            for (int jj = 0; jj < TILE; jj++) {
                const float pj = __shfl_sync(0xffffffffu, p, jj);
                if (pj == 0.f) continue;  // uniform: every lane holds the same pj
#pragma unroll
                for (int c = 0; c < 4; c++)
                    if (c < DC) o[u][c] = fmaf(pj, Vs[jj * D + lane + 32 * c], o[u][c]);
            }
        }
    }
#pragma unroll
    for (int u = 0; u < QPW; u++) {
        const int qi = q0 + warp * QPW + u;
        if (qi >= T_) continue;
        const float inv = l[u] > 0.f ? 1.f / l[u] : 0.f;
        T* orow = O + ((size_t)b * T_ + qi) * qStride + (size_t)h * D;
#pragma unroll
        for (int c = 0; c < 4; c++)
            if (c < DC) orow[lane + 32 * c] = from_f<T>(o[u][c] * inv);
        if (lane == 0) lse[((size_t)b * Hq + h) * T_ + qi] = l[u] > 0.f ? m[u] + logf(l[u]) : INFINITY;
    }
}

// delta_i = dO_i . O_i, one warp per (b, t, h) row.
template <typename T>
__device__ void attn_delta(float* __restrict__ delta, const T* __restrict__ O, const T* __restrict__ dO, int B, int T_, int Hq, int D) {
    const long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;  // (b*T + t)*Hq + h
    const int lane = threadIdx.x & 31;
    if (row >= (long long)B * T_ * Hq) return;
    float s = 0.f;
    for (int d = lane; d < D; d += 32) s += to_f(O[row * D + d]) * to_f(dO[row * D + d]);
    s = warp_sum(s);
    const int h = row % Hq;
    const long long bt = row / Hq;
    const int t = bt % T_, b = bt / T_;
    if (lane == 0) delta[((size_t)b * Hq + h) * T_ + t] = s;
}

template <typename T, bool CAP>
__device__ void attn_bwd_dq(T* __restrict__ dQ, const T* __restrict__ dO, const float* __restrict__ lse,
                            const float* __restrict__ delta, const T* __restrict__ Q, const T* __restrict__ K,
                            const T* __restrict__ V, const int* __restrict__ mask, int T_, int Hq, int Hkv, int D, float scale,
                            float cap) {
    extern __shared__ float sh[];
    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * ROWS;
    const int hk = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, DC = D / 32;
    float* Qs = sh;                   // [ROWS][D]
    float* dOs = Qs + ROWS * D;       // [ROWS][D]
    float* Ks = dOs + ROWS * D;       // [TILE][D+1]
    float* Vs = Ks + TILE * (D + 1);  // [TILE][D+1]
    const size_t qStride = (size_t)Hq * D, kStride = (size_t)Hkv * D;
    const size_t qOff = ((size_t)b * T_ + q0) * qStride + (size_t)h * D;
    load_rows(Qs, D, Q + qOff, qStride, ROWS, T_ - q0, D);
    load_rows(dOs, D, dO + qOff, qStride, ROWS, T_ - q0, D);

    float dq[QPW][4], L[QPW], Dl[QPW];
#pragma unroll
    for (int u = 0; u < QPW; u++) {
        const int qi = min(q0 + warp * QPW + u, T_ - 1);
        L[u] = lse[((size_t)b * Hq + h) * T_ + qi];
        Dl[u] = delta[((size_t)b * Hq + h) * T_ + qi];
#pragma unroll
        for (int c = 0; c < 4; c++) dq[u][c] = 0.f;
    }
    const int qLast = min(T_ - 1, q0 + ROWS - 1);
    for (int k0 = 0; k0 <= qLast; k0 += TILE) {
        __syncthreads();
        const size_t kOff = ((size_t)b * T_ + k0) * kStride + (size_t)hk * D;
        load_rows(Ks, D + 1, K + kOff, kStride, TILE, T_ - k0, D);
        load_rows(Vs, D + 1, V + kOff, kStride, TILE, T_ - k0, D);
        __syncthreads();
        const int j = k0 + lane;
        const bool kvalid = j < T_ && (mask == nullptr || mask[(size_t)b * T_ + j] != 0);
#pragma unroll
        for (int u = 0; u < QPW; u++) {
            const int qi = q0 + warp * QPW + u;
            if (qi >= T_ || k0 > qi) continue;
            const float* q = Qs + (warp * QPW + u) * D;
            const float* go = dOs + (warp * QPW + u) * D;
            const float* k = Ks + lane * (D + 1);
            const float* v = Vs + lane * (D + 1);
            float s = 0.f, dp = 0.f;
            for (int d = 0; d < D; d++) {
                s = fmaf(q[d], k[d], s);
                dp = fmaf(go[d], v[d], dp);
            }
            const bool valid = kvalid && j <= qi;
            float slope;
            const float sc = capped<CAP>(s, scale, cap, slope);
            const float p = valid ? expf(sc - L[u]) : 0.f;
            float ds = p * (dp - Dl[u]);
            if (CAP) ds *= slope;
            for (int jj = 0; jj < TILE; jj++) {
                const float dsj = __shfl_sync(0xffffffffu, ds, jj);
                if (dsj == 0.f) continue;
#pragma unroll
                for (int c = 0; c < 4; c++)
                    if (c < DC) dq[u][c] = fmaf(dsj, Ks[jj * (D + 1) + lane + 32 * c], dq[u][c]);
            }
        }
    }
#pragma unroll
    for (int u = 0; u < QPW; u++) {
        const int qi = q0 + warp * QPW + u;
        if (qi >= T_) continue;
        T* row = dQ + ((size_t)b * T_ + qi) * qStride + (size_t)h * D;
#pragma unroll
        for (int c = 0; c < 4; c++)
            if (c < DC) row[lane + 32 * c] = from_f<T>(dq[u][c] * scale);
    }
}

template <typename T, bool CAP>
__device__ void attn_bwd_dkv(T* __restrict__ dK, T* __restrict__ dV, const T* __restrict__ dO, const float* __restrict__ lse,
                             const float* __restrict__ delta, const T* __restrict__ Q, const T* __restrict__ K,
                             const T* __restrict__ V, const int* __restrict__ mask, int T_, int Hq, int Hkv, int D, float scale,
                             float cap) {
    extern __shared__ float sh[];
    const int b = blockIdx.z, hk = blockIdx.y, k0 = blockIdx.x * ROWS;
    const int G = Hq / Hkv;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, DC = D / 32;
    float* Ks = sh;                     // [ROWS][D]
    float* Vs = Ks + ROWS * D;          // [ROWS][D]
    float* Qs = Vs + ROWS * D;          // [TILE][D+1]
    float* dOs = Qs + TILE * (D + 1);   // [TILE][D+1]
    float* Ls = dOs + TILE * (D + 1);   // [TILE]
    float* Ds = Ls + TILE;              // [TILE]
    const size_t qStride = (size_t)Hq * D, kStride = (size_t)Hkv * D;
    const size_t kOff = ((size_t)b * T_ + k0) * kStride + (size_t)hk * D;
    load_rows(Ks, D, K + kOff, kStride, ROWS, T_ - k0, D);
    load_rows(Vs, D, V + kOff, kStride, ROWS, T_ - k0, D);

    float dk[QPW][4], dv[QPW][4];
    bool kvalid[QPW];
#pragma unroll
    for (int u = 0; u < QPW; u++) {
        const int j = k0 + warp * QPW + u;
        kvalid[u] = j < T_ && (mask == nullptr || mask[(size_t)b * T_ + j] != 0);
#pragma unroll
        for (int c = 0; c < 4; c++) dk[u][c] = dv[u][c] = 0.f;
    }
    const int qStart = k0 / TILE * TILE;  // first tile holding a query >= k0
    for (int g = 0; g < G; g++) {
        const int h = hk * G + g;
        for (int t0 = qStart; t0 < T_; t0 += TILE) {
            __syncthreads();
            const size_t qOff = ((size_t)b * T_ + t0) * qStride + (size_t)h * D;
            load_rows(Qs, D + 1, Q + qOff, qStride, TILE, T_ - t0, D);
            load_rows(dOs, D + 1, dO + qOff, qStride, TILE, T_ - t0, D);
            if (threadIdx.x < TILE) {
                const int i = t0 + threadIdx.x;
                Ls[threadIdx.x] = i < T_ ? lse[((size_t)b * Hq + h) * T_ + i] : INFINITY;
                Ds[threadIdx.x] = i < T_ ? delta[((size_t)b * Hq + h) * T_ + i] : 0.f;
            }
            __syncthreads();
            const int i = t0 + lane;
            const float* q = Qs + lane * (D + 1);
            const float* go = dOs + lane * (D + 1);
#pragma unroll
            for (int u = 0; u < QPW; u++) {
                const int j = k0 + warp * QPW + u;
                if (!kvalid[u] || t0 + TILE - 1 < j) continue;  // warp-uniform
                const float* k = Ks + (warp * QPW + u) * D;
                const float* v = Vs + (warp * QPW + u) * D;
                float s = 0.f, dp = 0.f;
                for (int d = 0; d < D; d++) {
                    s = fmaf(q[d], k[d], s);
                    dp = fmaf(go[d], v[d], dp);
                }
                const bool valid = i < T_ && i >= j;
                float slope;
                const float sc = capped<CAP>(s, scale, cap, slope);
                const float p = valid ? expf(sc - Ls[lane]) : 0.f;
                float ds = p * (dp - Ds[lane]);
                if (CAP) ds *= slope;
                for (int ii = 0; ii < TILE; ii++) {
                    const float pi = __shfl_sync(0xffffffffu, p, ii);
                    const float dsi = __shfl_sync(0xffffffffu, ds, ii);
                    if (pi == 0.f && dsi == 0.f) continue;
#pragma unroll
                    for (int c = 0; c < 4; c++)
                        if (c < DC) {
                            dv[u][c] = fmaf(pi, dOs[ii * (D + 1) + lane + 32 * c], dv[u][c]);
                            dk[u][c] = fmaf(dsi, Qs[ii * (D + 1) + lane + 32 * c], dk[u][c]);
                        }
                }
            }
        }
    }
#pragma unroll
    for (int u = 0; u < QPW; u++) {
        const int j = k0 + warp * QPW + u;
        if (j >= T_) continue;
        const size_t off = ((size_t)b * T_ + j) * kStride + (size_t)hk * D;
#pragma unroll
        for (int c = 0; c < 4; c++)
            if (c < DC) {
                dK[off + lane + 32 * c] = from_f<T>(dk[u][c] * scale);
                dV[off + lane + 32 * c] = from_f<T>(dv[u][c]);
            }
    }
}

// ATTN_ENTRIES(T, sfx, name, CAP, capParam, capArg): the three tiled
// kernels of one storage type, uncapped (attention_*) or capped
// (attention_softcap_*, one more parameter: the cap).
#define ATTN_ENTRIES(T, sfx, name, CAP, CAPP, CAPA)                                                                 \
    extern "C" __global__ void __launch_bounds__(128) name##_fwd_##sfx(                                             \
        T* O, float* lse, const T* Q, const T* K, const T* V, const int* mask, int T_, int Hq, int Hkv, int D, float scale CAPP) { \
        attn_fwd<T, CAP>(O, lse, Q, K, V, mask, T_, Hq, Hkv, D, scale, CAPA);                                       \
    }                                                                                                               \
    extern "C" __global__ void __launch_bounds__(128) name##_dq_bwd_##sfx(                                          \
        T* dQ, const T* dO, const float* lse, const float* delta, const T* Q, const T* K, const T* V, const int* mask, \
        int T_, int Hq, int Hkv, int D, float scale CAPP) {                                                         \
        attn_bwd_dq<T, CAP>(dQ, dO, lse, delta, Q, K, V, mask, T_, Hq, Hkv, D, scale, CAPA);                        \
    }                                                                                                               \
    extern "C" __global__ void __launch_bounds__(128) name##_dkv_bwd_##sfx(                                         \
        T* dK, T* dV, const T* dO, const float* lse, const float* delta, const T* Q, const T* K, const T* V,       \
        const int* mask, int T_, int Hq, int Hkv, int D, float scale CAPP) {                                        \
        attn_bwd_dkv<T, CAP>(dK, dV, dO, lse, delta, Q, K, V, mask, T_, Hq, Hkv, D, scale, CAPA);                   \
    }
#define DELTA_ENTRY(T, sfx)                                                                                         \
    extern "C" __global__ void attention_delta_bwd_##sfx(float* delta, const T* O, const T* dO, int B, int T_, int Hq, int D) { \
        attn_delta<T>(delta, O, dO, B, T_, Hq, D);                                                                  \
    }
#define NO_CAP_PARAM
#define CAP_PARAM , float cap
ATTN_ENTRIES(float, f32, attention, false, NO_CAP_PARAM, 0.f)
DELTA_ENTRY(float, f32)
ATTN_ENTRIES(bf16, bf16, attention, false, NO_CAP_PARAM, 0.f)
DELTA_ENTRY(bf16, bf16)
ATTN_ENTRIES(float, f32, attention_softcap, true, CAP_PARAM, cap)
ATTN_ENTRIES(bf16, bf16, attention_softcap, true, CAP_PARAM, cap)
