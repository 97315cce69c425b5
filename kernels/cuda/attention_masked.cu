// attention_masked.cu: grouped-query attention with every mask of the tensor
// backend's contract, for the shapes attention.cu's tiled kernels do not
// take (any head size up to 256, queries and keys of different lengths, a
// KV-cache offset, a sliding window, packed documents, bidirectional).
//
//   Q, O [B, T, Hq, D]; K, V [B, S, Hkv, D]; Hq = G * Hkv, query head h reads
//   key/value head h / G. Query t sits at position p = t + qoff among the S
//   keys; it sees key s when
//       (!causal || s <= p) && (window <= 0 || p - s < window)
//       && (keymask == 0 || keymask[b, s] != 0)
//       && (segments == 0 || segments[b, s] == segments[b, S - T + t])
//   keymask, segments [B, S] int32 (or null).
//
//   forward:  s_ts = scale q_t . k_s;  lse_t = log sum_s exp(s_ts)  [B, Hq, T] f32
//             o_t = sum_s exp(s_ts - lse_t) v_s; a query that sees no key
//             gets o_t = 0 and lse_t = -inf (the CPU backend's convention).
//   backward (all =): p = exp(s - lse), delta_t = dO_t . o_t,
//             ds = p (dO_t . v_s - delta_t) scale
//             dq_t = sum_s ds k_s;  dk_s = sum_{h in group, t} ds q_t;
//             dv_s = sum_{h in group, t} p dO_t
//
// Soft-capped variants (attention_masked_softcap_*, Gemma 2's
// attn_logit_softcapping, template flag CAP): s_ts = c tanh(scale q_t . k_s / c)
// before masking; the backward multiplies ds by 1 - tanh^2 before the scale.
// With CAP false the code is exactly the uncapped kernels'.
//
// One warp per query row (forward, dq) or key row (dk, dv), 4 warps per
// block; each lane owns dimensions lane, lane+32, ... (at most 8). The
// forward is an online softmax over the keys, so nothing of size T x S is
// stored. Arithmetic in float32 (dots reduced across the warp). These are
// plain SIMT loops with no shared-memory tiling: correct everywhere, meant
// for small heads and masks the tiled kernels lack, not for speed.
#include "common.cuh"

#define MAXD 256
#define PER (MAXD / 32)
#define WARPS 4

struct Mask {
    int T, S, causal, qoff, window;
    const int* keymask;
    const int* segments;
};

__device__ __forceinline__ bool visible(const Mask& m, int b, int t, int s) {
    int p = t + m.qoff;
    if (m.causal && s > p) return false;
    if (m.window > 0 && p - s >= m.window) return false;
    if (m.keymask && m.keymask[(size_t)b * m.S + s] == 0) return false;
    if (m.segments && m.segments[(size_t)b * m.S + s] != m.segments[(size_t)b * m.S + (m.S - m.T) + t]) return false;
    return true;
}

// dot of a register row (lane's dims) with a global row, summed over the warp.
template <typename T>
__device__ __forceinline__ float warp_dot(const float* r, const T* g, int D, int lane) {
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < PER; i++) {
        int j = lane + 32 * i;
        if (j < D) acc += r[i] * to_f(g[j]);
    }
    return warp_sum(acc);
}

template <typename T>
__device__ __forceinline__ void load_row(float* r, const T* g, int D, int lane) {
#pragma unroll
    for (int i = 0; i < PER; i++) {
        int j = lane + 32 * i;
        r[i] = j < D ? to_f(g[j]) : 0.f;
    }
}

// capped returns the (soft-capped when CAP) score scale * dot and, through
// slope, its derivative by scale * dot (1 - tanh^2; 1 uncapped).
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

#define MASK_PARAMS int T, int S, int Hq, int Hkv, int D, float scale, int causal, int qoff, int window, \
                    const int *keymask, const int *segments
#define MASK_INIT Mask mk = {T, S, causal, qoff, window, keymask, segments}

