// dropout.cu: LoRA dropout drawn on the device from kernels/dropout's
// counter-based stream, so no mask crosses from the host (for SmolLM2-135M
// at 8x2048 tokens that was ~10 GB of host work and copies a step), and
// dropout applied without storing its mask.
//
//   draw g:     z = key + (g+1) γ, γ = 0x9E3779B97F4A7C15      (SplitMix64)
//               z = (z ^ z>>30) 0xBF58476D1CE4E5B9
//               z = (z ^ z>>27) 0x94D049BB133111EB
//               r = z ^ z>>31                                  (mod 2^64)
//   mask:       m[4g+j] = keep if bits 16j..16j+15 of draw pos+g >= drop,
//               else 0, for j = 0..3 and 4g+j < n                      (m =)
//   apply:      y[i] = x[i]·m[i], one IEEE product (x·keep or x·0, so a
//               NaN or ±Inf x under a dropped element gives NaN and -0
//               stays -0); y may be x                                  (y =)
//   apply bf16: y[i] = rne_bf16(float(x[i])·m[i]): x and y bf16, the
//               same mask, the product in float32 and one rounding to
//               nearest even (so dropout.Apply on x widened, rounded)
//
// Bit for bit dropout.Mask and dropout.Apply (the Go references, tested
// against them; a NaN's payload is the hardware's). The bf16 apply decides
// keep or drop with the same dropout_lanes as the float32 kernels, so a
// bf16 and a float32 activation at the same (key, pos) drop the same
// elements; it moves its four elements as one 8-byte uint2 when both
// pointers are 8-byte aligned. One thread per draw,
// grid-stride over ceil(n/4) draws: each 64-bit draw is computed once and
// decides its four elements, loaded and stored as one float4 when every
// pointer is 16-byte aligned and all four lie below n (a tensor's own
// allocation), else one by one (a view may start at any element). y and x
// are not __restrict__: the apply runs in place (each thread reads its
// four elements before it writes them).
#include "common.cuh"

// dropout_lanes sets v to the mask's four elements decided by draw pos+g:
// lane j is keep where bits 16j.. of the draw are at least drop, else 0.
// The one definition of the mask both kernels use.
__device__ __forceinline__ void dropout_lanes(float v[4], unsigned long long key, unsigned long long pos, long long g,
                                              unsigned int drop, float keep) {
    unsigned long long r = splitmix64_draw(key, pos + (unsigned long long)g);
#pragma unroll
    for (int j = 0; j < 4; j++, r >>= 16) v[j] = (unsigned int)(r & 0xffffull) >= drop ? keep : 0.f;
}

extern "C" __global__ void dropout_mask_fwd_f32(float* m, unsigned long long key, unsigned long long pos, long long n,
                                                unsigned int drop, float keep) {
    const long long draws = (n + 3) / 4;
    const bool aligned = ((size_t)m & 15) == 0;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < draws; g += (long long)gridDim.x * blockDim.x) {
        float v[4];
        dropout_lanes(v, key, pos, g, drop, keep);
        const long long i = 4 * g;
        if (aligned && i + 3 < n) {
            *reinterpret_cast<float4*>(m + i) = make_float4(v[0], v[1], v[2], v[3]);
        } else {
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (i + j < n) m[i + j] = v[j];
        }
    }
}

extern "C" __global__ void dropout_apply_fwd_f32(float* y, const float* x, unsigned long long key, unsigned long long pos,
                                                 long long n, unsigned int drop, float keep) {
    const long long draws = (n + 3) / 4;
    const bool aligned = (((size_t)y | (size_t)x) & 15) == 0;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < draws; g += (long long)gridDim.x * blockDim.x) {
        float v[4];
        dropout_lanes(v, key, pos, g, drop, keep);
        const long long i = 4 * g;
        if (aligned && i + 3 < n) {
            const float4 a = *reinterpret_cast<const float4*>(x + i);
            *reinterpret_cast<float4*>(y + i) = make_float4(a.x * v[0], a.y * v[1], a.z * v[2], a.w * v[3]);
        } else {
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (i + j < n) y[i + j] = x[i + j] * v[j];
        }
    }
}

extern "C" __global__ void dropout_apply_fwd_bf16(bf16* y, const bf16* x, unsigned long long key, unsigned long long pos,
                                                  long long n, unsigned int drop, float keep) {
    const long long draws = (n + 3) / 4;
    const bool aligned = (((size_t)y | (size_t)x) & 7) == 0;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < draws; g += (long long)gridDim.x * blockDim.x) {
        float v[4];
        dropout_lanes(v, key, pos, g, drop, keep);
        const long long i = 4 * g;
        if (aligned && i + 3 < n) {
            union {
                uint2 u;
                bf16 h[4];
            } a;
            a.u = *reinterpret_cast<const uint2*>(x + i);
#pragma unroll
            for (int j = 0; j < 4; j++) a.h[j] = __float2bfloat16_rn(to_f(a.h[j]) * v[j]);
            *reinterpret_cast<uint2*>(y + i) = a.u;
        } else {
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (i + j < n) y[i + j] = __float2bfloat16_rn(to_f(x[i + j]) * v[j]);
        }
    }
}
