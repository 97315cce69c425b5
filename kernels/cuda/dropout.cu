// dropout.cu: LoRA dropout masks drawn on the device from kernels/dropout's
// counter-based stream, so no mask crosses from the host (for SmolLM2-135M
// at 8x2048 tokens that was ~10 GB of host work and copies a step).
//
//   draw g:     z = key + (g+1) γ, γ = 0x9E3779B97F4A7C15      (SplitMix64)
//               z = (z ^ z>>30) 0xBF58476D1CE4E5B9
//               z = (z ^ z>>27) 0x94D049BB133111EB
//               r = z ^ z>>31                                  (mod 2^64)
//   forward:    m[4g+j] = keep if bits 16j..16j+15 of draw pos+g >= drop,
//               else 0, for j = 0..3 and 4g+j < n                      (m =)
//
// Bit for bit dropout.Mask (the Go reference, tested against it). One thread
// per draw, grid-stride over ceil(n/4) draws: each 64-bit draw is computed
// once and decides its four elements, stored as one float4 when m is 16-byte
// aligned and all four lie below n (a mask's own allocation), else one by
// one (a view may start at any element).
#include "common.cuh"

__device__ __forceinline__ unsigned long long splitmix64_draw(unsigned long long key, unsigned long long g) {
    unsigned long long z = key + (g + 1ull) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

extern "C" __global__ void dropout_mask_fwd_f32(float* m, unsigned long long key, unsigned long long pos, long long n,
                                                unsigned int drop, float keep) {
    const long long draws = (n + 3) / 4;
    const bool aligned = ((size_t)m & 15) == 0;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < draws; g += (long long)gridDim.x * blockDim.x) {
        unsigned long long r = splitmix64_draw(key, pos + (unsigned long long)g);
        const long long i = 4 * g;
        float v[4];
#pragma unroll
        for (int j = 0; j < 4; j++, r >>= 16) v[j] = (unsigned int)(r & 0xffffull) >= drop ? keep : 0.f;
        if (aligned && i + 3 < n) {
            *reinterpret_cast<float4*>(m + i) = make_float4(v[0], v[1], v[2], v[3]);
        } else {
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (i + j < n) m[i + j] = v[j];
        }
    }
}
