// adamw.cu: the optimizer step over many float32 tensors in one launch, and
// the global gradient norm with clipping, without a host round trip.
//
// Tensors are passed as device arrays of pointers (params, grads, m, v) and
// sizes; blockIdx.y picks the tensor, blocks along x stride over it.
//
//   gradnorm_fwd_f32:   *sumsq += sum over all tensors of g^2   (caller zeroes it)
//   clipscale_fwd_f32:  norm = sqrt(*sumsq); *scale = min(1, maxNorm / (norm + 1e-6))
//                       (PyTorch's clip_grad_norm_; maxNorm <= 0 means no clipping)
//   adamw_fwd_f32, per element, with g = grad * (*scale) (scale may be null = 1):
//       m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//       p = p - lr * (wd * p + (m / bc1) / (sqrt(v / bc2) + eps))
//     bc1 = 1 - b1^t and bc2 = 1 - b2^t come from the host (step t), so the
//     update is PyTorch's AdamW (decoupled decay, p *= 1 - lr wd, then the step).
#include "common.cuh"

extern "C" __global__ void gradnorm_fwd_f32(const unsigned long long* __restrict__ grads,
                                            const long long* __restrict__ sizes, float* sumsq) {
    __shared__ float scratch[32];
    const float* g = (const float*)grads[blockIdx.y];
    const long long n = sizes[blockIdx.y];
    float s = 0.f;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float v = g[i];
        s = fmaf(v, v, s);
    }
    s = block_sum(s, scratch);
    if (threadIdx.x == 0 && s != 0.f) atomicAdd(sumsq, s);
}

extern "C" __global__ void clipscale_fwd_f32(const float* sumsq, float maxNorm, float* scale, float* norm) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    float nv = sqrtf(*sumsq);
    if (norm) *norm = nv;
    *scale = maxNorm > 0.f ? fminf(1.f, maxNorm / (nv + 1e-6f)) : 1.f;
}

extern "C" __global__ void adamw_fwd_f32(const unsigned long long* __restrict__ params, const unsigned long long* __restrict__ grads,
                                         const unsigned long long* __restrict__ ms, const unsigned long long* __restrict__ vs,
                                         const long long* __restrict__ sizes, const float* scale, float lr, float b1, float b2,
                                         float eps, float wd, float bc1, float bc2) {
    float* p = (float*)params[blockIdx.y];
    const float* g = (const float*)grads[blockIdx.y];
    float* m = (float*)ms[blockIdx.y];
    float* v = (float*)vs[blockIdx.y];
    const long long n = sizes[blockIdx.y];
    const float sc = scale ? *scale : 1.f;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float gi = g[i] * sc;
        float mi = b1 * m[i] + (1.f - b1) * gi;
        float vi = b2 * v[i] + (1.f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float pi = p[i];
        p[i] = pi - lr * (wd * pi + (mi / bc1) / (sqrtf(vi / bc2) + eps));
    }
}
