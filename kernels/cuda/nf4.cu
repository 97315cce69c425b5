// nf4.cu: dequantization of 4-bit NormalFloat (NF4) weights, the QLoRA
// format of bitsandbytes.
//
//   packed [n/2] bytes, element 2i in the high nibble and 2i+1 in the low
//   nibble (bitsandbytes' order); absmax [ceil(n/blocksize)] float32, one per
//   block of blocksize (64) consecutive elements:
//   out[i] = NF4[code_i] * absmax[i / blocksize]
//
// The 16 code values are bitsandbytes' NF4 table (quantiles of N(0,1)
// normalised to [-1, 1], with an exact 0).
//
// nf4dq_dequant_fwd_{f32,bf16}: the same with double-quantized scales
// (bitsandbytes' compress_statistics): qabsmax [ceil(n/blocksize)] bytes,
// nested [ceil(blocks/nestedBlocksize)] float32, dynmap [256] float32:
//   absmax[b] = dynmap[qabsmax[b]] * nested[b / nestedBlocksize] + offset
// (product and sum each rounded to float32, no fma, as bitsandbytes).
#include "common.cuh"

__device__ __forceinline__ void store8(float* out, const float* v) {
    reinterpret_cast<float4*>(out)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(out)[1] = make_float4(v[4], v[5], v[6], v[7]);
}

__device__ __forceinline__ void store8(bf16* out, const float* v) {
    uint4 w;
    __nv_bfloat162 h0 = __floats2bfloat162_rn(v[0], v[1]), h1 = __floats2bfloat162_rn(v[2], v[3]);
    __nv_bfloat162 h2 = __floats2bfloat162_rn(v[4], v[5]), h3 = __floats2bfloat162_rn(v[6], v[7]);
    w.x = *reinterpret_cast<unsigned*>(&h0);
    w.y = *reinterpret_cast<unsigned*>(&h1);
    w.z = *reinterpret_cast<unsigned*>(&h2);
    w.w = *reinterpret_cast<unsigned*>(&h3);
    *reinterpret_cast<uint4*>(out) = w;
}

// block_scale is block b's float32 scale; dyn is w.dynmap staged in
// shared memory.
template <bool DQ>
__device__ __forceinline__ float block_scale(const NF4Weight& w, const float* dyn, long long b) {
    return DQ ? nf4_dq_scale(w, dyn[w.qabsmax[b]], b) : w.absmax[b];
}

// Each thread expands 4 bytes into 8 outputs with one 4-byte load and
// 16/32-byte stores, reading the table from shared memory (a __constant__
// table serialises when a warp's indices differ, which they always do).
// Groups at the ragged end, or with unaligned pointers, go element by element.
// With DQ the block must have at least 256 threads (dynmap staging).
template <typename T, bool DQ = false>
__device__ void nf4_dequant(T* __restrict__ out, const NF4Weight w, long long n) {
    const unsigned char* __restrict__ packed = w.packed;
    const int blocksize = w.blocksize;
    __shared__ float code[16];
    __shared__ float dyn[256];
    nf4_codes(code);
    if (DQ && threadIdx.x < 256) dyn[threadIdx.x] = w.dynmap[threadIdx.x];
    __syncthreads();
    const long long groups = (n + 7) / 8;
    const bool vec = (((uintptr_t)packed) & 3) == 0 && (((uintptr_t)out) & 15) == 0 && blocksize % 8 == 0;
    for (long long gi = blockIdx.x * (long long)blockDim.x + threadIdx.x; gi < groups; gi += (long long)gridDim.x * blockDim.x) {
        const long long e0 = gi * 8;
        if (vec && e0 + 8 <= n) {
            const unsigned q = *reinterpret_cast<const unsigned*>(packed + gi * 4);
            const float a = block_scale<DQ>(w, dyn, e0 / blocksize);
            float v[8];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const unsigned byte = (q >> (8 * k)) & 255u;
                v[2 * k] = code[byte >> 4] * a;
                v[2 * k + 1] = code[byte & 15u] * a;
            }
            store8(out + e0, v);
        } else {
            for (long long e = e0; e < e0 + 8 && e < n; e++) {
                const unsigned char byte = packed[e / 2];
                const int qv = (e & 1) ? (byte & 15) : (byte >> 4);
                out[e] = from_f<T>(code[qv] * block_scale<DQ>(w, dyn, e / blocksize));
            }
        }
    }
}

extern "C" __global__ void nf4_dequant_fwd_f32(float* out, const unsigned char* packed, const float* absmax, long long n, int blocksize) { nf4_dequant(out, NF4Weight{packed, absmax, blocksize}, n); }
extern "C" __global__ void nf4_dequant_fwd_bf16(bf16* out, const unsigned char* packed, const float* absmax, long long n, int blocksize) { nf4_dequant(out, NF4Weight{packed, absmax, blocksize}, n); }
extern "C" __global__ void nf4dq_dequant_fwd_f32(float* out, const unsigned char* packed, const unsigned char* qabsmax, const float* nested, const float* dynmap, float offset, int nestedBlocksize, long long n, int blocksize) { nf4_dequant<float, true>(out, NF4Weight{packed, nullptr, blocksize, qabsmax, nested, dynmap, offset, nestedBlocksize}, n); }
extern "C" __global__ void nf4dq_dequant_fwd_bf16(bf16* out, const unsigned char* packed, const unsigned char* qabsmax, const float* nested, const float* dynmap, float offset, int nestedBlocksize, long long n, int blocksize) { nf4_dequant<bf16, true>(out, NF4Weight{packed, nullptr, blocksize, qabsmax, nested, dynmap, offset, nestedBlocksize}, n); }
