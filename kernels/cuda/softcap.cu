// softcap.cu: tanh soft-capping, elementwise over n (Gemma 2's final-logit
// cap; the attention-score cap is inside attention.cu / attention_masked.cu).
//
//   forward:  y = c tanh(x / c)                                      (y =)
//   backward: dx = dy (1 - (y / c)^2), y the forward's output          (dx =)
//             a y below -c (a masked -inf score) gives dx = 0, as on the CPU
//
// c > 0 is checked by the launcher. y may alias x and dx may alias dy.
// tanhf is CUDA's accurate tanh (2 ulp), relative-accurate for small x/c
// where c - 2c/(1 + e^(2x/c)) would cancel.
#include "common.cuh"

template <typename T>
__device__ void softcap_fwd(T* y, const T* x, float c, long long n) {
    const float inv = 1.f / c;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = from_f<T>(c * tanhf(to_f(x[i]) * inv));
}

template <typename T>
__device__ void softcap_bwd(T* dx, const T* dy, const T* y, float c, long long n) {
    const float inv = 1.f / c;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float yv = to_f(y[i]), t = yv * inv;
        dx[i] = from_f<T>(yv < -c ? 0.f : to_f(dy[i]) * (1.f - t * t));
    }
}

extern "C" __global__ void softcap_fwd_f32(float* y, const float* x, float c, long long n) { softcap_fwd(y, x, c, n); }
extern "C" __global__ void softcap_fwd_bf16(bf16* y, const bf16* x, float c, long long n) { softcap_fwd(y, x, c, n); }
extern "C" __global__ void softcap_bwd_f32(float* dx, const float* dy, const float* y, float c, long long n) { softcap_bwd(dx, dy, y, c, n); }
extern "C" __global__ void softcap_bwd_bf16(bf16* dx, const bf16* dy, const bf16* y, float c, long long n) { softcap_bwd(dx, dy, y, c, n); }
