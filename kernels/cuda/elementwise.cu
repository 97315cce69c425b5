// elementwise.cu: casts and simple elementwise ops over n elements.
//
//   cast_bf16_fwd_f32:  out_bf16[i] = rne(x_f32[i])      (float32 -> bfloat16)
//   cast_f32_fwd_bf16:  out_f32[i]  = x_bf16[i]          (exact)
//   add_fwd_{f32,bf16}: out[i] = a[i] + b[i]             (out may alias a or b)
//   scale_fwd_{f32,bf16}: out[i] = alpha * x[i]          (out may alias x)
//   axpy_fwd_f32:       y[i] += alpha * x[i]             (the += gradient rule)
//
// bf16 variants compute in float and round once. Grid-stride loops, 256
// threads; the launcher caps the grid at a few waves of blocks.
#include "common.cuh"

#define GRID_STRIDE(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void cast_bf16_fwd_f32(bf16* __restrict__ out, const float* __restrict__ x, long long n) {
    GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(x[i]);
}

extern "C" __global__ void cast_f32_fwd_bf16(float* __restrict__ out, const bf16* __restrict__ x, long long n) {
    GRID_STRIDE(i, n) out[i] = __bfloat162float(x[i]);
}

template <typename T> __device__ void add(T* out, const T* a, const T* b, long long n) {
    GRID_STRIDE(i, n) out[i] = from_f<T>(to_f(a[i]) + to_f(b[i]));
}
template <typename T> __device__ void scale(T* out, const T* x, float alpha, long long n) {
    GRID_STRIDE(i, n) out[i] = from_f<T>(alpha * to_f(x[i]));
}

extern "C" __global__ void add_fwd_f32(float* out, const float* a, const float* b, long long n) { add(out, a, b, n); }
extern "C" __global__ void add_fwd_bf16(bf16* out, const bf16* a, const bf16* b, long long n) { add(out, a, b, n); }
extern "C" __global__ void scale_fwd_f32(float* out, const float* x, float alpha, long long n) { scale(out, x, alpha, n); }
extern "C" __global__ void scale_fwd_bf16(bf16* out, const bf16* x, float alpha, long long n) { scale(out, x, alpha, n); }

extern "C" __global__ void axpy_fwd_f32(float* __restrict__ y, const float* __restrict__ x, float alpha, long long n) {
    GRID_STRIDE(i, n) y[i] = fmaf(alpha, x[i], y[i]);
}
