// geglu.cu: Gemma's MLP gate, elementwise over n: GELU with PyTorch's tanh
// approximation (transformers' gelu_pytorch_tanh) times the up projection.
//
//   forward:  out = gelu(g) * u,  gelu(g) = 0.5 g (1 + tanh(v)),
//             v = sqrt(2/pi) (g + 0.044715 g^3)
//   backward: dg = dout * u * gelu'(g)                                     (dg =)
//             du = dout * gelu(g)                                          (du =)
//             gelu'(g) = 0.5 (1 + tanh(v)) + 0.5 g (1 - tanh(v)^2) v',
//             v' = sqrt(2/pi) (1 + 3 * 0.044715 g^2)
//
// Evaluated as the CPU backend's float32 kernel does (tensor/geglu.go):
// 0.5 (1 + tanh(v)) = s = sigmoid(2v), so gelu(g) = g s, and
// 0.5 (1 - tanh(v)^2) = 2 s (1 - s) = 2 e s^2 with e = exp(-2v): no
// 1 - t^2 cancellation near |tanh| = 1. e = +inf (g very negative) gives
// s = 0 and a zero slope term (not inf * 0 = NaN); g^3 overflowing gives
// v = +-inf and the limits s = 1 or 0.
//
// dg and du may alias g and u (each element is read before written).
#include "common.cuh"

#define GELU_C 0.7978845608028654f  // sqrt(2/pi)
#define GELU_A 0.044715f

// gelu_parts sets s = sigmoid(2v) and d = 2 e s^2 v' (so gelu' = s + g d).
// expf, not __expf: the fast exp's ~1e-6 relative error would show in dg.
__device__ __forceinline__ void gelu_parts(float g, float& s, float& d) {
    const float v = GELU_C * (g + GELU_A * g * g * g);
    const float e = expf(-2.f * v);
    s = 1.f / (1.f + e);
    const float es2 = isinf(e) ? 0.f : e * s * s;
    d = 2.f * es2 * GELU_C * (1.f + 3.f * GELU_A * g * g);
}

template <typename T>
__device__ void geglu_fwd(T* out, const T* g, const T* u, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float gv = to_f(g[i]);
        float s, d;
        gelu_parts(gv, s, d);
        out[i] = from_f<T>(gv * s * to_f(u[i]));
    }
}

template <typename T>
__device__ void geglu_bwd(T* dg, T* du, const T* dout, const T* g, const T* u, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float gv = to_f(g[i]), uv = to_f(u[i]), dy = to_f(dout[i]);
        float s, d;
        gelu_parts(gv, s, d);
        // g d is 0 when d is (g = +-inf would give NaN; the CPU's does too).
        dg[i] = from_f<T>(dy * uv * (s + gv * d));
        du[i] = from_f<T>(dy * gv * s);
    }
}

extern "C" __global__ void geglu_fwd_f32(float* out, const float* g, const float* u, long long n) { geglu_fwd(out, g, u, n); }
extern "C" __global__ void geglu_fwd_bf16(bf16* out, const bf16* g, const bf16* u, long long n) { geglu_fwd(out, g, u, n); }
extern "C" __global__ void geglu_bwd_f32(float* dg, float* du, const float* dout, const float* g, const float* u, long long n) { geglu_bwd(dg, du, dout, g, u, n); }
extern "C" __global__ void geglu_bwd_bf16(bf16* dg, bf16* du, const bf16* dout, const bf16* g, const bf16* u, long long n) { geglu_bwd(dg, du, dout, g, u, n); }