template <typename E, bool CAP>
__device__ void attn_fwd(E* o, float* lse, const E* q, const E* k, const E* v, int B, MASK_PARAMS, float cap) {
    MASK_INIT;
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * WARPS + (threadIdx.x >> 5);  // over B*Hq*T, t fastest
    if (row >= (long long)B * Hq * T) return;
    const int t = row % T, h = (row / T) % Hq, b = row / ((long long)T * Hq);
    const int kh = h / (Hq / Hkv);
    float qr[PER], acc[PER];
    load_row(qr, q + (((size_t)b * T + t) * Hq + h) * D, D, lane);
#pragma unroll
    for (int i = 0; i < PER; i++) acc[i] = 0.f;
    float m = -INFINITY, l = 0.f;
    for (int s = 0; s < S; s++) {
        if (!visible(mk, b, t, s)) continue;
        const size_t kv = (((size_t)b * S + s) * Hkv + kh) * D;
        float slope;
        float sc = capped<CAP>(warp_dot(qr, k + kv, D, lane), scale, cap, slope);
        float mn = fmaxf(m, sc);
        float corr = expf(m - mn), p = expf(sc - mn);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < PER; i++) {
            int j = lane + 32 * i;
            acc[i] = acc[i] * corr + (j < D ? p * to_f(v[kv + j]) : 0.f);
        }
        m = mn;
    }
    E* orow = o + (((size_t)b * T + t) * Hq + h) * D;
    const bool none = l == 0.f;
#pragma unroll
    for (int i = 0; i < PER; i++) {
        int j = lane + 32 * i;
        if (j < D) orow[j] = from_f<E>(none ? 0.f : acc[i] / l);
    }
    if (lane == 0) lse[((size_t)b * Hq + h) * T + t] = none ? -INFINITY : m + logf(l);
}

