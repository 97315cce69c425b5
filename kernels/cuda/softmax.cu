// softmax.cu: softmax or log-softmax over the rows of a dense [R, C] matrix
// (the tensor backend's Softmax; training's cross-entropy uses the fused,
// chunked kernels of crossentropy.cu instead).
//
//   m = max_j x_j;  lse = m + log sum_j exp(x_j - m)
//   softmax: y_j = exp(x_j - lse);  log-softmax: y_j = x_j - lse     (y =)
//
// One block of 256 threads per row; max, sum and the outputs in double, as
// the CPU backend computes them, then rounded once to the storage type.
#include "common.cuh"

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_max_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// block_reduce_d: every thread gets the block's sum (or max); blockDim.x a
// multiple of 32. Ends with a barrier so scratch can be reused.
__device__ __forceinline__ double block_reduce_d(double v, double* scratch, bool isMax) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = isMax ? warp_max_d(v) : warp_sum_d(v);
    if (lane == 0) scratch[w] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : (isMax ? -INFINITY : 0.0);
    v = isMax ? warp_max_d(v) : warp_sum_d(v);
    __syncthreads();
    return v;
}

__device__ __forceinline__ double ldd(float x) { return x; }
__device__ __forceinline__ double ldd(double x) { return x; }
__device__ __forceinline__ double ldd(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void std_(float* p, double v) { *p = (float)v; }
__device__ __forceinline__ void std_(double* p, double v) { *p = v; }
__device__ __forceinline__ void std_(bf16* p, double v) { *p = __float2bfloat16_rn((float)v); }

template <typename T>
__device__ void softmax_rows(T* y, const T* x, int C, int logOut) {
    __shared__ double scratch[32];
    const T* xr = x + (size_t)blockIdx.x * C;
    T* yr = y + (size_t)blockIdx.x * C;
    double m = -INFINITY;
    for (int j = threadIdx.x; j < C; j += blockDim.x) m = fmax(m, ldd(xr[j]));
    m = block_reduce_d(m, scratch, true);
    double s = 0;
    for (int j = threadIdx.x; j < C; j += blockDim.x) s += exp(ldd(xr[j]) - m);
    s = block_reduce_d(s, scratch, false);
    const double lse = m + log(s);
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        double v = ldd(xr[j]) - lse;
        std_(&yr[j], logOut ? v : exp(v));
    }
}

extern "C" __global__ void softmax_fwd_f32(float* y, const float* x, int C, int logOut) { softmax_rows<float>(y, x, C, logOut); }
extern "C" __global__ void softmax_fwd_bf16(bf16* y, const bf16* x, int C, int logOut) { softmax_rows<bf16>(y, x, C, logOut); }
extern "C" __global__ void softmax_fwd_f64(double* y, const double* x, int C, int logOut) { softmax_rows<double>(y, x, C, logOut); }
