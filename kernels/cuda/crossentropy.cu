// crossentropy.cu: softmax cross-entropy over a vocabulary processed in
// chunks, so the float32 logits of the whole batch never exist at once.
//
// For rows r (tokens) with target y_r (-100 = ignored, as in PyTorch; any id
// outside [0, V) is treated as ignored too), logits x_r over V classes:
//
//   lse_r  = log sum_j exp(x_rj)              (online over chunks: running max m, sum s)
//   loss_r = lse_r - x_{r,y_r}                (0 for ignored rows)
//   mean   = sum_r loss_r * invCount          (invCount = 1 / #counted rows)
//   dx_rj  = (exp(x_rj - lse_r) - [j == y_r]) * invCount   (dx =; 0 on ignored rows)
//
// The caller walks the vocabulary chunk by chunk (chunk [N, Vc] at column
// v0, row stride ld; e.g. each the output of one lm_head GEMM):
//   crossentropy_fwd_{f32,bf16}: fold a chunk into (m, s) per row and pick up
//       the target logit when it lies in the chunk. m starts at -inf, s at 0.
//   crossentropy_loss_fwd_f32: lse, loss per row, += mean into *lossSum.
//   crossentropy_bwd_{f32,bf16}: the logit gradient of a chunk (dx may alias x).
// One block of 256 threads per row for the chunk kernels.
#include "common.cuh"

template <typename T>
__device__ void ce_stats(const T* __restrict__ x, int ld, int v0, int Vc, const int* __restrict__ targets,
                         float* __restrict__ rowMax, float* __restrict__ rowSum, float* __restrict__ tgtLogit) {
    __shared__ float sm[32], ss[32];
    const size_t row = blockIdx.x;
    const T* xr = x + row * ld;
    float m = -INFINITY, s = 0.f;
    for (int j = threadIdx.x; j < Vc; j += blockDim.x) {
        float v = to_f(xr[j]);
        if (v > m) {
            s = s * expf(m - v) + 1.f;  // expf(-inf) = 0 on the first element
            m = v;
        } else if (v != -INFINITY) {
            s += expf(v - m);
        }
    }
    // Combine (m, s) pairs: first the block's max, then rescale each sum.
    float M = block_max(m, sm);
    float part = m == -INFINITY ? 0.f : s * expf(m - M);
    float S = block_sum(part, ss);
    if (threadIdx.x == 0) {
        float m0 = rowMax[row], s0 = rowSum[row];
        float mn = fmaxf(m0, M);
        if (mn != -INFINITY) {
            float a = m0 == -INFINITY ? 0.f : s0 * expf(m0 - mn);
            float b = M == -INFINITY ? 0.f : S * expf(M - mn);
            rowMax[row] = mn;
            rowSum[row] = a + b;
        }
        int y = targets[row];
        if (y >= v0 && y < v0 + Vc) tgtLogit[row] = to_f(xr[y - v0]);
    }
}

extern "C" __global__ void crossentropy_fwd_f32(const float* x, int ld, int v0, int Vc, const int* targets, float* rowMax, float* rowSum, float* tgtLogit) { ce_stats(x, ld, v0, Vc, targets, rowMax, rowSum, tgtLogit); }
extern "C" __global__ void crossentropy_fwd_bf16(const bf16* x, int ld, int v0, int Vc, const int* targets, float* rowMax, float* rowSum, float* tgtLogit) { ce_stats(x, ld, v0, Vc, targets, rowMax, rowSum, tgtLogit); }

// One thread per row. lossSum may be 0 (per-row losses only).
extern "C" __global__ void crossentropy_loss_fwd_f32(const int* __restrict__ targets, const float* __restrict__ rowMax,
                                                     const float* __restrict__ rowSum, const float* __restrict__ tgtLogit,
                                                     float* __restrict__ lse, float* __restrict__ losses, float* lossSum,
                                                     int N, int V, float invCount) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= N) return;
    int y = targets[r];
    float l = rowMax[r] + logf(rowSum[r]);
    lse[r] = l;
    float loss = (y >= 0 && y < V) ? l - tgtLogit[r] : 0.f;
    losses[r] = loss;
    if (lossSum && loss != 0.f) atomicAdd(lossSum, loss * invCount);
}

template <typename T>
__device__ void ce_grad(T* dx, const T* x, int ld, int v0, int Vc, int V, const int* __restrict__ targets,
                        const float* __restrict__ lse, float invCount) {
    const size_t row = blockIdx.x;
    int y = targets[row];
    bool counted = y >= 0 && y < V;
    float l = lse[row];
    for (int j = threadIdx.x; j < Vc; j += blockDim.x) {
        float g = 0.f;
        if (counted) g = (expf(to_f(x[row * ld + j]) - l) - (v0 + j == y ? 1.f : 0.f)) * invCount;
        dx[row * ld + j] = from_f<T>(g);
    }
}

extern "C" __global__ void crossentropy_bwd_f32(float* dx, const float* x, int ld, int v0, int Vc, int V, const int* targets, const float* lse, float invCount) { ce_grad(dx, x, ld, v0, Vc, V, targets, lse, invCount); }
extern "C" __global__ void crossentropy_bwd_bf16(bf16* dx, const bf16* x, int ld, int v0, int Vc, int V, const int* targets, const float* lse, float invCount) { ce_grad(dx, x, ld, v0, Vc, V, targets, lse, invCount); }