// dq and delta: one warp per query row.
template <typename E, bool CAP>
__device__ void attn_dq(E* dq, float* delta, const E* dout, const E* out, const float* lse, const E* q, const E* k,
                        const E* v, int B, MASK_PARAMS, float cap) {
    MASK_INIT;
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * WARPS + (threadIdx.x >> 5);
    if (row >= (long long)B * Hq * T) return;
    const int t = row % T, h = (row / T) % Hq, b = row / ((long long)T * Hq);
    const int kh = h / (Hq / Hkv);
    const size_t qo = (((size_t)b * T + t) * Hq + h) * D;
    float qr[PER], dor[PER], g[PER];
    load_row(qr, q + qo, D, lane);
    load_row(dor, dout + qo, D, lane);
    const float dl = warp_dot(dor, out + qo, D, lane);
    const float L = lse[((size_t)b * Hq + h) * T + t];
    if (lane == 0) delta[((size_t)b * Hq + h) * T + t] = dl;
#pragma unroll
    for (int i = 0; i < PER; i++) g[i] = 0.f;
    if (isfinite(L)) {
        for (int s = 0; s < S; s++) {
            if (!visible(mk, b, t, s)) continue;
            const size_t kv = (((size_t)b * S + s) * Hkv + kh) * D;
            float slope;
            float p = expf(capped<CAP>(warp_dot(qr, k + kv, D, lane), scale, cap, slope) - L);
            float ds = p * (warp_dot(dor, v + kv, D, lane) - dl);
            if (CAP) ds *= slope;
            ds *= scale;
#pragma unroll
            for (int i = 0; i < PER; i++) {
                int j = lane + 32 * i;
                if (j < D) g[i] += ds * to_f(k[kv + j]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < PER; i++) {
        int j = lane + 32 * i;
        if (j < D) dq[qo + j] = from_f<E>(g[i]);
    }
}

// dk, dv: one warp per key row (b, kh, s), summing over the group's query
// heads and all queries; reads delta from attn_dq.
template <typename E, bool CAP>
__device__ void attn_dkv(E* dk, E* dv, const float* delta, const E* dout, const float* lse, const E* q, const E* k,
                         const E* v, int B, MASK_PARAMS, float cap) {
    MASK_INIT;
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * WARPS + (threadIdx.x >> 5);  // over B*Hkv*S
    if (row >= (long long)B * Hkv * S) return;
    const int s = row % S, kh = (row / S) % Hkv, b = row / ((long long)S * Hkv);
    const int G = Hq / Hkv;
    const size_t kv = (((size_t)b * S + s) * Hkv + kh) * D;
    float kr[PER], vr[PER], gk[PER], gv[PER];
    load_row(kr, k + kv, D, lane);
    load_row(vr, v + kv, D, lane);
#pragma unroll
    for (int i = 0; i < PER; i++) gk[i] = gv[i] = 0.f;
    for (int h = kh * G; h < (kh + 1) * G; h++) {
        for (int t = 0; t < T; t++) {
            if (!visible(mk, b, t, s)) continue;
            const float L = lse[((size_t)b * Hq + h) * T + t];
            if (!isfinite(L)) continue;
            const size_t qo = (((size_t)b * T + t) * Hq + h) * D;
            float slope;
            float p = expf(capped<CAP>(warp_dot(kr, q + qo, D, lane), scale, cap, slope) - L);
            float ds = p * (warp_dot(vr, dout + qo, D, lane) - delta[((size_t)b * Hq + h) * T + t]);
            if (CAP) ds *= slope;
            ds *= scale;
#pragma unroll
            for (int i = 0; i < PER; i++) {
                int j = lane + 32 * i;
                if (j < D) {
                    gk[i] += ds * to_f(q[qo + j]);
                    gv[i] += p * to_f(dout[qo + j]);
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < PER; i++) {
        int j = lane + 32 * i;
        if (j < D) {
            dk[kv + j] = from_f<E>(gk[i]);
            dv[kv + j] = from_f<E>(gv[i]);
        }
    }
}

#define ARGS T, S, Hq, Hkv, D, scale, causal, qoff, window, keymask, segments
// INST(prefix, name, Ty, CAP, capParam, capArg): the three kernels of one
// storage type, uncapped (attention_masked_*) or capped
// (attention_masked_softcap_*, one more parameter: the cap).
#define INST(prefix, name, Ty, CAP, CAPP, CAPA)                                                                    \
    extern "C" __global__ void prefix##_fwd_##name(Ty* o, float* lse, const Ty* q, const Ty* k, const Ty* v,      \
                                                   int B, MASK_PARAMS CAPP) {                                       \
        attn_fwd<Ty, CAP>(o, lse, q, k, v, B, ARGS, CAPA);                                                          \
    }                                                                                                               \
    extern "C" __global__ void prefix##_dq_bwd_##name(Ty* dq, float* delta, const Ty* dout, const Ty* out,          \
                                                      const float* lse, const Ty* q, const Ty* k,                  \
                                                      const Ty* v, int B, MASK_PARAMS CAPP) {                       \
        attn_dq<Ty, CAP>(dq, delta, dout, out, lse, q, k, v, B, ARGS, CAPA);                                        \
    }                                                                                                               \
    extern "C" __global__ void prefix##_dkv_bwd_##name(Ty* dk, Ty* dv, const float* delta, const Ty* dout,          \
                                                       const float* lse, const Ty* q, const Ty* k,                 \
                                                       const Ty* v, int B, MASK_PARAMS CAPP) {                      \
        attn_dkv<Ty, CAP>(dk, dv, delta, dout, lse, q, k, v, B, ARGS, CAPA);                                        \
    }
#define NO_CAP_PARAM
#define CAP_PARAM , float cap
INST(attention_masked, f32, float, false, NO_CAP_PARAM, 0.f)
INST(attention_masked, bf16, bf16, false, NO_CAP_PARAM, 0.f)
INST(attention_masked_softcap, f32, float, true, CAP_PARAM, cap)
INST(attention_masked_softcap, bf16, bf16, true, CAP_PARAM, cap)
