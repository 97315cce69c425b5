// swiglu.cu: the Llama MLP gate, elementwise over n.
//
//   forward:  out = silu(g) * u,  silu(g) = g * sigmoid(g)
//   backward: dg = dout * u * sigmoid(g) * (1 + g * (1 - sigmoid(g)))    (dg =)
//             du = dout * silu(g)                                        (du =)
//
// dg and du may alias g and u (the backward overwrites its inputs in place
// when the caller no longer needs them: each element is read before written).
#include "common.cuh"

// expf, not __expf: the fast exp loses ~1e-6 relative at |x| ~ 8, visible
// in dg where 1 + g (1 - s) cancels; the kernel is memory-bound anyway.
__device__ __forceinline__ float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }

template <typename T>
__device__ void swiglu_fwd(T* out, const T* g, const T* u, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float gv = to_f(g[i]);
        out[i] = from_f<T>(gv * sigmoidf(gv) * to_f(u[i]));
    }
}

template <typename T>
__device__ void swiglu_bwd(T* dg, T* du, const T* dout, const T* g, const T* u, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float gv = to_f(g[i]), uv = to_f(u[i]), d = to_f(dout[i]);
        float s = sigmoidf(gv);
        dg[i] = from_f<T>(d * uv * s * (1.f + gv * (1.f - s)));
        du[i] = from_f<T>(d * gv * s);
    }
}

extern "C" __global__ void swiglu_fwd_f32(float* out, const float* g, const float* u, long long n) { swiglu_fwd(out, g, u, n); }
extern "C" __global__ void swiglu_fwd_bf16(bf16* out, const bf16* g, const bf16* u, long long n) { swiglu_fwd(out, g, u, n); }
extern "C" __global__ void swiglu_bwd_f32(float* dg, float* du, const float* dout, const float* g, const float* u, long long n) { swiglu_bwd(dg, du, dout, g, u, n); }
extern "C" __global__ void swiglu_bwd_bf16(bf16* dg, bf16* du, const bf16* dout, const bf16* g, const bf16* u, long long n) { swiglu_bwd(dg, du, dout, g, u, n); }
