// rope.cu: rotary position embedding, in place, "rotate half" pairing (the
// Hugging Face Llama layout): dimension i pairs with i + D/2.
//
//   x [N tokens, H heads, D], pos [N] int32, cos/sin [maxPos, D/2] float32
//   forward:  (a, b) <- (a c - b s, b c + a s)
//   backward: the inverse rotation on the gradient, in place:
//             (ga, gb) <- (ga c + gb s, gb c - ga s)
//
// Every RoPE scaling (linear, NTK, llama3, yarn) changes only the cos/sin
// tables, which the caller builds; yarn's attention factor is folded into them.
// One thread per pair; grid-stride over N*H*D/2 pairs.
#include "common.cuh"

template <typename T, bool BWD>
__device__ void rope(T* x, const int* __restrict__ pos, const float* __restrict__ cosT, const float* __restrict__ sinT,
                     long long N, int H, int D) {
    const int half = D / 2;
    const long long pairs = N * H * half;
    for (long long p = blockIdx.x * (long long)blockDim.x + threadIdx.x; p < pairs; p += (long long)gridDim.x * blockDim.x) {
        int i = (int)(p % half);
        long long th = p / half;  // token*H + head
        long long tok = th / H;
        T* v = x + th * D;
        int ps = pos[tok];
        float c = cosT[(size_t)ps * half + i], s = sinT[(size_t)ps * half + i];
        float a = to_f(v[i]), b = to_f(v[i + half]);
        if (BWD) {
            v[i] = from_f<T>(a * c + b * s);
            v[i + half] = from_f<T>(b * c - a * s);
        } else {
            v[i] = from_f<T>(a * c - b * s);
            v[i + half] = from_f<T>(b * c + a * s);
        }
    }
}

extern "C" __global__ void rope_fwd_f32(float* x, const int* pos, const float* c, const float* s, long long N, int H, int D) { rope<float, false>(x, pos, c, s, N, H, D); }
extern "C" __global__ void rope_fwd_bf16(bf16* x, const int* pos, const float* c, const float* s, long long N, int H, int D) { rope<bf16, false>(x, pos, c, s, N, H, D); }
extern "C" __global__ void rope_bwd_f32(float* x, const int* pos, const float* c, const float* s, long long N, int H, int D) { rope<float, true>(x, pos, c, s, N, H, D); }
extern "C" __global__ void rope_bwd_bf16(bf16* x, const int* pos, const float* c, const float* s, long long N, int H, int D) { rope<bf16, true>(x, pos, c, s, N, H, D); }
